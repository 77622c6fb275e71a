//! The services deployed on this node (the `registry` WIT interface), persisted in redb so a
//! restarted node brings them back. A service has versions side by side: the newest healthy one
//! serves new calls, superseded ones answer calls pinned to them until they retire. Component
//! bytes are kept by content hash beside the database.

use crate::host_state::Program;
use anyhow::Context as _;
use micro_base::Clock;
use micro_base::changes::Changes;
use micro_runtime::wit::micro::network::types::CallError;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;
use tokio::sync::{Semaphore, SemaphorePermit};

/// Live versions' records, by `name@version`.
const SERVICES: TableDefinition<&str, &str> = TableDefinition::new("services");
/// Every version's history (building, serving, superseded, retired, failed), by `name@version`.
const VERSIONS: TableDefinition<&str, &str> = TableDefinition::new("versions");
/// Build logs, by `name@version`.
const BUILD_LOGS: TableDefinition<&str, &str> = TableDefinition::new("build_logs");

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
    /// The topic.
    pub topic: String,
    /// The queue group: one member of the group gets each message.
    pub queue_group: Option<String>,
    /// Replay the retained messages when the subscription starts.
    pub history: bool,
}

/// The durable record of one deployed service.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceRecord {
    /// The service's name.
    pub name: String,
    /// The version's name.
    pub version: String,
    /// A micro service or a wasi:http component.
    pub kind: ServiceKind,
    /// The methods it answers.
    pub methods: Vec<String>,
    /// The topics it subscribes to.
    pub subscriptions: Vec<SubscriptionSpec>,
    /// The WIT of the component's world.
    pub wit: String,
    /// Content hash of the component.
    pub component: String,
    /// The component's size in bytes.
    pub size: u64,
    /// When it was deployed, in ms since the epoch.
    pub deployed_at_ms: u64,
    /// For its own node only: not announced to the network, and calls from other nodes are
    /// asked of governance as calls to a private service.
    #[serde(default)]
    pub private: bool,
    /// The node (id) that placed this version here as a replica of its own; none for a
    /// version deployed here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_of: Option<String>,
}

/// Counters of one deployment, for `micro services` and the dashboard.
#[derive(Debug, Default)]
pub struct Stats {
    /// Calls served.
    pub calls: AtomicU64,
    /// Calls that failed.
    pub errors: AtomicU64,
    /// The most recent failure: when (ms since the epoch) and why.
    last_error: std::sync::Mutex<Option<(u64, String)>>,
}

impl Stats {
    /// The most recent failure, if any: when (ms since the epoch) and why.
    pub fn last_error(&self) -> Option<(u64, String)> {
        micro_base::sync::lock(&self.last_error).clone()
    }
}

/// How a failed call reads in a deployment's counters.
pub trait Failure {
    /// The failure as one line.
    fn describe(&self) -> String;
}

impl Failure for CallError {
    fn describe(&self) -> String {
        let (kind, message) = self.parts();
        format!("{kind}: {message}")
    }
}

impl Failure for String {
    fn describe(&self) -> String {
        self.clone()
    }
}

/// Where a version is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VersionState {
    /// Being fetched, built or checked; takes no traffic.
    Building,
    /// The newest healthy version: new calls go here.
    Serving,
    /// A newer version serves; this one still answers calls pinned to it until it retires.
    Superseded,
    /// Its lifetime ended; it takes no calls.
    Retired,
    /// It did not build, validate or answer its first call; it never took traffic.
    Failed,
}

