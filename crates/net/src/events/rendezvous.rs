//! Where a topic's publishers and subscribers meet: entries in the DHT. A node with
//! subscribers of a topic provides `subscribes:<topic>`; a node about to publish on it for the
//! first time provides `publishes:<topic>`, looks up the subscribing nodes and tells each
//! (`Request::Publishing`), which subscribe at it before it answers, so the first message
//! reaches them. A subscriber looks up the publishers after providing its own entry; so of a
//! publisher and a subscriber arriving together, the one whose entry was stored second finds
//! the other.

use crate::Network;
use crate::contact::{self, EntryBody, FORMAT, PUBLISHERS, SUBSCRIBERS};
use crate::wire::{Reply, Request};
use iroh::{EndpointAddr, PublicKey};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Topics this node keeps a `publishes:` entry for at most; past it the least recently begun
/// is withdrawn.
pub const MAX_PUBLISHED: usize = 1024;

/// The topics this node published on, oldest first.
#[derive(Default)]
pub struct Published {
    topics: Mutex<VecDeque<String>>,
}

impl Published {
    /// Notes `topic`; the topic that no longer fits, if one.
    fn insert(&self, topic: &str) -> Option<String> {
        let mut topics = micro_base::sync::lock(&self.topics);
        if topics.iter().any(|t| t == topic) {
            return None;
        }
        topics.push_back(topic.to_string());
        if topics.len() > MAX_PUBLISHED {
            topics.pop_front()
        } else {
            None
        }
    }

    /// How many topics this node keeps a publisher entry for.
    pub fn len(&self) -> usize {
        micro_base::sync::lock(&self.topics).len()
    }

    /// Whether it keeps none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How long one rendezvous step may take.
pub(super) fn step_time(net: &Network) -> Duration {
    net.request_time() * 2
}

/// Provides `name` (a topic's publishers or subscribers) for this node; whether the entry
/// reached another node.
pub async fn provide(net: &Arc<Network>, name: &str) -> bool {
    let now = net.clock.now_ms();
    let body = EntryBody {
        format: FORMAT,
        name: name.to_string(),
        provider: net.dht.own_contact(net),
        version: String::new(),
        interface: [0; 8],
        http: false,
        load: 0,
        issued_ms: now,
        expires_ms: now,
        methods: Vec::new(),
        withdrawn: false,
    };
    match tokio::time::timeout(step_time(net), net.dht.provide(net, body)).await {
        Ok(Ok(_)) => net.dht.table_len() > 0,
        Ok(Err(e)) => {
            tracing::debug!(%name, error = %e, "providing a topic entry");
            false
        }
        Err(_) => false,
    }
}

/// The nodes other than this one found under `name`, with how to dial each.
pub async fn find(net: &Arc<Network>, name: &str) -> Vec<(PublicKey, Option<EndpointAddr>)> {
    let mut entries = net.dht.held(net, name);
    // Every one: a subscriber or publisher missed here misses messages.
    match tokio::time::timeout(step_time(net), net.dht.find_all_providers(net, name)).await {
        Ok(Ok(found)) => entries.extend(found),
        Ok(Err(e)) => tracing::debug!(%name, error = %e, "looking up a topic entry"),
        Err(_) => tracing::debug!(%name, "looking up a topic entry took too long"),
    }
    let mut out: Vec<(PublicKey, Option<EndpointAddr>)> = Vec::new();
    for p in crate::providers::live_providers(net, entries) {
        if !out.iter().any(|(n, _)| *n == p.node) {
            out.push((p.node, p.dial));
        }
        if out.len() >= super::MAX_PUBLISHERS {
            break;
        }
    }
    out
}

/// This node is about to publish on `topic` for the first time: provides it as a publisher,
/// then has every subscribing node found subscribe here. Waited for twice the connect timeout
/// at most.
pub async fn publishing(net: &Arc<Network>, topic: &str) {
    if let Some(old) = net.events.published.insert(topic) {
        tracing::warn!(topic = %old, "publishing on more than {MAX_PUBLISHED} topics: the oldest is no longer provided");
        let net = net.clone();
        tokio::spawn(async move {
            let _ = net
                .dht
                .withdraw(&net, &contact::topic_name(PUBLISHERS, &old))
                .await;
        });
    }
    // The rendezvous runs in a task of its own, waited for at most one step's time: a slow
    // DHT delays the first message that long, and what is left finishes in the background
    // (a subscriber told late still subscribes; one not told finds this node within a refresh).
    let started = Instant::now();
    let rendezvous = {
        let (net, topic) = (net.clone(), topic.to_string());
        tokio::spawn(async move {
            provide(&net, &contact::topic_name(PUBLISHERS, &topic)).await;
            let subscribers = find(&net, &contact::topic_name(SUBSCRIBERS, &topic)).await;
            let told = futures::future::join_all(
                subscribers
                    .into_iter()
                    .map(|(peer, dial)| tell(&net, peer, dial, &topic)),
            )
            .await;
            let subscribed: u32 = told.into_iter().flatten().sum();
            tracing::debug!(%topic, subscribed, ms = started.elapsed().as_millis() as u64, "publishing on a new topic");
        })
    };
    if tokio::time::timeout(step_time(net), rendezvous)
        .await
        .is_err()
    {
        tracing::debug!(%topic, "the rendezvous of a new topic goes on in the background");
    }
}

/// Tells subscribing node `peer` that this node publishes on `topic`; how many subscriptions
/// it made here.
async fn tell(
    net: &Arc<Network>,
    peer: PublicKey,
    dial: Option<EndpointAddr>,
    topic: &str,
) -> Option<u32> {
    let addr = dial.or_else(|| net.addr_of(&peer))?;
    let request = Request::Publishing {
        from: net.dht.own_contact(net),
        topic: topic.to_string(),
    };
    // The subscriber subscribes back within its own bounded time before it answers.
    net.exchange(
        &addr,
        &request,
        4096,
        step_time(net) * 2,
        "telling a subscriber",
        |r| match r {
            Reply::Noted { subscribed } => Ok(subscribed),
            other => Err(Box::new(other)),
        },
    )
    .await
}

/// The last subscription here to `topic` ended: its `subscribes:` entry is withdrawn (and
/// provided again if a subscription began meanwhile).
pub async fn unsubscribed(net: &Arc<Network>, topic: &str) {
    let name = contact::topic_name(SUBSCRIBERS, topic);
    let _ = tokio::time::timeout(step_time(net), net.dht.withdraw(net, &name)).await;
    if !net.events.interests_in(topic).is_empty() {
        let ok = provide(net, &name).await;
        net.events.set_provided(topic, ok);
    }
}
