//! Benchmarks micro against the peer a user would pick, in one run on the same machine:
//!
//! 1. gateway throughput under wrk (16 connections): a stock `wasi:http` hello component under
//!    `wasmtime serve` vs the same component under micro, and `examples/hello` under micro;
//! 2. component-to-component calls through `transport.call`, p50 and p99, measured in wasm;
//! 3. local publish-to-delivery throughput, with and without retention;
//! 4. the peer network (`network`): cross-node calls against NATS request-reply, registry
//!    convergence on 50 nodes, cross-node publish-to-delivery against NATS core;
//! 5. evolution from source (`evolve`): commit to serving for Rust and Python;
//! 6. services in each language (`languages`): size, deploy, first call, steady calls.
//!
//! `BENCH_ONLY=network`, `evolve`, `languages`, `governance` or `ledger` runs only that part;
//! `BENCH_ONLY=gateway` runs parts 1 to 3.
//! Run through `scripts/bench`, which installs wrk and wasmtime-cli and builds everything.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod evolve;
mod governance;
mod languages;
mod ledger;
mod network;
mod scale;

type Result<T> = std::result::Result<T, String>;

#[derive(Clone)]
struct Args {
    micro: PathBuf,
    wasmtime: PathBuf,
    components: PathBuf,
    seconds: u64,
}

