//! How peers behave, as far as the peer layer sees it, and whether they are let in. The layer
//! notes what governance should hear of — a peer that sent data that does not verify, what a
//! peer says of others when asked — and asks governance whether to admit a peer, enforcing
//! the answer (refused, throttled). Mechanism only: who is trusted is governance's to say.

use super::Network;
use crate::local::{AdmitError, Local};
use iroh::PublicKey;
use micro_core::system::governance::Refusal;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Notes kept until governance takes them; past it the oldest go.
const MAX_NOTED: usize = 16_384;
/// How long a refused peer stays refused without asking again: a refusal is asked again when
/// the peer itself next knocks.
const REFUSED_FOR: Duration = Duration::from_secs(5);
/// Most reports a node gives, or takes from one peer, at once.
pub const MAX_REPORTS: usize = 32;

/// How much a node trusts another (its governance's `reputation`), as it answers a peer that
/// asks (`Request::Reports`), so that nodes combine what they each saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// Something a peer did that governance should hear of.
#[derive(Debug, Clone)]
pub enum Noted {
    /// It sent us something that did not verify or parse, over a connection it authenticated:
    /// it is to blame.
    Invalid {
        /// The peer.
        peer: PublicKey,
        /// What was wrong.
        why: String,
    },
    /// Asked, it said how much it trusts `about`.
    Reported {
        /// The peer that said so.
        reporter: PublicKey,
        /// The node it reports on.
        about: PublicKey,
        /// How much it trusts it, from 0 to 1.
        score: f64,
    },
}

/// Whether a peer may go on.
#[derive(Debug)]
pub enum Admission {
    /// It may.
    Admitted,
    /// Over the rate governance allows it for now: this request is refused, the peer is not.
    Throttled(String),
    /// Governance refused it: its connections and requests are dropped (why).
    Refused(String),
}

/// What the peer layer noticed of its peers, and which it refused lately.
#[derive(Default)]
pub struct Conduct {
    noted: Mutex<Vec<Noted>>,
    refused: Mutex<HashMap<PublicKey, Instant>>,
    /// What this node says of its peers when asked (set from governance's answers).
    reports: Mutex<Vec<Report>>,
}

impl Conduct {
    /// Notes that `peer` sent data that did not verify or parse.
    pub fn invalid(&self, peer: PublicKey, why: impl std::fmt::Display) {
        tracing::debug!(peer = %peer.fmt_short(), %why, "invalid data from a peer");
        self.note(Noted::Invalid {
            peer,
            why: why.to_string(),
        });
    }

    /// Notes what `reporter` says of others (at most [`MAX_REPORTS`] of it).
    pub fn reported(&self, reporter: PublicKey, reports: &[Report]) {
        for r in reports.iter().take(MAX_REPORTS) {
            if let Ok(about) = PublicKey::from_bytes(&r.node) {
                self.note(Noted::Reported {
                    reporter,
                    about,
                    score: r.score(),
                });
            }
        }
    }

    fn note(&self, noted: Noted) {
        let mut list = micro_base::sync::lock(&self.noted);
        if list.len() >= MAX_NOTED {
            list.remove(0);
        }
        list.push(noted);
    }

    /// Everything noted since the last call.
    pub fn take(&self) -> Vec<Noted> {
        std::mem::take(&mut *micro_base::sync::lock(&self.noted))
    }

    /// Whether governance refused `peer` lately.
    pub fn is_refused(&self, peer: &PublicKey) -> bool {
        let refused = micro_base::sync::lock(&self.refused);
        refused
            .get(peer)
            .is_some_and(|until| *until > Instant::now())
    }

    fn mark_refused(&self, peer: PublicKey, refused: bool) {
        let mut map = micro_base::sync::lock(&self.refused);
        if refused {
            map.insert(peer, Instant::now() + REFUSED_FOR);
        } else {
            map.remove(&peer);
        }
        map.retain(|_, until| *until > Instant::now());
    }

    /// Sets what this node says of its peers.
    pub fn set_reports(&self, reports: Vec<Report>) {
        *micro_base::sync::lock(&self.reports) = reports;
    }

    /// What this node says of its peers.
    pub fn reports(&self) -> Vec<Report> {
        micro_base::sync::lock(&self.reports).clone()
    }
}

/// Asks governance whether `peer` may exchange requests with this node now (the
/// answer is cached for as long as governance allows, so this is cheap on a busy link); no
/// governance to ask means refused.
pub async fn admit(local: &dyn Local, net: &Network, peer: &PublicKey) -> Admission {
    let id = peer.to_string();
    let admission = match local.admit_peer(&id).await {
        Ok(()) => Admission::Admitted,
        Err(AdmitError::Refused(refusal @ Refusal::RateLimited { .. })) => {
            net.stats.throttled.fetch_add(1, Ordering::Relaxed);
            return Admission::Throttled(refusal.to_string());
        }
        Err(AdmitError::Refused(refusal @ Refusal::Denied { .. })) => {
            net.stats.refused_peers.fetch_add(1, Ordering::Relaxed);
            Admission::Refused(refusal.to_string())
        }
        Err(e @ AdmitError::NoGovernance(_)) => return Admission::Refused(e.to_string()),
    };
    let refused = matches!(admission, Admission::Refused(_));
    net.conduct.mark_refused(*peer, refused);
    if refused {
        // No more calls routed to it, no more requests sent to it.
        net.providers.down(peer);
        net.pool.forget(peer);
    }
    admission
}
