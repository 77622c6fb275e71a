//! The node's one clock. Policy (governance, the ledger, tokens), retention, version lifetimes
//! and records all read it, so a test that moves time moves it for all of them alike. It is the
//! system clock plus an offset that only tests move (`governance.test_clock`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A handle to the node's clock; clones share one time.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicU64>,
}

impl Clock {
    /// The system clock, not moved.
    pub fn new() -> Self {
        Self::default()
    }

    /// Milliseconds since the Unix epoch on this clock.
    pub fn now_ms(&self) -> u64 {
        system_ms().saturating_add(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves the clock forward by `ms` (tests only; a clock never moves back).
    pub fn advance(&self, ms: u64) {
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// How far this clock is ahead of the system clock.
    pub fn offset_ms(&self) -> u64 {
        self.offset_ms.load(Ordering::Relaxed)
    }
}

/// The system clock in milliseconds since the Unix epoch (0 before it).
fn system_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_time_and_it_only_moves_forward() {
        let clock = Clock::new();
        let other = clock.clone();
        let before = other.now_ms();
        clock.advance(3_600_000);
        assert!(other.now_ms() >= before + 3_600_000);
        assert_eq!(other.offset_ms(), 3_600_000);
    }
}
