//! Deploying, stopping and restoring services: the steps between bytes and a served service.

use crate::host_state::{HostState, Program};
use crate::node::Node;
use crate::registry::{Deployment, ServiceKind, ServiceRecord, SubscriptionSpec, VersionInfo};
use micro_base::names::content_hash;
use micro_runtime::DeployError;
use micro_services::broker::Owner;
use std::sync::Arc;

/// Where a version comes from, for its record.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The version's name; the component's content hash when none.
    pub version: Option<String>,
    /// The source it was built from (a git URL or a directory), when built from source.
    pub source: Option<String>,
    /// The commit it was built from.
    pub commit: Option<String>,
    /// The builder that built it (name and version).
    pub builder: Option<String>,
    /// How long it serves pinned calls once superseded; the node's default when none.
    pub lifetime_ms: Option<u64>,
    /// For this node only (see [`ServiceRecord::private`]).
    pub private: bool,
    /// The node that placed it here, for a replica.
    pub replica_of: Option<String>,
}

/// Deploys an uploaded component as the newest version of service `name`.
pub async fn deploy(
    node: &Arc<Node>,
    name: &str,
    wasm: Vec<u8>,
) -> Result<ServiceRecord, DeployError> {
    deploy_version(node, name, wasm, Origin::default()).await
}

/// Deploys `wasm` as a new version of service `name`: validated, compiled and asked to
/// describe itself (its first call) before it takes any traffic. The version that served
/// before is superseded and keeps answering calls pinned to it for its lifetime. Nothing
/// changes for the running service unless every step succeeds.
pub async fn deploy_version(
    node: &Arc<Node>,
    name: &str,
    wasm: Vec<u8>,
    origin: Origin,
) -> Result<ServiceRecord, DeployError> {
    micro_base::names::check_name(name)?;
    let governance = node
        .governance()
        .await
        .map_err(|e| DeployError::Denied(e.to_string()))?;
    let deployer = match &origin.replica_of {
        Some(from) => node.asker_for(from),
        None => node.askers.this(),
    };
    governance
        .approve_deploy(
            &deployer,
            name,
            wasm.len() as u64,
            origin.source.as_deref(),
            node.config.limits.memory_mib,
            u32::try_from(node.registry.list().len()).unwrap_or(u32::MAX),
            origin.replica_of.is_some(),
        )
        .await
        .map_err(|refusal| DeployError::Denied(refusal.to_string()))?;
    let hash = content_hash(&wasm);
    let version = origin
        .version
        .clone()
        .unwrap_or_else(|| hash[..12].to_string());
    if let Some(current) = node.registry.get(name)
        && current.record.version == version
        && current.record.private == origin.private
    {
        return Ok(current.record.clone());
    }
    warm_ledger(node);
    let (program, wasm) = prepare(node, wasm).await?;
    let description = describe(node, name, &program).await?;
    let now = node.clock.now_ms();
    let record = ServiceRecord {
        name: name.to_string(),
        version: version.clone(),
        kind: if program.is_http() {
            ServiceKind::Http
        } else {
            ServiceKind::Service
        },
        methods: description.0,
        subscriptions: description.1,
        wit: program.wit.clone(),
        component: hash.clone(),
        size: wasm.len() as u64,
        deployed_at_ms: now,
        private: origin.private,
        replica_of: origin.replica_of.clone(),
    };
    // `insert` makes it the serving version.
    let info = VersionInfo {
        builder: origin.builder,
        component: Some(hash.clone()),
        created_ms: now,
        ..VersionInfo::building(
            name,
            &version,
            origin.source,
            origin.commit,
            origin
                .lifetime_ms
                .unwrap_or(node.config.evolve.superseded_lifetime_ms),
            now,
        )
    };
    // History is replayed to a service's first version only: a later version continues
    // where its predecessors were, with the storage they left (a counter must not count the
    // retained messages twice).
    let first_version = node
        .registry
        .versions(name)
        .map_err(|e| DeployError::Store(format!("{e:#}")))?
        .iter()
        .all(|v| v.version == version || !v.took_traffic());
    node.registry
        .save_component(&hash, &wasm)
        .map_err(|e| DeployError::Store(format!("{e:#}")))?;
    node.registry
        .insert(deployment(node, record.clone(), program), info)
        .map_err(|e| DeployError::Store(format!("{e:#}")))?;
    subscribe(node, &record, first_version).await?;
    tracing::info!(service = name, version = %record.version, kind = ?record.kind, "deployed");
    Ok(record)
}

/// A node that serves a service charges its calls: the ledger is loaded beside the deploy,
/// not on the service's first call. On a node's first use it is compiled (~0.5 s here, over a
/// second on a busy machine), and a just-deployed service's first callers all waited for it.
fn warm_ledger(node: &Arc<Node>) {
    if node.ledger_if_loaded().is_some() {
        return;
    }
    let node = node.clone();
    tokio::spawn(async move {
        if let Err(e) = node.ledger().await {
            tracing::warn!(error = %e, "loading the ledger");
        }
    });
}

/// Retires superseded versions at the end of their lifetime (never with a call in flight),
/// checking every second while the node runs.
pub async fn retire_loop(node: Arc<Node>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tick.tick().await;
        match node.registry.retire_due() {
            Ok(retired) if !retired.is_empty() => {
                for (service, version) in &retired {
                    tracing::info!(service, version, "retired");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %format!("{e:#}"), "retiring versions"),
        }
    }
}