fn args() -> Result<Args> {
    let env = |k: &str| {
        std::env::var_os(k)
            .map(PathBuf::from)
            .ok_or(format!("{k} is not set (run scripts/bench)"))
    };
    Ok(Args {
        micro: env("MICRO_BIN")?,
        wasmtime: env("WASMTIME_BIN")?,
        components: env("COMPONENTS_DIR")?,
        seconds: std::env::var("BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10),
    })
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Where a child process announces that it is ready.
#[derive(Clone, Copy)]
enum Announces {
    OnStdout,
    OnStderr,
}

/// Spawns `command` and waits for the first line of its announcing stream that contains
/// `marker` (a readiness line); returns the process and that line. The rest of the stream is
/// drained so the child never blocks on a full pipe.
fn spawn_ready(
    mut command: Command,
    what: &str,
    on: Announces,
    marker: &'static str,
) -> Result<(Proc, String)> {
    match on {
        Announces::OnStdout => command.stdout(Stdio::piped()).stderr(Stdio::null()),
        Announces::OnStderr => command.stdout(Stdio::null()).stderr(Stdio::piped()),
    };
    let mut child = command
        .spawn()
        .map_err(|e| format!("starting {what}: {e}"))?;
    let stream: Box<dyn std::io::Read + Send> = match on {
        Announces::OnStdout => Box::new(child.stdout.take().ok_or("no stdout")?),
        Announces::OnStderr => Box::new(child.stderr.take().ok_or("no stderr")?),
    };
    let process = Proc(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stream)
            .lines()
            .map_while(std::result::Result::ok)
        {
            if !sent && line.contains(marker) {
                let _ = tx.send(line);
                sent = true;
            }
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(120))
        .map_err(|_| format!("{what} printed no readiness line within 120 s"))?;
    Ok((process, line))
}

/// The URL in a readiness line.
fn url_in(line: &str) -> Result<String> {
    line.split_whitespace()
        .find(|w| w.starts_with("http://"))
        .map(|url| url.trim_end_matches('/').to_string())
        .ok_or_else(|| format!("no URL in {line:?}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18181)
}

fn start_wasmtime(args: &Args, options: &[&str]) -> Result<(Proc, String)> {
    let mut command = Command::new(&args.wasmtime);
    command
        .args([
            "serve",
            "-Scli",
            "--addr",
            &format!("127.0.0.1:{}", free_port()),
        ])
        .args(options)
        .arg(args.components.join("http_hello.wasm"));
    let (process, line) = spawn_ready(command, "wasmtime serve", Announces::OnStderr, "http://")?;
    Ok((process, url_in(&line)?))
}

/// The peer layer of benchmark nodes: loopback only, nothing that needs the internet.
const LOOPBACK_NETWORK: &str = r#"
[network]
bind = "127.0.0.1:0"
relays = false
public_lookup = false
mdns = false
port_mapping = false
"#;

fn start_micro(args: &Args, dir: &Path, config: &str) -> Result<(Proc, String)> {
    start_joining(args, dir, config, &[])
}

/// Starts a node that joins the network through `tickets`.
fn start_joining(
    args: &Args,
    dir: &Path,
    config: &str,
    tickets: &[String],
) -> Result<(Proc, String)> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let full = if config.contains("[network]") {
        config.to_string()
    } else {
        format!("{config}\n{LOOPBACK_NETWORK}")
    };
    std::fs::write(dir.join("config.toml"), full).map_err(|e| e.to_string())?;
    let mut command = Command::new(&args.micro);
    command
        .arg("server")
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--listen", "127.0.0.1:0", "--config"])
        .arg(dir.join("config.toml"))
        .args(tickets.iter().flat_map(|t| ["--peer", t.as_str()]))
        .env("RUST_LOG", "warn");
    let (process, line) = spawn_ready(command, "micro", Announces::OnStdout, "http://")?;
    Ok((process, url_in(&line)?))
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn deploy(url: &str, name: &str, wasm: &Path) -> Result<()> {
    let bytes = std::fs::read(wasm).map_err(|e| format!("{}: {e}", wasm.display()))?;
    let mut r = agent()
        .put(format!("{url}/api/services/{name}"))
        .send(&bytes[..])
        .map_err(|e| e.to_string())?;
    if r.status().as_u16() != 201 {
        return Err(format!(
            "deploying {name}: {}",
            r.body_mut().read_to_string().unwrap_or_default()
        ));
    }
    Ok(())
}

fn call(url: &str, path: &str, body: &str) -> Result<serde_json::Value> {
    let mut r = agent()
        .post(format!("{url}{path}"))
        .send(body)
        .map_err(|e| e.to_string())?;
    let text = r.body_mut().read_to_string().map_err(|e| e.to_string())?;
    if r.status().as_u16() != 200 {
        return Err(format!("POST {path}: {} {text}", r.status()));
    }
    serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))
}

/// Requests per second and latency (p50, p99) that wrk measured.
struct Wrk {
    rps: f64,
    p50: String,
    p99: String,
    errors: String,
}

fn wrk(url: &str, seconds: u64, post_body: Option<&str>, dir: &Path) -> Result<Wrk> {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t2", "-c16", &format!("-d{seconds}s"), "--latency"]);
    if let Some(body) = post_body {
        let script = dir.join("post.lua");
        let lua = format!(
            "wrk.method = \"POST\"\nwrk.body = '{body}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
        );
        std::fs::write(&script, lua).map_err(|e| e.to_string())?;
        cmd.arg("-s").arg(script);
    }
    let out = cmd
        .arg(url)
        .output()
        .map_err(|e| format!("running wrk: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_string()))
    };
    let rps = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .ok_or(format!("wrk printed no rate:\n{text}"))?;
    let errors = text
        .lines()
        .filter(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("; ");
    Ok(Wrk {
        rps,
        p50: field("50%").unwrap_or_default(),
        p99: field("99%").unwrap_or_default(),
        errors,
    })
}

/// Reads `n` messages from a topic's event stream; returns when the last one arrived.
fn collect(url: &str, topic: &str, n: u64) -> Result<mpsc::Receiver<Result<Instant>>> {
    let response = agent()
        .get(format!("{url}/api/topics/{topic}/events"))
        .call()
        .map_err(|e| e.to_string())?;
    let mut lines = BufReader::new(response.into_body().into_reader()).lines();
    // The first data line confirms the subscription.
    for line in lines.by_ref() {
        if line.map_err(|e| e.to_string())?.starts_with("data: ") {
            break;
        }
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = 0;
        for line in lines {
            match line {
                Ok(l) if l.starts_with("data: ") => {
                    seen += 1;
                    if seen == n {
                        let _ = tx.send(Ok(Instant::now()));
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            }
        }
        let _ = tx.send(Err(format!("stream ended after {seen} of {n} messages")));
    });
    Ok(rx)
}

/// `publishers` concurrent calls of the bench component each publish `n / publishers` 64-byte
/// messages; one event-stream subscriber receives them. Returns (publish rate, publish-to-delivery
/// rate); the publish rate is total messages over the slowest publisher's time in wasm.
fn pubsub(args: &Args, retain: bool, n: u64, publishers: u64) -> Result<(f64, f64)> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config = format!(
        "[broker]\nretain_messages = {}\nsubscriber_queue = {}\n[limits]\ncall_timeout_ms = 600000\n",
        if retain { 1000 } else { 0 },
        n + 16
    );
    let (_node, url) = start_micro(args, dir.path(), &config)?;
    deploy(&url, "caller", &args.components.join("bench_caller.wasm"))?;
    let done = collect(&url, "bench", n)?;
    let each = n / publishers;
    let start = Instant::now();
    let calls: Vec<_> = (0..publishers)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                call(
                    &url,
                    "/caller/publish",
                    &format!(r#"{{"topic":"bench","n":{each},"size":64}}"#),
                )
            })
        })
        .collect();
    let mut slowest = 0.0f64;
    for c in calls {
        let published = c
            .join()
            .map_err(|_| "publisher thread panicked".to_string())??;
        slowest = slowest.max(published["elapsed_ns"].as_f64().unwrap_or(1.0));
    }
    let last = done
        .recv_timeout(Duration::from_secs(600))
        .map_err(|_| "delivery did not finish".to_string())??;
    let publish_rate = n as f64 / (slowest / 1e9);
    let delivery_rate = n as f64 / last.duration_since(start).as_secs_f64();
    Ok((publish_rate, delivery_rate))
}

/// Starts a `nats-server` on a free loopback port; returns it and its URL.
fn start_nats() -> Result<(Proc, String)> {
    let port = free_port();
    let mut command = Command::new("nats-server");
    command.args(["-a", "127.0.0.1", "-p", &port.to_string()]);
    let (server, _) = spawn_ready(
        command,
        "nats-server (apt-get install nats-server)",
        Announces::OnStderr,
        "Server is ready",
    )?;
    Ok((server, format!("nats://127.0.0.1:{port}")))
}

/// Core NATS, the peer a user would pick for events: one connection publishes `n` 64-byte
/// messages, another receives them. Returns (publish rate, publish-to-delivery rate).
fn nats(n: u64) -> Result<(f64, f64)> {
    let (_server, url) = start_nats()?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        use futures::StreamExt as _;
        let publisher = async_nats::connect(&url).await.map_err(|e| e.to_string())?;
        let receiver = async_nats::connect(&url).await.map_err(|e| e.to_string())?;
        let mut subscription = receiver
            .subscribe("bench")
            .await
            .map_err(|e| e.to_string())?;
        receiver.flush().await.map_err(|e| e.to_string())?;
        let count = tokio::spawn(async move {
            let mut seen = 0;
            while subscription.next().await.is_some() {
                seen += 1;
                if seen == n {
                    return Ok(Instant::now());
                }
            }
            Err(format!("subscription ended after {seen} of {n}"))
        });
        let payload = bytes::Bytes::from(vec![b'x'; 64]);
        let start = Instant::now();
        for _ in 0..n {
            publisher
                .publish("bench", payload.clone())
                .await
                .map_err(|e| e.to_string())?;
        }
        publisher.flush().await.map_err(|e| e.to_string())?;
        let published = start.elapsed();
        let last = count.await.map_err(|e| e.to_string())??;
        Ok((
            n as f64 / published.as_secs_f64(),
            n as f64 / last.duration_since(start).as_secs_f64(),
        ))
    })
}

