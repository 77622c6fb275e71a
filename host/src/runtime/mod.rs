//! Runs components: one engine per node, one pre-instantiated component per deployed version,
//! and a fresh, limited instance per call.

mod cache;
mod engine;
mod functions;
mod invoke;
mod limits;
mod program;
mod state;
mod validate;

pub use engine::Allocator;
pub use invoke::{CallOutcome, HttpOutcome};
pub use limits::CallLimiter;
pub use program::{Entry, Program};
pub use state::{CallScope, HostState, arm_deadline, denied_wasi};
pub use validate::{DeployError, check_name};

use crate::config::Limits;
use anyhow::Context as _;
use std::path::Path;
use wasmtime::Engine;
use wasmtime::component::Linker;

/// The node's wasm runtime: engine, linker with everything the node offers, compiled-code cache.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    cache: cache::CompiledCache,
    limits: Limits,
    allocator: Allocator,
    _ticker: engine::EpochTicker,
}

impl Runtime {
    /// Builds the engine and the linker; compiled code is cached under `cache_dir`.
    pub fn new(limits: &Limits, cache_dir: &Path) -> anyhow::Result<Self> {
        // Without the per-function cache compilation is slower, never wrong.
        let functions = match functions::FunctionCache::open(&cache_dir.join("functions.redb")) {
            Ok(functions) => Some(std::sync::Arc::new(functions)),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "compiling without the per-function cache");
                None
            }
        };
        let (engine, allocator) = engine::build(limits, functions.as_ref())?;
        let linker = state::linker(&engine).context("linking the node's interfaces")?;
        let cache = cache::CompiledCache::open(cache_dir, &engine, functions)?;
        let ticker = engine::EpochTicker::start(&engine);
        Ok(Self {
            engine,
            linker,
            cache,
            limits: limits.clone(),
            allocator,
            _ticker: ticker,
        })
    }

    /// Which instance allocator the engine ended up with.
    pub fn allocator(&self) -> Allocator {
        self.allocator
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Validates and compiles a component (or loads its compiled code from the cache) and
    /// pre-instantiates it. Slow (compilation): call it off the async executor.
    pub fn prepare(&self, wasm: &[u8]) -> Result<Program, DeployError> {
        validate::check_binary(wasm, self.limits.max_component_bytes)?;
        let component = self.cache.load_or_compile(&self.engine, wasm)?;
        Program::new(&self.engine, &self.linker, component, wasm)
    }
}

/// A stable content hash, used to name components and their compiled code.
pub fn content_hash(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

impl Runtime {
    /// Validates and compiles a component (or loads its compiled code from the cache), for
    /// components that are not services (system components). Slow: see [`Runtime::prepare`].
    pub fn compile(&self, wasm: &[u8]) -> Result<wasmtime::component::Component, DeployError> {
        validate::check_binary(wasm, self.limits.max_component_bytes)?;
        self.cache.load_or_compile(&self.engine, wasm)
    }

    /// The engine every store of this node is made in.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}
