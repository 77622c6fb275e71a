//! What a simulation measured, and how it prints: one markdown table row per run.

use std::fmt;

/// Samples of one measure.
#[derive(Debug, Default, Clone)]
pub struct Samples(Vec<f64>);

impl Samples {
    /// Adds a sample.
    pub fn push(&mut self, x: f64) {
        self.0.push(x);
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// None yet.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `q` quantile (0 when empty).
    pub fn quantile(&self, q: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
    }

    /// The largest (0 when empty).
    pub fn max(&self) -> f64 {
        self.0.iter().copied().fold(0.0, f64::max)
    }

    /// The mean (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.0.is_empty() {
            0.0
        } else {
            self.0.iter().sum::<f64>() / self.0.len() as f64
        }
    }
}

/// What one simulation measured.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Honest nodes.
    pub nodes: usize,
    /// Sybil nodes.
    pub sybils: usize,
    /// Fraction of nodes replaced per hour.
    pub churn_per_hour: f64,
    /// Nodes replaced while measuring.
    pub churned: u64,
    /// Events processed.
    pub events: u64,
    /// Provider lookups finished while measuring.
    pub lookups: u64,
    /// Of them, those that found an entry.
    pub found: u64,
    /// Of them, those that found an entry of a live provider.
    pub found_live: u64,
    /// Lookups refused because the node ran as many as it allows.
    pub busy: u64,
    /// Requests in a row to the first entry found.
    pub hops: Samples,
    /// Time to the end of a successful lookup.
    pub lookup_ms: Samples,
    /// Requests a lookup sent.
    pub lookup_requests: Samples,
    /// Time a provide took (lookup and stores).
    pub provide_ms: Samples,
    /// Nodes that took an entry.
    pub stored: Samples,
    /// Time a join took.
    pub join_ms: Samples,
    /// Bytes in and out per second, per node that lived through the window.
    pub bytes_per_s: Samples,
    /// Messages in and out per second, per node.
    pub messages_per_s: Samples,
    /// Bytes of protocol state per node at the end.
    pub state_bytes: Samples,
    /// Routing table sizes at the end.
    pub table_len: Samples,
    /// Entries each node keeps for others at the end.
    pub entries_held: Samples,
    /// Bytes a provider entry takes on the wire.
    pub entry_bytes: usize,
    /// Wall time of the run.
    pub wall_s: f64,
    /// Peak resident memory of the simulator process.
    pub peak_rss_mb: f64,
}

impl Report {
    /// Share of provider lookups that found an entry.
    pub fn success(&self) -> f64 {
        if self.lookups == 0 {
            0.0
        } else {
            self.found as f64 / self.lookups as f64
        }
    }

    /// The markdown table's header.
    pub fn header() -> &'static str {
        "| nodes | Sybil | churn/h | bytes/s per node p50 / p99 / max | msgs/s p50 | state per node p50 / max | table p50 | lookups | found | hops p50 / p99 / max | lookup ms p50 / p99 | provide ms p50 / p99, replicas p50 | join ms p50 / p99 | wall s | RSS MB |\n| ---: | ---: | ---: | --- | ---: | --- | ---: | ---: | ---: | --- | --- | --- | --- | ---: | ---: |"
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "| {} | {:.0} % | {:.0} % | {:.0} / {:.0} / {:.0} | {:.2} | {:.1} KB / {:.1} KB | {:.0} | {} | {:.3} % | {:.0} / {:.0} / {:.0} | {:.0} / {:.0} | {:.0} / {:.0}, {:.0} | {:.0} / {:.0} | {:.0} | {:.0} |",
            self.nodes,
            100.0 * self.sybils as f64 / (self.nodes + self.sybils).max(1) as f64,
            100.0 * self.churn_per_hour,
            self.bytes_per_s.quantile(0.5),
            self.bytes_per_s.quantile(0.99),
            self.bytes_per_s.max(),
            self.messages_per_s.quantile(0.5),
            self.state_bytes.quantile(0.5) / 1000.0,
            self.state_bytes.max() / 1000.0,
            self.table_len.quantile(0.5),
            self.lookups,
            100.0 * self.success(),
            self.hops.quantile(0.5),
            self.hops.quantile(0.99),
            self.hops.max(),
            self.lookup_ms.quantile(0.5),
            self.lookup_ms.quantile(0.99),
            self.provide_ms.quantile(0.5),
            self.provide_ms.quantile(0.99),
            self.stored.quantile(0.5),
            self.join_ms.quantile(0.5),
            self.join_ms.quantile(0.99),
            self.wall_s,
            self.peak_rss_mb,
        )
    }
}

/// The process's peak resident memory, in MB (0 where /proc is not there).
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
