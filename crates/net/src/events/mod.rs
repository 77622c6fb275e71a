//! Events across the network, by topic, never by node. A node with subscribers of a topic
//! provides a `subscribes:<topic>` entry in the DHT and subscribes at the topic's publishers,
//! which it finds under `publishes:<topic>`; a node about to publish on a topic for the first
//! time provides its own `publishes:` entry and tells the subscribers it finds, which subscribe
//! at it before it publishes (`rendezvous`). Whichever of the two comes second finds the
//! other, so neither has to know the network.
//!
//! Between two nodes there is one event stream (`link`, served by `serve`), whatever the number
//! of subscriptions: the per-connection stream limit can no longer block calls. Subscriptions of
//! this node to one topic and queue group share one subscription at each publisher, and the
//! messages are handed out here: to every plain subscriber, to one member of a group. Each
//! message is published on one node, whose broker picks one member of each queue group among
//! its local members and the subscriptions standing in for other nodes' groups, so a queue
//! group gets each message once network-wide. History is replayed by each publisher from its
//! own retention.

pub mod link;
pub mod rendezvous;
pub mod serve;

use crate::Network;
use crate::contact::{self, PUBLISHERS, SUBSCRIBERS};
use crate::wire::StreamedMessage;
use iroh::{EndpointAddr, PublicKey};
use micro_services::broker::{Message, Subscription};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Publishers one subscription subscribes at, at most: a lookup answers a handful, and a
/// stranger announcing itself as a publisher cannot make this node open streams without end.
pub const MAX_PUBLISHERS: usize = 64;
/// Event streams this node keeps to publishers at most.
pub const MAX_LINKS: usize = 512;
/// A topic's publishers are looked up again this often while it has subscribers here (new
/// publishers tell the subscribers themselves; this repairs what was missed).
const REFRESH: Duration = Duration::from_secs(60);
/// Topics refreshed per heartbeat at most.
const REFRESH_AT_ONCE: usize = 4;

/// This node's subscriptions to other nodes' topics.
#[derive(Default)]
pub struct Events {
    state: Mutex<State>,
    /// The topics this node published on.
    published: rendezvous::Published,
    /// Messages from other nodes that a subscriber here missed (its queue was full).
    dropped: AtomicU64,
}

#[derive(Default)]
struct State {
    next: u32,
    /// Subscriptions by number (the number travels on event streams).
    subs: HashMap<u32, Interest>,
    /// Live subscriptions (no history) by topic and group: shared by every local subscriber.
    shared: HashMap<(String, Option<String>), u32>,
    /// Topics with subscribers here.
    topics: HashMap<String, TopicState>,
    /// Event streams to publishers.
    links: HashMap<PublicKey, link::Link>,
}

struct TopicState {
    /// Subscriptions to it.
    count: usize,
    /// When its publishers are looked up next.
    refresh_at: Instant,
    /// Whether its `subscribes:` entry reached another node (provided alone, it is provided
    /// again at the next refresh).
    provided: bool,
}

/// One subscription of this node at the topic's publishers.
struct Interest {
    topic: String,
    group: Option<String>,
    history: bool,
    /// The local subscribers it hands messages to.
    sinks: Vec<mpsc::Sender<Message>>,
    /// The group member next in turn.
    next: usize,
    /// Publishers it is subscribed at now.
    at: HashSet<PublicKey>,
    /// Publishers it was ever subscribed at (their history was replayed).
    seen: HashSet<PublicKey>,
    /// Set once the publishers found when it began have taken it.
    ready: watch::Sender<bool>,
}

/// What a subscription looks like on the wire.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The topic.
    pub topic: String,
    /// The queue group.
    pub group: Option<String>,
    /// Replay retained messages first.
    pub history: bool,
}

impl Events {
    /// Subscriptions to other nodes' topics held now, and the event streams they use.
    pub fn counts(&self) -> (usize, usize) {
        let state = micro_base::sync::lock(&self.state);
        (state.subs.len(), state.links.len())
    }

    /// Topics this node keeps a publisher entry for.
    pub fn published_topics(&self) -> usize {
        self.published.len()
    }

