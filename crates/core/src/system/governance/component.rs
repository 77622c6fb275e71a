//! The governance component itself, on the node's one host of system components: its live
//! instance, loading it and asking it one question within [`DECIDE_TIME`].

use super::bindings;
use micro_runtime::slot::{self, SlotState};
use std::time::Duration;
use wasmtime::Store;

/// How long one question may take: decisions are meant to take microseconds; this only stops
/// a governance that loops.
const DECIDE_TIME: Duration = Duration::from_millis(100);

/// A store's data while governance runs: no files, no sockets, no environment, nothing of
/// its own.
pub type GovernanceState = SlotState<()>;

/// What every governance component runs with: WASI (all denied) and nothing else.
pub type Host = slot::Host<()>;

micro_runtime::slot_world!(
    bindings::GovernanceWorld,
    bindings::GovernanceWorldPre<GovernanceState>,
    ()
);

/// The host of governance components in `runtime`.
pub fn host(runtime: &crate::host_state::Runtime) -> anyhow::Result<Host> {
    slot::Host::new(
        runtime,
        "a governance component",
        "only WASI",
        "micro:network/governance",
        |_| Ok(()),
    )
}

/// A loaded governance component with its live instance.
pub struct Loaded {
    /// What it calls itself.
    pub name: String,
    /// Its version, as it says.
    pub version: String,
    /// "embedded", or the source it was built from.
    pub origin: String,
    /// Content hash of its component.
    pub component: String,
    /// Bumped on every swap: cached answers of an older generation are not used.
    pub generation: u64,
    code: slot::Component<(), bindings::GovernanceWorld>,
    /// The instance, made again after a trap.
    live: slot::Live<(), bindings::GovernanceWorld>,
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
    ) -> Result<T, micro_runtime::slot::SlotError> {
        self.live
            .ask(
                &self.code,
                || (),
                what,
                DECIDE_TIME,
                async |world, store| question(world.micro_network_governance(), store).await,
            )
            .await
    }
}

/// Compiles and checks a governance component and asks it who it is.
pub(super) async fn load_with(
    host: &Host,
    runtime: &crate::host_state::Runtime,
    wasm: &[u8],
    origin: &str,
    generation: u64,
) -> anyhow::Result<Loaded> {
    let code = host.load(runtime, wasm)?;
    let mut loaded = Loaded {
        name: origin.to_string(),
        version: String::new(),
        origin: origin.to_string(),
        component: code.hash.clone(),
        generation,
        code,
        live: slot::Live::default(),
    };
    let info = loaded
        .ask("info", async |g, store| g.call_info(store).await)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    loaded.name = info.name;
    loaded.version = info.version;
    Ok(loaded)
}
