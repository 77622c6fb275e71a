//! One iterative lookup: ask the closest known nodes for closer ones until the k closest have
//! all answered. The candidates are split over disjoint paths — a node asked on one path is
//! never asked on another, and each path follows only what its own answers told it — so a
//! lookup fails only if every path runs into nodes that lie (S/Kademlia); the parallelism is
//! spread over the paths, so disjointness costs no more requests than one path would.

use crate::key::Key;
use crate::peer::{Contact, Value};
use std::collections::HashSet;

/// Most candidates a lookup keeps (the farthest unasked ones are dropped past it).
const MAX_CANDIDATES: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Asked,
    Answered,
    Failed,
}

#[derive(Debug)]
struct Candidate<C: Contact> {
    contact: C,
    distance: <C::Key as Key>::Distance,
    state: State,
    path: u8,
    /// Requests in a row from this node to reach it (1: it was known here).
    depth: u8,
}

#[derive(Debug, Default, Clone, Copy)]
struct Path {
    in_flight: u8,
    /// Answers in a row that brought no node closer than the closest known: past `per_path`
    /// of them the path is stalled and asks all of its k closest at once, instead of one by
    /// one (the last round of a lookup, which would otherwise take k round trips).
    no_progress: u8,
    /// Answers on this path carried providers: it asks no further.
    found: bool,
    done: bool,
}

/// How a lookup spreads: over how many disjoint paths, how many requests in flight in all,
/// and how many closest nodes of each path must answer.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Disjoint paths.
    pub paths: usize,
    /// Requests in flight over all paths while they make progress.
    pub alpha: usize,
    /// Closest nodes of a path that must answer before it is done.
    pub width: usize,
}

/// What a lookup is for.
#[derive(Debug)]
pub enum Goal<V> {
    /// The k closest nodes to the target.
    Nodes,
    /// Providers under the target: the first answer that carries some ends the lookup (a
    /// caller needs one route).
    Providers,
    /// Every provider the k closest nodes hold under the target (a topic's subscribers: each
    /// one missed is a subscriber that misses messages).
    AllProviders,
    /// Store this entry on the closest nodes to the target.
    Provide(V),
}

/// The state of one lookup.
#[derive(Debug)]
pub struct Query<C: Contact, V: Value<Key = C::Key>> {
    /// What it looks for.
    pub target: C::Key,
    /// What it is for.
    pub goal: Goal<V>,
    candidates: Vec<Candidate<C>>,
    seen: HashSet<C::Key>,
    paths: Vec<Path>,
    /// How many closest nodes of a path must answer before it is done.
    width: usize,
    /// Requests in flight on a path, while it makes progress.
    per_path: usize,
    /// Providers found so far.
    pub providers: Vec<V>,
    /// Requests sent.
    pub requests: u32,
    /// Requests that failed.
    pub failures: u32,
    /// Depth of the first answer that carried providers.
    pub value_depth: Option<u8>,
    /// When it started.
    pub started_ms: u64,
}

impl<C: Contact, V: Value<Key = C::Key>> Query<C, V> {
    /// A lookup of `target` for `goal`, starting from `seeds` spread over `paths` paths, each
    /// done when its `width` closest answered, `alpha` requests in flight over all paths.
    pub fn new(
        target: C::Key,
        goal: Goal<V>,
        seeds: Vec<C>,
        shape: Shape,
        me: C::Key,
        now_ms: u64,
    ) -> Self {
        let paths = shape.paths.clamp(1, 16);
        let mut query = Self {
            target,
            goal,
            candidates: Vec::new(),
            seen: HashSet::new(),
            paths: vec![Path::default(); paths],
            width: shape.width.max(1),
            per_path: shape.alpha.div_ceil(paths).max(1),
            providers: Vec::new(),
            requests: 0,
            failures: 0,
            value_depth: None,
            started_ms: now_ms,
        };
        query.seen.insert(me);
        let mut seeds = seeds;
        seeds.sort_by_key(|c| target.distance(&c.key()));
        for (i, seed) in seeds.into_iter().enumerate() {
            let _ = query.add(seed, (i % paths) as u8, 1);
        }
        query
    }

    /// Adds a candidate; its distance when it is new.
    fn add(&mut self, contact: C, path: u8, depth: u8) -> Option<<C::Key as Key>::Distance> {
        let key = contact.key();
        if !contact.valid() || !self.seen.insert(key) {
            return None;
        }
        let distance = self.target.distance(&key);
        let at = self.candidates.partition_point(|c| c.distance < distance);
        self.candidates.insert(
            at,
            Candidate {
                contact,
                distance,
                state: State::Waiting,
                path,
                depth,
            },
        );
        if self.candidates.len() > MAX_CANDIDATES
            && let Some(far) = self
                .candidates
                .iter()
                .rposition(|c| c.state == State::Waiting)
        {
            self.candidates.remove(far);
        }
        Some(distance)
    }