    /// Messages from other nodes that a subscriber here missed.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Adds `sink` to a subscription: the shared live one of its topic and group when there
    /// is one, else a new one. The number, and whether it is new (to be set up).
    fn register(&self, spec: &Spec, sink: mpsc::Sender<Message>) -> (u32, bool) {
        let mut state = micro_base::sync::lock(&self.state);
        let key = (spec.topic.clone(), spec.group.clone());
        if !spec.history
            && let Some(&id) = state.shared.get(&key)
            && let Some(interest) = state.subs.get_mut(&id)
        {
            interest.sinks.push(sink);
            return (id, false);
        }
        // A number no live subscription holds, even after the counter wraps.
        state.next = state.next.wrapping_add(1);
        while state.subs.contains_key(&state.next) {
            state.next = state.next.wrapping_add(1);
        }
        let id = state.next;
        state.subs.insert(
            id,
            Interest {
                topic: spec.topic.clone(),
                group: spec.group.clone(),
                history: spec.history,
                sinks: vec![sink],
                next: 0,
                at: HashSet::new(),
                seen: HashSet::new(),
                ready: watch::Sender::new(false),
            },
        );
        if !spec.history {
            state.shared.insert(key, id);
        }
        state
            .topics
            .entry(spec.topic.clone())
            .or_insert(TopicState {
                count: 0,
                refresh_at: Instant::now() + REFRESH,
                provided: false,
            })
            .count += 1;
        (id, true)
    }

    /// Whether subscription `id` is set up (a shared one another subscriber began).
    fn ready(&self, id: u32) -> Option<watch::Receiver<bool>> {
        let state = micro_base::sync::lock(&self.state);
        state.subs.get(&id).map(|i| i.ready.subscribe())
    }

    /// Marks subscription `id` set up: subscribers sharing it stop waiting.
    fn set_ready(&self, id: u32) {
        let state = micro_base::sync::lock(&self.state);
        if let Some(interest) = state.subs.get(&id) {
            interest.ready.send_replace(true);
        }
    }

    /// Forgets `sink` and the local subscribers of `id` that went away; when none is left,
    /// the subscription ends at every publisher. The topic left without subscriptions, if any.
    fn release(&self, id: u32, sink: &mpsc::Sender<Message>) -> Option<String> {
        let mut state = micro_base::sync::lock(&self.state);
        let interest = state.subs.get_mut(&id)?;
        interest
            .sinks
            .retain(|s| !s.is_closed() && !s.same_channel(sink));
        if !interest.sinks.is_empty() {
            return None;
        }
        let interest = state.subs.remove(&id)?;
        let key = (interest.topic.clone(), interest.group.clone());
        if state.shared.get(&key) == Some(&id) {
            state.shared.remove(&key);
        }
        for peer in &interest.at {
            let still_used = state.subs.values().any(|i| i.at.contains(peer));
            if still_used {
                if let Some(link) = state.links.get(peer) {
                    link.unsubscribe(id);
                }
            } else if let Some(link) = state.links.remove(peer) {
                // Its last subscription: the stream goes, and the publisher drops it all.
                link.close();
            }
        }
        let topic = state.topics.get_mut(&interest.topic)?;
        topic.count -= 1;
        if topic.count > 0 {
            return None;
        }
        state.topics.remove(&interest.topic);
        Some(interest.topic)
    }

    /// Hands messages of subscription `id` from `from` to its local subscribers; false when
    /// there is no such subscription here (any more).
    pub fn deliver(&self, id: u32, from: &str, batch: Vec<StreamedMessage>) -> bool {
        let mut state = micro_base::sync::lock(&self.state);
        let Some(interest) = state.subs.get_mut(&id) else {
            return false;
        };
        let mut missed = 0;
        for m in batch {
            let message = m.into_message(&interest.topic, from);
            if interest.group.is_some() {
                // One member, the next in turn that has room.
                let n = interest.sinks.len();
                let taken = (0..n).any(|i| {
                    let at = (interest.next + i) % n;
                    let ok = interest.sinks[at].try_send(message.clone()).is_ok();
                    if ok {
                        interest.next = (at + 1) % n;
                    }
                    ok
                });
                if !taken {
                    missed += 1;
                }
            } else if let Some((last, others)) = interest.sinks.split_last() {
                // The last subscriber takes the message itself: one subscriber, no copy.
                for sink in others {
                    if let Err(mpsc::error::TrySendError::Full(_)) = sink.try_send(message.clone())
                    {
                        missed += 1;
                    }
                }
                if let Err(mpsc::error::TrySendError::Full(_)) = last.try_send(message) {
                    missed += 1;
                }
            }
        }
        if missed > 0 {
            self.dropped.fetch_add(missed, Ordering::Relaxed);
            tracing::warn!(topic = %interest.topic, missed, "slow subscribers missed messages from another node");
        }
        true
    }

