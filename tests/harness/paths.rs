//! Where the tests find what `scripts/test` built: the cargo target directory, the node
//! binaries (this build and the previous protocol's), the components and the examples.

use std::path::{Path, PathBuf};

/// The cargo target directory the tests were built in.
pub(crate) fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        return if dir.is_absolute() {
            dir
        } else {
            repo_root().join(dir)
        };
    }
    // target/debug/deps/<test binary>
    let exe = std::env::current_exe().expect("the test binary knows its path");
    exe.ancestors()
        .nth(3)
        .expect("test binary lives in target/<profile>/deps")
        .to_owned()
}

/// A directory for what a test run leaves to look at afterwards (screenshots and the like):
/// `<target>/artifacts/<name>`, emptied first.
pub fn artifacts_dir(name: &str) -> PathBuf {
    let dir = target_dir().join("artifacts").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating the artifacts directory");
    dir
}

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_owned()
}

/// The `micro` binary under test.
pub fn micro_bin() -> PathBuf {
    binary(
        "MICRO_BIN",
        &["debug", "micro"],
        "build it with `cargo build -p micro` (scripts/test does)",
    )
}

/// The `micro` binary of the previous protocol, built from the commit `scripts/test` names
/// (`MICRO_PREVIOUS_BIN`, or `<target>/previous/micro`).
pub fn previous_bin() -> PathBuf {
    binary(
        "MICRO_PREVIOUS_BIN",
        &["previous", "micro"],
        "./scripts/test builds it from the previous protocol's commit",
    )
}

/// A binary named by `var`, or at `path` under the target directory, which must exist.
fn binary(var: &str, path: &[&str], how: &str) -> PathBuf {
    if let Some(bin) = std::env::var_os(var) {
        return bin.into();
    }
    let bin = path.iter().fold(target_dir(), |dir, part| dir.join(part));
    assert!(bin.exists(), "{} is missing: {how}", bin.display());
    bin
}

/// A component built from this repository (`examples/` or `tests/components/`).
pub fn component(name: &str) -> PathBuf {
    let dir = target_dir().join("wasm32-wasip2").join("release");
    // Libraries (cdylib) are named with '_', binaries keep their '-'.
    let library = dir.join(format!("{}.wasm", name.replace('-', "_")));
    let path = if library.exists() {
        library
    } else {
        dir.join(format!("{name}.wasm"))
    };
    assert!(
        path.exists(),
        "{} is missing: build the components with `scripts/build-components`",
        path.display()
    );
    path
}

/// A directory holding one prebuilt component, as `micro governance use <dir>` and
/// `micro ledger use <dir>` take it.
pub fn component_dir(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let wasm = component(name);
    std::fs::copy(
        &wasm,
        dir.path().join(wasm.file_name().expect("a file name")),
    )
    .expect("copying the component");
    dir
}

/// The directory of an example: `examples/<language>/<name>` (`examples/<name>` for Rust).
pub fn example(language: &str, name: &str) -> String {
    let dir = repo_root().join("examples");
    let dir = if language == "rust" {
        dir
    } else {
        dir.join(language)
    };
    dir.join(name).display().to_string()
}
