//! The node's HTTP gateway (hyper): the JSON API under `/api/`, service calls by path
//! (`POST /{service}/{method}`), stock `wasi:http` components under `/{service}/…`, and the web
//! dashboard at `/`.

mod api;
mod builds;
mod calls;
mod dashboard;
mod events;
mod governance;
mod ledger;
mod live;
mod network;
mod node_stats;
mod reply;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use micro_core::node::Node;
use micro_net::Network;
use reply::Body;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpListener;

/// What the gateway serves from: the node's core and, when it runs, its peer layer.
pub struct Gateway {
    /// The node's core: every call goes through its pipeline (`micro_core::transport`).
    pub node: Arc<Node>,
    /// The peer layer, for `/api/network` and the dashboard's view of the network.
    pub net: Option<Arc<Network>>,
}

/// Serves the gateway on `listener` until `shutdown` resolves.
pub async fn serve(
    gateway: Gateway,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let gateway = Arc::new(gateway);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: keep serving the connections we have.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let _ = stream.set_nodelay(true);
        let gateway = gateway.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| route(gateway.clone(), request));
            if let Err(e) = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}

async fn route(
    gateway: Arc<Gateway>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let node = &gateway.node;
    let path = request.uri().path().to_string();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let response = match segments.as_slice() {
        ["api", rest @ ..] => api::handle(&gateway, request, rest).await,
        [""] if dashboard::wants_html(&request) => dashboard::index(&request),
        ["_", rest @ ..] => dashboard::asset(&request, &rest.join("/")),
        [""] => reply::json(
            hyper::StatusCode::OK,
            &serde_json::json!({
                "node": node.id,
                "dashboard": "/ (in a browser)",
                "api": "/api/",
                "call": "POST /{service}/{method}",
            }),
        ),
        [service, rest @ ..] => calls::handle(node, request, service, rest).await,
        [] => reply::error(hyper::StatusCode::NOT_FOUND, "not-found", "no such path"),
    };
    Ok(response)
}
