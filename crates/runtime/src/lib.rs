//! Runs components: one engine per node, one pre-instantiated component per deployed version,
//! and a fresh, limited instance per call. Nothing here knows what a node is: the store's data
//! is the embedder's type (`T`), which says only which call it serves ([`CallData`]); the
//! embedder links the interfaces it offers into the runtime's linker.

mod cache;
mod call;
mod engine;
mod functions;
mod invoke;
mod limits;
mod program;
pub mod slot;
mod validate;
pub mod wit;

pub use call::{CallData, CallScope, OutgoingHttp, arm_deadline, denied_wasi};
pub use engine::{Allocator, Running, Ticker};
pub use invoke::{CallOutcome, HttpOutcome, HttpResponse};
pub use limits::{CallLimiter, MemoryLimitExceeded};
pub use program::{Entry, Program};
pub use validate::DeployError;

use anyhow::Context as _;
use micro_base::config::Limits;
use std::path::Path;
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

/// The node's wasm runtime: engine, linker with everything the node offers, compiled-code cache.
pub struct Runtime<T: 'static> {
    engine: Engine,
    linker: Linker<T>,
    cache: cache::CompiledCache,
    limits: Limits,
    allocator: Allocator,
    ticker: engine::EpochTicker,
}

impl<T: CallData> Runtime<T> {
    /// Builds the engine and the linker (WASI 0.2 and wasi:http, then what `link` adds);
    /// compiled code is cached under `cache_dir`.
    pub fn new(
        limits: &Limits,
        cache_dir: &Path,
        link: impl FnOnce(&mut Linker<T>) -> anyhow::Result<()>,
    ) -> anyhow::Result<Self> {
        // Without the per-function cache compilation is slower, never wrong.
        let functions = match functions::FunctionCache::open(&cache_dir.join("functions.redb")) {
            Ok(functions) => Some(std::sync::Arc::new(functions)),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "compiling without the per-function cache");
                None
            }
        };
        let (engine, allocator) = engine::build(limits, functions.as_ref())?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(anyhow::Error::from)
            .context("linking WASI")?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(anyhow::Error::from)
            .context("linking wasi:http")?;
        link(&mut linker).context("linking the node's interfaces")?;
        let cache = cache::CompiledCache::open(cache_dir, &engine, functions)?;
        let ticker = engine::EpochTicker::start(&engine);
        Ok(Self {
            engine,
            linker,
            cache,
            limits: limits.clone(),
            allocator,
            ticker,
        })
    }

    /// Validates and compiles a component (or loads its compiled code from the cache) and
    /// pre-instantiates it. Slow (compilation): call it off the async executor.
    pub fn prepare(&self, wasm: &[u8]) -> Result<Program<T>, DeployError> {
        let component = self.compile(wasm)?;
        Program::new(
            &self.engine,
            &self.linker,
            component,
            wasm,
            self.limits.call_timeout_ms,
            self.ticker.handle(),
        )
    }
}

impl<T: 'static> Runtime<T> {
    /// Which instance allocator the engine ended up with.
    pub fn allocator(&self) -> Allocator {
        self.allocator
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Validates and compiles a component (or loads its compiled code from the cache), for
    /// components that are not services (system components). Slow: see [`Runtime::prepare`].
    pub fn compile(&self, wasm: &[u8]) -> Result<Component, DeployError> {
        validate::check_binary(wasm, self.limits.max_component_bytes)?;
        self.cache.load_or_compile(&self.engine, wasm)
    }

    /// The engine every store of this node is made in.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The epoch ticker: guest code runs while a [`Running`] from it is held.
    pub fn ticker(&self) -> Ticker {
        self.ticker.handle()
    }
}
