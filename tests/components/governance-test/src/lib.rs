//! A governance for the tests, whose answers depend only on the question: the method `whoami`
//! is closed to everyone; a question about a service named `trap-me` traps and one about
//! `loop-me` never ends; other nodes may call a service named `limited` twice a second (bursts
//! of 3); everything else is allowed for a second.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "governance-world",
});

use exports::micro::network::governance::{
    CallRequest, Decision, DeployRequest, GovernanceInfo, Guest, Obligation, Observation,
    PeerRequest, PlacementRequest, RateLimit,
};

struct Test;

fn allow(reason: &str) -> Decision {
    Decision {
        allow: true,
        reason: reason.into(),
        ttl_ms: 1000,
        obligations: Vec::new(),
    }
}

impl Guest for Test {
    fn info() -> GovernanceInfo {
        GovernanceInfo {
            name: "test".into(),
            version: "1".into(),
        }
    }

    fn admit_peer(_: PeerRequest) -> Decision {
        allow("every peer")
    }

    fn approve_deploy(_: DeployRequest) -> Decision {
        allow("every deploy")
    }

    fn authorize_call(request: CallRequest) -> Decision {
        match request.service.as_str() {
            "trap-me" => panic!("asked to trap"),
            "loop-me" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "limited" if !request.caller.local => Decision {
                allow: true,
                reason: "limited to 2 calls a second".into(),
                ttl_ms: 1000,
                obligations: vec![Obligation::RateLimit(RateLimit {
                    per_second: 2.0,
                    burst: 3,
                })],
            },
            _ if request.method == "whoami" => Decision {
                allow: false,
                reason: "whoami is closed by the test policy".into(),
                ttl_ms: 1000,
                obligations: Vec::new(),
            },
            _ => allow("open"),
        }
    }

    fn place(_: PlacementRequest) -> Vec<String> {
        Vec::new()
    }

    fn observe(_: u64, _: Vec<Observation>) {}

    fn reputation(_: String, _: u64) -> f64 {
        1.0
    }
}

export!(Test);
