//! Slots for the swappable system components: the policy a node runs is wasm, chosen and
//! replaced while the node runs: the builders, the governance and the ledger.

pub mod builders;
pub mod governance;
pub mod ledger;

use crate::evolve::log::BuildLog;
use crate::evolve::source::Source;
use crate::evolve::{BuildFailure, Purpose, SourceRecord, produce};
use crate::host_state::Runtime;
use crate::node::Node;
use crate::registry::Registry;
use micro_base::Clock;
use micro_base::identity::Identity;
use micro_services::storage::Storage;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A builder that replaced a default, as kept across restarts.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Replacement {
    component: String,
    origin: String,
}

/// What loading the system slots needs of the node, and nothing more: the runtime they
/// compile on, the component store their replacements are kept in, the data directory where
/// each slot notes which component is in use, the clock, and the ledger's key and storage.
pub struct SlotParts<'a> {
    /// The runtime the components compile on.
    pub runtime: &'a Runtime,
    /// Where component bytes are kept (by content hash).
    pub registry: &'a Registry,
    /// The node's data directory.
    pub data_dir: &'a Path,
    /// The node's one clock.
    pub clock: &'a Clock,
    /// The node's key (the ledger signs receipts and tokens with it).
    pub identity: &'a Identity,
    /// The ledger's storage.
    pub storage: &'a Storage,
}

impl<'a> SlotParts<'a> {
    /// The parts of `node`.
    pub fn of(node: &'a Node) -> SlotParts<'a> {
        SlotParts {
            runtime: &node.runtime,
            registry: &node.registry,
            data_dir: &node.data_dir,
            clock: &node.clock,
            identity: &node.identity,
            storage: &node.storage,
        }
    }
}

fn replacements_path(data_dir: &Path) -> PathBuf {
    data_dir.join("system").join("builders.json")
}

fn governance_path(data_dir: &Path) -> PathBuf {
    data_dir.join("system").join("governance.json")
}

fn ledger_path(data_dir: &Path) -> PathBuf {
    data_dir.join("system").join("ledger.json")
}

fn replacements(data_dir: &Path) -> BTreeMap<String, Replacement> {
    read_json(&replacements_path(data_dir)).unwrap_or_default()
}

fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Option<T> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
}

