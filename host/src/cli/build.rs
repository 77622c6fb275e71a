//! Building a Rust crate into a component for `micro run <dir>`: cargo for wasm32-wasip2, with
//! cargo's own progress on the terminal.

use super::CliError;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Builds the crate in `dir` and returns the component it produced and the crate's name.
pub fn build_crate(dir: &Path) -> Result<(PathBuf, String), CliError> {
    eprintln!("building {} for wasm32-wasip2 …", dir.display());
    let mut child = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| CliError::failed(format!("running cargo (is Rust installed?): {e}")))?;
    let manifest = dir
        .join("Cargo.toml")
        .canonicalize()
        .map_err(|e| CliError::failed(format!("{}: {e}", dir.join("Cargo.toml").display())))?;
    let mut artifact = None;
    if let Some(stdout) = child.stdout.take() {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if message["reason"] != "compiler-artifact" {
                continue;
            }
            let is_ours =
                message["manifest_path"].as_str().map(Path::new) == Some(manifest.as_path());
            let wasm = message["filenames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str())
                .find(|f| f.ends_with(".wasm"));
            if let (true, Some(wasm)) = (is_ours, wasm) {
                let name = message["target"]["name"]
                    .as_str()
                    .unwrap_or("service")
                    .replace('_', "-");
                artifact = Some((PathBuf::from(wasm), name));
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| CliError::failed(format!("waiting for cargo: {e}")))?;
    if !status.success() {
        return Err(CliError::failed(format!(
            "cargo build failed ({status}); see its output above"
        )));
    }
    artifact.ok_or_else(|| {
        CliError::failed(format!(
            "cargo built {} but produced no .wasm; a service crate needs `crate-type = [\"cdylib\"]` \
             (and the wasm32-wasip2 target: `rustup target add wasm32-wasip2`)",
            dir.display()
        ))
    })
}
