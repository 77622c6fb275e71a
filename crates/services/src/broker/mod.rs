//! Publish and subscribe by topic (the `broker` WIT interface).
//!
//! Every subscriber has a bounded queue; members of a queue group share a topic's messages
//! round-robin. A subscriber that falls a full queue behind misses live messages, as a slow
//! consumer does in NATS; they remain in retention for replay. With retention on, messages are
//! committed to redb (group commit, see `retention`) before they are delivered and before the
//! publisher is answered; a subscriber asking for history gets the retained messages, then the
//! live ones, with no gap and no duplicate.

mod retention;

use micro_base::config::BrokerConfig;
use micro_runtime::wit::micro::network::broker as wit;
pub use micro_runtime::wit::micro::network::broker::{Message, PublishError};
use redb::Database;
use retention::{Pending, Retention};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::{mpsc, oneshot};

/// Longest topic name.
const MAX_TOPIC: usize = 255;

/// Who holds a subscription, so a stopped service's subscriptions can be dropped together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// A service of this node (its name).
    Service(String),
    /// A client of the API (a stream to `micro subscribe`, say).
    Client,
    /// Another node, subscribed on behalf of its own subscribers.
    Peer(String),
}

struct Subscriber {
    owner: Owner,
    tx: mpsc::Sender<Message>,
}

#[derive(Default)]
struct Group {
    members: Vec<Subscriber>,
    next: usize,
}

struct Topic {
    /// Whether [`FirstPublish`] was told of this topic (its first publish here, this run).
    announced: bool,
    next_sequence: u64,
    /// Every message up to here has been delivered to the subscribers of its time; later ones
    /// are committed or on their way and will be delivered live.
    delivered_through: u64,
    direct: Vec<Subscriber>,
    groups: BTreeMap<String, Group>,
}

impl Topic {
    /// Drops the subscribers whose receiver is gone.
    fn forget_closed(&mut self) {
        self.direct.retain(|s| !s.tx.is_closed());
        for group in self.groups.values_mut() {
            group.members.retain(|s| !s.tx.is_closed());
        }
        self.groups.retain(|_, g| !g.members.is_empty());
    }
}

/// A live subscription: messages arrive on `messages`; dropping it unsubscribes.
pub struct Subscription {
    /// The messages, as they are published (after the history, if it was asked for).
    pub messages: mpsc::Receiver<Message>,
}

/// What the broker and its committer thread share.
pub(crate) struct Shared {
    retention: Retention,
    config: BrokerConfig,
    topics: Mutex<HashMap<String, Topic>>,
    dropped: AtomicU64,
}

/// Told before this node publishes the first message of a topic (once per topic and run), and
/// waited for: the peer layer finds the topic's subscribers on other nodes then, so the first
/// message reaches them too.
pub trait FirstPublish: Send + Sync {
    /// This node is about to publish on `topic` for the first time.
    fn publishing<'a>(&'a self, topic: &'a str) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
}

/// The node's broker.
pub struct Broker {
    /// Told of each topic's first publish, once the peer layer is attached.
    first_publish: OnceLock<Arc<dyn FirstPublish>>,
    shared: Arc<Shared>,
    /// This node's id, stamped on every message published here.
    node: String,
    /// The committer's queue, when retention is on.
    committer: Option<mpsc::UnboundedSender<Pending>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Checks a topic name: 1 to 255 characters of letters, digits and `.-_/`.
pub fn check_topic(topic: &str) -> Result<(), PublishError> {
    let ok = !topic.is_empty()
        && topic.len() <= MAX_TOPIC
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(PublishError::InvalidTopic(format!(
            "{topic:?}: a topic has 1 to {MAX_TOPIC} letters, digits and '.', '-', '_', '/'"
        )))
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Topic>> {
        micro_base::sync::lock(&self.topics)
    }

    /// The topic's state, created with the sequence following its last retained message.
    fn topic<'a>(&self, topics: &'a mut HashMap<String, Topic>, name: &str) -> &'a mut Topic {
        topics.entry(name.to_string()).or_insert_with(|| {
            let last = self.retention.last_sequence(name).unwrap_or(0);
            Topic {
                announced: false,
                next_sequence: last + 1,
                delivered_through: last,
                direct: Vec::new(),
                groups: BTreeMap::new(),
            }
        })
    }

    /// Delivers messages, in order, to the current subscribers of their topics.
    fn deliver_committed<'a>(&self, messages: impl Iterator<Item = &'a Message>) {
        let mut topics = self.lock();
        for message in messages {
            let topic = self.topic(&mut topics, &message.topic);
            self.deliver(topic, message);
        }
    }

    fn deliver(&self, topic: &mut Topic, message: &Message) {
        let dropped = deliver(topic, message);
        topic.delivered_through = message.sequence;
        if dropped > 0 {
            self.dropped.fetch_add(dropped, Ordering::Relaxed);
            tracing::warn!(topic = %message.topic, dropped, "slow subscribers missed a message");
        }
    }
}

