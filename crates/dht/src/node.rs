//! One node of the DHT as a state machine: requests and answers come in, requests to send,
//! finished lookups and entries due for republishing go out, and the node says when it next
//! needs the time. No sockets, no clock, no tasks: the peer layer drives it over iroh, the
//! simulator drives a million of them on one machine, through this same code.

use crate::Params;
use crate::key::Key;
use crate::message::{Request, Response};
use crate::peer::{Contact, Value};
use crate::query::{Goal, Query, Shape};
use crate::store::{Refusal, Store};
use crate::table::{Heard, Table};
use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};
use rustc_hash::FxHashMap;
use std::collections::{HashMap, VecDeque};

/// Entries handed to one newcomer at most (a key's entries, then the next key's).
const MAX_HANDOFF: usize = 64;

/// A lookup this node started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueryId(pub u64);

/// A request this node sent and awaits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// What the node asks of its driver.
#[derive(Debug)]
pub enum Output<C: Contact, V: Value<Key = C::Key>> {
    /// Send `request` to `to`; hand the answer to [`Dht::answer`] or the failure to
    /// [`Dht::fail`] with `id`.
    Send {
        /// Whom to ask.
        to: C,
        /// Which request this is.
        id: RequestId,
        /// What to ask.
        request: Request<C::Key, V>,
    },
    /// A lookup started through the API finished.
    Done {
        /// Which one.
        query: QueryId,
        /// What it found.
        outcome: Outcome<C, V>,
    },
    /// An entry this node provides is due again: hand [`Dht::provide`] a fresh one.
    Republish {
        /// Its key.
        key: C::Key,
    },
}

/// What a finished lookup found.
#[derive(Debug)]
pub struct Outcome<C: Contact, V: Value<Key = C::Key>> {
    /// The key looked up.
    pub target: C::Key,
    /// The closest nodes that answered, closest first (up to k).
    pub nodes: Vec<C>,
    /// Providers found (a providers lookup).
    pub providers: Vec<V>,
    /// Nodes that took the entry (a provide).
    pub stored: usize,
    /// Requests in a row it took: to the first providers, or to the closest node.
    pub hops: u32,
    /// Requests sent.
    pub requests: u32,
    /// Requests that failed.
    pub failures: u32,
    /// How long it took.
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, Copy)]
enum Purpose {
    /// A request of a lookup.
    Lookup(u64),
    /// An entry handed to one of the closest nodes.
    Store(u64),
    /// Whether a bucket's least recently seen contact still answers.
    Check,
    /// An entry kept here, handed to a newcomer now among the closest to its key.
    Handoff,
}

#[derive(Debug)]
struct Pending<C> {
    to: C,
    deadline_ms: u64,
    purpose: Purpose,
}

/// The second phase of a provide: the entry goes to the closest nodes, spilling past those
/// that are full.
#[derive(Debug)]
struct Storing<C> {
    targets: Vec<C>,
    next: usize,
    in_flight: usize,
    stored: usize,
}

#[derive(Debug)]
struct Running<C: Contact, V: Value<Key = C::Key>> {
    query: Query<C, V>,
    /// Started by the node itself (a refresh): nobody awaits its outcome.
    internal: bool,
    storing: Option<Storing<C>>,
}

/// Why a lookup could not start.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Busy {
    /// As many lookups run as the node allows.
    #[error("{0} lookups are running already")]
    Lookups(usize),
}

/// One DHT node.
#[derive(Debug)]
pub struct Dht<C: Contact, V: Value<Key = C::Key>> {
    me: C::Key,
    params: Params,
    table: Table<C>,
    store: Store<V>,
    rng: SmallRng,
    next_request: u64,
    next_query: u64,
    pending: FxHashMap<RequestId, Pending<C>>,
    running: FxHashMap<u64, Running<C, V>>,
    own: HashMap<C::Key, u64>,
    outbox: VecDeque<Output<C, V>>,
    next_refresh_ms: u64,
    next_sweep_ms: u64,
}

impl<C: Contact, V: Value<Key = C::Key>> Dht<C, V> {
    /// A node of key `me`, its randomness from `seed`.
    pub fn new(me: C::Key, params: Params, seed: u64, now_ms: u64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        // Nodes started together do not refresh together.
        let jitter = rng.next_u64() % params.refresh_spacing_ms.max(1);
        Self {
            me,
            table: Table::new(me, params.k, params.per_group),
            store: Store::new(params.providers_per_key, params.max_keys),
            rng,
            next_request: 0,
            next_query: 0,
            pending: FxHashMap::default(),
            running: FxHashMap::default(),
            own: HashMap::new(),
            outbox: VecDeque::new(),
            next_refresh_ms: now_ms + jitter,
            next_sweep_ms: now_ms + params.sweep_ms,
            params,
        }
    }

