//! Routes by interest: the providers of the services this node actually calls, looked up in the
//! DHT the first time they are needed and kept a while, instead of every node's record of the
//! whole network. Bounded in names and in lookups per second, so neither the services a node
//! calls nor the names strangers ask its gateway for can grow it or make it look up at their
//! rate. A name no node provides is remembered briefly too (a negative entry), so a burst of
//! calls to it costs one lookup.
//!
//! A cached name is fresh for [`FRESH`]; after that its providers still route calls while one
//! lookup runs in the background to refresh them. A provider a call could not reach is dropped
//! from its name at once, and the name looked up again when none is left.

use crate::Network;
use crate::contact::ProviderEntry;
use crate::dht::LookupError;
use iroh::PublicKey;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// A name's providers are looked up again after this long (calls go on meanwhile).
pub const FRESH: Duration = Duration::from_secs(60);
/// A name no node provides is looked up again after this long: a service deployed since then
/// is found by the next call after it.
pub const NOT_FOUND_FOR: Duration = Duration::from_millis(250);
/// Names kept at most; the least recently used goes first.
pub const MAX_NAMES: usize = 512;
/// Providers kept per name at most (the DHT answers a handful; the cost model picks among them).
pub const MAX_PER_NAME: usize = 8;
/// Lookups this node starts per second on behalf of calls, and the burst it allows.
pub const LOOKUPS_PER_SECOND: f64 = 20.0;
const LOOKUP_BURST: f64 = 40.0;
/// Nodes routed to recently enough to keep checking their health.
const ROUTED_FOR: Duration = Duration::from_secs(120);
/// A provider a call could not reach is tried last for this long (its entry may be found again
/// meanwhile: a node that died does not withdraw).
const UNREACHABLE_FOR: Duration = Duration::from_secs(600);
/// Unreachable providers remembered at most.
const MAX_UNREACHABLE: usize = 256;

/// Why no providers could be given for a name.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    /// The node looks up as much as it allows now.
    #[error("this node is looking up too many services right now; try again shortly")]
    Throttled,
    /// The DHT could not run the lookup.
    #[error(transparent)]
    Lookup(#[from] LookupError),
}

struct Known {
    /// Parsed once when found: a call reads them without decoding keys or addresses.
    entries: Vec<Provider>,
    fetched: Instant,
    used: Instant,
    refreshing: bool,
}

/// One provider of a name as a route sees it.
#[derive(Debug, Clone)]
pub struct Provider {
    /// The provider's node.
    pub node: PublicKey,
    /// Its signed entry.
    pub entry: ProviderEntry,
    /// How to dial it, from the contact in its entry.
    pub dial: Option<iroh::EndpointAddr>,
}

/// The providers of the names this node calls.
pub struct Providers {
    known: Mutex<HashMap<String, Known>>,
    /// Names being looked up now: waiters see the sender dropped when it finishes.
    looking: Mutex<HashMap<String, watch::Receiver<()>>>,
    bucket: Mutex<Bucket>,
    /// Providers calls could not reach lately, and when.
    unreachable: Mutex<HashMap<PublicKey, Instant>>,
    /// Bumped when a name's providers change: the node's views follow it.
    changed: micro_base::changes::Changes,
}

