//! Events across the network. A subscription is network-wide: besides the local broker, it
//! subscribes on every node it knows (and every node that appears later) over a stream that
//! carries that node's messages of the topic. Each message is published on exactly one node,
//! whose broker picks one member of each queue group among its local members and the remote
//! subscriptions standing in for other nodes' members, so a queue group gets one delivery
//! network-wide. History is replayed by each node from its own retention.

use super::Network;
use super::wire::{self, Reply, Request};
use crate::local::Local;
use iroh::PublicKey;
use iroh::endpoint::SendStream;
use micro_services::broker::{Message, Owner, Subscription};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Messages written to a peer in one frame at most.
const MAX_BATCH: usize = 512;
/// Payload bytes in one frame at most (a frame may exceed it by one message).
const MAX_BATCH_BYTES: usize = 1 << 20;

/// Extends `local`, a subscription to `topic` on this node's broker, to every node of the
/// network. Returns once the subscriptions on the nodes known now are in place (or failed), so
/// that a message published anywhere after this returns is delivered.
pub async fn subscribe(
    net: &Arc<Network>,
    queue: usize,
    local: Subscription,
    topic: &str,
    group: Option<&str>,
    history: bool,
) -> Subscription {
    let (tx, messages) = mpsc::channel(queue.max(1));
    let spec = Spec {
        topic: topic.to_string(),
        group: group.map(str::to_string),
        history,
    };
    let mut pumps: HashMap<PublicKey, JoinHandle<()>> = HashMap::new();
    let mut ready = Vec::new();
    for peer in net.live_peers() {
        let (done, wait) = oneshot::channel();
        pumps.insert(
            peer,
            spawn_pump(net, peer, &spec, spec.history, tx.clone(), done),
        );
        ready.push(wait);
    }
    // Bounded: a dead peer costs a connect timeout, not forever.
    let _ = tokio::time::timeout(
        Duration::from_millis(net.config.network.connect_timeout_ms),
        futures::future::join_all(ready),
    )
    .await;
    tokio::spawn(manage(net.clone(), local, tx, spec, pumps));
    Subscription { messages }
}

#[derive(Clone)]
struct Spec {
    topic: String,
    group: Option<String>,
    history: bool,
}

/// Forwards the local subscription's messages and keeps one remote stream per live node. Ends,
/// dropping every remote stream, when the local subscription ends (the owner unsubscribed) or
/// the subscriber went away.
async fn manage(
    net: Arc<Network>,
    mut local: Subscription,
    tx: mpsc::Sender<Message>,
    spec: Spec,
    mut pumps: HashMap<PublicKey, JoinHandle<()>>,
) {
    let mut changes = net.directory.watch();
    let mut tick = tokio::time::interval(Duration::from_millis(net.config.network.heartbeat_ms));
    loop {
        tokio::select! {
            message = local.messages.recv() => match message {
                Some(m) => if tx.send(m).await.is_err() { break },
                None => break,
            },
            () = tx.closed() => break,
            _ = changes.changed() => {}
            _ = tick.tick() => {}
        }
        let live = net.live_peers();
        pumps.retain(|peer, pump| {
            let keep = live.contains(peer) || !pump.is_finished();
            if !keep {
                pump.abort();
            }
            keep
        });
        for peer in live {
            let restart = pumps.get(&peer).is_none_or(|p| p.is_finished());
            if restart {
                // A node seen for the first time replays its history if asked; a stream that
                // broke and is remade does not (it was replayed already).
                let history = spec.history && !pumps.contains_key(&peer);
                let (done, _) = oneshot::channel();
                pumps.insert(
                    peer,
                    spawn_pump(&net, peer, &spec, history, tx.clone(), done),
                );
            }
        }
    }
    for pump in pumps.values() {
        pump.abort();
    }
}

