//! The governance slot: the component that decides who may join, deploy and call (the
//! `governance-world` WIT world). The node holds one live instance of it and asks it one
//! question at a time; answers are cached by question and governance generation for the time
//! the answer allows; an error, a trap or an overrun is a denial, never an allowance. A new
//! governance is swapped in while the node runs: questions already asked finish on the old one.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use wasmtime::Store;

/// Host bindings of the governance world.
#[allow(
    missing_docs,
    reason = "generated from the WIT, whose comments document it"
)]
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "governance-world",
        imports: { default: async },
        exports: { default: async },
    });
}

pub use bindings::exports::micro::network::governance::{
    CallRequest, Candidate, Decision, DeployRequest, Obligation, Observation, Online, PeerRequest,
    PlacementRequest, Report, Served, Subject, Visibility,
};

use micro_embedded::DEFAULT_GOVERNANCE;

mod component;
mod rates;

use component::load_with;
pub use component::{GovernanceState, Loaded};

/// Decisions kept in the log.
const LOG_SIZE: usize = 1000;
/// Cached answers at most; past it the cache starts over (answers are cheap to ask again).
const CACHE_SIZE: usize = 65_536;
/// Observations kept until the next flush; past it the oldest are dropped (a flush is due long
/// before, unless governance keeps failing).
const MAX_OBSERVATIONS: usize = 65_536;

/// Who asks: a node id, whether it is this node, and how long this node has known it.
#[derive(Clone, Copy)]
pub struct Asker<'a> {
    /// The asking node's id.
    pub node: &'a str,
    /// The question comes from this node itself.
    pub local: bool,
    /// Listed in the node's `governance.trusted`.
    pub pre_trusted: bool,
    /// How long this node has known it.
    pub age: Age<'a>,
}

/// How long a node has known an asker: known already, or looked up in its peer table only
/// when governance is actually asked (a cache hit needs no age, and parsing a node id is the
/// most expensive step of a call's check).
#[derive(Clone, Copy)]
pub enum Age<'a> {
    /// Known: this many ms.
    Ms(u64),
    /// A peer: asked of whoever knows the peers only when governance needs it (on a cache
    /// miss).
    PeerOf(&'a dyn PeerAges),
}

/// Whoever knows this node's peers (the peer layer): how long it has known one.
pub trait PeerAges: Send + Sync {
    /// How long this node has known peer `node` (0 when it does not know it).
    fn peer_age_ms(&self, node: &str) -> u64;
}

/// Knows no peer: a node without a network.
pub struct NoPeers;

impl PeerAges for NoPeers {
    fn peer_age_ms(&self, _node: &str) -> u64 {
        0
    }
}

/// What a question's asker is made of on this node, fixed when it starts: its own id, the
/// peers its operator pre-trusts (`governance.trusted`), and since when it runs. The same
/// rule for every part that asks governance or the ledger about a node.
#[derive(Clone)]
pub struct Askers {
    this: String,
    trusted: Arc<[String]>,
    started: Instant,
}

impl Askers {
    /// The askers of node `this`, which pre-trusts `trusted` and runs since `started`.
    pub fn new(this: &str, trusted: &[String], started: Instant) -> Askers {
        Askers {
            this: this.to_string(),
            trusted: trusted.into(),
            started,
        }
    }

    /// This node's id.
    pub fn this_node(&self) -> &str {
        &self.this
    }

    /// Whether the operator lists `node` in `governance.trusted`.
    pub fn pre_trusted(&self, node: &str) -> bool {
        self.trusted.iter().any(|t| t == node)
    }

    /// This node, as governance sees a question from it.
    pub fn this(&self) -> Asker<'_> {
        Asker {
            node: &self.this,
            local: true,
            pre_trusted: false,
            age: Age::Ms(self.started.elapsed().as_millis() as u64),
        }
    }

    /// Node `node_id`, as governance sees a question from it: this node, or a peer with how
    /// long `ages` has known it and whether the operator pre-trusts it.
    pub fn of<'a>(&'a self, node_id: &'a str, ages: &'a dyn PeerAges) -> Asker<'a> {
        if node_id == self.this {
            return self.this();
        }
        Asker {
            node: node_id,
            local: false,
            pre_trusted: self.pre_trusted(node_id),
            age: Age::PeerOf(ages),
        }
    }
}

