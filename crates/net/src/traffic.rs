//! Bytes of `micro/rpc` frames in and out, by kind of message: what a node spends on each part
//! of the protocol, for `/api/network` and the scale benchmark. Counted where frames are read
//! and written (an atomic add each); QUIC's, TLS's and the overlay's own bytes are not frames
//! and are not here.

use crate::wire::Request;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a frame is part of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Service calls and their answers.
    Call,
    /// Heartbeat pings.
    Ping,
    /// DHT requests and answers.
    Dht,
    /// Event streams: subscriptions and message batches.
    Events,
    /// A publisher's notice to a subscribing node.
    Publishing,
    /// Placements told and asked.
    Placement,
    /// Reputation reports.
    Reports,
    /// Receipts settled.
    Settle,
    /// A served component's bytes or WIT.
    Fetch,
    /// Goodbyes.
    Leaving,
    /// Messages of the previous protocol that are answered but retired.
    Retired,
}

const KINDS: [Kind; 11] = [
    Kind::Call,
    Kind::Ping,
    Kind::Dht,
    Kind::Events,
    Kind::Publishing,
    Kind::Placement,
    Kind::Reports,
    Kind::Settle,
    Kind::Fetch,
    Kind::Leaving,
    Kind::Retired,
];

impl Kind {
    /// The kind of a request, and of the reply to it.
    pub fn of(request: &Request) -> Kind {
        match request {
            Request::Call(_) => Kind::Call,
            Request::Ping => Kind::Ping,
            Request::Dht { .. } => Kind::Dht,
            Request::Events => Kind::Events,
            Request::Publishing { .. } => Kind::Publishing,
            Request::Place { .. } | Request::Placed => Kind::Placement,
            Request::Reports => Kind::Reports,
            Request::Settle { .. } => Kind::Settle,
            Request::Wit { .. } | Request::Component { .. } => Kind::Fetch,
            Request::Leaving => Kind::Leaving,
            Request::Sync { .. } | Request::Push { .. } => Kind::Retired,
        }
    }

    /// Its name in `/api/network`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Call => "call",
            Kind::Ping => "ping",
            Kind::Dht => "dht",
            Kind::Events => "events",
            Kind::Publishing => "publishing",
            Kind::Placement => "placement",
            Kind::Reports => "reports",
            Kind::Settle => "settle",
            Kind::Fetch => "fetch",
            Kind::Leaving => "leaving",
            Kind::Retired => "retired",
        }
    }
}

/// Frame bytes in and out by kind since the node started.
#[derive(Default)]
pub struct Traffic {
    inbound: [AtomicU64; KINDS.len()],
    outbound: [AtomicU64; KINDS.len()],
}

/// One kind's bytes, as `/api/network` shows them.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Bytes {
    /// Bytes of frames read.
    #[serde(rename = "in")]
    pub inbound: u64,
    /// Bytes of frames written.
    #[serde(rename = "out")]
    pub outbound: u64,
}

impl Traffic {
    /// Counts `bytes` of frames read.
    pub fn received(&self, kind: Kind, bytes: usize) {
        self.inbound[kind as usize].fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Counts `bytes` of frames written.
    pub fn sent(&self, kind: Kind, bytes: usize) {
        self.outbound[kind as usize].fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Every kind's bytes so far, by name.
    pub fn snapshot(&self) -> BTreeMap<&'static str, Bytes> {
        KINDS
            .iter()
            .map(|&k| {
                (
                    k.name(),
                    Bytes {
                        inbound: self.inbound[k as usize].load(Ordering::Relaxed),
                        outbound: self.outbound[k as usize].load(Ordering::Relaxed),
                    },
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_counted_under_their_kind_only() {
        let t = Traffic::default();
        t.sent(Kind::of(&Request::Ping), 10);
        t.received(Kind::Ping, 4);
        t.sent(Kind::Dht, 7);
        let s = t.snapshot();
        assert_eq!(
            s["ping"],
            Bytes {
                inbound: 4,
                outbound: 10
            }
        );
        assert_eq!(
            s["dht"],
            Bytes {
                inbound: 0,
                outbound: 7
            }
        );
        assert_eq!(s["call"], Bytes::default());
        assert_eq!(s.len(), KINDS.len());
    }

    #[test]
    fn every_kind_has_its_own_slot() {
        for (i, k) in KINDS.iter().enumerate() {
            assert_eq!(*k as usize, i, "{k:?}");
        }
    }
}
