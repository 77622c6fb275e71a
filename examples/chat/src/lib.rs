//! Rooms of messages over the broker: `post` publishes to topic `chat`, every chat instance
//! receives it as a subscriber and keeps it, `history` reads what was kept.

use micro_sdk::{Context, Message, Result, Service, Subscription, publish_json, storage};
use serde::{Deserialize, Serialize};

struct Chat;

const TOPIC: &str = "chat";

#[derive(Serialize, Deserialize)]
struct Post {
    room: String,
    text: String,
}

#[derive(Serialize)]
struct Posted {
    sequence: u64,
}

fn post(_ctx: &Context, input: Post) -> Result<Posted> {
    Ok(Posted {
        sequence: publish_json(TOPIC, &input)?,
    })
}

#[derive(Deserialize)]
struct HistoryQuery {
    room: String,
}

fn history(_ctx: &Context, input: HistoryQuery) -> Result<Vec<String>> {
    let page = storage::list(&format!("room/{}/", input.room), None, 1000)?;
    Ok(page
        .entries
        .into_iter()
        .map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
        .collect())
}

impl Service for Chat {
    fn subscriptions() -> Vec<Subscription> {
        vec![Subscription::to(TOPIC).with_history()]
    }

    fn on_message(message: Message) -> Result<(), String> {
        let post: Post = message.json()?;
        // Keyed by publishing node and sequence, which identify a message in the network, so a
        // replayed message overwrites itself instead of duplicating.
        let key = format!(
            "room/{}/{}-{:020}",
            post.room, message.node, message.sequence
        );
        storage::set(&key, post.text.as_bytes()).map_err(|e| e.to_string())
    }
}

micro_sdk::service!(Chat: Service {
    "post" => post,
    "history" => history,
});
