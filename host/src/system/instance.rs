//! One live instance of a system component (governance, the ledger), kept between questions so
//! a policy may keep state, and asked one question at a time within a deadline. A trap or an
//! overrun drops the instance (it cannot be entered again) and answers why; the next question
//! makes a fresh one.

use crate::runtime::CallLimiter;
use std::time::{Duration, Instant};
use wasmtime::{Engine, Store};

/// Slack past the deadline for a question stuck outside wasm.
const GRACE: Duration = Duration::from_millis(100);

/// Store data that carries its memory limiter.
pub trait Limited: Send + 'static {
    fn limiter(&mut self) -> &mut CallLimiter;
}

/// A store for a system component's instance: its memory limited, its deadline armed.
pub fn store<S: Limited>(engine: &Engine, state: S, deadline: Instant) -> Store<S> {
    let mut store = Store::new(engine, state);
    store.limiter(|s| s.limiter());
    crate::runtime::arm_deadline(&mut store, deadline);
    store
}

/// A system component's instance, made on first use.
pub struct Live<S: 'static, W> {
    slot: tokio::sync::Mutex<Option<(Store<S>, W)>>,
}

impl<S: 'static, W> Default for Live<S, W> {
    fn default() -> Self {
        Self {
            slot: tokio::sync::Mutex::new(None),
        }
    }
}

impl<S: Send + 'static, W: Send> Live<S, W> {
    /// Asks `question` of the instance (made by `make` first if there is none) within `time`
    /// from when it is its turn; `what` names the question in errors.
    pub async fn ask<T>(
        &self,
        what: &str,
        time: Duration,
        make: impl AsyncFnOnce(Instant) -> wasmtime::Result<(Store<S>, W)>,
        question: impl AsyncFnOnce(&W, &mut Store<S>) -> wasmtime::Result<T>,
    ) -> Result<T, String> {
        let mut live = self.slot.lock().await;
        // The question's time starts when it is its turn: waiting behind other questions is
        // not the component's time.
        let deadline = Instant::now() + time;
        let run = async {
            if live.is_none() {
                *live = Some(make(deadline).await?);
            }
            let Some((store, world)) = live.as_mut() else {
                unreachable!("made above");
            };
            crate::runtime::arm_deadline(store, deadline);
            question(world, store).await
        };
        let outcome = match tokio::time::timeout_at((deadline + GRACE).into(), run).await {
            Ok(Ok(answer)) => return Ok(answer),
            Ok(Err(e)) => super::describe_trap(&e, what),
            Err(_) => format!("{what} ran past its time limit and was stopped"),
        };
        *live = None;
        Err(outcome)
    }
}
