//! Governance learns what this node sees of its peers: who was online and for how long, what
//! peers report of others (asked of the peers this node checks, never of every node), invalid
//! data; and says how much this node trusts each, which is what this node reports when asked.

use crate::Network;
use crate::local::Local;
use crate::wire::{Reply, Request};
use iroh::PublicKey;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Asks each healthy peer this node checks for its reports (and the governance it runs), once
/// every `network.report_interval_ms`, and notes what they say.
async fn ask_reports(net: &Network, asked: &mut HashMap<PublicKey, Instant>) {
    let every = Duration::from_millis(net.config.network.report_interval_ms.max(100));
    let peers: Vec<_> = net
        .peers
        .all()
        .into_iter()
        .filter(|(_, p)| p.healthy() && p.last_seen_ms.is_some())
        .collect();
    asked.retain(|id, _| peers.iter().any(|(p, _)| p == id));
    let due: Vec<_> = peers
        .into_iter()
        .filter(|(id, _)| asked.get(id).is_none_or(|at| at.elapsed() >= every))
        .collect();
    let answers = futures::future::join_all(due.iter().map(|(id, p)| async move {
        let reports = net
            .exchange(
                &p.addr,
                &Request::Reports,
                64 * 1024,
                net.request_time(),
                "asking for reports",
                |r| match r {
                    Reply::ReportsOf {
                        governance,
                        reports,
                    } => Ok((governance, reports)),
                    // A node of protocol 1 does not say its governance.
                    Reply::Reports(reports) => Ok((String::new(), reports)),
                    other => Err(Box::new(other)),
                },
            )
            .await;
        (*id, reports)
    }))
    .await;
    for (id, reports) in answers {
        asked.insert(id, Instant::now());
        if let Some((governance, reports)) = reports {
            if !governance.is_empty() && governance.len() <= 128 {
                net.peers.set_governance(&id, governance);
            }
            net.conduct.reported(id, &reports);
        }
    }
}

/// Feeds governance what this node sees: every `governance.observe_interval_ms`, the time each
/// healthy peer was online since the last round (by governance's clock), then everything noted
/// since (calls peers answered, failed or let time out; invalid data peers sent; what peers
/// report of others, asked of them). Then asks governance how it trusts each healthy peer,
/// which this node reports when asked. Nothing happens until governance is loaded (the first decision loads
/// it). Without a network (`net` none) it only flushes what governance was told.
pub async fn observe_loop(
    local: Arc<dyn Local>,
    net: Option<Arc<Network>>,
    observe_interval_ms: u64,
) {
    use micro_core::system::governance::{Observation, Online, Report};
    let every = std::time::Duration::from_millis(observe_interval_ms.max(10));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<u64> = None;
    let mut asked: HashMap<PublicKey, Instant> = HashMap::new();
    loop {
        ticks.tick().await;
        let Some(governance) = local.governance_if_loaded() else {
            continue;
        };
        let now = governance.now_ms();
        let elapsed = now.saturating_sub(last.unwrap_or(governance.started_ms));
        last = Some(now);
        let Some(net) = &net else {
            governance.flush_observations().await;
            continue;
        };
        let healthy: Vec<String> = net
            .peers
            .all()
            .into_iter()
            .filter(|(_, p)| p.healthy())
            .map(|(id, _)| id.to_string())
            .collect();
        if elapsed > 0 {
            for id in &healthy {
                governance.observe(Observation::Online(Online {
                    node: id.clone(),
                    ms: elapsed,
                }));
            }
        }
        ask_reports(net, &mut asked).await;
        let askers = &net.askers;
        for noted in net.conduct.take() {
            governance.observe(match noted {
                crate::conduct::Noted::Invalid { peer, why } => {
                    tracing::info!(peer = %peer.fmt_short(), %why, "a peer sent invalid data");
                    Observation::Invalid(peer.to_string())
                }
                crate::conduct::Noted::Reported {
                    reporter,
                    about,
                    score,
                } => {
                    let reporter = reporter.to_string();
                    Observation::Reported(Report {
                        reporter_pre_trusted: askers.pre_trusted(&reporter),
                        reporter,
                        about: about.to_string(),
                        score,
                    })
                }
            });
        }
        governance.flush_observations().await;
        let mut reports: Vec<crate::conduct::Report> = Vec::new();
        if let Some(scores) = governance.reputations(&healthy).await {
            for (id, score) in healthy.iter().zip(scores) {
                if let Ok(key) = micro_base::identity::parse_node_id(id) {
                    reports.push(crate::conduct::Report {
                        node: *key.as_bytes(),
                        score: (score.clamp(0.0, 1.0) * 10_000.0).round() as u16,
                    });
                }
            }
        }
        // The peers it knows best: the most trusted first.
        reports.sort_by_key(|r| std::cmp::Reverse(r.score));
        reports.truncate(crate::conduct::MAX_REPORTS);
        net.conduct.set_reports(reports);
    }
}
