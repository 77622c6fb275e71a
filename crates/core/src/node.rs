//! A node's core parts held together: each owns its own state; the node holds them so a
//! call's store can be handed all of them at once. Other nodes are behind [`Remote`], attached
//! by the composition root once the peer layer is up.

use crate::evolve::Evolve;
use crate::host_state::Runtime;
use crate::registry::Registry;
use crate::remote::Remote;
use crate::system::builders::Builders;
use crate::system::governance::{Asker, Askers, NoPeers, PeerAges};
use anyhow::Context as _;
use micro_base::Clock;
use micro_base::config::Config;
use micro_base::identity::Identity;
use micro_services::broker::Broker;
use micro_services::storage::Storage;
use redb::Database;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, OnceLock};

/// A system component that could not be loaded, and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("loading the {slot}: {reason}")]
pub struct NotLoaded {
    /// Which slot: `builders`, `governance` or `ledger`.
    pub slot: &'static str,
    /// Why, with its causes.
    pub reason: String,
}

impl NotLoaded {
    fn new(slot: &'static str, error: &anyhow::Error) -> NotLoaded {
        NotLoaded {
            slot,
            reason: format!("{error:#}"),
        }
    }
}

/// The running node's services.
pub struct Node {
    /// This node's id: its public key.
    pub id: String,
    /// Its key pair.
    pub identity: Identity,
    /// Its configuration.
    pub config: Config,
    /// Its data directory: the database, components, caches, its key.
    pub data_dir: PathBuf,
    /// The wasm runtime its services run on.
    pub runtime: Runtime,
    /// Services' storage (storage and wasi:keyvalue).
    pub storage: Storage,
    /// The deployed versions.
    pub registry: Registry,
    /// Topics, subscriptions and retained messages.
    pub broker: Broker,
    /// Builds from source: sources, watchers, caches.
    pub evolve: Evolve,
    /// The builder components (a system slot), loaded on first use.
    builders: tokio::sync::OnceCell<Builders>,
    /// The governance component (a system slot), loaded on first use.
    governance: tokio::sync::OnceCell<crate::system::governance::Governance>,
    /// The ledger component (a system slot), loaded on first use.
    ledger: tokio::sync::OnceCell<crate::system::ledger::Ledger>,
    /// Calls running on this node now: its load, as peers see it.
    pub load: AtomicU32,
    /// Other nodes, once the peer layer is up (a node may run without one).
    remote: OnceLock<Arc<dyn Remote>>,
    /// Bumped when a system component is loaded or swapped (the node's record names its
    /// governance).
    pub system: micro_base::Changes,
    /// The one clock of policy, records, retention and version lifetimes.
    pub clock: Clock,
    /// When this process opened the node, for its uptime.
    pub started: std::time::Instant,
    /// Who asks governance and the ledger, as this node tells it.
    pub askers: Askers,
}

