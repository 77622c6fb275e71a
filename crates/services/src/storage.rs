//! Durable key-value storage, one namespace per service (the `storage` WIT interface).
//!
//! Every service's keys live in one redb table under a `(namespace, key)` pair, so a service can
//! only ever name its own keys: the namespace comes from the host, never from the component.
//! Writes commit with redb's immediate durability before they are acknowledged.

use micro_base::config::StorageLimits;
use micro_runtime::wit::micro::network::storage as wit;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::sync::Arc;
use wasmtime::component::HasData;

const KV: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("kv");

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The key is empty or too long.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The value is over the node's limit.
    #[error("value of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The value's size.
        size: usize,
        /// The node's limit.
        limit: usize,
    },
    /// The database failed.
    #[error("store: {0}")]
    Io(String),
}

impl<E: Into<redb::Error>> From<E> for StorageError {
    fn from(e: E) -> Self {
        Self::Io(e.into().to_string())
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Keys and values, in key order.
    pub entries: Vec<(String, Vec<u8>)>,
    /// The key to list after for the next page; none on the last.
    pub next: Option<String>,
}

/// The node's key-value store.
#[derive(Clone)]
pub struct Storage {
    db: Arc<Database>,
    limits: StorageLimits,
}

impl Storage {
    /// Opens the store on the node's database.
    pub fn new(db: Arc<Database>, limits: StorageLimits) -> Result<Self, StorageError> {
        let tx = db.begin_write()?;
        tx.open_table(KV)?;
        tx.commit()?;
        Ok(Self { db, limits })
    }

    fn check_key(&self, key: &str) -> Result<(), StorageError> {
        if key.is_empty() {
            return Err(StorageError::InvalidKey("a key may not be empty".into()));
        }
        if key.len() > self.limits.max_key_bytes {
            return Err(StorageError::InvalidKey(format!(
                "key of {} bytes exceeds the limit of {} bytes",
                key.len(),
                self.limits.max_key_bytes
            )));
        }
        Ok(())
    }

    fn check_value(&self, value: &[u8]) -> Result<(), StorageError> {
        if value.len() > self.limits.max_value_bytes {
            return Err(StorageError::TooLarge {
                size: value.len(),
                limit: self.limits.max_value_bytes,
            });
        }
        Ok(())
    }

    /// The value of `key` in `namespace`.
    pub fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.check_key(key)?;
        let tx = self.db.begin_read()?;
        let table = tx.open_table(KV)?;
        Ok(table.get((namespace, key))?.map(|v| v.value().to_vec()))
    }

    /// Sets `key`; durable when this returns.
    pub fn set(&self, namespace: &str, key: &str, value: &[u8]) -> Result<(), StorageError> {
        self.check_key(key)?;
        self.check_value(value)?;
        let tx = self.db.begin_write()?;
        tx.open_table(KV)?.insert((namespace, key), value)?;
        tx.commit()?;
        Ok(())
    }

    /// Deletes `key`; returns whether it existed.
    pub fn delete(&self, namespace: &str, key: &str) -> Result<bool, StorageError> {
        self.check_key(key)?;
        let tx = self.db.begin_write()?;
        let existed = tx.open_table(KV)?.remove((namespace, key))?.is_some();
        tx.commit()?;
        Ok(existed)
    }

    /// Keys of `namespace` starting with `prefix`, in order, strictly after `start_after`.
    pub fn list(
        &self,
        namespace: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: u32,
    ) -> Result<Page, StorageError> {
        let limit = limit.clamp(1, self.limits.max_page) as usize;
        let tx = self.db.begin_read()?;
        let table = tx.open_table(KV)?;
        let from = match start_after {
            Some(after) if after >= prefix => after,
            _ => prefix,
        };
        let mut entries = Vec::new();
        let mut next = None;
        for item in table.range((namespace, from)..)? {
            let (k, v) = item?;
            let (ns, key) = k.value();
            if ns != namespace || !key.starts_with(prefix) {
                break;
            }
            if start_after == Some(key) {
                continue;
            }
            if entries.len() == limit {
                next = entries.last().map(|(k, _): &(String, Vec<u8>)| k.clone());
                break;
            }
            entries.push((key.to_string(), v.value().to_vec()));
        }
        Ok(Page { entries, next })
    }

    /// Sets `key` to `new` (or deletes it when `None`) only if it holds `expected` now.
    pub fn compare_and_swap(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StorageError> {
        self.check_key(key)?;
        if let Some(v) = new {
            self.check_value(v)?;
        }
        let tx = self.db.begin_write()?;
        let swapped = {
            let mut table = tx.open_table(KV)?;
            let current = table.get((namespace, key))?.map(|v| v.value().to_vec());
            if current.as_deref() != expected {
                false
            } else {
                match new {
                    Some(v) => table.insert((namespace, key), v)?,
                    None => table.remove((namespace, key))?,
                };
                true
            }
        };
        if swapped {
            tx.commit()?;
        } else {
            tx.abort()?;
        }
        Ok(swapped)
    }
}

impl From<StorageError> for wit::StorageError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::InvalidKey(m) => Self::InvalidKey(m),
            e @ StorageError::TooLarge { .. } => Self::TooLarge(e.to_string()),
            StorageError::Io(m) => Self::Io(m),
        }
    }
}

