//! `micro identity` and `micro network …`: the node's id and ticket, and the network as the
//! node sees it, as tables for people and JSON for programs.

use super::client::Client;
use super::{CliError, NetworkCommand, print_json};
use micro_base::identity::Identity;
use micro_core::node::default_data_dir;
use serde_json::Value;
use std::path::PathBuf;

/// `micro identity`: reads (or makes) the key in the data directory; no running node needed.
pub fn identity(data_dir: Option<PathBuf>, json: bool) -> Result<(), CliError> {
    let dir = data_dir.unwrap_or_else(default_data_dir);
    let identity =
        Identity::load_or_create(&dir).map_err(|e| CliError::failed(format!("{e:#}")))?;
    if json {
        let v = serde_json::json!({
            "node": identity.public().to_string(),
            "key_file": micro_base::identity::key_path(&dir),
        });
        print_json(&v)?;
    } else {
        println!("{}", identity.public());
    }
    Ok(())
}

/// `micro identity --node …`: the id of the node that answers there.
pub fn remote_identity(client: &Client, json: bool) -> Result<(), CliError> {
    let v = client.get_json("/api/network")?;
    let id = v["node"]
        .as_str()
        .ok_or_else(|| CliError::failed("the node did not say its id"))?;
    if json {
        print_json(&serde_json::json!({ "node": id }))
    } else {
        println!("{id}");
        Ok(())
    }
}