fn main() {
    if let Err(e) = run() {
        eprintln!("benchmark failed: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args = args()?;
    match std::env::var("BENCH_ONLY").as_deref() {
        Ok("network") => return network::run(&args),
        Ok("evolve") => return evolve::run_all(&args),
        Ok("languages") => return languages::run(&args),
        Ok("governance") => return governance::run(&args),
        Ok("ledger") => return ledger::run(&args),
        _ => {}
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let s = args.seconds;
    println!("# micro benchmarks ({s} s per wrk run, wrk -t2 -c16)\n");

    let (wasmtime, wt_url) = start_wasmtime(&args, &[])?;
    let plain = wrk(&format!("{wt_url}/"), s, None, dir.path())?;
    drop(wasmtime);
    let (wasmtime, wt_url) = start_wasmtime(&args, &["-O", "pooling-allocator=y"])?;
    let pooled = wrk(&format!("{wt_url}/"), s, None, dir.path())?;
    drop(wasmtime);
    // Ratios are against the faster of the two wasmtime configurations.
    let base_rps = plain.rps.max(pooled.rps);

    let node_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (_node, url) = start_micro(&args, node_dir.path(), "")?;
    deploy(&url, "web", &args.components.join("http_hello.wasm"))?;
    deploy(&url, "hello", &args.components.join("hello.wasm"))?;
    deploy(&url, "caller", &args.components.join("bench_caller.wasm"))?;
    let web = wrk(&format!("{url}/web/"), s, None, dir.path())?;
    let hello = wrk(
        &format!("{url}/hello/greet"),
        s,
        Some(r#"{"name":"Ada"}"#),
        dir.path(),
    )?;

    println!("## Gateway throughput\n");
    println!("| target | req/s | p50 | p99 | ratio vs best wasmtime serve | errors |");
    println!("| --- | ---: | ---: | ---: | ---: | --- |");
    for (name, w) in [
        ("wasi:http hello, `wasmtime serve` (defaults)", &plain),
        (
            "wasi:http hello, `wasmtime serve -O pooling-allocator=y`",
            &pooled,
        ),
        ("wasi:http hello, micro", &web),
        ("examples/hello (POST /hello/greet), micro", &hello),
    ] {
        println!(
            "| {name} | {:.0} | {} | {} | {:.2} | {} |",
            w.rps,
            w.p50,
            w.p99,
            w.rps / base_rps,
            w.errors
        );
    }

    let body = r#"{"service":"hello","method":"greet","body":{"name":"Ada"},"n":1000}"#;
    call(&url, "/caller/measure", body)?; // warm-up
    let m = call(&url, "/caller/measure", &body.replace("1000", "20000"))?;
    let us = |k: &str| m[k].as_f64().unwrap_or(0.0) / 1000.0;
    println!(
        "\n## Component-to-component call (`transport.call` to examples/hello greet, measured in wasm)\n"
    );
    println!("| n | p50 | p99 | mean | min |");
    println!("| ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| {} | {:.1} µs | {:.1} µs | {:.1} µs | {:.1} µs |",
        m["n"],
        us("p50_ns"),
        us("p99_ns"),
        us("mean_ns"),
        us("min_ns")
    );

    println!("\n## Local publish → delivery (64-byte messages, one event-stream subscriber)\n");
    println!(
        "| broker | retention | messages | publish rate | publish-to-delivery rate | vs NATS |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
    let n = 50_000;
    let (nats_publish, nats_delivery) = nats(n)?;
    println!(
        "| nats-server (core), Rust client | none | {n} | {nats_publish:.0} msg/s | {nats_delivery:.0} msg/s | 1.00 |"
    );
    for (retain, n, publishers) in [(false, n, 1), (true, 2_000, 1), (true, 8_000, 8)] {
        let (publish, delivery) = pubsub(&args, retain, n, publishers)?;
        let retention = if retain { "1000 msgs, durable" } else { "off" };
        println!(
            "| micro, {publishers} component publisher(s), event-stream subscriber | {retention} | {n} | {publish:.0} msg/s | {delivery:.0} msg/s | {:.2} |",
            delivery / nats_delivery
        );
    }
    if std::env::var("BENCH_ONLY").as_deref() == Ok("gateway") {
        return Ok(());
    }
    network::run(&args)?;
    evolve::run_all(&args)?;
    languages::run(&args)
}
