//! Governance's cost, measured in process against the node's own governance slot: a decision
//! asked of the component (uncached) and answered from the cache, for this node and for another
//! node (which also asks its reputation, and gets a rate limit); and a swap while decisions run.

use crate::{Args, Result};
use micro_core::system::governance::{Age, Asker, Governance, Visibility};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub(crate) fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    (
        at(0.5).as_nanos() as f64 / 1000.0,
        at(0.99).as_nanos() as f64 / 1000.0,
    )
}

/// Runs the governance measurements and prints a table.
pub fn run(args: &Args) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(measure(args))?;
    drop(runtime);
    swaps_under_load(args)
}

/// A node under wrk load (gateway calls to hello), once steady and once while governance is
/// swapped five times over the API (`micro governance use <dir>`): latency and errors of both.
fn swaps_under_load(args: &Args) -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (_node, url) = crate::start_micro(args, &dir.path().join("node"), "")?;
    crate::deploy(&url, "hello", &args.components.join("hello.wasm"))?;
    let source = dir.path().join("governance");
    std::fs::create_dir_all(&source).map_err(|e| e.to_string())?;
    std::fs::copy(
        args.components.join("micro_governance.wasm"),
        source.join("micro_governance.wasm"),
    )
    .map_err(|e| format!("copying micro_governance.wasm: {e}"))?;
    let target = format!("{url}/hello/greet");
    let body = Some(r#"{"name":"Ada"}"#);
    let steady = crate::wrk(&target, args.seconds, body, dir.path())?;
    let swapping = std::sync::Arc::new(AtomicBool::new(true));
    let swapper = {
        let (url, source, swapping) = (url.clone(), source.clone(), swapping.clone());
        let pause = Duration::from_millis(args.seconds * 1000 / 6);
        std::thread::spawn(move || -> Result<Vec<Duration>> {
            let mut took = Vec::new();
            for _ in 0..5 {
                std::thread::sleep(pause);
                let started = Instant::now();
                let mut answer = crate::agent()
                    .post(format!("{url}/api/governance"))
                    .send_json(serde_json::json!({ "source": source }))
                    .map_err(|e| e.to_string())?;
                let text = answer
                    .body_mut()
                    .read_to_string()
                    .map_err(|e| e.to_string())?;
                if !text.contains("in use") {
                    return Err(format!("the swap failed: {text}"));
                }
                took.push(started.elapsed());
            }
            swapping.store(false, Ordering::Relaxed);
            Ok(took)
        })
    };
    let during = crate::wrk(&target, args.seconds, body, dir.path())?;
    let took = swapper
        .join()
        .map_err(|_| "the swapping thread panicked".to_string())??;
    if swapping.load(Ordering::Relaxed) {
        return Err("the swaps did not finish within the load run".into());
    }
    let generation = crate::network::get_json(&url, "/api/governance")?["generation"].clone();
    println!("\n## Swapping governance under load (gateway calls to hello, wrk -t2 -c16)\n");
    println!("| run | calls/s | p50 | p99 | errors |");
    println!("| --- | --- | --- | --- | --- |");
    for (what, w) in [("steady", &steady), ("5 swaps during the run", &during)] {
        println!(
            "| {what} | {:.0} | {} | {} | {} |",
            w.rps,
            w.p50,
            w.p99,
            if w.errors.is_empty() {
                "none"
            } else {
                &w.errors
            }
        );
    }
    let (p50, _) = percentiles(took.clone());
    let max = took.iter().max().copied().unwrap_or_default();
    println!(
        "\nA swap over the API (build the directory's component with the builders, load, replace; generation now {generation}): median {:.1} ms, max {:.1} ms.",
        p50 / 1000.0,
        max.as_secs_f64() * 1000.0
    );
    Ok(())
}

