//! The peer network, measured against NATS in the same run:
//!
//! - cross-node call latency (`transport.call` from a component on node A to `examples/hello`
//!   on node B, timed in wasm) and throughput with 16 concurrent callers, against NATS
//!   request-reply with a native Rust responder;
//! - registry convergence: how long until a service deployed on one of 50 nodes is routable
//!   from all of them, and how long until a killed node's routes are gone everywhere;
//! - cross-node publish-to-delivery throughput against NATS core pub/sub.

use super::{
    Args, LOOPBACK_NETWORK, Proc, Result, agent, call, collect, deploy, nats, start_joining,
    start_nats,
};
use std::process::Command;
use std::time::{Duration, Instant};

/// Limits and timers of the benchmark nodes (the defaults are for the internet; these suit 50
/// nodes on 2 cores of one machine), on the loopback-only network of every benchmark node.
fn config() -> String {
    format!(
        "[limits]\nmax_instances = 64\ncall_timeout_ms = 600000\n\
         [broker]\nretain_messages = 0\nsubscriber_queue = 200000\n\
         {LOOPBACK_NETWORK}\
         heartbeat_ms = 1000\nreport_interval_ms = 2000\npeer_silence_ms = 6000\nconnect_timeout_ms = 1000\n"
    )
}

struct Node {
    proc: Proc,
    url: String,
    _dir: tempfile::TempDir,
}

pub(crate) fn get_json(url: &str, path: &str) -> Result<serde_json::Value> {
    let mut r = agent()
        .get(format!("{url}{path}"))
        .call()
        .map_err(|e| e.to_string())?;
    let text = r.body_mut().read_to_string().map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))
}

fn start(args: &Args, tickets: &[String]) -> Result<Node> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    start_in(args, dir, tickets, &[])
}

/// Starts a node in `dir`, joining through `tickets`, whose governance pre-trusts `trusted`
/// (a user's own nodes: no newcomer rate limit between them).
fn start_in(
    args: &Args,
    dir: tempfile::TempDir,
    tickets: &[String],
    trusted: &[String],
) -> Result<Node> {
    let config = format!("{}\n[governance]\ntrusted = {trusted:?}\n", config());
    let (proc, url) = start_joining(args, dir.path(), &config, tickets)?;
    Ok(Node {
        proc,
        url,
        _dir: dir,
    })
}

/// A node directory with the node's identity made, and its id, before the node starts.
fn identity(args: &Args) -> Result<(tempfile::TempDir, String)> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let out = std::process::Command::new(&args.micro)
        .args(["identity", "--json", "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .map_err(|e| format!("micro identity: {e}"))?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("micro identity printed no JSON: {e}"))?;
    let id = v["node"].as_str().ok_or("micro identity: no node id")?;
    Ok((dir, id.to_string()))
}

pub(crate) fn ticket(url: &str) -> Result<String> {
    get_json(url, "/api/network")?["ticket"]
        .as_str()
        .map(str::to_string)
        .ok_or("no ticket".into())
}

fn node_id(node: &Node) -> Result<String> {
    get_json(&node.url, "/api/health")?["node"]
        .as_str()
        .map(str::to_string)
        .ok_or("no id".into())
}

/// The ids of the nodes `service` is routed to from `url`, as it looks them up now (a provider
/// a call could not reach lately left out).
fn route_nodes(url: &str, service: &str) -> Vec<String> {
    get_json(url, &format!("/api/network/routes?service={service}"))
        .ok()
        .and_then(|v| v[0]["routes"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter(|r| r["healthy"] == true)
        .filter_map(|r| r["node"].as_str().map(str::to_string))
        .collect()
}

/// How often waiting loops poll: 50 pollers at once must not starve the nodes they watch.
fn poll_ms() -> u64 {
    10
}

/// Waits (polling every few ms) until `check` holds; the time it took.
pub(crate) fn wait(limit: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(poll_ms()));
    }
    None
}

pub(crate) fn percentile(samples: &mut [f64], q: f64) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)]
}

