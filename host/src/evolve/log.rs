//! The log of one build: every step and every line the tools wrote, kept for
//! `micro logs <service>@<version> --build` and streamed to whoever started the build.

use serde::Serialize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tokio::sync::mpsc;

/// What a build reports as it goes.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// A step began (fetch, checkout, detect, build, deploy).
    Step {
        step: String,
        message: String,
        elapsed_ms: u64,
    },
    /// A line a tool or builder wrote.
    Log { line: String },
    /// The build ended: the version it made, or why it failed.
    Done { version: serde_json::Value },
    Failed {
        reason: String,
        version: serde_json::Value,
    },
}

/// One build's log, bounded by the build's output limit.
pub struct BuildLog {
    text: Mutex<String>,
    limit: usize,
    over: AtomicBool,
    started: Instant,
    events: Option<mpsc::UnboundedSender<Event>>,
}

impl BuildLog {
    /// A log of at most `limit` bytes; events also go to `events` when given.
    pub fn new(limit: usize, events: Option<mpsc::UnboundedSender<Event>>) -> Self {
        Self {
            text: Mutex::new(String::new()),
            limit,
            over: AtomicBool::new(false),
            started: Instant::now(),
            events,
        }
    }

    fn append(&self, line: &str) -> bool {
        let mut text = self.text.lock().unwrap_or_else(|p| p.into_inner());
        if text.len() + line.len() + 1 > self.limit {
            self.over.store(true, Ordering::Relaxed);
            return false;
        }
        text.push_str(line);
        text.push('\n');
        true
    }

    /// Adds a line; false once the log is over its limit (the build must stop).
    pub fn line(&self, line: impl Into<String>) -> bool {
        let line = line.into();
        let kept = self.append(&line);
        if kept {
            self.send(Event::Log { line });
        }
        kept
    }

    /// Marks the start of a step.
    pub fn step(&self, step: &str, message: impl Into<String>) {
        let message = message.into();
        let elapsed_ms = self.started.elapsed().as_millis() as u64;
        self.append(&format!(
            "==> [{:>7.3} s] {step}: {message}",
            elapsed_ms as f64 / 1000.0
        ));
        tracing::info!(step, %message, "build");
        self.send(Event::Step {
            step: step.to_string(),
            message,
            elapsed_ms,
        });
    }

    /// Sends the final event.
    pub fn send(&self, event: Event) {
        if let Some(tx) = &self.events {
            let _ = tx.send(event);
        }
    }

    /// Whether a tool wrote more than the limit.
    pub fn over_limit(&self) -> bool {
        self.over.load(Ordering::Relaxed)
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        self.text.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
