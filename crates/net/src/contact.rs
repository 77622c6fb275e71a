//! What the DHT carries between nodes, as the node sends it, and the checks that turn it into
//! what `micro-dht` works with: a contact whose key was derived and whose work was verified,
//! and a provider entry whose signature, key and lifetime were. Unchecked data has another type
//! (`WireContact`, `WireEntry`), so nothing from the wire reaches the DHT without its checks.
//! Bodies begin with a format version and only ever grow at the end: an older reader takes the
//! fields it knows and ignores the rest, a newer one reads older bodies by their version.

use micro_base::identity::{self, Identity};
use micro_dht::{Contact, Id, Value, work};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// The format version of contacts and entries this build writes.
pub const FORMAT: u8 = 1;
/// Direct addresses a contact may list.
pub const MAX_ADDRS: usize = 8;
/// Bytes of a relay URL, a service name or a version name at most.
pub const MAX_TEXT: usize = 256;
/// Longest lifetime an entry may claim.
pub const MAX_ENTRY_TTL_MS: u64 = 2 * 3600 * 1000;
/// The namespace of service names in the key space.
pub const SERVICES: &str = "service";
/// The namespace of topics' publishers: a name `publishes:<topic>`.
pub const PUBLISHERS: &str = "publishes";
/// The namespace of topics' subscribing nodes: a name `subscribes:<topic>`.
pub const SUBSCRIBERS: &str = "subscribes";

/// The key a name is provided under. A service (or `name@version`) is a bare name; other
/// namespaces prefix theirs with a colon, which no service name holds. None for a namespace
/// this build does not know.
pub fn key_of(name: &str) -> Option<Id> {
    match name.split_once(':') {
        None => Some(Id::of_name(SERVICES, name)),
        Some((kind @ (PUBLISHERS | SUBSCRIBERS), topic)) => Some(Id::of_name(kind, topic)),
        Some(_) => None,
    }
}

/// The name of `topic` in namespace `kind` ([`PUBLISHERS`] or [`SUBSCRIBERS`]).
pub fn topic_name(kind: &str, topic: &str) -> String {
    format!("{kind}:{topic}")
}

/// A contact as it travels: a node's public key, its work nonce and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireContact {
    /// The node's public key.
    pub node: [u8; 32],
    /// The nonce that makes its DHT key carry the work.
    pub nonce: u64,
    /// Direct addresses of its peer endpoint.
    pub addrs: Vec<SocketAddr>,
    /// A relay it can be reached through.
    pub relay: Option<String>,
}

/// Why a contact or an entry was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckError {
    /// Its key does not carry the work the network asks for.
    #[error("node key of {node} carries {has} bits of work, {wants} are asked")]
    Work {
        /// The node (short form).
        node: String,
        /// The work it carries.
        has: u32,
        /// The work asked for.
        wants: u32,
    },
    /// Over a size limit.
    #[error("{0}")]
    TooLarge(String),
    /// It does not decode.
    #[error("malformed: {0}")]
    Malformed(String),
    /// Its signature does not verify.
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// It names another key than the one it is under.
    #[error("entry for {name:?} does not belong under this key")]
    WrongKey {
        /// The name it provides.
        name: String,
    },
    /// Expired, or claiming too long a life.
    #[error("entry lifetime out of bounds: expires {expires_ms}, now {now_ms}")]
    Lifetime {
        /// When it expires.
        expires_ms: u64,
        /// Now.
        now_ms: u64,
    },
}

impl CheckError {
    /// Whether whoever handed it over forged it (a signature that does not verify, a key
    /// without its work), rather than sent what another build or clock may see otherwise
    /// (a namespace or format this build does not know, another size limit, a lifetime).
    pub fn is_forgery(&self) -> bool {
        matches!(self, Self::BadSignature(_) | Self::Work { .. })
    }
}

impl WireContact {
    /// Checks a contact a peer gave of itself: it must name `remote`, the connection's
    /// authenticated key, and pass [`WireContact::check`]. Why not, as the peer is told.
    pub fn check_from(
        self,
        remote: &iroh::PublicKey,
        work_bits: u32,
    ) -> Result<PeerContact, String> {
        if self.node != *remote.as_bytes() {
            return Err("the contact is not the connection's node".into());
        }
        self.check(work_bits).map_err(|e| e.to_string())
    }