    /// The event stream to `peer`, made when there is none (or it ended). None past
    /// [`MAX_LINKS`].
    fn link(
        &self,
        net: &Arc<Network>,
        peer: PublicKey,
        dial: Option<EndpointAddr>,
    ) -> Option<link::Link> {
        let mut state = micro_base::sync::lock(&self.state);
        if let Some(link) = state.links.get(&peer)
            && !link.is_finished()
        {
            return Some(link.clone());
        }
        state.links.retain(|_, l| !l.is_finished());
        if state.links.len() >= MAX_LINKS {
            return None;
        }
        let link = link::Link::spawn(net.clone(), peer, dial);
        state.links.insert(peer, link.clone());
        Some(link)
    }

    /// The event stream `generation` to `peer` ended: its subscriptions there are gone, and
    /// their topics are looked up again at the next heartbeat.
    pub fn link_lost(&self, peer: &PublicKey, generation: u64) {
        let mut state = micro_base::sync::lock(&self.state);
        if state
            .links
            .get(peer)
            .is_some_and(|l| l.generation() == generation)
        {
            state.links.remove(peer);
        }
        let mut topics = HashSet::new();
        for interest in state.subs.values_mut() {
            if interest.at.remove(peer) {
                topics.insert(interest.topic.clone());
            }
        }
        let now = Instant::now();
        for topic in topics {
            if let Some(t) = state.topics.get_mut(&topic) {
                t.refresh_at = now;
            }
        }
    }

