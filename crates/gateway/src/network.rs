//! `/api/network/…`: the network as this node sees it — its identity and ticket, the nodes it
//! knows, the services they serve, routes and the peer graph. Every view is local (the network
//! is too large to list); a named service is looked up in the network now.

use super::Gateway;
use super::reply::{self, Body};
use hyper::{Response, StatusCode};
use micro_core::catalog;
use micro_core::node::Node;
use micro_net::routes;
use serde_json::{Value, json};

/// Routes `/api/network/{rest…}` (GET only).
pub async fn handle(gw: &Gateway, rest: &[&str], query: &str) -> Response<Body> {
    let value = match rest {
        [] => summary(gw),
        ["nodes"] => nodes(gw),
        ["services"] => services(gw, only(query)).await,
        ["routes"] => all_routes(gw, only(query)).await,
        ["graph"] => graph(gw),
        _ => {
            return reply::error(
                StatusCode::NOT_FOUND,
                "not-found",
                format!("no API GET /api/network/{}", rest.join("/")),
            );
        }
    };
    reply::json(StatusCode::OK, &value)
}

fn summary(gw: &Gateway) -> Value {
    let node = &gw.node;
    let Some(net) = gw.net.as_ref() else {
        return json!({ "node": node.id, "enabled": false });
    };
    json!({
        "node": node.id,
        "enabled": true,
        "protocol": micro_net::wire::PROTOCOL,
        "ticket": net.ticket(),
        "addrs": net.endpoint.bound_sockets(),
        "neighbours": net.neighbours().iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        "peers": net.peers.all().len(),
        "addresses": net.addresses.len(),
        "connections": net.pool.len(),
        "nodes": net.peers.all().len() + net.dht.table_len().min(MAX_LISTED_CONTACTS) + 1,
        "dht": {
            "contacts": net.dht.table_len(),
            "entries_held": net.dht.entries_held(),
            "names_provided": net.dht.provided().len(),
            "names_cached": net.providers.len(),
        },
        "events": events(net),
        "relays": net.config.network.relays,
        "public_lookup": net.config.network.public_lookup,
        "mdns": net.config.network.mdns,
        "stats": net.stats.snapshot(),
        "traffic": net.pool.traffic.snapshot(),
    })
}

/// This node's subscriptions at other nodes' publishers and the streams they use.
fn events(net: &micro_net::Network) -> Value {
    let (subscriptions, streams) = net.events.counts();
    json!({
        "subscriptions": subscriptions,
        "streams": streams,
        "topics_published": net.events.published_topics(),
        "missed": net.events.dropped(),
    })
}

fn local_services(node: &Node) -> Vec<String> {
    node.registry
        .list()
        .iter()
        .map(|d| d.record.name.clone())
        .collect()
}

/// Nodes of the DHT routing table a view lists at most (the table holds a few hundred at most).
const MAX_LISTED_CONTACTS: usize = 256;

/// The nodes this node knows — a local view of a network too large to list: the peers it
/// checks (overlay neighbours, the nodes it joined through or found on its LAN, the nodes it
/// routes to) with their health, and the contacts of its DHT routing table, not checked. The
/// services listed for a node are those this node found it provides.
fn nodes(gw: &Gateway) -> Value {
    let node = &gw.node;
    let mut out = vec![json!({
        "node": node.id,
        "self": true,
        "source": "self",
        "governance": node.governance_if_loaded().map(|g| g.current().label()),
        "healthy": true,
        "rtt_us": 0,
        "load": node.load.load(std::sync::atomic::Ordering::Relaxed),
        "services": local_services(node),
    })];
    let Some(net) = gw.net.as_ref() else {
        return Value::Array(out);
    };
    // How this node's governance trusts each peer, as of its last round of observations.
    let reports = net.conduct.reports();
    let reputation = |id: &iroh::PublicKey| {
        reports
            .iter()
            .find(|r| r.node == *id.as_bytes())
            .map(|r| r.score())
    };
    let mut services: std::collections::HashMap<iroh::PublicKey, Vec<String>> =
        std::collections::HashMap::new();
    for (name, providers) in net.providers.known(net) {
        if name.contains('@') || name.contains(':') {
            continue;
        }
        for p in providers {
            services.entry(p.node).or_default().push(name.clone());
        }
    }
    let mut services_of = |id: &iroh::PublicKey| services.remove(id).unwrap_or_default();
    let mut seen = std::collections::HashSet::new();
    for (id, p) in net.peers.all() {
        seen.insert(id);
        out.push(json!({
            "node": id.to_string(),
            "self": false,
            "source": p.source,
            "healthy": p.healthy(),
            "first_seen_ms": p.first_seen_ms,
            "last_seen_ms": p.last_seen_ms,
            "rtt_us": p.rtt.map(|r| r.as_micros() as u64),
            "load": p.load,
            "services": services_of(&id),
            "governance": p.governance,
            // The protocol its connection speaks (none without one open now).
            "protocol": net.pool.protocol(&id),
            "addrs": net.addr_of(&id).map(|a| a.ip_addrs().copied().collect::<Vec<_>>()).unwrap_or_default(),
            "reputation": reputation(&id),
        }));
    }
    for contact in net.dht.contacts(MAX_LISTED_CONTACTS) {
        let Ok(id) = iroh::PublicKey::from_bytes(&contact.node) else {
            continue;
        };
        if !seen.insert(id) {
            continue;
        }
        out.push(json!({
            "node": id.to_string(),
            "self": false,
            "source": "dht",
            // Null: a DHT contact is asked when a lookup needs it, never pinged.
            "healthy": null,
            "services": services_of(&id),
            "addrs": contact.addrs,
            "reputation": reputation(&id),
        }));
    }
    Value::Array(out)
}