    /// This node's key.
    pub fn key(&self) -> C::Key {
        self.me
    }

    /// The routing table.
    pub fn table(&self) -> &Table<C> {
        &self.table
    }

    /// The routing table, to fill it from outside (a simulator's made start).
    pub fn table_mut(&mut self) -> &mut Table<C> {
        &mut self.table
    }

    /// The provider entries kept for others.
    pub fn store(&self) -> &Store<V> {
        &self.store
    }

    /// The provider entries kept for others, to fill them from outside (a simulator's made
    /// start).
    pub fn store_mut(&mut self) -> &mut Store<V> {
        &mut self.store
    }

    /// Takes `key` as an entry this node provides, due for republishing at `due_ms` (a
    /// simulator's made start, where the entry was stored before the simulation began).
    pub fn provided(&mut self, key: C::Key, due_ms: u64) {
        self.own.insert(key, due_ms);
    }

    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Lookups running.
    pub fn lookups(&self) -> usize {
        self.running.len()
    }

    /// Requests awaiting an answer.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// The approximate bytes of state this node holds.
    pub fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.table.state_bytes()
            + self.store.state_bytes()
            + self.pending.capacity() * std::mem::size_of::<(RequestId, Pending<C>)>()
            + self.own.capacity() * std::mem::size_of::<(C::Key, u64)>()
    }

    /// The next output, if any.
    pub fn poll(&mut self) -> Option<Output<C, V>> {
        self.outbox.pop_front()
    }

    /// When the node next needs [`Dht::tick`], in the protocol's milliseconds.
    pub fn next_wake(&self) -> u64 {
        let mut wake = self.next_refresh_ms.min(self.next_sweep_ms);
        for p in self.pending.values() {
            wake = wake.min(p.deadline_ms);
        }
        for due in self.own.values() {
            wake = wake.min(*due);
        }
        wake
    }

    /// Joins the network through `seeds` (contacts known from a ticket or a LAN): looks up this
    /// node's own key, which fills the nearest buckets and tells the nearest nodes of it.
    pub fn join(&mut self, seeds: Vec<C>, now_ms: u64) -> Result<QueryId, Busy> {
        let shape = self.shape(self.params.k);
        self.start(self.me, Goal::Nodes, seeds, shape, false, now_ms)
    }

    /// Finds the k closest nodes to `target`.
    pub fn find_node(&mut self, target: C::Key, now_ms: u64) -> Result<QueryId, Busy> {
        let seeds = self.seeds(&target);
        let shape = self.shape(self.params.k);
        self.start(target, Goal::Nodes, seeds, shape, false, now_ms)
    }

    /// Finds providers under `key`.
    pub fn find_providers(&mut self, key: C::Key, now_ms: u64) -> Result<QueryId, Busy> {
        let seeds = self.seeds(&key);
        // A provide stores on the closest `replication` nodes, so each path needs to reach
        // only that many: a lookup of a name nobody provides (a caller before the deploy
        // lands) asked ~50 nodes over three paths of k, each a new connection, and a few at
        // once saturated a machine of 250 nodes.
        let shape = self.shape(self.params.replication);
        self.start(key, Goal::Providers, seeds, shape, false, now_ms)
    }

    /// Finds every provider the closest nodes hold under `key`: the lookup goes on to the k
    /// closest instead of ending at the first answer with providers.
    pub fn find_all_providers(&mut self, key: C::Key, now_ms: u64) -> Result<QueryId, Busy> {
        let seeds = self.seeds(&key);
        let shape = self.shape(self.params.k);
        self.start(key, Goal::AllProviders, seeds, shape, false, now_ms)
    }

    /// Stores `value` under `key` on the closest nodes, and keeps republishing it (through
    /// [`Output::Republish`]) until [`Dht::withdraw`].
    pub fn provide(&mut self, key: C::Key, value: V, now_ms: u64) -> Result<QueryId, Busy> {
        self.own.insert(key, now_ms + self.params.republish_ms);
        let seeds = self.seeds(&key);
        // Each path needs to reach only the nodes that will keep the entry.
        let shape = self.shape(self.params.replication);
        self.start(key, Goal::Provide(value), seeds, shape, false, now_ms)
    }

    /// Stops republishing under `key` (the entries held elsewhere expire on their own).
    pub fn withdraw(&mut self, key: &C::Key) {
        self.own.remove(key);
    }

    fn shape(&self, width: usize) -> Shape {
        Shape {
            paths: self.params.paths,
            alpha: self.params.alpha,
            width,
        }
    }

    fn seeds(&self, target: &C::Key) -> Vec<C> {
        self.table
            .closest(target, self.params.k.max(self.params.paths * 2))
    }

    fn start(
        &mut self,
        target: C::Key,
        goal: Goal<V>,
        seeds: Vec<C>,
        shape: Shape,
        internal: bool,
        now_ms: u64,
    ) -> Result<QueryId, Busy> {
        if self.running.len() >= self.params.max_lookups {
            return Err(Busy::Lookups(self.running.len()));
        }
        self.table.touch(&target, now_ms);
        self.next_query += 1;
        let id = self.next_query;
        let query = Query::new(target, goal, seeds, shape, self.me, now_ms);
        self.running.insert(
            id,
            Running {
                query,
                internal,
                storing: None,
            },
        );
        self.advance(id, now_ms);
        Ok(QueryId(id))
    }

    fn send(&mut self, to: C, request: Request<C::Key, V>, purpose: Purpose, now_ms: u64) {
        self.next_request += 1;
        let id = RequestId(self.next_request);
        self.pending.insert(
            id,
            Pending {
                to: to.clone(),
                deadline_ms: now_ms + self.params.request_timeout_ms,
                purpose,
            },
        );
        self.outbox.push_back(Output::Send { to, id, request });
    }

    /// Sends what a lookup needs next, moves a finished lookup to storing, and finishes it.
    fn advance(&mut self, id: u64, now_ms: u64) {
        let (k, max_requests) = (self.params.k, self.params.max_requests);
        let Some(run) = self.running.get_mut(&id) else {
            return;
        };
        if run.storing.is_none() {
            let next = run.query.next(max_requests);
            let target = run.query.target;
            let ask = |_: &C| match run.query.goal {
                Goal::Providers | Goal::AllProviders => Request::GetProviders { key: target },
                _ => Request::FindNode { target },
            };
            let requests: Vec<(C, Request<C::Key, V>)> = next
                .into_iter()
                .map(|(c, _)| (c.clone(), ask(&c)))
                .collect();
            let finished = run.query.finished();
            for (to, request) in requests {
                self.send(to, request, Purpose::Lookup(id), now_ms);
            }
            if !finished {
                return;
            }
            let Some(run) = self.running.get_mut(&id) else {
                return;
            };
            if let Goal::Provide(value) = &run.query.goal {
                let value = value.clone();
                let (targets, _) = run.query.closest_answered(k);
                let replication = self.params.replication.min(k);
                // This node keeps it too when it is among the closest.
                let mine = self.me.distance(&run.query.target);
                let nearer = targets
                    .iter()
                    .filter(|c| c.key().distance(&run.query.target) < mine)
                    .count();
                let mut stored = 0;
                if nearer < replication
                    && self
                        .store
                        .add(run.query.target, value.clone(), now_ms)
                        .is_ok()
                {
                    stored = 1;
                }
                let first = replication.saturating_sub(stored).min(targets.len());
                let key = run.query.target;
                let sends: Vec<C> = targets[..first].to_vec();
                run.storing = Some(Storing {
                    next: first,
                    in_flight: sends.len(),
                    stored,
                    targets,
                });
                for to in sends {
                    let request = Request::AddProvider {
                        key,
                        value: value.clone(),
                    };
                    self.send(to, request, Purpose::Store(id), now_ms);
                }
            }
        }
        let done = self.running.get(&id).is_some_and(|run| match &run.storing {
            None => run.query.finished(),
            Some(s) => s.in_flight == 0,
        });
        if done {
            self.finish(id, now_ms);
        }
    }

    fn finish(&mut self, id: u64, now_ms: u64) {
        let Some(run) = self.running.remove(&id) else {
            return;
        };
        if run.internal {
            return;
        }
        let (nodes, depth) = run.query.closest_answered(self.params.k);
        let hops = match run.query.goal {
            Goal::Providers | Goal::AllProviders => {
                run.query.value_depth.map_or(u32::from(depth), u32::from)
            }
            _ => u32::from(depth),
        };
        let query = run.query;
        self.outbox.push_back(Output::Done {
            query: QueryId(id),
            outcome: Outcome {
                target: query.target,
                nodes,
                providers: query.providers,
                stored: run.storing.map_or(0, |s| s.stored),
                hops,
                requests: query.requests,
                failures: query.failures,
                elapsed_ms: now_ms.saturating_sub(query.started_ms),
            },
        });
    }

    /// A contact asked or answered this node itself: offer it to the table, and check the
    /// bucket's oldest contact when the bucket is full.
    fn heard(&mut self, contact: C, now_ms: u64) {
        match self.table.heard(contact.clone(), now_ms) {
            Heard::Check(oldest) => {
                let request = Request::FindNode { target: self.me };
                self.send(oldest, request, Purpose::Check, now_ms);
            }
            Heard::Added => self.hand_off(&contact, now_ms),
            Heard::In | Heard::Dropped => {}
        }
    }

    /// A newcomer closer to a key than the nodes that keep its entries would make lookups end
    /// where nothing is kept until the providers store again (10 min): entries kept here go
    /// to it when it is among the `replication` closest to their key that this node knows, and
    /// this node the closest of the others (so one holder hands over, not all of them). At
    /// most [`MAX_HANDOFF`] entries per newcomer.
    fn hand_off(&mut self, newcomer: &C, now_ms: u64) {
        let theirs = newcomer.key();
        let replication = self.params.replication;
        let handed: Vec<(C::Key, V)> = self
            .store
            .keys_held()
            .copied()
            .filter(|key| {
                let (mine, new) = (self.me.distance(key), theirs.distance(key));
                // The table holds the newcomer already: only it may be closer than this node.
                let closest_holder = self.table.closer_than_me(key) == usize::from(new < mine);
                let ahead_of_newcomer = self.table.closer_than(key, &new) + usize::from(mine < new);
                closest_holder && ahead_of_newcomer < replication
            })
            .flat_map(|key| {
                let values = self.store.get(&key, now_ms, MAX_HANDOFF);
                values.into_iter().map(move |value| (key, value))
            })
            .take(MAX_HANDOFF)
            .collect();
        for (key, value) in handed {
            let request = Request::AddProvider { key, value };
            self.send(newcomer.clone(), request, Purpose::Handoff, now_ms);
        }
    }

    /// Answers a request from `from` (whose key the transport authenticated).
    pub fn handle(&mut self, from: C, request: Request<C::Key, V>, now_ms: u64) -> Response<C, V> {
        let from_key = from.key();
        if from.valid() {
            self.heard(from, now_ms);
        }
        let k = self.params.k;
        let without_asker = |mut nodes: Vec<C>| {
            nodes.retain(|c| c.key() != from_key);
            nodes
        };
        match request {
            Request::FindNode { target } => {
                Response::Nodes(without_asker(self.table.closest(&target, k + 1)))
            }
            Request::GetProviders { key } => Response::Providers {
                providers: self
                    .store
                    .get(&key, now_ms, self.params.providers_per_answer),
                closer: without_asker(self.table.closest(&key, k + 1)),
            },
            Request::AddProvider { key, value } => {
                if !value.valid_for(&key, now_ms) {
                    Response::Refused(Refusal::Invalid)
                } else if self.table.closer_than_me(&key) >= k {
                    Response::Refused(Refusal::Far)
                } else {
                    match self.store.add(key, value, now_ms) {
                        Ok(()) => Response::Stored,
                        Err(why) => Response::Refused(why),
                    }
                }
            }
        }
    }

    fn take_pending(&mut self, id: RequestId) -> Option<Pending<C>> {
        let pending = self.pending.remove(&id)?;
        // A burst of requests leaves a large map behind; a million idle nodes should not keep it.
        if self.pending.len() * 4 < self.pending.capacity() && self.pending.capacity() > 16 {
            self.pending.shrink_to(self.pending.len() * 2);
        }
        Some(pending)
    }

    /// The answer to request `id`.
    pub fn answer(&mut self, id: RequestId, response: Response<C, V>, now_ms: u64) {
        let Some(pending) = self.take_pending(id) else {
            return;
        };
        let key = pending.to.key();
        self.heard(pending.to, now_ms);
        self.table.answered(&key, now_ms);
        match pending.purpose {
            Purpose::Check | Purpose::Handoff => {}
            Purpose::Lookup(query) => {
                let Some(run) = self.running.get_mut(&query) else {
                    return;
                };
                let k = self.params.k;
                match response {
                    Response::Nodes(mut closer) => {
                        closer.truncate(k + 1);
                        run.query.answered(&key, closer, Vec::new(), now_ms);
                    }
                    Response::Providers {
                        mut providers,
                        mut closer,
                    } => {
                        closer.truncate(k + 1);
                        providers.truncate(self.params.providers_per_key);
                        run.query.answered(&key, closer, providers, now_ms);
                    }
                    Response::Stored | Response::Refused(_) => run.query.failed(&key),
                }
                self.advance(query, now_ms);
            }
            Purpose::Store(query) => {
                let stored = matches!(response, Response::Stored);
                self.stored(query, stored, now_ms);
            }
        }
    }

    fn stored(&mut self, query: u64, stored: bool, now_ms: u64) {
        let Some(run) = self.running.get_mut(&query) else {
            return;
        };
        let Some(storing) = run.storing.as_mut() else {
            return;
        };
        storing.in_flight = storing.in_flight.saturating_sub(1);
        let mut spill = None;
        if stored {
            storing.stored += 1;
        } else if storing.next < storing.targets.len() {
            // Full, far, gone: the next closest takes it instead.
            spill = Some(storing.targets[storing.next].clone());
            storing.next += 1;
            storing.in_flight += 1;
        }
        if let (Some(to), Goal::Provide(value)) = (spill, &run.query.goal) {
            let request = Request::AddProvider {
                key: run.query.target,
                value: value.clone(),
            };
            self.send(to, request, Purpose::Store(query), now_ms);
        }
        self.advance(query, now_ms);
    }

    /// Request `id` failed: no answer in time, the node could not be reached, or what it sent
    /// did not decode.
    pub fn fail(&mut self, id: RequestId, now_ms: u64) {
        let Some(pending) = self.take_pending(id) else {
            return;
        };
        let key = pending.to.key();
        self.table.failed(&key, now_ms);
        match pending.purpose {
            Purpose::Check | Purpose::Handoff => {}
            Purpose::Lookup(query) => {
                if let Some(run) = self.running.get_mut(&query) {
                    run.query.failed(&key);
                    self.advance(query, now_ms);
                }
            }
            Purpose::Store(query) => self.stored(query, false, now_ms),
        }
    }

    /// A node left for good (it said so): forget it.
    pub fn forget(&mut self, key: &C::Key) {
        self.table.remove(key);
    }

    /// Runs what is due at `now_ms`: requests past their deadline fail, a bucket untouched for
    /// a while is refreshed, entries due are handed back for republishing, expired entries go.
    pub fn tick(&mut self, now_ms: u64) {
        let late: Vec<RequestId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline_ms <= now_ms)
            .map(|(id, _)| *id)
            .collect();
        // In a fixed order, so a seeded simulation runs the same every time.
        let mut late = late;
        late.sort_unstable();
        for id in late {
            self.fail(id, now_ms);
        }
        if now_ms >= self.next_refresh_ms {
            self.next_refresh_ms = now_ms + self.params.refresh_spacing_ms;
            if let Some(index) = self.table.stale(now_ms, self.params.refresh_ms) {
                let random = self.random_key();
                let target = self.me.in_bucket(index, &random);
                let seeds = self.seeds(&target);
                // A refresh only needs live nodes of that range: one path, not disjoint ones.
                let shape = Shape {
                    paths: 1,
                    alpha: self.params.alpha,
                    width: self.params.k,
                };
                let _ = self.start(target, Goal::Nodes, seeds, shape, true, now_ms);
            }
        }
        let due: Vec<C::Key> = self
            .own
            .iter()
            .filter(|(_, at)| **at <= now_ms)
            .map(|(k, _)| *k)
            .collect();
        let mut due = due;
        due.sort_unstable();
        for key in due {
            self.own.insert(key, now_ms + self.params.republish_ms);
            self.outbox.push_back(Output::Republish { key });
        }
        if now_ms >= self.next_sweep_ms {
            self.next_sweep_ms = now_ms + self.params.sweep_ms;
            self.store.expire(now_ms);
        }
    }

    fn random_key(&mut self) -> C::Key {
        let rng = &mut self.rng;
        C::Key::from_words(&mut || rng.next_u64())
    }
}
