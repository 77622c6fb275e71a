//! Reputation from what this node observed: every identity starts at the base level; time
//! online and calls served well raise it, slowly; failures, timeouts and invalid data lower it,
//! quickly. Penalties fade over time, so a peer that behaves again recovers.
//!
//! What other nodes report (in their signed records) counts too, one step of EigenTrust: a
//! report weighs as much as this node trusts its reporter, and only reporters this node's
//! operator pre-trusts or that have been around long enough count at all, so a swarm of fresh
//! keys vouching for each other moves nothing. This node's own penalties always count in full.

use crate::exports::micro::network::governance::Observation;
use std::collections::HashMap;

/// Where every new identity starts: enough to be admitted and to make a few calls.
pub const BASE: f64 = 0.1;
/// Time online that earns the whole age share.
const MATURE_MS: f64 = 24.0 * 3600.0 * 1000.0;
/// The shares of reputation from age and from service.
const AGE_SHARE: f64 = 0.4;
const SERVICE_SHARE: f64 = 0.5;
/// What one invalid record or frame costs, and one failed or timed-out call.
const INVALID_COST: f64 = 0.02;
const FAILURE_COST: f64 = 0.01;
/// Penalties halve over this long.
const HALF_LIFE_MS: f64 = 3600.0 * 1000.0;
/// The least reputation (as this node sees it) of a reporter whose reports count: half a day
/// online, or service to match.
const REPORTER_FLOOR: f64 = 0.3;
/// Reporters remembered per identity; past it the oldest word goes.
const MAX_REPORTERS: usize = 64;

#[derive(Default)]
struct Record {
    online_ms: u64,
    served: u64,
    failed: u64,
    /// The penalty as of `penalty_at_ms`, fading from then.
    penalty: f64,
    penalty_at_ms: u64,
}

impl Record {
    fn penalty(&self, now_ms: u64) -> f64 {
        let elapsed = now_ms.saturating_sub(self.penalty_at_ms) as f64;
        self.penalty * 0.5f64.powf(elapsed / HALF_LIFE_MS)
    }

    fn punish(&mut self, cost: f64, now_ms: u64) {
        self.penalty = self.penalty(now_ms) + cost;
        self.penalty_at_ms = now_ms;
    }
}

/// What a reporter said of an identity.
struct Said {
    score: f64,
    pre_trusted: bool,
}

/// What this node knows of each identity.
#[derive(Default)]
pub struct Ledger {
    records: HashMap<String, Record>,
    /// About whom, who said what.
    reports: HashMap<String, Vec<(String, Said)>>,
}

impl Ledger {
    pub fn observe(&mut self, now_ms: u64, observations: Vec<Observation>) {
        for o in observations {
            match o {
                Observation::Served(s) => self.records.entry(s.node).or_default().served += 1,
                Observation::Failed(node) | Observation::TimedOut(node) => {
                    let r = self.records.entry(node).or_default();
                    r.failed += 1;
                    r.punish(FAILURE_COST, now_ms);
                }
                Observation::Invalid(node) => {
                    self.records
                        .entry(node)
                        .or_default()
                        .punish(INVALID_COST, now_ms);
                }
                Observation::Online(o) => {
                    let r = self.records.entry(o.node).or_default();
                    r.online_ms = r.online_ms.saturating_add(o.ms);
                }
                Observation::Reported(report) => {
                    if report.reporter == report.about || !report.score.is_finite() {
                        continue;
                    }
                    let said = Said {
                        score: report.score.clamp(0.0, 1.0),
                        pre_trusted: report.reporter_pre_trusted,
                    };
                    let list = self.reports.entry(report.about).or_default();
                    list.retain(|(reporter, _)| *reporter != report.reporter);
                    if list.len() >= MAX_REPORTERS {
                        list.remove(0);
                    }
                    list.push((report.reporter, said));
                }
            }
        }
    }

    /// This node's own view blended with what trusted reporters say, less this node's own
    /// penalties.
    pub fn reputation(&self, node: &str, now_ms: u64) -> f64 {
        let own = self.observed(node);
        let penalty = self.records.get(node).map_or(0.0, |r| r.penalty(now_ms));
        let (mut weight, mut sum) = (1.0, own);
        for (reporter, said) in self.reports.get(node).into_iter().flatten() {
            let w = if said.pre_trusted {
                1.0
            } else {
                let trust = self.observed(reporter)
                    - self
                        .records
                        .get(reporter)
                        .map_or(0.0, |r| r.penalty(now_ms));
                if trust < REPORTER_FLOOR {
                    continue;
                }
                trust
            };
            weight += w;
            sum += w * said.score;
        }
        (sum / weight - penalty).clamp(0.0, 1.0)
    }

    /// What this node's own observations earned, before penalties.
    fn observed(&self, node: &str) -> f64 {
        let Some(r) = self.records.get(node) else {
            return BASE;
        };
        let age = AGE_SHARE * (r.online_ms as f64 / MATURE_MS).min(1.0);
        // Calls served well count once there are some: 100 good calls earn half the share.
        let total = (r.served + r.failed) as f64;
        let quality = if total > 0.0 {
            r.served as f64 / total
        } else {
            0.0
        };
        let volume = total / (total + 100.0);
        let service = SERVICE_SHARE * quality * volume;
        (BASE + age + service).clamp(0.0, 1.0)
    }
}
