//! The `registry` interface a component imports: the network's services as this node knows
//! them (`catalog`), every version with the nodes that serve it, and one looked up wherever it
//! runs, its WIT fetched from a node that serves it.

use crate::host_state::HostState;
use micro_runtime::wit::micro::network::registry as wit;
use std::collections::BTreeMap;

/// The registry a component sees is the network's, as this node knows it: every service with
/// the nodes that serve each version.
impl wit::Host for HostState {
    async fn list(&mut self) -> Vec<wit::ServiceRecord> {
        let mut versions: BTreeMap<(String, String), Vec<crate::catalog::Offer>> = BTreeMap::new();
        for offer in crate::catalog::offers(&self.node) {
            let key = (offer.name.clone(), offer.version.clone());
            versions.entry(key).or_default().push(offer);
        }
        versions
            .into_iter()
            .map(|((name, version), offers)| {
                // This node's own WIT is at hand; another node's is fetched by `lookup`.
                let wit = match offers.iter().any(|o| o.local) {
                    true => self.node.registry.get_version(&name, &version),
                    false => None,
                }
                .map(|d| d.record.wit.clone())
                .unwrap_or_default();
                record_of(&offers.iter().collect::<Vec<_>>(), wit)
            })
            .collect()
    }

    async fn lookup(&mut self, name: String) -> Option<wit::ServiceRecord> {
        let (base, version) = micro_base::names::split_version(&name);
        let mut offers: Vec<_> = crate::catalog::offers(&self.node)
            .into_iter()
            .filter(|o| o.name == base && version.is_none_or(|v| v == o.version))
            .collect();
        // Not known here: looked up wherever it runs.
        if offers.is_empty()
            && let Some(remote) = self.node.remote()
        {
            offers = remote.find(&name).await;
        }
        // The version asked for; else the one this node serves; else one another node serves.
        let version = match version {
            Some(v) => v.to_string(),
            None => match self.node.registry.get(base) {
                Some(d) => d.record.version.clone(),
                None => offers.iter().find(|o| o.serving)?.version.clone(),
            },
        };
        let offers: Vec<_> = offers.iter().filter(|o| o.version == version).collect();
        if offers.is_empty() {
            return None;
        }
        let wit = match self.node.registry.get_version(base, &version) {
            Some(d) => d.record.wit.clone(),
            None => {
                let remote = self.node.remote()?;
                let pinned = format!("{base}@{version}");
                let mut wit = String::new();
                for offer in &offers {
                    if let Some(text) = remote.wit(&offer.node, &pinned, self.scope.deadline).await
                    {
                        wit = text;
                        break;
                    }
                }
                wit
            }
        };
        Some(record_of(&offers, wit))
    }
}

/// The record of one version from the offers of it (at least one), with its WIT.
fn record_of(offers: &[&crate::catalog::Offer], wit: String) -> wit::ServiceRecord {
    let first = offers[0];
    wit::ServiceRecord {
        name: first.name.clone(),
        version: first.version.clone(),
        wit,
        methods: first.methods.clone(),
        nodes: offers.iter().map(|o| o.node.clone()).collect(),
        metadata: vec![(
            "kind".into(),
            if first.http { "http" } else { "service" }.into(),
        )],
    }
}
