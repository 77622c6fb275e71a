//! The network at the scale of this machine: as many real node processes as it holds (250 by
//! default, `BENCH_SCALE_NODES=40,250` for several sizes), on loopback inside a network namespace
//! the benchmark makes itself, where nftables counts each node's UDP bytes by port. Printed per
//! node (p50 / p99 / max over the nodes): RSS, CPU share of one core, bytes/s in and out on the
//! wire and by message kind (as the node counts its frames), connections and table sizes; then
//! deploy → first successful call from random nodes, a provider's death → its callers' next
//! call, and pub/sub delivery across nodes. `BENCH_SCALE_OLD` names a binary of the design
//! before (every node's record on every node, anti-entropy, pings to every node), measured
//! first in the same run at `BENCH_SCALE_OLD_NODES` (default: the same sizes).

use super::network::{get_json, percentile, ticket, wait};
use super::{Args, Proc, Result, call, collect, deploy, start_joining};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// Set in the re-executed benchmark that runs inside its own network namespace.
const INSIDE: &str = "MICRO_BENCH_NETNS";

/// The nftables table counting UDP bytes per port, in the namespace only.
const NFT_SETUP: &[&str] = &[
    "add table inet micro_bench",
    "add set inet micro_bench sent { type inet_service; flags dynamic; counter; size 65535; }",
    "add set inet micro_bench received { type inet_service; flags dynamic; counter; size 65535; }",
    "add chain inet micro_bench out { type filter hook output priority 0; }",
    "add rule inet micro_bench out meta l4proto udp update @sent { udp sport }",
    "add rule inet micro_bench out meta l4proto udp update @received { udp dport }",
];

/// Runs the scale benchmark, inside a network namespace of its own when this process may make
/// one (root, `unshare` and `nft` present); otherwise on the host's loopback without wire
/// counters.
pub fn run(args: &Args) -> Result<()> {
    if std::env::var_os(INSIDE).is_none() && may_isolate() {
        let exe = std::env::current_exe().map_err(|e| format!("this benchmark's path: {e}"))?;
        let status = Command::new("unshare")
            .arg("-n")
            .arg(exe)
            .env(INSIDE, "1")
            .env("BENCH_ONLY", "network")
            .env("BENCH_NETWORK", "scale")
            .status()
            .map_err(|e| format!("unshare -n: {e}"))?;
        return if status.success() {
            Ok(())
        } else {
            Err(format!(
                "the scale benchmark in its namespace failed: {status}"
            ))
        };
    }
    let counted = std::env::var_os(INSIDE).is_some() && isolate().is_ok();
    if !counted {
        println!(
            "\n(wire bytes not counted: the benchmark could not make a network namespace with nftables here)"
        );
    }
    let sizes = sizes("BENCH_SCALE_NODES", "250")?;
    let old = std::env::var_os("BENCH_SCALE_OLD").map(PathBuf::from);
    let old_sizes = match std::env::var("BENCH_SCALE_OLD_NODES") {
        Ok(s) => parse_sizes(&s)?,
        Err(_) => sizes.clone(),
    };
    let window = std::env::var("BENCH_SCALE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60u64);
    println!("\n## The network at scale (real node processes on one 2-core machine)\n");
    println!(
        "Default timers (heartbeat 2 s); nodes join through the first node and one other; {window} s measured after joining. \
         Per node p50 / p99 / max. Wire bytes: UDP bytes by port as the kernel sent them (QUIC, TLS, overlay included).\n"
    );
    let mut runs = Vec::new();
    if let Some(old) = &old {
        for &n in &old_sizes {
            runs.push(("before (records on every node)", old.clone(), n, true));
        }
    }
    for &n in &sizes {
        runs.push(("this build (overlay + DHT)", args.micro.clone(), n, false));
    }
    for (design, bin, n, old_design) in runs {
        let args = Args {
            micro: bin,
            ..args.clone()
        };
        match measure(&args, n, old_design, window, counted) {
            Ok(lines) => {
                println!("### {design}, {n} nodes\n");
                for l in lines {
                    println!("{l}");
                }
                println!();
            }
            Err(e) => println!("### {design}, {n} nodes\n\nstopped: {e}\n"),
        }
    }
    Ok(())
}

fn may_isolate() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let has = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    root && has("unshare")
        && has("nft")
        && Command::new("ip")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
}