fn write_json(path: &std::path::Path, value: &impl Serialize) -> anyhow::Result<()> {
    use anyhow::Context as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(value)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// The builders: the embedded defaults, with the replacements of earlier runs put back.
pub async fn load_builders(parts: &SlotParts<'_>) -> anyhow::Result<builders::Builders> {
    let builders = builders::Builders::with_defaults(parts.runtime).await?;
    for (name, r) in replacements(parts.data_dir) {
        let loaded = match parts.registry.component(&r.component) {
            Ok(wasm) => builders.load(parts.runtime, &wasm, &r.origin).await,
            Err(e) => Err(e),
        };
        match loaded {
            Ok(builder) => {
                builders.replace(builder);
                tracing::info!(builder = %name, origin = %r.origin, "builder restored");
            }
            Err(e) => {
                tracing::error!(builder = %name, error = %format!("{e:#}"), "cannot restore builder")
            }
        }
    }
    Ok(builders)
}

/// Builds a builder component from `source` (`text` as the user wrote it) with the builders
/// in use and swaps it in: the next build uses it, builds already running finish with the one
/// they started with.
pub async fn use_builder(
    node: &Arc<Node>,
    source: Source,
    text: &str,
    log: &Arc<BuildLog>,
) -> Result<Arc<builders::Builder>, BuildFailure> {
    let wasm = build_system_component(node, "builder", source, log).await?;
    let failure = |e: anyhow::Error| BuildFailure::unnamed(format!("{e:#}"));
    log.step("load", "checking the builder component");
    let builders = node
        .builders()
        .await
        .map_err(|e| BuildFailure::unnamed(e.to_string()))?;
    let builder = builders
        .load(&node.runtime, &wasm, text)
        .await
        .map_err(failure)?;
    node.registry
        .save_component(&builder.component, &wasm)
        .map_err(failure)?;
    let mut map = replacements(&node.data_dir);
    map.insert(
        builder.name.clone(),
        Replacement {
            component: builder.component.clone(),
            origin: text.to_string(),
        },
    );
    write_json(&replacements_path(&node.data_dir), &map).map_err(failure)?;
    let builder = builders.replace(builder);
    log.step("load", format!("builder {} replaced", builder.name));
    Ok(builder)
}

/// Builds a system component from `source` with the builders in use.
async fn build_system_component(
    node: &Arc<Node>,
    name: &str,
    source: Source,
    log: &Arc<BuildLog>,
) -> Result<Vec<u8>, BuildFailure> {
    let mut record = SourceRecord {
        name: name.into(),
        source,
        watch: false,
        interval_ms: 0,
        lifetime_ms: 0,
        last_commit: None,
        rebuild: false,
    };
    let scratch = node.evolve.scratch();
    let produced = produce(node, &mut record, None, log, &scratch, Purpose::System).await;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(produced?.1)
}

/// The component an earlier run put in a slot (kept at `path`), loaded with `load`, and where
/// it came from. One that cannot be loaded is logged and answers none: the embedded default
/// stays in use rather than nothing.
async fn restore<L>(
    registry: &Registry,
    path: &std::path::Path,
    slot: &str,
    load: impl AsyncFnOnce(Vec<u8>, &str) -> anyhow::Result<L>,
) -> Option<(L, String)> {
    let r = read_json::<Replacement>(path)?;
    let loaded = match registry.component(&r.component) {
        Ok(wasm) => load(wasm, &r.origin).await,
        Err(e) => Err(e),
    };
    match loaded {
        Ok(loaded) => Some((loaded, r.origin)),
        Err(e) => {
            tracing::error!(%slot, origin = %r.origin, error = %format!("{e:#}"), "cannot restore the component in use; the embedded default is used");
            None
        }
    }
}

/// Keeps a component swapped into a slot (its bytes, and which it is at `path`) so the next
/// start puts it back.
fn keep_replacement(
    registry: &Registry,
    path: &std::path::Path,
    component: &str,
    origin: &str,
    wasm: &[u8],
) -> anyhow::Result<()> {
    registry.save_component(component, wasm)?;
    write_json(
        path,
        &Replacement {
            component: component.to_string(),
            origin: origin.to_string(),
        },
    )
}

/// The governance: the embedded default, or the replacement an earlier run put in use.
pub async fn load_governance(parts: &SlotParts<'_>) -> anyhow::Result<governance::Governance> {
    let governance =
        governance::Governance::with_default(parts.runtime, parts.clock.clone()).await?;
    let kept = restore(
        parts.registry,
        &governance_path(parts.data_dir),
        "governance",
        async |wasm, origin| governance.load(parts.runtime, &wasm, origin).await,
    )
    .await;
    if let Some((loaded, origin)) = kept {
        let loaded = governance.replace(loaded);
        tracing::info!(governance = %loaded.label(), %origin, "governance restored");
    }
    Ok(governance)
}

/// Builds a governance component from `source` and swaps it in while the node runs: the next
/// question goes to it, questions already asked finish on the old one.
pub async fn use_governance(
    node: &Arc<Node>,
    source: Source,
    text: &str,
    log: &Arc<BuildLog>,
) -> Result<Arc<governance::Loaded>, BuildFailure> {
    let wasm = build_system_component(node, "governance", source, log).await?;
    let failure = |e: anyhow::Error| BuildFailure::unnamed(format!("{e:#}"));
    log.step("load", "checking the governance component");
    let governance = node
        .governance()
        .await
        .map_err(|e| BuildFailure::unnamed(e.to_string()))?;
    let loaded = governance
        .load(&node.runtime, &wasm, text)
        .await
        .map_err(failure)?;
    keep_replacement(
        &node.registry,
        &governance_path(&node.data_dir),
        &loaded.component,
        text,
        &wasm,
    )
    .map_err(failure)?;
    let loaded = governance.replace(loaded);
    node.system.notify();
    log.step("load", format!("governance {} in use", loaded.label()));
    Ok(loaded)
}

/// The ledger: the embedded default, or the replacement an earlier run put in use.
pub async fn load_ledger(parts: &SlotParts<'_>) -> anyhow::Result<ledger::Ledger> {
    let ledger =
        ledger::Ledger::with_default(parts.runtime, parts.identity.clone(), parts.storage.clone())
            .await?;
    let kept = restore(
        parts.registry,
        &ledger_path(parts.data_dir),
        "ledger",
        async |wasm, origin| ledger.load(parts.runtime, &wasm, origin).await,
    )
    .await;
    if let Some((loaded, origin)) = kept {
        let loaded = ledger.replace(loaded, parts.clock.now_ms()).await;
        tracing::info!(ledger = %loaded.label(), %origin, "ledger restored");
    }
    Ok(ledger)
}

/// Builds a ledger component from `source` and swaps it in while the node runs: the old one
/// saves what it holds in memory, the next question goes to the new one (which reads the same
/// storage), questions already asked finish on the old one.
pub async fn use_ledger(
    node: &Arc<Node>,
    source: Source,
    text: &str,
    log: &Arc<BuildLog>,
) -> Result<Arc<ledger::component::Loaded>, BuildFailure> {
    let wasm = build_system_component(node, "ledger", source, log).await?;
    let failure = |e: anyhow::Error| BuildFailure::unnamed(format!("{e:#}"));
    log.step("load", "checking the ledger component");
    let ledger = node
        .ledger()
        .await
        .map_err(|e| BuildFailure::unnamed(e.to_string()))?;
    let loaded = ledger
        .load(&node.runtime, &wasm, text)
        .await
        .map_err(failure)?;
    keep_replacement(
        &node.registry,
        &ledger_path(&node.data_dir),
        &loaded.component,
        text,
        &wasm,
    )
    .map_err(failure)?;
    let loaded = ledger.replace(loaded, node.clock.now_ms()).await;
    log.step("load", format!("ledger {} in use", loaded.label()));
    Ok(loaded)
}
