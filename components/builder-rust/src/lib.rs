//! Builds Rust crates (a `Cargo.toml` with `crate-type = ["cdylib"]`) into components with
//! cargo for `wasm32-wasip2`.

use micro_builder_kit::{Detection, Guest, Info, Plan, Tool, read_text, run_ok, toml_string};

struct Rust;

const LOOKS_FOR: &str = "a Cargo.toml at the root of a crate with crate-type = [\"cdylib\"]";

impl Guest for Rust {
    fn info() -> Info {
        Info {
            name: "rust".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            looks_for: LOOKS_FOR.into(),
        }
    }

    fn detect(files: Vec<String>) -> Detection {
        if !files.iter().any(|f| f == "Cargo.toml") {
            return Detection::NotRecognised("no Cargo.toml at the root".into());
        }
        let manifest = match read_text("Cargo.toml") {
            Ok(text) => text,
            Err(e) => return Detection::NotRecognised(e),
        };
        if !manifest.contains("cdylib") {
            return Detection::NotRecognised(
                "Cargo.toml does not build a cdylib (add [lib] crate-type = [\"cdylib\"])".into(),
            );
        }
        Detection::Recognised(Plan {
            language: "rust".into(),
            entry: "Cargo.toml".into(),
            name: toml_string(&manifest, "package", "name"),
            priority: 50,
        })
    }

    fn build(_plan: Plan) -> Result<String, String> {
        let args: Vec<String> = [
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--message-format=json-render-diagnostics",
        ]
        .map(String::from)
        .to_vec();
        let stdout = run_ok(Tool::Cargo, &args, "", "cargo build")?;
        // The root crate is built last: its cdylib is the last .wasm artifact cargo reports.
        let mut artifact = None;
        for line in stdout.lines() {
            let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if message["reason"] != "compiler-artifact" {
                continue;
            }
            let cdylib = message["target"]["crate_types"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == "cdylib"));
            let wasm = message["filenames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str())
                .find(|f| f.ends_with(".wasm"));
            if let (true, Some(wasm)) = (cdylib, wasm) {
                artifact = Some(wasm.to_string());
            }
        }
        artifact.ok_or_else(|| "cargo built the crate but reported no .wasm cdylib".to_string())
    }
}

micro_builder_kit::builder!(Rust);
