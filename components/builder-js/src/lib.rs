//! Builds JavaScript services with the Bytecode Alliance's componentizer: the module named by
//! package.json's "main" (or index.js, service.js) implements the `service` world, directly or
//! through the node's JavaScript SDK (`import { service } from 'micro'`); its imports are
//! bundled first.

use micro_builder_kit::{
    Detection, Guest, Info, Plan, Tool, out_path, read_text, run_ok, toolchain, world_for,
};

struct JavaScript;

/// What package.json says: its "main" (as a path in the tree) and its "name".
#[derive(Debug, Default, PartialEq)]
struct Package {
    main: Option<String>,
    name: Option<String>,
}

fn package_of(text: &str) -> Package {
    let value: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let field = |key: &str| value.get(key).and_then(|v| v.as_str()).map(str::to_string);
    Package {
        main: field("main").map(|m| m.trim_start_matches("./").to_string()),
        name: field("name"),
    }
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
            .flatten()
            .map(|text| package_of(&text))
            .unwrap_or_default();
        let name = package.name;
        let entry = package.main.filter(|m| has(m)).or_else(|| {
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
    use super::{Package, package_of};

    #[test]
    fn reads_main_and_name() {
        assert_eq!(
            package_of(r#"{"author":{"name":"a"},"name":"svc", "main" : "./src/app.js"}"#),
            Package {
                main: Some("src/app.js".into()),
                name: Some("svc".into())
            }
        );
        assert_eq!(package_of(r#"{"name":"x"}"#).main, None);
        assert_eq!(package_of("not json"), Package::default());
    }
}
