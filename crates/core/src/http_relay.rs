//! `wasi:http` services that run on another node. A gateway without a copy of the service
//! relays the HTTP request to a node that serves it as a call through the one call pipeline
//! (routes and failover, the serving node's governance, admission and the ledger's charge):
//! the request and the answer travel whole in the call's payloads, marked by their content
//! types. Bodies are buffered, so each is bounded by the node's request and response limits.

use crate::host_state::{HostState, Program};
use crate::node::Node;
use crate::transport::{self, CallFailure, Client};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response};
use micro_runtime::HttpResponse;
use micro_runtime::wit::micro::network::types::{CallError, Request as CallRequest};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Instant;

/// The content type of a call that carries an HTTP request.
pub const REQUEST_TYPE: &str = "application/vnd.micro.http-request";
/// The content type of the answer to one.
pub const RESPONSE_TYPE: &str = "application/vnd.micro.http-response";

/// Headers that belong to one connection and never travel past it (RFC 9110, 7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// An HTTP request as it travels in a call.
#[derive(Debug, Serialize, Deserialize)]
struct Relayed {
    method: String,
    /// Path and query, as the component sees them (the gateway's `/{service}` prefix gone).
    uri: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

/// An HTTP answer as it travels back.
#[derive(Debug, Serialize, Deserialize)]
struct Answer {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

fn headers_of(map: &hyper::HeaderMap) -> Vec<(String, Vec<u8>)> {
    map.iter()
        .filter(|(name, _)| !HOP_BY_HOP.contains(&name.as_str()))
        .map(|(name, value)| (name.as_str().to_string(), value.as_bytes().to_vec()))
        .collect()
}

fn set_headers(map: &mut hyper::HeaderMap, headers: Vec<(String, Vec<u8>)>) -> Result<(), String> {
    for (name, value) in headers {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| format!("header name {name:?}: {e}"))?;
        if HOP_BY_HOP.contains(&header.as_str()) {
            continue;
        }
        let value = HeaderValue::from_bytes(&value).map_err(|e| format!("header {name:?}: {e}"))?;
        map.append(header, value);
    }
    Ok(())
}

/// Relays the HTTP request `parts` and `body` for `wasi:http` service `service` (`name` or
/// `name@version`) to a node that serves it, for `client` (none: this node pays), and gives
/// back its answer.
pub async fn relay(
    node: &Arc<Node>,
    client: Option<Client<'_>>,
    service: &str,
    parts: hyper::http::request::Parts,
    body: Bytes,
) -> Result<Response<Full<Bytes>>, CallFailure> {
    let method = parts.method.as_str().to_string();
    let relayed = Relayed {
        method: method.clone(),
        uri: parts.uri.to_string(),
        headers: headers_of(&parts.headers),
        body: body.to_vec(),
    };
    let payload = postcard::to_stdvec(&relayed)
        .map_err(|e| CallError::BadRequest(format!("encoding the request: {e}")))?;
    let caller = transport::edge_caller(node);
    let request = CallRequest {
        service: service.to_string(),
        method,
        payload,
        content_type: REQUEST_TYPE.to_string(),
        metadata: Vec::new(),
    };
    let deadline = transport::deadline_from_now(node);
    let response = transport::call_for(node, caller, client, deadline, request).await?;
    if response.content_type != RESPONSE_TYPE {
        return Err(CallError::Failed(format!(
            "{service} answered {:?}, not an HTTP answer",
            response.content_type
        ))
        .into());
    }
    let answer: Answer = postcard::from_bytes(&response.payload)
        .map_err(|e| CallError::Failed(format!("{service}'s HTTP answer does not decode: {e}")))?;
    let status = hyper::StatusCode::from_u16(answer.status).map_err(|e| {
        CallError::Failed(format!("{service} answered status {}: {e}", answer.status))
    })?;
    let mut out = Response::new(Full::new(Bytes::from(answer.body)));
    *out.status_mut() = status;
    set_headers(out.headers_mut(), answer.headers)
        .map_err(|e| CallError::Failed(format!("{service}'s answer: {e}")))?;
    Ok(out)
}

/// The HTTP request a relayed call carries, checked: its method must be the call's (the one
/// governance was asked about).
pub fn request_of(call: &CallRequest) -> Result<Request<Full<Bytes>>, CallError> {
    let relayed: Relayed = postcard::from_bytes(&call.payload).map_err(|e| {
        CallError::BadRequest(format!("the relayed HTTP request does not decode: {e}"))
    })?;
    if relayed.method != call.method {
        return Err(CallError::BadRequest(format!(
            "the relayed HTTP request is a {} but the call says {}",
            relayed.method, call.method
        )));
    }
    let method = hyper::Method::from_bytes(relayed.method.as_bytes())
        .map_err(|e| CallError::BadRequest(format!("HTTP method {:?}: {e}", relayed.method)))?;
    let uri: hyper::Uri = relayed
        .uri
        .parse()
        .map_err(|e| CallError::BadRequest(format!("path {:?}: {e}", relayed.uri)))?;
    if uri.scheme().is_some() || uri.authority().is_some() || !relayed.uri.starts_with('/') {
        return Err(CallError::BadRequest(format!(
            "path {:?}: a path and query only",
            relayed.uri
        )));
    }
    let mut request = Request::new(Full::new(Bytes::from(relayed.body)));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    set_headers(request.headers_mut(), relayed.headers).map_err(CallError::BadRequest)?;
    Ok(request)
}

/// Serves a relayed HTTP request with a `wasi:http` program and encodes its whole answer,
/// at most `limit` bytes of body, read before `deadline`.
pub async fn serve(
    program: &Program,
    store: wasmtime::Store<HostState>,
    request: Request<Full<Bytes>>,
    limit: usize,
    deadline: Instant,
) -> Result<micro_runtime::wit::micro::network::types::Response, CallError> {
    let response: HttpResponse = program.serve_http(store, request).await?;
    let (parts, body) = response.into_parts();
    let collected = tokio::time::timeout_at(deadline.into(), Limited::new(body, limit).collect())
        .await
        .map_err(|_| CallError::Timeout("the component's answer ran past the deadline".into()))?
        .map_err(|e| {
            CallError::Failed(format!(
                "reading the component's answer (at most {limit} bytes): {e}"
            ))
        })?;
    let answer = Answer {
        status: parts.status.as_u16(),
        headers: headers_of(&parts.headers),
        body: collected.to_bytes().to_vec(),
    };
    let payload = postcard::to_stdvec(&answer)
        .map_err(|e| CallError::Failed(format!("encoding the answer: {e}")))?;
    Ok(micro_runtime::wit::micro::network::types::Response {
        payload,
        content_type: RESPONSE_TYPE.to_string(),
        metadata: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(relayed: &Relayed, method: &str) -> CallRequest {
        CallRequest {
            service: "web".into(),
            method: method.into(),
            payload: postcard::to_stdvec(relayed).unwrap(),
            content_type: REQUEST_TYPE.into(),
            metadata: Vec::new(),
        }
    }

    fn relayed(uri: &str) -> Relayed {
        Relayed {
            method: "POST".into(),
            uri: uri.into(),
            headers: vec![
                ("x-echo".into(), b"one".to_vec()),
                ("x-echo".into(), b"two".to_vec()),
                ("connection".into(), b"close".to_vec()),
            ],
            body: b"payload".to_vec(),
        }
    }

    #[test]
    fn a_relayed_request_keeps_method_path_headers_and_body_and_drops_hop_by_hop_headers() {
        let request = request_of(&call(&relayed("/a/b?x=1"), "POST")).unwrap();
        assert_eq!(request.method(), hyper::Method::POST);
        assert_eq!(request.uri(), "/a/b?x=1");
        let echoes: Vec<_> = request.headers().get_all("x-echo").iter().collect();
        assert_eq!(echoes, ["one", "two"]);
        assert!(request.headers().get("connection").is_none());
    }

    #[test]
    fn a_relayed_request_that_lies_or_names_another_host_is_refused() {
        let lying = request_of(&call(&relayed("/"), "GET")).unwrap_err();
        assert!(
            format!("{lying:?}").contains("the call says GET"),
            "{lying:?}"
        );
        for uri in ["http://169.254.169.254/", "no-slash", "*"] {
            let e = request_of(&call(&relayed(uri), "POST")).unwrap_err();
            assert!(matches!(e, CallError::BadRequest(_)), "{uri}: {e:?}");
        }
        let mut garbage = call(&relayed("/"), "POST");
        garbage.payload = vec![0xff; 7];
        assert!(matches!(
            request_of(&garbage).unwrap_err(),
            CallError::BadRequest(_)
        ));
        let mut bad_header = relayed("/");
        bad_header.headers = vec![("bad name".into(), b"v".to_vec())];
        assert!(request_of(&call(&bad_header, "POST")).is_err());
    }
}
