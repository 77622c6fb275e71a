//! The ledger's cost, in process against a node's ledger slot with the default ledger: issuing
//! a token, checking one in the component (an ed25519 signature check through the host's
//! `identity`), and checking one the node verified before (the cache a call with a token hits).

use crate::Result;
use crate::governance::percentiles;
use micro_host::system::ledger::Rights;
use std::time::Instant;

/// Runs the ledger measurements and prints a table.
pub fn run() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(measure())
}

async fn measure() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let node = micro_host::node::Node::open(micro_host::config::Config::default(), dir.path())
        .map_err(|e| format!("{e:#}"))?;
    let ledger = node.ledger().await?;
    const N: usize = 2_000;
    let now = micro_host::registry::now_ms();
    let open = || Rights {
        services: Vec::new(),
        methods: Vec::new(),
    };
    let mut issue = Vec::with_capacity(N);
    let mut token = String::new();
    for _ in 0..N {
        let started = Instant::now();
        token = ledger
            .issue_token("bench", open(), 3_600_000, now)
            .await
            .map_err(|e| e.to_string())?;
        issue.push(started.elapsed());
    }
    // Each check names another service, so none is answered from the cache.
    let mut uncached = Vec::with_capacity(N);
    for i in 0..N {
        let service = format!("s{i}");
        let started = Instant::now();
        ledger
            .verify_token(&token, &service, "m", now)
            .await
            .map_err(|e| e.to_string())?;
        uncached.push(started.elapsed());
    }
    let mut cached = Vec::with_capacity(N * 10);
    for _ in 0..N * 10 {
        let started = Instant::now();
        ledger
            .verify_token(&token, "s0", "m", now)
            .await
            .map_err(|e| e.to_string())?;
        cached.push(started.elapsed());
    }
    println!("\n## Ledger: API tokens (in process, default ledger)\n");
    println!("| operation | p50 | p99 |");
    println!("| --- | --- | --- |");
    for (what, samples) in [
        (
            "issue a token (sign through the host, store a counter)",
            issue,
        ),
        (
            "check a token in the ledger (signature, revocation, expiry, rights)",
            uncached,
        ),
        (
            "check a token verified before (what a call with a token pays)",
            cached,
        ),
    ] {
        let (p50, p99) = percentiles(samples);
        println!("| {what} | {p50:.2} µs | {p99:.2} µs |");
    }
    Ok(())
}