/// Validates, compiles (or loads from the cache) and pre-instantiates a component, off the
/// async executor; hands the bytes back for keeping.
async fn prepare(node: &Arc<Node>, wasm: Vec<u8>) -> Result<(Program, Vec<u8>), DeployError> {
    let node = node.clone();
    tokio::task::spawn_blocking(move || node.runtime.prepare(&wasm).map(|p| (p, wasm)))
        .await
        .map_err(|e| DeployError::Invalid(format!("compilation crashed: {e}")))?
}

fn deployment(node: &Node, record: ServiceRecord, program: Program) -> Deployment {
    Deployment::new(
        record,
        program,
        node.config.limits.max_concurrency_per_service,
        node.clock.clone(),
    )
}

/// Asks a service for its methods and subscriptions; its first call, so a service that cannot
/// even describe itself never takes traffic.
async fn describe(
    node: &Arc<Node>,
    name: &str,
    program: &Program,
) -> Result<(Vec<String>, Vec<SubscriptionSpec>), DeployError> {
    if program.is_http() {
        return Ok((Vec::new(), Vec::new()));
    }
    let store = HostState::store(node, crate::host_state::fresh_scope(node, name));
    let description = program
        .describe(store)
        .await
        .map_err(|e| DeployError::Describe(format!("{e:?}")))?;
    let subscriptions: Vec<SubscriptionSpec> = description
        .subscriptions
        .into_iter()
        .map(|s| SubscriptionSpec {
            topic: s.topic,
            queue_group: s.queue_group,
            history: s.history,
        })
        .collect();
    if !subscriptions.is_empty() && !program.has_subscriber() {
        return Err(DeployError::Describe(
            "it subscribes to topics but does not export micro:network/subscriber".into(),
        ));
    }
    for s in &subscriptions {
        micro_services::broker::check_topic(&s.topic)
            .map_err(|e| DeployError::Describe(format!("{e:?}")))?;
    }
    Ok((description.methods, subscriptions))
}

/// (Re)subscribes a service to its topics, network-wide; one delivery task per subscription,
/// delivering in order to the service's current version.
async fn subscribe(
    node: &Arc<Node>,
    record: &ServiceRecord,
    with_history: bool,
) -> Result<(), DeployError> {
    let owner = Owner::Service(record.name.clone());
    node.broker.unsubscribe_owner(&owner);
    for spec in &record.subscriptions {
        let history = spec.history && with_history;
        let mut subscription = crate::subscriptions::subscribe(
            node,
            &spec.topic,
            spec.queue_group.as_deref(),
            history,
            owner.clone(),
        )
        .await
        .map_err(|e| DeployError::Describe(format!("subscribing to {}: {e:?}", spec.topic)))?;
        let node = node.clone();
        let name = record.name.clone();
        tokio::spawn(async move {
            while let Some(message) = subscription.messages.recv().await {
                let Some(deployment) = node.registry.get(&name) else {
                    break;
                };
                let store = HostState::store(&node, crate::host_state::fresh_scope(&node, &name));
                let outcome = deployment.program.deliver(store, &message).await;
                deployment.count(&outcome);
                if let Err(error) = outcome {
                    tracing::warn!(service = %name, topic = %message.topic, sequence = message.sequence, %error, "message not handled");
                    node.registry.logs.push(
                        &name,
                        "warn",
                        format!(
                            "message {}#{} of {} not handled: {error}",
                            message.node.get(..8).unwrap_or(&message.node),
                            message.sequence,
                            message.topic
                        ),
                    );
                }
            }
        });
    }
    Ok(())
}

/// Stops a service: no new calls reach it, its subscriptions end, its record is forgotten.
/// Its stored data stays, for the next service deployed under the same name.
pub fn stop(node: &Arc<Node>, name: &str) -> anyhow::Result<bool> {
    let removed = node.registry.remove(name)?;
    node.registry.logs.forget(name);
    node.broker
        .unsubscribe_owner(&Owner::Service(name.to_string()));
    if removed.is_some() {
        tracing::info!(service = name, "stopped");
    }
    Ok(removed.is_some())
}

/// Brings back the services of an earlier run, from their kept components and compiled code.
/// History is not replayed again: the services saw it when first deployed.
pub async fn restore(node: &Arc<Node>) -> anyhow::Result<usize> {
    let mut restored = 0;
    let saved = node.registry.saved()?;
    if !saved.is_empty() {
        warm_ledger(node);
    }
    for record in saved {
        let wasm = match node.registry.component(&record.component) {
            Ok(wasm) => wasm,
            Err(e) => {
                tracing::error!(service = %record.name, error = %format!("{e:#}"), "cannot restore service");
                continue;
            }
        };
        match prepare(node, wasm).await {
            Ok((program, _)) => {
                node.registry
                    .activate(deployment(node, record.clone(), program));
                if let Err(e) = subscribe(node, &record, false).await {
                    tracing::error!(service = %record.name, error = %e, "cannot resubscribe service");
                }
                restored += 1;
            }
            Err(e) => tracing::error!(service = %record.name, error = %e, "cannot restore service"),
        }
    }
    Ok(restored)
}
