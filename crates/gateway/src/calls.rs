//! Service calls by path: `POST /{service}/{method}` for micro services, and every request
//! under `/{service}/` for `wasi:http` components, with the prefix stripped as `wasmtime serve`
//! would see it (relayed whole to a node that serves the component when this one does not).

use super::reply::{self, Body};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, header};
use micro_core::node::Node;
use micro_core::registry::{Deployment, ServiceKind};
use micro_core::transport::{self, deadline_from_now};
use micro_runtime::wit::micro::network::types::Request as CallRequest;
use std::sync::Arc;

/// Handles a request to `/{service}/{rest…}`.
pub async fn handle(
    node: &Arc<Node>,
    request: Request<Incoming>,
    service: &str,
    rest: &[&str],
) -> Response<Body> {
    let (name, _) = micro_base::names::split_version(service);
    let Some(deployment) = node.registry.resolve(service) else {
        // Not here: a `wasi:http` component elsewhere gets the request relayed; a service's
        // method call goes through the transport, which finds it in the network (or says
        // nothing serves it).
        if let Some(remote) = node.remote()
            && remote.find(service).await.iter().any(|offer| offer.http)
        {
            return serve_http(node, request, Serving::Elsewhere(service), name, rest).await;
        }
        return match rest {
            [method]
                if !method.is_empty()
                    && (node.remote().is_some() || node.registry.get(name).is_some()) =>
            {
                call(node, request, service, method).await
            }
            _ => reply::error(
                StatusCode::NOT_FOUND,
                "not-found",
                format!("no service named {name:?} on this node"),
            ),
        };
    };
    match deployment.record.kind {
        ServiceKind::Http => {
            serve_http(node, request, Serving::Here(&deployment), name, rest).await
        }
        ServiceKind::Service => match rest {
            [method] if !method.is_empty() => call(node, request, service, method).await,
            _ => reply::error(
                StatusCode::NOT_FOUND,
                "not-found",
                format!(
                    "call a method as POST /{name}/{{method}}; {name} answers {}",
                    deployment.record.methods.join(", ")
                ),
            ),
        },
    }
}

/// The media type of a request, JSON unless it says otherwise.
pub fn content_type(request: &Request<Incoming>) -> String {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string()
}

/// Calls `method` of `service` with the request body.
pub async fn call(
    node: &Arc<Node>,
    request: Request<Incoming>,
    service: &str,
    method: &str,
) -> Response<Body> {
    if !matches!(*request.method(), Method::POST | Method::GET) {
        return reply::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "bad-request",
            "call a method with POST (or GET without a body)",
        );
    }
    let bearer = match super::ledger::bearer(node, request.headers(), service, method).await {
        Ok(bearer) => bearer,
        Err(refused) => return refused,
    };
    let content_type = content_type(&request);
    let payload =
        match reply::read_body(request.into_body(), node.config.limits.max_request_bytes).await {
            Ok(bytes) => bytes.to_vec(),
            Err(response) => return response,
        };
    let caller = transport::edge_caller(node);
    let request = CallRequest {
        service: service.to_string(),
        method: method.to_string(),
        payload,
        content_type,
        metadata: Vec::new(),
    };
    let deadline = deadline_from_now(node);
    let client = bearer.as_ref().map(|b| transport::Client {
        account: &b.claims.account,
        token: &b.token,
    });
    let outcome = transport::call_for(node, caller, client, deadline, request).await;
    match outcome {
        Ok(response) => {
            let mut out = Response::new(reply::full(response.payload));
            if let Ok(value) = header::HeaderValue::from_str(&response.content_type) {
                out.headers_mut().insert(header::CONTENT_TYPE, value);
            }
            out
        }
        Err(e) => reply::call_error(&e),
    }
}

/// Where a `wasi:http` component runs.
enum Serving<'a> {
    /// Here, as this deployment.
    Here(&'a Deployment),
    /// On another node, as this name (`name` or `name@version`).
    Elsewhere(&'a str),
}

/// Hands the request to `wasi:http` component `name`, path prefix stripped: to the deployment
/// here, or relayed whole to another node that serves it (its body read up to the node's
/// request limit).
async fn serve_http(
    node: &Arc<Node>,
    request: Request<Incoming>,
    serving: Serving<'_>,
    name: &str,
    rest: &[&str],
) -> Response<Body> {
    let (bearer, parts, body) = match for_the_component(node, request, name, rest).await {
        Ok(prepared) => prepared,
        Err(refused) => return refused,
    };
    let service = match serving {
        Serving::Here(deployment) => {
            let request = Request::from_parts(parts, body);
            let payer = bearer.as_ref().map(|b| b.claims.account.as_str());
            return match transport::serve_http(node, payer, deployment, name, request).await {
                Ok(response) => response.map(|body| {
                    body.map_err(|e| reply::BoxError::from(format!("{e:?}")))
                        .boxed_unsync()
                }),
                Err(e) => reply::call_error(&e),
            };
        }
        Serving::Elsewhere(service) => service,
    };
    let body = match reply::read_body(body, node.config.limits.max_request_bytes).await {
        Ok(bytes) => bytes,
        Err(response) => return response,
    };
    let client = bearer.as_ref().map(|b| transport::Client {
        account: &b.claims.account,
        token: &b.token,
    });
    match micro_core::http_relay::relay(node, client, service, parts, body).await {
        Ok(response) => response.map(|body| body.map_err(|never| match never {}).boxed_unsync()),
        Err(e) => reply::call_error(&e),
    }
}

/// A request to `wasi:http` service `name`: the client's token checked (if it gave one), and
/// the request as the component sees it.
async fn for_the_component(
    node: &Node,
    request: Request<Incoming>,
    name: &str,
    rest: &[&str],
) -> Result<
    (
        Option<super::ledger::Bearer>,
        hyper::http::request::Parts,
        Incoming,
    ),
    Response<Body>,
> {
    let bearer = super::ledger::bearer(node, request.headers(), name, "").await?;
    let (mut parts, body) = request.into_parts();
    as_the_component_sees_it(&mut parts, bearer.is_some(), rest)
        .map_err(|e| reply::error(StatusCode::BAD_REQUEST, "bad-request", e))?;
    Ok((bearer, parts, body))
}

/// Turns a request to `/{service}/{rest…}` into the one the component sees, as `wasmtime
/// serve` would hand it over: the prefix stripped, a host named, and no token the node
/// checked for itself. An invalid path is the one error.
fn as_the_component_sees_it(
    parts: &mut hyper::http::request::Parts,
    checked: bool,
    rest: &[&str],
) -> Result<(), String> {
    if checked {
        // The node's token was for the node: the component does not get it.
        parts.headers.remove(header::AUTHORIZATION);
    }
    let mut path = format!("/{}", rest.join("/"));
    if let Some(query) = parts.uri.query() {
        path = format!("{path}?{query}");
    }
    parts.uri = path.parse().map_err(|e| format!("invalid path: {e}"))?;
    if !parts.headers.contains_key(header::HOST) {
        parts
            .headers
            .insert(header::HOST, header::HeaderValue::from_static("localhost"));
    }
    Ok(())
}