async fn measure(args: &Args) -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config = micro_base::config::Config::default();
    let wasm_runtime = micro_core::host_state::Runtime::new(
        &config.limits,
        dir.path(),
        micro_core::host_state::link,
    )
    .map_err(|e| format!("{e:#}"))?;
    let governance = Arc::new(
        Governance::with_default(&wasm_runtime, micro_base::Clock::new())
            .await
            .map_err(|e| format!("{e:#}"))?,
    );
    let me = "a".repeat(64);
    let other = "b".repeat(64);
    let local = Asker {
        node: &me,
        local: true,
        pre_trusted: false,
        age: Age::Ms(0),
    };
    let remote = Asker {
        node: &other,
        local: false,
        pre_trusted: false,
        age: Age::Ms(0),
    };
    const N: usize = 20_000;
    println!("\n## Governance decisions (in process, default governance)\n");
    println!("| decision | p50 | p99 |");
    println!("| --- | --- | --- |");
    for (who, asker) in [("this node", &local), ("another node", &remote)] {
        // Uncached: a new question each time (services s0, s1, …).
        let mut uncached = Vec::with_capacity(N);
        for i in 0..N {
            let service = format!("s{i}");
            let started = Instant::now();
            let _ = governance
                .authorize_call(asker, &service, "m", Visibility::Public)
                .await;
            uncached.push(started.elapsed());
        }
        // Cached: the same question again (another node's allowance takes a rate token too).
        let mut cached = Vec::with_capacity(N);
        for _ in 0..N {
            let started = Instant::now();
            let _ = governance
                .authorize_call(asker, "s0", "m", Visibility::Public)
                .await;
            cached.push(started.elapsed());
        }
        let (p50, p99) = percentiles(uncached);
        println!("| call from {who}, asked of the component | {p50:.2} µs | {p99:.2} µs |");
        let (p50, p99) = percentiles(cached);
        println!("| call from {who}, from the cache | {p50:.3} µs | {p99:.3} µs |");
    }

    // What a call pays at the node: who the caller is (this node, or a peer: its id parsed,
    // its age and trust looked up), then the decision, from the cache after the first.
    // The peer is pre-trusted, so that 20 000 calls in a row stay within its allowance.
    let node_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let peer = micro_base::identity::Identity::load_or_create(dir.path())
        .map_err(|e| format!("{e:#}"))?
        .public()
        .to_string();
    let mut node_config = config.clone();
    node_config.governance.trusted = vec![peer.clone()];
    let node =
        micro_core::node::Node::open(node_config, node_dir.path()).map_err(|e| format!("{e:#}"))?;
    for (who, caller) in [("this node", node.id.clone()), ("another node", peer)] {
        let mut samples = Vec::with_capacity(N);
        for _ in 0..N {
            let started = Instant::now();
            let outcome = micro_core::transport::govern_call(&node, &caller, "s", "m", false).await;
            samples.push(started.elapsed());
            outcome.map_err(|e| format!("{e:?}"))?;
        }
        let (p50, p99) = percentiles(samples);
        println!(
            "| what a call from {who} pays at the node (caller, then the cached decision) | {p50:.3} µs | {p99:.3} µs |"
        );
    }

    // A swap while four tasks ask questions that miss the cache now and then.
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..4)
        .map(|t| {
            let (governance, stop) = (governance.clone(), stop.clone());
            tokio::spawn(async move {
                let node = "c".repeat(64);
                let asker = Asker {
                    node: &node,
                    local: true,
                    pre_trusted: false,
                    age: Age::Ms(0),
                };
                let mut samples = Vec::new();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let service = format!("t{t}-{}", i % 64);
                    let started = Instant::now();
                    let outcome = governance
                        .authorize_call(&asker, &service, "m", Visibility::Public)
                        .await;
                    samples.push((started.elapsed(), outcome.is_ok()));
                    i += 1;
                    // Decisions from the cache never wait: let the swapping task run.
                    tokio::task::yield_now().await;
                }
                samples
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let wasm = std::fs::read(args.components.join("micro_governance.wasm"))
        .map_err(|e| format!("reading micro_governance.wasm: {e}"))?;
    let mut swaps = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let loaded = governance
            .load(&wasm_runtime, &wasm, "bench")
            .await
            .map_err(|e| format!("{e:#}"))?;
        governance.replace(loaded);
        swaps.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut during = Vec::new();
    let mut failed = 0;
    for task in tasks {
        for (took, ok) in task.await.map_err(|e| e.to_string())? {
            during.push(took);
            failed += usize::from(!ok);
        }
    }
    let decisions = during.len();
    let (p50, p99) = percentiles(during);
    let (swap_p50, _) = percentiles(swaps.clone());
    let swap_max = swaps.iter().max().copied().unwrap_or_default();
    println!(
        "| decisions during 5 swaps (4 tasks, {decisions} decisions, {failed} refused) | {p50:.2} µs | {p99:.2} µs |"
    );
    println!(
        "\nA swap (compile from the code cache, instantiate, ask `info`, replace): median {:.1} ms, max {:.1} ms.",
        swap_p50 / 1000.0,
        swap_max.as_secs_f64() * 1000.0
    );
    Ok(())
}
