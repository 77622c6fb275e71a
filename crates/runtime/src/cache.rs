//! Compiled code cached on disk by content hash, so a restarted node does not recompile.
//!
//! The key covers the component's bytes and the engine's compatibility hash (wasmtime version
//! and every setting that affects code), so a changed engine never loads stale code.

use super::functions::FunctionCache;
use super::validate::DeployError;
use anyhow::Context as _;
use micro_base::names::content_hash;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasmtime::Engine;
use wasmtime::component::Component;

/// A directory of `.cwasm` files named by content and engine.
pub struct CompiledCache {
    dir: PathBuf,
    engine_key: String,
    /// The engine's per-function cache, saved after each compilation.
    functions: Option<Arc<FunctionCache>>,
}

impl CompiledCache {
    /// Opens (creating) the cache directory.
    pub fn open(
        dir: &Path,
        engine: &Engine,
        functions: Option<Arc<FunctionCache>>,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the compiled-code cache {}", dir.display()))?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir: dir.to_owned(),
            engine_key: format!("{:016x}", hasher.finish()),
            functions,
        })
    }

    /// The compiled component for `wasm`, from the cache when it is there.
    pub fn load_or_compile(&self, engine: &Engine, wasm: &[u8]) -> Result<Component, DeployError> {
        let path = self
            .dir
            .join(format!("{}-{}.cwasm", content_hash(wasm), self.engine_key));
        if path.exists() {
            // SAFETY: the file was written by `Component::serialize` of an engine with the same
            // compatibility hash, into the node's own data directory; wasmtime checks its header.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok(component),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "discarding unusable compiled code")
                }
            }
        }
        let component = Component::new(engine, wasm);
        if let Some(functions) = &self.functions {
            functions.flush();
        }
        let component = component.map_err(|e| DeployError::Invalid(format!("{e:#}")))?;
        if let Err(e) = self.store(&path, &component) {
            tracing::warn!(path = %path.display(), error = %e, "could not cache compiled code");
        }
        Ok(component)
    }

    fn store(&self, path: &Path, component: &Component) -> anyhow::Result<()> {
        let bytes = component.serialize()?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
        Ok(())
    }
}