impl Broker {
    /// Opens the broker, with its committer thread when retention is on.
    pub fn open(
        db: Arc<Database>,
        config: BrokerConfig,
        node: String,
        clock: micro_base::Clock,
    ) -> anyhow::Result<Self> {
        let retention = Retention::open(db, config.clone(), node.clone(), clock)?;
        let shared = Arc::new(Shared {
            retention,
            config,
            topics: Mutex::default(),
            dropped: AtomicU64::new(0),
        });
        let (committer, thread) = if shared.config.retain_messages > 0 {
            let (tx, thread) = retention::start_committer(shared.clone())?;
            (Some(tx), Some(thread))
        } else {
            (None, None)
        };
        Ok(Self {
            first_publish: OnceLock::new(),
            shared,
            node,
            committer,
            thread,
        })
    }

    /// Attaches what is told of each topic's first publish (once: a second one is ignored).
    pub fn set_first_publish(&self, hook: Arc<dyn FirstPublish>) {
        let _ = self.first_publish.set(hook);
    }

    /// Live messages that subscribers missed because their queue was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Publishes a message; returns its sequence number once it is retained (when retention is
    /// on) and queued for every current subscriber.
    pub async fn publish(
        &self,
        topic: &str,
        payload: Vec<u8>,
        content_type: String,
        publisher: Option<String>,
    ) -> Result<u64, PublishError> {
        check_topic(topic)?;
        let limit = self.shared.config.max_message_bytes;
        if payload.len() > limit {
            return Err(PublishError::TooLarge(format!(
                "message of {} bytes exceeds the limit of {limit} bytes",
                payload.len()
            )));
        }
        let (sequence, committed) = loop {
            // The first publish of a topic here waits for the hook; every later one finds the
            // topic announced under the lock it takes anyway.
            let hook = {
                let mut topics = self.shared.lock();
                let state = self.shared.topic(&mut topics, topic);
                match self.first_publish.get() {
                    Some(hook) if !state.announced => hook.clone(),
                    _ => {
                        let sequence = state.next_sequence;
                        state.next_sequence += 1;
                        let message = Message {
                            topic: topic.to_string(),
                            payload,
                            content_type,
                            sequence,
                            published_at_ms: self.shared.retention.clock.now_ms(),
                            publisher,
                            node: self.node.clone(),
                        };
                        match &self.committer {
                            None => {
                                self.shared.deliver(state, &message);
                                return Ok(sequence);
                            }
                            // Queued under the topic lock, so the committer sees messages in
                            // sequence order.
                            Some(queue) => {
                                let (done, committed) = oneshot::channel();
                                queue.send(Pending { message, done }).map_err(|_| {
                                    PublishError::Unavailable("the broker is stopping".into())
                                })?;
                                break (sequence, committed);
                            }
                        }
                    }
                }
            };
            hook.publishing(topic).await;
            let mut topics = self.shared.lock();
            self.shared.topic(&mut topics, topic).announced = true;
        };
        match committed.await {
            Ok(Ok(())) => Ok(sequence),
            Ok(Err(e)) => Err(PublishError::Unavailable(e)),
            Err(_) => Err(PublishError::Unavailable(
                "the broker stopped before committing".into(),
            )),
        }
    }

    /// Subscribes to `topic`, optionally in a queue group, optionally replaying retained messages
    /// first. Replayed messages come before every live one, with no gap and no duplicate.
    pub fn subscribe(
        &self,
        topic: &str,
        queue_group: Option<&str>,
        history: bool,
        owner: Owner,
    ) -> Result<Subscription, PublishError> {
        check_topic(topic)?;
        let mut topics = self.shared.lock();
        let state = self.shared.topic(&mut topics, topic);
        // Messages after `delivered_through` are committed or in flight: they arrive live.
        let history = if history {
            self.shared
                .retention
                .read(topic, state.delivered_through)
                .map_err(|e| PublishError::Unavailable(format!("reading history: {e}")))?
        } else {
            Vec::new()
        };
        let (tx, messages) =
            mpsc::channel(self.shared.config.subscriber_queue.max(1) + history.len());
        for message in history {
            // Cannot fail: the queue has room for the whole history.
            let _ = tx.try_send(message);
        }
        let subscriber = Subscriber { owner, tx };
        match queue_group {
            Some(group) => state
                .groups
                .entry(group.to_string())
                .or_default()
                .members
                .push(subscriber),
            None => state.direct.push(subscriber),
        }
        Ok(Subscription { messages })
    }

