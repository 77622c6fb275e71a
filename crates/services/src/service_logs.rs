//! The recent runtime lines of each service: what it logged through the `logging` interface,
//! the calls that failed in it and the messages it could not handle. `micro logs <service>`
//! reads them; the node's own log has them too. Bounded per service, forgotten when the
//! service stops.

use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Lines kept per service (the oldest go first).
pub const LINES_PER_SERVICE: usize = 200;

/// One line of a service's runtime log.
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// trace, debug, info, warn or error.
    pub level: &'static str,
    /// The line.
    pub message: String,
}

/// Recent lines by service name.
pub struct ServiceLogs {
    services: Mutex<HashMap<String, VecDeque<LogLine>>>,
    clock: micro_base::Clock,
}

impl ServiceLogs {
    /// No lines yet; lines are stamped with `clock`.
    pub fn new(clock: micro_base::Clock) -> Self {
        Self {
            services: Mutex::default(),
            clock,
        }
    }

    /// Keeps a line of `service`'s, dropping its oldest past [`LINES_PER_SERVICE`].
    pub fn push(&self, service: &str, level: &'static str, message: impl Into<String>) {
        let line = LogLine {
            at_ms: self.clock.now_ms(),
            level,
            message: message.into(),
        };
        let mut services = micro_base::sync::lock(&self.services);
        let lines = match services.get_mut(service) {
            Some(lines) => lines,
            None => services.entry(service.to_string()).or_default(),
        };
        if lines.len() == LINES_PER_SERVICE {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// The newest `limit` lines of `service`, oldest first.
    pub fn recent(&self, service: &str, limit: usize) -> Vec<LogLine> {
        let services = micro_base::sync::lock(&self.services);
        services.get(service).map_or_else(Vec::new, |lines| {
            lines
                .iter()
                .skip(lines.len().saturating_sub(limit))
                .cloned()
                .collect()
        })
    }

    /// Forgets a stopped service's lines.
    pub fn forget(&self, service: &str) {
        micro_base::sync::lock(&self.services).remove(service);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_bounded_per_service_and_come_oldest_first() {
        let logs = ServiceLogs::new(micro_base::Clock::new());
        for i in 0..LINES_PER_SERVICE + 5 {
            logs.push("a", "info", format!("line {i}"));
        }
        logs.push("b", "warn", "other");
        let all = logs.recent("a", usize::MAX);
        assert_eq!(all.len(), LINES_PER_SERVICE);
        assert_eq!(all[0].message, "line 5");
        let last = logs.recent("a", 2);
        assert_eq!(
            last.iter().map(|l| l.message.as_str()).collect::<Vec<_>>(),
            [
                format!("line {}", LINES_PER_SERVICE + 3),
                format!("line {}", LINES_PER_SERVICE + 4)
            ]
        );
        logs.forget("a");
        assert!(logs.recent("a", 10).is_empty());
        assert_eq!(logs.recent("b", 10).len(), 1);
    }
}
