//! The one host of system components (governance, the ledger, the builders): a store with WASI
//! denied, a memory limit and the slot's own data; a component checked against its world; and
//! either a fresh instance per question (builders) or one live instance kept between questions
//! so a policy may keep state (governance, the ledger), asked one question at a time within a
//! deadline. A trap or an overrun drops a live instance (it cannot be entered again) and
//! answers why; the next question makes a fresh one.

use crate::{CallLimiter, Runtime, arm_deadline, denied_wasi};
use std::time::{Duration, Instant};
use wasmtime::component::{InstancePre, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Why a system component did not answer a question (`what`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    /// It ran past its time: the epoch interrupted it, or it was stuck outside wasm.
    #[error("{what} ran past its time limit and was stopped")]
    TimedOut {
        /// The question.
        what: String,
    },
    /// It trapped.
    #[error("{what} trapped: {trap}")]
    Trapped {
        /// The question.
        what: String,
        /// The trap.
        trap: String,
    },
    /// It could not be instantiated or called (an import failed, say).
    #[error("{what}: {message}")]
    Failed {
        /// The question.
        what: String,
        /// What went wrong.
        message: String,
    },
}

/// Slack past the deadline for a question stuck outside wasm.
const GRACE: Duration = Duration::from_millis(100);

/// What a system component's store holds: WASI with every capability denied, its resources,
/// its memory limit, and what the slot's own interfaces work on (`data`).
pub struct SlotState<D> {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: CallLimiter,
    /// The slot's own state: the ledger's key and storage, a build's sandbox, nothing.
    pub data: D,
}

impl<D> SlotState<D> {
    fn new(data: D, memory_mib: u64) -> Self {
        Self {
            wasi: denied_wasi(),
            table: ResourceTable::new(),
            limiter: CallLimiter::new(memory_mib),
            data,
        }
    }
}

impl<D: Send + 'static> WasiView for SlotState<D> {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A world a system component is built against, as wasmtime's bindgen generates it: its
/// pre-instantiated form and how to instantiate it.
pub trait World<D: Send + 'static>: Sized + Send + 'static {
    /// The world's pre-instance (bindgen's `<World>Pre`).
    type Pre: Send + Sync + 'static;

    /// Checks a linked component's exports against the world.
    fn pre(instance: InstancePre<SlotState<D>>) -> wasmtime::Result<Self::Pre>;

    /// A fresh instance in `store`.
    fn instantiate(
        pre: &Self::Pre,
        store: &mut Store<SlotState<D>>,
    ) -> impl Future<Output = wasmtime::Result<Self>> + Send;
}

/// Implements [`World`] for a world bindgen generated: `slot_world!(World, WorldPre<State>, Data)`.
#[macro_export]
macro_rules! slot_world {
    ($world:ty, $pre:ty, $data:ty) => {
        impl $crate::slot::World<$data> for $world {
            type Pre = $pre;

            fn pre(
                instance: ::wasmtime::component::InstancePre<$crate::slot::SlotState<$data>>,
            ) -> ::wasmtime::Result<Self::Pre> {
                <$pre>::new(instance)
            }

            async fn instantiate(
                pre: &Self::Pre,
                store: &mut ::wasmtime::Store<$crate::slot::SlotState<$data>>,
            ) -> ::wasmtime::Result<Self> {
                pre.instantiate_async(store).await
            }
        }
    };
}

/// What every component of one slot runs with: the linker (WASI and the slot's interfaces),
/// the engine and the memory limit.
pub struct Host<D: 'static> {
    linker: Linker<SlotState<D>>,
    engine: Engine,
    memory_mib: u64,
    /// What a component of this slot is, for errors ("a ledger component").
    kind: &'static str,
    /// What it may import and must export, for the errors that say it does not.
    imports: &'static str,
    exports: &'static str,
}

impl<D: Send + 'static> Host<D> {
    /// A host for components of one slot in `runtime`'s engine; `link` adds the slot's own
    /// interfaces after WASI. `kind`, `imports` and `exports` word the errors of a component
    /// that does not fit ("a ledger component", "only WASI, identity and storage",
    /// "micro:network/ledger").
    pub fn new<T>(
        runtime: &Runtime<T>,
        kind: &'static str,
        imports: &'static str,
        exports: &'static str,
        link: impl FnOnce(&mut Linker<SlotState<D>>) -> wasmtime::Result<()>,
    ) -> anyhow::Result<Self> {
        let engine = runtime.engine().clone();
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
        link(&mut linker).map_err(anyhow::Error::from)?;
        Ok(Self {
            linker,
            engine,
            memory_mib: runtime.limits().memory_mib,
            kind,
            imports,
            exports,
        })
    }

    /// Compiles `wasm` (or loads its compiled code) and checks it against world `W`.
    pub fn load<T, W: World<D>>(
        &self,
        runtime: &Runtime<T>,
        wasm: &[u8],
    ) -> anyhow::Result<Component<D, W>> {
        let component = runtime.compile(wasm).map_err(|e| anyhow::anyhow!("{e}"))?;
        let instance = self.linker.instantiate_pre(&component).map_err(|e| {
            anyhow::anyhow!("not {} (it may import {}): {e:#}", self.kind, self.imports)
        })?;
        let pre = W::pre(instance).map_err(|e| {
            anyhow::anyhow!("not {} (it must export {}): {e:#}", self.kind, self.exports)
        })?;
        Ok(Component {
            hash: micro_base::names::content_hash(wasm),
            pre,
            engine: self.engine.clone(),
            memory_mib: self.memory_mib,
            ticker: runtime.ticker(),
        })
    }
}

