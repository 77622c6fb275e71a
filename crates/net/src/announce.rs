//! Keeping the registry spread: this node's record announced over gossip (or, when too big for
//! a gossip message, its sequence number, which makes peers fetch it by sync); peers pinged
//! for liveness and round-trip time; a periodic anti-entropy sync with a random peer so that
//! no record depends on one broadcast arriving; and re-joining the gossip swarm when every
//! neighbour is gone.

use super::directory::Offered;
use super::records::{Link, NodeRecord, RecordError, SignedRecord};
use super::wire::{Reply, Request};
use super::{MAX_GOSSIP_BYTES, NetError, Network, record_addr};
use crate::local::Local;
use futures::StreamExt as _;
use iroh::{PublicKey, TransportAddr};
use iroh_gossip::api::Event;
use iroh_gossip::proto::TopicId;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Most links a record carries (the graph needs a node's neighbours, not all its peers).
const MAX_LINKS: usize = 16;
/// Peers a node joins the swarm through when it has no neighbour.
const JOIN_FANOUT: usize = 4;

/// What travels over gossip.
#[derive(Debug, Serialize, Deserialize)]
enum GossipMessage {
    Record(SignedRecord),
    /// The record is too big for gossip: fetch it by sync from whoever delivered this.
    Newer {
        node: [u8; 32],
        seq: u64,
    },
}

/// The one gossip topic of the registry.
fn registry_topic() -> TopicId {
    TopicId::from_bytes(Sha256::digest(b"micro/registry/1").into())
}

/// Starts the gossip, announce and heartbeat loops.
pub fn spawn_loops(local: &Arc<dyn Local>, net: &Arc<Network>, bootstrap: Vec<PublicKey>) {
    tokio::spawn(gossip_loop(local.clone(), net.clone(), bootstrap));
    tokio::spawn(announce_loop(local.clone(), net.clone()));
    tokio::spawn(heartbeat_loop(net.clone()));
    tokio::spawn(sync_loop(net.clone()));
}

/// Builds and signs this node's current record.
fn own_record(local: &dyn Local, net: &Network) -> (SignedRecord, u64) {
    // Sequence numbers must grow across restarts too: they start from the clock (in µs).
    let floor = net.clock.now_ms() * 1000;
    let previous = net
        .seq
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
            Some(s.max(floor) + 1)
        })
        .unwrap_or(0);
    let seq = previous.max(floor) + 1;
    let addr = net.endpoint.addr();
    // Every live version, so that calls pinned to a superseded one reach it from anywhere.
    let services = local.announced();
    let mut links: Vec<Link> = net
        .peers
        .all()
        .into_iter()
        .filter(|(_, p)| p.healthy())
        .filter_map(|(id, p)| {
            Some(Link {
                node: *id.as_bytes(),
                rtt_us: p.rtt?.as_micros().min(u32::MAX as u128) as u32,
            })
        })
        .collect();
    links.sort_by_key(|l| l.rtt_us);
    links.truncate(MAX_LINKS);
    let record = NodeRecord {
        node: *net.identity.public().as_bytes(),
        seq,
        issued_ms: net.clock.now_ms(),
        ttl_ms: net.config.network.record_ttl_ms,
        addrs: addr.ip_addrs().copied().collect(),
        relay: addr.relay_urls().next().map(|u| u.to_string()),
        services,
        links,
        load: local.load(),
        leaving: false,
        governance: local.governance_label().unwrap_or_default(),
        // Reports are asked of the peers a node checks (`observe`), not sent to every node.
        reports: Vec::new(),
        // Placements go to the nodes placed, not to every node (`placement`).
        placements: Vec::new(),
    };
    let signed = record.sign(&net.identity);
    {
        *micro_base::sync::lock(&net.own) = Some(signed.clone());
    }
    (signed, seq)
}

/// Broadcasts a record over gossip: whole if it fits, else as a pointer to sync from.
async fn broadcast(net: &Network, signed: &SignedRecord, seq: u64) {
    let message = if signed.encoded_len() + 16 <= MAX_GOSSIP_BYTES {
        GossipMessage::Record(signed.clone())
    } else {
        GossipMessage::Newer {
            node: *net.identity.public().as_bytes(),
            seq,
        }
    };
    let Ok(bytes) = postcard::to_stdvec(&message) else {
        return;
    };
    if let Some(sender) = net.sender()
        && let Err(e) = sender.broadcast(bytes.into()).await
    {
        tracing::debug!(error = %e, "gossip broadcast failed");
    }
}

