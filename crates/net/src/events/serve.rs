//! Serves a subscriber's event stream: each subscription it asks for subscribes on this node's
//! broker on its behalf, and their messages go back on the one stream, in batches, each batch
//! naming its subscription. Ends, dropping every subscription, when the subscriber closes the
//! stream or stops reading.

use crate::Network;
use crate::local::Local;
use crate::traffic::{Kind, Traffic};
use crate::wire::{self, Control, Reply};
use iroh::PublicKey;
use iroh::endpoint::{RecvStream, SendStream};
use micro_services::broker::{Message, Owner};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Subscriptions one event stream holds at most.
pub const MAX_SUBSCRIPTIONS: usize = 1024;
/// Messages written to a peer in one go at most.
const MAX_BATCH: usize = 512;
/// Payload bytes in one frame at most (a frame may exceed it by one message).
const MAX_BATCH_BYTES: usize = 1 << 20;
/// Largest control frame: a topic and a group name.
const MAX_CONTROL_BYTES: usize = 4096;

/// Serves the event stream `remote` opened.
pub async fn serve(
    local: Arc<dyn Local>,
    net: Arc<Network>,
    remote: PublicKey,
    mut send: SendStream,
    mut recv: RecvStream,
) {
    let (controls_tx, mut controls) = mpsc::channel::<Control>(64);
    // Reading stays in this task's select below through a channel: a frame read is never
    // cancelled halfway.
    let reader = {
        let net = net.clone();
        tokio::spawn(async move {
            loop {
                match wire::read_sized_frame::<_, Control>(&mut recv, MAX_CONTROL_BYTES).await {
                    Ok(Some((control, _, size))) => {
                        net.pool.traffic.received(Kind::Events, size);
                        if controls_tx.send(control).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(e) => {
                        net.stats.count_bad_frame(&e);
                        net.conduct.invalid(remote, &e);
                        return;
                    }
                }
            }
        })
    };
    // The broker's queues are read here, not by a task each: a message costs no extra hop.
    let mut subs: Vec<(u32, mpsc::Receiver<Message>)> = Vec::new();
    let mut batch: Vec<(u32, Vec<Message>)> = Vec::new();
    loop {
        tokio::select! {
            control = controls.recv() => {
                let Some(control) = control else { break };
                let reply = match control {
                    Control::Subscribe { sub, topic, group, history } => {
                        let outcome = start(local.as_ref(), remote, &subs, sub, &topic, group.as_deref(), history);
                        let outcome = outcome.map(|rx| subs.push((sub, rx)));
                        Reply::Subscription { sub, outcome }
                    }
                    Control::Unsubscribe { sub } => {
                        // Dropping the receiver ends the broker's subscription.
                        subs.retain(|(s, _)| *s != sub);
                        continue;
                    }
                };
                match wire::write_frame(&mut send, &reply, &[]).await {
                    Ok(sent) => net.pool.traffic.sent(Kind::Events, sent),
                    Err(_) => break,
                }
            }
            () = ready(&mut subs, &mut batch) => {
                if !send_batches(&mut send, &mut batch, &net.pool.traffic).await {
                    break;
                }
            }
            _ = send.stopped() => break,
        }
    }
    reader.abort();
    tracing::debug!(peer = %remote.fmt_short(), "event stream ended");
}

/// Waits until some subscription has messages, and takes what each has (up to [`MAX_BATCH`]
/// each); subscriptions the broker ended are dropped. Never ready without messages.
async fn ready(
    subs: &mut Vec<(u32, mpsc::Receiver<Message>)>,
    batch: &mut Vec<(u32, Vec<Message>)>,
) {
    std::future::poll_fn(|cx| {
        let mut ended = false;
        for (sub, rx) in subs.iter_mut() {
            let mut got = Vec::new();
            match rx.poll_recv_many(cx, &mut got, MAX_BATCH) {
                std::task::Poll::Ready(0) => ended = true,
                std::task::Poll::Ready(_) => batch.push((*sub, got)),
                std::task::Poll::Pending => {}
            }
        }
        if ended {
            subs.retain(|(_, rx)| !rx.is_closed() || !rx.is_empty());
        }
        if batch.is_empty() {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await
}

/// Subscribes on the broker on the peer's behalf, as subscription `sub` of the stream.
fn start(
    local: &dyn Local,
    remote: PublicKey,
    subs: &[(u32, mpsc::Receiver<Message>)],
    sub: u32,
    topic: &str,
    group: Option<&str>,
    history: bool,
) -> Result<mpsc::Receiver<Message>, String> {
    if subs.iter().any(|(s, _)| *s == sub) {
        return Err(format!("subscription {sub} exists on this stream"));
    }
    if subs.len() >= MAX_SUBSCRIPTIONS {
        return Err(format!(
            "{MAX_SUBSCRIPTIONS} subscriptions on one event stream at most"
        ));
    }
    local
        .subscribe(topic, group, history, Owner::Peer(remote.to_string()))
        .map(|s| s.messages)
        .map_err(|e| format!("{e:?}"))
}

/// Writes each subscription's messages in frames of at most [`MAX_BATCH_BYTES`] of payload;
/// false once the peer is gone.
async fn send_batches(
    send: &mut SendStream,
    batch: &mut Vec<(u32, Vec<Message>)>,
    traffic: &Traffic,
) -> bool {
    for (sub, messages) in batch.drain(..) {
        let mut chunk: Vec<wire::StreamedMessage> = Vec::new();
        let mut bytes = 0;
        let mut messages = messages.into_iter().peekable();
        while let Some(m) = messages.next() {
            bytes += m.payload.len() + 32;
            chunk.push(m.into());
            if bytes >= MAX_BATCH_BYTES || messages.peek().is_none() {
                let header = Reply::Messages {
                    sub,
                    count: chunk.len() as u32,
                };
                match wire::write_frame(send, &header, &wire::encode_messages(&chunk)).await {
                    Ok(sent) => traffic.sent(Kind::Events, sent),
                    Err(_) => return false,
                }
                chunk.clear();
                bytes = 0;
            }
        }
    }
    true
}
