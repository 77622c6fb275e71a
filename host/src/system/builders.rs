//! The builder slot: the components that recognise source trees and build them (the
//! `builder-world` WIT world). The node embeds its defaults; any builder can be replaced by one
//! built from source while the node runs, and the next build uses it.

use crate::evolve::sandbox::Sandbox;
use crate::runtime::CallLimiter;
use anyhow::Context as _;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Host bindings of the builder world.
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "builder-world",
        imports: { default: async },
        exports: { default: async },
    });
}

use bindings::exports::micro::network::builder::{Detection, Guest as BuilderExports, Plan};

include!(concat!(env!("OUT_DIR"), "/builders.rs"));

/// How long `info` and `detect` may run: they only look at a listing and a few files.
const DETECT_TIME: Duration = Duration::from_secs(10);

/// Slack between nested deadlines, so the innermost limit reports first.
const GRACE: Duration = Duration::from_millis(500);

/// Files a builder may read while detecting.
pub const MAX_DETECT_READS: usize = 32;

/// Which part of a build a builder is in: detection may only look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Detect,
    Build,
}

/// A store's data while a builder runs.
pub struct BuilderState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: CallLimiter,
    /// The build the builder works on (none while asking for its info).
    pub sandbox: Option<Arc<Sandbox>>,
    pub phase: Phase,
    /// Files read so far in this phase.
    pub reads: usize,
}

impl WasiView for BuilderState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A loaded builder.
pub struct Builder {
    pub name: String,
    pub version: String,
    pub looks_for: String,
    /// Where it came from: "embedded", or the source it was built from.
    pub origin: String,
    /// Content hash of its component.
    pub component: String,
    pre: bindings::BuilderWorldPre<BuilderState>,
    engine: Engine,
    memory_mib: u64,
}

/// Why a builder call failed.
#[derive(Debug, thiserror::Error)]
pub enum BuilderError {
    #[error("builder {builder} failed: {message}")]
    Trapped { builder: String, message: String },
}

impl Builder {
    fn store(
        &self,
        sandbox: Option<Arc<Sandbox>>,
        phase: Phase,
        deadline: Instant,
    ) -> Store<BuilderState> {
        // No files, no sockets, no environment: a builder sees the tree only through the
        // toolchain.
        let state = BuilderState {
            wasi: crate::runtime::denied_wasi(),
            table: ResourceTable::new(),
            limiter: CallLimiter::new(self.memory_mib),
            sandbox,
            phase,
            reads: 0,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        crate::runtime::arm_deadline(&mut store, deadline);
        store
    }

    /// Instantiates the builder in a fresh store and makes one call of it (`what`, for errors)
    /// until `deadline`: a builder that traps, loops or overruns fails with a clear error.
    async fn call<T>(
        &self,
        sandbox: Option<Arc<Sandbox>>,
        phase: Phase,
        deadline: Instant,
        what: &str,
        call: impl AsyncFnOnce(&BuilderExports, &mut Store<BuilderState>) -> wasmtime::Result<T>,
    ) -> Result<T, BuilderError> {
        let mut store = self.store(sandbox, phase, deadline);
        let run = async {
            let world = self.pre.instantiate_async(&mut store).await?;
            call(world.micro_network_builder(), &mut store).await
        };
        let trapped = |message: String| BuilderError::Trapped {
            builder: self.name.clone(),
            message,
        };
        // A little past the deadline: the epoch stops a builder looping in wasm at the
        // deadline itself; this timer only catches a call stuck outside wasm.
        tokio::time::timeout_at((deadline + GRACE).into(), run)
            .await
            .map_err(|_| trapped(format!("{what} ran past its time limit and was stopped")))?
            .map_err(|e| trapped(super::describe_trap(&e, what)))
    }

    /// Asks the builder whether it recognises the tree of `sandbox`.
    pub async fn detect(
        &self,
        sandbox: Arc<Sandbox>,
        files: &[String],
    ) -> Result<Detection, BuilderError> {
        let deadline = Instant::now() + DETECT_TIME;
        self.call(
            Some(sandbox),
            Phase::Detect,
            deadline,
            "detect",
            async |b, store| b.call_detect(store, files).await,
        )
        .await
    }

    /// Builds the tree by `plan`; the component's path as the builder answered it.
    pub async fn build(
        &self,
        sandbox: Arc<Sandbox>,
        plan: &Plan,
    ) -> Result<Result<String, String>, BuilderError> {
        // The tools the builder runs stop at the build's deadline with their own error; the
        // builder gets a moment past it to hand that error back.
        let deadline = sandbox.deadline + GRACE;
        self.call(
            Some(sandbox),
            Phase::Build,
            deadline,
            "build",
            async |b, store| b.call_build(store, plan).await,
        )
        .await
    }
}

/// The node's builders, in the order they are asked.
pub struct Builders {
    slots: RwLock<Vec<Arc<Builder>>>,
    linker: Linker<BuilderState>,
    engine: Engine,
    memory_mib: u64,
}

impl Builders {
    /// Loads the embedded default builders.
    pub async fn with_defaults(runtime: &crate::runtime::Runtime) -> anyhow::Result<Self> {
        let engine = runtime.engine().clone();
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        bindings::micro::network::toolchain::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
        let builders = Self {
            slots: RwLock::default(),
            linker,
            engine,
            memory_mib: runtime.limits().memory_mib,
        };
        for (name, wasm) in DEFAULT_BUILDERS {
            let builder = builders
                .load(runtime, wasm, "embedded")
                .await
                .with_context(|| format!("loading the embedded {name} builder"))?;
            builders.write().push(Arc::new(builder));
        }
        Ok(builders)
    }