/// Runs the network benchmarks and prints their tables.
/// `BENCH_NETWORK=calls|events|convergence` runs one part only; `scale` runs the
/// hundreds-of-nodes benchmark, which only runs when named.
pub fn run(args: &Args) -> Result<()> {
    let only = std::env::var("BENCH_NETWORK").unwrap_or_default();
    let wanted = |part: &str| only.is_empty() || only == part;
    if wanted("calls") {
        cross_node_calls(args)?;
    }
    if wanted("events") {
        cross_node_events(args)?;
    }
    if wanted("convergence") {
        convergence(args, 50)?;
    }
    // Hundreds of processes for many minutes: only when asked for by name.
    if only == "scale" {
        super::scale::run(args)?;
    }
    Ok(())
}

/// Measures calls from a component on one node to a service on another, beside NATS
/// request-reply; answers micro's (p50, p99) in µs.
pub(crate) fn cross_node_calls(args: &Args) -> Result<(f64, f64)> {
    // The caller's node A and the serving node B are one user's: B pre-trusts A.
    let (dir_a, id_a) = identity(args)?;
    let a = start_in(args, dir_a, &[], &[])?;
    let dir_b = tempfile::tempdir().map_err(|e| e.to_string())?;
    let b = start_in(args, dir_b, &[ticket(&a.url)?], &[id_a])?;
    deploy(&b.url, "hello", &args.components.join("hello.wasm"))?;
    deploy(&a.url, "caller", &args.components.join("bench_caller.wasm"))?;
    wait(Duration::from_secs(30), || {
        !route_nodes(&a.url, "hello").is_empty()
    })
    .ok_or("node A never saw hello on node B")?;
    let body = |n: usize| {
        format!(r#"{{"service":"hello","method":"greet","body":{{"name":"Ada"}},"n":{n}}}"#)
    };
    call(&a.url, "/caller/measure", &body(500))?; // warm-up: connection, compiled code
    let m = call(&a.url, "/caller/measure", &body(5000))?;
    let us = |k: &str| m[k].as_f64().unwrap_or(0.0) / 1000.0;
    let (micro_p50, micro_p99) = (us("p50_ns"), us("p99_ns"));
    let per_thread = 1000;
    let start = Instant::now();
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let url = a.url.clone();
            let body = body(per_thread);
            std::thread::spawn(move || call(&url, "/caller/measure", &body))
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| "caller thread panicked")??;
    }
    let micro_rate = (16 * per_thread) as f64 / start.elapsed().as_secs_f64();
    let (nats_p50, nats_p99, nats_rate) = nats_request_reply(5000, 16, per_thread)?;
    println!("\n## Cross-node call (two nodes on loopback)\n");
    println!(
        "micro: `transport.call` from a component on node A to examples/hello on node B, timed in wasm (one QUIC stream per call, fresh instance per call on B). \
         NATS: request-reply through nats-server to a native Rust responder, async-nats client.\n"
    );
    println!("| path | p50 | p99 | calls/s (16 concurrent) | p50 ratio (NATS / micro) |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    println!(
        "| NATS request-reply | {nats_p50:.1} µs | {nats_p99:.1} µs | {nats_rate:.0} | 1.00 |"
    );
    println!(
        "| micro cross-node call | {micro_p50:.1} µs | {micro_p99:.1} µs | {micro_rate:.0} | {:.2} |",
        nats_p50 / micro_p50
    );
    Ok((micro_p50, micro_p99))
}

