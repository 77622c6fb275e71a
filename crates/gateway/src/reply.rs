//! Building responses: JSON bodies, and errors as `{"error": kind, "message": text}`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::{Response, StatusCode, header};
use micro_core::transport::CallFailure;
use micro_runtime::wit::micro::network::types::CallError;

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

/// The status and kind a failed call maps to: a rate limit is 429.
pub fn call_error(failure: &CallFailure) -> Response<Body> {
    let e = match failure {
        CallFailure::RateLimited(why) => {
            return error(StatusCode::TOO_MANY_REQUESTS, "rate-limited", why);
        }
        CallFailure::Call(e) => e,
    };
    let status = match e {
        CallError::NotFound(_) => StatusCode::NOT_FOUND,
        CallError::Denied(_) => StatusCode::FORBIDDEN,
        CallError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        CallError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        CallError::BadRequest(_) => StatusCode::BAD_REQUEST,
        CallError::PaymentRequired(_) => StatusCode::PAYMENT_REQUIRED,
        CallError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let (kind, message) = e.parts();
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

/// Reads a JSON request body of at most `limit` bytes; a body that is not that JSON is a 400
/// that shows `example`.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    request: hyper::Request<hyper::body::Incoming>,
    limit: usize,
    example: &str,
) -> Result<T, Response<Body>> {
    let body = read_body(request.into_body(), limit).await?;
    serde_json::from_slice(&body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "bad-request",
            format!("the body must be JSON like {example}: {e}"),
        )
    })
}

/// A `text/event-stream` response (server-sent events) whose chunks come from `stream`.
pub fn event_stream(stream: impl futures::Stream<Item = Bytes> + Send + 'static) -> Response<Body> {
    use futures::StreamExt as _;
    // A comment line now and then: a client that went away is noticed at the next write (and
    // its subscription dropped) even on a quiet stream, and proxies keep the stream open.
    let ticks = tokio_stream::wrappers::IntervalStream::new(tokio::time::interval_at(
        tokio::time::Instant::now() + KEEP_ALIVE,
        KEEP_ALIVE,
    ))
    .map(|_| Some(Bytes::from_static(b": keep-alive\n\n")));
    // The stream's end ends the response; the ticks never end by themselves.
    let chunks = stream
        .map(Some)
        .chain(futures::stream::once(async { None }));
    let frames = futures::stream::select(chunks, ticks)
        .take_while(|chunk| std::future::ready(chunk.is_some()))
        .filter_map(std::future::ready)
        .map(|bytes| Ok::<_, BoxError>(hyper::body::Frame::data(bytes)));
    let mut response = Response::new(http_body_util::StreamBody::new(frames).boxed_unsync());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    response
}

/// How often a quiet event stream writes a comment line.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);