/// Re-announces this node every announce interval, and at once when its services change.
async fn announce_loop(local: Arc<dyn Local>, net: Arc<Network>) {
    let interval = Duration::from_millis(net.config.network.announce_interval_ms.max(100));
    // What the record says changes with the services and the governance in use: each says so
    // through its change counter, and the record goes out again.
    let changes = local.changes();
    let mut changes: futures::stream::SelectAll<_> = changes
        .into_iter()
        .map(tokio_stream::wrappers::WatchStream::from_changes)
        .collect();
    loop {
        let (signed, seq) = own_record(local.as_ref(), &net);
        broadcast(&net, &signed, seq).await;
        tokio::select! {
            () = net.announce.notified() => {}
            Some(_) = changes.next() => {}
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// Tells the network this node is leaving, so its routes go now rather than at expiry.
pub async fn leave(net: &Network) {
    let own = micro_base::sync::lock(&net.own).clone();
    let Some(own) = own.and_then(|s| s.open().ok()) else {
        return;
    };
    let mut bye = own;
    bye.seq = net.seq.fetch_add(1, Ordering::Relaxed) + 1;
    bye.issued_ms = net.clock.now_ms();
    bye.services.clear();
    bye.leaving = true;
    let signed = bye.sign(&net.identity);
    broadcast(net, &signed, bye.seq).await;
    // Gossip may not get it out before the endpoint closes: hand it to every peer directly too.
    let deadline = Instant::now() + Duration::from_millis(300);
    let push = Request::Push { record: signed };
    let peers: Vec<_> = net
        .peers
        .all()
        .into_iter()
        .filter(|(_, p)| p.healthy())
        .collect();
    futures::future::join_all(
        peers
            .iter()
            .map(|(_, p)| net.pool.request(&p.addr, &push, &[], 4096, deadline)),
    )
    .await;
}

/// Takes a record from a peer: checks it, keeps it if newer and learns the node's address. `from` is the peer that handed it over on a connection of
/// its own (a push or a sync answer; not gossip, which relays before anyone checks): a record
/// that does not verify counts against it. Records of nodes governance refused are dropped.
pub fn accept(
    net: &Network,
    signed: &SignedRecord,
    age: Duration,
    from: Option<PublicKey>,
) -> Result<Offered, RecordError> {
    let outcome = net
        .directory
        .offer_unless(signed, age, |id| net.conduct.is_refused(id));
    match &outcome {
        Ok(Offered::New) => {
            if let Ok(record) = signed.open()
                && let Ok(id) = record.id()
            {
                if record.leaving {
                    net.pool.forget(&id);
                    net.addresses.forget(&id);
                } else {
                    // Dialled when a call or gossip needs it; not a peer to check.
                    net.addresses.add(record_addr(id, &record), false);
                }
            }
        }
        Ok(_) => {}
        Err(RecordError::Replayed { .. }) => {
            net.stats.replayed_records.fetch_add(1, Ordering::Relaxed);
        }
        Err(RecordError::Refused { .. }) => {
            net.stats.refused_peers.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            net.stats.bad_records.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "refused a record");
            if let Some(from) = from {
                net.conduct.invalid(from, e);
            }
        }
    }
    outcome
}

/// Joins the registry topic and handles what arrives; rejoins when the subscription ends.
async fn gossip_loop(local: Arc<dyn Local>, net: Arc<Network>, bootstrap: Vec<PublicKey>) {
    let mut bootstrap = bootstrap;
    loop {
        let topic = match net
            .gossip
            .subscribe(registry_topic(), bootstrap.clone())
            .await
        {
            Ok(topic) => topic,
            Err(_) if net.stopping() => return,
            Err(e) => {
                tracing::warn!(error = %e, "joining the gossip swarm failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let (sender, mut receiver) = topic.split();
        *micro_base::sync::lock(&net.gossip_sender) = Some(sender);
        net.announce_soon();
        while let Some(event) = receiver.next().await {
            match event {
                Ok(Event::Received(message)) => {
                    // A refused or throttled neighbour's messages are dropped (what it relays
                    // of others reaches us by sync).
                    if !matches!(
                        super::conduct::admit(local.as_ref(), &net, &message.delivered_from).await,
                        super::conduct::Admission::Admitted
                    ) {
                        continue;
                    }
                    if net.peers.get(&message.delivered_from).is_none()
                        && micro_base::sync::lock(&net.neighbours).contains(&message.delivered_from)
                    {
                        // A neighbour forgotten for its silence speaks again.
                        net.learn(iroh::EndpointAddr::new(message.delivered_from), "neighbour");
                    }
                    let Ok(decoded) = postcard::from_bytes::<GossipMessage>(&message.content)
                    else {
                        net.stats.bad_records.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    match decoded {
                        GossipMessage::Record(signed) => {
                            let _ = accept(&net, &signed, Duration::ZERO, None);
                        }
                        GossipMessage::Newer { node, seq } => {
                            let have = PublicKey::from_bytes(&node)
                                .ok()
                                .and_then(|id| net.directory.get(&id))
                                .map(|r| r.seq)
                                .unwrap_or(0);
                            if seq > have {
                                let net = net.clone();
                                let from = message.delivered_from;
                                tokio::spawn(async move { sync_with(&net, from).await });
                            }
                        }
                    }
                }
                Ok(Event::NeighborUp(id)) => {
                    micro_base::sync::lock(&net.neighbours).insert(id);
                    // Gossip dialled it through the endpoint's address book, which knows the way.
                    net.learn(iroh::EndpointAddr::new(id), "neighbour");
                    // A new neighbour has not seen our record yet.
                    net.announce_soon();
                }
                Ok(Event::NeighborDown(id)) => {
                    micro_base::sync::lock(&net.neighbours).remove(&id);
                }
                Ok(Event::Lagged) => {
                    tracing::debug!("gossip receiver lagged; the next sync catches up");
                }
                Err(e) => {
                    tracing::debug!(error = %e, "gossip subscription ended");
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

/// Pulls every record a peer has that is newer than ours.
pub async fn sync_with(net: &Network, peer: PublicKey) -> Result<usize, NetError> {
    let addr = net
        .addr_of(&peer)
        .ok_or_else(|| NetError::Unreachable(format!("no address for {}", peer.fmt_short())))?;
    let deadline =
        Instant::now() + Duration::from_millis(net.config.network.connect_timeout_ms * 2);
    let request = Request::Sync {
        known: net.directory.digest(),
    };
    let (reply, _) = net
        .pool
        .request(
            &addr,
            &request,
            &[],
            net.config.network.max_frame_bytes,
            deadline,
        )
        .await?;
    let Reply::Records(records) = reply else {
        return Err(NetError::Protocol(format!("{reply:?} to a sync")));
    };
    let mut new = 0;
    for (signed, age_ms) in records {
        if let Ok(Offered::New) = accept(net, &signed, Duration::from_millis(age_ms), Some(peer)) {
            new += 1;
        }
    }
    Ok(new)
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

/// Every heartbeat: expire records and silent peers, ping peers, and rejoin the swarm if no
/// neighbour is left.
async fn heartbeat_loop(net: Arc<Network>) {
    let mut tick = heartbeat(&net);
    loop {
        tick.tick().await;
        for gone in net.directory.expire() {
            tracing::info!(node = %gone.fmt_short(), "node record expired");
        }
        for gone in net
            .peers
            .expire(Duration::from_millis(net.config.network.record_ttl_ms))
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

/// A pooled connection unused this long closes (the next request dials again).
const IDLE_CONNECTION: Duration = Duration::from_secs(60);

/// Routed-to nodes whose health is checked at most.
pub const MAX_ROUTED_CHECKS: usize = 32;

/// The peers whose health this node checks: its gossip neighbours, the nodes it joined through
/// or found on its LAN, and the nodes it routes calls to (at most [`MAX_ROUTED_CHECKS`]) — never
/// every node it knows of. A peer outside them is forgotten once silent for a record lifetime.
fn to_check(net: &Network) -> Vec<PublicKey> {
    let mut out: Vec<PublicKey> = Vec::new();
    // A neighbour is learned when gossip reports it up; one forgotten for its silence stays
    // forgotten until it is heard from again, even while gossip still counts it.
    for id in net.neighbours() {
        if net.peers.get(&id).is_some() {
            out.push(id);
        }
    }
    for (id, p) in net.peers.all() {
        if matches!(p.source, "ticket" | "mdns") && !out.contains(&id) {
            out.push(id);
        }
    }
    for (id, addr) in net.providers.routed(MAX_ROUTED_CHECKS) {
        // Learned anew, or with the addresses its entry gives.
        net.learn(addr, "route");
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// Anti-entropy: every heartbeat, pulls newer records from one random healthy peer. Apart from
/// the pings so that a slow or dead peer never delays failure detection.
async fn sync_loop(net: Arc<Network>) {
    let mut tick = heartbeat(&net);
    loop {
        tick.tick().await;
        for peer in some_peers(&net, 1) {
            if let Err(e) = sync_with(&net, peer).await {
                tracing::debug!(peer = %peer.fmt_short(), error = %e, "sync failed");
            }
        }
    }
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
