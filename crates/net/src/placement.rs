//! Automatic placement: where services run is governance's to say, not anyone's command.
//!
//! Every `governance.place_interval_ms` a node asks its governance (`place`) where each service
//! deployed on it should run, given its demand and the candidates — the peers this node checks
//! (never every node of the network) — and tells each node named (`Request::Place`: all this
//! node places there now, so an empty list takes back what it placed). A node named fetches
//! the component from a node that has it, checks it against the hash, asks its own governance
//! (`approve-deploy`, as a replica) and runs it. Replicas are provided in the DHT like any
//! service, so calls find them; they keep serving when the origin node leaves, and stop only
//! when the origin, still there, no longer places them. A replica's node that has not heard
//! from the origin for a while (it restarted, say) asks it (`Request::Placed`); an origin that
//! cannot be reached has left.

use crate::Network;
use crate::local::Local;
use crate::wire::{Reply, Request};
use iroh::{EndpointAddr, PublicKey};
use micro_core::deploy::Origin;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Demand is measured over this window.
const WINDOW: Duration = Duration::from_secs(60);
/// A fetch or deploy of a replica that failed is tried again after this long.
const RETRY_AFTER: Duration = Duration::from_secs(30);
/// Nodes placed with this one that a component is fetched from at most, when the origin fails.
const MAX_FETCH_SOURCES: usize = 4;
/// How long fetching a component from one peer may take.
const FETCH_TIME: Duration = Duration::from_secs(30);
/// How long a replica's origin must go on not placing it before it stops: an origin that just
/// restarted has not measured demand again yet, and one round's answer is no reason to churn.
const UNPLACED_GRACE: Duration = Duration::from_secs(60);

/// Origins whose placements a node keeps at most (the least recently heard goes first).
pub const MAX_ORIGINS: usize = 256;
/// Placements one message may carry at most.
pub const MAX_PLACEMENTS: usize = 64;

/// A service of the origin node that its governance placed on other nodes too: each of
/// `nodes` runs the version whose component has the hash `component`, fetched from a node
/// that has it and checked against the hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Assignment {
    /// The service.
    pub service: String,
    /// The version placed.
    pub version: String,
    /// The component's content hash (hex SHA-256).
    pub component: String,
    /// The nodes placed to run it.
    pub nodes: Vec<[u8; 32]>,
}

/// What this node placed, what others placed here, and how busy its services are.
#[derive(Default)]
pub struct Placement {
    /// What this node places on others now.
    announced: Mutex<Vec<Assignment>>,
    /// What other nodes place here, by origin.
    received: Mutex<HashMap<PublicKey, FromOrigin>>,
    /// Per service: (when, calls so far) over the last window.
    demand: Mutex<HashMap<String, VecDeque<(Instant, u64)>>>,
    /// Replicas that failed to fetch or deploy, by (service, component), and when.
    failed: Mutex<HashMap<(String, String), Instant>>,
    /// Replicas (by service) whose origin, still here, stopped placing them, and since when.
    unplaced: Mutex<HashMap<String, Instant>>,
}

/// What one origin places here, as it last said.
#[derive(Debug, Clone, Default)]
struct FromOrigin {
    placements: Vec<Assignment>,
    /// When it last said so (a push, or its answer when asked).
    heard: Option<Instant>,
    /// When it was last asked.
    asked: Option<Instant>,
    /// It could not be reached when asked: it left.
    gone: bool,
    dial: Option<EndpointAddr>,
}

impl Placement {
    /// What this node places on others now.
    pub fn announced(&self) -> Vec<Assignment> {
        micro_base::sync::lock(&self.announced).clone()
    }

    /// What this node places on `node`.
    pub fn placed_on(&self, node: &PublicKey) -> Vec<Assignment> {
        let announced = micro_base::sync::lock(&self.announced);
        announced
            .iter()
            .filter(|p| p.nodes.contains(node.as_bytes()))
            .cloned()
            .collect()
    }

    fn set_announced(&self, placements: Vec<Assignment>) {
        *micro_base::sync::lock(&self.announced) = placements;
    }

