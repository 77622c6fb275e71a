//! `GET /api/changes`: server-sent events that say when the node's services or its view of the
//! network changed, so the dashboard (or any client) re-reads what it shows instead of polling.
//! The events carry counters, not data: the data stays in the API the CLI uses.

use super::Gateway;
use super::reply::{self, Body};
use bytes::Bytes;
use hyper::Response;
use micro_core::node::Node;
use micro_net::Network;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Changes closer together than this go out as one event: a deploy touches the registry
/// several times, and a burst of lookups should not make every page re-read each.
const COALESCE: Duration = Duration::from_millis(100);

/// The change counters a client compares to know what to re-read.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Counters {
    /// Local services, versions and their states.
    services: u64,
    /// The providers this node found of the services it calls or looked up.
    providers: u64,
    /// Peers learned, down, back or forgotten.
    peers: u64,
}

impl Counters {
    fn read(node: &Node, net: Option<&Arc<Network>>) -> Self {
        Self {
            services: node.registry.changes(),
            providers: net.map_or(0, |n| n.providers.changes()),
            peers: net.map_or(0, |n| n.peers.changes()),
        }
    }

    /// One event: its name, the counters and what changed since `before`.
    fn event(&self, name: &str, before: Option<Counters>) -> Bytes {
        let mut what = Vec::new();
        let changed = |now: u64, then: Option<u64>| then.is_none_or(|t| t != now);
        if changed(self.services, before.map(|b| b.services)) {
            what.push("services");
        }
        if changed(self.providers, before.map(|b| b.providers)) {
            what.push("providers");
        }
        if changed(self.peers, before.map(|b| b.peers)) {
            what.push("peers");
        }
        let data = json!({
            "services": self.services, "providers": self.providers, "peers": self.peers, "what": what,
        });
        Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
    }
}

/// The receivers a stream waits on.
struct Watches {
    services: watch::Receiver<u64>,
    providers: Option<watch::Receiver<u64>>,
    peers: Option<watch::Receiver<u64>>,
}

impl Watches {
    /// Waits for the next change anywhere; `false` once the node is shutting down.
    async fn changed(&mut self) -> bool {
        async fn on(rx: &mut Option<watch::Receiver<u64>>) -> bool {
            match rx {
                Some(rx) => rx.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            r = self.services.changed() => r.is_ok(),
            r = on(&mut self.providers) => r,
            r = on(&mut self.peers) => r,
        }
    }

    /// Marks every change so far as seen: those of the coalescing pause go out in one event.
    fn mark_seen(&mut self) {
        self.services.borrow_and_update();
        for rx in [&mut self.providers, &mut self.peers].into_iter().flatten() {
            rx.borrow_and_update();
        }
    }
}

/// `GET /api/changes`: `event: hello` with the counters now, then `event: changed` with the
/// counters and `what` changed (`services`, `providers`, `peers`) each time something did.
pub fn changes(gw: &Gateway) -> Response<Body> {
    let node = &gw.node;
    let net = gw.net.as_ref();
    let watches = Watches {
        services: node.registry.watch(),
        providers: net.map(|n| n.providers.watch()),
        peers: net.map(|n| n.peers.watch()),
    };
    let now = Counters::read(node, net);
    let hello = futures::stream::once(std::future::ready(now.event("hello", None)));
    let parts = (node.clone(), gw.net.clone());
    let changes = futures::stream::unfold(
        (parts, watches, now),
        |(parts, mut watches, sent)| async move {
            loop {
                if !watches.changed().await {
                    return None;
                }
                tokio::time::sleep(COALESCE).await;
                watches.mark_seen();
                let now = Counters::read(&parts.0, parts.1.as_ref());
                if now != sent {
                    let event = now.event("changed", Some(sent));
                    return Some((event, (parts, watches, now)));
                }
            }
        },
    );
    reply::event_stream(futures::StreamExt::chain(hello, changes))
}
