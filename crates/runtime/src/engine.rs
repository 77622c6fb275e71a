//! The wasmtime engine: pooling allocation with copy-on-write memory, epoch interruption.

use super::functions::FunctionCache;
use micro_base::config::Limits;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the engine's epoch advances while a guest runs; the granularity of call
/// deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The stack wasm may use; deep recursion traps past it.
const MAX_WASM_STACK: usize = 1 << 20;

/// Which instance allocator the engine uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Allocator {
    /// Pre-reserved slots, reused across calls (fast instantiation).
    Pooling,
    /// Allocation per instance, used where the pool's virtual memory cannot be reserved.
    OnDemand,
}

fn base_config(functions: Option<&Arc<FunctionCache>>) -> anyhow::Result<Config> {
    let mut config = Config::new();
    if let Some(functions) = functions {
        config.enable_incremental_compilation(functions.clone())?;
    }
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.memory_init_cow(true);
    config.max_wasm_stack(MAX_WASM_STACK);
    config.async_stack_size(MAX_WASM_STACK + (1 << 20));
    Ok(config)
}

fn pooling(limits: &Limits) -> PoolingAllocationConfig {
    let instances = limits.max_instances.max(1);
    let mut pool = PoolingAllocationConfig::default();
    // Components from other toolchains hold several core instances, memories and tables each
    // (adapters, shims); size the pool for that.
    pool.total_component_instances(instances);
    pool.total_core_instances(instances * 8);
    pool.total_memories(instances * 2);
    pool.total_tables(instances * 8);
    pool.total_stacks(instances);
    pool.max_core_instances_per_component(64);
    pool.max_memories_per_component(8);
    pool.max_tables_per_component(32);
    pool.max_memory_size((limits.memory_mib as usize) << 20);
    pool.max_component_instance_size(1 << 20);
    pool.max_core_instance_size(1 << 20);
    pool.table_elements(100_000);
    if PoolingAllocationConfig::is_pagemap_scan_available() {
        // The kernel can tell which pages a call dirtied: reset just those with memset and keep
        // them resident, instead of unmapping them (madvise, TLB shootdowns) and faulting them
        // back in on the next call. This is most of the cost of a short call.
        pool.pagemap_scan(Enabled::Yes);
        pool.linear_memory_keep_resident(1 << 20);
        pool.table_keep_resident(1 << 20);
    } else {
        // Without it a reset must memset everything kept: keep only a little.
        pool.linear_memory_keep_resident(64 << 10);
    }
    pool
}

/// Builds the engine, preferring the pooling allocator and falling back to on-demand
/// allocation where its virtual memory cannot be reserved (for example under `ulimit -v`).
/// With `functions`, compiled functions are looked up in and added to that cache.
pub fn build(
    limits: &Limits,
    functions: Option<&Arc<FunctionCache>>,
) -> anyhow::Result<(Engine, Allocator)> {
    let mut config = base_config(functions)?;
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling(limits)));
    match Engine::new(&config) {
        Ok(engine) => Ok((engine, Allocator::Pooling)),
        Err(e) => {
            tracing::warn!(error = %e, "pooling allocator unavailable; allocating instances on demand");
            let mut config = base_config(functions)?;
            config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
            // Where the pool could not reserve its address space, 4 GiB per memory would not fit
            // either: reserve only what a memory may grow to (bounds checks become explicit).
            config.memory_reservation((limits.memory_mib << 20).max(1 << 20));
            config.memory_guard_size(64 << 10);
            config.memory_reservation_for_growth(0);
            Ok((Engine::new(&config)?, Allocator::OnDemand))
        }
    }
}

/// How often the epoch still advances while no guest runs: a guest run that nobody counted
/// (none should be) still meets its deadline, late, and idle nodes do not wake 200 times a
/// second for nothing.
pub const IDLE_TICK: Duration = Duration::from_millis(250);
/// How long the ticker keeps ticking at full rate after the last guest run ended: a node under
/// load, whose runs come and go, does not park and wake the ticker between them. Short,
/// because an idle node still runs a guest now and then (governance's observation round every
/// 2 s): with a lingering second the ticker ran at full rate half the time on a node doing
/// nothing (0.3 % of a core, most of an idle node's CPU), and a run that finds the ticker
/// parked only costs one wake-up.
const LINGER: Duration = Duration::from_millis(50);

struct Shared {
    /// Guest runs going on now.
    running: AtomicUsize,
    /// When the last run ended, in ms since `started`.
    last_ended_ms: AtomicU64,
    started: Instant,
    /// The ticker waits on `wake` (a run starting must wake it).
    parked: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
    stop: AtomicBool,
    /// Epochs advanced, for tests and the node's views.
    ticks: AtomicU64,
}

