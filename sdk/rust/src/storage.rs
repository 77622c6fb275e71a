//! The service's own durable key-value store.

use crate::bindings::micro::network::storage as raw;
pub use crate::bindings::micro::network::storage::{Page, StorageError};
use serde::{Serialize, de::DeserializeOwned};

/// The value of `key`, if set.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, StorageError> {
    raw::get(key)
}

/// Sets `key`; durable once this returns.
pub fn set(key: &str, value: &[u8]) -> Result<(), StorageError> {
    raw::set(key, value)
}

/// Deletes `key`; returns whether it existed.
pub fn delete(key: &str) -> Result<bool, StorageError> {
    raw::delete(key)
}

/// One page of the keys starting with `prefix`, after `start_after`.
pub fn list(prefix: &str, start_after: Option<&str>, limit: u32) -> Result<Page, StorageError> {
    raw::list(prefix, start_after, limit)
}

/// Sets `key` to `new` (or deletes it) only if it currently holds `expected`.
pub fn compare_and_swap(
    key: &str,
    expected: Option<&[u8]>,
    new: Option<&[u8]>,
) -> Result<bool, StorageError> {
    raw::compare_and_swap(key, expected, new)
}

/// The value of `key` decoded from JSON; a value that is not valid JSON is an error.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, StorageError> {
    match raw::get(key)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            StorageError::Io(format!("value of {key:?} is not the expected JSON: {e}"))
        }),
    }
}

/// Sets `key` to `value` encoded as JSON.
pub fn set_json<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), StorageError> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| StorageError::Io(format!("encoding {key:?}: {e}")))?;
    raw::set(key, &bytes)
}
