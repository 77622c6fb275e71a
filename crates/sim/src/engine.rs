//! The discrete-event engine: one queue of timed events (messages arriving, nodes waking, the
//! workload's lookups, churn), processed in time order with a fixed tie-break, from one seed.
//! Every node is a `micro_dht::Dht`, driven exactly as the peer layer drives it over iroh.

use crate::calendar::Calendar;
use crate::model::{
    Connections, ENTRY_BYTES, Entry, HANDSHAKE_BYTES, Peer, QUIC_BYTES, latency_ms, mix,
};
use crate::report::{Report, Samples};
use micro_dht::{Dht, Output, Params, QueryId, Request, RequestId, Response};
use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};
use rustc_hash::FxHashMap as HashMap;

/// How the network starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Every node joins through the protocol, one after another, through a random earlier node.
    Joined,
    /// Every node starts with a table drawn from all the others (as a long-running network's
    /// would be), then the protocol runs: how large networks start without simulating years.
    Made,
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Config {
    /// Honest nodes at any time.
    pub nodes: usize,
    /// Sybil nodes, as a fraction of all nodes: they answer every lookup with other Sybils
    /// only, hide every entry and drop every store.
    pub sybil: f64,
    /// Fraction of the honest nodes replaced per hour (a node leaves without a word, a new one
    /// joins through a random live node).
    pub churn_per_hour: f64,
    /// How the network starts.
    pub start: Start,
    /// Simulated seconds before measuring (every entry is provided once in it).
    pub warmup_s: u64,
    /// Simulated seconds measured.
    pub measure_s: u64,
    /// Services each honest node provides.
    pub services_per_node: usize,
    /// Provider lookups per honest node per hour (a caller finding a service it has no route to).
    pub lookups_per_node_hour: f64,
    /// How long a provider entry lives.
    pub entry_ttl_ms: u64,
    /// Connections a node keeps open.
    pub connections: usize,
    /// The protocol's parameters.
    pub params: Params,
    /// The seed of everything random.
    pub seed: u64,
}

impl Config {
    /// The defaults for `nodes` honest nodes.
    pub fn new(nodes: usize) -> Self {
        Self {
            nodes,
            sybil: 0.0,
            churn_per_hour: 0.0,
            start: Start::Made,
            warmup_s: 120,
            measure_s: 300,
            services_per_node: 1,
            lookups_per_node_hour: 6.0,
            entry_ttl_ms: 30 * 60_000,
            connections: 16,
            params: Params::default(),
            seed: 1,
        }
    }
}

pub(crate) enum Event {
    Request {
        to: u32,
        from: u32,
        id: RequestId,
        request: Request<u64, Entry>,
    },
    Response {
        to: u32,
        id: RequestId,
        response: Response<Peer, Entry>,
    },
    Wake(u32),
    /// Node `n` provides its service `key` for the first time.
    Provide(u32, u64),
    /// Node `n` joins through a random live node.
    Join(u32),
    Lookup,
    Churn,
}

pub(crate) struct Slot {
    pub(crate) dht: Option<Dht<Peer, Entry>>,
    pub(crate) key: u64,
    pub(crate) sybil: bool,
    pub(crate) born_ms: u64,
    pub(crate) died_ms: Option<u64>,
    pub(crate) bytes: u64,
    pub(crate) messages: u64,
    pub(crate) connections: Connections,
    pub(crate) wake_at: u64,
    /// The services it provides.
    pub(crate) provides: Vec<u64>,
}

pub(crate) enum Asked {
    Lookup,
    Provide,
    Join,
}