    /// Origin `origin` says it places `placements` here now (at most [`MAX_PLACEMENTS`]).
    pub fn took(
        &self,
        origin: PublicKey,
        dial: Option<EndpointAddr>,
        mut placements: Vec<Assignment>,
    ) {
        placements.truncate(MAX_PLACEMENTS);
        let mut received = micro_base::sync::lock(&self.received);
        if !received.contains_key(&origin) && received.len() >= MAX_ORIGINS {
            let oldest = received
                .iter()
                .min_by_key(|(_, f)| f.heard)
                .map(|(id, _)| *id);
            if let Some(oldest) = oldest {
                received.remove(&oldest);
            }
        }
        let entry = received.entry(origin).or_default();
        entry.placements = placements;
        entry.heard = Some(Instant::now());
        entry.gone = false;
        if dial.is_some() {
            entry.dial = dial;
        }
    }

    /// Origins of `replica_origins` not heard from within `lease` nor asked within it: to ask.
    fn to_ask(
        &self,
        replica_origins: &[PublicKey],
        lease: Duration,
    ) -> Vec<(PublicKey, Option<EndpointAddr>)> {
        let mut received = micro_base::sync::lock(&self.received);
        let mut out = Vec::new();
        for origin in replica_origins {
            let entry = received.entry(*origin).or_default();
            let stale = entry.heard.is_none_or(|h| h.elapsed() > lease);
            let asked_lately = entry.asked.is_some_and(|a| a.elapsed() < lease);
            if stale && !asked_lately {
                entry.asked = Some(Instant::now());
                out.push((*origin, entry.dial.clone()));
            }
        }
        out
    }

    fn left(&self, origin: &PublicKey) {
        if let Some(entry) = micro_base::sync::lock(&self.received).get_mut(origin) {
            entry.gone = true;
        }
    }

    fn received(&self) -> HashMap<PublicKey, FromOrigin> {
        micro_base::sync::lock(&self.received).clone()
    }

    /// Notes that `service` has answered `calls` calls since `counting_since`; answers its
    /// calls per minute over the last window (extrapolated while the window is young).
    fn calls_per_minute(&self, service: &str, calls: u64, counting_since: Instant) -> u64 {
        let now = Instant::now();
        let mut demand = micro_base::sync::lock(&self.demand);
        let samples = demand.entry(service.to_string()).or_default();
        if samples.is_empty() {
            samples.push_back((counting_since, 0));
        }
        samples.push_back((now, calls));
        while samples.len() > 2 && samples.get(1).is_some_and(|s| now - s.0 >= WINDOW) {
            samples.pop_front();
        }
        let Some(&(since, first)) = samples.front() else {
            return 0;
        };
        let span = now.duration_since(since).as_secs_f64();
        if span < 1.0 {
            return 0;
        }
        (calls.saturating_sub(first) as f64 * 60.0 / span).round() as u64
    }

    /// Forgets the demand of services no longer here.
    fn forget_gone(&self, here: impl Fn(&str) -> bool) {
        let mut demand = micro_base::sync::lock(&self.demand);
        demand.retain(|service, _| here(service));
    }

    /// Whether the replica of `service` has gone unplaced for the grace period; `placed`
    /// says whether its origin places it this round (or the replica is gone: forget it).
    fn unplaced_for_long(&self, service: &str, placed: bool) -> bool {
        let mut unplaced = micro_base::sync::lock(&self.unplaced);
        if placed {
            unplaced.remove(service);
            return false;
        }
        let since = *unplaced
            .entry(service.to_string())
            .or_insert_with(Instant::now);
        since.elapsed() >= UNPLACED_GRACE
    }

    fn failed_lately(&self, key: &(String, String)) -> bool {
        let failed = micro_base::sync::lock(&self.failed);
        failed.get(key).is_some_and(|at| at.elapsed() < RETRY_AFTER)
    }

    fn note_failure(&self, key: (String, String)) {
        let mut failed = micro_base::sync::lock(&self.failed);
        failed.retain(|_, at| at.elapsed() < RETRY_AFTER);
        failed.insert(key, Instant::now());
    }
}

/// Places this node's services and runs what other nodes placed here, every
/// `governance.place_interval_ms`.
pub async fn place_loop(local: Arc<dyn Local>, net: Arc<Network>) {
    let every = Duration::from_millis(net.config.governance.place_interval_ms.max(50));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if local.governance_if_loaded().is_none() {
            continue;
        }
        place_own(local.as_ref(), &net).await;
        run_placed(local.as_ref(), &net).await;
    }
}

