//! Topic delivery: the subscribers of one topic as a gossip swarm — iroh-gossip's HyParView
//! membership and PlumTree broadcast, the sans-IO `iroh_gossip::proto` state machine the node
//! already runs for its overlay — joined through a few subscribers found under the topic's
//! rendezvous key, with one publisher, churn among the subscribers, and every message's
//! delivery counted. It measures what a per-topic mesh costs a node and delivers at 10, 1k and
//! 100k subscribers before the node's events use one (today they go over one stream per pair
//! of publishing and subscribing nodes, docs/network.md).

use crate::calendar::Calendar;
use crate::model::{HANDSHAKE_BYTES, QUIC_BYTES, latency_ms, mix};
use crate::report::Samples;
use bytes::Bytes;
use iroh_gossip::proto::{
    Command, Config as GossipConfig, Event as TopicEvent, InEvent, Message, OutEvent, PeerData,
    Scope, State, Timer, TopicId,
};
use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};
use rustc_hash::FxHashSet as HashSet;
use std::fmt;
use std::time::{Duration, Instant};

/// A node as the gossip protocol names it: 32 bytes, as a public key is on the wire; the first
/// four are the simulator's slot.
type Id = [u8; 32];

/// How often a node checks it still has neighbours in the topic (the node's heartbeat).
const HEARTBEAT_MS: u64 = 2_000;

fn id_of(slot: u32, seed: u64) -> Id {
    let mut id = [0u8; 32];
    id[..4].copy_from_slice(&slot.to_le_bytes());
    for (i, chunk) in id[4..].chunks_mut(8).enumerate() {
        let word = mix(seed ^ (u64::from(slot) << 8) ^ i as u64).to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
    id
}

fn slot_of(id: &Id) -> u32 {
    u32::from_le_bytes([id[0], id[1], id[2], id[3]])
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct TopicConfig {
    /// Subscribing nodes at any time (the publisher is one more).
    pub subscribers: usize,
    /// Fraction of the subscribers replaced per hour (a node leaves without a word, a new one
    /// joins).
    pub churn_per_hour: f64,
    /// Simulated seconds before measuring: the subscribers join over its first half.
    pub warmup_s: u64,
    /// Simulated seconds measured.
    pub measure_s: u64,
    /// Messages the publisher sends per second.
    pub messages_per_s: f64,
    /// Bytes of a message's content.
    pub message_bytes: usize,
    /// Subscribers a joining node is given to join through (what a lookup of the topic's
    /// `subscribes:` key answers).
    pub bootstrap: usize,
    /// How long a node takes to see that a silent neighbour is gone (QUIC's idle timeout).
    pub detect_ms: u64,
    /// A message counts as delivered when it arrives within this long.
    pub deadline_ms: u64,
    /// How long a node hears nothing of the topic before it joins through one more subscriber
    /// looked up anew (0: never).
    pub refresh_ms: u64,
    /// Bytes of the addressing data a node hands out about itself.
    pub peer_data_bytes: usize,
    /// The seed of everything random.
    pub seed: u64,
}

impl TopicConfig {
    /// The defaults for a topic of `subscribers`.
    pub fn new(subscribers: usize) -> Self {
        Self {
            subscribers,
            churn_per_hour: 0.0,
            warmup_s: 60,
            measure_s: 60,
            messages_per_s: 1.0,
            message_bytes: 256,
            bootstrap: 4,
            detect_ms: 30_000,
            deadline_ms: 10_000,
            refresh_ms: 30_000,
            peer_data_bytes: 64,
            seed: 1,
        }
    }
}

/// What one topic simulation measured.
#[derive(Debug, Default, Clone)]
pub struct TopicReport {
    /// Subscribers at any time.
    pub subscribers: usize,
    /// Fraction replaced per hour.
    pub churn_per_hour: f64,
    /// Messages published while measuring.
    pub messages: u64,
    /// (message, subscriber) pairs that should have arrived: subscribers that had joined a
    /// few seconds before the message and lived past its deadline.
    pub expected: u64,
    /// Of those, delivered within the deadline.
    pub delivered: u64,
    /// Publish → arrival, ms, of those delivered.
    pub latency_ms: Samples,
    /// Gossip hops from the publisher, of those delivered (from the arrival order: the
    /// neighbour that delivered it, one more than its own).
    pub hops: Samples,
    /// Bytes in + out per second per node that lived through the window.
    pub bytes_per_s: Samples,
    /// Neighbours per node at the end.
    pub neighbours: Samples,
    /// Connections per node at the end.
    pub connections: Samples,
    /// Nodes replaced while measuring.
    pub churned: u64,
    /// Subscribers alive at the end, joined before the window, that received nothing.
    pub deaf: u64,
    /// Joins again of nodes left without neighbours, while measuring.
    pub rejoins: u64,
    /// Joins through one more subscriber of nodes that heard nothing for a refresh period,
    /// while measuring.
    pub refreshes: u64,
    /// Events processed.
    pub events: u64,
    /// Wall time.
    pub wall_s: f64,
    /// Peak RSS.
    pub peak_rss_mb: f64,
}

impl TopicReport {
    /// Delivered / expected.
    pub fn delivery(&self) -> f64 {
        if self.expected == 0 {
            0.0
        } else {
            self.delivered as f64 / self.expected as f64
        }
    }

    /// The header of the markdown table rows print in.
    pub fn header() -> &'static str {
        "| subscribers | churn/h | messages | delivered | deaf | latency ms p50 / p99 | hops p50 / p99 / max | bytes/s per node p50 / p99 / max | neighbours p50 / max | connections p50 / max | rejoins / refreshes | wall s | RSS MB |\n\
         | ---: | ---: | ---: | ---: | ---: | --- | --- | --- | --- | --- | --- | ---: | ---: |"
    }
}

impl fmt::Display for TopicReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "| {} | {:.0} % | {} | {:.3} % | {} | {:.0} / {:.0} | {:.0} / {:.0} / {:.0} | {:.0} / {:.0} / {:.0} | {:.0} / {:.0} | {:.0} / {:.0} | {} / {} | {:.0} | {:.0} |",
            self.subscribers,
            self.churn_per_hour * 100.0,
            self.messages,
            self.delivery() * 100.0,
            self.deaf,
            self.latency_ms.quantile(0.5),
            self.latency_ms.quantile(0.99),
            self.hops.quantile(0.5),
            self.hops.quantile(0.99),
            self.hops.max(),
            self.bytes_per_s.quantile(0.5),
            self.bytes_per_s.quantile(0.99),
            self.bytes_per_s.max(),
            self.neighbours.quantile(0.5),
            self.neighbours.max(),
            self.connections.quantile(0.5),
            self.connections.max(),
            self.rejoins,
            self.refreshes,
            self.wall_s,
            self.peak_rss_mb,
        )
    }
}

