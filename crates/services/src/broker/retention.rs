//! The retained recent messages of each topic, in redb, written by one committer thread that
//! group-commits: every message queued while a commit runs goes into the next one, so
//! concurrent publishers share an fsync. A message is delivered to live subscribers only after
//! its commit, and its publisher is answered only then: what was acknowledged is durable.

use super::{Message, Shared};
use micro_base::config::BrokerConfig;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Retained messages: (topic, sequence) -> (payload, content type, published at, publisher).
type Retained<'a> = (&'a [u8], &'a str, u64, Option<&'a str>);
const MESSAGES: TableDefinition<(&str, u64), Retained> = TableDefinition::new("messages");

/// Most messages in one commit.
const MAX_GROUP: usize = 1024;

/// A message waiting for its commit, and who to tell.
pub struct Pending {
    pub message: Message,
    pub done: oneshot::Sender<Result<(), String>>,
}

/// The durable side of the broker.
pub struct Retention {
    db: Arc<Database>,
    config: BrokerConfig,
    /// This node: every retained message was published here.
    node: String,
    /// The node's clock: which retained messages are too old.
    pub clock: micro_base::Clock,
}

impl Retention {
    /// Opens the retention table.
    pub fn open(
        db: Arc<Database>,
        config: BrokerConfig,
        node: String,
        clock: micro_base::Clock,
    ) -> Result<Self, redb::Error> {
        let tx = db.begin_write()?;
        tx.open_table(MESSAGES)?;
        tx.commit()?;
        Ok(Self {
            db,
            config,
            node,
            clock,
        })
    }

    /// The sequence of the last retained message of `topic`.
    pub fn last_sequence(&self, topic: &str) -> Option<u64> {
        let tx = self.db.begin_read().ok()?;
        let table = tx.open_table(MESSAGES).ok()?;
        let last = table
            .range((topic, 0)..=(topic, u64::MAX))
            .ok()?
            .next_back()?
            .ok()?;
        Some(last.0.value().1)
    }

    /// The retained messages of `topic` up to `through`, oldest first, within the age limit.
    pub fn read(&self, topic: &str, through: u64) -> Result<Vec<Message>, redb::Error> {
        let cutoff = self
            .clock
            .now_ms()
            .saturating_sub(self.config.retain_seconds * 1000);
        let tx = self.db.begin_read()?;
        let table = tx.open_table(MESSAGES)?;
        let mut out = Vec::new();
        for item in table.range((topic, 0)..=(topic, through))? {
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
                node: self.node.clone(),
            });
        }
        Ok(out)
    }

    /// Writes a group of messages and trims each topic to its count and age limits, in one
    /// durable commit.
    fn commit(&self, group: &[Pending]) -> Result<(), redb::Error> {
        let tx = self.db.begin_write()?;
        for pending in group {
            self.insert(&tx, &pending.message)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn insert(&self, tx: &WriteTransaction, m: &Message) -> Result<(), redb::Error> {
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
        Ok(())
    }
}

/// Starts the committer thread: it commits what is queued, then delivers it and answers the
/// publishers. It ends when the broker (the queue's sender) is dropped.
pub fn start_committer(
    shared: Arc<Shared>,
) -> std::io::Result<(mpsc::UnboundedSender<Pending>, std::thread::JoinHandle<()>)> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Pending>();
    let thread = std::thread::Builder::new().name("broker-commit".into()).spawn(move || {
        while let Some(first) = rx.blocking_recv() {
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(pending) => group.push(pending),
                    Err(_) => break,
                }
            }
            let result = shared.retention.commit(&group).map_err(|e| format!("retaining: {e}"));
            if result.is_ok() {
                shared.deliver_committed(group.iter().map(|p| &p.message));
            } else {
                tracing::error!(error = ?result, messages = group.len(), "could not retain messages");
            }
            for pending in group {
                let _ = pending.done.send(result.clone());
            }
        }
    })?;
    Ok((tx, thread))
}
