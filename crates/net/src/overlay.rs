//! The peers a node keeps: the gossip overlay's partial view (HyParView's active view of a few
//! neighbours, not every node), the nodes it joined through or found on its LAN, and the nodes
//! it routes calls to — pinged every heartbeat for liveness, round-trip time and load, told
//! when this node leaves, and the overlay joined again when every neighbour is gone. Nothing is
//! broadcast to the whole network: what a node serves is found in the DHT.

use super::wire::{Reply, Request};
use super::{NetError, Network};
use crate::local::Local;
use futures::StreamExt as _;
use iroh::{PublicKey, TransportAddr};
use iroh_gossip::api::Event;
use iroh_gossip::proto::TopicId;
use sha2::{Digest as _, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Peers a node joins the overlay through when it has no neighbour.
const JOIN_FANOUT: usize = 4;

/// The overlay's one topic: it carries no messages, only the membership of its partial views.
fn overlay_topic() -> TopicId {
    TopicId::from_bytes(Sha256::digest(b"micro/overlay/1").into())
}

/// Starts the overlay and heartbeat loops.
pub fn spawn_loops(local: &Arc<dyn Local>, net: &Arc<Network>, bootstrap: Vec<PublicKey>) {
    tokio::spawn(overlay_loop(local.clone(), net.clone(), bootstrap));
    tokio::spawn(heartbeat_loop(net.clone()));
}

/// Tells the peers this node checks that it is leaving, so they drop it now rather than when
/// it stops answering. A peer of protocol 1 knows no `Leaving`: it finds out by its pings.
pub async fn leave(net: &Network) {
    let deadline = Instant::now() + Duration::from_millis(300);
    let peers: Vec<_> = net
        .peers
        .all()
        .into_iter()
        .filter(|(id, p)| p.healthy() && net.pool.protocol(id).is_some_and(|v| v >= 2))
        .collect();
    futures::future::join_all(peers.iter().map(|(_, p)| {
        net.pool
            .request(&p.addr, &Request::Leaving, &[], 4096, deadline)
    }))
    .await;
}

/// A peer said it is leaving: it is forgotten at once (its connection, address, routes).
pub fn left(net: &Network, peer: &PublicKey) {
    tracing::info!(node = %peer.fmt_short(), "peer left");
    net.peers.forget(peer);
    net.providers.left(peer);
    net.pool.forget(peer);
    net.addresses.forget(peer);
    net.dht.forget_node(peer);
}

/// Joins the overlay and follows its neighbours; joins again when the subscription ends.
async fn overlay_loop(local: Arc<dyn Local>, net: Arc<Network>, bootstrap: Vec<PublicKey>) {
    let mut bootstrap = bootstrap;
    loop {
        let topic = match net
            .gossip
            .subscribe(overlay_topic(), bootstrap.clone())
            .await
        {
            Ok(topic) => topic,
            Err(_) if net.stopping() => return,
            Err(e) => {
                tracing::warn!(error = %e, "joining the overlay failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let (sender, mut receiver) = topic.split();
        *micro_base::sync::lock(&net.gossip_sender) = Some(sender);
        while let Some(event) = receiver.next().await {
            match event {
                // Nothing is sent on the topic: a message is a peer misspeaking, dropped.
                Ok(Event::Received(_) | Event::Lagged) => {}
                Ok(Event::NeighborUp(id)) => {
                    if !matches!(
                        super::conduct::admit(local.as_ref(), &net, &id).await,
                        super::conduct::Admission::Admitted
                    ) {
                        continue;
                    }
                    micro_base::sync::lock(&net.neighbours).insert(id);
                    // Gossip dialled it through the endpoint's address lookup, which knows the way.
                    net.learn(iroh::EndpointAddr::new(id), "neighbour");
                }
                Ok(Event::NeighborDown(id)) => {
                    micro_base::sync::lock(&net.neighbours).remove(&id);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "overlay subscription ended");
                    break;
                }
            }
        }
        micro_base::sync::lock(&net.gossip_sender).take();
        bootstrap = some_peers(&net, JOIN_FANOUT);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Up to `n` healthy known peers, picked at random.
fn some_peers(net: &Network, n: usize) -> Vec<PublicKey> {
    let mut peers: Vec<PublicKey> = net
        .peers
        .all()
        .into_iter()
        .filter(|(_, p)| p.healthy())
        .map(|(id, _)| id)
        .collect();
    shuffle(&mut peers);
    peers.truncate(n);
    peers
}

fn shuffle<T>(items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let mut b = [0u8; 8];
        let _ = getrandom::fill(&mut b);
        let j = (u64::from_le_bytes(b) % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// One ping: the round-trip time and the peer's load.
pub async fn ping_once(
    net: &Network,
    peer: PublicKey,
    timeout: Duration,
) -> Result<(Duration, u32), NetError> {
    let addr = net
        .addr_of(&peer)
        .ok_or_else(|| NetError::Unreachable(format!("no address for {}", peer.fmt_short())))?;
    let started = Instant::now();
    match net
        .pool
        .request(&addr, &Request::Ping, &[], 4096, started + timeout)
        .await?
    {
        (Reply::Pong { load }, _) => Ok((started.elapsed(), load)),
        (other, _) => Err(NetError::Protocol(format!("{other:?} to a ping"))),
    }
}

/// Pings one peer and records the outcome.
async fn ping(net: &Network, peer: PublicKey, timeout: Duration) {
    match ping_once(net, peer, timeout).await {
        Ok((rtt, load)) => {
            net.peers.answered(&peer, rtt, load);
            net.providers.reached(&peer);
        }
        Err(_) => {
            if net.peers.missed(&peer) {
                tracing::info!(node = %peer.fmt_short(), "peer stopped answering; routes avoid it");
                net.providers.down(&peer);
                net.pool.close(&peer);
            }
        }
    }
}

/// A ticker at the heartbeat period; a late tick delays the next rather than bunching up.
fn heartbeat(net: &Network) -> tokio::time::Interval {
    let period = Duration::from_millis(net.config.network.heartbeat_ms.max(50));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

/// Every heartbeat: forget silent peers, ping the peers checked, and join the overlay again if
/// no neighbour is left.
async fn heartbeat_loop(net: Arc<Network>) {
    let mut tick = heartbeat(&net);
    loop {
        tick.tick().await;
        for gone in net
            .peers
            .expire(Duration::from_millis(net.config.network.peer_silence_ms))
        {
            net.pool.forget(&gone);
            tracing::info!(node = %gone.fmt_short(), "peer silent; forgotten");
        }
        let peers = to_check(&net);
        let timeout = Duration::from_millis(net.config.network.connect_timeout_ms);
        futures::future::join_all(peers.iter().map(|p| ping(&net, *p, timeout))).await;
        // A connection nobody used for a while closes; the peers checked keep theirs.
        net.pool.close_idle(IDLE_CONNECTION, &peers);
        if net.neighbours().is_empty() {
            let join = some_peers(&net, JOIN_FANOUT);
            if let Some(sender) = net.sender()
                && !join.is_empty()
            {
                let _ = sender.join_peers(join).await;
            }
        }
    }
}

/// A pooled connection unused this long closes (the next request dials again). Each open
/// connection costs a QUIC keep-alive every 5 s both ways; a lookup opens one to each node it
/// asks, so after a few lookups most of a node's idle packets were to nodes it would not ask
/// again for minutes. The nodes it checks (neighbours, routed-to providers) keep theirs.
const IDLE_CONNECTION: Duration = Duration::from_secs(15);

/// Routed-to nodes whose health is checked at most.
pub const MAX_ROUTED_CHECKS: usize = 32;

/// The peers whose health this node checks: its gossip neighbours, the nodes it joined through
/// or found on its LAN, and the nodes it routes calls to (at most [`MAX_ROUTED_CHECKS`]) — never
/// every node it knows of, and never a peer governance refused. A peer outside them is
/// forgotten once silent for `peer_silence_ms`.
fn to_check(net: &Network) -> Vec<PublicKey> {
    let mut out: Vec<PublicKey> = Vec::new();
    // A neighbour is learned when gossip reports it up; one forgotten for its silence stays
    // forgotten until it is heard from again, even while gossip still counts it.
    for id in net.neighbours() {
        if net.peers.get(&id).is_some() && !net.conduct.is_refused(&id) {
            out.push(id);
        }
    }
    // The nodes joined through (or found on the LAN) are checked only until the overlay gives
    // neighbours: a ticket is shared by everyone who joins with it, and its node must not be
    // pinged by all of them for good.
    if out.is_empty() {
        for (id, p) in net.peers.all() {
            if matches!(p.source, "ticket" | "mdns")
                && !out.contains(&id)
                && !net.conduct.is_refused(&id)
            {
                out.push(id);
            }
        }
    }
    for (id, addr) in net.providers.routed(MAX_ROUTED_CHECKS) {
        if net.conduct.is_refused(&id) {
            continue;
        }
        // Learned anew, or with the addresses its entry gives.
        net.learn(addr, "route");
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// Learns peers found on the local network by multicast DNS.
pub fn start_mdns(net: &Arc<Network>) {
    use iroh_mdns_address_lookup::{DiscoveryEvent, MdnsAddressLookup};
    let mdns = match MdnsAddressLookup::builder().build(net.identity.public()) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "no LAN discovery (multicast DNS unavailable)");
            return;
        }
    };
    let Ok(services) = net.endpoint.address_lookup() else {
        return;
    };
    services.add(mdns.clone());
    let net = net.clone();
    tokio::spawn(async move {
        let mut events = mdns.subscribe().await;
        while let Some(event) = events.next().await {
            if let DiscoveryEvent::Discovered { endpoint_info, .. } = event {
                let addr = endpoint_info.into_endpoint_addr();
                if addr.addrs.iter().any(|a| matches!(a, TransportAddr::Ip(_))) {
                    tracing::info!(node = %addr.id.fmt_short(), "found a node on the local network");
                    net.learn(addr, "mdns");
                }
            }
        }
    });
}
