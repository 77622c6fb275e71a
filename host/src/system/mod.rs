//! Slots for the swappable system components: the policy a node runs is wasm, chosen and
//! replaced while the node runs. Today: the builders.

pub mod builders;

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

fn replacements(node: &Node) -> BTreeMap<String, Replacement> {
    std::fs::read_to_string(replacements_path(node))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

fn save_replacements(node: &Node, map: &BTreeMap<String, Replacement>) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let path = replacements_path(node);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(map)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))?;
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
    let mut record = SourceRecord {
        name: "builder".into(),
        source,
        watch: false,
        interval_ms: 0,
        lifetime_ms: 0,
        last_commit: None,
    };
    let scratch = node.evolve.scratch();
    let produced = produce(node, &mut record, None, log, &scratch, Purpose::System).await;
    let _ = std::fs::remove_dir_all(&scratch);
    let (_, wasm) = produced?;
    let failure = |e: anyhow::Error| BuildFailure::unnamed(format!("{e:#}"));
    log.step("load", "checking the builder component");
    let builders = node.builders().await.map_err(BuildFailure::unnamed)?;
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
    save_replacements(node, &map).map_err(failure)?;
    let builder = builders.replace(builder);
    log.step("load", format!("builder {} replaced", builder.name));
    Ok(builder)
}
