//! Node announcements: what a node serves and how to reach it, signed by the node so any peer
//! can relay it and every receiver can check it.

use iroh::PublicKey;
use micro_base::identity::{self, Identity};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// Longest lifetime a record may claim; longer ones are refused.
pub const MAX_TTL_MS: u64 = 10 * 60 * 1000;

/// One service in a node's announcement: compact, the WIT is fetched on demand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceEntry {
    /// The service's name.
    pub name: String,
    /// The version's name.
    pub version: String,
    /// First 8 bytes of the SHA-256 of the service's WIT.
    pub interface: [u8; 8],
    /// The methods it answers.
    pub methods: Vec<String>,
    /// A `wasi:http` component (answers any path) rather than a `micro` service.
    pub http: bool,
    /// The version new calls go to on that node; the others it lists are superseded versions
    /// that still answer calls pinned to them (`name@version`).
    pub serving: bool,
}

/// A measured link to another node, for the network graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The other node.
    pub node: [u8; 32],
    /// Measured round-trip time to it, in µs.
    pub rtt_us: u32,
}

/// How much the announcing node trusts another (its governance's `reputation`), so that
/// nodes combine what they each saw; signed with the record, so a forged report is an invalid
/// record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The node reported on.
    pub node: [u8; 32],
    /// From 0 to 10 000 (for 0 to 1).
    pub score: u16,
}

impl Report {
    /// The score as governance takes it, from 0 to 1.
    pub fn score(&self) -> f64 {
        f64::from(self.score.min(10_000)) / 10_000.0
    }
}

/// A service of the announcing node that its governance placed on other nodes too: each of
/// `nodes` runs the version whose component has the hash `component`, fetched from a node
/// that has it and checked against the hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// The service.
    pub service: String,
    /// The version placed.
    pub version: String,
    /// The component's content hash (hex SHA-256).
    pub component: String,
    /// The nodes placed to run it.
    pub nodes: Vec<[u8; 32]>,
}

/// A node's announcement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The announcing node's public key.
    pub node: [u8; 32],
    /// Grows with every announcement of the node; an older or repeated one is refused.
    pub seq: u64,
    /// When the record was issued, by the node's clock.
    pub issued_ms: u64,
    /// How long it lives, in ms (at most `MAX_TTL_MS`).
    pub ttl_ms: u64,
    /// Direct addresses of the node's peer endpoint.
    pub addrs: Vec<SocketAddr>,
    /// The relay the node can be reached through.
    pub relay: Option<String>,
    /// The services it serves.
    pub services: Vec<ServiceEntry>,
    /// Its measured links to other nodes.
    pub links: Vec<Link>,
    /// Calls in flight when the record was made.
    pub load: u32,
    /// The node is shutting down: drop its routes now.
    pub leaving: bool,
    /// The governance the node runs ("name version"; empty until it is loaded).
    pub governance: String,
    /// What the node thinks of the peers it knows best.
    pub reports: Vec<Report>,
    /// Where its governance placed replicas of its services.
    pub placements: Vec<Placement>,
}

/// A record as it travels: the encoded record and the node's signature over it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedRecord {
    /// The postcard-encoded record.
    pub body: Vec<u8>,
    /// The node's ed25519 signature over `body`.
    pub signature: Vec<u8>,
}

/// Why a record was refused.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("malformed record: {0}")]
    /// It does not decode.
    Malformed(String),
    #[error("bad signature: {0}")]
    /// Its signature does not verify against its node.
    BadSignature(String),
    #[error("replayed record: sequence {got} of node {node} is not newer than {have}")]
    /// Not newer than the record held.
    Replayed {
        /// The node.
        node: String,
        /// The sequence received.
        got: u64,
        /// The sequence held.
        have: u64,
    },
    #[error("record of node {node} claims a lifetime of {ttl_ms} ms, over the limit")]
    /// It claims to live longer than `MAX_TTL_MS`.
    TtlTooLong {
        /// The node.
        node: String,
        /// The lifetime it claims.
        ttl_ms: u64,
    },
    #[error("node {node} is refused by governance")]
    /// Governance refused the node.
    Refused {
        /// The node.
        node: String,
    },
}

impl NodeRecord {
    /// The node's id.
    pub fn id(&self) -> Result<PublicKey, RecordError> {
        PublicKey::from_bytes(&self.node)
            .map_err(|e| RecordError::Malformed(format!("node key: {e}")))
    }

    /// Signs the record with the node's key.
    pub fn sign(&self, identity: &Identity) -> SignedRecord {
        let body = postcard::to_stdvec(self).unwrap_or_default();
        let signature = identity.sign(&body).to_vec();
        SignedRecord { body, signature }
    }
}

impl SignedRecord {
    /// Decodes the record and checks it was signed by the node it names.
    pub fn open(&self) -> Result<NodeRecord, RecordError> {
        let record: NodeRecord =
            postcard::from_bytes(&self.body).map_err(|e| RecordError::Malformed(e.to_string()))?;
        let key = record.id()?;
        let signature: [u8; 64] = self.signature.as_slice().try_into().map_err(|_| {
            RecordError::BadSignature(format!("{} bytes, not 64", self.signature.len()))
        })?;
        identity::verify(&key, &self.body, &signature)
            .map_err(|e| RecordError::BadSignature(e.to_string()))?;
        if record.ttl_ms > MAX_TTL_MS {
            return Err(RecordError::TtlTooLong {
                node: key.fmt_short().to_string(),
                ttl_ms: record.ttl_ms,
            });
        }
        Ok(record)
    }

    /// Encoded size, as it would travel in a gossip message.
    pub fn encoded_len(&self) -> usize {
        self.body.len() + self.signature.len() + 8
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn record(identity: &Identity, seq: u64) -> NodeRecord {
        NodeRecord {
            node: *identity.public().as_bytes(),
            seq,
            issued_ms: 1,
            ttl_ms: 30_000,
            addrs: vec!["127.0.0.1:4000".parse().unwrap()],
            relay: None,
            services: vec![ServiceEntry {
                name: "hello".into(),
                version: "v1".into(),
                interface: [1; 8],
                methods: vec!["hello".into()],
                http: false,
                serving: true,
            }],
            links: vec![],
            load: 0,
            leaving: false,
            governance: String::new(),
            reports: Vec::new(),
            placements: Vec::new(),
        }
    }

    #[test]
    fn signed_records_open_and_forgeries_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let me = Identity::load_or_create(dir.path()).unwrap();
        let signed = record(&me, 1).sign(&me);
        assert_eq!(signed.open().unwrap(), record(&me, 1));

        // Someone else's key signing a record that names this node.
        let other_dir = tempfile::tempdir().unwrap();
        let other = Identity::load_or_create(other_dir.path()).unwrap();
        let mut forged = record(&me, 2).sign(&other);
        assert!(matches!(forged.open(), Err(RecordError::BadSignature(_))));

        // A relay changing the body.
        forged = signed.clone();
        let last = forged.body.len() - 1;
        forged.body[last] ^= 1;
        assert!(forged.open().is_err());

        let garbage = SignedRecord {
            body: vec![0xff; 10],
            signature: vec![0; 64],
        };
        assert!(matches!(garbage.open(), Err(RecordError::Malformed(_))));
    }
}
