//! Publishing messages and receiving the ones of subscribed topics.

pub use crate::bindings::exports::micro::network::handler::Subscription;
use crate::bindings::micro::network::broker as raw;
pub use crate::bindings::micro::network::broker::{Message, PublishError};
use serde::Serialize;

impl Subscription {
    /// A plain subscription to `topic`: every message, no history.
    pub fn to(topic: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            queue_group: None,
            history: false,
        }
    }
    /// Shares the topic's messages with the other members of `group`.
    pub fn queue_group(mut self, group: impl Into<String>) -> Self {
        self.queue_group = Some(group.into());
        self
    }
    /// Replays the topic's retained messages when the subscription starts.
    pub fn with_history(mut self) -> Self {
        self.history = true;
        self
    }
}

impl Message {
    /// The payload decoded from JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_slice(&self.payload).map_err(|e| format!("message on {}: {e}", self.topic))
    }
}

/// Publishes raw bytes; returns the message's sequence number in the topic.
pub fn publish(topic: &str, payload: &[u8], content_type: &str) -> Result<u64, PublishError> {
    raw::publish(topic, payload, content_type)
}

/// Publishes `value` as JSON.
pub fn publish_json<T: Serialize + ?Sized>(topic: &str, value: &T) -> Result<u64, PublishError> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| PublishError::TooLarge(format!("encoding the message: {e}")))?;
    raw::publish(topic, &bytes, "application/json")
}