enum Event {
    Message {
        to: u32,
        from: u32,
        message: Message<Id>,
    },
    Timer {
        node: u32,
        timer: Timer<Id>,
    },
    /// `node` sees that its connection to `peer` is gone.
    Gone {
        node: u32,
        peer: u32,
    },
    Join(u32),
    /// A node's heartbeat: without neighbours, it joins again through subscribers looked up
    /// anew, as the node repairs a topic.
    Check(u32),
    Publish,
    Churn,
}

struct Node {
    state: Option<State<Id, SmallRng>>,
    born_ms: u64,
    died_ms: Option<u64>,
    bytes: u64,
    neighbours: Vec<u32>,
    connections: HashSet<u32>,
    /// Where it is in the live list, while it is live.
    live_at: Option<usize>,
    /// When it last received a message of the topic (or joined).
    heard_ms: u64,
    /// Messages received: (number, arrival ms, hops).
    received: Vec<(u32, u32, u8)>,
    /// Hops of each message as it reached this node, by number (for the next node's count).
    hops_of: Vec<u8>,
}

struct TopicSim {
    config: TopicConfig,
    topic: TopicId,
    gossip: GossipConfig,
    origin: tokio::time::Instant,
    now: u64,
    queue: Calendar<Event>,
    nodes: Vec<Node>,
    live: Vec<u32>,
    rng: SmallRng,
    /// When each message was published.
    published: Vec<u64>,
    measure_from: u64,
    measure_to: u64,
    report: TopicReport,
}

impl TopicSim {
    fn measuring(&self) -> bool {
        self.now >= self.measure_from && self.now < self.measure_to
    }

    fn id(&self, n: u32) -> Id {
        id_of(n, self.config.seed)
    }

    fn add_node(&mut self) -> u32 {
        let n = self.nodes.len() as u32;
        let me = self.id(n);
        let data = PeerData::new(vec![0u8; self.config.peer_data_bytes]);
        let rng = SmallRng::seed_from_u64(mix(self.config.seed ^ u64::from(n) ^ 0x7091c));
        self.nodes.push(Node {
            state: Some(State::new(me, data, self.gossip.clone(), rng)),
            born_ms: self.now,
            died_ms: None,
            heard_ms: self.now,
            live_at: None,
            bytes: 0,
            neighbours: Vec::new(),
            connections: HashSet::default(),
            received: Vec::new(),
            hops_of: Vec::new(),
        });
        n
    }

