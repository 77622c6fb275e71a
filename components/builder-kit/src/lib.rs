//! Shared by the builder components: bindings to the `builder-world` world of `micro:network`, and
//! the few helpers every builder needs to look at a tree.

/// Bindings generated from the `builder-world` world.
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "builder-world",
        pub_export_macro: true,
        export_macro_name: "export_builder",
        default_bindings_module: "micro_builder_kit::bindings",
    });
}

pub use bindings::exports::micro::network::builder::{BuilderInfo as Info, Detection, Guest, Plan};
pub use bindings::micro::network::toolchain::{self, Tool};

/// Exports a builder type (one implementing [`Guest`]) from the component.
#[macro_export]
macro_rules! builder {
    ($ty:ident) => {
        $crate::bindings::export_builder!($ty with_types_in $crate::bindings);
    };
}

/// Reads a file of the tree as text.
pub fn read_text(path: &str) -> Result<String, String> {
    let bytes = toolchain::read_file(path)?;
    String::from_utf8(bytes).map_err(|_| format!("{path} is not UTF-8 text"))
}

/// The files directly at the tree's root (no directory part).
pub fn at_root(files: &[String]) -> impl Iterator<Item = &str> {
    files
        .iter()
        .map(String::as_str)
        .filter(|f| !f.contains('/'))
}

/// The value of a `key = "value"` line in a TOML section (enough for a package name; a
/// builder does not need a full TOML parser to decide whether it recognises a tree).
pub fn toml_string(text: &str, section: &str, key: &str) -> Option<String> {
    let mut in_section = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_section = line == format!("[{section}]");
            continue;
        }
        if !in_section {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if k.trim() == key {
            let v = v.trim();
            return v
                .strip_prefix('"')
                .and_then(|v| v.split('"').next())
                .map(str::to_string);
        }
    }
    None
}

/// The path of `name` in the output directory.
pub fn out_path(name: &str) -> String {
    format!("{}/{name}", toolchain::out_dir().trim_end_matches('/'))
}

/// Runs a tool and turns a non-zero exit into an error that points at the log.
pub fn run_ok(tool: Tool, args: &[String], dir: &str, what: &str) -> Result<String, String> {
    let outcome = toolchain::run(tool, args, dir)?;
    if outcome.status != 0 {
        return Err(format!(
            "{what} failed (exit status {}); its output is in the build log",
            outcome.status
        ));
    }
    Ok(outcome.stdout)
}

/// Whether a service's source mentions the subscriber interface, so it builds for the
/// `event-service` world rather than `service`.
pub fn world_for(source: &str) -> &'static str {
    if source.contains("subscriber") || source.contains("Subscriber") {
        "event-service"
    } else {
        "service"
    }
}

#[cfg(test)]
mod tests {
    use super::toml_string;

    #[test]
    fn reads_a_package_name() {
        let text =
            "[workspace]\nname = \"no\"\n[package]\n name = \"hello-svc\" # c\nversion = \"1\"\n";
        assert_eq!(
            toml_string(text, "package", "name").as_deref(),
            Some("hello-svc")
        );
        assert_eq!(toml_string(text, "lib", "name"), None);
    }
}
