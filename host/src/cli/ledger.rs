//! `micro ledger show` and `micro token create | inspect | refresh | revoke`.

use super::client::Client;
use super::{CliError, LedgerCommand, TokenCommand, print_json};
use serde_json::{Value, json};

/// Runs `micro ledger …`.
pub fn show(client: &Client, command: LedgerCommand) -> Result<(), CliError> {
    let LedgerCommand::Show { json } = command;
    let v = client.get("/api/ledger")?.ok()?.json()?;
    if json {
        return print_json(&v);
    }
    println!(
        "ledger {} {} (component {}, from {})",
        v["name"].as_str().unwrap_or("?"),
        v["version"].as_str().unwrap_or("?"),
        super::evolve::short(&v["component"], "?"),
        v["origin"].as_str().unwrap_or("?")
    );
    Ok(())
}

/// POSTs `body` as JSON.
fn post(client: &Client, path: &str, body: &Value) -> Result<Value, CliError> {
    client
        .post(path, "application/json", body.to_string().as_bytes())?
        .ok()?
        .json()
}

fn list(items: &Value) -> String {
    let names: Vec<&str> = items
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if names.is_empty() {
        "all".to_string()
    } else {
        names.join(", ")
    }
}

/// Prints a token's claims, one per line.
fn print_claims(c: &Value) {
    let at = |ms: &Value| {
        let ms = ms.as_u64().unwrap_or(0);
        let left = ms as i64 - crate::registry::now_ms() as i64;
        if left >= 0 {
            format!("{ms} (in {} s)", left / 1000)
        } else {
            format!("{ms} ({} s ago)", -left / 1000)
        }
    };
    println!("id        {}", c["id"].as_str().unwrap_or("?"));
    println!("account   {}", c["account"].as_str().unwrap_or("?"));
    println!("issuer    {}", c["issuer"].as_str().unwrap_or("?"));
    println!("services  {}", list(&c["services"]));
    println!("methods   {}", list(&c["methods"]));
    println!("issued    {}", at(&c["issued_ms"]));
    println!("expires   {}", at(&c["expires_ms"]));
}

/// Prints a token (alone on its first line, to be copied) and its claims.
fn print_token(v: &Value, json: bool) -> Result<(), CliError> {
    if json {
        return print_json(v);
    }
    println!("{}", v["token"].as_str().unwrap_or("?"));
    print_claims(&v["claims"]);
    Ok(())
}

/// Runs `micro token …`.
pub fn token(client: &Client, command: TokenCommand) -> Result<(), CliError> {
    match command {
        TokenCommand::Create {
            account,
            ttl,
            services,
            methods,
            json,
        } => {
            let body = json!({
                "account": account,
                "ttl_ms": ttl.unwrap_or(0),
                "services": services,
                "methods": methods,
            });
            print_token(&post(client, "/api/tokens", &body)?, json)
        }
        TokenCommand::Inspect {
            token,
            service,
            method,
            json,
        } => {
            let body = json!({
                "token": token,
                "service": service.unwrap_or_default(),
                "method": method.unwrap_or_default(),
            });
            let claims = post(client, "/api/tokens/verify", &body)?;
            if json {
                return print_json(&claims);
            }
            println!("valid");
            print_claims(&claims);
            Ok(())
        }
        TokenCommand::Refresh { token, json } => print_token(
            &post(client, "/api/tokens/refresh", &json!({ "token": token }))?,
            json,
        ),
        TokenCommand::Revoke { id } => {
            client.delete(&format!("/api/tokens/{id}"))?.ok()?;
            println!("revoked {id}");
            Ok(())
        }
    }
}
