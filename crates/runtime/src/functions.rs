//! Compiled code cached per function, so a new version of a large component only compiles the
//! functions that changed.
//!
//! A new commit of a Python or JavaScript service is a new 12–18 MB component, but nearly all of
//! its code (the interpreter) is the same as in the last commit. The whole-component cache
//! ([`super::cache`]) cannot see that; cranelift's incremental cache can: it keys each
//! function's machine code by the function's IR, the compiler's version and its settings. This
//! module keeps those entries in a redb file beside the compiled components.
//!
//! Compilation runs on many threads; lookups read the database directly and new entries are
//! held in memory until [`FunctionCache::flush`] writes them in one transaction.

use anyhow::Context as _;
use redb::{Database, ReadableDatabase, TableDefinition};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const FUNCTIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("functions");

/// Past this size the cache starts over rather than grow without bound.
const MAX_FILE_BYTES: u64 = 512 << 20;

/// The per-function cache of one node.
pub struct FunctionCache {
    db: Database,
    path: PathBuf,
    pending: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
}

impl std::fmt::Debug for FunctionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionCache")
            .field("path", &self.path)
            .finish()
    }
}

impl FunctionCache {
    /// Opens (creating) the cache file at `path`.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let db = Database::create(path)
            .with_context(|| format!("opening the function cache {}", path.display()))?;
        let tx = db.begin_write()?;
        tx.open_table(FUNCTIONS)?;
        tx.commit()?;
        Ok(Self {
            db,
            path: path.to_owned(),
            pending: Mutex::new(HashMap::new()),
        })
    }

    fn lookup(&self, key: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(FUNCTIONS)?;
        Ok(table.get(key)?.map(|value| value.value().to_vec()))
    }

    /// Writes the entries made since the last flush. A failure only costs recompilation later.
    pub fn flush(&self) {
        let pending = match self.pending.lock() {
            Ok(mut pending) => std::mem::take(&mut *pending),
            Err(_) => return,
        };
        if pending.is_empty() {
            return;
        }
        if let Err(e) = self.write(&pending) {
            tracing::warn!(path = %self.path.display(), error = %format!("{e:#}"), "could not save compiled functions");
        }
    }

    fn write(&self, entries: &HashMap<Vec<u8>, Vec<u8>>) -> anyhow::Result<()> {
        let full = std::fs::metadata(&self.path)
            .map(|m| m.len() > MAX_FILE_BYTES)
            .unwrap_or(false);
        let mut tx = self.db.begin_write()?;
        // Losing the newest entries in a crash only costs a recompilation.
        tx.set_durability(redb::Durability::None)?;
        if full {
            tracing::info!(path = %self.path.display(), "function cache full; starting over");
            tx.delete_table(FUNCTIONS)?;
        }
        {
            let mut table = tx.open_table(FUNCTIONS)?;
            for (key, value) in entries {
                table.insert(key.as_slice(), value.as_slice())?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

impl wasmtime::CacheStore for FunctionCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        if let Some(value) = self.pending.lock().ok()?.get(key) {
            return Some(Cow::Owned(value.clone()));
        }
        match self.lookup(key) {
            Ok(found) => found.map(Cow::Owned),
            Err(e) => {
                tracing::debug!(error = %format!("{e:#}"), "function cache lookup failed");
                None
            }
        }
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        match self.pending.lock() {
            Ok(mut pending) => {
                pending.insert(key.to_vec(), value);
                true
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::CacheStore as _;

    #[test]
    fn entries_survive_a_flush_and_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("functions.redb");
        let cache = FunctionCache::open(&path).unwrap();
        assert!(cache.get(b"k").is_none());
        assert!(cache.insert(b"k", b"v".to_vec()));
        assert_eq!(cache.get(b"k").as_deref(), Some(&b"v"[..]));
        cache.flush();
        drop(cache);
        let cache = FunctionCache::open(&path).unwrap();
        assert_eq!(cache.get(b"k").as_deref(), Some(&b"v"[..]));
    }
}
