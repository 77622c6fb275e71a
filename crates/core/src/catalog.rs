//! The services this node knows: its own deployments and those it found on other nodes,
//! each offer naming the node that makes it. The `registry` interface components import and
//! `GET /api/network/services` both read it, so a service sees the network it runs on as the
//! node's API shows it.

use crate::node::Node;
use crate::registry::ServiceKind;
use std::collections::BTreeMap;

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

/// Every offer this node knows: its own first, then those it found on other nodes.
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
    if let Some(remote) = node.remote() {
        out.extend(remote.offers());
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