/// One service's namespace of the store, as a call of it sees it: the view the `storage`
/// interface is implemented on (the namespace is the host's, never the component's).
pub struct Namespace<'a> {
    storage: &'a Storage,
    name: &'a str,
}

impl<'a> Namespace<'a> {
    /// The keys of `name` (a service's name; `system/ledger` for the ledger) in `storage`.
    pub fn new(storage: &'a Storage, name: &'a str) -> Self {
        Self { storage, name }
    }
}

/// Links `storage` on a [`Namespace`] projected from a store's data.
pub struct HasNamespace;

impl HasData for HasNamespace {
    type Data<'a> = Namespace<'a>;
}

impl wit::Host for Namespace<'_> {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, wit::StorageError> {
        Ok(self.storage.get(self.name, &key)?)
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), wit::StorageError> {
        Ok(durable_write(|| self.storage.set(self.name, &key, &value))?)
    }

    async fn delete(&mut self, key: String) -> Result<bool, wit::StorageError> {
        Ok(durable_write(|| self.storage.delete(self.name, &key))?)
    }

    async fn list(
        &mut self,
        prefix: String,
        start_after: Option<String>,
        limit: u32,
    ) -> Result<wit::Page, wit::StorageError> {
        let page = self
            .storage
            .list(self.name, &prefix, start_after.as_deref(), limit)?;
        Ok(wit::Page {
            entries: page.entries,
            next: page.next,
        })
    }

    async fn compare_and_swap(
        &mut self,
        key: String,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, wit::StorageError> {
        Ok(durable_write(|| {
            self.storage
                .compare_and_swap(self.name, &key, expected.as_deref(), new.as_deref())
        })?)
    }
}

/// Runs a write that waits for the disk (fsync) without holding up the executor: the worker's
/// other tasks move to another thread meanwhile. Outside a multi-threaded runtime it just runs.
pub(crate) fn durable_write<T>(write: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(write),
        _ => write(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Storage) {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("db")).unwrap());
        let limits = StorageLimits {
            max_key_bytes: 16,
            max_value_bytes: 8,
            max_page: 2,
        };
        (dir, Storage::new(db, limits).unwrap())
    }

    #[test]
    fn namespaces_are_isolated() {
        let (_d, s) = store();
        s.set("a", "k", b"1").unwrap();
        assert_eq!(s.get("b", "k").unwrap(), None);
        assert_eq!(s.get("a", "k").unwrap(), Some(b"1".to_vec()));
        assert_eq!(s.list("b", "", None, 10).unwrap().entries, vec![]);
    }

    #[test]
    fn list_pages_through_a_prefix_only() {
        let (_d, s) = store();
        for k in ["p/1", "p/2", "p/3", "q/1"] {
            s.set("n", k, k.as_bytes()).unwrap();
        }
        s.set("m", "p/0", b"other").unwrap();
        let first = s.list("n", "p/", None, 10).unwrap();
        assert_eq!(first.entries.len(), 2, "capped at max_page");
        assert_eq!(first.next.as_deref(), Some("p/2"));
        let second = s.list("n", "p/", first.next.as_deref(), 10).unwrap();
        let keys: Vec<_> = second.entries.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["p/3"]);
        assert_eq!(second.next, None);
    }

    #[test]
    fn compare_and_swap_only_swaps_on_match() {
        let (_d, s) = store();
        assert!(s.compare_and_swap("n", "k", None, Some(b"1")).unwrap());
        assert!(!s.compare_and_swap("n", "k", None, Some(b"2")).unwrap());
        assert!(
            !s.compare_and_swap("n", "k", Some(b"0"), Some(b"2"))
                .unwrap()
        );
        assert!(s.compare_and_swap("n", "k", Some(b"1"), None).unwrap());
        assert_eq!(s.get("n", "k").unwrap(), None);
    }

    #[test]
    fn limits_are_enforced_with_specific_errors() {
        let (_d, s) = store();
        assert!(matches!(
            s.set("n", "", b"x"),
            Err(StorageError::InvalidKey(_))
        ));
        assert!(matches!(
            s.set("n", &"k".repeat(17), b"x"),
            Err(StorageError::InvalidKey(_))
        ));
        assert!(matches!(
            s.set("n", "k", &[0; 9]),
            Err(StorageError::TooLarge { .. })
        ));
        assert!(s.delete("n", "k").is_ok_and(|existed| !existed));
    }
}
