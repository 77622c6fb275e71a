//! `micro run <source>`, `micro versions`, `micro logs --build`, `micro system builders`: builds
//! from source, with the node's progress shown as it comes.

use super::client::Client;
use super::commands::{print_deployed, spinner};
use super::{BuildersCommand, CliError, SystemCommand, print_json};
use serde_json::json;
use std::io::{BufRead, BufReader, Read};

/// Follows a build's progress (JSON lines) until it ends; the final event's payload.
pub(super) fn follow(reader: impl Read, what: &str) -> Result<serde_json::Value, CliError> {
    let bar = spinner(what.to_string());
    for line in BufReader::new(reader).lines() {
        let line =
            line.map_err(|e| CliError::failed(format!("the node closed the build's stream: {e}")))?;
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        match event["event"].as_str() {
            Some("step") => {
                let line = format!(
                    "[{:>6.1}s] {:<8} {}",
                    event["elapsed_ms"].as_f64().unwrap_or(0.0) / 1000.0,
                    event["step"].as_str().unwrap_or(""),
                    event["message"].as_str().unwrap_or("")
                );
                // Not a terminal (a script, a test): the steps still show, one per line.
                if bar.is_hidden() {
                    eprintln!("{line}");
                } else {
                    bar.println(line);
                }
            }
            Some("log") => {
                let text = event["line"].as_str().unwrap_or("");
                bar.set_message(format!(
                    "{what}: {}",
                    text.chars().take(100).collect::<String>()
                ));
            }
            Some("done") => {
                bar.finish_and_clear();
                return Ok(event["version"].clone());
            }
            Some("failed") => {
                bar.finish_and_clear();
                let version = &event["version"];
                let mut message = event["reason"]
                    .as_str()
                    .unwrap_or("the build failed")
                    .to_string();
                let excerpt = super::commands::strings(&event["excerpt"]);
                if !excerpt.is_empty() {
                    message.push('\n');
                    for line in excerpt {
                        message.push_str(&format!("\n  | {line}"));
                    }
                    message.push('\n');
                }
                if let (Some(name), Some(v)) =
                    (version["name"].as_str(), version["version"].as_str())
                {
                    message.push_str(&format!(
                        "\n  version {name}@{v} failed; whatever served before still serves\n  the whole log: micro logs {name}@{v} --build"
                    ));
                }
                return Err(CliError::failed(message));
            }
            _ => {}
        }
    }
    bar.finish_and_clear();
    Err(CliError::failed(
        "the node ended the build's stream without a result",
    ))
}

/// A local directory goes to the node as an absolute path (the node builds it where it is);
/// anything else as written.
pub(super) fn absolute(source: &str) -> Result<String, CliError> {
    let path = std::path::Path::new(source);
    if !path.is_dir() {
        return Ok(source.to_string());
    }
    Ok(path
        .canonicalize()
        .map_err(|e| CliError::failed(format!("{source}: {e}")))?
        .display()
        .to_string())
}

/// What `micro run <source>` asks of a build.
pub struct RunOptions {
    pub name: Option<String>,
    pub watch: bool,
    pub interval_ms: Option<u64>,
    pub lifetime_ms: Option<u64>,
    pub rebuild: bool,
}

/// `micro run <source>`.
pub fn run(client: &Client, source: &str, options: RunOptions) -> Result<(), CliError> {
    let source = absolute(source)?;
    let RunOptions {
        name,
        watch,
        interval_ms,
        lifetime_ms,
        rebuild,
    } = options;
    let request = json!({
        "source": source,
        "name": name,
        "watch": watch,
        "interval_ms": interval_ms,
        "lifetime_ms": lifetime_ms,
        "rebuild": rebuild,
    });
    let reader = client.post_stream("/api/run", &request)?;
    let version = follow(reader, "building")?;
    let name = version["name"].as_str().unwrap_or("?").to_string();
    let described = client
        .get(&format!("/api/services/{name}"))
        .and_then(|a| a.ok())
        .and_then(|a| a.json())
        .unwrap_or(version.clone());
    print_deployed(&name, &described);
    if let Some(builder) = version["builder"].as_str() {
        println!(
            "  built by {builder} from {}",
            version["source"].as_str().unwrap_or("?")
        );
    }
    if watch {
        println!("  watching the source for new commits");
    }
    Ok(())
}

fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// `micro versions <service>`.
pub fn versions(client: &Client, service: &str, json: bool) -> Result<(), CliError> {
    let v = client.get_json(&format!("/api/services/{service}/versions"))?;
    if json {
        return print_json(&v);
    }
    println!(
        "{:<14} {:<11} {:>9} {:>8}  {:<16} {:<14} NOTE",
        "VERSION", "STATE", "TIME LEFT", "CALLS", "BUILDER", "COMMIT"
    );
    for row in v.as_array().into_iter().flatten() {
        let left = row["time_left_ms"]
            .as_u64()
            .map(duration)
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<14} {:<11} {:>9} {:>8}  {:<16} {:<14} {}",
            row["version"].as_str().unwrap_or(""),
            row["state"].as_str().unwrap_or(""),
            left,
            row["calls"].as_u64().unwrap_or(0),
            row["builder"].as_str().unwrap_or("-"),
            short(&row["commit"], "-"),
            row["reason"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

/// `micro logs <service>@<version> --build`.
pub fn build_log(client: &Client, service: &str) -> Result<(), CliError> {
    let (name, version) = match service.split_once('@') {
        Some((n, v)) => (n.to_string(), v.to_string()),
        None => {
            let v = client.get_json(&format!("/api/services/{service}/versions"))?;
            let newest = v
                .as_array()
                .and_then(|a| a.first())
                .and_then(|r| r["version"].as_str())
                .ok_or_else(|| CliError::failed(format!("{service} has no versions")))?
                .to_string();
            (service.to_string(), newest)
        }
    };
    let answer = client
        .get(&format!(
            "/api/services/{name}/versions/{version}/build-log"
        ))?
        .ok()?;
    print!("{}", String::from_utf8_lossy(&answer.body));
    Ok(())
}

/// `micro system …`.
pub fn system(client: &Client, command: SystemCommand) -> Result<(), CliError> {
    match command {
        SystemCommand::Builders {
            command: None,
            json,
        } => {
            let v = client.get_json("/api/system/builders")?;
            if json {
                return print_json(&v);
            }
            println!(
                "{:<12} {:<10} {:<14} {:<24} LOOKS FOR",
                "NAME", "VERSION", "COMPONENT", "ORIGIN"
            );
            for b in v.as_array().into_iter().flatten() {
                println!(
                    "{:<12} {:<10} {:<14} {:<24} {}",
                    b["name"].as_str().unwrap_or(""),
                    b["version"].as_str().unwrap_or(""),
                    short(&b["component"], ""),
                    b["origin"].as_str().unwrap_or(""),
                    b["looks_for"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
        SystemCommand::Builders {
            command: Some(BuildersCommand::Use { source }),
            ..
        } => {
            let source = absolute(&source)?;
            let reader =
                client.post_stream("/api/system/builders", &json!({ "source": source }))?;
            let b = follow(reader, "building the builder")?;
            println!(
                "builder {} {} now in use (component {})",
                b["name"].as_str().unwrap_or("?"),
                b["version"].as_str().unwrap_or("?"),
                short(&b["component"], "?")
            );
            Ok(())
        }
    }
}

/// The first 12 hex digits of a hash (component, commit), as listings show it (`missing` when
/// none).
pub(super) fn short<'a>(hash: &'a serde_json::Value, missing: &'a str) -> &'a str {
    hash.as_str().map_or(missing, |c| &c[..c.len().min(12)])
}