    /// The next contacts to ask (with their path), within the closest of each path that have
    /// not failed; marks paths that are done.
    pub fn next(&mut self, max_requests: u32) -> Vec<(C, u8)> {
        let (k, per_path) = (self.width, self.per_path);
        let mut out = Vec::new();
        for p in 0..self.paths.len() {
            if self.paths[p].done {
                continue;
            }
            if self.paths[p].found {
                self.paths[p].done = self.paths[p].in_flight == 0;
                continue;
            }
            let stalled = usize::from(self.paths[p].no_progress) >= per_path;
            let limit = if stalled { k } else { per_path };
            loop {
                if usize::from(self.paths[p].in_flight) >= limit {
                    break;
                }
                if self.requests >= max_requests {
                    if self.paths[p].in_flight == 0 {
                        self.paths[p].done = true;
                    }
                    break;
                }
                let mut next = None;
                let mut asked = false;
                for (i, c) in self
                    .candidates
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| usize::from(c.path) == p && c.state != State::Failed)
                    .take(k)
                {
                    match c.state {
                        State::Waiting => {
                            next = Some(i);
                            break;
                        }
                        State::Asked => asked = true,
                        _ => {}
                    }
                }
                match next {
                    Some(i) => {
                        self.candidates[i].state = State::Asked;
                        self.paths[p].in_flight += 1;
                        self.requests += 1;
                        out.push((self.candidates[i].contact.clone(), p as u8));
                    }
                    None => {
                        if !asked && self.paths[p].in_flight == 0 {
                            self.paths[p].done = true;
                        }
                        break;
                    }
                }
            }
        }
        out
    }

    fn find(&self, key: &C::Key) -> Option<usize> {
        let distance = self.target.distance(key);
        let start = self.candidates.partition_point(|c| c.distance < distance);
        (start < self.candidates.len() && self.candidates[start].contact.key() == *key)
            .then_some(start)
    }

    /// `from` answered with `closer` nodes and, for a providers lookup, `providers`.
    pub fn answered(&mut self, from: &C::Key, closer: Vec<C>, providers: Vec<V>, now_ms: u64) {
        let Some(i) = self.find(from) else {
            return;
        };
        let (path, depth) = (self.candidates[i].path, self.candidates[i].depth);
        if self.candidates[i].state == State::Asked {
            self.paths[usize::from(path)].in_flight -= 1;
        }
        self.candidates[i].state = State::Answered;
        let fresh: Vec<V> = providers
            .into_iter()
            .filter(|v| v.valid_for(&self.target, now_ms))
            .collect();
        if !fresh.is_empty() {
            self.value_depth = Some(self.value_depth.map_or(depth, |d| d.min(depth)));
            for v in fresh {
                match self
                    .providers
                    .iter_mut()
                    .find(|h| h.provider() == v.provider())
                {
                    Some(held) if v.newer_than(held) => *held = v,
                    Some(_) => {}
                    None => self.providers.push(v),
                }
            }
            if matches!(self.goal, Goal::Providers) {
                // A caller wants a route now, and one honest path is enough: the lookup ends
                // with the first answer that carries providers (lying nodes can hide entries
                // on their paths, not end the lookup without them).
                for path in &mut self.paths {
                    path.found = true;
                    path.done = path.in_flight == 0;
                }
            }
        }
        let best = self
            .candidates
            .iter()
            .find(|c| c.path == path && c.state != State::Failed)
            .map(|c| c.distance);
        let mut progress = false;
        for c in closer {
            if let Some(d) = self.add(c, path, depth.saturating_add(1)) {
                progress |= best.is_none_or(|b| d < b);
            }
        }
        let path = &mut self.paths[usize::from(path)];
        path.no_progress = if progress {
            0
        } else {
            path.no_progress.saturating_add(1)
        };
    }

    /// A request to `from` failed (no answer in time, unreachable, or a refusal).
    pub fn failed(&mut self, from: &C::Key) {
        if let Some(i) = self.find(from) {
            let path = usize::from(self.candidates[i].path);
            if self.candidates[i].state == State::Asked {
                self.paths[path].in_flight -= 1;
            }
            self.candidates[i].state = State::Failed;
            self.failures += 1;
        }
    }

    /// Every path is done.
    pub fn finished(&self) -> bool {
        self.paths.iter().all(|p| p.done)
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.paths.iter().map(|p| usize::from(p.in_flight)).sum()
    }

    /// The `n` closest nodes that answered, closest first, and the depth of the closest.
    pub fn closest_answered(&self, n: usize) -> (Vec<C>, u8) {
        let answered: Vec<&Candidate<C>> = self
            .candidates
            .iter()
            .filter(|c| c.state == State::Answered)
            .take(n)
            .collect();
        let depth = answered.first().map_or(0, |c| c.depth);
        (
            answered.into_iter().map(|c| c.contact.clone()).collect(),
            depth,
        )
    }
}