/// Streams one peer's messages of the topic into `tx`; `ready` fires once the peer has
/// subscribed (or the attempt failed).
fn spawn_pump(
    net: &Arc<Network>,
    peer: PublicKey,
    spec: &Spec,
    history: bool,
    tx: mpsc::Sender<Message>,
    ready: oneshot::Sender<()>,
) -> JoinHandle<()> {
    let net = net.clone();
    let topic = spec.topic.clone();
    let request = Request::Subscribe {
        topic: spec.topic.clone(),
        group: spec.group.clone(),
        history,
    };
    tokio::spawn(async move {
        let Some(addr) = net.addr_of(&peer) else {
            return;
        };
        let (_send, mut recv, _held) = match net.pool.open(&addr, &request).await {
            Ok(streams) => streams,
            Err(e) => {
                tracing::debug!(peer = %peer.fmt_short(), error = %e, "remote subscription failed");
                return;
            }
        };
        let limit = net.frame_limit();
        let node_id = peer.to_string();
        let mut ready = Some(ready);
        loop {
            match wire::read_frame::<_, Reply>(&mut recv, limit).await {
                Ok(Some((Reply::Messages { .. }, payload))) => {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(());
                    }
                    let batch = match wire::decode_messages(&payload) {
                        Ok(batch) => batch,
                        Err(e) => {
                            net.stats.count_bad_frame(&e);
                            return;
                        }
                    };
                    for m in batch {
                        // Without a future per message while the queue has room.
                        match tx.try_send(m.into_message(&topic, &node_id)) {
                            Ok(()) => {}
                            Err(mpsc::error::TrySendError::Full(m)) => {
                                if tx.send(m).await.is_err() {
                                    return;
                                }
                            }
                            Err(mpsc::error::TrySendError::Closed(_)) => return,
                        }
                    }
                }
                Ok(Some((Reply::Refused(why), _))) => {
                    tracing::warn!(peer = %peer.fmt_short(), %why, "remote subscription refused");
                    return;
                }
                Ok(Some(_)) | Ok(None) => return,
                Err(e) => {
                    net.stats.count_bad_frame(&e);
                    return;
                }
            }
        }
    })
}

/// Serves a peer's subscription: subscribes on this node's broker on the peer's behalf and
/// streams the messages until the peer stops reading.
pub async fn serve_subscription(
    local: &dyn Local,
    remote: PublicKey,
    mut send: SendStream,
    topic: String,
    group: Option<String>,
    history: bool,
) {
    let owner = Owner::Peer(remote.to_string());
    let mut subscription = match local.subscribe(&topic, group.as_deref(), history, owner) {
        Ok(s) => s,
        Err(e) => {
            let _ = wire::write_frame(&mut send, &Reply::Refused(format!("{e:?}")), &[]).await;
            let _ = send.finish();
            return;
        }
    };
    // The first (empty) batch tells the subscriber it is in place.
    let ready = Reply::Messages { count: 0 };
    if wire::write_frame(&mut send, &ready, &wire::encode_messages(&[]))
        .await
        .is_err()
    {
        return;
    }
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        tokio::select! {
            n = subscription.messages.recv_many(&mut batch, MAX_BATCH) => {
                if n == 0 {
                    break;
                }
                if !send_batches(&mut send, batch.drain(..)).await {
                    break;
                }
            }
            _ = send.stopped() => break,
        }
    }
}

/// Writes messages in frames of at most [`MAX_BATCH_BYTES`] of payload; false once the peer
/// is gone.
async fn send_batches(send: &mut SendStream, messages: impl Iterator<Item = Message>) -> bool {
    let mut chunk: Vec<wire::StreamedMessage> = Vec::new();
    let mut bytes = 0;
    let mut messages = messages.peekable();
    while let Some(m) = messages.next() {
        bytes += m.payload.len() + 32;
        chunk.push(m.into());
        if bytes >= MAX_BATCH_BYTES || messages.peek().is_none() {
            let header = Reply::Messages {
                count: chunk.len() as u32,
            };
            let payload = wire::encode_messages(&chunk);
            if wire::write_frame(send, &header, &payload).await.is_err() {
                return false;
            }
            chunk.clear();
            bytes = 0;
        }
    }
    true
}
