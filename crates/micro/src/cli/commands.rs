//! The commands that talk to a running node.

use super::client::Client;
use super::{CliError, Command, print_json};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::Duration;

/// Runs one client command against the node.
pub fn run(client: &Client, command: Command) -> Result<(), CliError> {
    match command {
        Command::Run {
            source,
            name,
            watch,
            interval,
            lifetime,
            private,
            rebuild,
        } => {
            let path = Path::new(&source);
            if path.is_file() {
                if watch {
                    return Err(CliError::failed(
                        "--watch needs a source (a git URL), not a file",
                    ));
                }
                upload(client, path, name, private)
            } else if private {
                Err(CliError::failed(
                    "--private works for a .wasm file for now, not for source",
                ))
            } else {
                super::evolve::run(
                    client,
                    &source,
                    super::evolve::RunOptions {
                        name,
                        watch,
                        interval_ms: interval,
                        lifetime_ms: lifetime,
                        rebuild,
                    },
                )
            }
        }
        Command::Versions { service, json } => super::evolve::versions(client, &service, json),
        Command::Logs {
            service,
            build: true,
            ..
        } => super::evolve::build_log(client, &service),
        Command::Logs {
            service,
            lines,
            json,
            ..
        } => runtime_log(client, &service, lines, json),
        Command::Services { json } => services(client, json),
        Command::Status { json } => status(client, json),
        Command::Describe { service, json } => describe(client, &service, json),
        Command::Call {
            service,
            method,
            body,
        } => call(client, &service, &method, body),
        Command::Publish { topic, message } => {
            let answer = client
                .post(
                    &format!("/api/topics/{topic}"),
                    "text/plain",
                    message.as_bytes(),
                )?
                .ok()?;
            let v = answer.json()?;
            println!("published to {} as #{}", topic, v["sequence"]);
            Ok(())
        }
        Command::Subscribe {
            topic,
            history,
            queue,
            count,
            json,
        } => subscribe(client, &topic, history, queue, count, json),
        Command::Stop { service } => {
            client.delete(&format!("/api/services/{service}"))?.ok()?;
            println!("stopped {service}");
            Ok(())
        }
        Command::Server { .. }
        | Command::Identity { .. }
        | Command::New { .. }
        | Command::Network { .. }
        | Command::System { .. }
        | Command::Governance { .. }
        | Command::Ledger { .. }
        | Command::Token { .. } => {
            unreachable!("handled by cli::main")
        }
    }
}

/// `micro status`: the node's resource use and its services' calls and errors.
fn status(client: &Client, json: bool) -> Result<(), CliError> {
    let v = client.get_json("/api/node")?;
    if json {
        return print_json(&v);
    }
    let u = &v["usage"];
    let mib = |b: &serde_json::Value| {
        b.as_u64()
            .map_or("?".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0))
    };
    let secs = |ms: &serde_json::Value| {
        ms.as_u64()
            .map_or("?".into(), |ms| format!("{:.2} s", ms as f64 / 1000.0))
    };
    println!("node      {}", v["node"].as_str().unwrap_or("?"));
    println!(
        "up        {} (micro {}, pid {})",
        secs(&v["uptime_ms"]),
        v["version"].as_str().unwrap_or("?"),
        v["pid"]
    );
    println!(
        "memory    {} resident, peak {}",
        mib(&u["rss_bytes"]),
        mib(&u["peak_rss_bytes"])
    );
    println!(
        "cpu       user {}, system {}",
        secs(&u["cpu_user_ms"]),
        secs(&u["cpu_system_ms"])
    );
    println!(
        "threads   {}, open files {}, store {}",
        u["threads"],
        u["open_files"],
        mib(&u["store_bytes"])
    );
    let services = v["services"].as_array().cloned().unwrap_or_default();
    if services.is_empty() {
        println!("no services run here");
        return Ok(());
    }
    println!(
        "\n{:<20} {:<14} {:<10} {:>8} {:>7}  LAST ERROR",
        "SERVICE", "VERSION", "STATE", "CALLS", "ERRORS"
    );
    for s in services {
        println!(
            "{:<20} {:<14} {:<10} {:>8} {:>7}  {}",
            s["name"].as_str().unwrap_or(""),
            s["version"].as_str().unwrap_or(""),
            if s["serving"] == true {
                "serving"
            } else {
                "superseded"
            },
            s["calls"].as_u64().unwrap_or(0),
            s["errors"].as_u64().unwrap_or(0),
            s["last_error"]["message"].as_str().unwrap_or("-"),
        );
    }
    Ok(())
}

