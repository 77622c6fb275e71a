//! A change counter that watchers can await: the registry, the directory of node records and
//! the peer table each own one, so the events under `/api/changes` (and the network's own
//! reactions) follow what changed without polling.

use tokio::sync::watch;

/// Counts the changes of the state that owns it.
#[derive(Debug)]
pub struct Changes(watch::Sender<u64>);

impl Default for Changes {
    fn default() -> Self {
        Self(watch::channel(0).0)
    }
}

impl Changes {
    /// Says that the owner's state changed; wakes every watcher.
    pub fn notify(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees every change from now on.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }

    /// How many changes there have been.
    pub fn count(&self) -> u64 {
        *self.0.borrow()
    }
}
