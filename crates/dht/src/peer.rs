//! What the protocol needs to know of a contact and of a provider entry, whatever they are:
//! the node fills these with iroh addresses and signed entries, the simulator with bare
//! numbers. Everything a stranger hands over is checked through these before it is used.

use crate::key::Key;
use std::fmt;

/// A node as others are told of it: its key and how to reach it.
pub trait Contact: Clone + fmt::Debug {
    /// The key space.
    type Key: Key;

    /// Its key (for the node: the hash of its public key and work nonce).
    fn key(&self) -> Self::Key;

    /// The address group it is in (an IP prefix): a bucket keeps few contacts of one group, so
    /// one operator with one network cannot fill a node's view.
    fn group(&self) -> u64;

    /// Whether its key is well made: derived from its public key and carrying the work the
    /// network asks for. A contact that is not is never stored or asked.
    fn valid(&self) -> bool;

    /// Bytes it takes in a message.
    fn wire_len(&self) -> usize;
}

/// A provider entry: a node saying it provides something under a key, until a time.
pub trait Value: Clone + fmt::Debug {
    /// The key space.
    type Key: Key;

    /// The providing node's key: a key holds one entry per provider.
    fn provider(&self) -> Self::Key;

    /// Until when it holds, in the protocol's milliseconds.
    fn expires_ms(&self) -> u64;

    /// Whether it replaces `other`, an entry of the same provider.
    fn newer_than(&self, other: &Self) -> bool;

    /// Whether it may be stored under `key` at `now_ms`: well signed, for this key, not expired
    /// and not claiming too long a life.
    fn valid_for(&self, key: &Self::Key, now_ms: u64) -> bool;

    /// Bytes it takes in a message.
    fn wire_len(&self) -> usize;
}
