//! This node's services in the DHT: every public service it serves is provided under its name,
//! and every live version under `name@version` (calls pinned to a superseded version find it
//! too); a name it stops serving is withdrawn. Kept in step with the node's services by one
//! task that wakes when they change.

use crate::Network;
use crate::contact::{EntryBody, FORMAT, MAX_METHODS, MAX_TEXT};
use crate::local::Local;
use futures::StreamExt as _;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Provides or withdraws at most this many names at once (each is a DHT lookup).
const AT_ONCE: usize = 8;
/// How soon a name that could not be provided (no DHT neighbour yet, too many lookups) is
/// tried again.
const RETRY: Duration = Duration::from_secs(2);
/// How often the names are compared with the services even when nothing says they changed.
const RECHECK: Duration = Duration::from_secs(30);

/// One service this node offers the network, as its provider entries describe it (the WIT is
/// fetched on demand).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    /// The service's name.
    pub name: String,
    /// The version's name.
    pub version: String,
    /// First 8 bytes of the SHA-256 of the service's WIT.
    pub interface: [u8; 8],
    /// The methods it answers.
    pub methods: Vec<String>,
    /// A `wasi:http` component (answers any path) rather than a `micro` service.
    pub http: bool,
    /// The version new calls go to on that node; the others are superseded versions that
    /// still answer calls pinned to them (`name@version`).
    pub serving: bool,
}

/// Starts the task that keeps this node's names in the DHT.
pub fn spawn(local: Arc<dyn Local>, net: Arc<Network>) {
    tokio::spawn(provide_loop(local, net));
}

/// The entries this node's services call for, by name (times and contact are filled in when
/// each is signed).
pub fn wanted(services: &[ServiceEntry], net: &Network) -> HashMap<String, EntryBody> {
    let provider = net.dht.own_contact(net);
    let mut out = HashMap::new();
    for s in services {
        let methods: Vec<String> = s
            .methods
            .iter()
            .filter(|m| m.len() <= MAX_TEXT)
            .take(MAX_METHODS)
            .cloned()
            .collect();
        let body = |name: String| EntryBody {
            format: FORMAT,
            name,
            provider: provider.clone(),
            version: s.version.clone(),
            interface: s.interface,
            http: s.http,
            load: 0,
            issued_ms: 0,
            expires_ms: 0,
            methods: methods.clone(),
            withdrawn: false,
        };
        let pinned = format!("{}@{}", s.name, s.version);
        if pinned.len() > MAX_TEXT {
            continue;
        }
        if s.serving {
            out.insert(s.name.clone(), body(s.name.clone()));
        }
        out.insert(pinned.clone(), body(pinned));
    }
    out
}

/// Whether two entries say the same of a service (times, load and contact aside).
fn same(a: &EntryBody, b: &EntryBody) -> bool {
    a.version == b.version
        && a.interface == b.interface
        && a.http == b.http
        && a.methods == b.methods
}

async fn provide_loop(local: Arc<dyn Local>, net: Arc<Network>) {
    let mut changes: futures::stream::SelectAll<_> = local
        .changes()
        .into_iter()
        .map(tokio_stream::wrappers::WatchStream::from_changes)
        .collect();
    let mut provided: HashMap<String, EntryBody> = HashMap::new();
    loop {
        if net.stopping() {
            return;
        }
        let want = wanted(&local.offered(), &net);
        let gone: Vec<String> = provided
            .keys()
            .filter(|name| !want.contains_key(*name))
            .cloned()
            .collect();
        let new: Vec<EntryBody> = want
            .values()
            .filter(|b| provided.get(&b.name).is_none_or(|p| !same(p, b)))
            .cloned()
            .collect();
        // Provided before the node has any DHT neighbour, an entry stays here alone: again later.
        let alone = net.dht.table_len() == 0;
        let withdrawals = futures::stream::iter(gone)
            .map(|name| {
                let net = net.clone();
                async move {
                    if let Err(e) = net.dht.withdraw(&net, &name).await {
                        tracing::debug!(service = %name, error = %e, "withdrawing");
                    }
                    name
                }
            })
            .buffer_unordered(AT_ONCE)
            .collect::<Vec<String>>()
            .await;
        for name in withdrawals {
            provided.remove(&name);
        }
        let outcomes = futures::stream::iter(new)
            .map(|body| {
                let net = net.clone();
                async move {
                    let outcome = net.dht.provide(&net, body.clone()).await;
                    (body, outcome)
                }
            })
            .buffer_unordered(AT_ONCE)
            .collect::<Vec<_>>()
            .await;
        let mut pending = alone && !want.is_empty();
        for (body, outcome) in outcomes {
            match outcome {
                Ok(stored) => {
                    tracing::debug!(service = %body.name, nodes = stored, "provided");
                    if !alone {
                        provided.insert(body.name.clone(), body);
                    }
                }
                Err(e) => {
                    tracing::debug!(service = %body.name, error = %e, "providing");
                    pending = true;
                }
            }
        }
        let wait = if pending { RETRY } else { RECHECK };
        tokio::select! {
            Some(_) = changes.next() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}
