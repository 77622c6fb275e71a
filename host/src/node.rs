//! A node: the host services wired together. Each service owns its own state; the node only
//! holds them so a call's store can be handed all of them at once.

use crate::evolve::Evolve;
use crate::host_state::Runtime;
use crate::net::Network;
use crate::registry::Registry;
use crate::system::builders::Builders;
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

/// The running node's services.
pub struct Node {
    /// This node's id: its public key.
    pub id: String,
    pub identity: Identity,
    pub config: Config,
    pub data_dir: PathBuf,
    pub runtime: Runtime,
    pub storage: Storage,
    pub registry: Registry,
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
    /// Where governance placed this node's services, and their demand.
    pub placement: crate::placement::Placement,
    /// The peer layer, once started (a node may run without one).
    network: OnceLock<Arc<Network>>,
    /// Bumped when a system component is loaded or swapped (the node's record names its
    /// governance).
    pub system: micro_base::Changes,
    /// The one clock of policy, records, retention and version lifetimes.
    pub clock: Clock,
    /// When this process opened the node, for its uptime.
    pub started: std::time::Instant,
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
            placement: crate::placement::Placement::default(),
            network: OnceLock::new(),
            system: micro_base::Changes::default(),
            clock,
            started: std::time::Instant::now(),
        }))
    }

    /// The peer layer, if it runs.
    pub fn network(&self) -> Option<&Arc<Network>> {
        self.network.get()
    }

    /// The builders in use, loaded on first use: the embedded defaults and the replacements
    /// saved by earlier runs. Most starts build nothing, so they do not pay for compiling them.
    pub async fn builders(&self) -> Result<&Builders, String> {
        self.builders
            .get_or_try_init(|| crate::system::load_builders(self))
            .await
            .map_err(|e| format!("loading the builders: {e:#}"))
    }

    /// The governance in use, loaded on first use (the first decision): the embedded default
    /// or the replacement an earlier run put in use.
    pub async fn governance(&self) -> Result<&crate::system::governance::Governance, String> {
        let loaded_before = self.governance.initialized();
        let governance = self
            .governance
            .get_or_try_init(|| crate::system::load_governance(self))
            .await
            .map_err(|e| format!("loading the governance: {e:#}"))?;
        if !loaded_before {
            self.system.notify();
        }
        Ok(governance)
    }

    /// The ledger in use, loaded on first use: the embedded default or the replacement an
    /// earlier run put in use.
    pub async fn ledger(&self) -> Result<&crate::system::ledger::Ledger, String> {
        self.ledger
            .get_or_try_init(|| crate::system::load_ledger(self))
            .await
            .map_err(|e| format!("loading the ledger: {e:#}"))
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

    /// Who this node is, as governance sees a question from it.
    pub fn as_asker(&self) -> crate::system::governance::Asker<'_> {
        crate::system::governance::Asker {
            node: &self.id,
            local: true,
            pre_trusted: false,
            age: crate::system::governance::Age::Ms(self.started.elapsed().as_millis() as u64),
        }
    }

    /// Who `node_id` is, as governance sees a question from it: this node, or a peer with
    /// how long this node has known it and whether its operator pre-trusts it.
    pub fn asker_for<'a>(&'a self, node_id: &'a str) -> crate::system::governance::Asker<'a> {
        if node_id == self.id {
            return self.as_asker();
        }
        crate::system::governance::Asker {
            node: node_id,
            local: false,
            pre_trusted: self.config.governance.trusted.iter().any(|t| t == node_id),
            age: crate::system::governance::Age::PeerOf(self),
        }
    }

    /// How long this node has known peer `node_id` (0 when it does not know it).
    pub fn peer_age_ms(&self, node_id: &str) -> u64 {
        micro_base::identity::parse_node_id(node_id)
            .ok()
            .and_then(|id| self.network()?.peers.get(&id))
            .map_or(0, |p| self.clock.now_ms().saturating_sub(p.first_seen_ms))
    }

    /// Attaches the started peer layer.
    pub fn set_network(&self, network: Arc<Network>) {
        let _ = self.network.set(network);
    }
}

/// The default data directory: `$MICRO_DATA_DIR`, else the user's data directory.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("MICRO_DATA_DIR")
        .map(PathBuf::from)
        .or_else(|| dirs::data_dir().map(|d| d.join("micro")))
        .unwrap_or_else(|| PathBuf::from(".micro"))
}