/// Brings up loopback in the fresh namespace and installs the byte counters.
fn isolate() -> Result<()> {
    let run = |cmd: &mut Command| -> Result<()> {
        let out = cmd.output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    };
    run(Command::new("ip").args(["link", "set", "lo", "up"]))?;
    for rule in NFT_SETUP {
        run(Command::new("nft").arg(rule))?;
    }
    Ok(())
}

fn sizes(var: &str, default: &str) -> Result<Vec<usize>> {
    parse_sizes(&std::env::var(var).unwrap_or_else(|_| default.to_string()))
}

fn parse_sizes(s: &str) -> Result<Vec<usize>> {
    s.split(',')
        .map(|n| {
            n.trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| n >= 2)
                .ok_or(format!("not a node count (2 or more): {n:?}"))
        })
        .collect()
}

/// The nodes' configuration: defaults but for the loopback-only network and a small instance
/// pool (memory: hundreds of nodes share 24 GiB).
fn config() -> String {
    "[limits]\nmax_instances = 8\n".to_string()
}

struct Node {
    proc: Proc,
    url: String,
    _dir: tempfile::TempDir,
}

impl Node {
    fn pid(&self) -> u32 {
        self.proc.0.id()
    }
}

/// What one node had done by one instant.
#[derive(Default, Clone)]
struct Sample {
    cpu_ticks: u64,
    sent: u64,
    received: u64,
    kinds: HashMap<String, (u64, u64)>,
}

