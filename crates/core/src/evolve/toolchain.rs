//! The host side of the `toolchain` WIT interface: what a builder component may do to the tree
//! it builds, through the build's [`Sandbox`](super::sandbox::Sandbox).

use super::sandbox::{Sandbox, Tool};
use crate::system::builders::bindings::micro::network::toolchain as wit;
use crate::system::builders::{BuildContext, MAX_DETECT_READS, Phase};
use std::io::Read as _;
use std::sync::Arc;

/// The most a builder may read of one file.
const MAX_READ_BYTES: u64 = 1 << 20;

impl BuildContext {
    fn sandbox(&self) -> Result<Arc<Sandbox>, String> {
        self.sandbox
            .clone()
            .ok_or_else(|| "no build is running".to_string())
    }

    fn building(&self, what: &str) -> Result<Arc<Sandbox>, String> {
        if self.phase == Phase::Detect {
            return Err(format!(
                "{what} is only allowed while building, not while detecting"
            ));
        }
        self.sandbox()
    }

    /// A directory of the build's sandbox, as a path a tool takes ("" with no build running).
    fn path_of(&self, dir: impl Fn(&Sandbox) -> std::path::PathBuf) -> String {
        self.sandbox
            .as_deref()
            .map(|s| dir(s).display().to_string())
            .unwrap_or_default()
    }
}

impl wit::Host for BuildContext {
    async fn read_file(&mut self, path: String) -> Result<Vec<u8>, String> {
        let sandbox = self.sandbox()?;
        if self.phase == Phase::Detect {
            self.reads += 1;
            if self.reads > MAX_DETECT_READS {
                return Err(format!("detect may read at most {MAX_DETECT_READS} files"));
            }
        }
        let full = sandbox.resolve(&path)?;
        let file = std::fs::File::open(&full).map_err(|e| format!("{path}: {e}"))?;
        let mut bytes = Vec::new();
        file.take(MAX_READ_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("{path}: {e}"))?;
        if bytes.len() as u64 > MAX_READ_BYTES {
            return Err(format!("{path} is larger than {MAX_READ_BYTES} bytes"));
        }
        Ok(bytes)
    }

    async fn write_file(&mut self, path: String, contents: Vec<u8>) -> Result<(), String> {
        let sandbox = self.building("writing files")?;
        let full = sandbox.resolve(&path)?;
        if !full.starts_with(sandbox.out_dir()) {
            return Err(format!(
                "{path}: builders write only into the output directory"
            ));
        }
        if let Some(dir) = full.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{path}: {e}"))?;
        }
        std::fs::write(&full, contents).map_err(|e| format!("{path}: {e}"))
    }

    async fn run(
        &mut self,
        tool: wit::Tool,
        args: Vec<String>,
        dir: String,
    ) -> Result<wit::RunOutcome, String> {
        let sandbox = self.building("running tools")?;
        let tool = match tool {
            wit::Tool::Cargo => Tool::Cargo,
            wit::Tool::ComponentizePy => Tool::ComponentizePy,
            wit::Tool::ComponentizeJs => Tool::ComponentizeJs,
        };
        let outcome = sandbox.run(tool, args, &dir).await?;
        Ok(wit::RunOutcome {
            status: outcome.status,
            stdout: outcome.stdout,
        })
    }

    async fn wat_to_wasm(&mut self, source: String, output: String) -> Result<(), String> {
        let sandbox = self.building("compiling WAT")?;
        let from = sandbox.resolve(&source)?;
        let to = sandbox.resolve(&output)?;
        if !to.starts_with(sandbox.out_dir()) {
            return Err(format!(
                "{output}: builders write only into the output directory"
            ));
        }
        let limit = sandbox.max_source_bytes;
        tokio::task::spawn_blocking(move || {
            let size = std::fs::metadata(&from)
                .map_err(|e| format!("{source}: {e}"))?
                .len();
            if size as usize > limit {
                return Err(format!("{source} is larger than {limit} bytes"));
            }
            let text = std::fs::read_to_string(&from).map_err(|e| format!("{source}: {e}"))?;
            let wasm = wat::parse_str(&text).map_err(|e| format!("{source}: {e}"))?;
            std::fs::write(&to, wasm).map_err(|e| format!("{output}: {e}"))
        })
        .await
        .map_err(|e| format!("compiling {e}"))?
    }

    async fn out_dir(&mut self) -> String {
        self.path_of(Sandbox::out_dir)
    }

    async fn wit_dir(&mut self) -> String {
        self.path_of(|s| s.kit.wit_dir())
    }

    async fn sdk_dir(&mut self) -> String {
        self.path_of(|s| s.kit.sdk_dir())
    }

    async fn log(&mut self, line: String) {
        if let Some(s) = &self.sandbox {
            s.log.line(line);
        }
    }
}
