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
pub async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, Response<Body>>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                format!("request body exceeds the limit of {limit} bytes"),
            ))
        }
        Err(e) => Err(error(
            StatusCode::BAD_REQUEST,
            "bad-request",
            format!("reading the request body: {e}"),
        )),
    }
}