/// A system component checked against its world, ready to be instantiated.
pub struct Component<D: Send + 'static, W: World<D>> {
    /// The content hash of its bytes.
    pub hash: String,
    pre: W::Pre,
    engine: Engine,
    memory_mib: u64,
    /// Held while an instance of it runs, so the epoch advances.
    ticker: crate::Ticker,
}

impl<D: Send + 'static, W: World<D>> Component<D, W> {
    /// A fresh instance in a fresh store holding `data`, its memory limited and its
    /// deadline armed.
    pub async fn instantiate(
        &self,
        data: D,
        deadline: Instant,
    ) -> wasmtime::Result<(Store<SlotState<D>>, W)> {
        let mut store = Store::new(&self.engine, SlotState::new(data, self.memory_mib));
        store.limiter(|s| &mut s.limiter);
        arm_deadline(&mut store, deadline);
        let world = W::instantiate(&self.pre, &mut store).await?;
        Ok((store, world))
    }

    /// Asks one question (`what`, for errors) of a fresh instance holding `data`, until
    /// `deadline` (`grace` past it for a question stuck outside wasm).
    pub async fn ask_fresh<A>(
        &self,
        data: D,
        deadline: Instant,
        grace: Duration,
        what: &str,
        question: impl AsyncFnOnce(&W, &mut Store<SlotState<D>>) -> wasmtime::Result<A>,
    ) -> Result<A, SlotError> {
        let _running = self.ticker.running();
        let run = async {
            let (mut store, world) = self.instantiate(data, deadline).await?;
            question(&world, &mut store).await
        };
        within(deadline + grace, what, run).await
    }
}

/// Runs `run` until `until`: its answer, or why there is none.
async fn within<A>(
    until: Instant,
    what: &str,
    run: impl Future<Output = wasmtime::Result<A>>,
) -> Result<A, SlotError> {
    match tokio::time::timeout_at(until.into(), run).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(SlotError::of(&e, what)),
        Err(_) => Err(SlotError::TimedOut { what: what.into() }),
    }
}

impl SlotError {
    /// Why a system component's call of `what` failed: a trap, its time running out, or
    /// another error.
    pub fn of(e: &wasmtime::Error, what: &str) -> Self {
        let what = what.to_string();
        match e.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) => Self::TimedOut { what },
            Some(trap) => Self::Trapped {
                what,
                trap: trap.to_string(),
            },
            None => Self::Failed {
                what,
                message: format!("{e:#}"),
            },
        }
    }
}

/// A system component's live instance, made on first use.
pub struct Live<D: 'static, W> {
    slot: tokio::sync::Mutex<Option<(Store<SlotState<D>>, W)>>,
}

impl<D: 'static, W> Default for Live<D, W> {
    fn default() -> Self {
        Self {
            slot: tokio::sync::Mutex::new(None),
        }
    }
}

impl<D: Send + 'static, W: World<D>> Live<D, W> {
    /// Asks `question` of the instance (made from `component` with `data()` first if there is
    /// none) within `time` from when it is its turn; `what` names the question in errors.
    pub async fn ask<A>(
        &self,
        component: &Component<D, W>,
        data: impl FnOnce() -> D,
        what: &str,
        time: Duration,
        question: impl AsyncFnOnce(&W, &mut Store<SlotState<D>>) -> wasmtime::Result<A>,
    ) -> Result<A, SlotError> {
        let mut live = self.slot.lock().await;
        // The question's time starts when it is its turn: waiting behind other questions is
        // not the component's time.
        let deadline = Instant::now() + time;
        let _running = component.ticker.running();
        let run = async {
            if live.is_none() {
                *live = Some(component.instantiate(data(), deadline).await?);
            }
            let Some((store, world)) = live.as_mut() else {
                return Err(wasmtime::format_err!(
                    "{what}: no instance after making one"
                ));
            };
            arm_deadline(store, deadline);
            question(world, store).await
        };
        let outcome = within(deadline + GRACE, what, run).await;
        if outcome.is_err() {
            *live = None;
        }
        outcome
    }
}