/// Asks governance where each service deployed here should run, and tells the nodes placed.
async fn place_own(local: &dyn Local, net: &Network) {
    let Ok(governance) = local.governance().await else {
        return;
    };
    // The peers this node checks and that answer: a bounded set, never the whole network.
    let peers: Vec<(PublicKey, u32)> = net
        .peers
        .all()
        .into_iter()
        .filter(|(_, p)| p.healthy() && p.last_seen_ms.is_some())
        .map(|(id, p)| (id, p.load))
        .collect();
    let ids: Vec<String> = peers.iter().map(|(id, _)| id.to_string()).collect();
    let previous = net.placement.announced();
    let load = local.load();
    let askers = &net.askers;
    let mut placements = Vec::new();
    for record in local.deployed() {
        if record.private || record.replica_of.is_some() {
            continue;
        }
        let demand = net
            .placement
            .calls_per_minute(&record.name, record.calls, record.since);
        let pinned = format!("{}@{}", record.name, record.version);
        let serving: HashSet<PublicKey> = net
            .providers
            .cached_now(net, &pinned)
            .iter()
            .map(|p| p.node)
            .collect();
        let mut candidates = vec![(askers.this(), load, true)];
        for ((id, load), name) in peers.iter().zip(&ids) {
            let placed_before = previous.iter().any(|p| {
                p.service == record.name
                    && p.version == record.version
                    && p.nodes.contains(id.as_bytes())
            });
            candidates.push((
                askers.of(name, net),
                *load,
                placed_before || serving.contains(id),
            ));
        }
        let chosen = match governance.place(&record.name, demand, &candidates).await {
            Ok(chosen) => chosen,
            Err(e) => {
                tracing::warn!(service = %record.name, error = %e, "governance failed to place; nothing placed");
                continue;
            }
        };
        let nodes: Vec<[u8; 32]> = chosen
            .iter()
            .filter(|id| id.as_str() != askers.this_node())
            .filter_map(|id| micro_base::identity::parse_node_id(id).ok())
            .filter(|id| peers.iter().any(|(p, _)| p == id))
            .map(|id| *id.as_bytes())
            .collect();
        if !nodes.is_empty() {
            placements.push(Assignment {
                service: record.name.clone(),
                version: record.version.clone(),
                component: record.component.clone(),
                nodes,
            });
        }
    }
    net.placement
        .forget_gone(|service| local.deployed_one(service).is_some());
    for p in &placements {
        tracing::debug!(service = %p.service, nodes = p.nodes.len(), "placed");
    }
    // Every node placed now, and every node placed before (to take back what it no longer
    // runs for this node), hears all this node places there.
    let mut targets: Vec<[u8; 32]> = Vec::new();
    for p in previous.iter().chain(&placements) {
        for n in &p.nodes {
            if !targets.contains(n) {
                targets.push(*n);
            }
        }
    }
    net.placement.set_announced(placements);
    let told = targets
        .iter()
        .filter_map(|n| PublicKey::from_bytes(n).ok())
        .map(|node| tell(net, node));
    futures::future::join_all(told).await;
}

/// Tells `node` everything this node places on it now.
async fn tell(net: &Network, node: PublicKey) {
    let Some(addr) = net.addr_of(&node) else {
        return;
    };
    let request = Request::Place {
        from: net.dht.own_contact(net),
        placements: net.placement.placed_on(&node),
    };
    let what = "telling a node what is placed on it";
    net.exchange(
        &addr,
        &request,
        64 * 1024,
        net.request_time(),
        what,
        |r| match r {
            Reply::Placements(_) => Ok(()),
            other => Err(Box::new(other)),
        },
    )
    .await;
}

/// How long a replica's node goes without hearing from the origin before it asks.
fn lease(net: &Network) -> Duration {
    Duration::from_millis(net.config.governance.place_interval_ms.max(50) * 3)
        .max(Duration::from_secs(15))
}

/// Asks `origin` what it places on this node; none when it cannot be reached.
async fn ask(
    net: &Network,
    origin: PublicKey,
    dial: Option<EndpointAddr>,
) -> Option<Vec<Assignment>> {
    let addr = dial.or_else(|| net.addr_of(&origin))?;
    let what = "asking what is placed here";
    net.exchange(
        &addr,
        &Request::Placed,
        64 * 1024,
        net.request_time(),
        what,
        |r| match r {
            Reply::Placements(placements) => Ok(placements),
            other => Err(Box::new(other)),
        },
    )
    .await
}

