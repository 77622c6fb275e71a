//! Building responses: JSON bodies, and errors as `{"error": kind, "message": text}`.

use crate::wit::micro::network::types::CallError;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::{Response, StatusCode, header};

/// Errors a response body can end with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every gateway response has this body type.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A complete body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A JSON response.
pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    let bytes = serde_json::to_vec(value)
        .unwrap_or_else(|e| format!("{{\"error\":\"failed\",\"message\":\"{e}\"}}").into_bytes());
    let mut response = Response::new(full(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// An error response.
pub fn error(status: StatusCode, kind: &str, message: impl std::fmt::Display) -> Response<Body> {
    json(
        status,
        &serde_json::json!({ "error": kind, "message": message.to_string() }),
    )
}

/// The status and kind a call error maps to.
pub fn call_error(e: &CallError) -> Response<Body> {
    let (status, kind, message) = match e {
        CallError::NotFound(m) => (StatusCode::NOT_FOUND, "not-found", m),
        CallError::Denied(m) => (StatusCode::FORBIDDEN, "denied", m),
        CallError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", m),
        CallError::Timeout(m) => (StatusCode::GATEWAY_TIMEOUT, "timeout", m),
        CallError::BadRequest(m) => (StatusCode::BAD_REQUEST, "bad-request", m),
        CallError::PaymentRequired(m) => (StatusCode::PAYMENT_REQUIRED, "payment-required", m),
        CallError::Failed(m) => (StatusCode::INTERNAL_SERVER_ERROR, "failed", m),
    };
    error(status, kind, message)
}

/// Reads a request body of at most `limit` bytes; a larger one is a 413.
///
/// The rest of an oversized body is read and dropped (up to [`DRAIN_FACTOR`] times the limit)
/// before answering, so a client still sending gets the 413 instead of a broken connection.
pub async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, Response<Body>>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let mut body = body;
    let mut kept = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                "bad-request",
                format!("reading the request body: {e}"),
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen <= limit {
            kept.extend_from_slice(&data);
        } else if seen > limit.saturating_mul(DRAIN_FACTOR) {
            break;
        }
    }
    if seen > limit {
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!("request body exceeds the limit of {limit} bytes"),
        ));
    }
    Ok(kept.freeze())
}

/// How much of an oversized body is drained before answering, as a multiple of the limit.
pub const DRAIN_FACTOR: usize = 4;