impl Asker<'_> {
    /// The subject of a question: this node is fully trusted; another node is as trusted as
    /// governance says now.
    async fn subject(
        &self,
        g: &bindings::exports::micro::network::governance::Guest,
        store: &mut Store<GovernanceState>,
        now_ms: u64,
    ) -> wasmtime::Result<Subject> {
        let reputation = if self.local {
            1.0
        } else {
            g.call_reputation(&mut *store, self.node, now_ms).await?
        };
        Ok(Subject {
            node: self.node.to_string(),
            local: self.local,
            pre_trusted: self.pre_trusted,
            reputation,
            age_ms: match self.age {
                Age::Ms(ms) => ms,
                Age::PeerOf(ages) => ages.peer_age_ms(self.node),
            },
        })
    }
}

/// What kind of question a decision answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// May a peer exchange records and requests with this node?
    AdmitPeer,
    /// May this version be deployed here?
    ApproveDeploy,
    /// May this caller call this method?
    AuthorizeCall,
}

/// A decision as the node uses it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verdict {
    /// Allowed.
    pub allow: bool,
    /// Governance's reason.
    pub reason: String,
    /// How long the answer may be reused, in ms.
    pub ttl_ms: u64,
    /// Calls per second and burst, when the allowance is rate-limited.
    pub rate_limit: Option<(f64, u32)>,
}

impl From<Decision> for Verdict {
    fn from(d: Decision) -> Self {
        // The first obligation of each kind counts (there is one kind so far).
        let rate_limit = d
            .obligations
            .iter()
            .map(|o| match o {
                Obligation::RateLimit(r) => (r.per_second, r.burst),
            })
            .next();
        Self {
            allow: d.allow,
            reason: d.reason,
            ttl_ms: d.ttl_ms,
            rate_limit,
        }
    }
}

/// Why a question was refused by the node rather than answered by governance.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// Governance said no.
    #[error("denied by governance {governance}: {reason}")]
    Denied {
        /// The governance that said so (name and version).
        governance: String,
        /// Its reason.
        reason: String,
    },
    #[error("rate limited by governance {governance}: {reason}; retry in {retry_ms} ms")]
    /// Over the rate governance allows.
    RateLimited {
        /// The governance that said so (name and version).
        governance: String,
        /// Its reason.
        reason: String,
        /// When to try again, in ms.
        retry_ms: u64,
    },
}

/// One entry of the decision log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Logged {
    /// When it was asked, by the node's clock.
    pub at_ms: u64,
    /// What kind of question.
    pub kind: Kind,
    /// The subject's node id.
    pub subject: String,
    /// The question, in short ("hello.greet", "deploy hello").
    pub question: String,
    /// Allowed.
    pub allow: bool,
    /// Governance's reason.
    pub reason: String,
    /// How long the answer may be reused, in ms.
    pub ttl_ms: u64,
    /// Which governance answered ("name version").
    pub governance: String,
    /// How long the question took, in microseconds.
    pub micros: u64,
}

/// A cached answer.
struct Cached {
    verdict: Arc<Verdict>,
    generation: u64,
    until: Instant,
}

micro_base::counters!(
    /// How many questions governance was asked, and what became of them.
    pub struct Counts => DecisionCounts {
        /// Questions asked of the component.
        asked,
        /// Questions answered from the cache.
        cached,
        /// Answers that denied.
        denied,
        /// Questions the component failed to answer (so denied).
        failed,
        /// Calls refused for their rate.
        rate_limited,
    }
);

