//! This node as the peer layer sees it: what it offers, what it serves to peers (calls,
//! subscriptions, its components and WIT), the replicas governance places here, and the
//! governance and ledger the network asks. The network holds a [`Local`], never the node's
//! parts: the core's registry, broker, storage, builds and runtime stay out of its reach, and
//! a test can stand a fake node under a real network. The mirror of the core's
//! [`Remote`](micro_core::remote::Remote). The node implements it here, the one place this
//! crate names the node.

use crate::provide::ServiceEntry;
use futures::FutureExt as _;
use futures::future::BoxFuture;
use micro_core::deploy::Origin;
use micro_core::node::{Node, NotLoaded};
use micro_core::system::governance::{Governance, Refusal};
use micro_core::system::ledger::Ledger;
use micro_core::transport::CallFailure;
use micro_runtime::DeployError;
use micro_runtime::wit::micro::network::types::{Caller, Request, Response};
use micro_services::broker::{Owner, PublishError, Subscription};
use sha2::{Digest as _, Sha256};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// A service deployed here (its serving version), as placement reads it.
#[derive(Debug, Clone)]
pub struct Deployed {
    /// The service's name.
    pub name: String,
    /// The serving version.
    pub version: String,
    /// Its component's content hash.
    pub component: String,
    /// For this node only: never provided, never placed.
    pub private: bool,
    /// The node whose replica this is, when governance placed it here.
    pub replica_of: Option<String>,
    /// Calls every live version of it served since `since`.
    pub calls: u64,
    /// Since when the oldest live version counts its calls.
    pub since: Instant,
}

/// This node, as the peer layer needs it.
pub trait Local: Send + Sync {
    /// Calls running here now.
    fn load(&self) -> u32;

    /// What this node offers the network, provided in the DHT: every live version of every
    /// service that is not private (calls pinned to a superseded one reach it from anywhere).
    fn offered(&self) -> Vec<ServiceEntry>;

    /// A receiver per change counter whose bump changes what this node offers (its services).
    fn changes(&self) -> Vec<tokio::sync::watch::Receiver<u64>>;

    /// The label of the governance in use, once loaded (told to peers that ask).
    fn governance_label(&self) -> Option<String>;

    /// The serving version of every service here.
    fn deployed(&self) -> Vec<Deployed>;

    /// The serving version of service `name` here.
    fn deployed_one(&self, name: &str) -> Option<Deployed>;

    /// The bytes of component `hash` if this node serves it to the network (never a private
    /// service's code).
    fn served_component(&self, hash: &str) -> Option<Vec<u8>>;

    /// The WIT of `service` (`name` or `name@version`) as it runs here.
    fn wit(&self, service: &str) -> Option<String>;

    /// Whether governance admits peer `peer` now (cached for as long as governance allows);
    /// no governance to ask is a refusal.
    fn admit_peer<'a>(&'a self, peer: &'a str) -> BoxFuture<'a, Result<(), AdmitError>>;

    /// Governance, loaded on first use.
    fn governance(&self) -> BoxFuture<'_, Result<&Governance, NotLoaded>>;

    /// Governance, if something loaded it already.
    fn governance_if_loaded(&self) -> Option<&Governance>;

    /// The ledger, loaded on first use.
    fn ledger(&self) -> BoxFuture<'_, Result<&Ledger, NotLoaded>>;

    /// The ledger, if something loaded it already.
    fn ledger_if_loaded(&self) -> Option<&Ledger>;

    /// Serves a call a peer sent, on this node only, through the node's one call pipeline,
    /// charged to `payer` (a token's account) or else the calling node: its outcome and what
    /// it charged.
    fn serve<'a>(
        &'a self,
        caller: Caller,
        payer: Option<&'a str>,
        deadline: Instant,
        request: Request,
    ) -> BoxFuture<'a, (Result<Response, CallFailure>, u64)>;

    /// Subscribes `owner` (a peer) to `topic` on this node's broker.
    fn subscribe(
        &self,
        topic: &str,
        group: Option<&str>,
        history: bool,
        owner: Owner,
    ) -> Result<Subscription, PublishError>;

    /// Deploys `wasm` as a replica of `name` that governance placed here.
    fn deploy_replica<'a>(
        &'a self,
        name: &'a str,
        wasm: Vec<u8>,
        origin: Origin,
    ) -> BoxFuture<'a, Result<(), DeployError>>;

    /// Stops service `name` here (a replica no longer placed); whether it ran.
    fn stop(&self, name: &str) -> anyhow::Result<bool>;
}

