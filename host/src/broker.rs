//! Publish and subscribe by topic (the `broker` WIT interface).
//!
//! Every subscriber has a bounded queue; members of a queue group share a topic's messages
//! round-robin. The recent messages of each topic are retained in redb (by count and age) and
//! replayed, in order and before any live message, to a subscriber that asks for history.
//! A subscriber that falls a full queue behind misses live messages, as a slow consumer does in
//! NATS; they remain in retention for replay.

use crate::config::BrokerConfig;
use crate::runtime::HostState;
use crate::wit::micro::network::broker as wit;
pub use crate::wit::micro::network::broker::{Message, PublishError};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// Retained messages: (topic, sequence) -> (payload, content type, published at, publisher).
type Retained<'a> = (&'a [u8], &'a str, u64, Option<&'a str>);
const MESSAGES: TableDefinition<(&str, u64), Retained> = TableDefinition::new("messages");

/// Longest topic name.
const MAX_TOPIC: usize = 255;

/// Who holds a subscription, so a stopped service's subscriptions can be dropped together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Service(String),
    Client,
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
    next_sequence: u64,
    direct: Vec<Subscriber>,
    groups: BTreeMap<String, Group>,
}

/// A live subscription: messages arrive on `messages`; dropping it unsubscribes.
pub struct Subscription {
    pub id: u64,
    pub messages: mpsc::Receiver<Message>,
}

/// The node's broker.
pub struct Broker {
    db: Arc<Database>,
    config: BrokerConfig,
    topics: Mutex<HashMap<String, Topic>>,
    next_id: AtomicU64,
    dropped: AtomicU64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
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

impl Broker {
    /// Opens the broker's retention table.
    pub fn open(db: Arc<Database>, config: BrokerConfig) -> Result<Self, redb::Error> {
        let tx = db.begin_write()?;
        tx.open_table(MESSAGES)?;
        tx.commit()?;
        Ok(Self {
            db,
            config,
            topics: Mutex::default(),
            next_id: AtomicU64::new(1),
            dropped: AtomicU64::new(0),
        })
    }

