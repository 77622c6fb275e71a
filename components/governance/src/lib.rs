//! The default governance of a micro node, in code anyone can read and replace
//! (`micro governance use <source>`).
//!
//! - Peers are admitted unless their reputation fell below a floor; a peer below the level
//!   every new key starts at (it misbehaved) is throttled first.
//! - Deploys by the node's own user are approved within size and memory caps, and so are
//!   replicas placed here by nodes this one trusts enough.
//! - Calls from the node itself and from the nodes its operator pre-trusts are free; calls from
//!   other nodes honour a service's visibility and come with a rate limit that starts small for
//!   newcomers and grows with reputation.
//! - A service in demand is placed on a few more nodes with capacity and good reputation.
//! - Reputation starts at a base level for every new key (so making keys gains nothing), grows
//!   with time online and calls served well, and drops with failures and invalid data.

mod reputation;

use reputation::Ledger;
use std::cell::RefCell;

wit_bindgen::generate!({
    path: "../../wit",
    world: "governance-world",
});

use exports::micro::network::governance::{
    CallRequest, Decision, DeployRequest, GovernanceInfo, Guest, Obligation, Observation,
    PeerRequest, PlacementRequest, RateLimit, Visibility,
};

/// Below this reputation a peer is refused.
const ADMIT_FLOOR: f64 = 0.05;
/// A component larger than this is not deployed.
const MAX_COMPONENT_BYTES: u64 = 64 << 20;
/// Memory one instance may ask for, in MiB.
const MAX_MEMORY_MIB: u64 = 1024;
/// Services one node runs at most.
const MAX_SERVICES: u32 = 512;
/// Calls per second a remote caller with reputation 0 and 1 may make: a newcomer (0.1) gets
/// about 2000, enough to use the network, too little to flood a node.
const RATE_FLOOR: f64 = 1000.0;
const RATE_CEILING: f64 = 100_000.0;
/// Records and requests per second a throttled peer may send (and bursts of twice that).
const THROTTLED_RATE: f64 = 5.0;
/// Calls per minute from which a service counts as in demand, and how many nodes then run it
/// (its own node included). Once placed, it stays placed until demand falls below a quarter.
const DEMAND: u64 = 600;
const REPLICAS: usize = 3;
/// The least reputation of a node that gets a replica, and of a node whose replicas this node
/// runs: about 18 hours online and no trouble.
const PLACE_FLOOR: f64 = 0.4;

thread_local! {
    static LEDGER: RefCell<Ledger> = RefCell::new(Ledger::default());
}

struct Default;

fn allow(reason: impl Into<String>, ttl_ms: u64, obligations: Vec<Obligation>) -> Decision {
    Decision {
        allow: true,
        reason: reason.into(),
        ttl_ms,
        obligations,
    }
}

fn deny(reason: impl Into<String>, ttl_ms: u64) -> Decision {
    Decision {
        allow: false,
        reason: reason.into(),
        ttl_ms,
        obligations: Vec::new(),
    }
}

/// The call rate a remote caller gets: grows with reputation, from a trickle for newcomers.
pub fn call_rate(reputation: f64) -> RateLimit {
    let r = reputation.clamp(0.0, 1.0);
    let per_second = RATE_FLOOR + (RATE_CEILING - RATE_FLOOR) * r * r;
    RateLimit {
        per_second,
        burst: (per_second * 2.0).ceil() as u32,
    }
}

impl Guest for Default {
    fn info() -> GovernanceInfo {
        GovernanceInfo {
            name: "default".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }

    fn admit_peer(request: PeerRequest) -> Decision {
        if request.peer.pre_trusted {
            return allow("pre-trusted by this node", 60_000, Vec::new());
        }
        let r = request.peer.reputation;
        if r < ADMIT_FLOOR {
            return deny(
                format!("reputation {r:.2} is below the admission floor {ADMIT_FLOOR}"),
                5_000,
            );
        }
        // Below where every new key starts means it misbehaved: throttled until it recovers
        // or falls below the floor; asked again soon either way.
        if r < reputation::BASE {
            return allow(
                format!("reputation {r:.2} is below the base level: throttled"),
                1_000,
                vec![Obligation::RateLimit(RateLimit {
                    per_second: THROTTLED_RATE,
                    burst: (THROTTLED_RATE * 2.0) as u32,
                })],
            );
        }
        allow(format!("reputation {r:.2}"), 5_000, Vec::new())
    }

    fn approve_deploy(request: DeployRequest) -> Decision {
        let deployer = &request.deployer;
        if request.replica {
            if !deployer.pre_trusted && deployer.reputation < PLACE_FLOOR {
                return deny(
                    format!(
                        "a replica from a node of reputation {:.2} (replicas are taken from \
                         {PLACE_FLOOR} up)",
                        deployer.reputation
                    ),
                    0,
                );
            }
        } else if !deployer.local {
            return deny("only the node's own user deploys here", 0);
        }
        if request.size > MAX_COMPONENT_BYTES {
            return deny(
                format!(
                    "the component is {} bytes, over the cap of {MAX_COMPONENT_BYTES}",
                    request.size
                ),
                0,
            );
        }
        if request.memory_mib > MAX_MEMORY_MIB {
            return deny(
                format!(
                    "an instance may use {} MiB, over the cap of {MAX_MEMORY_MIB} MiB",
                    request.memory_mib
                ),
                0,
            );
        }
        if request.running >= MAX_SERVICES {
            return deny(format!("this node runs {MAX_SERVICES} services already"), 0);
        }
        allow("within the node's caps", 0, Vec::new())
    }

    fn authorize_call(request: CallRequest) -> Decision {
        let caller = &request.caller;
        if caller.local {
            return allow("a call from this node", 60_000, Vec::new());
        }
        if caller.pre_trusted {
            return allow("pre-trusted by this node", 60_000, Vec::new());
        }
        if request.visibility == Visibility::Private {
            return deny(
                format!("{} is private to its node", request.service),
                10_000,
            );
        }
        if caller.reputation < ADMIT_FLOOR {
            return deny(
                format!(
                    "the caller's reputation {:.2} is below the floor {ADMIT_FLOOR}",
                    caller.reputation
                ),
                5_000,
            );
        }
        let rate = call_rate(caller.reputation);
        allow(
            format!(
                "reputation {:.2}: up to {:.0} calls/s",
                caller.reputation, rate.per_second
            ),
            5_000,
            vec![Obligation::RateLimit(rate)],
        )
    }

    fn place(request: PlacementRequest) -> Vec<String> {
        let placed = request
            .candidates
            .iter()
            .any(|c| !c.node.local && c.runs_it);
        let demand = if placed { DEMAND / 4 } else { DEMAND };
        if request.calls_per_minute < demand {
            return Vec::new();
        }
        let mut candidates: Vec<_> = request
            .candidates
            .iter()
            .filter(|c| c.node.local || c.node.reputation >= PLACE_FLOOR)
            .collect();
        // Nodes that run it already first (no move for nothing), then the least loaded.
        candidates.sort_by(|a, b| {
            b.runs_it
                .cmp(&a.runs_it)
                .then(a.load.cmp(&b.load))
                .then(a.node.node.cmp(&b.node.node))
        });
        candidates
            .into_iter()
            .take(REPLICAS)
            .map(|c| c.node.node.clone())
            .collect()
    }

    fn observe(now_ms: u64, observations: Vec<Observation>) {
        LEDGER.with(|l| l.borrow_mut().observe(now_ms, observations));
    }

    fn reputation(node: String, now_ms: u64) -> f64 {
        LEDGER.with(|l| l.borrow().reputation(&node, now_ms))
    }
}

export!(Default);