/// Why a peer is not admitted.
#[derive(Debug, thiserror::Error)]
pub enum AdmitError {
    /// Governance refused it, or limits its rate now.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// No governance to ask: refused.
    #[error("no governance to ask, so refused: {0}")]
    NoGovernance(#[from] NotLoaded),
}

/// The node's part of a deployment, as the network reads it.
fn deployed(node: &Node, d: &micro_core::registry::Deployment) -> Deployed {
    let versions = node.registry.live_versions(&d.record.name);
    Deployed {
        name: d.record.name.clone(),
        version: d.record.version.clone(),
        component: d.record.component.clone(),
        private: d.record.private,
        replica_of: d.record.replica_of.clone(),
        calls: versions
            .iter()
            .map(|v| v.stats.calls.load(Ordering::Relaxed))
            .sum(),
        since: versions.iter().map(|v| v.since).min().unwrap_or(d.since),
    }
}

impl Local for Arc<Node> {
    fn load(&self) -> u32 {
        self.load.load(Ordering::Relaxed)
    }

    fn offered(&self) -> Vec<ServiceEntry> {
        self.registry
            .all_live()
            .into_iter()
            .filter(|(d, _)| !d.record.private)
            .map(|(d, serving)| {
                let digest = Sha256::digest(d.record.wit.as_bytes());
                let mut interface = [0u8; 8];
                interface.copy_from_slice(&digest[..8]);
                ServiceEntry {
                    name: d.record.name.clone(),
                    version: d.record.version.clone(),
                    interface,
                    methods: d.record.methods.clone(),
                    http: d.program.is_http(),
                    serving,
                }
            })
            .collect()
    }

    fn changes(&self) -> Vec<tokio::sync::watch::Receiver<u64>> {
        vec![self.registry.watch()]
    }

    fn governance_label(&self) -> Option<String> {
        self.governance_if_loaded().map(|g| g.current().label())
    }

    fn deployed(&self) -> Vec<Deployed> {
        self.registry
            .list()
            .iter()
            .map(|d| deployed(self, d))
            .collect()
    }

    fn deployed_one(&self, name: &str) -> Option<Deployed> {
        self.registry.get(name).map(|d| deployed(self, &d))
    }

    fn served_component(&self, hash: &str) -> Option<Vec<u8>> {
        let served = self
            .registry
            .all_live()
            .into_iter()
            .any(|(d, _)| d.record.component == hash && !d.record.private);
        served.then(|| self.registry.component(hash).ok()).flatten()
    }

    fn wit(&self, service: &str) -> Option<String> {
        self.registry.resolve(service).map(|d| d.record.wit.clone())
    }

    fn admit_peer<'a>(&'a self, peer: &'a str) -> BoxFuture<'a, Result<(), AdmitError>> {
        async move {
            let governance = Node::governance(self).await?;
            Ok(governance.admit_peer(&self.asker_for(peer)).await?)
        }
        .boxed()
    }

    fn governance(&self) -> BoxFuture<'_, Result<&Governance, NotLoaded>> {
        Node::governance(self).boxed()
    }

    fn governance_if_loaded(&self) -> Option<&Governance> {
        Node::governance_if_loaded(self)
    }

    fn ledger(&self) -> BoxFuture<'_, Result<&Ledger, NotLoaded>> {
        Node::ledger(self).boxed()
    }

    fn ledger_if_loaded(&self) -> Option<&Ledger> {
        Node::ledger_if_loaded(self)
    }

    fn serve<'a>(
        &'a self,
        caller: Caller,
        payer: Option<&'a str>,
        deadline: Instant,
        request: Request,
    ) -> BoxFuture<'a, (Result<Response, CallFailure>, u64)> {
        micro_core::transport::serve(self, caller, payer, deadline, request).boxed()
    }

    fn subscribe(
        &self,
        topic: &str,
        group: Option<&str>,
        history: bool,
        owner: Owner,
    ) -> Result<Subscription, PublishError> {
        self.broker.subscribe(topic, group, history, owner)
    }

    fn deploy_replica<'a>(
        &'a self,
        name: &'a str,
        wasm: Vec<u8>,
        origin: Origin,
    ) -> BoxFuture<'a, Result<(), DeployError>> {
        async move {
            micro_core::deploy::deploy_version(self, name, wasm, origin).await?;
            Ok(())
        }
        .boxed()
    }

    fn stop(&self, name: &str) -> anyhow::Result<bool> {
        micro_core::deploy::stop(self, name)
    }
}

/// The node `node` as the peer layer sees it.
pub fn of(node: &Arc<Node>) -> Arc<dyn Local> {
    Arc::new(node.clone())
}