/// NATS request-reply: `n` sequential requests for latency, then `concurrent` requesters
/// making `each` requests for throughput. Returns (p50 µs, p99 µs, requests/s).
fn nats_request_reply(n: usize, concurrent: usize, each: usize) -> Result<(f64, f64, f64)> {
    let (_server, url) = start_nats()?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        use futures::StreamExt as _;
        let responder = async_nats::connect(&url).await.map_err(|e| e.to_string())?;
        let mut requests = responder
            .subscribe("hello.greet")
            .await
            .map_err(|e| e.to_string())?;
        responder.flush().await.map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let answer = bytes::Bytes::from_static(br#"{"message":"Hello, Ada!"}"#);
            while let Some(request) = requests.next().await {
                if let Some(reply) = request.reply {
                    let _ = responder.publish(reply, answer.clone()).await;
                }
            }
        });
        let client = async_nats::connect(&url).await.map_err(|e| e.to_string())?;
        let body = bytes::Bytes::from_static(br#"{"name":"Ada"}"#);
        for _ in 0..500 {
            client
                .request("hello.greet", body.clone())
                .await
                .map_err(|e| e.to_string())?;
        }
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            let start = Instant::now();
            client
                .request("hello.greet", body.clone())
                .await
                .map_err(|e| e.to_string())?;
            samples.push(start.elapsed().as_secs_f64() * 1e6);
        }
        let p50 = percentile(&mut samples, 0.5);
        let p99 = percentile(&mut samples, 0.99);
        let start = Instant::now();
        let tasks: Vec<_> = (0..concurrent)
            .map(|_| {
                let client = client.clone();
                let body = body.clone();
                tokio::spawn(async move {
                    for _ in 0..each {
                        client.request("hello.greet", body.clone()).await?;
                    }
                    Ok::<_, async_nats::RequestError>(())
                })
            })
            .collect();
        for t in tasks {
            t.await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
        }
        let rate = (concurrent * each) as f64 / start.elapsed().as_secs_f64();
        Ok((p50, p99, rate))
    })
}

