//! The artifact cache: a component built from a tree, by the tree's content (its git tree id)
//! and the builders that built it. Rebuilding an unchanged commit reuses the component; its
//! compiled code is cached by the component's hash in the runtime.

use crate::system::builders::Builder;
use redb::{Database, ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

const ARTIFACTS: TableDefinition<&str, &str> = TableDefinition::new("artifacts");

/// A cached build.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Artifact {
    /// The component's content hash (its bytes are kept by the registry).
    pub component: String,
    /// The builder that made it (name@version).
    pub builder: String,
    /// The service name the tree gave.
    pub name: String,
    /// The version it was deployed as, when the tree it was built from had another content
    /// (a directory its build added files to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// The cache key of a tree built by a set of builders: a different builder may build the
/// same tree differently.
pub fn key(tree: &str, builders: &[Arc<Builder>]) -> String {
    let mut text = format!("tree {tree}");
    for b in builders {
        text.push_str(&format!(" {}:{}", b.name, b.component));
    }
    micro_base::names::content_hash(text.as_bytes())
}

/// Built components by tree.
pub struct Artifacts {
    db: Arc<Database>,
}

impl Artifacts {
    /// Opens the cache's table.
    pub fn open(db: Arc<Database>) -> anyhow::Result<Self> {
        let tx = db.begin_write()?;
        tx.open_table(ARTIFACTS)?;
        tx.commit()?;
        Ok(Self { db })
    }

    /// The component built from this key, if any.
    pub fn get(&self, key: &str) -> Option<Artifact> {
        let tx = self.db.begin_read().ok()?;
        let table = tx.open_table(ARTIFACTS).ok()?;
        let value = table.get(key).ok()??;
        serde_json::from_str(value.value()).ok()
    }

    /// Remembers a build (a cache: failing to write it only costs a rebuild).
    pub fn put(&self, key: &str, artifact: &Artifact) {
        let write = || -> anyhow::Result<()> {
            let tx = self.db.begin_write()?;
            tx.open_table(ARTIFACTS)?
                .insert(key, serde_json::to_string(artifact)?.as_str())?;
            tx.commit()?;
            Ok(())
        };
        if let Err(e) = write() {
            tracing::warn!(error = %format!("{e:#}"), "caching a build");
        }
    }
}
