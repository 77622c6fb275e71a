//! Watchers: each watched source is polled at its interval; a new commit is built and deployed
//! with no human step. A commit that failed is not retried until a newer one arrives.

use super::log::BuildLog;
use super::source::Source;
use super::{SourceRecord, build};
use crate::node::Node;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::AbortHandle;

/// The running watchers, by service name.
#[derive(Default)]
pub struct Watchers {
    tasks: Mutex<HashMap<String, AbortHandle>>,
}

impl Watchers {
    /// Stops watching a service's source.
    pub fn stop(&self, name: &str) {
        if let Some(task) = self.lock().remove(name) {
            task.abort();
        }
    }

    /// The services being watched.
    pub fn watched(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, AbortHandle>> {
        micro_base::sync::lock(&self.tasks)
    }
}

/// Starts (or restarts) watching `record`'s source.
pub fn start(node: &Arc<Node>, record: SourceRecord) {
    if !matches!(record.source, Source::Git(_)) {
        tracing::warn!(service = %record.name, "only git sources are watched");
        return;
    }
    let name = record.name.clone();
    let task = tokio::spawn(poll(node.clone(), record));
    if let Some(old) = node
        .evolve
        .watchers
        .lock()
        .insert(name, task.abort_handle())
    {
        old.abort();
    }
}

/// Resumes the watchers of an earlier run.
pub fn resume(node: &Arc<Node>) -> anyhow::Result<usize> {
    let mut n = 0;
    for record in node.evolve.sources()? {
        if record.watch {
            start(node, record);
            n += 1;
        }
    }
    Ok(n)
}

async fn poll(node: Arc<Node>, mut record: SourceRecord) {
    let interval = Duration::from_millis(record.interval_ms);
    tracing::info!(service = %record.name, source = %record.source.display(), every_ms = record.interval_ms, "watching");
    loop {
        tokio::time::sleep(interval).await;
        let Source::Git(git) = &record.source else {
            return;
        };
        let fetched = match super::fetch(&node, git).await {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(service = %record.name, error = %e, "polling the source");
                continue;
            }
        };
        if record.last_commit.as_deref() == Some(fetched.commit.as_str()) {
            continue;
        }
        tracing::info!(service = %record.name, commit = %fetched.commit, "new commit");
        // The saved record may have changed (a manual run of the same source).
        if let Ok(Some(saved)) = node.evolve.source(&record.name) {
            record.lifetime_ms = saved.lifetime_ms;
        }
        let log = Arc::new(BuildLog::new(
            node.config.evolve.max_build_output_bytes,
            None,
        ));
        record.last_commit = Some(fetched.commit.clone());
        let outcome = build(&node, record.clone(), Some(fetched), &log).await;
        // A deployed commit saved the record; a failed one is saved here, not to be retried.
        if let Err(e) = &outcome {
            tracing::warn!(service = %record.name, reason = %e, "the new commit did not deploy");
            if let Err(e) = node.evolve.save_source(&record) {
                tracing::error!(error = %format!("{e:#}"), "saving the source");
            }
        }
    }
}