fn cross_node_events(args: &Args) -> Result<()> {
    let n = 50_000u64;
    let a = start(args, &[])?;
    let b = start(args, &[ticket(&a.url)?])?;
    let a_id = node_id(&a)?;
    wait(Duration::from_secs(30), || {
        get_json(&b.url, "/api/network/nodes")
            .map(|v| v.to_string().contains(&a_id))
            .unwrap_or(false)
    })
    .ok_or("node B never saw node A")?;
    deploy(&a.url, "caller", &args.components.join("bench_caller.wasm"))?;
    // The subscriber is on B; the publisher, a component, on A.
    let done = collect(&b.url, "bench", n)?;
    let start = Instant::now();
    let published = call(
        &a.url,
        "/caller/publish",
        &format!(r#"{{"topic":"bench","n":{n},"size":64}}"#),
    )?;
    let last = done
        .recv_timeout(Duration::from_secs(600))
        .map_err(|_| "cross-node delivery did not finish".to_string())??;
    let publish_rate = n as f64 / (published["elapsed_ns"].as_f64().unwrap_or(1.0) / 1e9);
    let delivery = n as f64 / last.duration_since(start).as_secs_f64();
    let (_, nats_delivery) = nats(n)?;
    println!("\n## Cross-node publish → delivery (64-byte messages)\n");
    println!("| path | messages | publish rate | publish-to-delivery rate | vs NATS |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    println!("| nats-server (core), Rust clients | {n} | - | {nats_delivery:.0} msg/s | 1.00 |");
    println!(
        "| micro: component publisher on A, event-stream subscriber on B | {n} | {publish_rate:.0} msg/s | {delivery:.0} msg/s | {:.2} |",
        delivery / nats_delivery
    );
    Ok(())
}

fn convergence(args: &Args, count: usize) -> Result<()> {
    let started = Instant::now();
    let mut nodes: Vec<Node> = vec![start(args, &[])?];
    let hub = ticket(&nodes[0].url)?;
    for i in 1..count {
        // Everyone joins through the first node and one other, as users with two tickets would.
        let other = ticket(&nodes[i / 2].url)?;
        nodes.push(start(args, &[hub.clone(), other])?);
    }
    let ids: Vec<String> = nodes.iter().map(node_id).collect::<Result<_>>()?;
    // Joined: each node's DHT table holds as many contacts as a lookup needs (or every other
    // node, in a network smaller than that).
    let enough = (count as u64 - 1).min(8);
    let joined = wait(Duration::from_secs(120), || {
        nodes.iter().all(|n| {
            get_json(&n.url, "/api/network")
                .ok()
                .and_then(|v| v["dht"]["contacts"].as_u64())
                .is_some_and(|c| c >= enough)
        })
    })
    .ok_or("the nodes never all joined the DHT")?;
    println!("\n## Joining and finding services ({count} nodes on one 2-core machine)\n");
    println!(
        "{count} nodes started in {:.1} s; every node held {enough}+ DHT contacts after another {:.2} s. Heartbeat 1 s.\n",
        started.elapsed().as_secs_f64() - joined.as_secs_f64(),
        joined.as_secs_f64()
    );
    // A service deployed on one node: time until each other node routes to it.
    let mut samples = Vec::new();
    let mut deploys = Vec::new();
    for round in 0..5 {
        let owner = (round * 7 + 3) % count;
        let name = format!("conv{round}");
        let begin = Instant::now();
        deploy(
            &nodes[owner].url,
            &name,
            &args.components.join("hello.wasm"),
        )?;
        deploys.push(begin.elapsed().as_secs_f64() * 1000.0);
        let handles: Vec<_> = nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != owner)
            .map(|(_, n)| {
                let url = n.url.clone();
                let name = name.clone();
                std::thread::spawn(move || {
                    wait(Duration::from_secs(60), || {
                        !route_nodes(&url, &name).is_empty()
                    })
                })
            })
            .collect();
        for h in handles {
            let seen = h.join().map_err(|_| "poller panicked")?;
            let seen = seen.ok_or(format!("{name} never reached every node"))?;
            samples.push(seen.as_secs_f64() * 1000.0);
        }
    }
    let p50 = percentile(&mut samples, 0.5);
    let p99 = percentile(&mut samples, 0.99);
    let max = samples.iter().cloned().fold(0.0, f64::max);
    // A killed node (SIGKILL, no goodbye): time until no node routes to it.
    let victim = 3;
    let victim_id = ids[victim].clone();
    let mut killed = nodes.remove(victim);
    let _ = killed.proc.0.kill();
    let _ = killed.proc.0.wait();
    // Nothing tells the others: each finds out when a call fails (the DHT keeps the entry).
    let gone = wait(Duration::from_secs(60), || {
        nodes.iter().all(|n| {
            let _ = call(&n.url, "/conv0/greet", r#"{"name":"x"}"#);
            !route_nodes(&n.url, "conv0").contains(&victim_id)
        })
    })
    .ok_or("the killed node's routes never went away")?;
    // A node stopped cleanly (SIGTERM) says goodbye: its routes go at once.
    let conv1_owner = (7 + 3) % count;
    // The owner of conv1, its index shifted by the removal above.
    let leaver = if conv1_owner > victim {
        conv1_owner - 1
    } else {
        conv1_owner
    };
    let leaver_id = node_id(&nodes[leaver])?;
    let stopped = nodes.remove(leaver);
    let _ = Command::new("kill")
        .args(["-TERM", &stopped.proc.0.id().to_string()])
        .status();
    let gone_term = wait(Duration::from_secs(60), || {
        nodes
            .iter()
            .all(|n| !route_nodes(&n.url, "conv1").contains(&leaver_id))
    })
    .ok_or("the stopped node's routes never went away")?;
    drop(stopped);
    println!("| measure | samples | p50 | p99 | max |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    println!(
        "| new service routable from every other node (deploy answered → route listed) | {} | {p50:.0} ms | {p99:.0} ms | {max:.0} ms |",
        samples.len()
    );
    let deploy_p50 = percentile(&mut deploys, 0.5);
    println!(
        "| (for scale: the deploy itself, compile included) | {} | {deploy_p50:.0} ms | | |",
        deploys.len()
    );
    println!(
        "| killed node (SIGKILL): its routes gone from all {} nodes, each after a failed call | 1 | {:.2} s | | |",
        nodes.len(),
        gone.as_secs_f64()
    );
    println!(
        "| stopped node (SIGTERM, goodbye and withdrawals): its routes gone from all nodes | 1 | {:.0} ms | | |",
        gone_term.as_secs_f64() * 1000.0
    );
    Ok(())
}
