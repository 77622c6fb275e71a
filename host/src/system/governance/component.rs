//! The governance component itself: its store, its live instance, loading it and asking it
//! one question within [`DECIDE_TIME`].

use super::bindings;
use crate::runtime::CallLimiter;
use std::time::Duration;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// How long one question may take: decisions are meant to take microseconds; this only stops
/// a governance that loops.
const DECIDE_TIME: Duration = Duration::from_millis(100);

/// A store's data while governance runs: no files, no sockets, no environment.
pub struct GovernanceState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: CallLimiter,
}

impl crate::system::instance::Limited for GovernanceState {
    fn limiter(&mut self) -> &mut CallLimiter {
        &mut self.limiter
    }
}

impl WasiView for GovernanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A loaded governance component with its live instance.
pub struct Loaded {
    pub name: String,
    pub version: String,
    /// "embedded", or the source it was built from.
    pub origin: String,
    /// Content hash of its component.
    pub component: String,
    /// Bumped on every swap: cached answers of an older generation are not used.
    pub generation: u64,
    pre: bindings::GovernanceWorldPre<GovernanceState>,
    engine: Engine,
    memory_mib: u64,
    /// The instance, made again after a trap.
    live: crate::system::instance::Live<GovernanceState, bindings::GovernanceWorld>,
}

impl Loaded {
    /// "name version", as logs and errors say it.
    pub fn label(&self) -> String {
        format!("{} {}", self.name, self.version)
    }

    /// Asks one question of the live instance (instantiating it first if needed) within
    /// [`DECIDE_TIME`]; a trap or overrun drops the instance and answers why.
    pub(super) async fn ask<T>(
        &self,
        what: &str,
        question: impl AsyncFnOnce(
            &bindings::exports::micro::network::governance::Guest,
            &mut Store<GovernanceState>,
        ) -> wasmtime::Result<T>,
    ) -> Result<T, String> {
        self.live
            .ask(
                what,
                DECIDE_TIME,
                async |deadline| {
                    let state = GovernanceState {
                        wasi: crate::runtime::denied_wasi(),
                        table: ResourceTable::new(),
                        limiter: CallLimiter::new(self.memory_mib),
                    };
                    let mut store = crate::system::instance::store(&self.engine, state, deadline);
                    let world = self.pre.instantiate_async(&mut store).await?;
                    Ok((store, world))
                },
                async |world, store| question(world.micro_network_governance(), store).await,
            )
            .await
    }
}

pub(super) async fn load_with(
    linker: &Linker<GovernanceState>,
    engine: &Engine,
    memory_mib: u64,
    runtime: &crate::runtime::Runtime,
    wasm: &[u8],
    origin: &str,
    generation: u64,
) -> anyhow::Result<Loaded> {
    let component = runtime.compile(wasm).map_err(|e| anyhow::anyhow!("{e}"))?;
    let instance_pre = linker.instantiate_pre(&component).map_err(|e| {
        anyhow::anyhow!("not a governance component (it must import only WASI): {e:#}")
    })?;
    let pre = bindings::GovernanceWorldPre::new(instance_pre).map_err(|e| {
        anyhow::anyhow!(
            "not a governance component (it must export micro:network/governance): {e:#}"
        )
    })?;
    let mut loaded = Loaded {
        name: origin.to_string(),
        version: String::new(),
        origin: origin.to_string(),
        component: crate::runtime::content_hash(wasm),
        generation,
        pre,
        engine: engine.clone(),
        memory_mib,
        live: crate::system::instance::Live::default(),
    };
    let info = loaded
        .ask("info", async |g, store| g.call_info(store).await)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    loaded.name = info.name;
    loaded.version = info.version;
    Ok(loaded)
}
