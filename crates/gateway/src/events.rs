//! Publishing over HTTP, and subscriptions as server-sent events.

use super::calls::content_type;
use super::reply::{self, Body};
use base64::Engine as _;
use bytes::Bytes;
use futures::StreamExt as _;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use micro_core::node::Node;
use micro_services::broker::{Message, Owner, PublishError};
use std::sync::Arc;

fn publish_error(e: PublishError) -> Response<Body> {
    match e {
        PublishError::InvalidTopic(m) => reply::error(StatusCode::BAD_REQUEST, "bad-request", m),
        PublishError::TooLarge(m) => reply::error(StatusCode::PAYLOAD_TOO_LARGE, "too-large", m),
        PublishError::Unavailable(m) => {
            reply::error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m)
        }
    }
}

/// `POST /api/topics/{topic}`: the body is the message.
pub async fn publish(node: &Arc<Node>, request: Request<Incoming>, topic: &str) -> Response<Body> {
    let content_type = content_type(&request);
    let payload =
        match reply::read_body(request.into_body(), node.config.broker.max_message_bytes).await {
            Ok(bytes) => bytes.to_vec(),
            Err(response) => return response,
        };
    match node
        .broker
        .publish(topic, payload, content_type, None)
        .await
    {
        Ok(sequence) => reply::json(
            StatusCode::OK,
            &serde_json::json!({ "topic": topic, "sequence": sequence }),
        ),
        Err(e) => publish_error(e),
    }
}

/// A message as the event stream and the API show it: text payloads as `payload`, others as
/// `payload_base64`.
#[derive(serde::Serialize)]
pub struct MessageView<'a> {
    topic: &'a str,
    sequence: u64,
    published_at_ms: u64,
    publisher: Option<&'a str>,
    /// The node that accepted the message.
    node: &'a str,
    content_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_base64: Option<String>,
}

impl<'a> From<&'a Message> for MessageView<'a> {
    fn from(m: &'a Message) -> Self {
        let text = std::str::from_utf8(&m.payload).ok();
        Self {
            topic: &m.topic,
            sequence: m.sequence,
            published_at_ms: m.published_at_ms,
            publisher: m.publisher.as_deref(),
            node: &m.node,
            content_type: &m.content_type,
            payload: text,
            payload_base64: match text {
                Some(_) => None,
                None => Some(base64::engine::general_purpose::STANDARD.encode(&m.payload)),
            },
        }
    }
}

/// Appends one `message` event to `out`.
fn write_event(out: &mut Vec<u8>, m: &Message) {
    use std::io::Write as _;
    let _ = write!(out, "id: {}\nevent: message\ndata: ", m.sequence);
    // Serialising a struct of strings and numbers into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &MessageView::from(m));
    out.extend_from_slice(b"\n\n");
}

/// Most messages written in one chunk of the event stream.
const MAX_BATCH: usize = 512;

/// `GET /api/topics/{topic}/events[?history=true][&group=G]`: a server-sent event stream. The
/// first event, `subscribed`, says the subscription is in place; then one `message` per message.
pub async fn subscribe(
    node: &Arc<Node>,
    request: &Request<Incoming>,
    topic: &str,
) -> Response<Body> {
    let query = request.uri().query().unwrap_or("");
    let mut history = false;
    let mut group = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "history" => history = matches!(value, "" | "1" | "true"),
            "group" if !value.is_empty() => group = Some(value.to_string()),
            _ => {}
        }
    }
    let subscription = match micro_core::subscriptions::subscribe(
        node,
        topic,
        group.as_deref(),
        history,
        Owner::Client,
    )
    .await
    {
        Ok(s) => s,
        Err(e) => return publish_error(e),
    };
    let hello = format!(
        "event: subscribed\ndata: {}\n\n",
        serde_json::json!({ "topic": topic, "group": group, "history": history })
    );
    let first = futures::stream::once(async move { Bytes::from(hello) });
    // Every message already queued goes out in one chunk: one write for a burst, not one each.
    let messages = tokio_stream::wrappers::ReceiverStream::new(subscription.messages)
        .ready_chunks(MAX_BATCH)
        .map(|batch| {
            let mut out = Vec::with_capacity(batch.len() * 160);
            for m in &batch {
                write_event(&mut out, m);
            }
            Bytes::from(out)
        });
    reply::event_stream(first.chain(messages))
}