/// The node's governance: the component in use, its cached answers, the rate limits it set
/// and the log of its decisions.
pub struct Governance {
    current: RwLock<Arc<Loaded>>,
    host: component::Host,
    generations: AtomicU64,
    cache: RwLock<HashMap<(Kind, String), Cached>>,
    buckets: rates::Buckets,
    log: Mutex<VecDeque<Logged>>,
    counts: Counts,
    /// What the node saw since the last flush to `observe`.
    observations: Mutex<Vec<Observation>>,
    /// The node's clock (tests move it).
    clock: micro_base::Clock,
    /// Governance's clock when the slot was made: where time online starts counting.
    pub started_ms: u64,
}

impl Governance {
    /// Loads the embedded default governance.
    pub async fn with_default(
        runtime: &crate::host_state::Runtime,
        clock: micro_base::Clock,
    ) -> anyhow::Result<Self> {
        let host = component::host(runtime)?;
        let loaded = load_with(&host, runtime, DEFAULT_GOVERNANCE, "embedded", 0).await?;
        Ok(Self {
            current: RwLock::new(Arc::new(loaded)),
            host,
            generations: AtomicU64::new(0),
            cache: RwLock::default(),
            buckets: rates::Buckets::default(),
            log: Mutex::default(),
            counts: Counts::default(),
            observations: Mutex::default(),
            started_ms: clock.now_ms(),
            clock,
        })
    }

    /// Compiles and checks a governance component and asks it who it is (not yet in use).
    pub async fn load(
        &self,
        runtime: &crate::host_state::Runtime,
        wasm: &[u8],
        origin: &str,
    ) -> anyhow::Result<Loaded> {
        let generation = self.generations.fetch_add(1, Ordering::AcqRel) + 1;
        load_with(&self.host, runtime, wasm, origin, generation).await
    }

    /// Puts `loaded` in use: the next question goes to it; questions already asked finish on
    /// the old one, and the old one's cached answers are no longer used.
    pub fn replace(&self, loaded: Loaded) -> Arc<Loaded> {
        let loaded = Arc::new(loaded);
        *micro_base::sync::write(&self.current) = loaded.clone();
        micro_base::sync::write(&self.cache).clear();
        loaded
    }

    /// The governance in use.
    pub fn current(&self) -> Arc<Loaded> {
        micro_base::sync::read(&self.current).clone()
    }

    /// The node's clock, in milliseconds since the epoch.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Moves the node's clock forward (tests only: the API allows it only with
    /// `governance.test_clock`); cached answers, given at the old time, are dropped.
    pub fn advance_clock(&self, ms: u64) {
        self.clock.advance(ms);
        micro_base::sync::write(&self.cache).clear();
    }

    /// Notes something the node saw an identity do; it goes to governance at the next flush.
    pub fn observe(&self, observation: Observation) {
        let mut list = micro_base::sync::lock(&self.observations);
        if list.len() >= MAX_OBSERVATIONS {
            list.remove(0);
        }
        list.push(observation);
    }

    /// Hands what the node saw since the last flush to the governance component.
    pub async fn flush_observations(&self) {
        let list = std::mem::take(&mut *micro_base::sync::lock(&self.observations));
        if list.is_empty() {
            return;
        }
        let now_ms = self.now_ms();
        let governance = self.current();
        if let Err(e) = governance
            .ask("observe", async |g, store| {
                g.call_observe(store, now_ms, &list).await
            })
            .await
        {
            tracing::warn!(governance = %governance.label(), error = %e, "observations not taken");
        }
        // A misbehaving peer must not keep an allowance given before: ask about it afresh.
        let misbehaved = list
            .iter()
            .filter_map(|o| match o {
                Observation::Invalid(node)
                | Observation::Failed(node)
                | Observation::TimedOut(node) => Some(node.clone()),
                _ => None,
            })
            .collect();
        self.forget_subjects(&misbehaved);
    }

    /// Counters of the decisions so far.
    pub fn counts(&self) -> DecisionCounts {
        self.counts.snapshot()
    }

    /// The most recent decisions, newest first.
    pub fn log(&self, limit: usize) -> Vec<Logged> {
        let log = micro_base::sync::lock(&self.log);
        log.iter().rev().take(limit).cloned().collect()
    }