    /// Live messages that subscribers missed because their queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Topic>> {
        self.topics.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The topic's state, created with the sequence following its last retained message.
    fn topic<'a>(&self, topics: &'a mut HashMap<String, Topic>, name: &str) -> &'a mut Topic {
        topics.entry(name.to_string()).or_insert_with(|| Topic {
            next_sequence: self.last_retained(name).map_or(1, |s| s + 1),
            direct: Vec::new(),
            groups: BTreeMap::new(),
        })
    }

    fn last_retained(&self, topic: &str) -> Option<u64> {
        let tx = self.db.begin_read().ok()?;
        let table = tx.open_table(MESSAGES).ok()?;
        let last = table
            .range((topic, 0)..=(topic, u64::MAX))
            .ok()?
            .next_back()?
            .ok()?;
        Some(last.0.value().1)
    }

    /// Publishes a message; returns its sequence number once it is retained and queued.
    pub fn publish(
        &self,
        topic: &str,
        payload: Vec<u8>,
        content_type: String,
        publisher: Option<String>,
    ) -> Result<u64, PublishError> {
        check_topic(topic)?;
        if payload.len() > self.config.max_message_bytes {
            return Err(PublishError::TooLarge(format!(
                "message of {} bytes exceeds the limit of {} bytes",
                payload.len(),
                self.config.max_message_bytes
            )));
        }
        let mut topics = self.lock();
        let state = self.topic(&mut topics, topic);
        let message = Message {
            topic: topic.to_string(),
            payload,
            content_type,
            sequence: state.next_sequence,
            published_at_ms: now_ms(),
            publisher,
        };
        if self.config.retain_messages > 0 {
            self.retain(&message)
                .map_err(|e| PublishError::Unavailable(format!("retaining: {e}")))?;
        }
        state.next_sequence += 1;
        let dropped = deliver(state, &message);
        if dropped > 0 {
            self.dropped.fetch_add(dropped, Ordering::Relaxed);
            tracing::warn!(topic, dropped, "slow subscribers missed a message");
        }
        Ok(message.sequence)
    }

    fn retain(&self, m: &Message) -> Result<(), redb::Error> {
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(MESSAGES)?;
            let value = (
                m.payload.as_slice(),
                m.content_type.as_str(),
                m.published_at_ms,
                m.publisher.as_deref(),
            );
            table.insert((m.topic.as_str(), m.sequence), value)?;
            let keep_from = (m.sequence + 1).saturating_sub(self.config.retain_messages);
            let cutoff = m
                .published_at_ms
                .saturating_sub(self.config.retain_seconds * 1000);
            let mut expired = Vec::new();
            for item in table.range((m.topic.as_str(), 0)..(m.topic.as_str(), m.sequence))? {
                let (key, value) = item?;
                let sequence = key.value().1;
                if sequence >= keep_from && value.value().2 >= cutoff {
                    break;
                }
                expired.push(sequence);
            }
            for sequence in expired {
                table.remove((m.topic.as_str(), sequence))?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn retained(&self, topic: &str) -> Result<Vec<Message>, redb::Error> {
        let cutoff = now_ms().saturating_sub(self.config.retain_seconds * 1000);
        let tx = self.db.begin_read()?;
        let table = tx.open_table(MESSAGES)?;
        let mut out = Vec::new();
        for item in table.range((topic, 0)..=(topic, u64::MAX))? {
            let (key, value) = item?;
            let (payload, content_type, published_at_ms, publisher) = value.value();
            if published_at_ms < cutoff {
                continue;
            }
            out.push(Message {
                topic: topic.to_string(),
                payload: payload.to_vec(),
                content_type: content_type.to_string(),
                sequence: key.value().1,
                published_at_ms,
                publisher: publisher.map(str::to_string),
            });
        }
        Ok(out)
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
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut topics = self.lock();
        let history = if history {
            self.retained(topic)
                .map_err(|e| PublishError::Unavailable(format!("reading history: {e}")))?
        } else {
            Vec::new()
        };
        let (tx, messages) = mpsc::channel(self.config.subscriber_queue.max(1) + history.len());
        for message in history {
            // Cannot fail: the queue has room for the whole history.
            let _ = tx.try_send(message);
        }
        let state = self.topic(&mut topics, topic);
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
        Ok(Subscription { id, messages })
    }

    /// Drops every subscription held by `owner`.
    pub fn unsubscribe_owner(&self, owner: &Owner) {
        let mut topics = self.lock();
        for topic in topics.values_mut() {
            topic.direct.retain(|s| s.owner != *owner);
            for group in topic.groups.values_mut() {
                group.members.retain(|s| s.owner != *owner);
            }
            topic.groups.retain(|_, g| !g.members.is_empty());
        }
    }

    /// Topics this node has seen, with their next sequence and subscriber count.
    pub fn topics(&self) -> Vec<(String, u64, usize)> {
        let topics = self.lock();
        let mut out: Vec<_> = topics
            .iter()
            .map(|(name, t)| {
                let subs =
                    t.direct.len() + t.groups.values().map(|g| g.members.len()).sum::<usize>();
                (name.clone(), t.next_sequence - 1, subs)
            })
            .collect();
        out.sort();
        out
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

impl wit::Host for HostState {
    async fn publish(
        &mut self,
        topic: String,
        payload: Vec<u8>,
        content_type: String,
    ) -> Result<u64, PublishError> {
        let publisher = Some(self.scope.service.clone());
        self.node
            .broker
            .publish(&topic, payload, content_type, publisher)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(retain: u64) -> (tempfile::TempDir, Broker) {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("db")).unwrap());
        let config = BrokerConfig {
            retain_messages: retain,
            retain_seconds: 3600,
            max_message_bytes: 64,
            subscriber_queue: 16,
        };
        (dir, Broker::open(db, config).unwrap())
    }

    fn publish(b: &Broker, topic: &str, text: &str) -> u64 {
        b.publish(topic, text.as_bytes().to_vec(), "text/plain".into(), None)
            .unwrap()
    }

    #[test]
    fn each_group_message_goes_to_exactly_one_member() {
        let (_d, b) = broker(0);
        let mut a = b.subscribe("t", Some("g"), false, Owner::Client).unwrap();
        let mut c = b.subscribe("t", Some("g"), false, Owner::Client).unwrap();
        let mut all = b.subscribe("t", None, false, Owner::Client).unwrap();
        for i in 0..10 {
            publish(&b, "t", &i.to_string());
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

    #[test]
    fn history_is_replayed_in_order_and_bounded_by_count() {
        let (_d, b) = broker(3);
        for i in 1..=5 {
            assert_eq!(publish(&b, "t", &i.to_string()), i);
        }
        let mut s = b.subscribe("t", None, true, Owner::Client).unwrap();
        publish(&b, "t", "6");
        let got: Vec<u64> = std::iter::from_fn(|| s.messages.try_recv().ok())
            .map(|m| m.sequence)
            .collect();
        assert_eq!(got, [3, 4, 5, 6]);
    }

    #[test]
    fn sequences_continue_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let config = BrokerConfig {
            retain_messages: 10,
            retain_seconds: 3600,
            max_message_bytes: 64,
            subscriber_queue: 4,
        };
        {
            let db = Arc::new(Database::create(dir.path().join("db")).unwrap());
            let b = Broker::open(db, config.clone()).unwrap();
            publish(&b, "t", "a");
            publish(&b, "t", "b");
        }
        let db = Arc::new(Database::create(dir.path().join("db")).unwrap());
        let b = Broker::open(db, config).unwrap();
        assert_eq!(publish(&b, "t", "c"), 3);
    }

    #[test]
    fn bad_topics_and_oversized_messages_are_refused() {
        let (_d, b) = broker(0);
        assert!(matches!(
            b.publish("", vec![], String::new(), None),
            Err(PublishError::InvalidTopic(_))
        ));
        assert!(matches!(
            b.publish("a b", vec![], String::new(), None),
            Err(PublishError::InvalidTopic(_))
        ));
        assert!(matches!(
            b.publish("t", vec![0; 65], String::new(), None),
            Err(PublishError::TooLarge(_))
        ));
    }

    #[test]
    fn closed_subscribers_are_forgotten() {
        let (_d, b) = broker(0);
        let s = b.subscribe("t", None, false, Owner::Client).unwrap();
        drop(s);
        publish(&b, "t", "x");
        assert_eq!(b.topics(), vec![("t".to_string(), 1, 0)]);
    }
}
