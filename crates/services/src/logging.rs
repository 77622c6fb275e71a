//! Log lines from services (the `logging` WIT interface), tagged with the service's name.

use crate::service_logs::ServiceLogs;
use micro_runtime::wit::micro::network::logging::{Host, Level};
use wasmtime::component::HasData;

/// Longest log line kept; a service cannot flood the node's log with one call.
const MAX_LINE: usize = 8 * 1024;

/// Where a call's log lines go: the node's log and its service's recent lines.
pub struct ServiceLog<'a> {
    logs: &'a ServiceLogs,
    service: &'a str,
}

impl<'a> ServiceLog<'a> {
    /// The lines of `service`, kept in `logs`.
    pub fn new(logs: &'a ServiceLogs, service: &'a str) -> Self {
        Self { logs, service }
    }
}

/// Links `logging` on a [`ServiceLog`] projected from a store's data.
pub struct HasServiceLog;

impl HasData for HasServiceLog {
    type Data<'a> = ServiceLog<'a>;
}

impl Host for ServiceLog<'_> {
    async fn log(&mut self, level: Level, message: String) {
        let service = self.service;
        let mut message = message;
        if message.len() > MAX_LINE {
            let cut = (0..=MAX_LINE)
                .rev()
                .find(|i| message.is_char_boundary(*i))
                .unwrap_or(0);
            message.truncate(cut);
            message.push('…');
        }
        let name = match level {
            Level::Trace => {
                tracing::trace!(target: "service", service, "{message}");
                "trace"
            }
            Level::Debug => {
                tracing::debug!(target: "service", service, "{message}");
                "debug"
            }
            Level::Info => {
                tracing::info!(target: "service", service, "{message}");
                "info"
            }
            Level::Warn => {
                tracing::warn!(target: "service", service, "{message}");
                "warn"
            }
            Level::Error => {
                tracing::error!(target: "service", service, "{message}");
                "error"
            }
        };
        // Trace lines only reach the node's log (when it asks for them): a service's own log
        // keeps what a developer reads.
        if !matches!(level, Level::Trace) {
            self.logs.push(service, name, message);
        }
    }
}