fn measure(
    args: &Args,
    n: usize,
    old_design: bool,
    window: u64,
    counted: bool,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let started = Instant::now();
    let mut nodes: Vec<Node> = Vec::with_capacity(n);
    let mut tickets: Vec<String> = Vec::with_capacity(n);
    for i in 0..n {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let joins: Vec<String> = if i == 0 {
            vec![]
        } else {
            let mut t = vec![tickets[0].clone()];
            if i / 2 > 0 {
                t.push(tickets[i / 2].clone());
            }
            t
        };
        let (proc, url) = start_joining(args, dir.path(), &config(), &joins)
            .map_err(|e| format!("node {i} did not start: {e}"))?;
        let node = Node {
            proc,
            url,
            _dir: dir,
        };
        tickets.push(ticket(&node.url)?);
        nodes.push(node);
        if (i + 1) % 50 == 0 {
            eprintln!("scale: {} of {n} nodes started", i + 1);
        }
    }
    let start_s = started.elapsed().as_secs_f64();
    // Joined: the old design lists every node on every node; this build holds enough DHT
    // contacts for a lookup on every node.
    let needed = if old_design {
        n as u64
    } else {
        (n as u64 - 1).min(8)
    };
    let known = |node: &Node| -> Option<u64> {
        if old_design {
            get_json(&node.url, "/api/network/nodes")
                .ok()
                .and_then(|v| v.as_array().map(|a| a.len() as u64))
        } else {
            get_json(&node.url, "/api/network")
                .ok()
                .and_then(|v| v["dht"]["contacts"].as_u64())
        }
    };
    let joined_at = Instant::now();
    let joined = wait(Duration::from_secs(300), || {
        nodes
            .iter()
            .all(|node| known(node).is_some_and(|c| c >= needed))
    });
    out.push(format!(
        "{n} nodes started in {start_s:.0} s; {}.\n",
        match joined {
            Some(t) => format!("all joined {:.1} s later", t.as_secs_f64()),
            None => {
                // Which nodes fell short, and how far: the first thing to look at.
                let short: Vec<String> = nodes
                    .iter()
                    .enumerate()
                    .filter_map(|(i, node)| match known(node) {
                        Some(c) if c >= needed => None,
                        Some(c) => Some(format!("node {i}: {c}")),
                        None => Some(format!("node {i}: no answer")),
                    })
                    .collect();
                format!(
                    "not all joined within {:.0} s (measured anyway; {} short: {})",
                    joined_at.elapsed().as_secs_f64(),
                    short.len(),
                    short[..short.len().min(10)].join(", ")
                )
            }
        }
    ));
    eprintln!("scale: {n} nodes joined or given up on; measuring {window} s idle");
    // The idle window: nothing deployed, nothing called.
    let before = samples(&nodes, counted);
    let begin = Instant::now();
    std::thread::sleep(Duration::from_secs(window));
    let after = samples(&nodes, counted);
    let secs = begin.elapsed().as_secs_f64();
    let per_node = |f: &dyn Fn(&Sample, &Sample) -> f64| -> Vec<f64> {
        before.iter().zip(&after).map(|(b, a)| f(b, a)).collect()
    };
    let ticks = clock_ticks();
    let cpu =
        per_node(&|b, a| (a.cpu_ticks.saturating_sub(b.cpu_ticks)) as f64 / ticks / secs * 100.0);
    let sent = per_node(&|b, a| a.sent.saturating_sub(b.sent) as f64 / secs);
    let received = per_node(&|b, a| a.received.saturating_sub(b.received) as f64 / secs);
    let rss: Vec<f64> = nodes.iter().map(|node| rss_mib(node.pid())).collect();
    out.push("| per node, idle | p50 | p99 | max | all nodes |".into());
    out.push("| --- | ---: | ---: | ---: | ---: |".into());
    out.push(row("CPU, % of one core", &cpu, 2));
    out.push(row("RSS, MiB", &rss, 1));
    if counted {
        out.push(row("wire bytes/s out", &sent, 0));
        out.push(row("wire bytes/s in", &received, 0));
    }
    // Bytes by message kind, as the nodes count their frames (this build only).
    let mut kinds: Vec<String> = after.iter().flat_map(|s| s.kinds.keys().cloned()).collect();
    kinds.sort();
    kinds.dedup();
    for kind in kinds {
        let f = |b: &Sample, a: &Sample, pick: fn(&(u64, u64)) -> u64| {
            let was = b.kinds.get(&kind).map_or(0, pick);
            let is = a.kinds.get(&kind).map_or(0, pick);
            is.saturating_sub(was) as f64 / secs
        };
        let k_in = per_node(&|b, a| f(b, a, |p| p.0));
        let k_out = per_node(&|b, a| f(b, a, |p| p.1));
        if k_in.iter().chain(&k_out).any(|v| *v > 0.0) {
            out.push(row(&format!("`{kind}` frames, bytes/s in"), &k_in, 0));
            out.push(row(&format!("`{kind}` frames, bytes/s out"), &k_out, 0));
        }
    }
    for (label, path) in [
        ("connections", "/connections"),
        ("peers checked", "/peers"),
        ("DHT contacts", "/dht/contacts"),
        ("DHT entries held", "/dht/entries_held"),
        ("address book", "/addresses"),
    ] {
        let values: Vec<f64> = nodes
            .iter()
            .filter_map(|node| get_json(&node.url, "/api/network").ok())
            .filter_map(|v| v.pointer(path).and_then(|x| x.as_f64()))
            .collect();
        if values.len() == nodes.len() {
            out.push(row(label, &values, 0));
        }
    }
    if old_design {
        let records: Vec<f64> = nodes
            .iter()
            .filter_map(|node| get_json(&node.url, "/api/network/nodes").ok())
            .filter_map(|v| v.as_array().map(|a| a.len() as f64))
            .collect();
        out.push(row("node records held", &records, 0));
    }
    out.push(String::new());
    eprintln!("scale: deploy → first call");
    let hello = args.components.join("hello.wasm");
    // Deploy → first successful call from random nodes.
    let mut rng = Lcg(n as u64 * 7919 + 1);
    let body = r#"{"name":"Ada"}"#;
    let mut first_call = Vec::new();
    let mut never = 0;
    for round in 0..5 {
        let owner = rng.below(n);
        let name = format!("scale{round}");
        deploy(&nodes[owner].url, &name, &hello)?;
        let deployed = Instant::now();
        let callers: Vec<_> = (0..20)
            .map(|_| rng.below_except(n, owner))
            .map(|i| {
                let url = nodes[i].url.clone();
                let path = format!("/{name}/greet");
                std::thread::spawn(move || {
                    wait(Duration::from_secs(60), || call(&url, &path, body).is_ok())
                        .map(|_| deployed.elapsed())
                })
            })
            .collect();
        for c in callers {
            match c.join().map_err(|_| "caller panicked")? {
                Some(t) => first_call.push(t.as_secs_f64() * 1000.0),
                None => never += 1,
            }
        }
    }
    // The same, one caller at a time: a user who deploys and then calls from elsewhere, not
    // twenty nodes polling the name before it lands (whose lookups all converge on the same
    // few nodes, and on a machine of hundreds of nodes wait for each other).
    let mut alone = Vec::new();
    let mut alone_never = 0;
    for round in 0..20 {
        let owner = rng.below(n);
        let caller = rng.below_except(n, owner);
        let name = format!("alone{round}");
        deploy(&nodes[owner].url, &name, &hello)?;
        let path = format!("/{name}/greet");
        match wait(Duration::from_secs(60), || {
            call(&nodes[caller].url, &path, body).is_ok()
        }) {
            Some(t) => alone.push(t.as_secs_f64() * 1000.0),
            None => alone_never += 1,
        }
    }
    eprintln!("scale: a provider's death");
    // A provider's death: a service on two nodes, callers warmed, one provider killed.
    let p1 = rng.below(n);
    let p2 = rng.below_except(n, p1);
    deploy(&nodes[p1].url, "scalefo", &hello)?;
    deploy(&nodes[p2].url, "scalefo", &hello)?;
    let callers: Vec<usize> = (0..20)
        .map(|_| {
            loop {
                let i = rng.below(n);
                if i != p1 && i != p2 {
                    break i;
                }
            }
        })
        .collect();
    for &i in &callers {
        wait(Duration::from_secs(60), || {
            call(&nodes[i].url, "/scalefo/greet", body).is_ok()
        })
        .ok_or("a caller never reached scalefo")?;
    }
    let _ = nodes[p1].proc.0.kill();
    let _ = nodes[p1].proc.0.wait();
    let mut after_death = Vec::new();
    let mut failed_after_death = 0;
    let handles: Vec<_> = callers
        .iter()
        .map(|&i| {
            let url = nodes[i].url.clone();
            std::thread::spawn(move || {
                let t = Instant::now();
                let ok = call(&url, "/scalefo/greet", body).is_ok();
                (ok, t.elapsed())
            })
        })
        .collect();
    for h in handles {
        let (ok, t) = h.join().map_err(|_| "caller panicked")?;
        if ok {
            after_death.push(t.as_secs_f64() * 1000.0);
        } else {
            failed_after_death += 1;
        }
    }
    eprintln!("scale: pub/sub");
    // Pub/sub across nodes: subscribers on ten nodes, a component publishing on another.
    let publisher = loop {
        let i = rng.below(n);
        if i != p1 {
            break i;
        }
    };
    let messages = 1000u64;
    let mut delivered = Vec::new();
    let mut undelivered = 0;
    let pubsub = deploy(
        &nodes[publisher].url,
        "caller",
        &args.components.join("bench_caller.wasm"),
    );
    if let Err(e) = &pubsub {
        out.push(format!("(pub/sub not measured: {e})\n"));
    } else {
        let mut subscribers = Vec::new();
        while subscribers.len() < 10 {
            let i = rng.below(n);
            if i != p1 && i != publisher && !subscribers.contains(&i) {
                subscribers.push(i);
            }
        }
        let streams: Vec<_> = subscribers
            .iter()
            .map(|&i| collect(&nodes[i].url, "scale", messages))
            .collect::<Result<_>>()?;
        let begin = Instant::now();
        // A publish that fails (its deadline on a saturated machine) is reported, and what it
        // published before is still waited for: one failed part does not lose the others.
        if let Err(e) = call(
            &nodes[publisher].url,
            "/caller/publish",
            &format!(r#"{{"topic":"scale","n":{messages},"size":64}}"#),
        ) {
            out.push(format!("(publishing failed: {e})\n"));
        }
        let until = begin + Duration::from_secs(60);
        for s in streams {
            match s.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(Ok(t)) => delivered.push(t.duration_since(begin).as_secs_f64() * 1000.0),
                _ => undelivered += 1,
            }
        }
    }
    out.push("| measure | samples | p50 | p99 | max | not reached |".into());
    out.push("| --- | ---: | ---: | ---: | ---: | ---: |".into());
    out.push(timed(
        "deploy answered → first successful call, 20 random nodes polling at once",
        &mut first_call,
        never,
    ));
    out.push(timed(
        "deploy answered → first successful call, one caller at a time",
        &mut alone,
        alone_never,
    ));
    out.push(timed(
        "one of two providers killed → each warmed caller's next call",
        &mut after_death,
        failed_after_death,
    ));
    if pubsub.is_ok() {
        out.push(timed(
            &format!("publish {messages} messages → all delivered at a subscriber (10 nodes)"),
            &mut delivered,
            undelivered,
        ));
    }
    Ok(out)
}

