//! The network's registry as this node knows it: the latest signed record of every other node,
//! each expiring when its lifetime runs out. Lifetimes count from when a record was issued (as
//! reported by whoever relayed it), so relaying never keeps a dead node's record alive.

use super::records::{NodeRecord, RecordError, ServiceEntry, SignedRecord};
use iroh::PublicKey;
use micro_base::changes::Changes;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::watch;

struct Entry {
    record: NodeRecord,
    signed: SignedRecord,
    /// When the record was issued, on this node's clock.
    issued: Instant,
}

/// What became of an offered record.
#[derive(Debug, PartialEq, Eq)]
pub enum Offered {
    /// Newer than what we had: stored.
    New,
    /// We already have this one or a newer one (a normal echo of gossip).
    Known,
    /// Already expired on arrival.
    Expired,
}

/// The records of other nodes.
pub struct Directory {
    me: PublicKey,
    entries: Mutex<HashMap<PublicKey, Entry>>,
    /// The highest sequence seen of every node, kept after its record expires, so an old
    /// record replayed later is refused.
    highest: Mutex<HashMap<PublicKey, u64>>,
    changed: Changes,
}

/// A live record with how long it has left.
pub struct Live {
    /// The node.
    pub id: PublicKey,
    /// Its record.
    pub record: NodeRecord,
    /// How long the record has to live.
    pub expires_in: Duration,
}