    /// Drops every subscription held by `owner`.
    pub fn unsubscribe_owner(&self, owner: &Owner) {
        let mut topics = self.shared.lock();
        for topic in topics.values_mut() {
            topic.direct.retain(|s| s.owner != *owner);
            for group in topic.groups.values_mut() {
                group.members.retain(|s| s.owner != *owner);
            }
            topic.groups.retain(|_, g| !g.members.is_empty());
        }
    }

    /// Topics this node has seen, with their last sequence and subscriber count. Subscribers
    /// that went away (a stopped service, a client or peer whose stream closed) are forgotten
    /// here, not only at the topic's next message.
    pub fn topics(&self) -> Vec<(String, u64, usize)> {
        let mut topics = self.shared.lock();
        let mut out: Vec<_> = topics
            .iter_mut()
            .map(|(name, t)| {
                t.forget_closed();
                let subs =
                    t.direct.len() + t.groups.values().map(|g| g.members.len()).sum::<usize>();
                (name.clone(), t.next_sequence - 1, subs)
            })
            .collect();
        out.sort();
        out
    }
}

impl Drop for Broker {
    /// Lets the committer finish what is queued and waits for it, so the database is closed
    /// when the broker is gone.
    fn drop(&mut self) {
        self.committer.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Queues a message for every direct subscriber and one member of each group; forgets
/// subscribers whose receiver is gone. Returns how many subscribers missed it (queue full).
fn deliver(topic: &mut Topic, message: &Message) -> u64 {
    let mut dropped = 0;
    topic
        .direct
        .retain(|s| match s.tx.try_send(message.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                dropped += 1;
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    for group in topic.groups.values_mut() {
        group.members.retain(|s| !s.tx.is_closed());
        let n = group.members.len();
        // The first member, in round-robin order, with room in its queue takes the message.
        let taken = (0..n).any(|i| {
            let index = (group.next + i) % n;
            if group.members[index].tx.try_send(message.clone()).is_ok() {
                group.next = (index + 1) % n;
                true
            } else {
                false
            }
        });
        if !taken && n > 0 {
            dropped += 1;
        }
    }
    topic.groups.retain(|_, g| !g.members.is_empty());
    dropped
}

/// What a call publishes with: the broker, and its service as the publisher.
pub struct Publisher<'a> {
    broker: &'a Broker,
    service: &'a str,
}

impl<'a> Publisher<'a> {
    /// `service` publishing on `broker`.
    pub fn new(broker: &'a Broker, service: &'a str) -> Self {
        Self { broker, service }
    }
}

/// Links `broker` on a [`Publisher`] projected from a store's data.
pub struct HasPublisher;

impl wasmtime::component::HasData for HasPublisher {
    type Data<'a> = Publisher<'a>;
}

impl wit::Host for Publisher<'_> {
    async fn publish(
        &mut self,
        topic: String,
        payload: Vec<u8>,
        content_type: String,
    ) -> Result<u64, PublishError> {
        let publisher = Some(self.service.to_string());
        self.broker
            .publish(&topic, payload, content_type, publisher)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(retain: u64) -> (tempfile::TempDir, Broker) {
        broker_with(retain, 3600, 16)
    }

    fn broker_with(retain: u64, seconds: u64, queue: usize) -> (tempfile::TempDir, Broker) {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("db")).unwrap());
        let config = BrokerConfig {
            retain_messages: retain,
            retain_seconds: seconds,
            max_message_bytes: 64,
            subscriber_queue: queue,
        };
        (
            dir,
            Broker::open(db, config, "test-node".into(), micro_base::Clock::new()).unwrap(),
        )
    }

    async fn publish(b: &Broker, topic: &str, text: &str) -> u64 {
        b.publish(topic, text.as_bytes().to_vec(), "text/plain".into(), None)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn each_group_message_goes_to_exactly_one_member() {
        let (_d, b) = broker(0);
        let mut a = b.subscribe("t", Some("g"), false, Owner::Client).unwrap();
        let mut c = b.subscribe("t", Some("g"), false, Owner::Client).unwrap();
        let mut all = b.subscribe("t", None, false, Owner::Client).unwrap();
        for i in 0..10 {
            publish(&b, "t", &i.to_string()).await;
        }
        let (mut na, mut nc, mut nall) = (0, 0, 0);
        while a.messages.try_recv().is_ok() {
            na += 1;
        }
        while c.messages.try_recv().is_ok() {
            nc += 1;
        }
        while all.messages.try_recv().is_ok() {
            nall += 1;
        }
        assert_eq!(na + nc, 10);
        assert_eq!((na, nc), (5, 5), "round-robin");
        assert_eq!(nall, 10);
    }

    #[tokio::test]
    async fn history_is_replayed_in_order_and_bounded_by_count() {
        let (_d, b) = broker(3);
        for i in 1..=5 {
            assert_eq!(publish(&b, "t", &i.to_string()).await, i);
        }
        let mut s = b.subscribe("t", None, true, Owner::Client).unwrap();
        publish(&b, "t", "6").await;
        let got: Vec<u64> = std::iter::from_fn(|| s.messages.try_recv().ok())
            .map(|m| m.sequence)
            .collect();
        assert_eq!(got, [3, 4, 5, 6]);
    }

    #[tokio::test]
    async fn sequences_continue_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let config = BrokerConfig {
            retain_messages: 10,
            retain_seconds: 3600,
            max_message_bytes: 64,
            subscriber_queue: 4,
        };
        {
            let db = Arc::new(Database::create(dir.path().join("db")).unwrap());
            let b = Broker::open(
                db,
                config.clone(),
                "test-node".into(),
                micro_base::Clock::new(),
            )
            .unwrap();
            publish(&b, "t", "a").await;
            publish(&b, "t", "b").await;
        }
        let db = Arc::new(Database::create(dir.path().join("db")).unwrap());
        let b = Broker::open(db, config, "test-node".into(), micro_base::Clock::new()).unwrap();
        assert_eq!(publish(&b, "t", "c").await, 3);
    }

    #[tokio::test]
    async fn bad_topics_and_oversized_messages_are_refused() {
        let (_d, b) = broker(0);
        assert!(matches!(
            b.publish("", vec![], String::new(), None).await,
            Err(PublishError::InvalidTopic(_))
        ));
        assert!(matches!(
            b.publish("a b", vec![], String::new(), None).await,
            Err(PublishError::InvalidTopic(_))
        ));
        assert!(matches!(
            b.publish("t", vec![0; 65], String::new(), None).await,
            Err(PublishError::TooLarge(_))
        ));
    }

    #[tokio::test]
    async fn closed_subscribers_are_forgotten() {
        let (_d, b) = broker(0);
        let s = b.subscribe("t", None, false, Owner::Client).unwrap();
        drop(s);
        publish(&b, "t", "x").await;
        assert_eq!(b.topics(), vec![("t".to_string(), 1, 0)]);
    }

    #[tokio::test]
    async fn gone_subscribers_are_not_counted_before_the_next_message() {
        let (_d, b) = broker(0);
        let kept = b.subscribe("t", None, false, Owner::Client).unwrap();
        let gone = b
            .subscribe("t", None, false, Owner::Peer("p".into()))
            .unwrap();
        let member = b.subscribe("t", Some("g"), false, Owner::Client).unwrap();
        assert_eq!(b.topics(), vec![("t".to_string(), 0, 3)]);
        drop(gone);
        drop(member);
        assert_eq!(b.topics(), vec![("t".to_string(), 0, 1)]);
        drop(kept);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_subscriber_joining_during_concurrent_publishing_sees_each_message_once_in_order() {
        let (_d, b) = broker_with(10_000, 3600, 1_000);
        let b = Arc::new(b);
        let publishers: Vec<_> = (0..4)
            .map(|_| {
                let b = b.clone();
                tokio::spawn(async move {
                    for _ in 0..100 {
                        publish(&b, "t", "x").await;
                    }
                })
            })
            .collect();
        tokio::task::yield_now().await;
        let mut s = b.subscribe("t", None, true, Owner::Client).unwrap();
        for p in publishers {
            p.await.unwrap();
        }
        let got: Vec<u64> = std::iter::from_fn(|| s.messages.try_recv().ok())
            .map(|m| m.sequence)
            .collect();
        assert_eq!(got, (1..=400).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn history_is_bounded_by_age() {
        let (_d, b) = broker_with(100, 0, 16);
        publish(&b, "t", "old").await;
        // Age is wall-clock time: let the message become older than the zero-second limit.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let mut s = b.subscribe("t", None, true, Owner::Client).unwrap();
        assert!(
            s.messages.try_recv().is_err(),
            "an expired message is not replayed"
        );
    }
}