fn row(label: &str, values: &[f64], digits: usize) -> String {
    let mut v = values.to_vec();
    let sum: f64 = v.iter().sum();
    let max = v.iter().cloned().fold(0.0, f64::max);
    format!(
        "| {label} | {:.digits$} | {:.digits$} | {max:.digits$} | {sum:.digits$} |",
        percentile(&mut v, 0.5),
        percentile(&mut v, 0.99),
    )
}

fn timed(label: &str, samples: &mut [f64], missing: usize) -> String {
    if samples.is_empty() {
        return format!("| {label} | 0 | - | - | - | {missing} |");
    }
    let max = samples.iter().cloned().fold(0.0, f64::max);
    format!(
        "| {label} | {} | {:.0} ms | {:.0} ms | {max:.0} ms | {missing} |",
        samples.len(),
        percentile(samples, 0.5),
        percentile(samples, 0.99)
    )
}

/// Each node's CPU time, wire bytes and frame bytes by kind, now.
fn samples(nodes: &[Node], counted: bool) -> Vec<Sample> {
    let (sent, received) = if counted {
        wire_counters()
    } else {
        Default::default()
    };
    let ports = udp_ports();
    nodes
        .iter()
        .map(|node| {
            let pid = node.pid();
            let mine = ports.get(&pid).cloned().unwrap_or_default();
            let kinds = get_json(&node.url, "/api/network")
                .ok()
                .and_then(|v| v["traffic"].as_object().cloned())
                .map(|t| {
                    t.iter()
                        .map(|(k, v)| {
                            let n = |f: &str| v[f].as_u64().unwrap_or(0);
                            (k.clone(), (n("in"), n("out")))
                        })
                        .collect()
                })
                .unwrap_or_default();
            Sample {
                cpu_ticks: cpu_ticks(pid),
                sent: mine.iter().map(|p| sent.get(p).copied().unwrap_or(0)).sum(),
                received: mine
                    .iter()
                    .map(|p| received.get(p).copied().unwrap_or(0))
                    .sum(),
                kinds,
            }
        })
        .collect()
}

