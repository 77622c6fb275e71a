//! What the node and the CLI hand to developers' tools, embedded in the binary so nothing else
//! needs installing: the `micro:network` WIT package, and the SDKs.
//!
//! The node writes its kit (WIT, the Python and JavaScript SDKs) under its data directory for builders to
//! pass to componentizers. `micro new` writes a self-contained copy of the Rust SDK into each
//! new Rust project, so the project builds on any node without a package registry.

use anyhow::Context as _;
use std::path::{Path, PathBuf};

/// Embeds files by their path in this repository.
macro_rules! embed {
    ($($path:literal),* $(,)?) => {
        [$(($path, include_str!(concat!("../../../", $path)))),*]
    };
}

/// The WIT package, file by file.
pub const WIT: [(&str, &str); 10] = embed!(
    "wit/types.wit",
    "wit/service.wit",
    "wit/registry.wit",
    "wit/transport.wit",
    "wit/broker.wit",
    "wit/storage.wit",
    "wit/builder.wit",
    "wit/governance.wit",
    "wit/identity.wit",
    "wit/ledger.wit",
);

/// The Python SDK (`import micro`), put on componentize-py's search path by the builder.
const PYTHON_SDK: [(&str, &str); 6] = embed!(
    "sdk/python/micro/__init__.py",
    "sdk/python/micro/calls.py",
    "sdk/python/micro/errors.py",
    "sdk/python/micro/events.py",
    "sdk/python/micro/log.py",
    "sdk/python/micro/storage.py",
);

/// The JavaScript SDK (`import { service } from 'micro'`), bundled in by the builder.
const JS_SDK: [(&str, &str); 1] = embed!("sdk/js/micro.js");

/// The Rust SDK's sources (its manifest is made by [`write_rust_sdk`]).
const RUST_SDK: [(&str, &str); 11] = embed!(
    "sdk/rust/build.rs",
    "sdk/rust/src/bindings.rs",
    "sdk/rust/src/call.rs",
    "sdk/rust/src/context.rs",
    "sdk/rust/src/error.rs",
    "sdk/rust/src/events.rs",
    "sdk/rust/src/export.rs",
    "sdk/rust/src/lib.rs",
    "sdk/rust/src/log.rs",
    "sdk/rust/src/registry.rs",
    "sdk/rust/src/storage.rs",
);

/// The version of wit-bindgen the Rust SDK is built with (the workspace's).
pub const WIT_BINDGEN_VERSION: &str = "0.62.0";

/// Writes `text` to `path` unless it already holds it.
fn put(path: &Path, text: &str) -> anyhow::Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(text) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Writes `files` (repository paths) under `dir`, each relative to `strip`.
fn put_all(dir: &Path, strip: &str, files: &[(&str, &str)]) -> anyhow::Result<()> {
    for (path, text) in files {
        put(&dir.join(path.trim_start_matches(strip)), text)?;
    }
    Ok(())
}

/// The node's kit, written out: `wit/` and `sdk/<language>/`.
pub struct Kit {
    dir: PathBuf,
}

impl Kit {
    /// Writes the kit under `dir` (only files whose content changed).
    pub fn write(dir: &Path) -> anyhow::Result<Self> {
        put_all(dir, "", &WIT)?;
        put_all(dir, "", &PYTHON_SDK)?;
        put_all(dir, "", &JS_SDK)?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// The `micro:network` WIT package.
    pub fn wit_dir(&self) -> PathBuf {
        self.dir.join("wit")
    }

    /// The SDKs, one directory per language.
    pub fn sdk_dir(&self) -> PathBuf {
        self.dir.join("sdk")
    }
}

/// Writes the Rust SDK as a crate of its own into `dir`, with the WIT package inside it.
pub fn write_rust_sdk(dir: &Path) -> anyhow::Result<()> {
    for (path, text) in RUST_SDK {
        // In the repository the WIT package is two levels up; here it is inside the crate.
        let text = text.replace("../../wit", "wit");
        put(&dir.join(path.trim_start_matches("sdk/rust/")), &text)?;
    }
    put_all(&dir.join("wit"), "wit/", &WIT)?;
    put(
        &dir.join("Cargo.toml"),
        &format!(
            "[package]\nname = \"micro-sdk\"\nversion = \"{}\"\nedition = \"2024\"\n\
             description = \"Write micro services in Rust (a copy made by `micro new`).\"\n\n\
             [dependencies]\nwit-bindgen = \"{WIT_BINDGEN_VERSION}\"\n\
             serde = {{ version = \"1\", features = [\"derive\"] }}\nserde_json = \"1\"\n",
            env!("CARGO_PKG_VERSION")
        ),
    )
}

#[cfg(test)]
mod tests {
    /// The files of `dir` (a repository path) with extension `ext`, sorted.
    fn files(dir: &str, ext: &str) -> Vec<String> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut found: Vec<String> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .map(|p| format!("{dir}/{}", p.file_name().unwrap().to_string_lossy()))
            .collect();
        found.sort();
        found
    }

    fn embedded(list: &[(&str, &str)]) -> Vec<String> {
        let mut names: Vec<String> = list.iter().map(|(p, _)| p.to_string()).collect();
        names.sort();
        names
    }

    #[test]
    fn every_file_of_the_wit_package_and_the_sdks_is_embedded() {
        assert_eq!(embedded(&super::WIT), files("wit", "wit"));
        assert_eq!(
            embedded(&super::PYTHON_SDK),
            files("sdk/python/micro", "py")
        );
        assert_eq!(embedded(&super::JS_SDK), files("sdk/js", "js"));
        let mut rust = files("sdk/rust/src", "rs");
        rust.push("sdk/rust/build.rs".into());
        rust.sort();
        assert_eq!(embedded(&super::RUST_SDK), rust);
    }

    #[test]
    fn the_rust_sdk_copy_uses_the_workspace_wit_bindgen() {
        let workspace = include_str!("../../../Cargo.toml");
        assert!(
            workspace.contains(&format!("wit-bindgen = \"{}\"", super::WIT_BINDGEN_VERSION)),
            "kit::WIT_BINDGEN_VERSION must match the workspace's wit-bindgen"
        );
    }
}