/// Runs the replicas other nodes placed here, and stops those their origin no longer places.
async fn run_placed(local: &dyn Local, net: &Network) {
    let me = *net.identity.public().as_bytes();
    // Origins of the replicas here not heard from lately are asked; one that does not answer
    // has left, and its replicas serve on.
    let origins: Vec<PublicKey> = local
        .deployed()
        .iter()
        .filter_map(|d| d.replica_of.as_deref())
        .filter_map(|o| micro_base::identity::parse_node_id(o).ok())
        .collect();
    for (origin, dial) in net.placement.to_ask(&origins, lease(net)) {
        match ask(net, origin, dial.clone()).await {
            Some(placements) => net.placement.took(origin, dial, placements),
            None => net.placement.left(&origin),
        }
    }
    let received = net.placement.received();
    let mut wanted: HashSet<(String, String)> = HashSet::new();
    for (origin, from) in &received {
        if from.gone {
            continue;
        }
        for placement in from.placements.iter().filter(|p| p.nodes.contains(&me)) {
            let origin_id = origin.to_string();
            wanted.insert((placement.service.clone(), origin_id.clone()));
            let existing = local.deployed_one(&placement.service);
            if let Some(d) = &existing {
                // A service of this node's own, or another node's replica: left alone.
                if d.replica_of.as_deref() != Some(origin_id.as_str()) {
                    continue;
                }
                if d.component == placement.component {
                    continue;
                }
            }
            let key = (placement.service.clone(), placement.component.clone());
            if net.placement.failed_lately(&key) {
                continue;
            }
            if let Err(e) = run_replica(local, net, *origin, from.dial.clone(), placement).await {
                tracing::warn!(service = %placement.service, origin = %origin.fmt_short(), error = %e, "replica not run");
                net.placement.note_failure(key);
            }
        }
    }
    // A replica whose origin is still here but has placed it no more for a while is stopped;
    // one whose origin left keeps serving.
    for deployment in local.deployed() {
        let Some(origin) = deployment.replica_of.clone() else {
            continue;
        };
        let origin_here = micro_base::identity::parse_node_id(&origin)
            .ok()
            .and_then(|id| received.get(&id))
            .is_some_and(|f| !f.gone && f.heard.is_some());
        let name = &deployment.name;
        let placed = !origin_here || wanted.contains(&(name.clone(), origin));
        if net.placement.unplaced_for_long(name, placed) {
            match local.stop(name) {
                Ok(_) => {
                    net.placement.unplaced_for_long(name, true);
                    tracing::info!(service = %name, "replica no longer placed here; stopped")
                }
                Err(e) => {
                    tracing::error!(service = %name, error = %format!("{e:#}"), "stopping a replica")
                }
            }
        }
    }
}

/// Fetches a placed component (from its origin, else from another node placed with it),
/// checks it against the announced hash and deploys it as a replica.
async fn run_replica(
    local: &dyn Local,
    net: &Network,
    origin: PublicKey,
    origin_dial: Option<EndpointAddr>,
    placement: &Assignment,
) -> Result<(), String> {
    if micro_base::names::check_name(&placement.service).is_err() {
        return Err(format!("invalid service name {:?}", placement.service));
    }
    tracing::info!(service = %placement.service, version = %placement.version, origin = %origin.fmt_short(), "placed here: fetching the component");
    let mut sources = vec![(origin, origin_dial)];
    sources.extend(
        placement
            .nodes
            .iter()
            .filter_map(|n| PublicKey::from_bytes(n).ok())
            .filter(|n| *n != net.identity.public())
            // A few co-placed nodes at most: a placement names them, not this node's choice.
            .take(MAX_FETCH_SOURCES)
            .map(|n| (n, None)),
    );
    let mut errors = Vec::new();
    let mut wasm = None;
    for (source, dial) in sources {
        match fetch(net, source, dial, &placement.component).await {
            Ok(bytes) => {
                wasm = Some(bytes);
                break;
            }
            Err(e) => errors.push(format!("{}: {e}", source.fmt_short())),
        }
    }
    let Some(wasm) = wasm else {
        return Err(format!("no node gave the component: {}", errors.join("; ")));
    };
    let origin_info = Origin {
        version: Some(placement.version.clone()),
        source: Some(format!(
            "replica of {} from node {origin}",
            placement.service
        )),
        replica_of: Some(origin.to_string()),
        ..Origin::default()
    };
    local
        .deploy_replica(&placement.service, wasm, origin_info)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(service = %placement.service, version = %placement.version, origin = %origin.fmt_short(), "running a replica");
    Ok(())
}

