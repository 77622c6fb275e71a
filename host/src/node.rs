//! A node: the host services wired together. Each service owns its own state; the node only
//! holds them so a call's store can be handed all of them at once.

use crate::broker::Broker;
use crate::config::Config;
use crate::registry::Registry;
use crate::runtime::Runtime;
use crate::storage::Storage;
use anyhow::Context as _;
use redb::Database;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The running node's services.
pub struct Node {
    /// This node's id.
    pub id: String,
    pub config: Config,
    pub data_dir: PathBuf,
    pub runtime: Runtime,
    pub storage: Storage,
    pub registry: Registry,
    pub broker: Broker,
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
        let id = node_id(data_dir)?;
        let runtime = Runtime::new(&config.limits, &data_dir.join("cache").join("compiled"))?;
        let storage =
            Storage::new(db.clone(), config.storage.clone()).context("opening storage")?;
        let registry = Registry::open(db.clone(), &data_dir.join("components"))?;
        let broker = Broker::open(db, config.broker.clone()).context("opening the broker")?;
        Ok(Arc::new(Node {
            id,
            config,
            data_dir: data_dir.to_owned(),
            runtime,
            storage,
            registry,
            broker,
        }))
    }
}

/// A random id made on first start and kept in the data directory.
fn node_id(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("node-id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for a node id: {e}"))?;
    let id = hex::encode(bytes);
    std::fs::write(&path, &id).with_context(|| format!("writing {}", path.display()))?;
    Ok(id)
}

/// The default data directory: `$MICRO_DATA_DIR`, else the user's data directory.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("MICRO_DATA_DIR")
        .map(PathBuf::from)
        .or_else(|| dirs::data_dir().map(|d| d.join("micro")))
        .unwrap_or_else(|| PathBuf::from(".micro"))
}