/// The strings of a JSON array (empty for anything else).
pub(super) fn strings(value: &serde_json::Value) -> Vec<&str> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m.as_str())
        .collect()
}

pub(super) fn spinner(message: String) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// Uploads a built component.
fn upload(
    client: &Client,
    path: &Path,
    name: Option<String>,
    private: bool,
) -> Result<(), CliError> {
    let default_name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("service")
        .replace('_', "-");
    let name = name.unwrap_or(default_name);
    let wasm = std::fs::read(path)
        .map_err(|e| CliError::failed(format!("reading {}: {e}", path.display())))?;
    let bar = spinner(format!(
        "deploying {name} ({:.1} MiB: upload, validate, compile)",
        wasm.len() as f64 / 1048576.0
    ));
    let query = if private { "?private=true" } else { "" };
    let answer = client.put(
        &format!("/api/services/{name}{query}"),
        "application/wasm",
        &wasm,
    );
    bar.finish_and_clear();
    let v = answer?.ok()?.json()?;
    print_deployed(&name, &v);
    Ok(())
}

/// What a deployed version answers, and how to call it.
pub(super) fn print_deployed(name: &str, v: &serde_json::Value) {
    let methods: Vec<&str> = strings(&v["methods"]);
    let topics = subscriptions(&v["subscriptions"]);
    println!(
        "deployed {name} version {} ({})",
        v["version"].as_str().unwrap_or("?"),
        kind(v)
    );
    if v["kind"] == "http" {
        println!("  serves HTTP under /{name}/");
    } else if !methods.is_empty() {
        println!("  methods:    {}", methods.join(", "));
        // No example body: what a method takes is its own business, and `{}` fails whenever
        // it has a required field.
        println!(
            "  call:       micro call {name} <method> '<JSON body>'   (or POST /{name}/<method>)"
        );
    }
    if !topics.is_empty() {
        println!("  subscribes: {}", topics.join(", "));
    }
}

/// A service's kind as people read it: a service that subscribes says so.
fn kind(v: &serde_json::Value) -> String {
    let kind = v["kind"].as_str().unwrap_or("?");
    if subscriptions(&v["subscriptions"]).is_empty() {
        kind.to_string()
    } else {
        format!("{kind}, subscriber")
    }
}

/// Subscriptions as people read them: `chat (history)`, `jobs (queue workers)`.
fn subscriptions(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let topic = s["topic"].as_str()?;
            let mut notes = Vec::new();
            if let Some(group) = s["queue_group"].as_str() {
                notes.push(format!("queue {group}"));
            }
            if s["history"].as_bool() == Some(true) {
                notes.push("history".to_string());
            }
            Some(if notes.is_empty() {
                topic.to_string()
            } else {
                format!("{topic} ({})", notes.join(", "))
            })
        })
        .collect()
}

