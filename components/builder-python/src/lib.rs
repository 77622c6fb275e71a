//! Builds Python services with componentize-py: an `app.py` module at the root that implements
//! the `service` world (or `event-service`, when it subscribes), with the node's Python SDK
//! (`import micro`) on the search path.

use micro_builder_kit::{
    Detection, Guest, Info, Plan, Tool, out_path, read_text, run_ok, toml_string, toolchain,
    world_for,
};

struct Python;

const ENTRIES: [&str; 2] = ["app.py", "main.py"];

impl Guest for Python {
    fn info() -> Info {
        Info {
            name: "python".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            looks_for: "app.py or main.py at the root (built with componentize-py)".into(),
        }
    }

    fn detect(files: Vec<String>) -> Detection {
        let Some(entry) = ENTRIES.iter().find(|e| files.iter().any(|f| f == *e)) else {
            return Detection::NotRecognised("no app.py or main.py at the root".into());
        };
        let name = files
            .iter()
            .any(|f| f == "pyproject.toml")
            .then(|| read_text("pyproject.toml").ok())
            .flatten()
            .and_then(|text| toml_string(&text, "project", "name"));
        Detection::Recognised(Plan {
            language: "python".into(),
            entry: entry.to_string(),
            name,
            priority: 40,
        })
    }

    fn build(plan: Plan) -> Result<String, String> {
        let source = read_text(&plan.entry)?;
        let world = world_for(&source);
        let module = plan.entry.trim_end_matches(".py").to_string();
        let output = out_path("service.wasm");
        toolchain::log(&format!("componentize-py: module {module}, world {world}"));
        // The tree first, then the SDK: a tree may bring its own `micro` package.
        let args = vec![
            "-d".into(),
            toolchain::wit_dir(),
            "-w".into(),
            world.into(),
            "componentize".into(),
            module,
            "-p".into(),
            ".".into(),
            "-p".into(),
            format!("{}/python", toolchain::sdk_dir()),
            "-o".into(),
            output.clone(),
        ];
        run_ok(Tool::ComponentizePy, &args, "", "componentize-py")?;
        Ok(output)
    }
}

micro_builder_kit::builder!(Python);
