//! Deploys a prebuilt component: one `.wasm` file at the root of the tree. The lowest
//! priority, so a tree that also has the component's source is built from its source.

use micro_builder_kit::{Detection, Guest, Info, Plan, at_root};

struct Prebuilt;

impl Guest for Prebuilt {
    fn info() -> Info {
        Info {
            name: "wasm".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            looks_for: "exactly one prebuilt .wasm component at the root".into(),
        }
    }

    fn detect(files: Vec<String>) -> Detection {
        let wasm: Vec<&str> = at_root(&files).filter(|f| f.ends_with(".wasm")).collect();
        match wasm.as_slice() {
            [entry] => Detection::Recognised(Plan {
                language: "wasm".into(),
                entry: entry.to_string(),
                name: Some(entry.trim_end_matches(".wasm").replace('_', "-")),
                priority: 10,
            }),
            [] => Detection::NotRecognised("no .wasm file at the root".into()),
            many => Detection::NotRecognised(format!(
                "{} .wasm files at the root ({}); which one is the service?",
                many.len(),
                many.join(", ")
            )),
        }
    }

    fn build(plan: Plan) -> Result<String, String> {
        Ok(plan.entry)
    }
}

micro_builder_kit::builder!(Prebuilt);