    /// Checks the contact: sizes, and the work of the key its public key and nonce make.
    pub fn check(self, work_bits: u32) -> Result<PeerContact, CheckError> {
        if self.addrs.len() > MAX_ADDRS {
            return Err(CheckError::TooLarge(format!(
                "{} addresses, at most {MAX_ADDRS}",
                self.addrs.len()
            )));
        }
        if self.relay.as_ref().is_some_and(|r| r.len() > MAX_TEXT) {
            return Err(CheckError::TooLarge("relay URL too long".into()));
        }
        let key = work::node_key(&self.node, self.nonce);
        let has = work::work_of(&key);
        if has < work_bits {
            return Err(CheckError::Work {
                node: short(&self.node),
                has,
                wants: work_bits,
            });
        }
        let group = group_of(&self);
        Ok(PeerContact {
            wire: self,
            key,
            group,
        })
    }
}

fn short(node: &[u8; 32]) -> String {
    node[..5].iter().map(|b| format!("{b:02x}")).collect()
}

/// The address group of a contact: its first public IPv4 address's /24 or IPv6 address's /48.
/// Nodes on loopback, a private network or reached only by relay each count as their own
/// group (a LAN is its owner's; a relay serves many strangers).
fn group_of(contact: &WireContact) -> u64 {
    for addr in &contact.addrs {
        match addr.ip() {
            IpAddr::V4(ip) if !(ip.is_loopback() || ip.is_private() || ip.is_link_local()) => {
                let [a, b, c, _] = ip.octets();
                return (4 << 48) | (u64::from(a) << 16) | (u64::from(b) << 8) | u64::from(c);
            }
            IpAddr::V6(ip)
                if !(ip.is_loopback() || ip.is_unique_local() || ip.is_unicast_link_local()) =>
            {
                let s = ip.segments();
                return (6 << 48)
                    | (u64::from(s[0]) << 32)
                    | (u64::from(s[1]) << 16)
                    | u64::from(s[2]);
            }
            _ => {}
        }
    }
    // Its own group: the top bit marks it, the rest is of its key.
    (1 << 63)
        | u64::from_le_bytes([
            contact.node[0],
            contact.node[1],
            contact.node[2],
            contact.node[3],
            contact.node[4],
            contact.node[5],
            contact.node[6],
            0,
        ])
}

/// A checked contact: what the DHT keeps and hands on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerContact {
    wire: WireContact,
    key: Id,
    group: u64,
}

impl PeerContact {
    /// The contact as it travels.
    pub fn wire(&self) -> &WireContact {
        &self.wire
    }
}

impl Contact for PeerContact {
    type Key = Id;
    fn key(&self) -> Id {
        self.key
    }
    fn group(&self) -> u64 {
        self.group
    }
    fn valid(&self) -> bool {
        // Checked when it was made from the wire.
        true
    }
    fn wire_len(&self) -> usize {
        postcard::experimental::serialized_size(&self.wire).unwrap_or(0)
    }
}

/// The work nonce of this node's key, found once and kept in the data directory (`node.work`),
/// found again if the kept one carries less work than asked.
pub fn load_or_solve(
    data_dir: &Path,
    identity: &Identity,
    work_bits: u32,
) -> anyhow::Result<(u64, Id)> {
    use anyhow::Context as _;
    let public = *identity.public().as_bytes();
    let file = data_dir.join("node.work");
    if let Ok(text) = std::fs::read_to_string(&file)
        && let Ok(nonce) = text.trim().parse::<u64>()
        && let Some(key) = work::check(&public, nonce, work_bits)
    {
        return Ok((nonce, key));
    }
    let started = std::time::Instant::now();
    let (nonce, key) = work::solve(&public, work_bits, 0);
    tracing::info!(
        bits = work_bits,
        ms = started.elapsed().as_millis() as u64,
        "made this node's DHT key"
    );
    std::fs::write(&file, nonce.to_string())
        .with_context(|| format!("keeping the DHT key's nonce in {}", file.display()))?;
    Ok((nonce, key))
}

/// What a provider entry says, version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryBody {
    /// The format version ([`FORMAT`]).
    pub format: u8,
    /// The name provided: a service, or `name@version`.
    pub name: String,
    /// How to reach the provider, in its own words.
    pub provider: WireContact,
    /// The version it serves under the name.
    pub version: String,
    /// First 8 bytes of the SHA-256 of the service's WIT.
    pub interface: [u8; 8],
    /// A `wasi:http` component.
    pub http: bool,
    /// Calls in flight on the provider when it made the entry.
    pub load: u32,
    /// When it was made, in ms since the epoch.
    pub issued_ms: u64,
    /// Until when it holds, in ms since the epoch.
    pub expires_ms: u64,
    /// The methods it answers (at most [`MAX_METHODS`]; none for a `wasi:http` component).
    pub methods: Vec<String>,
    /// The provider stopped serving the name: the entry replaces its live one where that is
    /// kept, so lookups stop finding it before its lifetime runs out.
    pub withdrawn: bool,
}

/// An entry as it travels: the encoded body and the provider's signature over it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireEntry {
    /// The postcard-encoded [`EntryBody`].
    pub body: Vec<u8>,
    /// The provider's ed25519 signature over `body`.
    pub signature: Vec<u8>,
}

