//! `GET /api/node`: what this node is doing — its resource use, the calls and errors of every
//! live version, the broker's and the peer layer's counters, tokens earned and spent. The dashboard's Node page reads it.

use super::Gateway;
use super::reply::{self, Body};
use hyper::{Response, StatusCode};
use serde_json::json;
use std::sync::atomic::Ordering;

/// Answers `GET /api/node`.
pub async fn stats(gw: &Gateway) -> Response<Body> {
    let node = &gw.node;
    let services: Vec<_> = node
        .registry
        .all_live()
        .into_iter()
        .map(|(d, serving)| {
            let last_error = d
                .stats
                .last_error()
                .map(|(at_ms, message)| json!({ "at_ms": at_ms, "message": message }));
            json!({
                "name": d.record.name,
                "version": d.record.version,
                "serving": serving,
                "calls": d.stats.calls.load(Ordering::Relaxed),
                "errors": d.stats.errors.load(Ordering::Relaxed),
                "in_flight": d.in_flight(),
                "last_error": last_error,
            })
        })
        .collect();
    let topics = node.broker.topics();
    // Tokens earned and spent, per service (since the start) and per peer (from the ledger's
    // books): only once something loaded the ledger.
    let ledger = match node.ledger_if_loaded() {
        Some(ledger) => {
            let peers: Vec<_> = ledger
                .balances(node.clock.now_ms())
                .await
                .unwrap_or_default()
                .into_iter()
                .map(|b| {
                    json!({
                        "account": b.account,
                        // As this node sees it: what it earned from the peer's calls, how
                        // much of that the peer's receipts cover, what it spent at the peer.
                        "earned": b.spent,
                        "received": b.paid,
                        "spent": b.earned,
                    })
                })
                .collect();
            json!({ "services": ledger.flows(), "peers": peers })
        }
        None => serde_json::Value::Null,
    };
    reply::json(
        StatusCode::OK,
        &json!({
            "node": node.id,
            "version": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(),
            "uptime_ms": node.started.elapsed().as_millis() as u64,
            "data_dir": std::fs::canonicalize(&node.data_dir).unwrap_or_else(|_| node.data_dir.clone()),
            "allocator": node.runtime.allocator(),
            "usage": micro_base::usage::read(&node.data_dir),
            "load": node.load.load(Ordering::Relaxed),
            "services": services,
            "broker": {
                "topics": topics.len(),
                "subscribers": topics.iter().map(|(_, _, s)| *s as u64).sum::<u64>(),
                "dropped": node.broker.dropped(),
            },
            "network": gw.net.as_ref().map(|n| n.stats.snapshot()),
            "ledger": ledger,
        }),
    )
}
