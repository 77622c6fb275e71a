//! `wasi:keyvalue` (0.2.0-draft: `store`, `atomics`, `batch`) on each service's own storage
//! namespace, so a component written for another host's key-value store runs here unmodified.
//!
//! The bucket named `""` or `"default"` is the service's namespace itself (the keys `storage`
//! sees); any other bucket is the keys under `<bucket>/` in it. Counters are decimal text, as
//! other hosts keep them.

use crate::storage::{Storage, StorageError};
use wasmtime::component::{HasData, Resource, ResourceTable};

use micro_runtime::wit::keyvalue::{Bucket, atomics, batch, store};

/// How many keys one `list-keys` page holds.
const PAGE: u32 = 100;

impl From<StorageError> for store::Error {
    fn from(e: StorageError) -> Self {
        store::Error::Other(e.to_string())
    }
}

type Outcome<T> = wasmtime::Result<Result<T, store::Error>>;

/// What a call's `wasi:keyvalue` works on: its service's namespace and the call's resource
/// table, where its open buckets are.
pub struct Buckets<'a> {
    storage: &'a Storage,
    namespace: &'a str,
    table: &'a mut ResourceTable,
}

impl<'a> Buckets<'a> {
    /// The buckets of `namespace` in `storage`, opened into `table`.
    pub fn new(storage: &'a Storage, namespace: &'a str, table: &'a mut ResourceTable) -> Self {
        Self {
            storage,
            namespace,
            table,
        }
    }
}

/// Links `wasi:keyvalue` on [`Buckets`] projected from a store's data.
pub struct HasBuckets;

impl HasData for HasBuckets {
    type Data<'a> = Buckets<'a>;
}

impl Buckets<'_> {
    fn bucket(&mut self, bucket: &Resource<Bucket>) -> wasmtime::Result<&mut Bucket> {
        Ok(self.table.get_mut(bucket)?)
    }

    fn key_in(&mut self, bucket: &Resource<Bucket>, key: &str) -> wasmtime::Result<String> {
        Ok(format!("{}{key}", self.bucket(bucket)?.prefix))
    }

    fn read(&self, key: &str) -> Result<Option<Vec<u8>>, store::Error> {
        Ok(self.storage.get(self.namespace, key)?)
    }

    fn write(&self, key: &str, value: Option<&[u8]>) -> Result<(), store::Error> {
        let (storage, service) = (self.storage, self.namespace);
        crate::storage::durable_write(|| match value {
            Some(v) => storage.set(service, key, v),
            None => storage.delete(service, key).map(|_| ()),
        })?;
        Ok(())
    }
}

impl store::Host for Buckets<'_> {
    async fn open(&mut self, identifier: String) -> Outcome<Resource<Bucket>> {
        let prefix = match identifier.as_str() {
            "" | "default" => String::new(),
            name if name.contains('/') => {
                return Ok(Err(store::Error::Other(format!(
                    "bucket {name:?}: a bucket name has no '/'"
                ))));
            }
            name => format!("{name}/"),
        };
        let bucket = self.table.push(Bucket {
            prefix,
            cursors: Vec::new(),
        })?;
        Ok(Ok(bucket))
    }
}

impl store::HostBucket for Buckets<'_> {
    async fn get(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<Option<Vec<u8>>> {
        let key = self.key_in(&bucket, &key)?;
        Ok(self.read(&key))
    }

    async fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> Outcome<()> {
        let key = self.key_in(&bucket, &key)?;
        Ok(self.write(&key, Some(&value)))
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<()> {
        let key = self.key_in(&bucket, &key)?;
        Ok(self.write(&key, None))
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<bool> {
        let key = self.key_in(&bucket, &key)?;
        Ok(self.read(&key).map(|v| v.is_some()))
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> Outcome<store::KeyResponse> {
        let open = self.bucket(&bucket)?;
        let prefix = open.prefix.clone();
        let after = match cursor {
            None | Some(0) => None,
            Some(n) => match open.cursors.get(n as usize - 1) {
                Some(key) => Some(key.clone()),
                None => {
                    return Ok(Err(store::Error::Other(format!(
                        "cursor {n} was not handed out by this bucket"
                    ))));
                }
            },
        };
        let page = match self
            .storage
            .list(self.namespace, &prefix, after.as_deref(), PAGE)
        {
            Ok(page) => page,
            Err(e) => return Ok(Err(e.into())),
        };
        let open = self.bucket(&bucket)?;
        let cursor = page.next.map(|last| {
            open.cursors.push(last);
            open.cursors.len() as u64
        });
        Ok(Ok(store::KeyResponse {
            keys: page
                .entries
                .into_iter()
                .map(|(k, _)| k[prefix.len()..].to_string())
                .collect(),
            cursor,
        }))
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for Buckets<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: u64,
    ) -> Outcome<u64> {
        let key = self.key_in(&bucket, &key)?;
        let (storage, service) = (self.storage, self.namespace);
        // Compare-and-swap until no other call got in between.
        loop {
            let current = match storage.get(service, &key) {
                Ok(v) => v,
                Err(e) => return Ok(Err(e.into())),
            };
            let value = match current.as_deref().map(std::str::from_utf8) {
                None => 0,
                Some(Ok(text)) => match text.trim().parse::<u64>() {
                    Ok(n) => n,
                    Err(_) => {
                        return Ok(Err(store::Error::Other(format!(
                            "{key} holds {text:?}, not a counter"
                        ))));
                    }
                },
                Some(Err(_)) => {
                    return Ok(Err(store::Error::Other(format!(
                        "{key} holds bytes, not a counter"
                    ))));
                }
            };
            let Some(next) = value.checked_add(delta) else {
                return Ok(Err(store::Error::Other(format!("{key} would overflow"))));
            };
            let text = next.to_string();
            let swapped = crate::storage::durable_write(|| {
                storage.compare_and_swap(service, &key, current.as_deref(), Some(text.as_bytes()))
            });
            match swapped {
                Ok(true) => return Ok(Ok(next)),
                Ok(false) => continue,
                Err(e) => return Ok(Err(e.into())),
            }
        }
    }
}

impl batch::Host for Buckets<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Outcome<Vec<Option<(String, Vec<u8>)>>> {
        let mut found = Vec::with_capacity(keys.len());
        for key in keys {
            let full = self.key_in(&bucket, &key)?;
            match self.read(&full) {
                Ok(value) => found.push(value.map(|v| (key, v))),
                Err(e) => return Ok(Err(e)),
            }
        }
        Ok(Ok(found))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Outcome<()> {
        for (key, value) in key_values {
            let full = self.key_in(&bucket, &key)?;
            if let Err(e) = self.write(&full, Some(&value)) {
                return Ok(Err(e));
            }
        }
        Ok(Ok(()))
    }

    async fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> Outcome<()> {
        for key in keys {
            let full = self.key_in(&bucket, &key)?;
            if let Err(e) = self.write(&full, None) {
                return Ok(Err(e));
            }
        }
        Ok(Ok(()))
    }
}
