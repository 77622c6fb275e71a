//! `micro new <name> --lang rust|python|js`: a service project that builds and runs as it is
//! (`micro run <name>` right after), from templates embedded in the binary.

use super::CliError;
use std::path::{Path, PathBuf};

/// One language's template: files by path, with `{{name}}` and `{{dir}}` to fill in.
struct Template {
    lang: &'static str,
    files: &'static [(&'static str, &'static str)],
    /// Also write a copy of the Rust SDK into `micro-sdk/`.
    rust_sdk: bool,
}

macro_rules! template {
    ($($path:literal => $file:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../../templates/", $file)))),*]
    };
}

const TEMPLATES: [Template; 3] = [
    Template {
        lang: "rust",
        files: template!(
            "Cargo.toml" => "rust/Cargo.toml",
            "src/lib.rs" => "rust/src/lib.rs",
            "README.md" => "rust/README.md",
            ".gitignore" => "rust/gitignore",
        ),
        rust_sdk: true,
    },
    Template {
        lang: "python",
        files: template!(
            "app.py" => "python/app.py",
            "pyproject.toml" => "python/pyproject.toml",
            "README.md" => "python/README.md",
            ".gitignore" => "python/gitignore",
        ),
        rust_sdk: false,
    },
    Template {
        lang: "js",
        files: template!(
            "index.js" => "js/index.js",
            "package.json" => "js/package.json",
            "README.md" => "js/README.md",
        ),
        rust_sdk: false,
    },
];

/// The languages `micro new` knows.
pub fn languages() -> Vec<&'static str> {
    TEMPLATES.iter().map(|t| t.lang).collect()
}

/// Writes a new `lang` project for service `name` into `dir` (default `./<name>`).
pub fn run(name: &str, lang: &str, dir: Option<PathBuf>) -> Result<(), CliError> {
    micro_base::names::check_name(name).map_err(CliError::failed)?;
    let template = TEMPLATES.iter().find(|t| t.lang == lang).ok_or_else(|| {
        CliError::failed(format!(
            "there is no template for language {lang:?}; there are: {}",
            languages().join(", ")
        ))
    })?;
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    if dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        return Err(CliError::failed(format!(
            "{} exists and is not empty; choose another name or --dir",
            dir.display()
        )));
    }
    let shown = dir.display().to_string();
    for (path, text) in template.files {
        let text = text
            .replace("{{name}}", name)
            .replace("{{type}}", &type_name(name))
            .replace("{{dir}}", &shown);
        write(&dir.join(path), &text)?;
    }
    if template.rust_sdk {
        micro_core::kit::write_rust_sdk(&dir.join("micro-sdk")).map_err(CliError::failed)?;
    }
    println!("created {lang} service {name} in {shown}");
    println!("  run it:  micro run {shown}");
    println!("  call it: micro call {name} greet '{{\"name\":\"Ada\"}}'");
    Ok(())
}

/// The service's type in Rust: `my-svc` → `MySvc` (never `Service`, which is the SDK's trait).
fn type_name(name: &str) -> String {
    let camel: String = name
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |c| {
                c.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect();
    match camel.chars().next() {
        Some(c) if c.is_ascii_alphabetic() && camel != "Service" => camel,
        _ => format!("Svc{camel}"),
    }
}

fn write(path: &Path, text: &str) -> Result<(), CliError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| CliError::failed(format!("creating {}: {e}", parent.display())))?;
    }
    std::fs::write(path, text)
        .map_err(|e| CliError::failed(format!("writing {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::type_name;

    #[test]
    fn type_names_are_rust_types_that_do_not_clash_with_the_sdk() {
        assert_eq!(type_name("greeter"), "Greeter");
        assert_eq!(type_name("my-todo-list"), "MyTodoList");
        assert_eq!(type_name("2fa"), "Svc2fa");
        assert_eq!(type_name("service"), "SvcService");
    }
}
