//! Automatic placement: where services run is governance's to say, not anyone's command.
//!
//! Every `governance.place_interval_ms` a node asks its governance (`place`) where each service
//! deployed on it should run, given its demand and the candidate nodes, and announces the
//! answer in its signed record. A node named there fetches the component from a node that has
//! it, checks it against the announced hash, asks its own governance (`approve-deploy`, as a
//! replica) and runs it. Replicas announce themselves like any service, so calls find them;
//! they keep serving when the origin node leaves, and stop only when the origin, still there,
//! no longer places them.

use crate::Network;
use crate::local::Local;
use crate::records::{self, NodeRecord};
use crate::wire::{Reply, Request};
use iroh::PublicKey;
use micro_core::deploy::Origin;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Demand is measured over this window.
const WINDOW: Duration = Duration::from_secs(60);
/// A fetch or deploy of a replica that failed is tried again after this long.
const RETRY_AFTER: Duration = Duration::from_secs(30);
/// How long fetching a component from one peer may take.
const FETCH_TIME: Duration = Duration::from_secs(30);
/// How long a replica's origin must go on not placing it before it stops: an origin that just
/// restarted has not measured demand again yet, and one round's answer is no reason to churn.
const UNPLACED_GRACE: Duration = Duration::from_secs(60);

/// What this node placed, and how busy its services are.
#[derive(Default)]
pub struct Placement {
    /// Placements announced in this node's record.
    announced: Mutex<Vec<records::Placement>>,
    /// Per service: (when, calls so far) over the last window.
    demand: Mutex<HashMap<String, VecDeque<(Instant, u64)>>>,
    /// Replicas that failed to fetch or deploy, by (service, component), and when.
    failed: Mutex<HashMap<(String, String), Instant>>,
    /// Replicas (by service) whose origin, still here, stopped placing them, and since when.
    unplaced: Mutex<HashMap<String, Instant>>,
    /// Bumped when the placements to announce change.
    changed: micro_base::Changes,
}

impl Placement {
    /// A receiver that sees every change of the placements to announce.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.watch()
    }

    /// The placements to announce.
    pub fn announced(&self) -> Vec<records::Placement> {
        micro_base::sync::lock(&self.announced).clone()
    }

    /// Sets the placements to announce; watchers hear of it when they changed.
    fn set_announced(&self, placements: Vec<records::Placement>) {
        let mut announced = micro_base::sync::lock(&self.announced);
        let changed = *announced != placements;
        *announced = placements;
        drop(announced);
        if changed {
            self.changed.notify();
        }
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

/// Asks governance where each service deployed here should run, and announces it.
async fn place_own(local: &dyn Local, net: &Network) {
    let Ok(governance) = local.governance().await else {
        return;
    };
    let live: Vec<_> = net
        .directory
        .live()
        .into_iter()
        .filter(|l| !l.record.leaving && net.peers.get(&l.id).is_some_and(|p| p.healthy()))
        .collect();
    let ids: Vec<String> = live.iter().map(|l| l.id.to_string()).collect();
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
        let mut candidates = vec![(askers.this(), load, true)];
        for (l, id) in live.iter().zip(&ids) {
            let runs_it = l
                .record
                .services
                .iter()
                .any(|s| s.name == record.name && s.version == record.version);
            candidates.push((askers.of(id, net), l.record.load, runs_it));
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
            .filter(|id| live.iter().any(|l| l.id == *id))
            .map(|id| *id.as_bytes())
            .collect();
        if !nodes.is_empty() {
            placements.push(records::Placement {
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
    net.placement.set_announced(placements);
}

/// Runs the replicas other nodes placed here, and stops those their origin no longer places.
async fn run_placed(local: &dyn Local, net: &Network) {
    let me = *net.identity.public().as_bytes();
    let live: HashMap<PublicKey, NodeRecord> = net
        .directory
        .live()
        .into_iter()
        .map(|l| (l.id, l.record))
        .collect();
    let mut wanted: HashSet<(String, String)> = HashSet::new();
    for (origin, record) in &live {
        for placement in record.placements.iter().filter(|p| p.nodes.contains(&me)) {
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
            if let Err(e) = run_replica(local, net, *origin, placement).await {
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
            .is_some_and(|id| live.contains_key(&id));
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
    placement: &records::Placement,
) -> Result<(), String> {
    if micro_base::names::check_name(&placement.service).is_err() {
        return Err(format!("invalid service name {:?}", placement.service));
    }
    tracing::info!(service = %placement.service, version = %placement.version, origin = %origin.fmt_short(), "placed here: fetching the component");
    let mut sources = vec![origin];
    sources.extend(
        placement
            .nodes
            .iter()
            .filter_map(|n| PublicKey::from_bytes(n).ok())
            .filter(|n| *n != net.identity.public()),
    );
    let mut errors = Vec::new();
    let mut wasm = None;
    for source in sources {
        match fetch(net, source, &placement.component).await {
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
async fn fetch(net: &Network, peer: PublicKey, hash: &str) -> Result<Vec<u8>, String> {
    let addr = net
        .addr_of(&peer)
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
