//! The ledger's cost, in process against a node's ledger slot with the default ledger: issuing
//! a token, checking one in the component (an ed25519 signature check through the host's
//! `identity`), and checking one the node verified before (the cache a call with a token hits);
//! what accounting adds to a call (charging it on the serving node, noting it on the calling
//! one), and how fast receipts are signed and taken. Then a cross-node call between two node
//! processes, to put the per-call cost beside it.

use crate::Result;
use crate::governance::percentiles;
use micro_core::system::ledger::Rights;
use std::time::Instant;

/// Runs the ledger measurements and prints tables.
pub fn run(args: &crate::Args) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(measure())?;
    let per_call = runtime.block_on(accounting())?;
    drop(runtime);
    let (p50, _) = crate::network::cross_node_calls(args)?;
    println!(
        "\nWhat accounting adds to a call ({per_call:.2} µs: charged on the serving node, \
         noted on the calling one) is {:.2} % of this run's cross-node call p50 ({p50:.1} µs; \
         goal: at most 10 %).",
        per_call / p50 * 100.0
    );
    Ok(())
}

/// Charging, noting and settling, in process: answers what a call pays (µs at p50).
async fn accounting() -> Result<f64> {
    let open = |dir: &std::path::Path| {
        micro_core::node::Node::open(micro_base::config::Config::default(), dir)
            .map_err(|e| format!("{e:#}"))
    };
    let (dir_a, dir_b) = (
        tempfile::tempdir().map_err(|e| e.to_string())?,
        tempfile::tempdir().map_err(|e| e.to_string())?,
    );
    let (a, b) = (open(dir_a.path())?, open(dir_b.path())?);
    let (ledger_a, ledger_b) = (
        a.ledger().await.map_err(|e| e.to_string())?,
        b.ledger().await.map_err(|e| e.to_string())?,
    );
    // B serves, A calls: 10 micro-tokens a call, so past A's allowance calls are charged.
    ledger_b
        .set_price("hello", 10)
        .await?
        .map_err(|e| e.to_string())?;
    const N: usize = 20_000;
    let mut charge = Vec::with_capacity(N);
    for _ in 0..N {
        let started = Instant::now();
        micro_core::transport::charge_call(&b, &a.id, "hello", "greet")
            .await
            .map_err(|e| format!("{e:?}"))?;
        charge.push(started.elapsed());
    }
    let mut owe = Vec::with_capacity(N);
    for _ in 0..N {
        let started = Instant::now();
        ledger_a.owe(&b.id, "hello", 10);
        owe.push(started.elapsed());
    }
    // One round of the settle loop with one payee: sign (and keep) one receipt; the payee
    // checks and keeps it.
    const R: usize = 300;
    let now = a.clock.now_ms();
    let (mut sign, mut take) = (Vec::with_capacity(R), Vec::with_capacity(R));
    for _ in 0..R {
        ledger_a.owe(&b.id, "hello", 10);
        let started = Instant::now();
        let due = ledger_a.receipts_due(&a.id, now).await;
        sign.push(started.elapsed());
        let receipt = due.into_iter().next_back().ok_or("no receipt signed")?;
        let started = Instant::now();
        ledger_b
            .accept_receipt(&receipt, now)
            .await
            .map_err(|e| e.to_string())?;
        take.push(started.elapsed());
        ledger_a.delivered(&receipt);
    }
    let charged = ledger_b.balances(now).await?;
    let spent = charged.first().map_or(0, |b| b.spent);
    println!("\n## Ledger: accounting (in process, default ledger)\n");
    println!("| operation | p50 | p99 |");
    println!("| --- | --- | --- |");
    let mut per_call = 0.0;
    for (what, samples, in_call) in [
        (
            "charge a call on the serving node (account, reputation cached, ledger in wasm)",
            charge,
            true,
        ),
        ("note what a call cost on the calling node", owe, true),
        (
            "sign and keep a receipt (one per payee per settle round)",
            sign.clone(),
            false,
        ),
        ("check and keep a receipt on the payee", take.clone(), false),
    ] {
        let (p50, p99) = percentiles(samples);
        if in_call {
            per_call += p50;
        }
        println!("| {what} | {p50:.2} µs | {p99:.2} µs |");
    }
    let (sign_p50, _) = percentiles(sign);
    let (take_p50, _) = percentiles(take);
    println!(
        "\nReceipts one node settles: {:.0}/s signed as payer, {:.0}/s taken as payee (each a \
         durable write); a node signs at most one per payee per round (250 ms), so this is \
         {:.0} payees paid every round. {spent} micro-tokens charged past the allowance.",
        1e6 / sign_p50,
        1e6 / take_p50,
        1e6 / sign_p50 / 4.0
    );
    Ok(per_call)
}

async fn measure() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let node = micro_core::node::Node::open(micro_base::config::Config::default(), dir.path())
        .map_err(|e| format!("{e:#}"))?;
    let ledger = node.ledger().await.map_err(|e| e.to_string())?;
    const N: usize = 2_000;
    let now = node.clock.now_ms();
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
