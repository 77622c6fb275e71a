//! Builds JavaScript services with the Bytecode Alliance's componentizer: the module named by
//! package.json's "main" (or index.js, service.js) implements the `service` world, directly or
//! through the node's JavaScript SDK (`import { service } from 'micro'`); its imports are
//! bundled first.

use micro_builder_kit::{
    Detection, Guest, Info, Plan, Tool, out_path, read_text, run_ok, toolchain, world_for,
};

struct JavaScript;

/// A top-level string field of package.json.
fn field_of(package: &str, key: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(package).ok()?;
    Some(value.get(key)?.as_str()?.to_string())
}

/// package.json's "main", as a path in the tree.
fn main_of(package: &str) -> Option<String> {
    field_of(package, "main").map(|m| m.trim_start_matches("./").to_string())
}

impl Guest for JavaScript {
    fn info() -> Info {
        Info {
            name: "javascript".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            looks_for: "package.json with \"main\", or index.js or service.js at the root (built with componentize-js)".into(),
        }
    }

    fn detect(files: Vec<String>) -> Detection {
        let has = |name: &str| files.iter().any(|f| f == name);
        let package = has("package.json")
            .then(|| read_text("package.json").ok())
            .flatten();
        let from_package = package.as_deref().and_then(main_of).filter(|m| has(m));
        let name = package.as_deref().and_then(|p| field_of(p, "name"));
        let entry = from_package.or_else(|| {
            ["index.js", "service.js"]
                .into_iter()
                .find(|e| has(e))
                .map(String::from)
        });
        match entry {
            Some(entry) => Detection::Recognised(Plan {
                language: "javascript".into(),
                entry,
                name,
                priority: 40,
            }),
            None => Detection::NotRecognised(
                "no package.json \"main\", index.js or service.js at the root".into(),
            ),
        }
    }

    fn build(plan: Plan) -> Result<String, String> {
        let source = read_text(&plan.entry)?;
        let world = world_for(&source);
        let output = out_path("service.wasm");
        toolchain::log(&format!("componentize-js: {}, world {world}", plan.entry));
        let args = vec![
            plan.entry,
            toolchain::wit_dir(),
            world.into(),
            output.clone(),
        ];
        run_ok(Tool::ComponentizeJs, &args, "", "componentize-js")?;
        Ok(output)
    }
}

micro_builder_kit::builder!(JavaScript);

#[cfg(test)]
mod tests {
    #[test]
    fn reads_main() {
        assert_eq!(
            super::main_of(r#"{"name":"x", "main" : "./src/app.js"}"#).as_deref(),
            Some("src/app.js")
        );
        assert_eq!(super::main_of(r#"{"name":"x"}"#), None);
        assert_eq!(
            super::field_of(r#"{"author":{"name":"a"},"name":"svc"}"#, "name").as_deref(),
            Some("svc")
        );
    }
}
