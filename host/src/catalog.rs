//! The services this node knows: its own deployments and those the network's records announce,
//! each offer naming the node that makes it. The `registry` interface components import and
//! `GET /api/network/services` both read it, so a service sees the network it runs on as the
//! node's API shows it.

use crate::net::{Network, wire};
use crate::node::Node;
use crate::registry::ServiceKind;
use std::collections::BTreeMap;
use std::time::Instant;

/// One node's offer of one version of a service.
#[derive(Debug, Clone)]
pub struct Offer {
    /// The service's name.
    pub name: String,
    /// The version offered.
    pub version: String,
    /// The node that serves it.
    pub node: String,
    /// This node.
    pub local: bool,
    /// The version new calls go to on that node (not a superseded one kept for pinned calls).
    pub serving: bool,
    /// The methods it answers.
    pub methods: Vec<String>,
    /// A `wasi:http` component rather than a `micro` service.
    pub http: bool,
    /// The first 8 bytes of the SHA-256 of its WIT, as the node's record announces it (none
    /// for this node's own, whose WIT is at hand).
    pub interface: Option<[u8; 8]>,
}

/// Every offer this node knows: its own first, then those of the live records of the network.
pub fn offers(node: &Node) -> Vec<Offer> {
    let mut out: Vec<Offer> = node
        .registry
        .list()
        .iter()
        .map(|d| Offer {
            name: d.record.name.clone(),
            version: d.record.version.clone(),
            node: node.id.clone(),
            local: true,
            serving: true,
            methods: d.record.methods.clone(),
            http: d.record.kind == ServiceKind::Http,
            interface: None,
        })
        .collect();
    if let Some(net) = node.network() {
        for live in net.directory.live() {
            let id = live.id.to_string();
            out.extend(live.record.services.iter().map(|s| Offer {
                name: s.name.clone(),
                version: s.version.clone(),
                node: id.clone(),
                local: false,
                serving: s.serving,
                methods: s.methods.clone(),
                http: s.http,
                interface: Some(s.interface),
            }));
        }
    }
    out
}

/// The offers grouped by service name, names in order.
pub fn by_name(offers: Vec<Offer>) -> BTreeMap<String, Vec<Offer>> {
    let mut map: BTreeMap<String, Vec<Offer>> = BTreeMap::new();
    for offer in offers {
        map.entry(offer.name.clone()).or_default().push(offer);
    }
    map
}

/// The WIT of `service` (`name` or `name@version`) from node `id`, fetched over a direct
/// stream before `deadline`; none if the node cannot be reached or does not serve it.
pub async fn remote_wit(
    net: &Network,
    id: &iroh::PublicKey,
    service: &str,
    deadline: Instant,
) -> Option<String> {
    let addr = net.addr_of(id)?;
    let request = wire::Request::Wit {
        service: service.to_string(),
    };
    match net
        .pool
        .request(&addr, &request, &[], net.config.max_frame_bytes, deadline)
        .await
    {
        Ok((wire::Reply::Wit(Ok(wit)), _)) => Some(wit),
        Ok(other) => {
            tracing::debug!(?other, "WIT not served");
            None
        }
        Err(e) => {
            tracing::debug!(error = %e, "WIT fetch failed");
            None
        }
    }
}