    /// Subscriptions here to `topic`.
    fn interests_in(&self, topic: &str) -> Vec<u32> {
        let state = micro_base::sync::lock(&self.state);
        state
            .subs
            .iter()
            .filter(|(_, i)| i.topic == topic)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Topics due for a refresh, at most `max`, marked as refreshed.
    fn due(&self, max: usize) -> Vec<String> {
        let now = Instant::now();
        let mut state = micro_base::sync::lock(&self.state);
        let mut due: Vec<_> = state
            .topics
            .iter()
            .filter(|(_, t)| t.refresh_at <= now)
            .map(|(name, _)| name.clone())
            .collect();
        due.truncate(max);
        for name in &due {
            if let Some(t) = state.topics.get_mut(name) {
                t.refresh_at = now + REFRESH;
            }
        }
        due
    }

    /// Whether the topic's `subscribes:` entry reached another node.
    fn provided(&self, topic: &str) -> bool {
        let state = micro_base::sync::lock(&self.state);
        state.topics.get(topic).is_some_and(|t| t.provided)
    }

    fn set_provided(&self, topic: &str, provided: bool) {
        let mut state = micro_base::sync::lock(&self.state);
        if let Some(t) = state.topics.get_mut(topic) {
            t.provided = provided;
        }
    }
}

/// Extends `local`, a subscription to `topic` on this node's broker, to the topic's publishers
/// on other nodes, now and later. Returns once the publishers found now have taken it (or the
/// connect timeout passed), so a message published anywhere after this returns is delivered.
pub async fn subscribe(
    net: &Arc<Network>,
    local: Subscription,
    topic: &str,
    group: Option<&str>,
    history: bool,
) -> Subscription {
    let queue = net.config.broker.subscriber_queue.max(1);
    let (tx, messages) = mpsc::channel(queue);
    let spec = Spec {
        topic: topic.to_string(),
        group: group.map(str::to_string),
        history,
    };
    let (id, new) = net.events.register(&spec, tx.clone());
    tokio::spawn(forward(net.clone(), id, local, tx));
    let wait = rendezvous::step_time(net);
    if new {
        let _ = tokio::time::timeout(wait, meet(net, &spec.topic, &[id])).await;
        net.events.set_ready(id);
    } else if let Some(mut ready) = net.events.ready(id) {
        let _ = tokio::time::timeout(wait, ready.wait_for(|r| *r)).await;
    }
    Subscription { messages }
}

/// Forwards the local broker's messages to the subscriber; when either side ends, the
/// subscription's local subscriber is released.
async fn forward(net: Arc<Network>, id: u32, mut local: Subscription, tx: mpsc::Sender<Message>) {
    loop {
        tokio::select! {
            message = local.messages.recv() => match message {
                Some(m) => if tx.send(m).await.is_err() { break },
                None => break,
            },
            () = tx.closed() => break,
        }
    }
    // The subscriber's stream ends with its local subscription: nothing else holds a sender.
    let released = net.events.release(id, &tx);
    drop(tx);
    if let Some(topic) = released {
        rendezvous::unsubscribed(&net, &topic).await;
    }
}

/// Provides this node as a subscriber of `topic` unless its entry reached another node
/// already, then subscribes each of `ids` at every publisher found.
async fn meet(net: &Arc<Network>, topic: &str, ids: &[u32]) {
    if !net.events.provided(topic) {
        let ok = rendezvous::provide(net, &contact::topic_name(SUBSCRIBERS, topic)).await;
        net.events.set_provided(topic, ok);
    }
    let publishers = rendezvous::find(net, &contact::topic_name(PUBLISHERS, topic)).await;
    let mut asks = Vec::new();
    for id in ids {
        for (peer, dial) in &publishers {
            asks.push(subscribe_at(net, *id, *peer, dial.clone()));
        }
    }
    futures::future::join_all(asks).await;
}

/// Subscribes subscription `id` at publisher `peer` unless it is already; whether it is now.
async fn subscribe_at(
    net: &Arc<Network>,
    id: u32,
    peer: PublicKey,
    dial: Option<EndpointAddr>,
) -> bool {
    if peer == net.identity.public() {
        return false;
    }
    // Marked before asking, so two paths (a lookup, a publisher's notice) ask once.
    let (spec, first) = {
        let mut state = micro_base::sync::lock(&net.events.state);
        let Some(interest) = state.subs.get_mut(&id) else {
            return false;
        };
        if interest.at.contains(&peer) {
            return true;
        }
        if interest.at.len() >= MAX_PUBLISHERS {
            return false;
        }
        interest.at.insert(peer);
        let first = interest.seen.insert(peer);
        let spec = Spec {
            topic: interest.topic.clone(),
            group: interest.group.clone(),
            history: interest.history && first,
        };
        (spec, first)
    };
    let outcome = match net.events.link(net, peer, dial) {
        Some(link) => {
            let ack = link.subscribe(id, &spec);
            let wait = rendezvous::step_time(net);
            match tokio::time::timeout(wait, ack).await {
                Ok(Ok(Ok(()))) => Ok(()),
                Ok(Ok(Err(why))) => Err(why),
                Ok(Err(_)) => Err("the event stream ended".to_string()),
                Err(_) => Err("no answer in time".to_string()),
            }
        }
        None => Err(format!("{MAX_LINKS} event streams open already")),
    };
    match outcome {
        Ok(()) => true,
        Err(why) => {
            tracing::debug!(peer = %peer.fmt_short(), topic = %spec.topic, %why, "subscribing at a publisher");
            let mut state = micro_base::sync::lock(&net.events.state);
            if let Some(interest) = state.subs.get_mut(&id) {
                interest.at.remove(&peer);
                if first {
                    interest.seen.remove(&peer);
                }
            }
            false
        }
    }
}

/// A publisher told this node it is about to publish on `topic`: every subscription here to
/// the topic subscribes at it. How many did.
pub async fn publisher_appeared(
    net: &Arc<Network>,
    peer: PublicKey,
    dial: Option<EndpointAddr>,
    topic: &str,
) -> u32 {
    let ids = net.events.interests_in(topic);
    let done = futures::future::join_all(
        ids.into_iter()
            .map(|id| subscribe_at(net, id, peer, dial.clone())),
    )
    .await;
    done.into_iter().filter(|ok| *ok).count() as u32
}

/// Repairs subscriptions: every heartbeat, the topics due are looked up again (every
/// [`REFRESH`], and at once after an event stream broke) and subscribed where they are not.
pub async fn refresh_loop(net: Arc<Network>) {
    let every = Duration::from_millis(net.config.network.heartbeat_ms.max(50));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if net.stopping() {
            return;
        }
        for topic in net.events.due(REFRESH_AT_ONCE) {
            let ids = net.events.interests_in(&topic);
            meet(&net, &topic, &ids).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(topic: &str, group: Option<&str>, history: bool) -> Spec {
        Spec {
            topic: topic.into(),
            group: group.map(str::to_string),
            history,
        }
    }

    fn message(sequence: u64) -> StreamedMessage {
        StreamedMessage {
            payload: sequence.to_string().into_bytes(),
            content_type: "text/plain".into(),
            sequence,
            published_at_ms: 1,
            publisher: None,
        }
    }

    fn sequences(rx: &mut mpsc::Receiver<Message>) -> Vec<u64> {
        std::iter::from_fn(|| rx.try_recv().ok())
            .map(|m| m.sequence)
            .collect()
    }

    #[test]
    fn live_subscriptions_to_one_topic_and_group_share_one_and_history_ones_do_not() {
        let events = Events::default();
        let (a, _ra) = mpsc::channel(8);
        let (b, _rb) = mpsc::channel(8);
        let (c, _rc) = mpsc::channel(8);
        let (d, _rd) = mpsc::channel(8);
        let (e, _re) = mpsc::channel(8);
        let (plain, new) = events.register(&spec("t", None, false), a);
        assert!(new);
        assert_eq!(events.register(&spec("t", None, false), b), (plain, false));
        let (group, new) = events.register(&spec("t", Some("g"), false), c);
        assert!(new && group != plain);
        let (replay, new) = events.register(&spec("t", None, true), d);
        assert!(new && replay != plain);
        let (again, new) = events.register(&spec("t", None, true), e);
        assert!(
            new && again != replay,
            "each history subscription replays for itself"
        );
        assert_eq!(events.counts().0, 4);
        assert_eq!(events.interests_in("t").len(), 4);
    }

    #[test]
    fn a_group_gets_each_message_once_and_plain_subscribers_get_all() {
        let events = Events::default();
        let (a, mut ra) = mpsc::channel(8);
        let (b, mut rb) = mpsc::channel(8);
        let (group, _) = events.register(&spec("t", Some("g"), false), a);
        events.register(&spec("t", Some("g"), false), b);
        assert!(events.deliver(group, "node", (1..=4).map(message).collect()));
        let (got_a, got_b) = (sequences(&mut ra), sequences(&mut rb));
        assert_eq!((got_a.clone(), got_b.clone()), (vec![1, 3], vec![2, 4]));

        let (c, mut rc) = mpsc::channel(8);
        let (d, mut rd) = mpsc::channel(8);
        let (plain, _) = events.register(&spec("t", None, false), c);
        events.register(&spec("t", None, false), d);
        events.deliver(plain, "node", vec![message(5)]);
        let first = rc.try_recv().unwrap();
        assert_eq!(
            (first.sequence, first.topic.as_str(), first.node.as_str()),
            (5, "t", "node")
        );
        assert_eq!(sequences(&mut rd), vec![5]);
        assert!(
            !events.deliver(999, "node", vec![message(6)]),
            "no such subscription"
        );
    }

    #[test]
    fn a_full_member_is_skipped_and_a_full_plain_subscriber_misses_counted() {
        let events = Events::default();
        let (a, mut ra) = mpsc::channel(1);
        let (b, mut rb) = mpsc::channel(8);
        let (group, _) = events.register(&spec("t", Some("g"), false), a);
        events.register(&spec("t", Some("g"), false), b);
        events.deliver(group, "node", (1..=3).map(message).collect());
        assert_eq!(
            (sequences(&mut ra), sequences(&mut rb)),
            (vec![1], vec![2, 3])
        );
        assert_eq!(events.dropped(), 0, "another member had room");

        let (c, _rc) = mpsc::channel(1);
        let (plain, _) = events.register(&spec("u", None, false), c);
        events.deliver(plain, "node", (1..=3).map(message).collect());
        assert_eq!(events.dropped(), 2);
    }

    #[test]
    fn a_subscription_ends_with_its_last_subscriber_and_a_topic_with_its_last_subscription() {
        let events = Events::default();
        let (a, _ra) = mpsc::channel(8);
        let (b, _rb) = mpsc::channel(8);
        let (c, _rc) = mpsc::channel(8);
        let (plain, _) = events.register(&spec("t", None, false), a.clone());
        events.register(&spec("t", None, false), b.clone());
        let (group, _) = events.register(&spec("t", Some("g"), false), c.clone());
        assert_eq!(events.release(plain, &a), None, "b still subscribes");
        assert_eq!(
            events.release(plain, &b),
            None,
            "the group still subscribes to t"
        );
        assert_eq!(events.counts().0, 1);
        assert_eq!(events.release(group, &c), Some("t".to_string()));
        assert_eq!(events.counts().0, 0);
        // A new subscription to the same topic and group starts afresh.
        let (d, _rd) = mpsc::channel(8);
        let (again, new) = events.register(&spec("t", None, false), d);
        assert!(new && again != plain);
    }
}
