//! Evolution from source: a service's source (a git repository or a local directory) is
//! fetched, recognised and built by a builder component, and deployed as a new version named
//! by its commit, beside the versions already running. A watched source is polled, and each new
//! commit goes the same way with no human step.

pub mod artifacts;
pub mod log;
pub mod sandbox;
pub mod source;
pub mod store;
pub mod toolchain;
pub mod tree;
pub mod watch;

pub use store::{Evolve, SourceRecord};

use crate::deploy::Origin;
use crate::node::Node;
use crate::registry::{VersionInfo, VersionState};
use crate::system::builders::Builder;
use crate::system::builders::bindings::exports::micro::network::builder::{Detection, Plan};
use log::{BuildLog, Event};
use sandbox::Sandbox;
use serde::{Deserialize, Serialize};
use source::{GitSource, Source};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::mpsc;

/// What `micro run <source>` asks for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRequest {
    /// `url[@ref][#subdir]` or a directory on the node's machine.
    pub source: String,
    /// The service's name; from the tree (crate or package name) or the source when none.
    pub name: Option<String>,
    /// Poll the source and deploy each new commit.
    #[serde(default)]
    pub watch: bool,
    /// How often to poll, in milliseconds (the node's default when none).
    pub interval_ms: Option<u64>,
    /// How long a superseded version keeps serving, in milliseconds.
    pub lifetime_ms: Option<u64>,
    /// Build even when the tree is unchanged (a local directory whose path dependencies
    /// outside it changed).
    #[serde(default)]
    pub rebuild: bool,
}

/// A build that did not end in a serving version.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct BuildFailure {
    /// Why, in a sentence.
    pub reason: String,
    /// The failed version, when the build got as far as naming one.
    pub version: Option<VersionInfo>,
}

impl BuildFailure {
    /// A failure that names no version.
    pub fn unnamed(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            version: None,
        }
    }
}

/// The version a build made or failed to make, when it got as far as naming one.
fn version_of(outcome: &Result<VersionInfo, BuildFailure>) -> Option<&VersionInfo> {
    match outcome {
        Ok(v) => Some(v),
        Err(f) => f.version.as_ref(),
    }
}

/// `micro run <source>`: builds `source` (parsed from the request by the caller, who
/// answers a bad request before anything starts) once and deploys it; with `watch`, keeps
/// polling it.
pub async fn run(
    node: &Arc<Node>,
    request: RunRequest,
    source: Source,
    events: Option<mpsc::UnboundedSender<Event>>,
) -> Result<VersionInfo, BuildFailure> {
    let config = &node.config.evolve;
    let record = SourceRecord {
        name: request.name.clone().unwrap_or_default(),
        source,
        watch: request.watch,
        interval_ms: request
            .interval_ms
            .unwrap_or(config.watch_interval_ms)
            .max(100),
        lifetime_ms: request.lifetime_ms.unwrap_or(config.superseded_lifetime_ms),
        last_commit: None,
        rebuild: request.rebuild,
    };
    let log = Arc::new(BuildLog::new(config.max_build_output_bytes, events));
    let outcome = build(node, record.clone(), None, &log).await;
    // Watch under the name the build settled on; a successful build saved the record already
    // (with its last commit), a failed one did not.
    let name = version_of(&outcome).map_or(record.name.clone(), |v| v.name.clone());
    if record.watch && !name.is_empty() {
        let mut record = node
            .evolve
            .source(&name)
            .ok()
            .flatten()
            .unwrap_or(SourceRecord { name, ..record });
        record.watch = true;
        if let Err(e) = node.evolve.save_source(&record) {
            tracing::error!(error = %format!("{e:#}"), "saving the source");
        }
        watch::start(node, record);
    }
    outcome
}

/// Fetches (unless `fetched` is given), builds and deploys one version of a source; on failure
/// the version is recorded as failed with its reason and log, and whatever served before keeps
/// serving.
pub async fn build(
    node: &Arc<Node>,
    mut record: SourceRecord,
    fetched: Option<source::Fetched>,
    log: &Arc<BuildLog>,
) -> Result<VersionInfo, BuildFailure> {
    let scratch = node.evolve.scratch();
    let produced = produce(node, &mut record, fetched, log, &scratch, Purpose::Service).await;
    let _ = std::fs::remove_dir_all(&scratch);
    let outcome = match produced {
        Ok((info, wasm)) => deploy(node, &record, log, info, wasm).await,
        Err(f) => Err(f),
    };
    match &outcome {
        Ok(v) => {
            log.step("done", format!("{}@{} serves", v.name, v.version));
            log.send(Event::Done {
                version: serde_json::to_value(v).unwrap_or_default(),
            });
        }
        Err(f) => {
            let excerpt = log.excerpt();
            log.line(format!("error: {}", f.reason));
            log.send(Event::Failed {
                reason: f.reason.clone(),
                version: serde_json::to_value(&f.version).unwrap_or_default(),
                excerpt,
            });
        }
    }
    if let Some(v) = version_of(&outcome)
        && let Err(e) = node
            .registry
            .save_build_log(&v.name, &v.version, &log.text())
    {
        tracing::error!(error = %format!("{e:#}"), "saving the build log");
    }
    outcome
}