/// The `service=` of a query: the one name a view looks up now.
fn only(query: &str) -> Option<&str> {
    query
        .split('&')
        .find_map(|p| p.strip_prefix("service="))
        .filter(|s| !s.is_empty())
}

/// The services this node knows and who serves them, or one service, looked up in the network
/// now.
async fn services(gw: &Gateway, only: Option<&str>) -> Value {
    let node = &gw.node;
    let offer = |o: &catalog::Offer| {
        let mut v = json!({
            "node": o.node, "local": o.local, "version": o.version, "serving": o.serving,
            "methods": o.methods,
        });
        if let Some(interface) = o.interface {
            v["interface"] = json!(hex::encode(interface));
        }
        v
    };
    let offers = match only {
        None => catalog::offers(node),
        Some(name) => {
            let mut offers: Vec<catalog::Offer> = catalog::offers(node)
                .into_iter()
                .filter(|o| o.local && o.name == name)
                .collect();
            if let Some(remote) = node.remote() {
                offers.extend(remote.find(name).await);
            }
            offers
        }
    };
    Value::Array(
        catalog::by_name(offers)
            .into_iter()
            .map(|(name, offers)| {
                json!({ "name": name, "nodes": offers.iter().map(offer).collect::<Vec<_>>() })
            })
            .collect(),
    )
}

/// The routes of every service this node knows, or of one: that one is looked up in the
/// network now.
async fn all_routes(gw: &Gateway, only: Option<&str>) -> Value {
    let node = &gw.node;
    let names: Vec<String> = match only {
        Some(name) => vec![name.to_string()],
        None => catalog::by_name(catalog::offers(node))
            .into_keys()
            .collect(),
    };
    let mut out = Vec::new();
    for name in names {
        // `name@version` asks for the routes of calls pinned to that version.
        let (base, _) = micro_base::names::split_version(&name);
        let here = node.registry.get(base).map(|d| {
            let load = node.load.load(std::sync::atomic::Ordering::Relaxed);
            (node.id.as_str(), d.record.version.clone(), load)
        });
        let routes = match only {
            Some(_) => match routes::look_up(here.clone(), gw.net.as_ref(), &name).await {
                Ok(routes) => routes,
                Err(e) => {
                    out.push(json!({ "service": name, "routes": [], "error": e.to_string() }));
                    continue;
                }
            },
            None => routes::known(here, gw.net.as_deref(), &name),
        };
        out.push(json!({ "service": name, "routes": routes }));
    }
    Value::Array(out)
}

/// The peers this node checks and its measured links to them: the part of the network graph
/// this node sees for itself.
fn graph(gw: &Gateway) -> Value {
    let node = &gw.node;
    let mut nodes = vec![json!({ "node": node.id, "self": true, "healthy": true })];
    let mut links = Vec::new();
    if let Some(net) = gw.net.as_ref() {
        for (id, p) in net.peers.all() {
            nodes.push(json!({ "node": id.to_string(), "self": false, "healthy": p.healthy() }));
            if let Some(rtt) = p.rtt.filter(|_| p.healthy()) {
                links.push(json!({ "from": node.id, "to": id.to_string(), "rtt_us": rtt.as_micros() as u64 }));
            }
        }
    }
    json!({ "nodes": nodes, "links": links })
}

/// `GET /api/services/{name}` for a service that runs elsewhere: its provider entry and its WIT, fetched from that node over a direct stream.
pub async fn describe_remote(gw: &Gateway, name: &str) -> Response<Body> {
    let node = &gw.node;
    let not_found = || {
        reply::error(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no service named {name:?} on this node or in the network"),
        )
    };
    let Some(net) = gw.net.as_ref() else {
        return not_found();
    };
    let (service, _) = micro_base::names::split_version(name);
    let routes = match routes::find(None, Some(net), name).await {
        Ok(routes) => routes,
        Err(e) => return reply::error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e),
    };
    for route in routes {
        let Some((id, entry)) = route.remote else {
            continue;
        };
        let deadline = micro_core::transport::deadline_from_now(node);
        if let Some(wit) = micro_net::remote::fetch_wit(net, &id, service, deadline).await {
            return reply::json(
                StatusCode::OK,
                &json!({
                    "name": entry.name,
                    "version": entry.version,
                    "kind": if entry.http { "http" } else { "service" },
                    "methods": entry.methods,
                    "node": id.to_string(),
                    "wit": wit,
                }),
            );
        }
    }
    not_found()
}

/// `GET /api/network/ping/{node}?n=N`: N sequential pings over the peer protocol, with the
/// round-trip times' percentiles (what a remote call costs before any service runs).
pub async fn ping(gw: &Gateway, peer: &str, query: &str) -> Response<Body> {
    let Some(net) = gw.net.as_ref() else {
        return reply::error(
            StatusCode::CONFLICT,
            "no-network",
            "the node runs without a network",
        );
    };
    let id = match micro_base::identity::parse_node_id(peer) {
        Ok(id) => id,
        Err(e) => return reply::error(StatusCode::BAD_REQUEST, "bad-request", e),
    };
    let n: usize = query
        .split('&')
        .find_map(|p| p.strip_prefix("n="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(10)
        .clamp(1, 100_000);
    let timeout = std::time::Duration::from_millis(net.config.network.connect_timeout_ms);
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        match micro_net::overlay::ping_once(net, id, timeout).await {
            Ok((rtt, _)) => samples.push(rtt.as_micros() as u64),
            Err(e) => return reply::error(StatusCode::BAD_GATEWAY, "unavailable", e),
        }
    }
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    reply::json(
        StatusCode::OK,
        &json!({ "node": id.to_string(), "n": n, "p50_us": at(0.5), "p99_us": at(0.99), "min_us": samples[0] }),
    )
}