/// A handle to the engine's epoch ticker: whoever runs guest code holds a [`Running`] from it
/// for as long as the guest may run, and the epoch advances every [`EPOCH_TICK`] while any
/// does (and for a moment after), every [`IDLE_TICK`] otherwise.
#[derive(Clone)]
pub struct Ticker {
    shared: Arc<Shared>,
}

/// A guest run going on; the ticker slows down a while after the last one ends.
pub struct Running {
    shared: Arc<Shared>,
}

impl Ticker {
    /// A guest starts running.
    pub fn running(&self) -> Running {
        let shared = &self.shared;
        // Sequentially consistent with the ticker's `parked` then `running`: one of the two
        // sees the other, so a run never starts unseen by a parked ticker.
        shared.running.fetch_add(1, Ordering::SeqCst);
        if shared.parked.load(Ordering::SeqCst) {
            let _lock = micro_base::sync::lock(&shared.lock);
            shared.wake.notify_one();
        }
        Running {
            shared: shared.clone(),
        }
    }

    /// Epochs advanced since the ticker started.
    pub fn ticks(&self) -> u64 {
        self.shared.ticks.load(Ordering::Relaxed)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let shared = &self.shared;
        let now = shared.started.elapsed().as_millis() as u64;
        shared.last_ended_ms.store(now, Ordering::Relaxed);
        shared.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The one thread per engine that advances its epoch; stops when dropped.
pub struct EpochTicker {
    handle: Ticker,
}

impl EpochTicker {
    /// Starts ticking `engine`'s epoch.
    pub fn start(engine: &Engine) -> Self {
        let shared = Arc::new(Shared {
            running: AtomicUsize::new(0),
            last_ended_ms: AtomicU64::new(0),
            started: Instant::now(),
            parked: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            ticks: AtomicU64::new(0),
        });
        let engine = engine.clone();
        let ticking = shared.clone();
        std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || tick(&engine, &ticking))
            .map(|_| ())
            .unwrap_or_else(|e| tracing::error!(error = %e, "could not start the epoch ticker"));
        Self {
            handle: Ticker { shared },
        }
    }

    /// A handle for those who run guest code.
    pub fn handle(&self) -> Ticker {
        self.handle.clone()
    }
}

fn tick(engine: &Engine, shared: &Shared) {
    while !shared.stop.load(Ordering::Relaxed) {
        let idle_since = shared.last_ended_ms.load(Ordering::Relaxed);
        let now = shared.started.elapsed().as_millis() as u64;
        let lingering = now.saturating_sub(idle_since) < LINGER.as_millis() as u64;
        if shared.running.load(Ordering::SeqCst) > 0 || lingering {
            std::thread::sleep(EPOCH_TICK);
        } else {
            let lock = micro_base::sync::lock(&shared.lock);
            shared.parked.store(true, Ordering::SeqCst);
            if shared.running.load(Ordering::SeqCst) == 0 && !shared.stop.load(Ordering::SeqCst) {
                let waited = shared.wake.wait_timeout(lock, IDLE_TICK);
                drop(waited);
            }
            shared.parked.store(false, Ordering::SeqCst);
            if shared.running.load(Ordering::SeqCst) > 0 {
                // Woken by a run: its first tick comes a full tick later, as any other.
                continue;
            }
        }
        engine.increment_epoch();
        shared.ticks.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        let shared = &self.handle.shared;
        shared.stop.store(true, Ordering::SeqCst);
        let _lock = micro_base::sync::lock(&shared.lock);
        shared.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_epoch_advances_while_a_guest_runs_and_all_but_stops_when_none_does() {
        let engine = Engine::default();
        let ticker = EpochTicker::start(&engine);
        let handle = ticker.handle();
        let run = handle.running();
        let from = handle.ticks();
        // No time asserted: the ticks come, however loaded the machine.
        while handle.ticks() < from + 3 {
            std::thread::sleep(EPOCH_TICK);
        }
        drop(run);
        // It lingers a moment at full rate, and a tick in progress may still land.
        std::thread::sleep(LINGER + EPOCH_TICK * 2);
        let idle = handle.ticks();
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            handle.ticks() <= idle + 1,
            "ticks while idle: {}",
            handle.ticks() - idle
        );
        // A new run wakes it at once.
        let _run = handle.running();
        let woken = handle.ticks();
        while handle.ticks() < woken + 3 {
            std::thread::sleep(EPOCH_TICK);
        }
    }
}
