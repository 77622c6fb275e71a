//! The ledger component itself, on the node's one host of system components: the store it
//! runs in (no files, no sockets; the node's key through `identity`, its own storage
//! namespace) and one loaded component with its live instance. Swapping the ledger replaces a
//! [`Loaded`].

use super::bindings;
use micro_base::identity::Identity;
use micro_runtime::slot::{self, SlotState};
use micro_services::storage::{HasNamespace, Namespace, Storage};
use std::time::Duration;
use wasmtime::Store;
use wasmtime::component::HasSelf;

/// The ledger's storage namespace (a service name cannot contain '/').
const NAMESPACE: &str = "system/ledger";
/// How long one question may take. A ledger's questions write durably (a price, a receipt, a
/// checkpoint: an fsync each, queued behind the node's other writers), which a loaded machine
/// has held past 100 ms; the limit is there to stop a runaway component, and an overrun drops
/// the instance with the charges it held since its last checkpoint.
const ASK_TIME: Duration = Duration::from_secs(1);

/// What the ledger's own interfaces work on: the node's key and the ledger's storage.
#[derive(Clone)]
pub struct LedgerData {
    identity: Identity,
    storage: Storage,
}

/// A store's data while the ledger runs.
pub type LedgerState = SlotState<LedgerData>;

impl bindings::micro::network::identity::Host for LedgerData {
    async fn node_id(&mut self) -> String {
        self.identity.public().to_string()
    }

    async fn sign(&mut self, message: Vec<u8>) -> Vec<u8> {
        self.identity.sign(&message).to_vec()
    }

    async fn verify(&mut self, node: String, message: Vec<u8>, signature: Vec<u8>) -> bool {
        let (Ok(key), Ok(signature)) = (
            micro_base::identity::parse_node_id(&node),
            <[u8; 64]>::try_from(signature.as_slice()),
        ) else {
            return false;
        };
        micro_base::identity::verify(&key, &message, &signature).is_ok()
    }
}

micro_runtime::slot_world!(
    bindings::LedgerWorld,
    bindings::LedgerWorldPre<LedgerState>,
    LedgerData
);

/// What every ledger component of this node runs with.
pub struct Host {
    host: slot::Host<LedgerData>,
    data: LedgerData,
}

impl Host {
    /// The host of ledger components in `runtime`, signing with `identity` and keeping the
    /// ledger's books in `storage`.
    pub fn new(
        runtime: &crate::host_state::Runtime,
        identity: Identity,
        storage: Storage,
    ) -> anyhow::Result<Self> {
        let host = slot::Host::new(
            runtime,
            "a ledger component",
            "only WASI, identity and storage",
            "micro:network/ledger",
            |linker| {
                bindings::micro::network::identity::add_to_linker::<_, HasSelf<LedgerData>>(
                    linker,
                    |s: &mut LedgerState| &mut s.data,
                )?;
                micro_runtime::wit::micro::network::storage::add_to_linker::<_, HasNamespace>(
                    linker,
                    |s: &mut LedgerState| Namespace::new(&s.data.storage, NAMESPACE),
                )
            },
        )?;
        Ok(Self {
            host,
            data: LedgerData { identity, storage },
        })
    }

    /// Compiles and checks a ledger component and asks it who it is (not yet in use).
    pub async fn load(
        &self,
        runtime: &crate::host_state::Runtime,
        wasm: &[u8],
        origin: &str,
    ) -> anyhow::Result<Loaded> {
        let code = self.host.load(runtime, wasm)?;
        let mut loaded = Loaded {
            name: String::new(),
            version: String::new(),
            origin: origin.to_string(),
            component: code.hash.clone(),
            local_free: false,
            code,
            data: self.data.clone(),
            live: slot::Live::default(),
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
    /// What it calls itself.
    pub name: String,
    /// Its version, as it says.
    pub version: String,
    /// "embedded", or the source it was built from.
    pub origin: String,
    /// Content hash of its component.
    pub component: String,
    /// It never charges the node's own calls, so they are not asked about.
    pub local_free: bool,
    code: slot::Component<LedgerData, bindings::LedgerWorld>,
    data: LedgerData,
    live: slot::Live<LedgerData, bindings::LedgerWorld>,
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
    ) -> Result<T, micro_runtime::slot::SlotError> {
        self.live
            .ask(
                &self.code,
                || self.data.clone(),
                what,
                ASK_TIME,
                async |world, store| question(world.micro_network_ledger(), store).await,
            )
            .await
    }
}
