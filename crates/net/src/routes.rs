//! Routes: for a service, the nodes that serve it, cheapest first (this node, then peers by
//! measured round-trip time and load), and calls that fail over along them. The other nodes
//! are the providers the DHT names (`providers`, cached by interest).

use super::contact::EntryBody;
use super::provide::ServiceEntry;
use super::providers::{FindError, Provider};
use super::wire::{CallHeader, Reply, Request};
use super::{NetError, Network};
use crate::local::Local;
use iroh::{EndpointAddr, PublicKey};
use micro_core::transport::CallFailure;
use micro_runtime::wit::micro::network::types::{
    CallError, Caller, Request as CallRequest, Response,
};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Cost of a peer whose round-trip time is not measured yet, in µs.
const UNMEASURED_US: u64 = 50_000;
/// Cost of one call in flight on a peer, in µs.
const LOAD_US: u64 = 200;

/// One way to reach a service.
#[derive(Debug, Clone, Serialize)]
pub struct Route {
    /// The serving node's id.
    pub node: String,
    /// The route is this node.
    pub local: bool,
    /// The version served there.
    pub version: String,
    /// Measured round-trip time to the node, in µs.
    pub rtt_us: Option<u64>,
    /// Hops from this node (0: here; 1: a direct QUIC connection).
    pub hops: u32,
    /// Calls in flight there.
    pub load: u32,
    /// What the route costs, in µs-equivalents; the cheapest healthy route is used first.
    pub cost: u64,
    /// The node answers pings.
    pub healthy: bool,
    /// The serving node's id and what it announced of the service (none for this node).
    #[serde(skip)]
    pub remote: Option<(PublicKey, ServiceEntry)>,
    /// How to dial it, as its own signed entry says.
    #[serde(skip)]
    pub dial: Option<EndpointAddr>,
}

/// The routes to `name` (a service, or `name@version` for calls pinned to one version), best
/// first: this node's (`here`: its id, and the version it serves with its load) first, then
/// `providers`, the other nodes that provide the name.
pub fn routes(
    here: Option<(&str, String, u32)>,
    net: Option<&Network>,
    name: &str,
    providers: &[Provider],
) -> Vec<Route> {
    let (_, version) = micro_base::names::split_version(name);
    let mut out = Vec::new();
    if let Some((id, served, load)) = here
        && version.is_none_or(|v| v == served)
    {
        out.push(Route {
            node: id.to_string(),
            local: true,
            version: served,
            rtt_us: Some(0),
            hops: 0,
            load,
            cost: 0,
            healthy: true,
            remote: None,
            dial: None,
        });
    }
    let Some(net) = net else {
        return out;
    };
    for provider in providers {
        let id = provider.node;
        let entry = service_entry(&provider.entry.body);
        let peer = net.peers.get(&id);
        let rtt_us = peer
            .as_ref()
            .and_then(|p| p.rtt)
            .map(|r| r.as_micros() as u64);
        let load = peer.as_ref().map_or(provider.entry.body.load, |p| p.load);
        let healthy = peer.as_ref().is_none_or(|p| p.healthy()) && !net.providers.unreachable(&id);
        out.push(Route {
            node: id.to_string(),
            local: false,
            version: entry.version.clone(),
            rtt_us,
            hops: 1,
            load,
            cost: 1 + rtt_us.unwrap_or(UNMEASURED_US) + u64::from(load) * LOAD_US,
            healthy,
            remote: Some((id, entry)),
            dial: provider.dial.clone(),
        });
    }
    out.sort_by_key(|r| (!r.healthy, r.cost));
    out
}

/// A provider entry as the service it names.
pub fn service_entry(body: &EntryBody) -> ServiceEntry {
    let (base, _) = micro_base::names::split_version(&body.name);
    ServiceEntry {
        name: base.to_string(),
        version: body.version.clone(),
        interface: body.interface,
        methods: body.methods.clone(),
        http: body.http,
        serving: true,
    }
}

/// The routes to `name` as far as this node knows them now, without asking the network.
pub fn known(here: Option<(&str, String, u32)>, net: Option<&Network>, name: &str) -> Vec<Route> {
    let providers = net
        .map(|net| net.providers.cached_now(net, name))
        .unwrap_or_default();
    routes(here, net, name, &providers)
}

/// The routes to `name`, its providers looked up in the network when this node does not know
/// them.
pub async fn find(
    here: Option<(&str, String, u32)>,
    net: Option<&Arc<Network>>,
    name: &str,
) -> Result<Vec<Route>, FindError> {
    resolve(here, net, name, false).await
}

