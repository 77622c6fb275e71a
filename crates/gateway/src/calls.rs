//! Service calls by path: `POST /{service}/{method}` for micro services, and every request
//! under `/{service}/` for `wasi:http` components, with the prefix stripped as `wasmtime serve`
//! would see it.

use super::reply::{self, Body};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, header};
use micro_core::node::Node;
use micro_core::registry::{Deployment, ServiceKind};
use micro_core::transport::{self, deadline_from_now};
use micro_runtime::wit::micro::network::types::{Caller, Request as CallRequest};
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
        // Not here: the transport finds it in the network (or says nothing serves it).
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
        ServiceKind::Http => serve_http(node, request, &deployment, name, rest).await,
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
    let caller = Caller {
        service: None,
        node: node.id.clone(),
        depth: 0,
    };
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

/// Hands the request to a `wasi:http` component, path prefix stripped.
async fn serve_http(
    node: &Arc<Node>,
    request: Request<Incoming>,
    deployment: &Deployment,
    name: &str,
    rest: &[&str],
) -> Response<Body> {
    let bearer = match super::ledger::bearer(node, request.headers(), name, "").await {
        Ok(bearer) => bearer,
        Err(refused) => return refused,
    };
    let checked = bearer.is_some();
    let (mut parts, body) = request.into_parts();
    if checked {
        // The node's token was for the node: the component does not get it.
        parts.headers.remove(header::AUTHORIZATION);
    }
    let mut path = format!("/{}", rest.join("/"));
    if let Some(query) = parts.uri.query() {
        path = format!("{path}?{query}");
    }
    parts.uri = match path.parse() {
        Ok(uri) => uri,
        Err(e) => {
            return reply::error(
                StatusCode::BAD_REQUEST,
                "bad-request",
                format!("invalid path: {e}"),
            );
        }
    };
    if !parts.headers.contains_key(header::HOST) {
        parts
            .headers
            .insert(header::HOST, header::HeaderValue::from_static("localhost"));
    }
    let request = Request::from_parts(parts, body);
    let payer = bearer.as_ref().map(|b| b.claims.account.as_str());
    let outcome = transport::serve_http(node, payer, deployment, name, request).await;
    match outcome {
        Ok(response) => response.map(|body| {
            body.map_err(|e| reply::BoxError::from(format!("{e:?}")))
                .boxed_unsync()
        }),
        Err(e) => reply::call_error(&e),
    }
}