/// What the node knows of one version of a service, whatever its state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionInfo {
    /// The service's name.
    pub name: String,
    /// The version's name.
    pub version: String,
    /// Where it is in its life: building, serving, superseded, retired or failed.
    pub state: VersionState,
    /// The source it was built from (none for an uploaded component).
    pub source: Option<String>,
    /// The commit it was built from.
    pub commit: Option<String>,
    /// The builder that built it (name and version).
    pub builder: Option<String>,
    /// Content hash of its component, once built.
    pub component: Option<String>,
    /// When it was made, in ms since the epoch.
    pub created_ms: u64,
    /// When a newer version took over.
    pub superseded_ms: Option<u64>,
    /// How long it keeps serving pinned calls once superseded.
    pub lifetime_ms: u64,
    /// Why it failed.
    pub reason: Option<String>,
}

impl VersionInfo {
    /// A version that is only starting out: named, not built yet.
    pub fn building(
        name: &str,
        version: &str,
        source: Option<String>,
        commit: Option<String>,
        lifetime_ms: u64,
        created_ms: u64,
    ) -> Self {
        Self {
            name: name.to_string(),
            version: version.to_string(),
            state: VersionState::Building,
            source,
            commit,
            builder: None,
            component: None,
            created_ms,
            superseded_ms: None,
            lifetime_ms,
            reason: None,
        }
    }

    /// Whether this version ever served calls (and so saw its subscriptions' messages).
    pub fn took_traffic(&self) -> bool {
        matches!(
            self.state,
            VersionState::Serving | VersionState::Superseded | VersionState::Retired
        )
    }

    /// When a superseded version retires.
    pub fn retires_at_ms(&self) -> Option<u64> {
        self.superseded_ms.map(|s| s + self.lifetime_ms)
    }
}

/// A service running on this node: its record, its code and its concurrency permits.
pub struct Deployment {
    /// Its durable record.
    pub record: ServiceRecord,
    /// Its compiled component.
    pub program: Program,
    /// Instances allowed at once; callers beyond that wait.
    permits: Semaphore,
    /// Its counters.
    pub stats: Stats,
    /// Since when `stats` counts (this process's start of the deployment).
    pub since: std::time::Instant,
    /// Calls running in it now: a version never retires while this is above zero.
    in_flight: AtomicUsize,
    /// The node's clock, for when a call last failed.
    clock: Clock,
}