/// Bytes of an entry's body at most.
pub const MAX_ENTRY_BYTES: usize = 2048;
/// Methods an entry names at most; a service with more is listed by the first ones, and calls
/// to the others are checked by the provider.
pub const MAX_METHODS: usize = 48;

impl EntryBody {
    /// Signs the entry with the provider's key.
    pub fn sign(&self, identity: &Identity) -> WireEntry {
        let body = postcard::to_stdvec(self).unwrap_or_default();
        let signature = identity.sign(&body).to_vec();
        WireEntry { body, signature }
    }
}

impl WireEntry {
    /// Checks the entry: its size, its body, the provider's signature and work, and that it
    /// belongs under the key of its name. Its lifetime is checked against the time by
    /// [`Value::valid_for`].
    pub fn check(self, work_bits: u32) -> Result<ProviderEntry, CheckError> {
        if self.body.len() > MAX_ENTRY_BYTES {
            return Err(CheckError::TooLarge(format!(
                "entry of {} bytes, at most {MAX_ENTRY_BYTES}",
                self.body.len()
            )));
        }
        let body: EntryBody = match self.body.first() {
            Some(&FORMAT) => postcard::from_bytes(&self.body)
                .map_err(|e| CheckError::Malformed(e.to_string()))?,
            // A newer format begins with what this one knows and adds at the end.
            Some(v) if *v > FORMAT => postcard::from_bytes(&self.body)
                .map_err(|e| CheckError::Malformed(format!("format {v}: {e}")))?,
            _ => return Err(CheckError::Malformed("unknown entry format".into())),
        };
        if body.name.len() > MAX_TEXT || body.version.len() > MAX_TEXT {
            return Err(CheckError::TooLarge("name or version too long".into()));
        }
        if body.methods.len() > MAX_METHODS || body.methods.iter().any(|m| m.len() > MAX_TEXT) {
            return Err(CheckError::TooLarge(format!(
                "{} methods, at most {MAX_METHODS} of {MAX_TEXT} bytes",
                body.methods.len()
            )));
        }
        let key = iroh::PublicKey::from_bytes(&body.provider.node)
            .map_err(|e| CheckError::Malformed(format!("provider key: {e}")))?;
        let signature: [u8; 64] = self.signature.as_slice().try_into().map_err(|_| {
            CheckError::BadSignature(format!("{} bytes, not 64", self.signature.len()))
        })?;
        identity::verify(&key, &self.body, &signature)
            .map_err(|e| CheckError::BadSignature(e.to_string()))?;
        let under = key_of(&body.name).ok_or_else(|| {
            CheckError::Malformed(format!("{:?} is in no namespace known here", body.name))
        })?;
        let provider = body.provider.clone().check(work_bits)?;
        Ok(ProviderEntry {
            under,
            provider,
            body,
            wire: self,
        })
    }
}

/// A checked provider entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderEntry {
    /// The key of the name it provides.
    pub under: Id,
    /// The provider, checked.
    pub provider: PeerContact,
    /// What it says.
    pub body: EntryBody,
    /// As it travels (handed on unchanged: its signature covers it).
    pub wire: WireEntry,
}

