//! What a simulated node is made of: contacts that are bare 8-byte keys and provider entries
//! that are a provider and a lifetime, sized on the wire as the node's real ones are; the
//! latency between two nodes; and the connections a node keeps (a handshake costs bytes when
//! a request goes to a node it has no connection to).

use micro_dht::{Contact, Value};

/// Bytes of a contact as the node sends one: public key, work nonce, two direct addresses and
/// a relay.
pub const CONTACT_BYTES: usize = 100;
/// Bytes of a provider entry as the node sends one: key, the provider's contact, version,
/// interface hash, load, lifetime and an ed25519 signature.
pub const ENTRY_BYTES: usize = 260;
/// QUIC's own bytes per message: packet header, stream frame, AEAD tag, and the ack it draws.
pub const QUIC_BYTES: usize = 60;
/// A QUIC handshake with raw public keys, each way.
pub const HANDSHAKE_BYTES: usize = 1500;
/// Longest lifetime an entry may claim.
pub const MAX_ENTRY_TTL_MS: u64 = 2 * 3600 * 1000;

/// A simulated node as others know it: its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub u64);

/// A 64-bit mix (splitmix64's finaliser): addresses and latencies drawn from keys.
pub fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Contact for Peer {
    type Key = u64;
    fn key(&self) -> u64 {
        self.0
    }
    fn group(&self) -> u64 {
        // A /24 of its own for almost every node: honest nodes are spread over the internet.
        mix(self.0) >> 40
    }
    fn valid(&self) -> bool {
        true
    }
    fn wire_len(&self) -> usize {
        CONTACT_BYTES
    }
}

/// A provider entry: who provides, when it was made and until when it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The providing node's key.
    pub provider: u64,
    /// When it was made.
    pub issued_ms: u64,
    /// Until when it holds.
    pub expires_ms: u64,
}

impl Value for Entry {
    type Key = u64;
    fn provider(&self) -> u64 {
        self.provider
    }
    fn expires_ms(&self) -> u64 {
        self.expires_ms
    }
    fn newer_than(&self, other: &Self) -> bool {
        self.issued_ms > other.issued_ms
    }
    fn valid_for(&self, _key: &u64, now_ms: u64) -> bool {
        self.expires_ms > now_ms && self.expires_ms <= now_ms + MAX_ENTRY_TTL_MS
    }
    fn wire_len(&self) -> usize {
        ENTRY_BYTES
    }
}

/// One-way latency between two nodes: 5 to 100 ms, the same both ways and every time.
pub fn latency_ms(a: u64, b: u64) -> u64 {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    5 + mix(lo ^ mix(hi)) % 96
}

/// The connections a node keeps open, most recent first, bounded as the node's pool is.
#[derive(Debug, Default)]
pub struct Connections {
    recent: Vec<u64>,
}

impl Connections {
    /// Uses the connection to `peer`; false when there was none (a handshake is needed).
    pub fn use_or_open(&mut self, peer: u64, capacity: usize) -> bool {
        if let Some(at) = self.recent.iter().position(|p| *p == peer) {
            self.recent[..=at].rotate_right(1);
            return true;
        }
        if self.recent.len() >= capacity {
            self.recent.pop();
        }
        self.recent.insert(0, peer);
        false
    }

    /// Bytes held.
    pub fn state_bytes(&self) -> usize {
        self.recent.capacity() * 8
    }
}