    /// May `caller` call `service`.`method`? Answers from the cache when it can (the cache
    /// key is the question, not the caller's reputation: the answer's TTL bounds how stale a
    /// reputation it used may get) and enforces the rate limit that comes with an allowance.
    pub async fn authorize_call(
        &self,
        caller: &Asker<'_>,
        service: &str,
        method: &str,
        visibility: Visibility,
    ) -> Result<(), Refusal> {
        let key = format!("{}\n{service}\n{method}\n{visibility:?}", caller.node);
        self.decide(
            Kind::AuthorizeCall,
            key,
            caller.node,
            || format!("{service}.{method}"),
            async |g, store| {
                let now_ms = self.now_ms();
                let caller = caller.subject(g, store, now_ms).await?;
                let request = CallRequest {
                    caller,
                    service: service.to_string(),
                    method: method.to_string(),
                    visibility,
                    now_ms,
                };
                g.call_authorize_call(store, &request).await
            },
        )
        .await
    }

    /// May `peer` exchange records and requests with this node? Asked for every connection,
    /// gossip message and request other than a call (those ask [`Self::authorize_call`]), so a
    /// rate limit that comes with the allowance throttles the peer.
    pub async fn admit_peer(&self, peer: &Asker<'_>) -> Result<(), Refusal> {
        self.decide(
            Kind::AdmitPeer,
            peer.node.to_string(),
            peer.node,
            || "admit".to_string(),
            async |g, store| {
                let now_ms = self.now_ms();
                let request = PeerRequest {
                    peer: peer.subject(g, store, now_ms).await?,
                    now_ms,
                };
                g.call_admit_peer(store, &request).await
            },
        )
        .await
    }

    /// May `deployer` deploy `service` (a component of `size` bytes, from `source`) here? A
    /// `replica` is one placed here by `deployer`, the node the service was deployed on.
    #[allow(clippy::too_many_arguments)]
    pub async fn approve_deploy(
        &self,
        deployer: &Asker<'_>,
        service: &str,
        size: u64,
        source: Option<&str>,
        memory_mib: u64,
        running: u32,
        replica: bool,
    ) -> Result<(), Refusal> {
        let key = format!(
            "{}\n{service}\n{size}\n{memory_mib}\n{source:?}\n{running}\n{replica}",
            deployer.node
        );
        self.decide(
            Kind::ApproveDeploy,
            key,
            deployer.node,
            || {
                if replica {
                    format!("replica of {service}")
                } else {
                    format!("deploy {service}")
                }
            },
            async |g, store| {
                let now_ms = self.now_ms();
                let request = DeployRequest {
                    deployer: deployer.subject(g, store, now_ms).await?,
                    service: service.to_string(),
                    size,
                    source: source.map(str::to_string),
                    memory_mib,
                    running,
                    replica,
                    now_ms,
                };
                g.call_approve_deploy(store, &request).await
            },
        )
        .await
    }

