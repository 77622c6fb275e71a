//! `micro governance show | log | use`: the governance that decides on this node.

use super::client::Client;
use super::evolve::{absolute, follow, short};
use super::{CliError, GovernanceCommand, print_json};
use serde_json::json;

/// Runs one `micro governance …` command.
pub fn run(client: &Client, command: GovernanceCommand) -> Result<(), CliError> {
    match command {
        GovernanceCommand::Show { json } => {
            let v = client.get_json("/api/governance")?;
            if json {
                return print_json(&v);
            }
            let d = &v["decisions"];
            println!(
                "governance {} {} (component {}, from {})",
                v["name"].as_str().unwrap_or("?"),
                v["version"].as_str().unwrap_or("?"),
                short(&v["component"], "?"),
                v["origin"].as_str().unwrap_or("?")
            );
            println!(
                "decisions: {} asked, {} from the cache, {} denied, {} failed (denied), {} rate-limited",
                d["asked"], d["cached"], d["denied"], d["failed"], d["rate_limited"]
            );
            Ok(())
        }
        GovernanceCommand::Log { limit, json } => {
            let v = client.get_json(&format!("/api/governance/log?limit={limit}"))?;
            if json {
                return print_json(&v);
            }
            let rows = v.as_array().cloned().unwrap_or_default();
            if rows.is_empty() {
                println!("no decisions yet");
                return Ok(());
            }
            println!(
                "{:<14} {:<15} {:<12} {:<24} {:<6} {:>7}  REASON",
                "AT", "KIND", "SUBJECT", "QUESTION", "ANSWER", "µs"
            );
            for d in rows {
                println!(
                    "{:<14} {:<15} {:<12} {:<24} {:<6} {:>7}  {}",
                    d["at_ms"].as_u64().unwrap_or(0),
                    d["kind"].as_str().unwrap_or(""),
                    short(&d["subject"], ""),
                    d["question"].as_str().unwrap_or(""),
                    if d["allow"] == true { "allow" } else { "deny" },
                    d["micros"].as_u64().unwrap_or(0),
                    d["reason"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
        GovernanceCommand::Use { source } => {
            let source = absolute(&source)?;
            let reader = client.post_stream("/api/governance", &json!({ "source": source }))?;
            let g = follow(reader, "building the governance")?;
            println!(
                "governance {} {} now in use (component {})",
                g["name"].as_str().unwrap_or("?"),
                g["version"].as_str().unwrap_or("?"),
                short(&g["component"], "?")
            );
            Ok(())
        }
    }
}