/// The routes to `name` as the network says now, looked up whatever this node knows (someone
/// asked for them by name).
pub async fn look_up(
    here: Option<(&str, String, u32)>,
    net: Option<&Arc<Network>>,
    name: &str,
) -> Result<Vec<Route>, FindError> {
    resolve(here, net, name, true).await
}

async fn resolve(
    here: Option<(&str, String, u32)>,
    net: Option<&Arc<Network>>,
    name: &str,
    force: bool,
) -> Result<Vec<Route>, FindError> {
    let providers = match net {
        Some(net) if force => net.providers.refresh(net, name).await?,
        Some(net) => net.providers.find(net, name).await?,
        None => Vec::new(),
    };
    Ok(routes(here, net.map(|n| &**n), name, &providers))
}

/// Calls a service that does not run here on the best peer that serves it, failing over to
/// the next when a peer cannot be reached (the call never started there). `token`, an API
/// token a client gave this node, travels with the call.
pub async fn call(
    local: &dyn Local,
    net: &Arc<Network>,
    caller: Caller,
    token: Option<&str>,
    deadline: Instant,
    request: CallRequest,
) -> Result<Response, CallFailure> {
    let (name, version) = micro_base::names::split_version(&request.service);
    let candidates: Vec<Route> = match find(None, Some(net), &request.service).await {
        Ok(candidates) => candidates,
        Err(e) => return Err(CallFailure::Call(CallError::Unavailable(e.to_string()))),
    };
    if candidates.is_empty() {
        return Err(CallFailure::Call(CallError::NotFound(match version {
            Some(v) => format!("no node in the network serves {name}@{v}"),
            None => format!("no service named {name:?} in the network"),
        })));
    }
    let header = |timeout: Duration| CallHeader {
        service: request.service.clone(),
        method: request.method.clone(),
        content_type: request.content_type.clone(),
        metadata: request.metadata.clone(),
        caller_service: caller.service.clone(),
        depth: caller.depth,
        timeout_ms: timeout.as_millis() as u64,
        token: token.map(str::to_string),
    };
    // Every node serving it announced its methods: a method none has is not found anywhere.
    let has_method = |r: &Route| {
        r.remote
            .as_ref()
            .is_some_and(|(_, s)| s.http || s.methods.contains(&request.method))
    };
    if !candidates.iter().any(has_method) {
        let mut methods: Vec<&str> = candidates
            .iter()
            .filter_map(|r| r.remote.as_ref())
            .flat_map(|(_, s)| s.methods.iter().map(String::as_str))
            .collect();
        methods.sort_unstable();
        methods.dedup();
        return Err(CallFailure::Call(CallError::NotFound(format!(
            "{} has no method {:?} on any node serving it; it answers {}",
            request.service,
            request.method,
            if methods.is_empty() {
                "none".to_string()
            } else {
                methods.join(", ")
            }
        ))));
    }
    let limit = net.frame_limit();
    let mut failures = Vec::new();
    let mut not_found = None;
    let mut tried: Vec<iroh::PublicKey> = Vec::new();
    let mut candidates = candidates;
    // The cache may know only some providers (a lookup ends at the first answer with any):
    // when every known one failed to take the call, the network is asked once more, for the
    // others.
    for round in 0..2 {
        if round == 1 {
            if failures.is_empty() || deadline <= Instant::now() {
                break;
            }
            candidates = match resolve(None, Some(net), &request.service, true).await {
                Ok(found) => found,
                Err(e) => {
                    failures.push(format!("looking the service up again: {e}"));
                    break;
                }
            };
        }
        for route in &candidates {
            let Some((id, _)) = route.remote else {
                continue;
            };
            if tried.contains(&id) {
                continue;
            }
            let Some(addr) = route.dial.clone().or_else(|| net.addr_of(&id)) else {
                continue;
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if !tried.is_empty() {
                net.stats.failovers.fetch_add(1, Ordering::Relaxed);
            }
            tried.push(id);
            net.stats.calls_out.fetch_add(1, Ordering::Relaxed);
            let request_frame = Request::Call(header(left));
            let started = Instant::now();
            let exchange =
                net.pool
                    .request(&addr, &request_frame, &request.payload, limit, deadline);
            let outcome = watched(net, &addr, exchange, deadline).await;
            observe_call(local, &id, &outcome, started);
            if outcome.is_ok() {
                net.providers.reached(&id);
            }
            match outcome {
                Ok((Reply::Called(outcome, charged), payload)) if charged > 0 => {
                    if let Ok(ledger) = local.ledger().await {
                        ledger.owe(&id.to_string(), name, charged);
                    }
                    return match outcome {
                        Ok(ok) => Ok(Response {
                            payload,
                            content_type: ok.content_type,
                            metadata: ok.metadata,
                        }),
                        Err(e) => Err(e.into()),
                    };
                }
                Ok((Reply::Called(Ok(ok), _), payload)) => {
                    return Ok(Response {
                        payload,
                        content_type: ok.content_type,
                        metadata: ok.metadata,
                    });
                }
                // The service left that node since its entry was made: try the next.
                Ok((Reply::Called(Err(super::wire::WireCallError::NotFound(why)), _), _)) => {
                    net.providers.gone(&request.service, &id);
                    failures.push(format!("{}: {why}", id.fmt_short()));
                    not_found = Some(why);
                }
                Ok((Reply::Called(Err(e), _), _)) => return Err(e.into()),
                Ok((other, _)) => {
                    failures.push(format!("{}: unexpected reply {other:?}", id.fmt_short()));
                }
                Err(NetError::Unreachable(why)) => {
                    net.peers.missed(&id);
                    net.providers.failed(&request.service, &id);
                    failures.push(why);
                }
                // The serving node died with the call in flight: the replica takes it (a call
                // cut off this way may run twice; one that got its answer never does).
                Err(NetError::Lost(why)) => {
                    net.peers.missed(&id);
                    net.providers.failed(&request.service, &id);
                    net.pool.forget(&id);
                    failures.push(why);
                }
                Err(NetError::Timeout(why)) => return Err(CallError::Timeout(why).into()),
                Err(e) => {
                    return Err(CallError::Unavailable(format!("{}: {e}", id.fmt_short())).into());
                }
            }
        }
    }
    if let (Some(why), true) = (not_found, failures.len() == 1) {
        return Err(CallError::NotFound(why).into());
    }
    Err(CallError::Unavailable(format!(
        "no node serving {} could take the call: {}",
        request.service,
        failures.join("; ")
    ))
    .into())
}

/// A call in flight this long without an answer has its node pinged, and again as long as it
/// answers.
const SLOW_CALL: Duration = Duration::from_millis(500);
/// The least time such a ping gets, whatever the round trip measured.
const PING_FLOOR: Duration = Duration::from_millis(500);

/// Waits for the answer to a call sent to the node at `addr`, checking while it is slow that
/// the node is still there: one that died with the call in flight answers no ping, and the
/// call is taken as lost (so it fails over) within about a second, instead of when the dead
/// connection is found out (two missed heartbeats). A node too busy to answer a ping in time
/// is taken as lost too: the call may then run twice, as one cut off by a death may.
async fn watched<T>(
    net: &Network,
    addr: &EndpointAddr,
    exchange: impl Future<Output = Result<T, NetError>>,
    deadline: Instant,
) -> Result<T, NetError> {
    tokio::pin!(exchange);
    let mut check_at = Instant::now() + SLOW_CALL;
    loop {
        tokio::select! {
            outcome = &mut exchange => return outcome,
            () = tokio::time::sleep_until(check_at.into()) => {}
        }
        let rtt = net
            .peers
            .get(&addr.id)
            .and_then(|p| p.rtt)
            .unwrap_or_default();
        let within = (rtt * 8).clamp(PING_FLOOR, net.request_time().max(PING_FLOOR));
        let ping_deadline = (Instant::now() + within).min(deadline);
        let ping = net
            .pool
            .request(addr, &Request::Ping, &[], 4096, ping_deadline);
        tokio::select! {
            outcome = &mut exchange => return outcome,
            pong = ping => match pong {
                Ok(_) => check_at = Instant::now() + SLOW_CALL,
                Err(e) => {
                    net.stats.calls_lost_in_flight.fetch_add(1, Ordering::Relaxed);
                    return Err(NetError::Lost(format!(
                        "node {} stopped answering with the call in flight: {e}",
                        addr.id.fmt_short()
                    )));
                }
            },
        }
    }
}

/// Tells governance how a peer handled one of our calls: answered (an error it answered is
/// still an answer), failed to answer, or ran out of time. Reputation is made of these.
fn observe_call<T>(
    local: &dyn Local,
    id: &iroh::PublicKey,
    outcome: &Result<(Reply, T), NetError>,
    started: Instant,
) {
    use micro_core::system::governance::{Observation, Served};
    let Some(governance) = local.governance_if_loaded() else {
        return;
    };
    let node_id = id.to_string();
    governance.observe(match outcome {
        Ok(_) => Observation::Served(Served {
            node: node_id,
            micros: started.elapsed().as_micros() as u64,
        }),
        Err(NetError::Timeout(_)) => Observation::TimedOut(node_id),
        Err(_) => Observation::Failed(node_id),
    });
}
