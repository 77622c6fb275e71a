//! Shared by the end-to-end tests: starts real `micro server` processes on loopback, finds the
//! components built from this repository, and talks to nodes over HTTP and through the CLI.
//!
//! The node binary and the components must be built first; `scripts/test` does both.

mod checks;
mod git;
pub mod network;
mod node;
mod paths;

pub use checks::{chat_history, chat_reaches, faults_are_answers};
pub use git::GitRepo;
pub use node::{LOOPBACK_NETWORK, Subscriber, TestNode};
pub use paths::{
    artifacts_dir, component, component_dir, example, micro_bin, previous_bin, repo_root,
};
use std::time::Duration;

/// An HTTP client that returns error statuses as answers instead of failing.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// (a delivered message); fails the test after 30 s.
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let until = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            std::time::Instant::now() < until,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