/// Marks a call as running in a deployment until dropped.
pub struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Deployment {
    /// A deployment allowing `concurrency` instances at once.
    pub fn new(record: ServiceRecord, program: Program, concurrency: usize, clock: Clock) -> Self {
        Self {
            clock,
            record,
            program,
            permits: Semaphore::new(concurrency.max(1)),
            stats: Stats::default(),
            since: std::time::Instant::now(),
            in_flight: AtomicUsize::new(0),
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

    /// Counts a call as running until the guard drops.
    pub fn enter(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(&self.in_flight)
    }

    /// Calls running now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Counts a finished call, keeping why it failed if it did.
    pub fn count<T, E: Failure>(&self, outcome: &Result<T, E>) {
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = outcome {
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
            *micro_base::sync::lock(&self.stats.last_error) =
                Some((self.clock.now_ms(), e.describe()));
        }
    }
}

/// The live versions of one service, newest first: the first serves new calls.
type Live = Vec<Arc<Deployment>>;

/// The node's deployed services and the history of their versions.
pub struct Registry {
    db: Arc<Database>,
    components_dir: PathBuf,
    live: RwLock<BTreeMap<String, Live>>,
    changed: Changes,
    /// The node's clock: when versions were made, superseded and retire.
    clock: Clock,
    /// Each service's recent runtime lines (`micro logs <service>`).
    pub logs: micro_services::service_logs::ServiceLogs,
}

fn key(name: &str, version: &str) -> String {
    format!("{name}@{version}")
}

impl Registry {
    /// Opens the registry's tables and component directory.
    pub fn open(db: Arc<Database>, components_dir: &Path, clock: Clock) -> anyhow::Result<Self> {
        std::fs::create_dir_all(components_dir)
            .with_context(|| format!("creating {}", components_dir.display()))?;
        let tx = db.begin_write()?;
        tx.open_table(SERVICES)?;
        tx.open_table(VERSIONS)?;
        tx.open_table(BUILD_LOGS)?;
        tx.commit()?;
        let settled = Self::settle_interrupted(&db)?;
        if settled > 0 {
            tracing::info!(settled, "versions left building by an earlier run settled");
        }
        Ok(Self {
            db,
            components_dir: components_dir.to_owned(),
            live: RwLock::default(),
            changed: Changes::default(),
            logs: micro_services::service_logs::ServiceLogs::new(clock.clone()),
            clock,
        })
    }

    /// A receiver that sees every change of the live versions or their states.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.watch()
    }

    /// How many times the live versions or their states changed.
    pub fn changes(&self) -> u64 {
        self.changed.count()
    }

    /// The records of the live versions saved by earlier runs, oldest first, to bring them back.
    pub fn saved(&self) -> anyhow::Result<Vec<ServiceRecord>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(SERVICES)?;
        let mut records = Vec::new();
        for item in table.iter()? {
            let (name, json) = item?;
            match serde_json::from_str::<ServiceRecord>(json.value()) {
                Ok(record) => records.push(record),
                Err(e) => {
                    tracing::error!(service = name.value(), error = %e, "unreadable service record")
                }
            }
        }
        records.sort_by_key(|r| r.deployed_at_ms);
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

    /// Records a version that is not live (building or failed), or updates its record.
    pub fn note_version(&self, info: &VersionInfo) -> anyhow::Result<()> {
        let json = serde_json::to_string(info)?;
        let tx = self.db.begin_write()?;
        tx.open_table(VERSIONS)?
            .insert(key(&info.name, &info.version).as_str(), json.as_str())?;
        tx.commit()?;
        self.changed.notify();
        Ok(())
    }

    /// Records a version whose build starts, unless the node already has it in a state of its
    /// own (serving, superseded, retired): building an unchanged tree again must not turn a
    /// version that serves into one that seems to be building.
    pub fn note_building(&self, info: &VersionInfo) -> anyhow::Result<()> {
        let known = self.version_info(&info.name, &info.version)?;
        if known.is_some_and(|k| !matches!(k.state, VersionState::Building | VersionState::Failed))
        {
            return Ok(());
        }
        self.note_version(info)
    }

    /// Versions left `building` by a node that stopped during their build (or by an earlier
    /// release that recorded a rebuild of a serving version so): a live one serves, any other
    /// failed.
    fn settle_interrupted(db: &Database) -> anyhow::Result<usize> {
        let tx = db.begin_write()?;
        let mut settled = 0;
        {
            let services = tx.open_table(SERVICES)?;
            let mut versions = tx.open_table(VERSIONS)?;
            let mut stale = Vec::new();
            for item in versions.iter()? {
                let (k, json) = item?;
                if let Ok(info) = serde_json::from_str::<VersionInfo>(json.value())
                    && info.state == VersionState::Building
                {
                    let live = services
                        .get(k.value())?
                        .and_then(|r| serde_json::from_str::<ServiceRecord>(r.value()).ok());
                    stale.push((k.value().to_string(), info, live));
                }
            }
            for (k, mut info, live) in stale {
                match live {
                    Some(record) => {
                        info.state = VersionState::Serving;
                        info.component = Some(record.component);
                    }
                    None => {
                        info.state = VersionState::Failed;
                        info.reason = Some("the node stopped during its build".into());
                    }
                }
                versions.insert(k.as_str(), serde_json::to_string(&info)?.as_str())?;
                settled += 1;
            }
        }
        tx.commit()?;
        Ok(settled)
    }

    /// What the node knows of one version.
    pub fn version_info(&self, name: &str, version: &str) -> anyhow::Result<Option<VersionInfo>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(VERSIONS)?;
        Ok(match table.get(key(name, version).as_str())? {
            Some(json) => serde_json::from_str(json.value()).ok(),
            None => None,
        })
    }

    /// Every version of a service the node knows, newest first.
    pub fn versions(&self, name: &str) -> anyhow::Result<Vec<VersionInfo>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(VERSIONS)?;
        let prefix = format!("{name}@");
        let mut versions: Vec<VersionInfo> = Vec::new();
        for item in table.range(prefix.as_str()..)? {
            let (k, json) = item?;
            if !k.value().starts_with(&prefix) {
                break;
            }
            if let Ok(info) = serde_json::from_str(json.value()) {
                versions.push(info);
            }
        }
        versions.sort_by_key(|v| std::cmp::Reverse(v.created_ms));
        Ok(versions)
    }

    /// Keeps a build's log.
    pub fn save_build_log(&self, name: &str, version: &str, log: &str) -> anyhow::Result<()> {
        let tx = self.db.begin_write()?;
        tx.open_table(BUILD_LOGS)?
            .insert(key(name, version).as_str(), log)?;
        tx.commit()?;
        Ok(())
    }

    /// A kept build log.
    pub fn build_log(&self, name: &str, version: &str) -> anyhow::Result<Option<String>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(BUILD_LOGS)?;
        Ok(table
            .get(key(name, version).as_str())?
            .map(|v| v.value().to_string()))
    }

    /// Records a new version durably and makes it the one serving new calls; the version that
    /// served before is superseded and keeps answering pinned calls for its lifetime.
    pub fn insert(&self, deployment: Deployment, mut info: VersionInfo) -> anyhow::Result<()> {
        let record = &deployment.record;
        let now = self.clock.now_ms();
        let previous = self.get(&record.name);
        let tx = self.db.begin_write()?;
        {
            let mut services = tx.open_table(SERVICES)?;
            let mut versions = tx.open_table(VERSIONS)?;
            // A record of the single-version era, keyed by name alone.
            services.remove(record.name.as_str())?;
            services.insert(
                key(&record.name, &record.version).as_str(),
                serde_json::to_string(record)?.as_str(),
            )?;
            info.state = VersionState::Serving;
            info.superseded_ms = None;
            versions.insert(
                key(&info.name, &info.version).as_str(),
                serde_json::to_string(&info)?.as_str(),
            )?;
            if let Some(prev) = previous.filter(|p| p.record.version != record.version) {
                let k = key(&prev.record.name, &prev.record.version);
                let mut prev_info = match versions.get(k.as_str())? {
                    Some(json) => serde_json::from_str(json.value()).ok(),
                    None => None,
                }
                // A version deployed before versions had a history.
                .unwrap_or_else(|| VersionInfo {
                    component: Some(prev.record.component.clone()),
                    created_ms: prev.record.deployed_at_ms,
                    ..VersionInfo::building(
                        &prev.record.name,
                        &prev.record.version,
                        None,
                        None,
                        info.lifetime_ms,
                        prev.record.deployed_at_ms,
                    )
                });
                prev_info.state = VersionState::Superseded;
                prev_info.superseded_ms = Some(now);
                versions.insert(k.as_str(), serde_json::to_string(&prev_info)?.as_str())?;
            }
        }
        tx.commit()?;
        self.activate(deployment);
        Ok(())
    }

    /// Starts routing calls to a deployment whose record is already saved, as the newest
    /// version of its service.
    pub fn activate(&self, deployment: Deployment) {
        let name = deployment.record.name.clone();
        let mut live = self.write();
        let versions = live.entry(name).or_default();
        versions.retain(|d| d.record.version != deployment.record.version);
        versions.insert(0, Arc::new(deployment));
        drop(live);
        self.changed.notify();
    }

    /// Retires the superseded versions whose lifetime has ended and which run no call;
    /// answers the (service, version) pairs retired.
    pub fn retire_due(&self) -> anyhow::Result<Vec<(String, String)>> {
        let now = self.clock.now_ms();
        let mut due = Vec::new();
        for (name, versions) in self.read().iter() {
            for d in versions.iter().skip(1) {
                let info = self.version_info(name, &d.record.version)?;
                let expired = info
                    .as_ref()
                    .and_then(VersionInfo::retires_at_ms)
                    .is_none_or(|at| at <= now);
                if expired && d.in_flight() == 0 {
                    due.push((name.clone(), d.record.version.clone(), info));
                }
            }
        }
        let mut retired = Vec::new();
        for (name, version, info) in due {
            let tx = self.db.begin_write()?;
            tx.open_table(SERVICES)?
                .remove(key(&name, &version).as_str())?;
            if let Some(mut info) = info {
                info.state = VersionState::Retired;
                tx.open_table(VERSIONS)?.insert(
                    key(&name, &version).as_str(),
                    serde_json::to_string(&info)?.as_str(),
                )?;
            }
            tx.commit()?;
            if let Some(versions) = self.write().get_mut(&name) {
                // Checked again under the lock: a call may have started since.
                versions.retain(|d| d.record.version != version || d.in_flight() > 0);
            }
            retired.push((name, version));
        }
        if !retired.is_empty() {
            self.changed.notify();
        }
        Ok(retired)
    }

    /// Stops every version of a service and forgets their records (the history of versions
    /// and build logs stays); returns the deployment that was serving.
    pub fn remove(&self, name: &str) -> anyhow::Result<Option<Arc<Deployment>>> {
        let removed = self.write().remove(name);
        let tx = self.db.begin_write()?;
        {
            let mut services = tx.open_table(SERVICES)?;
            services.remove(name)?;
            for d in removed.iter().flatten() {
                services.remove(key(name, &d.record.version).as_str())?;
            }
            let mut versions = tx.open_table(VERSIONS)?;
            for d in removed.iter().flatten() {
                let k = key(name, &d.record.version);
                let info = versions
                    .get(k.as_str())?
                    .and_then(|json| serde_json::from_str::<VersionInfo>(json.value()).ok());
                if let Some(mut info) = info {
                    info.state = VersionState::Retired;
                    info.superseded_ms.get_or_insert(self.clock.now_ms());
                    versions.insert(k.as_str(), serde_json::to_string(&info)?.as_str())?;
                }
            }
        }
        tx.commit()?;
        self.changed.notify();
        Ok(removed.and_then(|v| v.into_iter().next()))
    }

    /// The version of `name` serving new calls.
    pub fn get(&self, name: &str) -> Option<Arc<Deployment>> {
        self.read().get(name).and_then(|v| v.first()).cloned()
    }

    /// A live version of `name` (serving or superseded).
    pub fn get_version(&self, name: &str, version: &str) -> Option<Arc<Deployment>> {
        self.read()
            .get(name)?
            .iter()
            .find(|d| d.record.version == version)
            .cloned()
    }

    /// The deployment a call names: `name` (the serving version) or `name@version`.
    pub fn resolve(&self, service: &str) -> Option<Arc<Deployment>> {
        match micro_base::names::split_version(service) {
            (name, Some(version)) => self.get_version(name, version),
            (name, None) => self.get(name),
        }
    }

    /// The live versions of `name`, newest first.
    pub fn live_versions(&self, name: &str) -> Vec<Arc<Deployment>> {
        self.read().get(name).cloned().unwrap_or_default()
    }

    /// Every live version of every service, each with whether it is the serving one.
    pub fn all_live(&self) -> Vec<(Arc<Deployment>, bool)> {
        self.read()
            .values()
            .flat_map(|versions| versions.iter().enumerate())
            .map(|(i, d)| (d.clone(), i == 0))
            .collect()
    }

    /// The serving version of every service, by name.
    pub fn list(&self) -> Vec<Arc<Deployment>> {
        self.read()
            .values()
            .filter_map(|v| v.first().cloned())
            .collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Live>> {
        micro_base::sync::read(&self.live)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Live>> {
        micro_base::sync::write(&self.live)
    }
}
