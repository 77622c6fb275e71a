//! The services deployed on this node (the `registry` WIT interface), persisted in redb so a
//! restarted node brings them back. Component bytes are kept by content hash beside the database.

use crate::runtime::{HostState, Program};
use crate::wit::micro::network::registry as wit;
use crate::wit::micro::network::types::CallError;
use anyhow::Context as _;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;
use tokio::sync::{Semaphore, SemaphorePermit};

const SERVICES: TableDefinition<&str, &str> = TableDefinition::new("services");

/// What kind of component a service is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceKind {
    /// Exports `micro:network/handler`.
    Service,
    /// Exports `wasi:http/incoming-handler`.
    Http,
}

/// A subscription a service asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionSpec {
    pub topic: String,
    pub queue_group: Option<String>,
    pub history: bool,
}

/// The durable record of one deployed service.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub name: String,
    pub version: String,
    pub kind: ServiceKind,
    pub methods: Vec<String>,
    pub subscriptions: Vec<SubscriptionSpec>,
    /// The WIT of the component's world.
    pub wit: String,
    /// Content hash of the component.
    pub component: String,
    pub size: u64,
    pub deployed_at_ms: u64,
}

/// Counters of one deployment, for `micro services` and the dashboard.
#[derive(Debug, Default)]
pub struct Stats {
    pub calls: AtomicU64,
    pub errors: AtomicU64,
}

/// A service running on this node: its record, its code and its concurrency permits.
pub struct Deployment {
    pub record: ServiceRecord,
    pub program: Program,
    /// Instances allowed at once; callers beyond that wait.
    permits: Semaphore,
    pub stats: Stats,
}

impl Deployment {
    /// A deployment allowing `concurrency` instances at once.
    pub fn new(record: ServiceRecord, program: Program, concurrency: usize) -> Self {
        Self {
            record,
            program,
            permits: Semaphore::new(concurrency.max(1)),
            stats: Stats::default(),
        }
    }

    /// Waits for a permit to run an instance, until `deadline`: back-pressure, not failure.
    pub async fn admit(&self, deadline: Instant) -> Result<SemaphorePermit<'_>, CallError> {
        let name = &self.record.name;
        tokio::time::timeout_at(deadline.into(), self.permits.acquire())
            .await
            .map_err(|_| {
                CallError::Timeout(format!("{name} stayed busy until the call's deadline"))
            })?
            .map_err(|_| CallError::Unavailable(format!("{name} is stopping")))
    }

    /// Counts a finished call.
    pub fn count(&self, ok: bool) {
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The node's deployed services.
pub struct Registry {
    db: Arc<Database>,
    components_dir: PathBuf,
    live: RwLock<BTreeMap<String, Arc<Deployment>>>,
}

impl Registry {
    /// Opens the registry's table and component directory.
    pub fn open(db: Arc<Database>, components_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(components_dir)
            .with_context(|| format!("creating {}", components_dir.display()))?;
        let tx = db.begin_write()?;
        tx.open_table(SERVICES)?;
        tx.commit()?;
        Ok(Self {
            db,
            components_dir: components_dir.to_owned(),
            live: RwLock::default(),
        })
    }

    /// The records saved by earlier runs, to bring their services back.
    pub fn saved(&self) -> anyhow::Result<Vec<ServiceRecord>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(SERVICES)?;
        let mut records = Vec::new();
        for item in table.iter()? {
            let (name, json) = item?;
            match serde_json::from_str(json.value()) {
                Ok(record) => records.push(record),
                Err(e) => {
                    tracing::error!(service = name.value(), error = %e, "unreadable service record")
                }
            }
        }
        Ok(records)
    }

    /// Keeps a component's bytes by content hash.
    pub fn save_component(&self, hash: &str, wasm: &[u8]) -> anyhow::Result<()> {
        let path = self.components_dir.join(format!("{hash}.wasm"));
        if path.exists() {
            return Ok(());
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, wasm).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))?;
        Ok(())
    }

    /// A kept component's bytes.
    pub fn component(&self, hash: &str) -> anyhow::Result<Vec<u8>> {
        let path = self.components_dir.join(format!("{hash}.wasm"));
        std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
    }

    /// Records a deployment durably and starts routing calls to it; returns the one it replaced.
    pub fn insert(&self, deployment: Deployment) -> anyhow::Result<Option<Arc<Deployment>>> {
        let json = serde_json::to_string(&deployment.record)?;
        let tx = self.db.begin_write()?;
        tx.open_table(SERVICES)?
            .insert(deployment.record.name.as_str(), json.as_str())?;
        tx.commit()?;
        Ok(self.activate(deployment))
    }

    /// Starts routing calls to a deployment whose record is already saved.
    pub fn activate(&self, deployment: Deployment) -> Option<Arc<Deployment>> {
        let name = deployment.record.name.clone();
        self.write().insert(name, Arc::new(deployment))
    }

    /// Stops a service and forgets its record; returns it if it was deployed.
    pub fn remove(&self, name: &str) -> anyhow::Result<Option<Arc<Deployment>>> {
        let tx = self.db.begin_write()?;
        tx.open_table(SERVICES)?.remove(name)?;
        tx.commit()?;
        Ok(self.write().remove(name))
    }

    /// The deployment serving `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Deployment>> {
        self.live
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    /// Every deployment, by name.
    pub fn list(&self) -> Vec<Arc<Deployment>> {
        self.live
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<Deployment>>> {
        self.live.write().unwrap_or_else(|p| p.into_inner())
    }
}

fn to_wit(record: &ServiceRecord, node: &str) -> wit::ServiceRecord {
    wit::ServiceRecord {
        name: record.name.clone(),
        version: record.version.clone(),
        wit: record.wit.clone(),
        methods: record.methods.clone(),
        nodes: vec![node.to_string()],
        metadata: vec![(
            "kind".into(),
            match record.kind {
                ServiceKind::Service => "service".into(),
                ServiceKind::Http => "http".into(),
            },
        )],
    }
}

impl wit::Host for HostState {
    async fn list(&mut self) -> Vec<wit::ServiceRecord> {
        let node = &self.node;
        node.registry
            .list()
            .iter()
            .map(|d| to_wit(&d.record, &node.id))
            .collect()
    }

    async fn lookup(&mut self, name: String) -> Option<wit::ServiceRecord> {
        let (name, version) = crate::transport::split_version(&name);
        let deployment = self.node.registry.get(name)?;
        if version.is_some_and(|v| v != deployment.record.version) {
            return None;
        }
        Some(to_wit(&deployment.record, &self.node.id))
    }
}