impl Directory {
    /// An empty directory for node `me` (whose own records are ignored).
    pub fn new(me: PublicKey) -> Self {
        Self {
            me,
            entries: Mutex::default(),
            highest: Mutex::default(),
            changed: Changes::default(),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<PublicKey, Entry>> {
        micro_base::sync::lock(&self.entries)
    }

    /// A receiver that sees every change of the directory.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.changed.watch()
    }

    /// How many times the directory changed.
    pub fn changes(&self) -> u64 {
        self.changed.count()
    }

    fn notify(&self) {
        self.changed.notify();
    }

    /// Offers a record that is `age` old; checks it and keeps it if it is the newest.
    pub fn offer(&self, signed: &SignedRecord, age: Duration) -> Result<Offered, RecordError> {
        self.offer_unless(signed, age, |_| false)
    }

    /// As [`Self::offer`], refusing the records of nodes for which `refused` says so.
    pub fn offer_unless(
        &self,
        signed: &SignedRecord,
        age: Duration,
        refused: impl Fn(&PublicKey) -> bool,
    ) -> Result<Offered, RecordError> {
        let record = signed.open()?;
        let id = record.id()?;
        if id == self.me {
            return Ok(Offered::Known);
        }
        if refused(&id) {
            return Err(RecordError::Refused {
                node: id.fmt_short().to_string(),
            });
        }
        let lifetime = Duration::from_millis(record.ttl_ms);
        if age >= lifetime && !record.leaving {
            return Ok(Offered::Expired);
        }
        {
            let mut highest = micro_base::sync::lock(&self.highest);
            let have = highest.get(&id).copied().unwrap_or(0);
            if record.seq <= have {
                let mine = self.entries().get(&id).map(|e| e.signed == *signed);
                return match mine {
                    // The very record we hold, echoed back by gossip or a sync.
                    Some(true) => Ok(Offered::Known),
                    _ if record.seq == have => Ok(Offered::Known),
                    _ => Err(RecordError::Replayed {
                        node: id.fmt_short().to_string(),
                        got: record.seq,
                        have,
                    }),
                };
            }
            highest.insert(id, record.seq);
        }
        let now = Instant::now();
        let issued = now.checked_sub(age).unwrap_or(now);
        {
            let mut entries = self.entries();
            if record.leaving {
                entries.remove(&id);
            } else {
                entries.insert(
                    id,
                    Entry {
                        record,
                        signed: signed.clone(),
                        issued,
                    },
                );
            }
        }
        self.notify();
        Ok(Offered::New)
    }

    /// Drops records whose lifetime ran out; returns the nodes dropped.
    pub fn expire(&self) -> Vec<PublicKey> {
        let now = Instant::now();
        let mut gone = Vec::new();
        self.entries().retain(|id, e| {
            let alive = now.duration_since(e.issued) < Duration::from_millis(e.record.ttl_ms);
            if !alive {
                gone.push(*id);
            }
            alive
        });
        if !gone.is_empty() {
            self.notify();
        }
        gone
    }

    /// Every live record.
    pub fn live(&self) -> Vec<Live> {
        let now = Instant::now();
        self.entries()
            .iter()
            .filter_map(|(id, e)| {
                let left = Duration::from_millis(e.record.ttl_ms)
                    .checked_sub(now.duration_since(e.issued))?;
                Some(Live {
                    id: *id,
                    record: e.record.clone(),
                    expires_in: left,
                })
            })
            .collect()
    }

    /// The live nodes serving `service` (optionally one `version`), with the entry each
    /// announced and its announced load. Scans under the lock and copies only the matches:
    /// this runs on every remote call.
    pub fn servers(
        &self,
        service: &str,
        version: Option<&str>,
    ) -> Vec<(PublicKey, ServiceEntry, u32)> {
        let now = Instant::now();
        self.entries()
            .iter()
            .filter(|(_, e)| now.duration_since(e.issued) < Duration::from_millis(e.record.ttl_ms))
            .filter_map(|(id, e)| {
                let entry = e.record.services.iter().find(|s| {
                    s.name == service
                        && match version {
                            None => s.serving,
                            Some(v) => v == s.version,
                        }
                })?;
                Some((*id, entry.clone(), e.record.load))
            })
            .collect()
    }

    /// The live record of one node.
    pub fn get(&self, id: &PublicKey) -> Option<NodeRecord> {
        self.entries().get(id).map(|e| e.record.clone())
    }

    /// (node, sequence) of every record held, for anti-entropy.
    pub fn digest(&self) -> Vec<([u8; 32], u64)> {
        self.entries()
            .iter()
            .map(|(id, e)| (*id.as_bytes(), e.record.seq))
            .collect()
    }

    /// The records newer than the asker's, with their ages.
    pub fn newer_than(&self, known: &[([u8; 32], u64)]) -> Vec<(SignedRecord, u64)> {
        let known: HashMap<[u8; 32], u64> = known.iter().copied().collect();
        let now = Instant::now();
        self.entries()
            .iter()
            .filter(|(id, e)| known.get(id.as_bytes()).is_none_or(|s| *s < e.record.seq))
            .map(|(_, e)| {
                (
                    e.signed.clone(),
                    now.duration_since(e.issued).as_millis() as u64,
                )
            })
            .collect()
    }

    /// Forgets a node's record now (it said it is leaving, or governance refused it).
    pub fn remove(&self, id: &PublicKey) {
        if self.entries().remove(id).is_some() {
            self.notify();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::tests::record;
    use micro_base::identity::Identity;

    fn identity() -> (tempfile::TempDir, Identity) {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::load_or_create(dir.path()).unwrap();
        (dir, id)
    }

    #[test]
    fn newer_records_replace_older_ones_and_replays_are_refused() {
        let (_a, me) = identity();
        let (_b, them) = identity();
        let dir = Directory::new(me.public());
        let r1 = record(&them, 1).sign(&them);
        let r2 = record(&them, 2).sign(&them);
        assert_eq!(dir.offer(&r2, Duration::ZERO).unwrap(), Offered::New);
        assert_eq!(dir.offer(&r2, Duration::ZERO).unwrap(), Offered::Known);
        assert!(matches!(
            dir.offer(&r1, Duration::ZERO),
            Err(RecordError::Replayed { .. })
        ));
        assert_eq!(dir.live().len(), 1);
        assert_eq!(dir.newer_than(&[(*them.public().as_bytes(), 2)]).len(), 0);
        assert_eq!(dir.newer_than(&[(*them.public().as_bytes(), 1)]).len(), 1);
        // Our own record, relayed back to us, is not stored.
        assert_eq!(
            dir.offer(&record(&me, 9).sign(&me), Duration::ZERO)
                .unwrap(),
            Offered::Known
        );
    }

    #[test]
    fn records_expire_by_age_and_relaying_does_not_revive_them() {
        let (_a, me) = identity();
        let (_b, them) = identity();
        let dir = Directory::new(me.public());
        let mut r = record(&them, 5);
        r.ttl_ms = 50;
        let signed = r.sign(&them);
        assert_eq!(
            dir.offer(&signed, Duration::from_millis(60)).unwrap(),
            Offered::Expired
        );
        assert_eq!(
            dir.offer(&signed, Duration::from_millis(40)).unwrap(),
            Offered::New
        );
        let relayed = dir.newer_than(&[]);
        assert!(relayed[0].1 >= 40, "age travels with the record");
        std::thread::sleep(Duration::from_millis(15));
        assert_eq!(dir.expire(), vec![them.public()]);
        assert!(dir.live().is_empty());
        // The expired record comes back from a slow peer: refused as not newer.
        assert!(
            dir.offer(&signed, Duration::ZERO)
                .is_ok_and(|o| o == Offered::Known)
        );
        assert!(dir.live().is_empty());
    }

    #[test]
    fn a_leaving_record_drops_the_node() {
        let (_a, me) = identity();
        let (_b, them) = identity();
        let dir = Directory::new(me.public());
        dir.offer(&record(&them, 1).sign(&them), Duration::ZERO)
            .unwrap();
        let mut bye = record(&them, 2);
        bye.leaving = true;
        assert_eq!(
            dir.offer(&bye.sign(&them), Duration::ZERO).unwrap(),
            Offered::New
        );
        assert!(dir.live().is_empty());
    }
}