/// `micro logs <service>`: its recent runtime lines, oldest first.
fn runtime_log(client: &Client, service: &str, lines: usize, json: bool) -> Result<(), CliError> {
    let name = service.split_once('@').map_or(service, |(n, _)| n);
    let v = client.get_json(&format!("/api/services/{name}/logs?limit={lines}"))?;
    if json {
        return print_json(&v);
    }
    let rows = v.as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        println!("{name} has logged nothing since the node started");
    }
    for row in rows {
        let at = row["at_ms"].as_u64().unwrap_or(0);
        println!(
            "{} {:<5} {}",
            clock(at),
            row["level"].as_str().unwrap_or(""),
            row["message"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

/// `HH:MM:SS.mmm` (UTC) of a time in ms since the epoch.
fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60,
        ms % 1000
    )
}

fn services(client: &Client, json: bool) -> Result<(), CliError> {
    let v = client.get_json("/api/services")?;
    if json {
        return print_json(&v);
    }
    let rows = v.as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        println!("no services; deploy one with `micro run <file.wasm | crate dir>`");
        return Ok(());
    }
    println!(
        "{:<20} {:<14} {:<8} {:>8} {:>7}  {:<30} SUBSCRIBES",
        "NAME", "VERSION", "KIND", "CALLS", "ERRORS", "METHODS"
    );
    for s in rows {
        let methods: Vec<&str> = strings(&s["methods"]);
        let topics = subscriptions(&s["subscriptions"]);
        println!(
            "{:<20} {:<14} {:<8} {:>8} {:>7}  {:<30} {}",
            s["name"].as_str().unwrap_or(""),
            s["version"].as_str().unwrap_or(""),
            s["kind"].as_str().unwrap_or(""),
            s["calls"].as_u64().unwrap_or(0),
            s["errors"].as_u64().unwrap_or(0),
            methods.join(", "),
            if topics.is_empty() {
                "-".to_string()
            } else {
                topics.join(", ")
            }
        );
    }
    Ok(())
}

fn describe(client: &Client, service: &str, json: bool) -> Result<(), CliError> {
    let v = client.get_json(&format!("/api/services/{service}"))?;
    if json {
        return print_json(&v);
    }
    println!(
        "{} version {} ({})",
        service,
        v["version"].as_str().unwrap_or("?"),
        kind(&v)
    );
    let methods: Vec<&str> = strings(&v["methods"]);
    if !methods.is_empty() {
        println!("methods:    {}", methods.join(", "));
    }
    let topics = subscriptions(&v["subscriptions"]);
    if !topics.is_empty() {
        println!("subscribes: {}", topics.join(", "));
    }
    println!();
    print!("{}", v["wit"].as_str().unwrap_or(""));
    Ok(())
}

fn call(
    client: &Client,
    service: &str,
    method: &str,
    body: Option<String>,
) -> Result<(), CliError> {
    let body = body.unwrap_or_default();
    let answer = client
        .post(
            &format!("/api/call/{service}/{method}"),
            "application/json",
            body.as_bytes(),
        )?
        .ok()?;
    let mut out = std::io::stdout();
    if answer.content_type.starts_with("application/json")
        && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&answer.body)
    {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        );
        return Ok(());
    }
    let _ = out.write_all(&answer.body);
    let _ = writeln!(out);
    Ok(())
}

fn subscribe(
    client: &Client,
    topic: &str,
    history: bool,
    queue: Option<String>,
    count: Option<u64>,
    json: bool,
) -> Result<(), CliError> {
    let mut path = format!("/api/topics/{topic}/events?history={history}");
    if let Some(group) = &queue {
        path.push_str(&format!("&group={group}"));
    }
    let reader = BufReader::new(client.stream(&path)?);
    let mut event = String::new();
    let mut seen = 0;
    let mut out = std::io::stdout();
    for line in reader.lines() {
        let line =
            line.map_err(|e| CliError::failed(format!("the node closed the stream: {e}")))?;
        if let Some(name) = line.strip_prefix("event: ") {
            event = name.to_string();
        } else if let Some(data) = line.strip_prefix("data: ") {
            if event == "subscribed" {
                eprintln!("subscribed to {topic}");
                continue;
            }
            let Ok(v) = serde_json::from_str::<serde_json::Value>(data) else {
                continue;
            };
            if json {
                let _ = writeln!(out, "{v}");
            } else {
                let text = v["payload"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| {
                        format!(
                            "<{} bytes, base64> {}",
                            v["payload_base64"].as_str().map_or(0, |s| s.len() * 3 / 4),
                            v["payload_base64"].as_str().unwrap_or("")
                        )
                    });
                // A sequence counts one node's messages of the topic: the node names it.
                let node = v["node"].as_str().unwrap_or("?");
                let _ = writeln!(
                    out,
                    "{}#{} {}",
                    node.get(..8).unwrap_or(node),
                    v["sequence"],
                    text
                );
            }
            let _ = out.flush();
            seen += 1;
            if count.is_some_and(|n| seen >= n) {
                return Ok(());
            }
        }
    }
    Err(CliError::failed("the node closed the subscription"))
}
