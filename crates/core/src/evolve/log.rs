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
        /// The step's name.
        step: String,
        /// What it is doing.
        message: String,
        /// Since the build began.
        elapsed_ms: u64,
    },
    /// A line a tool or builder wrote.
    Log {
        /// The line, without its newline.
        line: String,
    },
    /// The build ended with the version it made.
    Done {
        /// The version's info, as `GET /api/services/{name}/versions` lists it.
        version: serde_json::Value,
    },
    /// The build failed.
    Failed {
        /// Why, in a sentence.
        reason: String,
        /// The failed version's info, when the build got as far as naming one (else null).
        version: serde_json::Value,
        /// The lines of the tools' output that say what went wrong (see [`BuildLog::excerpt`]).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        excerpt: Vec<String>,
    },
}

/// Most lines an excerpt of a failed build shows.
const EXCERPT_LINES: usize = 20;

/// Whether a tool's line opens an error report: rustc's `error[E0599]:`/`error:`, Python's
/// traceback, a JavaScript bundler's `✘ [ERROR]`, a componentizer's `Error:`.
fn opens_error(line: &str) -> bool {
    let line = line.trim_start();
    line.starts_with("error")
        || line.starts_with("Error")
        || line.starts_with("Traceback")
        || line.starts_with("SyntaxError")
        || line.contains("[ERROR]")
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
        let mut text = micro_base::sync::lock(&self.text);
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

    /// What a failed build shows where it was started: the tools' lines from the first one that
    /// opens an error report (at most [`EXCERPT_LINES`]), or the last lines when none does.
    /// Step lines are left out: they were shown as they happened.
    pub fn excerpt(&self) -> Vec<String> {
        let text = self.text();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with("==> ") && !l.trim().is_empty())
            .collect();
        let start = lines
            .iter()
            .position(|l| opens_error(l))
            .unwrap_or(lines.len().saturating_sub(EXCERPT_LINES / 2));
        lines[start..]
            .iter()
            .take(EXCERPT_LINES)
            .map(|l| l.to_string())
            .collect()
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        micro_base::sync::lock(&self.text).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::BuildLog;

    #[test]
    fn an_excerpt_starts_at_the_compilers_first_error() {
        let log = BuildLog::new(1 << 20, None);
        log.step("build", "rust builder");
        for i in 0..30 {
            log.line(format!("   Compiling dep{i} v1.0.0"));
        }
        log.line("error[E0599]: no function or associated item named `unavailable`");
        log.line("  --> src/lib.rs:12:20");
        for i in 0..30 {
            log.line(format!("note {i}"));
        }
        let excerpt = log.excerpt();
        assert_eq!(excerpt.len(), 20);
        assert!(excerpt[0].starts_with("error[E0599]"), "{excerpt:?}");
        assert_eq!(excerpt[1], "  --> src/lib.rs:12:20");
    }

    #[test]
    fn without_an_error_line_an_excerpt_is_the_last_lines() {
        let log = BuildLog::new(1 << 20, None);
        for i in 0..30 {
            log.line(format!("line {i}"));
        }
        let excerpt = log.excerpt();
        assert_eq!(excerpt.first().map(String::as_str), Some("line 20"));
        assert_eq!(excerpt.last().map(String::as_str), Some("line 29"));
    }
}