pub(crate) struct Sim {
    pub(crate) config: Config,
    pub(crate) now: u64,
    pub(crate) queue: Calendar<Event>,
    pub(crate) slots: Vec<Slot>,
    pub(crate) index: HashMap<u64, u32>,
    pub(crate) honest_live: Vec<u32>,
    pub(crate) live_at: HashMap<u32, usize>,
    pub(crate) sybils: Vec<u64>,
    pub(crate) rng: SmallRng,
    pub(crate) asked: HashMap<(u32, QueryId), Asked>,
    /// Services provided (first provide finished), by key: the provider's slot.
    pub(crate) services: Vec<(u64, u32)>,
    /// Where each service is in `services`.
    pub(crate) service_at: HashMap<u64, usize>,
    pub(crate) measure_from: u64,
    pub(crate) measure_to: u64,
    pub(crate) report: Report,
    /// When the workload's next lookup and churn fall, with their fractions of a ms.
    pub(crate) lookup_clock: f64,
    pub(crate) churn_clock: f64,
}

impl Sim {
    fn push(&mut self, at: u64, event: Event) {
        self.queue.push(at, event);
    }

    fn measuring(&self) -> bool {
        self.now >= self.measure_from && self.now < self.measure_to
    }

    fn new_key(&mut self) -> u64 {
        loop {
            let key = self.rng.next_u64();
            if !self.index.contains_key(&key) {
                return key;
            }
        }
    }

    fn add_node(&mut self, sybil: bool) -> u32 {
        let key = self.new_key();
        let n = self.slots.len() as u32;
        let dht = (!sybil).then(|| {
            Dht::new(
                key,
                self.config.params.clone(),
                mix(self.config.seed ^ key),
                self.now,
            )
        });
        self.slots.push(Slot {
            dht,
            key,
            sybil,
            born_ms: self.now,
            died_ms: None,
            bytes: 0,
            messages: 0,
            connections: Connections::default(),
            wake_at: u64::MAX,
            provides: Vec::new(),
        });
        self.index.insert(key, n);
        if sybil {
            self.sybils.push(key);
        } else {
            self.live_at.insert(n, self.honest_live.len());
            self.honest_live.push(n);
        }
        n
    }

    fn kill(&mut self, n: u32) {
        let slot = &mut self.slots[n as usize];
        slot.dht = None;
        slot.died_ms = Some(self.now);
        if let Some(at) = self.live_at.remove(&n) {
            self.honest_live.swap_remove(at);
            if let Some(moved) = self.honest_live.get(at) {
                self.live_at.insert(*moved, at);
            }
        }
        let keys = std::mem::take(&mut self.slots[n as usize].provides);
        for key in keys {
            self.remove_service(key);
        }
    }

    fn random_live(&mut self) -> Option<u32> {
        if self.honest_live.is_empty() {
            return None;
        }
        let at = (self.rng.next_u64() % self.honest_live.len() as u64) as usize;
        Some(self.honest_live[at])
    }

    fn count(&mut self, n: u32, bytes: usize) {
        if self.measuring() {
            let slot = &mut self.slots[n as usize];
            slot.bytes += bytes as u64;
            slot.messages += 1;
        }
    }