impl Value for ProviderEntry {
    type Key = Id;
    fn provider(&self) -> Id {
        self.provider.key()
    }
    fn expires_ms(&self) -> u64 {
        self.body.expires_ms
    }
    fn newer_than(&self, other: &Self) -> bool {
        self.body.issued_ms > other.body.issued_ms
    }
    fn valid_for(&self, key: &Id, now_ms: u64) -> bool {
        self.under == *key
            && self.body.expires_ms > now_ms
            && self.body.expires_ms <= now_ms.saturating_add(MAX_ENTRY_TTL_MS)
    }
    fn wire_len(&self) -> usize {
        self.wire.body.len() + self.wire.signature.len() + 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> (tempfile::TempDir, Identity) {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::load_or_create(dir.path()).unwrap();
        (dir, id)
    }

    fn contact(identity: &Identity, nonce: u64, addrs: Vec<SocketAddr>) -> WireContact {
        WireContact {
            node: *identity.public().as_bytes(),
            nonce,
            addrs,
            relay: None,
        }
    }

    #[test]
    fn a_contact_needs_the_work_and_bounded_addresses() {
        let (dir, id) = me();
        let (nonce, key) = load_or_solve(dir.path(), &id, 8).unwrap();
        // Kept: found again without solving.
        assert_eq!(load_or_solve(dir.path(), &id, 8).unwrap(), (nonce, key));
        let good = contact(&id, nonce, vec!["127.0.0.1:4000".parse().unwrap()]);
        assert_eq!(good.clone().check(8).unwrap().key(), key);
        // The same contact asked for more work than it has.
        let has = work::work_of(&key);
        assert!(matches!(good.check(has + 1), Err(CheckError::Work { .. })));
        let many = contact(&id, nonce, vec!["127.0.0.1:1".parse().unwrap(); 9]);
        assert!(matches!(many.check(0), Err(CheckError::TooLarge(_))));
    }

    #[test]
    fn public_neighbours_share_a_group_and_loopback_nodes_do_not() {
        let (_a, a) = me();
        let (_b, b) = me();
        let ga = contact(&a, 0, vec!["203.0.113.7:1".parse().unwrap()])
            .check(0)
            .unwrap();
        let gb = contact(&b, 0, vec!["203.0.113.9:1".parse().unwrap()])
            .check(0)
            .unwrap();
        assert_eq!(ga.group(), gb.group());
        let la = contact(&a, 0, vec!["127.0.0.1:1".parse().unwrap()])
            .check(0)
            .unwrap();
        let lb = contact(&b, 0, vec!["127.0.0.1:2".parse().unwrap()])
            .check(0)
            .unwrap();
        assert_ne!(la.group(), lb.group());
    }

    fn body(id: &Identity, name: &str, now: u64) -> EntryBody {
        EntryBody {
            format: FORMAT,
            name: name.into(),
            provider: contact(id, 0, vec![]),
            version: "v1".into(),
            interface: [1; 8],
            http: false,
            load: 0,
            issued_ms: now,
            expires_ms: now + 60_000,
            methods: vec!["hello".into()],
            withdrawn: false,
        }
    }

    #[test]
    fn an_entry_is_the_providers_own_for_its_name_and_lifetime() {
        let (_a, a) = me();
        let (_b, b) = me();
        let now = 1_000_000;
        let entry = body(&a, "hello", now).sign(&a).check(0).unwrap();
        let key = Id::of_name(SERVICES, "hello");
        assert!(entry.valid_for(&key, now));
        assert!(!entry.valid_for(&Id::of_name(SERVICES, "other"), now));
        assert!(!entry.valid_for(&key, now + 60_000), "expired");
        let mut long = body(&a, "hello", now);
        long.expires_ms = now + MAX_ENTRY_TTL_MS + 1;
        assert!(!long.sign(&a).check(0).unwrap().valid_for(&key, now));
        // Signed by someone else than the provider it names.
        let forged = body(&a, "hello", now).sign(&b);
        assert!(matches!(forged.check(0), Err(CheckError::BadSignature(_))));
        // A changed body.
        let mut changed = body(&a, "hello", now).sign(&a);
        let last = changed.body.len() - 1;
        changed.body[last] ^= 1;
        assert!(changed.check(0).is_err());
        let garbage = WireEntry {
            body: vec![1, 0xff, 0xff],
            signature: vec![0; 64],
        };
        assert!(matches!(garbage.check(0), Err(CheckError::Malformed(_))));
    }

    #[test]
    fn topics_entries_live_in_namespaces_of_their_own() {
        let (_a, a) = me();
        let now = 1_000_000;
        let name = topic_name(PUBLISHERS, "orders");
        assert_eq!(name, "publishes:orders");
        let entry = body(&a, &name, now).sign(&a).check(0).unwrap();
        assert_eq!(entry.under, Id::of_name(PUBLISHERS, "orders"));
        assert_ne!(
            entry.under,
            Id::of_name(SERVICES, "orders"),
            "not the service's key"
        );
        assert_ne!(
            key_of(&topic_name(SUBSCRIBERS, "orders")),
            key_of(&name),
            "subscribers and publishers apart"
        );
        assert_eq!(key_of("hello@v2"), Some(Id::of_name(SERVICES, "hello@v2")));
        // A namespace this build does not know is refused, not filed under a service.
        assert_eq!(key_of("mailboxes:orders"), None);
        let unknown = body(&a, "mailboxes:orders", now).sign(&a).check(0);
        assert!(
            matches!(unknown, Err(CheckError::Malformed(_))),
            "{unknown:?}"
        );
    }

    #[test]
    fn a_newer_format_with_more_fields_is_read_by_this_one() {
        #[derive(Serialize)]
        struct Later {
            body: EntryBody,
            added: String,
        }
        let (_a, a) = me();
        let mut newer = body(&a, "hello", 5);
        newer.format = FORMAT + 1;
        let bytes = postcard::to_stdvec(&Later {
            body: newer.clone(),
            added: "a field this build does not know".into(),
        })
        .unwrap();
        let signature = a.sign(&bytes).to_vec();
        let entry = WireEntry {
            body: bytes,
            signature,
        }
        .check(0)
        .unwrap();
        assert_eq!(entry.body, newer);
    }
}
