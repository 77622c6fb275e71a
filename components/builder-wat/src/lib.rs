//! Builds a component written in WebAssembly text: one `.wat` file at the root, compiled in
//! process by the node.

use micro_builder_kit::{Detection, Guest, Info, Plan, at_root, out_path, toolchain};

struct Wat;

impl Guest for Wat {
    fn info() -> Info {
        Info {
            name: "wat".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            looks_for: "exactly one .wat file at the root (a component in WebAssembly text)".into(),
        }
    }

    fn detect(files: Vec<String>) -> Detection {
        let wat: Vec<&str> = at_root(&files).filter(|f| f.ends_with(".wat")).collect();
        match wat.as_slice() {
            [entry] => Detection::Recognised(Plan {
                language: "wat".into(),
                entry: entry.to_string(),
                name: Some(entry.trim_end_matches(".wat").to_string()),
                priority: 30,
            }),
            [] => Detection::NotRecognised("no .wat file at the root".into()),
            many => Detection::NotRecognised(format!(
                "{} .wat files at the root ({}); which one is the service?",
                many.len(),
                many.join(", ")
            )),
        }
    }

    fn build(plan: Plan) -> Result<String, String> {
        let output = out_path("service.wasm");
        toolchain::log(&format!("compiling {} to a binary component", plan.entry));
        toolchain::wat_to_wasm(&plan.entry, &output)?;
        Ok(output)
    }
}

micro_builder_kit::builder!(Wat);