impl Default for Providers {
    fn default() -> Self {
        Self {
            known: Mutex::default(),
            looking: Mutex::default(),
            bucket: Mutex::new(Bucket {
                tokens: LOOKUP_BURST,
                at: Instant::now(),
            }),
            unreachable: Mutex::default(),
            changed: micro_base::changes::Changes::default(),
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * LOOKUPS_PER_SECOND;
        self.tokens = (self.tokens + refill).min(LOOKUP_BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What the cache says of a name now.
enum Cached {
    Fresh(Vec<Provider>),
    Stale(Vec<Provider>),
    Missing,
}

impl Providers {
    /// The providers of `name` (a service or `name@version`) other than this node, best known
    /// first; looked up when not known. Empty when no node provides it.
    pub async fn find(&self, net: &Arc<Network>, name: &str) -> Result<Vec<Provider>, FindError> {
        match self.cached(net, name) {
            Cached::Fresh(found) => return Ok(found),
            Cached::Stale(found) => {
                self.refresh_in_background(net, name);
                return Ok(found);
            }
            Cached::Missing => {}
        }
        // One lookup per name at a time: the others wait for it and read what it found.
        let waiting = micro_base::sync::lock(&self.looking).get(name).cloned();
        if let Some(mut waiting) = waiting {
            let _ = waiting.changed().await;
            if let Cached::Fresh(found) | Cached::Stale(found) = self.cached(net, name) {
                return Ok(found);
            }
            // The lookup failed or its caller gave up: look up ourselves.
        }
        self.look_up(net, name).await
    }

    /// The providers of `name` as the network says now: looked up whatever the cache holds
    /// (someone asked for this name explicitly), and cached.
    pub async fn refresh(
        &self,
        net: &Arc<Network>,
        name: &str,
    ) -> Result<Vec<Provider>, FindError> {
        self.look_up(net, name).await
    }

    fn cached(&self, net: &Network, name: &str) -> Cached {
        let now_ms = net.clock.now_ms();
        let mut known = micro_base::sync::lock(&self.known);
        let Some(k) = known.get_mut(name) else {
            return Cached::Missing;
        };
        k.entries
            .retain(|p| !p.entry.body.withdrawn && p.entry.body.expires_ms > now_ms);
        let age = k.fetched.elapsed();
        if k.entries.is_empty() {
            // Not found lately, or every provider failed or expired.
            return if age < NOT_FOUND_FOR && !k.refreshing {
                k.used = Instant::now();
                Cached::Fresh(Vec::new())
            } else {
                Cached::Missing
            };
        }
        k.used = Instant::now();
        let found = k.entries.clone();
        if age < FRESH || k.refreshing {
            Cached::Fresh(found)
        } else {
            Cached::Stale(found)
        }
    }

    fn refresh_in_background(&self, net: &Arc<Network>, name: &str) {
        {
            let mut known = micro_base::sync::lock(&self.known);
            match known.get_mut(name) {
                Some(k) if !k.refreshing => k.refreshing = true,
                _ => return,
            }
        }
        let (net, name) = (net.clone(), name.to_string());
        tokio::spawn(async move {
            if let Err(e) = net.providers.look_up(&net, &name).await {
                tracing::debug!(service = %name, error = %e, "refreshing providers");
                if let Some(k) = micro_base::sync::lock(&net.providers.known).get_mut(&name) {
                    k.refreshing = false;
                }
            }
        });
    }

    async fn look_up(&self, net: &Arc<Network>, name: &str) -> Result<Vec<Provider>, FindError> {
        // What this node keeps for others answers without asking anyone.
        let held = net.dht.held(net, name);
        // Held until what was found is cached, so the waiters find it there.
        let mut _looking = None;
        let entries = if !held.is_empty() {
            held
        } else {
            if !micro_base::sync::lock(&self.bucket).take() {
                return Err(FindError::Throttled);
            }
            _looking = Some(Looking::start(self, name));
            net.dht.find_providers(net, name).await?
        };
        let mut found = live_providers(net, entries);
        // One entry per provider, the newest.
        found.sort_by(|a, b| {
            (a.node.as_bytes(), b.entry.body.issued_ms)
                .cmp(&(b.node.as_bytes(), a.entry.body.issued_ms))
        });
        found.dedup_by(|a, b| a.node == b.node);
        found.truncate(MAX_PER_NAME);
        for p in &found {
            if let Some(addr) = &p.dial {
                net.addresses.add(addr.clone(), false);
            }
        }
        let mut known = micro_base::sync::lock(&self.known);
        if known.len() >= MAX_NAMES && !known.contains_key(name) {
            let oldest = known
                .iter()
                .min_by_key(|(_, k)| k.used)
                .map(|(n, _)| n.clone());
            if let Some(oldest) = oldest {
                known.remove(&oldest);
            }
        }
        let now = Instant::now();
        let before = known.insert(
            name.to_string(),
            Known {
                entries: found.clone(),
                fetched: now,
                used: now,
                refreshing: false,
            },
        );
        drop(known);
        let same = |b: &Known| {
            b.entries.len() == found.len()
                && b.entries
                    .iter()
                    .zip(&found)
                    .all(|(a, b)| a.node == b.node && a.entry.body.version == b.entry.body.version)
        };
        if !before.as_ref().is_some_and(same) {
            self.changed.notify();
        }
        Ok(found)
    }

    /// A call could not reach `node` for `name`: routes stop using it for the name until it is
    /// found again, and try it last for any name for a while.
    pub fn failed(&self, name: &str, node: &PublicKey) {
        self.gone(name, node);
        self.down(node);
    }

    /// `node` stopped answering pings: routes try it last for a while, and it is no longer
    /// pinged as a routed-to node (a call that reaches it again clears this).
    pub fn down(&self, node: &PublicKey) {
        let mut unreachable = micro_base::sync::lock(&self.unreachable);
        unreachable.retain(|_, at| at.elapsed() < UNREACHABLE_FOR);
        if unreachable.len() < MAX_UNREACHABLE {
            unreachable.insert(*node, Instant::now());
        }
    }

    /// `node` answered that it does not serve `name` (any more).
    pub fn gone(&self, name: &str, node: &PublicKey) {
        if let Some(k) = micro_base::sync::lock(&self.known).get_mut(name) {
            k.entries.retain(|p| p.node != *node);
        }
        self.changed.notify();
    }

    /// `node` said it is leaving: it provides nothing any more.
    pub fn left(&self, node: &PublicKey) {
        for k in micro_base::sync::lock(&self.known).values_mut() {
            k.entries.retain(|p| p.node != *node);
        }
        self.changed.notify();
    }

    /// A receiver that sees the providers of a name change.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.changed.watch()
    }

    /// How many times the providers of a name changed.
    pub fn changes(&self) -> u64 {
        self.changed.count()
    }

    /// A call could not reach `node` lately.
    pub fn unreachable(&self, node: &PublicKey) -> bool {
        micro_base::sync::lock(&self.unreachable)
            .get(node)
            .is_some_and(|at| at.elapsed() < UNREACHABLE_FOR)
    }

    /// `node` answered: it is reachable again.
    pub fn reached(&self, node: &PublicKey) {
        micro_base::sync::lock(&self.unreachable).remove(node);
    }

    /// The providers of `name` known now, without looking up.
    pub fn cached_now(&self, net: &Network, name: &str) -> Vec<Provider> {
        match self.cached(net, name) {
            Cached::Fresh(found) | Cached::Stale(found) => found,
            Cached::Missing => Vec::new(),
        }
    }

    /// Every name known with its providers, for the node's view of the network.
    pub fn known(&self, net: &Network) -> Vec<(String, Vec<Provider>)> {
        let now_ms = net.clock.now_ms();
        let known = micro_base::sync::lock(&self.known);
        let mut out: Vec<(String, Vec<Provider>)> = known
            .iter()
            .map(|(name, k)| {
                let live: Vec<Provider> = k
                    .entries
                    .iter()
                    .filter(|p| !p.entry.body.withdrawn && p.entry.body.expires_ms > now_ms)
                    .cloned()
                    .collect();
                (name.clone(), live)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The nodes this node routed calls to lately with how to dial them, at most `max`, the
    /// most recently used names first: their health is worth checking.
    pub fn routed(&self, max: usize) -> Vec<(PublicKey, iroh::EndpointAddr)> {
        let known = micro_base::sync::lock(&self.known);
        let mut names: Vec<&Known> = known
            .values()
            .filter(|k| k.used.elapsed() < ROUTED_FOR)
            .collect();
        names.sort_by_key(|k| std::cmp::Reverse(k.used));
        let mut out: Vec<(PublicKey, iroh::EndpointAddr)> = Vec::new();
        for k in names {
            for p in &k.entries {
                if out.len() >= max {
                    return out;
                }
                if let Some(addr) = &p.dial
                    && !out.iter().any(|(id, _)| *id == addr.id)
                    && !self.unreachable(&addr.id)
                {
                    out.push((addr.id, addr.clone()));
                }
            }
        }
        out
    }

    /// Names cached now.
    pub fn len(&self) -> usize {
        micro_base::sync::lock(&self.known).len()
    }

    /// No name cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A lookup of one name in progress: waiters wake when it ends, however it ends (its caller
/// may give up and drop it).
struct Looking<'a> {
    providers: &'a Providers,
    name: String,
    _done: watch::Sender<()>,
}

impl<'a> Looking<'a> {
    fn start(providers: &'a Providers, name: &str) -> Self {
        let (done, waiting) = watch::channel(());
        micro_base::sync::lock(&providers.looking).insert(name.to_string(), waiting);
        Looking {
            providers,
            name: name.to_string(),
            _done: done,
        }
    }
}

impl Drop for Looking<'_> {
    fn drop(&mut self) {
        micro_base::sync::lock(&self.providers.looking).remove(&self.name);
    }
}

/// The providers other than this node among `entries` that are live (neither withdrawn nor
/// expired), each parsed once.
pub(crate) fn live_providers(net: &Network, entries: Vec<ProviderEntry>) -> Vec<Provider> {
    let me = net.identity.public();
    let now_ms = net.clock.now_ms();
    entries
        .into_iter()
        .filter(|e| !e.body.withdrawn && e.body.expires_ms > now_ms)
        .filter_map(|entry| {
            let node = PublicKey::from_bytes(&entry.provider.wire().node).ok()?;
            (node != me).then(|| Provider {
                node,
                dial: crate::dht::contact_addr(entry.provider.wire()),
                entry,
            })
        })
        .collect()
}