    /// Drains a node's outputs into events, and schedules its next wake.
    fn drain(&mut self, n: u32) {
        while let Some(output) = self.slots[n as usize].dht.as_mut().and_then(Dht::poll) {
            match output {
                Output::Send { to, id, request } => {
                    let Some(&t) = self.index.get(&to.0) else {
                        continue;
                    };
                    let bytes = request.wire_len() + QUIC_BYTES;
                    let known = self.slots[n as usize]
                        .connections
                        .use_or_open(to.0, self.config.connections);
                    let handshake = if known { 0 } else { 2 * HANDSHAKE_BYTES };
                    self.count(n, bytes + handshake);
                    let capacity = self.config.connections;
                    let key = self.slots[n as usize].key;
                    self.slots[t as usize]
                        .connections
                        .use_or_open(key, capacity);
                    if handshake > 0 && self.measuring() {
                        self.slots[t as usize].bytes += handshake as u64;
                    }
                    let at = self.now
                        + latency_ms(key, to.0)
                        + if known { 0 } else { latency_ms(key, to.0) * 2 };
                    self.push(
                        at,
                        Event::Request {
                            to: t,
                            from: n,
                            id,
                            request,
                        },
                    );
                }
                Output::Done { query, outcome } => {
                    let Some(asked) = self.asked.remove(&(n, query)) else {
                        continue;
                    };
                    let measuring = self.measuring();
                    match asked {
                        Asked::Lookup => {
                            if measuring {
                                let found = !outcome.providers.is_empty();
                                let live = outcome.providers.iter().any(|e| {
                                    self.index
                                        .get(&e.provider)
                                        .is_some_and(|p| self.slots[*p as usize].dht.is_some())
                                });
                                let r = &mut self.report;
                                r.lookups += 1;
                                r.found += u64::from(found);
                                r.found_live += u64::from(live);
                                if found {
                                    r.hops.push(f64::from(outcome.hops));
                                    r.lookup_ms.push(outcome.elapsed_ms as f64);
                                }
                                r.lookup_requests.push(f64::from(outcome.requests));
                            }
                        }
                        Asked::Provide => {
                            if measuring {
                                self.report.provide_ms.push(outcome.elapsed_ms as f64);
                                self.report.stored.push(outcome.stored as f64);
                            }
                            let key = outcome.target;
                            if !self.service_at.contains_key(&key) {
                                self.service_at.insert(key, self.services.len());
                                self.services.push((key, n));
                                self.slots[n as usize].provides.push(key);
                            }
                        }
                        Asked::Join => {
                            if measuring {
                                self.report.join_ms.push(outcome.elapsed_ms as f64);
                            }
                            self.provide_services(n);
                        }
                    }
                }
                Output::Republish { key } => {
                    let entry = self.entry(n);
                    if let Some(dht) = self.slots[n as usize].dht.as_mut()
                        && let Ok(q) = dht.provide(key, entry, self.now)
                    {
                        self.asked.insert((n, q), Asked::Provide);
                    }
                }
            }
        }
        let Some(dht) = self.slots[n as usize].dht.as_ref() else {
            return;
        };
        let wake = dht.next_wake().max(self.now + 1);
        let slot = &mut self.slots[n as usize];
        if wake < slot.wake_at || slot.wake_at <= self.now {
            slot.wake_at = wake;
            self.push(wake, Event::Wake(n));
        }
    }

    fn entry(&self, n: u32) -> Entry {
        Entry {
            provider: self.slots[n as usize].key,
            issued_ms: self.now,
            expires_ms: self.now + self.config.entry_ttl_ms,
        }
    }

    fn remove_service(&mut self, key: u64) {
        let Some(at) = self.service_at.remove(&key) else {
            return;
        };
        self.services.swap_remove(at);
        if let Some((moved, _)) = self.services.get(at) {
            self.service_at.insert(*moved, at);
        }
    }

    /// Schedules the first provide of each of a new node's services.
    fn provide_services(&mut self, n: u32) {
        for _ in 0..self.config.services_per_node {
            let key = self.rng.next_u64();
            self.push(self.now + 1, Event::Provide(n, key));
        }
    }

    /// Sybils' answer: the Sybils nearest the target, nothing stored.
    fn sybil_answer(&self, target: u64) -> Vec<Peer> {
        let at = self.sybils.partition_point(|k| *k < target);
        let lo = at.saturating_sub(self.config.params.k);
        let hi = (at + self.config.params.k).min(self.sybils.len());
        let mut near: Vec<u64> = self.sybils[lo..hi].to_vec();
        near.sort_by_key(|k| k ^ target);
        near.truncate(self.config.params.k);
        near.into_iter().map(Peer).collect()
    }