/// Runs a `micro network` command.
pub fn run(client: &Client, command: NetworkCommand) -> Result<(), CliError> {
    match command {
        NetworkCommand::Ticket => {
            let v = client.get_json("/api/network")?;
            match v["ticket"].as_str() {
                Some(t) => {
                    println!("{t}");
                    Ok(())
                }
                None => Err(CliError::failed(
                    "the node runs without a network ([network] enabled = false)",
                )),
            }
        }
        NetworkCommand::Nodes { json } => {
            let v = client.get_json("/api/network/nodes")?;
            if json {
                return print_json(&v);
            }
            println!(
                "this node's view (the peers it checks and its DHT contacts), not the whole network"
            );
            println!(
                "{:<14} {:>9} {:>5} {:<9} {:<10} {:>10}  {:<16} SERVICES",
                "NODE", "RTT", "LOAD", "STATE", "SOURCE", "REPUTATION", "GOVERNANCE"
            );
            for n in rows(&v) {
                let state = if n["self"].as_bool() == Some(true) {
                    "self"
                } else {
                    match n["healthy"].as_bool() {
                        Some(true) => "up",
                        Some(false) => "down",
                        None => "unchecked",
                    }
                };
                println!(
                    "{:<14} {:>9} {:>5} {:<9} {:<10} {:>10}  {:<16} {}",
                    short(&n["node"]),
                    rtt(&n["rtt_us"]),
                    n["load"].as_u64().unwrap_or(0),
                    state,
                    n["source"].as_str().unwrap_or("-"),
                    n["reputation"]
                        .as_f64()
                        .map_or("-".to_string(), |r| format!("{r:.2}")),
                    n["governance"]
                        .as_str()
                        .filter(|g| !g.is_empty())
                        .unwrap_or("-"),
                    names(&n["services"])
                );
            }
            Ok(())
        }
        NetworkCommand::Services { service, json } => {
            let path = match &service {
                Some(s) => format!("/api/network/services?service={s}"),
                None => "/api/network/services".to_string(),
            };
            let v = client.get_json(&path)?;
            if json {
                return print_json(&v);
            }
            let list = rows(&v);
            if list.is_empty() {
                match &service {
                    Some(s) => println!("no node serves {s}"),
                    None => println!("no services known to this node yet"),
                }
            } else if service.is_none() {
                println!("services this node knows of (a local view; name one to look it up)");
            }
            println!(
                "{:<20} {:<14} {:<14}  METHODS",
                "SERVICE", "VERSION", "NODE"
            );
            for s in list {
                for n in rows(&s["nodes"]) {
                    let mut node = short(&n["node"]);
                    if n["local"].as_bool() == Some(true) {
                        node.push_str(" (here)");
                    }
                    println!(
                        "{:<20} {:<14} {:<14}  {}",
                        s["name"].as_str().unwrap_or(""),
                        n["version"].as_str().unwrap_or(""),
                        node,
                        names(&n["methods"])
                    );
                }
            }
            Ok(())
        }
        NetworkCommand::Routes { service, json } => {
            let path = match &service {
                Some(s) => format!("/api/network/routes?service={s}"),
                None => "/api/network/routes".to_string(),
            };
            let v = client.get_json(&path)?;
            if json {
                return print_json(&v);
            }
            if service.is_none() {
                println!("routes this node knows already; name a service to look it up");
            }
            println!(
                "{:<20} {:<14} {:>4} {:>9} {:>5} {:>9} {:<6}",
                "SERVICE", "NODE", "HOPS", "RTT", "LOAD", "COST", "STATE"
            );
            for s in rows(&v) {
                let routes = rows(&s["routes"]);
                if routes.is_empty() {
                    println!("{:<20} (no route)", s["service"].as_str().unwrap_or(""));
                }
                for r in routes {
                    println!(
                        "{:<20} {:<14} {:>4} {:>9} {:>5} {:>9} {:<6}",
                        s["service"].as_str().unwrap_or(""),
                        short(&r["node"]),
                        r["hops"].as_u64().unwrap_or(0),
                        rtt(&r["rtt_us"]),
                        r["load"].as_u64().unwrap_or(0),
                        r["cost"].as_u64().unwrap_or(0),
                        if r["healthy"].as_bool() == Some(true) {
                            "up"
                        } else {
                            "down"
                        },
                    );
                }
            }
            Ok(())
        }
        NetworkCommand::Graph { json, dot } => {
            let v = client.get_json("/api/network/graph")?;
            if json {
                return print_json(&v);
            }
            if dot {
                println!("graph micro {{");
                for n in rows(&v["nodes"]) {
                    let shape = if n["self"].as_bool() == Some(true) {
                        "doublecircle"
                    } else {
                        "circle"
                    };
                    println!("  \"{}\" [shape={shape}];", short(&n["node"]));
                }
                for l in unique_links(&v) {
                    println!("  \"{}\" -- \"{}\" [label=\"{}\"];", l.0, l.1, l.2);
                }
                println!("}}");
                return Ok(());
            }
            let nodes = rows(&v["nodes"]);
            println!("{} nodes", nodes.len());
            for n in nodes {
                let me = short(&n["node"]);
                let marker = if n["self"].as_bool() == Some(true) {
                    " (this node)"
                } else {
                    ""
                };
                println!("{me}{marker}");
                for (a, b, label) in unique_links(&v) {
                    if a == me {
                        println!("  -- {b}  {label}");
                    } else if b == me {
                        println!("  -- {a}  {label}");
                    }
                }
            }
            Ok(())
        }
    }
}

fn rows(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

/// The first 10 characters of a node id, as in the logs.
fn short(v: &Value) -> String {
    v.as_str().unwrap_or("").chars().take(10).collect()
}

fn rtt(v: &Value) -> String {
    match v.as_u64() {
        Some(0) => "-".to_string(),
        Some(us) if us < 10_000 => format!("{:.2}ms", us as f64 / 1000.0),
        Some(us) => format!("{}ms", us / 1000),
        None => "?".to_string(),
    }
}

fn names(v: &Value) -> String {
    rows(v)
        .iter()
        .filter_map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Links without direction, each once, with the round-trip time as label.
fn unique_links(v: &Value) -> Vec<(String, String, String)> {
    let mut seen = std::collections::BTreeMap::new();
    for l in rows(&v["links"]) {
        let (a, b) = (short(&l["from"]), short(&l["to"]));
        let key = if a < b { (a, b) } else { (b, a) };
        seen.entry(key).or_insert_with(|| rtt(&l["rtt_us"]));
    }
    seen.into_iter().map(|((a, b), r)| (a, b, r)).collect()
}