/// Fetches the component with content hash `hash` from `peer` and checks it.
async fn fetch(
    net: &Network,
    peer: PublicKey,
    dial: Option<EndpointAddr>,
    hash: &str,
) -> Result<Vec<u8>, String> {
    let addr = dial
        .or_else(|| net.addr_of(&peer))
        .ok_or_else(|| "no address known".to_string())?;
    let request = Request::Component {
        hash: hash.to_string(),
    };
    let limit = net.config.limits.max_component_bytes + 64 * 1024;
    let (reply, wasm) = net
        .pool
        .request(&addr, &request, &[], limit, Instant::now() + FETCH_TIME)
        .await
        .map_err(|e| e.to_string())?;
    match reply {
        Reply::Component(Ok(_)) => {}
        Reply::Component(Err(e)) | Reply::Refused(e) => return Err(e),
        other => return Err(format!("unexpected reply {other:?}")),
    }
    let got = micro_base::names::content_hash(&wasm);
    if got != hash {
        // A peer that hands over other bytes than the hash it was asked for misbehaves.
        net.conduct.invalid(
            peer,
            format!("component {hash} answered with bytes of hash {got}"),
        );
        return Err(format!(
            "the bytes have hash {got}, not the announced {hash}"
        ));
    }
    Ok(wasm)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> PublicKey {
        iroh::SecretKey::from_bytes(&[seed; 32]).public()
    }

    fn placed(service: &str, nodes: &[PublicKey]) -> Assignment {
        Assignment {
            service: service.into(),
            version: "v1".into(),
            component: "c".into(),
            nodes: nodes.iter().map(|n| *n.as_bytes()).collect(),
        }
    }

    #[test]
    fn an_origin_not_heard_from_is_asked_once_per_lease_and_a_push_counts_as_heard() {
        let placement = Placement::default();
        let (heard, silent) = (key(1), key(2));
        let lease = Duration::from_secs(60);
        placement.took(heard, None, vec![placed("hello", &[key(9)])]);
        let asked: Vec<PublicKey> = placement
            .to_ask(&[heard, silent], lease)
            .into_iter()
            .map(|(o, _)| o)
            .collect();
        assert_eq!(asked, vec![silent], "the origin that pushed is not asked");
        assert!(
            placement.to_ask(&[heard, silent], lease).is_empty(),
            "not asked again within the lease"
        );
        placement.left(&silent);
        let received = placement.received();
        assert!(received[&silent].gone && !received[&heard].gone);
        // A push from an origin taken to have left says it is back.
        placement.took(silent, None, Vec::new());
        assert!(!placement.received()[&silent].gone);
    }

    #[test]
    fn what_a_node_places_on_a_peer_is_what_names_it() {
        let placement = Placement::default();
        let (b, c) = (key(3), key(4));
        placement.set_announced(vec![placed("hello", &[b, c]), placed("other", &[c])]);
        let on_b: Vec<String> = placement
            .placed_on(&b)
            .into_iter()
            .map(|p| p.service)
            .collect();
        assert_eq!(on_b, vec!["hello"]);
        assert_eq!(placement.placed_on(&c).len(), 2);
        assert!(placement.placed_on(&key(5)).is_empty());
    }

    #[test]
    fn origins_are_bounded_and_the_least_recently_heard_goes_first() {
        let origin = |i: usize| {
            let mut seed = [7u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            iroh::SecretKey::from_bytes(&seed).public()
        };
        let placement = Placement::default();
        for i in 0..MAX_ORIGINS + 10 {
            placement.took(origin(i), None, vec![placed("s", &[]); MAX_PLACEMENTS + 5]);
        }
        let received = placement.received();
        assert_eq!(received.len(), MAX_ORIGINS);
        assert!(
            received
                .values()
                .all(|f| f.placements.len() == MAX_PLACEMENTS)
        );
        assert!(
            !received.contains_key(&origin(0)),
            "the first heard went first"
        );
        assert!(received.contains_key(&origin(MAX_ORIGINS + 9)));
    }
}
