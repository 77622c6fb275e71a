//! One event stream from this node to a publisher: every subscription of this node at that
//! node travels on it, each by its number. The writing half takes subscribe and unsubscribe
//! requests in order; the reading half hands each batch of messages to its subscription and
//! each answer to whoever waits for it. When the stream ends, every subscription on it is
//! gone and the subscriptions' topics are looked up again.

use super::Spec;
use crate::Network;
use crate::traffic::Kind;
use crate::wire::{self, Control, Reply, Request};
use iroh::endpoint::RecvStream;
use iroh::{EndpointAddr, PublicKey};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Tells event streams apart across reconnections.
static GENERATION: AtomicU64 = AtomicU64::new(0);

type Acks = Arc<Mutex<HashMap<u32, oneshot::Sender<Result<(), String>>>>>;

/// A handle on the event stream to one publisher.
#[derive(Clone)]
pub struct Link {
    commands: mpsc::UnboundedSender<Control>,
    acks: Acks,
    task: Arc<JoinHandle<()>>,
    generation: u64,
}

impl Link {
    /// Opens the stream to `peer` (at `dial`, else where the node knows it) in a task of its
    /// own.
    pub fn spawn(net: Arc<Network>, peer: PublicKey, dial: Option<EndpointAddr>) -> Self {
        let (commands, queue) = mpsc::unbounded_channel();
        let acks = Acks::default();
        let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
        let task = tokio::spawn(run(
            net,
            peer,
            dial,
            queue,
            commands.clone(),
            acks.clone(),
            generation,
        ));
        Self {
            commands,
            acks,
            task: Arc::new(task),
            generation,
        }
    }

    /// Which stream this is.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether the stream ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Subscribes at the publisher as subscription `sub`; the answer arrives on the receiver
    /// (dropped unanswered when the stream ends).
    pub fn subscribe(&self, sub: u32, spec: &Spec) -> oneshot::Receiver<Result<(), String>> {
        let (tx, rx) = oneshot::channel();
        micro_base::sync::lock(&self.acks).insert(sub, tx);
        let _ = self.commands.send(Control::Subscribe {
            sub,
            topic: spec.topic.clone(),
            group: spec.group.clone(),
            history: spec.history,
        });
        rx
    }

    /// Ends subscription `sub` at the publisher.
    pub fn unsubscribe(&self, sub: u32) {
        let _ = self.commands.send(Control::Unsubscribe { sub });
    }

    /// Closes the stream: the publisher drops every subscription on it.
    pub fn close(&self) {
        self.task.abort();
    }
}

async fn run(
    net: Arc<Network>,
    peer: PublicKey,
    dial: Option<EndpointAddr>,
    mut queue: mpsc::UnboundedReceiver<Control>,
    commands: mpsc::UnboundedSender<Control>,
    acks: Acks,
    generation: u64,
) {
    let opened = match dial.or_else(|| net.addr_of(&peer)) {
        Some(addr) => net
            .pool
            .open(&addr, &Request::Events)
            .await
            .map_err(|e| e.to_string()),
        None => Err("no address known".to_string()),
    };
    match opened {
        Ok((mut send, recv, _held)) => {
            // Polled in this task, so closing the link ends reading too.
            let reader = read(net.clone(), peer, recv, commands, acks.clone());
            tokio::pin!(reader);
            loop {
                tokio::select! {
                    command = queue.recv() => {
                        let Some(command) = command else { break };
                        match wire::write_frame(&mut send, &command, &[]).await {
                            Ok(sent) => net.pool.traffic.sent(Kind::Events, sent),
                            Err(e) => {
                                tracing::debug!(peer = %peer.fmt_short(), error = %e, "event stream broke");
                                break;
                            }
                        }
                    }
                    _ = &mut reader => break,
                }
            }
            let _ = send.finish();
        }
        Err(e) => tracing::debug!(peer = %peer.fmt_short(), error = %e, "no event stream"),
    }
    // Whoever waits for an answer hears the stream ended.
    micro_base::sync::lock(&acks).clear();
    net.events.link_lost(&peer, generation);
}

/// Reads the publisher's frames until the stream ends or a frame is bad.
async fn read(
    net: Arc<Network>,
    peer: PublicKey,
    mut recv: RecvStream,
    commands: mpsc::UnboundedSender<Control>,
    acks: Acks,
) {
    let limit = net.frame_limit();
    let node = peer.to_string();
    loop {
        let frame = wire::read_sized_frame::<_, Reply>(&mut recv, limit).await;
        if let Ok(Some((_, _, size))) = &frame {
            net.pool.traffic.received(Kind::Events, *size);
        }
        match frame.map(|f| f.map(|(reply, payload, _)| (reply, payload))) {
            Ok(Some((Reply::Messages { sub, .. }, payload))) => {
                let batch = match wire::decode_messages(&payload) {
                    Ok(batch) => batch,
                    Err(e) => {
                        net.stats.count_bad_frame(&e);
                        net.conduct.invalid(peer, &e);
                        return;
                    }
                };
                if !net.events.deliver(sub, &node, batch) {
                    // Messages of a subscription this node dropped meanwhile.
                    let _ = commands.send(Control::Unsubscribe { sub });
                }
            }
            Ok(Some((Reply::Subscription { sub, outcome }, _))) => {
                if let Some(ack) = micro_base::sync::lock(&acks).remove(&sub) {
                    let _ = ack.send(outcome);
                }
            }
            Ok(Some((Reply::Refused(why), _))) => {
                tracing::debug!(peer = %peer.fmt_short(), %why, "event stream refused");
                return;
            }
            Ok(Some(_)) | Ok(None) => return,
            Err(e) => {
                net.stats.count_bad_frame(&e);
                return;
            }
        }
    }
}