    fn step(&mut self, event: Event) {
        match event {
            Event::Request {
                to,
                from,
                id,
                request,
            } => {
                let from_key = self.slots[from as usize].key;
                let bytes = request.wire_len() + QUIC_BYTES;
                let response = if self.slots[to as usize].sybil {
                    Some(match request {
                        Request::FindNode { target } => Response::Nodes(self.sybil_answer(target)),
                        Request::GetProviders { key } => Response::Providers {
                            providers: Vec::new(),
                            closer: self.sybil_answer(key),
                        },
                        Request::AddProvider { .. } => Response::Stored,
                    })
                } else {
                    let now = self.now;
                    self.slots[to as usize]
                        .dht
                        .as_mut()
                        .map(|dht| dht.handle(Peer(from_key), request, now))
                };
                let Some(response) = response else {
                    return; // dead: no answer, the asker times out
                };
                self.count(to, bytes);
                let out = response.wire_len() + QUIC_BYTES;
                self.count(to, out);
                self.count(from, out);
                let at = self.now + latency_ms(self.slots[to as usize].key, from_key);
                self.push(
                    at,
                    Event::Response {
                        to: from,
                        id,
                        response,
                    },
                );
                if !self.slots[to as usize].sybil {
                    self.drain(to);
                }
            }
            Event::Response { to, id, response } => {
                let now = self.now;
                if let Some(dht) = self.slots[to as usize].dht.as_mut() {
                    dht.answer(id, response, now);
                    self.drain(to);
                }
            }
            Event::Wake(n) => {
                let slot = &mut self.slots[n as usize];
                if slot.wake_at != self.now {
                    return;
                }
                slot.wake_at = u64::MAX;
                let now = self.now;
                if let Some(dht) = slot.dht.as_mut() {
                    dht.tick(now);
                    self.drain(n);
                }
            }
            Event::Provide(n, key) => {
                let entry = self.entry(n);
                let now = self.now;
                if let Some(dht) = self.slots[n as usize].dht.as_mut()
                    && let Ok(q) = dht.provide(key, entry, now)
                {
                    self.asked.insert((n, q), Asked::Provide);
                    self.drain(n);
                }
            }
            Event::Join(n) => {
                let first_nodes = (n as usize) < self.config.nodes;
                let seed = if first_nodes && self.config.start == Start::Joined {
                    // Joining in turn: through one of the nodes that joined before.
                    Some((self.rng.next_u64() % u64::from(n.max(1))) as u32)
                } else {
                    self.random_live()
                };
                let Some(seed) = seed.filter(|s| *s != n) else {
                    return;
                };
                let seed = Peer(self.slots[seed as usize].key);
                let now = self.now;
                if let Some(dht) = self.slots[n as usize].dht.as_mut()
                    && let Ok(q) = dht.join(vec![seed], now)
                {
                    self.asked.insert((n, q), Asked::Join);
                    self.drain(n);
                }
            }
            Event::Lookup => {
                let live = self.honest_live.len().max(1) as f64;
                let rate = self.config.lookups_per_node_hour * live / 3_600_000.0;
                self.lookup_clock += exponential(&mut self.rng, rate);
                self.push(self.lookup_clock as u64, Event::Lookup);
                if self.services.is_empty() {
                    return;
                }
                let Some(n) = self.random_live() else {
                    return;
                };
                let (key, _) =
                    self.services[(self.rng.next_u64() % self.services.len() as u64) as usize];
                let now = self.now;
                if let Some(dht) = self.slots[n as usize].dht.as_mut() {
                    match dht.find_providers(key, now) {
                        Ok(q) => {
                            self.asked.insert((n, q), Asked::Lookup);
                            self.drain(n);
                        }
                        Err(_) => self.report.busy += 1,
                    }
                }
            }
            Event::Churn => {
                let rate = self.config.churn_per_hour * self.config.nodes as f64 / 3_600_000.0;
                self.churn_clock += exponential(&mut self.rng, rate);
                self.push(self.churn_clock as u64, Event::Churn);
                if let Some(victim) = self.random_live() {
                    self.kill(victim);
                }
                let n = self.add_node(false);
                self.push(self.now, Event::Join(n));
                if self.measuring() {
                    self.report.churned += 1;
                }
            }
        }
    }
}