impl Node {
    /// Opens the node's data directory (creating it on first start) and builds its services.
    /// Deployed services are not started here: see [`crate::deploy::restore`].
    pub fn open(config: Config, data_dir: &Path) -> anyhow::Result<Arc<Node>> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
        let db_path = data_dir.join("node.redb");
        let db = Database::create(&db_path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => anyhow::anyhow!(
                "{} is in use by another running node; stop it or pick another --data-dir",
                db_path.display()
            ),
            e => anyhow::anyhow!("opening {}: {e}", db_path.display()),
        })?;
        let db = Arc::new(db);
        let identity = Identity::load_or_create(data_dir)?;
        let clock = Clock::new();
        let runtime = Runtime::new(
            &config.limits,
            &data_dir.join("cache").join("compiled"),
            crate::host_state::link,
        )?;
        let storage =
            Storage::new(db.clone(), config.storage.clone()).context("opening storage")?;
        let registry = Registry::open(db.clone(), &data_dir.join("components"), clock.clone())?;
        let evolve = Evolve::open(db.clone(), data_dir, &config.evolve.build_cache_dir)
            .context("opening the build directories")?;
        let broker = Broker::open(
            db,
            config.broker.clone(),
            identity.public().to_string(),
            clock.clone(),
        )
        .context("opening the broker")?;
        let started = std::time::Instant::now();
        let askers = Askers::new(
            &identity.public().to_string(),
            &config.governance.trusted,
            started,
        );
        Ok(Arc::new(Node {
            id: identity.public().to_string(),
            identity,
            config,
            data_dir: data_dir.to_owned(),
            runtime,
            storage,
            registry,
            broker,
            evolve,
            builders: tokio::sync::OnceCell::new(),
            governance: tokio::sync::OnceCell::new(),
            ledger: tokio::sync::OnceCell::new(),
            load: AtomicU32::new(0),
            remote: OnceLock::new(),
            system: micro_base::Changes::default(),
            clock,
            started,
            askers,
        }))
    }

    /// Other nodes, if the peer layer runs.
    pub fn remote(&self) -> Option<&dyn Remote> {
        self.remote.get().map(|r| r.as_ref())
    }

    /// The builders in use, loaded on first use: the embedded defaults and the replacements
    /// saved by earlier runs. Most starts build nothing, so they do not pay for compiling them.
    pub async fn builders(&self) -> Result<&Builders, NotLoaded> {
        self.builders
            .get_or_try_init(|| async {
                crate::system::load_builders(&crate::system::SlotParts::of(self)).await
            })
            .await
            .map_err(|e| NotLoaded::new("builders", &e))
    }

    /// The governance in use, loaded on first use (the first decision): the embedded default
    /// or the replacement an earlier run put in use.
    pub async fn governance(&self) -> Result<&crate::system::governance::Governance, NotLoaded> {
        let loaded_before = self.governance.initialized();
        let governance = self
            .governance
            .get_or_try_init(|| async {
                crate::system::load_governance(&crate::system::SlotParts::of(self)).await
            })
            .await
            .map_err(|e| NotLoaded::new("governance", &e))?;
        if !loaded_before {
            self.system.notify();
        }
        Ok(governance)
    }

    /// The ledger in use, loaded on first use: the embedded default or the replacement an
    /// earlier run put in use.
    pub async fn ledger(&self) -> Result<&crate::system::ledger::Ledger, NotLoaded> {
        self.ledger
            .get_or_try_init(|| async {
                crate::system::load_ledger(&crate::system::SlotParts::of(self)).await
            })
            .await
            .map_err(|e| NotLoaded::new("ledger", &e))
    }

    /// The ledger, if something loaded it already (nothing to settle before that).
    pub fn ledger_if_loaded(&self) -> Option<&crate::system::ledger::Ledger> {
        self.ledger.get()
    }

    /// The governance, if something asked it already (observations before that are not
    /// worth loading it for).
    pub fn governance_if_loaded(&self) -> Option<&crate::system::governance::Governance> {
        self.governance.get()
    }

    /// Whoever knows this node's peers: the peer layer, or nobody without one.
    pub fn peer_ages(&self) -> &dyn PeerAges {
        match self.remote.get() {
            Some(remote) => remote.as_ref(),
            None => &NoPeers,
        }
    }

    /// Node `node_id` (this one or a peer) as governance sees a question from it.
    pub fn asker_for<'a>(&'a self, node_id: &'a str) -> Asker<'a> {
        self.askers.of(node_id, self.peer_ages())
    }

    /// Attaches the started peer layer (once: a second one is ignored).
    pub fn set_remote(&self, remote: Arc<dyn Remote>) {
        if self.remote.get().is_none() {
            // A topic's first publish here finds its subscribers elsewhere.
            self.broker.set_first_publish(remote.clone());
        }
        let _ = self.remote.set(remote);
    }
}

/// The default data directory: `$MICRO_DATA_DIR`, else the user's data directory.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("MICRO_DATA_DIR")
        .map(PathBuf::from)
        .or_else(|| dirs::data_dir().map(|d| d.join("micro")))
        .unwrap_or_else(|| PathBuf::from(".micro"))
}