    fn count(&mut self, n: u32, bytes: usize) {
        if self.measuring() {
            self.nodes[n as usize].bytes += bytes as u64;
        }
    }

    fn kill(&mut self, n: u32) {
        let node = &mut self.nodes[n as usize];
        node.state = None;
        node.died_ms = Some(self.now);
        let mut peers: Vec<u32> = node.connections.drain().collect();
        peers.extend(std::mem::take(&mut node.neighbours));
        peers.sort_unstable();
        peers.dedup();
        for peer in peers {
            self.queue.push(
                self.now + self.config.detect_ms,
                Event::Gone {
                    node: peer,
                    peer: n,
                },
            );
        }
        if let Some(at) = self.nodes[n as usize].live_at.take() {
            self.live.swap_remove(at);
            if let Some(&moved) = self.live.get(at) {
                self.nodes[moved as usize].live_at = Some(at);
            }
        }
    }

    fn handle(&mut self, n: u32, event: InEvent<Id>) {
        let now = self.origin + Duration::from_millis(self.now);
        let Some(state) = self.nodes[n as usize].state.as_mut() else {
            return;
        };
        let out: Vec<OutEvent<Id>> = state.handle(event, now, None).collect();
        for event in out {
            match event {
                OutEvent::SendMessage(to, message) => {
                    let t = slot_of(&to);
                    let bytes = message.size().unwrap_or(0) + QUIC_BYTES;
                    let opened = self.nodes[n as usize].connections.insert(t);
                    let handshake = if opened { 2 * HANDSHAKE_BYTES } else { 0 };
                    self.count(n, bytes + handshake);
                    let key_n = u64::from(n) ^ self.config.seed;
                    let key_t = u64::from(t) ^ self.config.seed;
                    let one_way = latency_ms(mix(key_n), mix(key_t));
                    let at = self.now + one_way + if opened { 2 * one_way } else { 0 };
                    if self.nodes[t as usize].state.is_none() {
                        // A dial to a node that is gone fails after the timeout.
                        self.nodes[n as usize].connections.remove(&t);
                        self.queue.push(
                            self.now + self.config.detect_ms,
                            Event::Gone { node: n, peer: t },
                        );
                        continue;
                    }
                    if handshake > 0 && self.measuring() {
                        self.nodes[t as usize].bytes += handshake as u64;
                    }
                    self.nodes[t as usize].connections.insert(n);
                    self.queue.push(
                        at,
                        Event::Message {
                            to: t,
                            from: n,
                            message,
                        },
                    );
                }
                OutEvent::ScheduleTimer(after, timer) => {
                    let at = self.now + (after.as_millis() as u64).max(1);
                    self.queue.push(at, Event::Timer { node: n, timer });
                }
                OutEvent::DisconnectPeer(peer) => {
                    let p = slot_of(&peer);
                    // This side closes now; the other sees it one way later.
                    if self.nodes[n as usize].connections.remove(&p) {
                        let one_way = latency_ms(
                            mix(u64::from(n) ^ self.config.seed),
                            mix(u64::from(p) ^ self.config.seed),
                        );
                        self.queue
                            .push(self.now + one_way, Event::Gone { node: p, peer: n });
                    }
                }
                OutEvent::EmitEvent(_, event) => match event {
                    TopicEvent::NeighborUp(peer) => {
                        self.nodes[n as usize].neighbours.push(slot_of(&peer));
                    }
                    TopicEvent::NeighborDown(peer) => {
                        let p = slot_of(&peer);
                        self.nodes[n as usize].neighbours.retain(|x| *x != p);
                    }
                    TopicEvent::Received(gossip) => {
                        self.received(n, &gossip.content, gossip.delivered_from)
                    }
                },
                OutEvent::PeerData(..) => {}
            }
        }
    }

    fn received(&mut self, n: u32, content: &Bytes, from: Id) {
        let Some(number) = content
            .get(..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_le_bytes)
        else {
            return;
        };
        let from = slot_of(&from) as usize;
        let hops = self.nodes[from]
            .hops_of
            .get(number as usize)
            .copied()
            .unwrap_or(0)
            .saturating_add(1);
        let node = &mut self.nodes[n as usize];
        node.heard_ms = self.now;
        if node.hops_of.len() <= number as usize {
            node.hops_of.resize(number as usize + 1, 0);
        }
        node.hops_of[number as usize] = hops;
        node.received.push((number, self.now as u32, hops));
    }

