//! The ledger component itself: the store it runs in (no files, no sockets; the node's key
//! through `identity`, its own storage namespace) and one loaded component with its live
//! instance. Swapping the ledger replaces a [`Loaded`].

use super::bindings;
use crate::identity::Identity;
use crate::runtime::CallLimiter;
use crate::storage::{Namespaced, Storage};
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The ledger's storage namespace (a service name cannot contain '/').
const NAMESPACE: &str = "system/ledger";
/// How long one question may take. A ledger's questions write durably (a price, a receipt, a
/// checkpoint: an fsync each, queued behind the node's other writers), which a loaded machine
/// has held past 100 ms; the limit is there to stop a runaway component, and an overrun drops
/// the instance with the charges it held since its last checkpoint.
const ASK_TIME: Duration = Duration::from_secs(1);

/// A store's data while the ledger runs.
pub struct LedgerState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: CallLimiter,
    identity: Identity,
    storage: Storage,
}

impl crate::system::instance::Limited for LedgerState {
    fn limiter(&mut self) -> &mut CallLimiter {
        &mut self.limiter
    }
}

impl WasiView for LedgerState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl Namespaced for LedgerState {
    fn storage(&self) -> (&Storage, &str) {
        (&self.storage, NAMESPACE)
    }
}

crate::namespaced_storage!(LedgerState);

impl bindings::micro::network::identity::Host for LedgerState {
    async fn node_id(&mut self) -> String {
        self.identity.public().to_string()
    }

    async fn sign(&mut self, message: Vec<u8>) -> Vec<u8> {
        self.identity.sign(&message).to_vec()
    }

    async fn verify(&mut self, node: String, message: Vec<u8>, signature: Vec<u8>) -> bool {
        let (Ok(key), Ok(signature)) = (
            crate::identity::parse_node_id(&node),
            <[u8; 64]>::try_from(signature.as_slice()),
        ) else {
            return false;
        };
        crate::identity::verify(&key, &message, &signature).is_ok()
    }
}

/// What every ledger component of this node runs with.
pub struct Host {
    linker: Linker<LedgerState>,
    engine: Engine,
    memory_mib: u64,
    identity: Identity,
    storage: Storage,
}

impl Host {
    pub fn new(
        runtime: &crate::runtime::Runtime,
        identity: Identity,
        storage: Storage,
    ) -> anyhow::Result<Self> {
        let engine = runtime.engine().clone();
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        bindings::LedgerWorld::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
        Ok(Self {
            linker,
            engine,
            memory_mib: runtime.limits().memory_mib,
            identity,
            storage,
        })
    }

    /// Compiles and checks a ledger component and asks it who it is (not yet in use).
    pub async fn load(
        &self,
        runtime: &crate::runtime::Runtime,
        wasm: &[u8],
        origin: &str,
    ) -> anyhow::Result<Loaded> {
        let component = runtime.compile(wasm).map_err(|e| anyhow::anyhow!("{e}"))?;
        let instance_pre = self.linker.instantiate_pre(&component).map_err(|e| {
            anyhow::anyhow!(
                "not a ledger component (it may import only WASI, identity and storage): {e:#}"
            )
        })?;
        let pre = bindings::LedgerWorldPre::new(instance_pre).map_err(|e| {
            anyhow::anyhow!("not a ledger component (it must export micro:network/ledger): {e:#}")
        })?;
        let mut loaded = Loaded {
            name: String::new(),
            version: String::new(),
            origin: origin.to_string(),
            component: crate::runtime::content_hash(wasm),
            local_free: false,
            pre,
            engine: self.engine.clone(),
            memory_mib: self.memory_mib,
            identity: self.identity.clone(),
            storage: self.storage.clone(),
            live: crate::system::instance::Live::default(),
        };
        let info = loaded
            .ask("info", async |l, store| l.call_info(store).await)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        loaded.name = info.name;
        loaded.version = info.version;
        loaded.local_free = info.local_free;
        Ok(loaded)
    }
}

/// One ledger component, ready to be asked.
pub struct Loaded {
    pub name: String,
    pub version: String,
    /// "embedded", or the source it was built from.
    pub origin: String,
    /// Content hash of its component.
    pub component: String,
    /// It never charges the node's own calls, so they are not asked about.
    pub local_free: bool,
    pre: bindings::LedgerWorldPre<LedgerState>,
    engine: Engine,
    memory_mib: u64,
    identity: Identity,
    storage: Storage,
    live: crate::system::instance::Live<LedgerState, bindings::LedgerWorld>,
}

impl Loaded {
    /// "name version".
    pub fn label(&self) -> String {
        format!("{} {}", self.name, self.version)
    }

    /// Asks one question of the live instance within [`ASK_TIME`]; a trap or an overrun drops
    /// the instance and answers why.
    pub async fn ask<T>(
        &self,
        what: &str,
        question: impl AsyncFnOnce(
            &bindings::exports::micro::network::ledger::Guest,
            &mut Store<LedgerState>,
        ) -> wasmtime::Result<T>,
    ) -> Result<T, String> {
        self.live
            .ask(
                what,
                ASK_TIME,
                async |deadline| {
                    let state = LedgerState {
                        wasi: crate::runtime::denied_wasi(),
                        table: ResourceTable::new(),
                        limiter: CallLimiter::new(self.memory_mib),
                        identity: self.identity.clone(),
                        storage: self.storage.clone(),
                    };
                    let mut store = crate::system::instance::store(&self.engine, state, deadline);
                    let world = self.pre.instantiate_async(&mut store).await?;
                    Ok((store, world))
                },
                async |world, store| question(world.micro_network_ledger(), store).await,
            )
            .await
    }
}