/// What a build is for: a service's version (recorded in its history), or a system component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A version of a service, kept in its history.
    Service,
    /// A system component (a builder, governance, the ledger): built, not deployed.
    System,
}

/// Builds a source into a component in `scratch`: fetch (unless the caller just did),
/// checkout, detect, build (or the artifact cache). `record.name` is filled in once the tree
/// names the service.
pub async fn produce(
    node: &Arc<Node>,
    record: &mut SourceRecord,
    fetched: Option<source::Fetched>,
    log: &Arc<BuildLog>,
    scratch: &Path,
    purpose: Purpose,
) -> Result<(VersionInfo, Vec<u8>), BuildFailure> {
    let fail = |info: &VersionInfo, reason: String| fail(node, info, reason, purpose);
    let failed_early =
        |record: &SourceRecord, reason: String| failed_early(node, record, reason, purpose);
    let evolve = &node.evolve;
    let display = record.source.display();
    // 1. Fetch (git) or read (local directory): the version's name comes from here.
    let mut checkout: Option<(source::Fetched, Option<String>)> = None;
    let (version, commit, tree_key) = match &record.source {
        Source::Git(git) => {
            let fetched = match fetched {
                Some(fetched) => fetched,
                None => {
                    log.step("fetch", format!("fetching {}", git.url));
                    fetch(node, git)
                        .await
                        .map_err(|e| failed_early(record, e.to_string()))?
                }
            };
            log.step(
                "fetch",
                format!(
                    "{} is {} ({})",
                    git.reference.as_deref().unwrap_or("HEAD"),
                    &fetched.commit[..12],
                    if fetched.received {
                        "new objects"
                    } else {
                        "no new objects"
                    }
                ),
            );
            record.last_commit = Some(fetched.commit.clone());
            let out = (
                fetched.commit[..12].to_string(),
                Some(fetched.commit.clone()),
                Some(fetched.tree.clone()),
            );
            checkout = Some((fetched, git.subdir.clone()));
            out
        }
        Source::Local { path } => {
            if !path.is_dir() {
                let reason = format!(
                    "{} is not a directory on the node's machine",
                    path.display()
                );
                return Err(failed_early(record, reason));
            }
            let hash = tree::content_hash(path).map_err(|e| failed_early(record, e.to_string()))?;
            // The content hash names the tree as a git tree id does: an unchanged directory
            // is not built again.
            (hash[..12].to_string(), None, Some(format!("dir {hash}")))
        }
    };
    // The name: asked for, kept from an earlier build, or from the source; the tree may name
    // it better once a builder has looked (a crate's name), when nothing was asked.
    let asked_name = !record.name.is_empty();
    if !asked_name {
        record.name = record.source.default_name();
    }
    let mut info = VersionInfo::building(
        &record.name,
        &version,
        Some(display.clone()),
        commit,
        record.lifetime_ms,
        node.clock.now_ms(),
    );
    // The builders this build uses, start to finish, whatever is swapped meanwhile.
    let builders = node
        .builders()
        .await
        .map_err(|e| fail(&info, e.to_string()))?
        .list();
    // An unchanged tree built by the same builders: reuse the component.
    let cache_key = tree_key
        .as_ref()
        .map(|tree| artifacts::key(tree, &builders));
    if let Some(key) = cache_key.as_ref().filter(|_| !record.rebuild)
        && let Some(hit) = evolve.artifacts.get(key)
        && let Ok(wasm) = node.registry.component(&hit.component)
    {
        log.step(
            "build",
            format!("cached: tree unchanged, component {}", &hit.component[..12]),
        );
        if !asked_name && !hit.name.is_empty() {
            record.name = hit.name.clone();
            info.name = hit.name.clone();
        }
        if let Some(version) = &hit.version {
            info.version = version.clone();
        }
        info.builder = Some(hit.builder.clone());
        return Ok((info, wasm));
    }
    // 2. Check out the commit into the build's scratch directory.
    let tree_dir = match (checkout, &record.source) {
        (Some((fetched, subdir)), _) => {
            log.step(
                "checkout",
                format!("{} into a scratch directory", &fetched.commit[..12]),
            );
            let dest = scratch.join("src");
            let into = dest.clone();
            let files = tokio::task::spawn_blocking(move || {
                source::checkout(&fetched.repo, &fetched.commit, &into)
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
            .map_err(|e| fail(&info, e))?;
            log.line(format!("{files} files written"));
            match subdir {
                Some(sub) => dest.join(sub),
                None => dest,
            }
        }
        // A directory is built where it is: it may reach beside itself (a crate of a cargo
        // workspace, a path dependency), as it does when its owner builds it.
        (None, Source::Local { path }) => path.clone(),
        (None, Source::Git(_)) => unreachable!("a git source is always fetched first"),
    };
    // 3. Ask every builder; the highest priority that recognises the tree builds it.
    let files = tree::list(&tree_dir).map_err(|e| fail(&info, e.to_string()))?;
    log.step(
        "detect",
        format!("{} files; asking {} builders", files.len(), builders.len()),
    );
    let sandbox = Arc::new(
        Sandbox::new(
            tree_dir.clone(),
            scratch.to_owned(),
            evolve.cargo_target(&display),
            evolve.kit.clone(),
            &node.config.evolve,
            node.config.limits.max_component_bytes,
            log.clone(),
        )
        .map_err(|e| fail(&info, format!("making the scratch directory: {e}")))?,
    );
    let (builder, plan) = detect(builders.clone(), &sandbox, &files)
        .await
        .map_err(|e| fail(&info, e))?;
    if !asked_name
        && let Some(name) = plan
            .name
            .as_deref()
            .map(|n| n.to_lowercase().replace('_', "-"))
        && micro_base::names::check_name(&name).is_ok()
    {
        record.name = name.clone();
        info.name = name;
    }
    info.builder = Some(format!("{}@{}", builder.name, builder.version));
    if purpose == Purpose::Service
        && let Err(e) = node.registry.note_building(&info)
    {
        tracing::error!(error = %format!("{e:#}"), "recording the version");
    }
    // 4. Build.
    log.step(
        "build",
        format!(
            "{} builder ({}): {}",
            builder.name, plan.language, plan.entry
        ),
    );
    let in_place = matches!(record.source, Source::Local { .. });
    let caches_before = if in_place {
        tree::caches(&tree_dir)
    } else {
        Vec::new()
    };
    let built = builder.build(sandbox.clone(), &plan).await;
    if in_place {
        tree::remove_added_caches(&tree_dir, &caches_before);
    }
    let artifact = match built {
        Ok(Ok(path)) => path,
        Ok(Err(reason)) => return Err(fail(&info, format!("build failed: {reason}"))),
        Err(e) => return Err(fail(&info, e.to_string())),
    };
    let path = sandbox
        .resolve(&artifact)
        .map_err(|e| fail(&info, format!("the builder answered a bad path: {e}")))?;
    let wasm = read_component(&path, node.config.limits.max_component_bytes)
        .map_err(|e| fail(&info, e))?;
    log.line(format!("built {} ({} bytes)", artifact, wasm.len()));
    if let Some(key) = &cache_key {
        let artifact = artifacts::Artifact {
            component: micro_base::names::content_hash(&wasm),
            builder: info.builder.clone().unwrap_or_default(),
            name: info.name.clone(),
            version: None,
        };
        evolve.artifacts.put(key, &artifact);
        // A tool may add files to a directory it builds in place (cargo's Cargo.lock): the
        // tree as the build left it is the same version, not a new one to build again.
        if let Source::Local { path } = &record.source
            && let Ok(after) = tree::content_hash(path)
            && Some(format!("dir {after}")) != tree_key
        {
            let key = artifacts::key(&format!("dir {after}"), &builders);
            evolve.artifacts.put(
                &key,
                &artifacts::Artifact {
                    version: Some(info.version.clone()),
                    ..artifact
                },
            );
        }
    }
    Ok((info, wasm))
}

async fn fetch(node: &Arc<Node>, git: &GitSource) -> Result<source::Fetched, source::SourceError> {
    let evolve = &node.evolve;
    let lock = evolve.lock(&format!("repo:{}", git.url));
    let _guard = lock.lock().await;
    let repos = evolve.repos_dir.clone();
    let git = git.clone();
    let url = git.url.clone();
    tokio::task::spawn_blocking(move || source::fetch(&repos, &git))
        .await
        .map_err(|e| source::SourceError::Fetch {
            url,
            message: e.to_string(),
        })?
}

/// Asks every builder whether it recognises the tree; the highest priority wins.
async fn detect(
    builders: Vec<Arc<Builder>>,
    sandbox: &Arc<Sandbox>,
    files: &[String],
) -> Result<(Arc<Builder>, Plan), String> {
    let mut best: Option<(Arc<Builder>, Plan)> = None;
    let mut reasons = Vec::new();
    for builder in builders {
        match builder.detect(sandbox.clone(), files).await {
            Ok(Detection::Recognised(plan)) => {
                sandbox.log.line(format!(
                    "{}: recognised ({}, {}, priority {})",
                    builder.name, plan.language, plan.entry, plan.priority
                ));
                if best
                    .as_ref()
                    .is_none_or(|(_, p)| plan.priority > p.priority)
                {
                    best = Some((builder, plan));
                }
            }
            Ok(Detection::NotRecognised(why)) => {
                sandbox.log.line(format!("{}: {why}", builder.name));
                reasons.push(format!(
                    "{} looked for {} ({why})",
                    builder.name, builder.looks_for
                ));
            }
            Err(e) => {
                sandbox.log.line(format!("{}: {e}", builder.name));
                reasons.push(e.to_string());
            }
        }
    }
    best.ok_or_else(|| format!("no builder recognises this tree: {}", reasons.join("; ")))
}

fn read_component(path: &Path, limit: usize) -> Result<Vec<u8>, String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("the build produced no component at {}: {e}", path.display()))?
        .len();
    if size as usize > limit {
        return Err(format!(
            "the build produced a component of {size} bytes, over the limit of {limit} bytes"
        ));
    }
    std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

/// Validates, checks and deploys a built component as the version described by `info`.
async fn deploy(
    node: &Arc<Node>,
    record: &SourceRecord,
    log: &Arc<BuildLog>,
    info: VersionInfo,
    wasm: Vec<u8>,
) -> Result<VersionInfo, BuildFailure> {
    log.step(
        "deploy",
        format!(
            "validating, compiling and checking {}@{}",
            info.name, info.version
        ),
    );
    let origin = Origin {
        version: Some(info.version.clone()),
        source: info.source.clone(),
        commit: info.commit.clone(),
        builder: info.builder.clone(),
        lifetime_ms: Some(record.lifetime_ms),
        ..Origin::default()
    };
    match crate::deploy::deploy_version(node, &info.name, wasm, origin).await {
        Ok(_) => {
            let mut saved = record.clone();
            if let Ok(Some(existing)) = node.evolve.source(&record.name) {
                saved.watch |= existing.watch;
            }
            if let Err(e) = node.evolve.save_source(&saved) {
                tracing::error!(error = %format!("{e:#}"), "saving the source");
            }
            let serving = node
                .registry
                .version_info(&info.name, &info.version)
                .ok()
                .flatten()
                .unwrap_or(info);
            Ok(serving)
        }
        Err(e) => Err(fail(
            node,
            &info,
            format!("the component was refused: {e}"),
            Purpose::Service,
        )),
    }
}

/// Records a failed version (it never takes traffic).
fn fail(node: &Arc<Node>, info: &VersionInfo, reason: String, purpose: Purpose) -> BuildFailure {
    let mut failed = info.clone();
    // A version that already serves (an earlier build of the same commit) stays as it is.
    let live = node
        .registry
        .get_version(&info.name, &info.version)
        .is_some();
    if !live && purpose == Purpose::Service {
        failed.state = VersionState::Failed;
        failed.reason = Some(reason.clone());
        if let Err(e) = node.registry.note_version(&failed) {
            tracing::error!(error = %format!("{e:#}"), "recording the failed version");
        }
    }
    tracing::warn!(service = %info.name, version = %info.version, %reason, "build failed");
    BuildFailure {
        reason,
        version: Some(failed),
    }
}

/// A failure before the version is known (a fetch that failed): recorded under the source's
/// name as version "unfetched" so `micro versions` shows it.
fn failed_early(
    node: &Arc<Node>,
    record: &SourceRecord,
    reason: String,
    purpose: Purpose,
) -> BuildFailure {
    let name = if record.name.is_empty() {
        record.source.default_name()
    } else {
        record.name.clone()
    };
    if micro_base::names::check_name(&name).is_err() {
        return BuildFailure::unnamed(reason);
    }
    let info = VersionInfo::building(
        &name,
        &format!("unfetched-{}", node.clock.now_ms()),
        Some(record.source.display()),
        None,
        record.lifetime_ms,
        node.clock.now_ms(),
    );
    fail(node, &info, reason, purpose)
}
