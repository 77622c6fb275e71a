//! Builds from source over the API: `POST /api/run` starts one and streams its progress as
//! JSON lines (the build goes on if the client leaves); versions, build logs, sources and the
//! builders are read here too.

use super::reply::{self, Body, BoxError};
use bytes::Bytes;
use futures::StreamExt as _;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode, header};
use micro_core::evolve::log::{BuildLog, Event};
use micro_core::evolve::source::Source;
use micro_core::evolve::{self, RunRequest};
use micro_core::node::Node;
use micro_core::registry::VersionState;
use serde_json::json;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Largest request body of a build request (it is a small JSON document).
const MAX_REQUEST: usize = 64 << 10;

async fn read_json<T: serde::de::DeserializeOwned>(
    request: Request<Incoming>,
) -> Result<T, Response<Body>> {
    reply::read_json(
        request,
        MAX_REQUEST,
        r#"{"source": "file:///path/to/repo"}"#,
    )
    .await
}

/// A response streaming the build's events as JSON lines.
fn stream(events: mpsc::UnboundedReceiver<Event>) -> Response<Body> {
    let lines = tokio_stream::wrappers::UnboundedReceiverStream::new(events).map(|event| {
        let mut line = serde_json::to_vec(&event).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, BoxError>(Frame::data(Bytes::from(line)))
    });
    let mut response = Response::new(BodyExt::boxed_unsync(StreamBody::new(lines)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/x-ndjson"),
    );
    response
}

/// Runs a build in a task of its own (it goes on if the client leaves) and streams its events.
fn start<Job>(job: impl FnOnce(mpsc::UnboundedSender<Event>) -> Job) -> Response<Body>
where
    Job: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(job(tx));
    stream(rx)
}

/// `POST /api/run`: builds a source and deploys it (see [`RunRequest`]).
pub async fn run(node: &Arc<Node>, request: Request<Incoming>) -> Response<Body> {
    let run: RunRequest = match read_json(request).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    // Refuse what is wrong with the request itself before starting anything.
    let source = match Source::parse(&run.source) {
        Ok(s) => s,
        Err(e) => return reply::error(StatusCode::BAD_REQUEST, "bad-source", e),
    };
    if let Some(name) = &run.name
        && let Err(e) = micro_base::names::check_name(name)
    {
        return reply::error(StatusCode::BAD_REQUEST, "invalid-name", e);
    }
    let node = node.clone();
    start(|tx| async move {
        let _ = evolve::run(&node, run, source, Some(tx)).await;
    })
}

/// The system slots a component built from source can be swapped into.
#[derive(Debug, Clone, Copy)]
pub enum Slot {
    Builder,
    Governance,
    Ledger,
}

/// `POST /api/system/builders`, `POST /api/governance` and `POST /api/ledger`: builds a system component from
/// source and swaps it into its slot while the node runs, streaming the build's progress.
pub async fn use_system(
    node: &Arc<Node>,
    request: Request<Incoming>,
    slot: Slot,
) -> Response<Body> {
    #[derive(serde::Deserialize)]
    struct UseSource {
        source: String,
    }
    let body: UseSource = match read_json(request).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    let source = match Source::parse(&body.source) {
        Ok(s) => s,
        Err(e) => return reply::error(StatusCode::BAD_REQUEST, "bad-source", e),
    };
    let node = node.clone();
    start(|tx| async move {
        let log = Arc::new(BuildLog::new(
            node.config.evolve.max_build_output_bytes,
            Some(tx),
        ));
        let outcome = match slot {
            Slot::Builder => micro_core::system::use_builder(&node, source, &body.source, &log)
                .await
                .map(|b| builder_json(&b)),
            Slot::Governance => {
                micro_core::system::use_governance(&node, source, &body.source, &log)
                    .await
                    .map(|g| super::governance::loaded_json(&g))
            }
            Slot::Ledger => micro_core::system::use_ledger(&node, source, &body.source, &log)
                .await
                .map(|l| {
                    json!({
                        "name": l.name,
                        "version": l.version,
                        "origin": l.origin,
                        "component": l.component,
                    })
                }),
        };
        match outcome {
            Ok(version) => log.send(Event::Done { version }),
            Err(e) => log.send(Event::Failed {
                reason: e.reason,
                version: serde_json::Value::Null,
                excerpt: log.excerpt(),
            }),
        }
    })
}

fn builder_json(b: &micro_core::system::builders::Builder) -> serde_json::Value {
    json!({
        "name": b.name,
        "version": b.version,
        "looks_for": b.looks_for,
        "origin": b.origin,
        "component": b.component,
    })
}

/// `GET /api/system/builders`.
pub async fn builders(node: &Arc<Node>) -> Response<Body> {
    match node.builders().await {
        Ok(builders) => {
            let list: Vec<_> = builders.list().iter().map(|b| builder_json(b)).collect();
            reply::json(StatusCode::OK, &list)
        }
        Err(e) => reply::error(StatusCode::INTERNAL_SERVER_ERROR, "failed", e),
    }
}

/// `GET /api/services/{name}/versions`: every version with its state and time left.
pub fn versions(node: &Arc<Node>, name: &str) -> Response<Body> {
    let versions = match node.registry.versions(name) {
        Ok(v) => v,
        Err(e) => {
            return reply::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "failed",
                format!("{e:#}"),
            );
        }
    };
    if versions.is_empty() {
        return reply::error(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no service named {name:?} has versions on this node"),
        );
    }
    let now = node.clock.now_ms();
    let list: Vec<_> = versions
        .iter()
        .map(|v| {
            let live = node.registry.get_version(name, &v.version);
            let time_left_ms = match v.state {
                VersionState::Superseded => v.retires_at_ms().map(|at| at.saturating_sub(now)),
                _ => None,
            };
            let mut value = serde_json::to_value(v).unwrap_or_default();
            value["time_left_ms"] = json!(time_left_ms);
            value["in_flight"] = json!(live.as_ref().map_or(0, |d| d.in_flight()));
            value["calls"] = json!(live.as_ref().map_or(0, |d| {
                d.stats.calls.load(std::sync::atomic::Ordering::Relaxed)
            }));
            value
        })
        .collect();
    reply::json(StatusCode::OK, &list)
}

/// `GET /api/services/{name}/versions/{version}/build-log`.
pub fn build_log(node: &Arc<Node>, name: &str, version: &str) -> Response<Body> {
    match node.registry.build_log(name, version) {
        Ok(Some(text)) => {
            let mut response = Response::new(reply::full(text));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            response
        }
        Ok(None) => reply::error(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no build log for {name}@{version} (only versions built from source have one)"),
        ),
        Err(e) => reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "failed",
            format!("{e:#}"),
        ),
    }
}

/// `GET /api/sources`: the services built from source, and whether they are watched.
pub fn sources(node: &Arc<Node>) -> Response<Body> {
    match node.evolve.sources() {
        Ok(list) => {
            let watched = node.evolve.watchers.watched();
            let list: Vec<_> = list
                .iter()
                .map(|s| {
                    json!({
                        "name": s.name,
                        "source": s.source.display(),
                        "watch": s.watch,
                        "watching": watched.contains(&s.name),
                        "interval_ms": s.interval_ms,
                        "lifetime_ms": s.lifetime_ms,
                        "last_commit": s.last_commit,
                    })
                })
                .collect();
            reply::json(StatusCode::OK, &list)
        }
        Err(e) => reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "failed",
            format!("{e:#}"),
        ),
    }
}
