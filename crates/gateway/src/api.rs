//! The JSON API under `/api/`: everything the CLI and the dashboard do.

use super::Gateway;
use super::builds;
use super::calls;
use super::events;
use super::governance;
use super::ledger;
use super::live;
use super::network;
use super::node_stats;
use super::reply::{self, Body};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use micro_core::deploy;
use micro_core::node::Node;
use micro_core::registry::Deployment;
use micro_runtime::DeployError;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Routes `/api/{rest…}`.
pub async fn handle(gw: &Gateway, request: Request<Incoming>, rest: &[&str]) -> Response<Body> {
    let node = &gw.node;
    let method = request.method().clone();
    match (&method, rest) {
        (&Method::GET, ["health"]) => health(node),
        (&Method::GET, ["node"]) => node_stats::stats(gw).await,
        (&Method::GET, ["changes"]) => live::changes(gw),
        (&Method::GET, ["network", "ping", peer]) => {
            network::ping(gw, peer, request.uri().query().unwrap_or("")).await
        }
        (&Method::GET, ["network", rest @ ..]) => {
            network::handle(gw, rest, request.uri().query().unwrap_or("")).await
        }
        (&Method::GET, ["services"]) => {
            let list: Vec<_> = node.registry.list().iter().map(|d| summary(d)).collect();
            reply::json(StatusCode::OK, &list)
        }
        (&Method::POST, ["run"]) => builds::run(node, request).await,
        (&Method::GET, ["sources"]) => builds::sources(node),
        (&Method::GET, ["system", "builders"]) => builds::builders(node).await,
        (&Method::POST | &Method::PUT, ["system", "builders"]) => {
            builds::use_system(node, request, builds::Slot::Builder).await
        }
        (&Method::GET, ["governance"]) => governance::show(node).await,
        (&Method::GET, ["ledger"]) => ledger::show(node).await,
        (&Method::GET, ["ledger", "balances"]) => ledger::balances(node).await,
        (&Method::GET, ["ledger", "receipts"]) => ledger::receipts(node).await,
        (&Method::PUT | &Method::POST, ["ledger", "prices", target]) => {
            ledger::set_price(node, target, request).await
        }
        (&Method::POST | &Method::PUT, ["ledger"]) => {
            builds::use_system(node, request, builds::Slot::Ledger).await
        }
        (&Method::POST, ["tokens"]) => ledger::create(node, request).await,
        (&Method::POST, ["tokens", "verify"]) => ledger::verify(node, request).await,
        (&Method::POST, ["tokens", "refresh"]) => ledger::refresh(node, request).await,
        (&Method::DELETE, ["tokens", id]) => ledger::revoke(node, id).await,
        (&Method::GET, ["governance", "log"]) => {
            governance::log(node, request.uri().query().unwrap_or("")).await
        }
        (&Method::POST, ["governance", "clock"]) => governance::advance_clock(node, request).await,
        (&Method::POST | &Method::PUT, ["governance"]) => {
            builds::use_system(node, request, builds::Slot::Governance).await
        }
        (&Method::GET, ["services", name, "versions"]) => builds::versions(node, name),
        (&Method::GET, ["services", name, "logs"]) => {
            runtime_log(node, name, request.uri().query().unwrap_or(""))
        }
        (&Method::GET, ["services", name, "versions", version, "build-log"]) => {
            builds::build_log(node, name, version)
        }
        (&Method::GET, ["services", name]) => match node.registry.resolve(name) {
            Some(d) => {
                let mut value = summary(&d);
                value["wit"] = json!(d.record.wit);
                reply::json(StatusCode::OK, &value)
            }
            None => network::describe_remote(gw, name).await,
        },
        (&Method::PUT | &Method::POST, ["services", name]) => {
            deploy_service(node, request, name).await
        }
        (&Method::DELETE, ["services", name]) => {
            match deploy::stop(node, name).and_then(|stopped| {
                node.evolve.forget_source(name)?;
                Ok(stopped)
            }) {
                Ok(true) => reply::json(StatusCode::OK, &json!({ "stopped": name })),
                Ok(false) => not_found(name),
                Err(e) => reply::error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "failed",
                    format!("{e:#}"),
                ),
            }
        }
        (_, ["call", service, method]) => calls::call(node, request, service, method).await,
        (&Method::GET, ["topics"]) => {
            let topics: Vec<_> = node
                .broker
                .topics()
                .into_iter()
                .map(|(topic, last, subscribers)| json!({ "topic": topic, "last_sequence": last, "subscribers": subscribers }))
                .collect();
            reply::json(StatusCode::OK, &topics)
        }
        (&Method::POST, ["topics", topic]) => events::publish(node, request, topic).await,
        (&Method::GET, ["topics", topic, "events"]) => {
            events::subscribe(node, &request, topic).await
        }
        _ => reply::error(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no API {method} /api/{}", rest.join("/")),
        ),
    }
}

