//! Slots for the swappable system components: the policy a node runs is wasm, chosen and
//! replaced while the node runs: the builders, the governance and the ledger.

pub mod builders;
pub mod governance;
pub mod ledger;

use crate::evolve::log::BuildLog;
use crate::evolve::source::Source;
use crate::evolve::{BuildFailure, Purpose, SourceRecord, produce};
use crate::node::Node;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// A builder that replaced a default, as kept across restarts.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Replacement {
    component: String,
    origin: String,
}

fn replacements_path(node: &Node) -> PathBuf {
    node.data_dir.join("system").join("builders.json")
}

fn governance_path(node: &Node) -> PathBuf {
    node.data_dir.join("system").join("governance.json")
}

fn ledger_path(node: &Node) -> PathBuf {
    node.data_dir.join("system").join("ledger.json")
}

fn replacements(node: &Node) -> BTreeMap<String, Replacement> {
    read_json(&replacements_path(node)).unwrap_or_default()
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
pub async fn load_builders(node: &Node) -> anyhow::Result<builders::Builders> {
    let builders = builders::Builders::with_defaults(&node.runtime).await?;
    for (name, r) in replacements(node) {
        let loaded = match node.registry.component(&r.component) {
            Ok(wasm) => builders.load(&node.runtime, &wasm, &r.origin).await,
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
    let mut map = replacements(node);
    map.insert(
        builder.name.clone(),
        Replacement {
            component: builder.component.clone(),
            origin: text.to_string(),
        },
    );
    write_json(&replacements_path(node), &map).map_err(failure)?;
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
    node: &Node,
    path: &std::path::Path,
    slot: &str,
    load: impl AsyncFnOnce(Vec<u8>, &str) -> anyhow::Result<L>,
) -> Option<(L, String)> {
    let r = read_json::<Replacement>(path)?;
    let loaded = match node.registry.component(&r.component) {
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
    node: &Node,
    path: &std::path::Path,
    component: &str,
    origin: &str,
    wasm: &[u8],
) -> anyhow::Result<()> {
    node.registry.save_component(component, wasm)?;
    write_json(
        path,
        &Replacement {
            component: component.to_string(),
            origin: origin.to_string(),
        },
    )
}

/// The governance: the embedded default, or the replacement an earlier run put in use.
pub async fn load_governance(node: &Node) -> anyhow::Result<governance::Governance> {
    let governance =
        governance::Governance::with_default(&node.runtime, node.clock.clone()).await?;
    let kept = restore(
        node,
        &governance_path(node),
        "governance",
        async |wasm, origin| governance.load(&node.runtime, &wasm, origin).await,
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
    keep_replacement(node, &governance_path(node), &loaded.component, text, &wasm)
        .map_err(failure)?;
    let loaded = governance.replace(loaded);
    node.system.notify();
    log.step("load", format!("governance {} in use", loaded.label()));
    Ok(loaded)
}

/// The ledger: the embedded default, or the replacement an earlier run put in use.
pub async fn load_ledger(node: &Node) -> anyhow::Result<ledger::Ledger> {
    let ledger =
        ledger::Ledger::with_default(&node.runtime, node.identity.clone(), node.storage.clone())
            .await?;
    let kept = restore(node, &ledger_path(node), "ledger", async |wasm, origin| {
        ledger.load(&node.runtime, &wasm, origin).await
    })
    .await;
    if let Some((loaded, origin)) = kept {
        let loaded = ledger.replace(loaded, node.clock.now_ms()).await;
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
    keep_replacement(node, &ledger_path(node), &loaded.component, text, &wasm).map_err(failure)?;
    let loaded = ledger.replace(loaded, node.clock.now_ms()).await;
    log.step("load", format!("ledger {} in use", loaded.label()));
    Ok(loaded)
}