/// A gap of a Poisson process of `per_ms`, in fractional ms: the process's clock keeps the
/// fractions, so a rate of several events per ms (lookups among a million nodes) is kept, not
/// rounded to one a millisecond.
fn exponential(rng: &mut SmallRng, per_ms: f64) -> f64 {
    if per_ms <= 0.0 {
        return (u64::MAX / 4) as f64;
    }
    let u = ((rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    -u.ln() / per_ms
}

/// Runs one simulation and reports what it measured.
pub fn run(config: Config) -> Report {
    let started = std::time::Instant::now();
    let warmup = config.warmup_s * 1000;
    let measure = config.measure_s * 1000;
    // The clock starts an hour in, so that a made table's buckets can have been looked into
    // at any time of the last refresh period (and come due for refresh one by one).
    let base = 3_600_000;
    let mut sim = Sim {
        rng: SmallRng::seed_from_u64(config.seed),
        now: base,
        queue: Calendar::new(base),
        slots: Vec::new(),
        index: HashMap::default(),
        honest_live: Vec::new(),
        live_at: HashMap::default(),
        sybils: Vec::new(),
        asked: HashMap::default(),
        services: Vec::new(),
        service_at: HashMap::default(),
        measure_from: base + warmup,
        measure_to: base + warmup + measure,
        report: Report::default(),
        lookup_clock: (base + 1) as f64,
        churn_clock: (base + 1) as f64,
        config,
    };
    let honest = sim.config.nodes;
    let sybils = if sim.config.sybil > 0.0 {
        (honest as f64 * sim.config.sybil / (1.0 - sim.config.sybil)).round() as usize
    } else {
        0
    };
    for _ in 0..honest {
        sim.add_node(false);
    }
    for _ in 0..sybils {
        sim.add_node(true);
    }
    sim.sybils.sort_unstable();
    let republish = sim.config.params.republish_ms;
    match sim.config.start {
        Start::Made => {
            sim.make_tables();
            sim.make_entries(honest as u32, republish);
            for n in 0..honest as u32 {
                sim.drain(n);
            }
        }
        Start::Joined => {
            // Node 0 knows the Sybils (they pose as the first nodes met), the rest join in turn.
            let spacing = (warmup / 2).max(1) / honest.max(1) as u64;
            let sybil_peers: Vec<Peer> = sim.sybils.iter().map(|k| Peer(*k)).collect();
            if let Some(dht) = sim.slots[0].dht.as_mut() {
                dht.table_mut().fill(sybil_peers.into_iter().take(64), base);
            }
            for n in 1..honest as u32 {
                sim.push(base + u64::from(n) * spacing, Event::Join(n));
            }
            sim.provide_services(0);
            sim.drain(0);
        }
    }
    sim.push(base + 1, Event::Lookup);
    if sim.config.churn_per_hour > 0.0 {
        sim.push(base + 1, Event::Churn);
    }
    while let Some((at, event)) = sim.queue.pop() {
        if at >= sim.measure_to {
            break;
        }
        sim.now = at;
        sim.report.events += 1;
        sim.step(event);
    }
    // Traffic per node that lived through the whole measured window.
    let seconds = measure as f64 / 1000.0;
    let mut bytes = Samples::default();
    let mut messages = Samples::default();
    let mut state = Samples::default();
    let mut table = Samples::default();
    let mut stored = Samples::default();
    for slot in &sim.slots {
        let Some(dht) = slot.dht.as_ref() else {
            continue;
        };
        state.push((dht.state_bytes() + slot.connections.state_bytes()) as f64);
        table.push(dht.table().len() as f64);
        stored.push(dht.store().len() as f64);
        if slot.born_ms <= sim.measure_from && slot.died_ms.is_none() {
            bytes.push(slot.bytes as f64 / seconds);
            messages.push(slot.messages as f64 / seconds);
        }
    }
    let mut report = sim.report;
    report.nodes = honest;
    report.sybils = sybils;
    report.churn_per_hour = sim.config.churn_per_hour;
    report.bytes_per_s = bytes;
    report.messages_per_s = messages;
    report.state_bytes = state;
    report.table_len = table;
    report.entries_held = stored;
    report.entry_bytes = ENTRY_BYTES;
    report.wall_s = started.elapsed().as_secs_f64();
    report.peak_rss_mb = crate::report::peak_rss_mb();
    report
}