fn not_found(name: &str) -> Response<Body> {
    reply::error(
        StatusCode::NOT_FOUND,
        "not-found",
        format!("no service named {name:?} on this node"),
    )
}

fn health(node: &Arc<Node>) -> Response<Body> {
    reply::json(
        StatusCode::OK,
        &json!({
            "status": "ok",
            "node": node.id,
            "version": env!("CARGO_PKG_VERSION"),
            "allocator": node.runtime.allocator(),
            "services": node.registry.list().len(),
            "broker_dropped": node.broker.dropped(),
        }),
    )
}

/// `GET /api/services/{name}/logs[?limit=N]`: the service's recent runtime lines, oldest first.
fn runtime_log(node: &Arc<Node>, name: &str, query: &str) -> Response<Body> {
    let limit = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("limit="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(micro_services::service_logs::LINES_PER_SERVICE);
    let lines = node.registry.logs.recent(name, limit);
    if lines.is_empty() && node.registry.get(name).is_none() {
        return reply::error(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no service {name:?} runs on this node (logs are kept where it runs)"),
        );
    }
    reply::json(StatusCode::OK, &lines)
}

/// A deployment as the API shows it (without its WIT, which can be long).
fn summary(d: &Deployment) -> serde_json::Value {
    let r = &d.record;
    json!({
        "name": r.name,
        "version": r.version,
        "kind": r.kind,
        "methods": r.methods,
        "subscriptions": r.subscriptions,
        "component": r.component,
        "size": r.size,
        "deployed_at_ms": r.deployed_at_ms,
        "private": r.private,
        "replica_of": r.replica_of,
        "calls": d.stats.calls.load(Ordering::Relaxed),
        "errors": d.stats.errors.load(Ordering::Relaxed),
    })
}

async fn deploy_service(
    node: &Arc<Node>,
    request: Request<Incoming>,
    name: &str,
) -> Response<Body> {
    // `?private=true`: for this node only.
    let private = request
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .any(|p| matches!(p, "private" | "private=1" | "private=true"));
    let wasm =
        match reply::read_body(request.into_body(), node.config.limits.max_component_bytes).await {
            Ok(bytes) => bytes.to_vec(),
            Err(response) => return response,
        };
    let origin = deploy::Origin {
        private,
        ..deploy::Origin::default()
    };
    match deploy::deploy_version(node, name, wasm, origin).await {
        Ok(record) => match node.registry.get(&record.name) {
            Some(d) => reply::json(StatusCode::CREATED, &summary(&d)),
            None => reply::json(StatusCode::CREATED, &record),
        },
        Err(e) => {
            let (status, kind) = match &e {
                DeployError::NotWasm(_) => (StatusCode::BAD_REQUEST, "not-wasm"),
                DeployError::CoreModule => (StatusCode::BAD_REQUEST, "core-module"),
                DeployError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too-large"),
                DeployError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid-component"),
                DeployError::WrongWorld { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "wrong-world"),
                DeployError::MissingImport { .. } => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "missing-import")
                }
                DeployError::Describe(_) => (StatusCode::UNPROCESSABLE_ENTITY, "describe-failed"),
                DeployError::InvalidName { .. } => (StatusCode::BAD_REQUEST, "invalid-name"),
                DeployError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "failed"),
                DeployError::Denied(_) => (StatusCode::FORBIDDEN, "denied"),
            };
            reply::error(status, kind, e)
        }
    }
}
