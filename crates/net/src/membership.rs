//! The peers this node knows: how to reach them, when they were first and last seen, their
//! measured round-trip time and load. A peer that stops answering is marked down after a few
//! missed pings and forgotten once it has been silent for a record lifetime.

use iroh::{EndpointAddr, PublicKey};
use micro_base::changes::Changes;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Missed pings in a row after which a peer takes no calls.
const DOWN_AFTER: u32 = 2;

/// One known peer.
#[derive(Debug, Clone)]
pub struct Peer {
    /// How to reach it.
    pub addr: EndpointAddr,
    /// When this node first learned of it, by the node's clock.
    pub first_seen_ms: u64,
    /// When it last answered, by the node's clock.
    pub last_seen_ms: Option<u64>,
    last_seen: Option<Instant>,
    known_since: Instant,
    /// Smoothed round-trip time of pings.
    pub rtt: Option<Duration>,
    /// Calls in flight on it, at its last pong.
    pub load: u32,
    /// Pings missed in a row.
    pub misses: u32,
    /// Where we learned of it: "ticket", "mdns", "neighbour" (the overlay), "route" (a
    /// provider this node calls).
    pub source: &'static str,
    /// The governance it runs, as it last said when asked for its reports.
    pub governance: Option<String>,
}

impl Peer {
    /// Answers pings.
    pub fn healthy(&self) -> bool {
        self.misses < DOWN_AFTER
    }
}

/// The peer table.
pub struct Membership {
    peers: Mutex<HashMap<PublicKey, Peer>>,
    /// Bumped when a peer is learned, goes down, comes back or is forgotten (not on every
    /// ping).
    changed: Changes,
    /// The node's clock, for when peers were first and last seen.
    clock: micro_base::Clock,
}

impl Membership {
    /// No peers yet; peers are stamped with `clock`.
    pub fn new(clock: micro_base::Clock) -> Self {
        Self {
            peers: Mutex::default(),
            changed: Changes::default(),
            clock,
        }
    }

    fn peers(&self) -> std::sync::MutexGuard<'_, HashMap<PublicKey, Peer>> {
        micro_base::sync::lock(&self.peers)
    }

    /// Adds a peer or merges new addresses into a known one.
    pub fn learn(&self, addr: EndpointAddr, source: &'static str) {
        let mut peers = self.peers();
        match peers.get_mut(&addr.id) {
            Some(peer) => {
                for a in addr.addrs {
                    peer.addr.addrs.insert(a);
                }
            }
            None => {
                peers.insert(
                    addr.id,
                    Peer {
                        addr,
                        first_seen_ms: self.clock.now_ms(),
                        last_seen_ms: None,
                        last_seen: None,
                        known_since: Instant::now(),
                        rtt: None,
                        load: 0,
                        misses: 0,
                        source,
                        governance: None,
                    },
                );
                drop(peers);
                self.changed.notify();
            }
        }
    }

    /// Records an answered ping.
    pub fn answered(&self, id: &PublicKey, rtt: Duration, load: u32) {
        if let Some(peer) = self.peers().get_mut(id) {
            peer.last_seen = Some(Instant::now());
            peer.last_seen_ms = Some(self.clock.now_ms());
            // Smooth as TCP does (7/8 old + 1/8 new), so one slow ping does not flip routes.
            peer.rtt = Some(match peer.rtt {
                Some(old) => (old * 7 + rtt) / 8,
                None => rtt,
            });
            peer.load = load;
            let was_down = !peer.healthy();
            peer.misses = 0;
            if was_down {
                self.changed.notify();
            }
        }
    }

    /// Records that a peer was reached some other way (it called us, say).
    pub fn heard_from(&self, id: &PublicKey) {
        if let Some(peer) = self.peers().get_mut(id) {
            peer.last_seen = Some(Instant::now());
            peer.last_seen_ms = Some(self.clock.now_ms());
        }
    }

    /// Records a missed ping or a failed connection; true when the peer just went down.
    pub fn missed(&self, id: &PublicKey) -> bool {
        match self.peers().get_mut(id) {
            Some(peer) => {
                peer.misses += 1;
                let down = peer.misses == DOWN_AFTER;
                if down {
                    self.changed.notify();
                }
                down
            }
            None => false,
        }
    }

    /// Notes the governance `id` says it runs.
    pub fn set_governance(&self, id: &PublicKey, label: String) {
        let changed = match self.peers().get_mut(id) {
            Some(peer) if peer.governance.as_deref() != Some(label.as_str()) => {
                peer.governance = Some(label);
                true
            }
            _ => false,
        };
        if changed {
            self.changed.notify();
        }
    }

    /// Forgets `id` now (it said it is leaving).
    pub fn forget(&self, id: &PublicKey) {
        if self.peers().remove(id).is_some() {
            self.changed.notify();
        }
    }

    /// Forgets peers silent for longer than `silence` (since last seen, or since we learned
    /// of them if they never answered); returns them.
    pub fn expire(&self, silence: Duration) -> Vec<PublicKey> {
        let now = Instant::now();
        let mut gone = Vec::new();
        self.peers().retain(|id, p| {
            let since = p.last_seen.unwrap_or(p.known_since);
            let keep = now.duration_since(since) < silence;
            if !keep {
                gone.push(*id);
            }
            keep
        });
        if !gone.is_empty() {
            self.changed.notify();
        }
        gone
    }

    /// A receiver that sees peers learned, going down, coming back and forgotten.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.watch()
    }

    /// How many times the peer table changed (as `watch` sees it).
    pub fn changes(&self) -> u64 {
        self.changed.count()
    }

    /// One peer.
    pub fn get(&self, id: &PublicKey) -> Option<Peer> {
        self.peers().get(id).cloned()
    }

    /// Every known peer.
    pub fn all(&self) -> Vec<(PublicKey, Peer)> {
        self.peers().iter().map(|(k, v)| (*k, v.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iroh::SecretKey;

    #[test]
    fn pings_measure_and_silence_expires() {
        let m = Membership::new(micro_base::Clock::new());
        let id = SecretKey::generate().public();
        m.learn(EndpointAddr::new(id), "ticket");
        m.answered(&id, Duration::from_millis(8), 3);
        m.answered(&id, Duration::from_millis(16), 1);
        let p = m.get(&id).unwrap();
        assert_eq!(p.rtt, Some(Duration::from_millis(9)));
        assert_eq!(p.load, 1);
        assert!(p.healthy());
        m.missed(&id);
        m.missed(&id);
        assert!(!m.get(&id).unwrap().healthy());
        assert!(m.expire(Duration::from_secs(60)).is_empty());
        assert_eq!(m.expire(Duration::ZERO), vec![id]);
    }
}
