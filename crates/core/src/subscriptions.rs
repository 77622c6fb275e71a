//! Subscriptions are network-wide: the one way the core subscribes (a service to its topics,
//! a client to a topic's event stream) takes the local broker's subscription and has the
//! node's [`Remote`](crate::remote::Remote), when there is one, extend it to every node.

use crate::node::Node;
use micro_services::broker::{Owner, PublishError, Subscription};

/// Subscribes `owner` to `topic` (in queue group `group`, replaying retained history when
/// `history`) on this node and on every node of the network. Returns once the nodes known now
/// take it, so a message published anywhere after this returns is delivered.
pub async fn subscribe(
    node: &Node,
    topic: &str,
    group: Option<&str>,
    history: bool,
    owner: Owner,
) -> Result<Subscription, PublishError> {
    let local = node.broker.subscribe(topic, group, history, owner)?;
    Ok(match node.remote() {
        Some(remote) => remote.subscribe(local, topic, group, history).await,
        None => local,
    })
}