    /// Which of `candidates` (with their load, and whether they run it already) should run
    /// `service`, best first; empty to leave it where it is. Never cached: demand and
    /// candidates change between rounds. A failure places nothing.
    pub async fn place(
        &self,
        service: &str,
        calls_per_minute: u64,
        candidates: &[(Asker<'_>, u32, bool)],
    ) -> Result<Vec<String>, String> {
        let governance = self.current();
        governance
            .ask("place", async |g, store| {
                let now_ms = self.now_ms();
                let mut list = Vec::with_capacity(candidates.len());
                for (asker, load, runs_it) in candidates {
                    list.push(Candidate {
                        node: asker.subject(g, store, now_ms).await?,
                        load: *load,
                        runs_it: *runs_it,
                    });
                }
                let request = PlacementRequest {
                    service: service.to_string(),
                    calls_per_minute,
                    candidates: list,
                    now_ms,
                };
                g.call_place(store, &request).await
            })
            .await
            .map_err(|e| e.to_string())
    }

    /// How trusted each of `nodes` is now, as governance says (for the reports this node
    /// announces); `None` when governance failed.
    pub async fn reputations(&self, nodes: &[String]) -> Option<Vec<f64>> {
        let governance = self.current();
        let now_ms = self.now_ms();
        governance
            .ask("reputation", async |g, store| {
                let mut out = Vec::with_capacity(nodes.len());
                for node in nodes {
                    out.push(g.call_reputation(&mut *store, node, now_ms).await?);
                }
                Ok(out)
            })
            .await
            .ok()
    }

    /// Drops the cached answers about `subjects`: something they did changes what governance
    /// would say of them now (their reputation moved).
    fn forget_subjects(&self, subjects: &std::collections::HashSet<String>) {
        if subjects.is_empty() {
            return;
        }
        micro_base::sync::write(&self.cache).retain(|(_, key), _| {
            let subject = key.split('\n').next().unwrap_or_default();
            !subjects.contains(subject)
        });
    }

    async fn decide(
        &self,
        kind: Kind,
        key: String,
        subject: &str,
        // Only a cache miss needs the question in words (for the log and errors).
        question: impl FnOnce() -> String,
        ask: impl AsyncFnOnce(
            &bindings::exports::micro::network::governance::Guest,
            &mut Store<GovernanceState>,
        ) -> wasmtime::Result<Decision>,
    ) -> Result<(), Refusal> {
        let governance = self.current();
        let cache_key = (kind, key);
        let cached = {
            let cache = micro_base::sync::read(&self.cache);
            cache
                .get(&cache_key)
                .filter(|c| c.generation == governance.generation && c.until > Instant::now())
                .map(|c| c.verdict.clone())
        };
        let verdict = match cached {
            Some(v) => {
                self.counts.cached.fetch_add(1, Ordering::Relaxed);
                v
            }
            None => {
                let question = question();
                let started = Instant::now();
                let answer = governance.ask(&question, ask).await;
                let micros = started.elapsed().as_micros() as u64;
                self.counts.asked.fetch_add(1, Ordering::Relaxed);
                let verdict = Arc::new(match answer {
                    Ok(decision) => Verdict::from(decision),
                    Err(why) => {
                        self.counts.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(governance = %governance.label(), %question, error = %why, "governance failed: denied");
                        Verdict {
                            allow: false,
                            reason: format!("governance failed, so denied: {why}"),
                            ttl_ms: 0,
                            rate_limit: None,
                        }
                    }
                });
                self.remember(&governance, cache_key.clone(), &verdict);
                self.note(Logged {
                    at_ms: self.now_ms(),
                    kind,
                    subject: subject.to_string(),
                    question,
                    allow: verdict.allow,
                    reason: verdict.reason.clone(),
                    ttl_ms: verdict.ttl_ms,
                    governance: governance.label(),
                    micros,
                });
                verdict
            }
        };
        if !verdict.allow {
            self.counts.denied.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::Denied {
                governance: governance.label(),
                reason: verdict.reason.clone(),
            });
        }
        if let Some((per_second, burst)) = verdict.rate_limit
            && let Err(retry_ms) = self
                .buckets
                .take(kind, subject.to_string(), per_second, burst)
        {
            self.counts.rate_limited.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::RateLimited {
                governance: governance.label(),
                reason: verdict.reason.clone(),
                retry_ms,
            });
        }
        Ok(())
    }

    fn remember(&self, governance: &Loaded, key: (Kind, String), verdict: &Arc<Verdict>) {
        if verdict.ttl_ms == 0 {
            return;
        }
        let mut cache = micro_base::sync::write(&self.cache);
        if cache.len() >= CACHE_SIZE {
            cache.clear();
        }
        cache.insert(
            key,
            Cached {
                verdict: verdict.clone(),
                generation: governance.generation,
                until: Instant::now() + Duration::from_millis(verdict.ttl_ms),
            },
        );
    }

    fn note(&self, entry: Logged) {
        let mut log = micro_base::sync::lock(&self.log);
        if log.len() >= LOG_SIZE {
            log.pop_front();
        }
        log.push_back(entry);
    }
}