    /// Live nodes other than `n`.
    fn others(&self, n: u32) -> usize {
        self.live.len() - usize::from(self.nodes[n as usize].live_at.is_some())
    }

    /// A live node other than `n`, at random: the draw of an index into the live list without
    /// `n`, made without copying the list (a join among 100k subscribers copied it whole).
    fn live_other_than(&mut self, n: u32) -> Option<u32> {
        let count = self.others(n);
        if count == 0 {
            return None;
        }
        let i = (self.rng.next_u64() % count as u64) as usize;
        let i = match self.nodes[n as usize].live_at {
            Some(skip) if i >= skip => i + 1,
            _ => i,
        };
        self.live.get(i).copied()
    }

    fn bootstrap(&mut self, n: u32) -> Vec<Id> {
        let mut peers = Vec::new();
        for _ in 0..self.config.bootstrap.min(self.others(n)) {
            let Some(pick) = self.live_other_than(n) else {
                break;
            };
            let id = self.id(pick);
            if !peers.contains(&id) {
                peers.push(id);
            }
        }
        peers
    }

    fn step(&mut self, event: Event) {
        match event {
            Event::Message { to, from, message } => {
                let bytes = message.size().unwrap_or(0) + QUIC_BYTES;
                if self.nodes[to as usize].state.is_none() {
                    return;
                }
                self.count(to, bytes);
                let from_id = self.id(from);
                self.handle(to, InEvent::RecvMessage(from_id, message));
            }
            Event::Timer { node, timer } => self.handle(node, InEvent::TimerExpired(timer)),
            Event::Gone { node, peer } => {
                if self.nodes[node as usize].connections.remove(&peer)
                    || self.nodes[peer as usize].state.is_none()
                {
                    let id = self.id(peer);
                    self.handle(node, InEvent::PeerDisconnected(id));
                }
            }
            Event::Join(n) => {
                self.nodes[n as usize].heard_ms = self.now;
                let peers = self.bootstrap(n);
                self.nodes[n as usize].live_at = Some(self.live.len());
                self.live.push(n);
                self.handle(n, InEvent::Command(self.topic, Command::Join(peers)));
                self.queue.push(self.now + HEARTBEAT_MS, Event::Check(n));
            }
            Event::Check(n) => {
                let node = &self.nodes[n as usize];
                if node.state.is_none() {
                    return;
                }
                let lonely = node.neighbours.is_empty();
                // A node that heard nothing of the topic for a refresh period while its
                // publisher's entry is live (it is, here: the publisher never leaves) joins
                // through one more subscriber looked up anew: the swarm's small islands, which
                // HyParView alone never merges, meet the rest.
                let refresh = self.config.refresh_ms > 0
                    && self.now.saturating_sub(node.heard_ms) >= self.config.refresh_ms;
                if (lonely || refresh) && n != 0 {
                    self.nodes[n as usize].heard_ms = self.now;
                    let mut peers = self.bootstrap(n);
                    if self.measuring() && !lonely {
                        self.report.refreshes += 1;
                    }
                    if !lonely {
                        peers.truncate(1);
                    }
                    self.handle(n, InEvent::Command(self.topic, Command::Join(peers)));
                    if self.measuring() && lonely {
                        self.report.rejoins += 1;
                    }
                }
                self.queue.push(self.now + HEARTBEAT_MS, Event::Check(n));
            }
            Event::Publish => {
                let gap = (1000.0 / self.config.messages_per_s.max(0.001)) as u64;
                self.queue.push(self.now + gap.max(1), Event::Publish);
                let number = self.published.len() as u32;
                self.published.push(self.now);
                let mut content = vec![0u8; self.config.message_bytes.max(4)];
                content[..4].copy_from_slice(&number.to_le_bytes());
                self.handle(
                    0,
                    InEvent::Command(
                        self.topic,
                        Command::Broadcast(Bytes::from(content), Scope::Swarm),
                    ),
                );
            }
            Event::Churn => {
                let rate =
                    self.config.churn_per_hour * self.config.subscribers as f64 / 3_600_000.0;
                let gap = if rate > 0.0 {
                    let u = ((self.rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
                    ((-u.ln() / rate) as u64).max(1)
                } else {
                    u64::MAX / 4
                };
                self.queue.push(self.now + gap, Event::Churn);
                // The publisher (slot 0) stays.
                if let Some(victim) = self.live_other_than(0) {
                    self.kill(victim);
                }
                let n = self.add_node();
                self.queue.push(self.now, Event::Join(n));
                if self.measuring() {
                    self.report.churned += 1;
                }
            }
        }
    }
}

/// Runs one topic simulation and reports what it measured.
pub fn run_topic(config: TopicConfig) -> TopicReport {
    let started = Instant::now();
    let warmup = config.warmup_s * 1000;
    let measure = config.measure_s * 1000;
    let mut topic = [0u8; 32];
    topic[..8].copy_from_slice(&mix(config.seed).to_le_bytes());
    let mut sim = TopicSim {
        rng: SmallRng::seed_from_u64(config.seed),
        topic: TopicId::from_bytes(topic),
        gossip: GossipConfig::default(),
        origin: tokio::time::Instant::from_std(started),
        now: 0,
        queue: Calendar::new(0),
        nodes: Vec::new(),
        live: Vec::new(),
        published: Vec::new(),
        measure_from: warmup,
        measure_to: warmup + measure,
        report: TopicReport::default(),
        config,
    };
    // The publisher first, then the subscribers over the first half of the warm-up.
    let total = sim.config.subscribers + 1;
    let spacing = (warmup / 2).max(1) / total as u64;
    for n in 0..total as u32 {
        sim.add_node();
        sim.queue.push(u64::from(n) * spacing, Event::Join(n));
    }
    // Publishing starts a little before the measured window, so a message is counted once
    // the swarm has settled, and runs to its end.
    sim.queue.push(warmup.saturating_sub(1000), Event::Publish);
    if sim.config.churn_per_hour > 0.0 {
        sim.queue.push(1, Event::Churn);
    }
    // Messages published in the window are followed past it until their deadline.
    let end = sim.measure_to + sim.config.deadline_ms;
    while let Some((at, event)) = sim.queue.pop() {
        if at >= end {
            break;
        }
        sim.now = at;
        sim.report.events += 1;
        if at >= sim.measure_to && matches!(event, Event::Publish | Event::Churn) {
            continue;
        }
        sim.step(event);
    }
    let TopicSim {
        config,
        nodes,
        published,
        measure_from,
        measure_to,
        mut report,
        ..
    } = sim;
    // A message counts for the subscribers that had joined 5 s before it and lived past its
    // deadline.
    let settle = 5_000;
    let counted: Vec<(u32, u64)> = published
        .iter()
        .enumerate()
        .filter(|(_, at)| **at >= measure_from && **at < measure_to)
        .map(|(i, at)| (i as u32, *at))
        .collect();
    report.messages = counted.len() as u64;
    let seconds = measure_to.saturating_sub(measure_from) as f64 / 1000.0;
    for node in nodes.iter().skip(1) {
        let mut got: Vec<Option<(u32, u8)>> = vec![None; published.len()];
        for &(number, arrived, hops) in &node.received {
            let slot = &mut got[number as usize];
            if slot.is_none() {
                *slot = Some((arrived, hops));
            }
        }
        for &(number, at) in &counted {
            let joined = node.born_ms + settle <= at;
            let lived = node.died_ms.is_none_or(|d| d > at + config.deadline_ms);
            if !(joined && lived) {
                continue;
            }
            report.expected += 1;
            if let Some((arrived, hops)) = got[number as usize] {
                let latency = u64::from(arrived).saturating_sub(at);
                if latency <= config.deadline_ms {
                    report.delivered += 1;
                    report.latency_ms.push(latency as f64);
                    report.hops.push(f64::from(hops));
                }
            }
        }
    }
    report.deaf = nodes
        .iter()
        .skip(1)
        .filter(|n| {
            n.state.is_some() && n.born_ms + settle <= measure_from && n.received.is_empty()
        })
        .count() as u64;
    for node in &nodes {
        if node.state.is_none() {
            continue;
        }
        report.neighbours.push(node.neighbours.len() as f64);
        report.connections.push(node.connections.len() as f64);
        if node.born_ms <= measure_from {
            report.bytes_per_s.push(node.bytes as f64 / seconds);
        }
    }
    report.subscribers = config.subscribers;
    report.churn_per_hour = config.churn_per_hour;
    report.wall_s = started.elapsed().as_secs_f64();
    report.peak_rss_mb = crate::report::peak_rss_mb();
    report
}
