//! What the node keeps of its builds from source: where each service comes from (the
//! `sources` table), the build directories (bare repositories, scratch, warm tool caches), one
//! lock per repository or service, the artifact cache and the watchers.

use super::source::Source;
use super::{artifacts, watch};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Where each service built from source comes from, by service name.
const SOURCES: TableDefinition<&str, &str> = TableDefinition::new("sources");

/// A service built from source, as the node keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceRecord {
    /// The service's name.
    pub name: String,
    /// Where it is built from.
    pub source: Source,
    /// New commits are built and deployed as they land.
    pub watch: bool,
    /// How often a watched source is looked at, in ms.
    pub interval_ms: u64,
    /// How long a superseded version keeps serving pinned calls, in ms.
    pub lifetime_ms: u64,
    /// The last commit built (successfully or not), so a watcher does not retry it.
    pub last_commit: Option<String>,
    /// This build skips the artifact cache (asked once, never kept).
    #[serde(default, skip_serializing)]
    pub rebuild: bool,
}

/// The node's builds from source: sources, watchers, caches.
pub struct Evolve {
    db: Arc<Database>,
    /// The embedded WIT package and SDKs, written out for componentizers.
    pub kit: Arc<crate::kit::Kit>,
    /// Bare repositories.
    pub(super) repos_dir: PathBuf,
    /// Per-build scratch directories.
    scratch_dir: PathBuf,
    /// Warm caches of tools (cargo target directories), per source.
    build_cache_dir: PathBuf,
    /// One fetch or build at a time per repository or service.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Built components by source tree and builder, so an unchanged tree is not built again.
    pub artifacts: artifacts::Artifacts,
    /// The watchers of watched sources, one task each.
    pub watchers: watch::Watchers,
}

impl Evolve {
    /// Opens the sources table and the build directories under `data_dir`.
    pub fn open(
        db: Arc<Database>,
        data_dir: &Path,
        build_cache_dir: &Path,
    ) -> anyhow::Result<Self> {
        let cache = data_dir.join("cache");
        let kit = Arc::new(crate::kit::Kit::write(&cache.join("kit"))?);
        let build_cache_dir = if build_cache_dir.as_os_str().is_empty() {
            cache.join("builds")
        } else {
            build_cache_dir.to_owned()
        };
        let scratch_dir = cache.join("scratch");
        // Scratch directories of builds a crash interrupted.
        let _ = std::fs::remove_dir_all(&scratch_dir);
        let tx = db.begin_write()?;
        tx.open_table(SOURCES)?;
        tx.commit()?;
        Ok(Self {
            artifacts: artifacts::Artifacts::open(db.clone())?,
            db,
            kit,
            repos_dir: cache.join("sources"),
            scratch_dir,
            build_cache_dir,
            locks: Mutex::default(),
            watchers: watch::Watchers::default(),
        })
    }

    /// The lock of one repository or service: one fetch or build of it at a time.
    pub(super) fn lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        micro_base::sync::lock(&self.locks)
            .entry(key.to_string())
            .or_default()
            .clone()
    }

    /// Saves where a service comes from.
    pub fn save_source(&self, record: &SourceRecord) -> anyhow::Result<()> {
        let tx = self.db.begin_write()?;
        tx.open_table(SOURCES)?.insert(
            record.name.as_str(),
            serde_json::to_string(record)?.as_str(),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Where a service comes from, if it was built from source.
    pub fn source(&self, name: &str) -> anyhow::Result<Option<SourceRecord>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(SOURCES)?;
        Ok(table
            .get(name)?
            .and_then(|v| serde_json::from_str(v.value()).ok()))
    }

    /// Every service built from source.
    pub fn sources(&self) -> anyhow::Result<Vec<SourceRecord>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(SOURCES)?;
        let mut out = Vec::new();
        for item in table.iter()? {
            let (_, v) = item?;
            if let Ok(record) = serde_json::from_str(v.value()) {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// Forgets a service's source and stops watching it.
    pub fn forget_source(&self, name: &str) -> anyhow::Result<()> {
        self.watchers.stop(name);
        let tx = self.db.begin_write()?;
        tx.open_table(SOURCES)?.remove(name)?;
        tx.commit()?;
        Ok(())
    }
}

impl Evolve {
    /// A new scratch directory's path for one build.
    pub fn scratch(&self) -> PathBuf {
        let nonce = getrandom::u64().unwrap_or(0).to_le_bytes();
        self.scratch_dir
            .join(&micro_base::names::content_hash(&nonce)[..16])
    }

    /// cargo's target directory for one source: warm across its builds.
    pub(super) fn cargo_target(&self, source: &str) -> PathBuf {
        self.build_cache_dir
            .join("cargo")
            .join(&micro_base::names::content_hash(source.as_bytes())[..16])
    }
}
