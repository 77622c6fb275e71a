//! The peer layer as the core sees it: [`PeerRemote`] answers the core's
//! [`Remote`](micro_core::remote::Remote) (calls routed to other nodes, subscriptions across
//! nodes, each topic's first publish, other nodes' offers and WIT, peer ages) from the running [`Network`].

use crate::local::Local;
use crate::{Network, routes, wire};
use futures::FutureExt as _;
use futures::future::BoxFuture;
use micro_core::catalog::Offer;
use micro_core::remote::Remote;
use micro_core::system::governance::PeerAges;
use micro_core::transport::CallFailure;
use micro_runtime::wit::micro::network::types::{CallError, Caller, Request, Response};
use micro_services::broker::Subscription;
use std::sync::{Arc, Weak};
use std::time::Instant;

/// The running peer layer, attached to its node. It holds the node weakly: the node holds it.
pub struct PeerRemote {
    local: Weak<dyn Local>,
    net: Arc<Network>,
}

impl PeerRemote {
    /// The peer layer `net` of the node `local`.
    pub fn new(local: &Arc<dyn Local>, net: &Arc<Network>) -> PeerRemote {
        PeerRemote {
            local: Arc::downgrade(local),
            net: net.clone(),
        }
    }
}

impl Remote for PeerRemote {
    fn call<'a>(
        &'a self,
        caller: Caller,
        token: Option<&'a str>,
        deadline: Instant,
        request: Request,
    ) -> BoxFuture<'a, Result<Response, CallFailure>> {
        async move {
            let Some(local) = self.local.upgrade() else {
                return Err(CallError::Unavailable("the node is stopping".into()).into());
            };
            routes::call(local.as_ref(), &self.net, caller, token, deadline, request).await
        }
        .boxed()
    }

    fn subscribe<'a>(
        &'a self,
        local: Subscription,
        topic: &'a str,
        group: Option<&'a str>,
        history: bool,
    ) -> BoxFuture<'a, Subscription> {
        crate::events::subscribe(&self.net, local, topic, group, history).boxed()
    }

    fn offers(&self) -> Vec<Offer> {
        // The providers of the services this node called, found through the DHT: what it
        // knows, never the whole network.
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (_, providers) in self.net.providers.known(&self.net) {
            for p in &providers {
                let o = provider_offer(p);
                if seen.insert((o.name.clone(), o.version.clone(), o.node.clone())) {
                    out.push(o);
                }
            }
        }
        out
    }

    fn find<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Vec<Offer>> {
        async move {
            match self.net.providers.find(&self.net, name).await {
                Ok(found) => found.iter().map(provider_offer).collect(),
                Err(e) => {
                    tracing::debug!(service = %name, error = %e, "looking a service up");
                    Vec::new()
                }
            }
        }
        .boxed()
    }

    fn wit<'a>(
        &'a self,
        node: &'a str,
        service: &'a str,
        deadline: Instant,
    ) -> BoxFuture<'a, Option<String>> {
        async move {
            let id = micro_base::identity::parse_node_id(node).ok()?;
            fetch_wit(&self.net, &id, service, deadline).await
        }
        .boxed()
    }
}

/// One node's offer of a service, as the core sees it.
fn offer(s: &crate::provide::ServiceEntry, node: String) -> Offer {
    Offer {
        name: s.name.clone(),
        version: s.version.clone(),
        node,
        local: false,
        serving: s.serving,
        methods: s.methods.clone(),
        http: s.http,
        interface: Some(s.interface),
    }
}

/// A provider found through the DHT, as the core sees it.
fn provider_offer(p: &crate::providers::Provider) -> Offer {
    offer(&routes::service_entry(&p.entry.body), p.node.to_string())
}

impl micro_services::broker::FirstPublish for PeerRemote {
    fn publishing<'a>(&'a self, topic: &'a str) -> BoxFuture<'a, ()> {
        crate::events::rendezvous::publishing(&self.net, topic).boxed()
    }
}

impl PeerAges for PeerRemote {
    fn peer_age_ms(&self, node: &str) -> u64 {
        self.net.peer_age_ms(node)
    }
}

impl PeerAges for Network {
    fn peer_age_ms(&self, node: &str) -> u64 {
        micro_base::identity::parse_node_id(node)
            .ok()
            .and_then(|id| self.peers.get(&id))
            .map_or(0, |p| self.clock.now_ms().saturating_sub(p.first_seen_ms))
    }
}

/// The WIT of `service` (`name` or `name@version`) from node `id`, fetched over a direct
/// stream before `deadline`; none if the node cannot be reached or does not serve it.
pub async fn fetch_wit(
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
        .request(
            &addr,
            &request,
            &[],
            net.config.network.max_frame_bytes,
            deadline,
        )
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