/// Bytes sent from and to each UDP port, from the namespace's nftables sets.
fn wire_counters() -> (HashMap<u16, u64>, HashMap<u16, u64>) {
    let set = |name: &str| -> HashMap<u16, u64> {
        let Ok(out) = Command::new("nft")
            .args(["-j", "list", "set", "inet", "micro_bench", name])
            .output()
        else {
            return HashMap::new();
        };
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let mut counts = HashMap::new();
        for item in v["nftables"].as_array().into_iter().flatten() {
            for elem in item["set"]["elem"].as_array().into_iter().flatten() {
                let port = elem["elem"]["val"].as_u64();
                let bytes = elem["elem"]["counter"]["bytes"].as_u64();
                if let (Some(port), Some(bytes)) = (port, bytes) {
                    counts.insert(port as u16, bytes);
                }
            }
        }
        counts
    };
    (set("sent"), set("received"))
}

/// The UDP ports each process has bound (`ss -uanp`).
fn udp_ports() -> HashMap<u32, Vec<u16>> {
    let mut ports: HashMap<u32, Vec<u16>> = HashMap::new();
    let Ok(out) = Command::new("ss").args(["-uanpH"]).output() else {
        return ports;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(local) = fields.get(3) else { continue };
        let Some(port) = local.rsplit(':').next().and_then(|p| p.parse::<u16>().ok()) else {
            continue;
        };
        for pid in line.split("pid=").skip(1) {
            if let Ok(pid) = pid.split(',').next().unwrap_or("").parse::<u32>() {
                ports.entry(pid).or_default().push(port);
            }
        }
    }
    for p in ports.values_mut() {
        p.sort_unstable();
        p.dedup();
    }
    ports
}

/// User and system CPU ticks of a process so far.
fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    field(11) + field(12)
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A small deterministic generator: the same nodes are picked in every run of one size.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }

    fn below_except(&mut self, n: usize, except: usize) -> usize {
        loop {
            let i = self.below(n);
            if i != except {
                break i;
            }
        }
    }
}
