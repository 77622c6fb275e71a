//! The builder slot: the components that recognise source trees and build them (the
//! `builder-world` WIT world). The node embeds its defaults; any builder can be replaced by one
//! built from source while the node runs, and the next build uses it.

use crate::evolve::sandbox::Sandbox;
use anyhow::Context as _;
use micro_runtime::slot::{self, SlotState};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use wasmtime::Store;
use wasmtime::component::HasSelf;

/// Host bindings of the builder world.
#[allow(
    missing_docs,
    reason = "generated from the WIT, whose comments document it"
)]
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "builder-world",
        imports: { default: async },
        exports: { default: async },
    });
}

use bindings::exports::micro::network::builder::{Detection, Guest as BuilderExports, Plan};

use micro_embedded::DEFAULT_BUILDERS;

/// How long `info` and `detect` may run: they only look at a listing and a few files.
const DETECT_TIME: Duration = Duration::from_secs(10);

/// Slack between nested deadlines, so the innermost limit reports first.
const GRACE: Duration = Duration::from_millis(500);

/// Files a builder may read while detecting.
pub const MAX_DETECT_READS: usize = 32;

/// Which part of a build a builder is in: detection may only look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Asked whether it can build a tree.
    Detect,
    /// Asked to build one.
    Build,
}

/// What the toolchain interface works on while a builder runs: the build, if any.
pub struct BuildContext {
    /// The build the builder works on (none while asking for its info).
    pub sandbox: Option<Arc<Sandbox>>,
    /// Detecting or building.
    pub phase: Phase,
    /// Files read so far in this phase.
    pub reads: usize,
}

/// A store's data while a builder runs.
pub type BuilderState = SlotState<BuildContext>;

micro_runtime::slot_world!(
    bindings::BuilderWorld,
    bindings::BuilderWorldPre<BuilderState>,
    BuildContext
);

/// A loaded builder.
pub struct Builder {
    /// The builder's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// What it looks for in a tree (its `info`).
    pub looks_for: String,
    /// Where it came from: "embedded", or the source it was built from.
    pub origin: String,
    /// Content hash of its component.
    pub component: String,
    code: slot::Component<BuildContext, bindings::BuilderWorld>,
}

/// Why a builder call failed.
#[derive(Debug, thiserror::Error)]
pub enum BuilderError {
    #[error("builder {builder} failed: {message}")]
    /// The builder trapped or failed to answer.
    Trapped {
        /// The builder.
        builder: String,
        /// The trap.
        message: String,
    },
}

impl Builder {
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
        // No files, no sockets, no environment: a builder sees the tree only through the
        // toolchain.
        let context = BuildContext {
            sandbox,
            phase,
            reads: 0,
        };
        // A little past the deadline: the epoch stops a builder looping in wasm at the
        // deadline itself; the grace only catches a call stuck outside wasm.
        self.code
            .ask_fresh(context, deadline, GRACE, what, async |world, store| {
                call(world.micro_network_builder(), store).await
            })
            .await
            .map_err(|e| BuilderError::Trapped {
                builder: self.name.clone(),
                message: e.to_string(),
            })
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
    host: slot::Host<BuildContext>,
}

impl Builders {
    /// Loads the embedded default builders.
    pub async fn with_defaults(runtime: &crate::host_state::Runtime) -> anyhow::Result<Self> {
        let host = slot::Host::new(
            runtime,
            "a builder component",
            "only WASI and micro:network/toolchain",
            "micro:network/builder",
            |linker| {
                bindings::micro::network::toolchain::add_to_linker::<_, HasSelf<BuildContext>>(
                    linker,
                    |s: &mut BuilderState| &mut s.data,
                )
            },
        )?;
        let builders = Self {
            slots: RwLock::default(),
            host,
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
        runtime: &crate::host_state::Runtime,
        wasm: &[u8],
        origin: &str,
    ) -> anyhow::Result<Builder> {
        let code = self.host.load(runtime, wasm)?;
        // Named by its origin until it says its name.
        let mut builder = Builder {
            name: origin.to_string(),
            version: String::new(),
            looks_for: String::new(),
            origin: origin.to_string(),
            component: code.hash.clone(),
            code,
        };
        let deadline = Instant::now() + DETECT_TIME;
        let info = builder
            .call(None, Phase::Detect, deadline, "info", async |b, store| {
                b.call_info(store).await
            })
            .await?;
        micro_base::names::check_name(&info.name)
            .map_err(|e| anyhow::anyhow!("builder name: {e}"))?;
        builder.name = info.name;
        builder.version = info.version;
        builder.looks_for = info.looks_for;
        Ok(builder)
    }

    /// The builders in use, in the order they are asked.
    pub fn list(&self) -> Vec<Arc<Builder>> {
        micro_base::sync::read(&self.slots).clone()
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
        micro_base::sync::write(&self.slots)
    }
}