    /// Compiles and checks a builder component and asks it who it is.
    pub async fn load(
        &self,
        runtime: &crate::runtime::Runtime,
        wasm: &[u8],
        origin: &str,
    ) -> anyhow::Result<Builder> {
        let component = runtime.compile(wasm).map_err(|e| anyhow::anyhow!("{e}"))?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| anyhow::anyhow!("not a builder component (it must import only WASI and micro:network/toolchain): {e:#}"))?;
        let pre = bindings::BuilderWorldPre::new(instance_pre).map_err(|e| {
            anyhow::anyhow!("not a builder component (it must export micro:network/builder): {e:#}")
        })?;
        // Named by its origin until it says its name.
        let mut builder = Builder {
            name: origin.to_string(),
            version: String::new(),
            looks_for: String::new(),
            origin: origin.to_string(),
            component: crate::runtime::content_hash(wasm),
            pre,
            engine: self.engine.clone(),
            memory_mib: self.memory_mib,
        };
        let deadline = Instant::now() + DETECT_TIME;
        let info = builder
            .call(None, Phase::Detect, deadline, "info", async |b, store| {
                b.call_info(store).await
            })
            .await?;
        crate::runtime::check_name(&info.name).map_err(|e| anyhow::anyhow!("builder name: {e}"))?;
        builder.name = info.name;
        builder.version = info.version;
        builder.looks_for = info.looks_for;
        Ok(builder)
    }

    /// The builders in use, in the order they are asked.
    pub fn list(&self) -> Vec<Arc<Builder>> {
        self.slots.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts `builder` in the slot of the builder with its name (or adds it) and answers it.
    /// Builds already running finish with the builder they started with.
    pub fn replace(&self, builder: Builder) -> Arc<Builder> {
        let mut slots = self.write();
        let builder = Arc::new(builder);
        match slots.iter_mut().find(|b| b.name == builder.name) {
            Some(slot) => *slot = builder.clone(),
            None => slots.push(builder.clone()),
        }
        builder
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Arc<Builder>>> {
        self.slots.write().unwrap_or_else(|p| p.into_inner())
    }
}
