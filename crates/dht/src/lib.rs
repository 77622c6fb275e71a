//! A Kademlia DHT written sans-IO: the protocol as state machines that take events and the
//! time and give back messages to send and when to wake, with no socket, clock or task of its
//! own. The peer layer (`micro-net`) runs it over iroh; the simulator (`micro-sim`) runs up to
//! a million nodes of it on one machine, seeded and deterministic. One code path for both is
//! the point: what the simulator measures is what the node does.
//!
//! What it keeps per node is bounded by the parameters, never by the network's size: a routing
//! table of k contacts per bucket (about k × log2(N / k) in all), the provider entries of the
//! keys it is closest to (bounded per key and in all, each expiring), and the lookups and
//! requests in flight (bounded).
//!
//! - [`key`]: the key space and XOR distance; [`work`]: node keys that cost work to make;
//! - [`peer`]: what the protocol needs of contacts and provider entries;
//! - [`table`]: the routing table; [`store`]: entries kept for others;
//! - [`query`]: one iterative lookup over disjoint paths; [`message`]: requests and answers;
//! - [`node`]: one node as a state machine.

pub mod key;
pub mod message;
pub mod node;
pub mod peer;
pub mod query;
pub mod store;
pub mod table;
pub mod work;

pub use key::{Id, Key};
pub use message::{Request, Response};
pub use node::{Busy, Dht, Outcome, Output, QueryId, RequestId};
pub use peer::{Contact, Value};
pub use store::Refusal;

use serde::{Deserialize, Serialize};

/// The protocol's parameters. Every node of a network should use the same; the defaults are
/// the ones the simulator measured (BENCHMARKS.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Params {
    /// Contacts per bucket, and how many closest nodes a lookup converges on.
    pub k: usize,
    /// Requests a lookup has in flight at once, spread over its paths.
    pub alpha: usize,
    /// Disjoint paths a lookup follows.
    pub paths: usize,
    /// Closest nodes a provider entry is stored on.
    pub replication: usize,
    /// Contacts of one address group a bucket keeps.
    pub per_group: usize,
    /// Requests one lookup sends at most.
    pub max_requests: u32,
    /// Lookups running at once at most.
    pub max_lookups: usize,
    /// How long a request may go unanswered.
    pub request_timeout_ms: u64,
    /// A bucket no lookup went into for this long is refreshed.
    pub refresh_ms: u64,
    /// At most one refresh lookup starts per this interval.
    pub refresh_spacing_ms: u64,
    /// How often an entry this node provides is stored again.
    pub republish_ms: u64,
    /// Entries kept under one key.
    pub providers_per_key: usize,
    /// Keys kept for others.
    pub max_keys: usize,
    /// Entries handed out in one answer: as many as a node keeps under one key, so an answer
    /// never hides the oldest of them (a topic's subscribers are all wanted).
    pub providers_per_answer: usize,
    /// How often expired entries are swept.
    pub sweep_ms: u64,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            k: 20,
            alpha: 3,
            paths: 3,
            replication: 8,
            per_group: 2,
            max_requests: 96,
            max_lookups: 64,
            request_timeout_ms: 2_000,
            refresh_ms: 15 * 60_000,
            refresh_spacing_ms: 60_000,
            republish_ms: 10 * 60_000,
            providers_per_key: 20,
            max_keys: 2_048,
            providers_per_answer: 20,
            sweep_ms: 60_000,
        }
    }
}
