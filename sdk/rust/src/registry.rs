//! The services of the network, as the node this service runs on knows them: every service
//! with the nodes that serve each version, and one looked up by name wherever it runs.

use crate::bindings::micro::network::registry as raw;
use serde::Serialize;

/// One version of a service and the nodes that serve it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceInfo {
    /// The service's name.
    pub name: String,
    /// The version.
    pub version: String,
    /// The WIT of its world; empty in [`list`] for a service that runs only on other nodes
    /// ([`lookup`] fetches it).
    pub wit: String,
    /// The methods it answers.
    pub methods: Vec<String>,
    /// The ids of the nodes that serve this version.
    pub nodes: Vec<String>,
    /// `kind`: `service` or `http`.
    pub metadata: Vec<(String, String)>,
}

impl From<raw::ServiceRecord> for ServiceInfo {
    fn from(r: raw::ServiceRecord) -> Self {
        Self {
            name: r.name,
            version: r.version,
            wit: r.wit,
            methods: r.methods,
            nodes: r.nodes,
            metadata: r.metadata,
        }
    }
}

/// Every service version the node knows, its own and those the network announces.
pub fn list() -> Vec<ServiceInfo> {
    raw::list().into_iter().map(ServiceInfo::from).collect()
}

/// One service by `name` (or `name@version`), wherever it runs: the version this node serves,
/// else one another node serves.
pub fn lookup(name: &str) -> Option<ServiceInfo> {
    raw::lookup(name).map(ServiceInfo::from)
}
