//! `/api/governance…`: which governance decides here, its counters and its decision log.
//! (`POST /api/governance` swaps it: see `builds::use_system`.)

use super::reply::{self, Body};
use hyper::{Response, StatusCode};
use micro_core::node::Node;
use micro_core::system::governance::Loaded;
use serde_json::{Value, json};
use std::sync::Arc;

/// A loaded governance as the API shows it.
pub fn loaded_json(g: &Loaded) -> Value {
    json!({
        "name": g.name,
        "version": g.version,
        "origin": g.origin,
        "component": g.component,
        "generation": g.generation,
    })
}

/// `GET /api/governance`: the governance in use and how many questions it answered.
pub async fn show(node: &Arc<Node>) -> Response<Body> {
    match node.governance().await {
        Ok(governance) => {
            let mut value = loaded_json(&governance.current());
            value["decisions"] = serde_json::json!(governance.counts());
            reply::json(StatusCode::OK, &value)
        }
        Err(e) => reply::error(StatusCode::INTERNAL_SERVER_ERROR, "failed", e),
    }
}

/// `GET /api/governance/log[?limit=N]`: the most recent decisions governance was asked for,
/// newest first (answers reused from the cache are counted, not logged).
pub async fn log(node: &Arc<Node>, query: &str) -> Response<Body> {
    let limit = query
        .split('&')
        .find_map(|p| p.strip_prefix("limit="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(100usize);
    match node.governance().await {
        Ok(governance) => reply::json(StatusCode::OK, &governance.log(limit)),
        Err(e) => reply::error(StatusCode::INTERNAL_SERVER_ERROR, "failed", e),
    }
}

/// `POST /api/governance/clock` with `{"advance_ms": N}`: moves governance's clock forward, for
/// tests of what time earns (reputation); refused unless the node runs with
/// `governance.test_clock`.
pub async fn advance_clock(
    node: &Arc<Node>,
    request: hyper::Request<hyper::body::Incoming>,
) -> Response<Body> {
    #[derive(serde::Deserialize)]
    struct Advance {
        advance_ms: u64,
    }
    if !node.config.governance.test_clock {
        return reply::error(
            StatusCode::FORBIDDEN,
            "denied",
            "governance's clock is the system clock here (governance.test_clock is for tests)",
        );
    }
    let advance: Advance =
        match reply::read_json(request, 4096, r#"{"advance_ms": 86400000}"#).await {
            Ok(a) => a,
            Err(response) => return response,
        };
    match node.governance().await {
        Ok(governance) => {
            governance.advance_clock(advance.advance_ms);
            reply::json(StatusCode::OK, &json!({ "now_ms": governance.now_ms() }))
        }
        Err(e) => reply::error(StatusCode::INTERNAL_SERVER_ERROR, "failed", e),
    }
}
