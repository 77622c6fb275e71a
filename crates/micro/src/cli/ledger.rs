//! `micro ledger show | balance | receipts | price | use` and
//! `micro token create | inspect | refresh | revoke`.

use super::client::Client;
use super::{CliError, LedgerCommand, TokenCommand, print_json};
use serde_json::{Value, json};

/// Runs `micro ledger …`.
pub fn ledger(client: &Client, command: LedgerCommand) -> Result<(), CliError> {
    match command {
        LedgerCommand::Show { json } => show(client, json),
        LedgerCommand::Balance { json } => balance(client, json),
        LedgerCommand::Receipts { json } => receipts(client, json),
        LedgerCommand::Price { target, amount } => {
            let body = json!({ "amount": amount });
            client
                .put(
                    &format!("/api/ledger/prices/{target}"),
                    "application/json",
                    body.to_string().as_bytes(),
                )?
                .ok()?;
            println!("a call of {target} costs {amount} micro-tokens here");
            Ok(())
        }
        LedgerCommand::Use { source } => {
            let source = super::evolve::absolute(&source)?;
            let reader = client.post_stream("/api/ledger", &json!({ "source": source }))?;
            let l = super::evolve::follow(reader, "building the ledger")?;
            println!(
                "ledger {} {} now in use (component {})",
                l["name"].as_str().unwrap_or("?"),
                l["version"].as_str().unwrap_or("?"),
                super::evolve::short(&l["component"], "?")
            );
            Ok(())
        }
    }
}

fn show(client: &Client, json: bool) -> Result<(), CliError> {
    let v = client.get_json("/api/ledger")?;
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
    for p in v["prices"].as_array().into_iter().flatten() {
        println!(
            "price     {} = {} micro-tokens a call",
            p["target"].as_str().unwrap_or("?"),
            p["amount"].as_u64().unwrap_or(0)
        );
    }
    if let Some(services) = v["services"].as_object()
        && !services.is_empty()
    {
        println!(
            "{:<24} {:>14} {:>14} {:>14}",
            "SERVICE", "EARNED", "FREE", "SPENT"
        );
        for (name, f) in services {
            println!(
                "{:<24} {:>14} {:>14} {:>14}",
                name,
                f["earned"].as_u64().unwrap_or(0),
                f["free"].as_u64().unwrap_or(0),
                f["spent"].as_u64().unwrap_or(0)
            );
        }
    }
    println!(
        "owed, not yet in a receipt: {} micro-tokens; receipts not yet taken: {}",
        v["owed_unsigned"].as_u64().unwrap_or(0),
        v["receipts_unsent"].as_u64().unwrap_or(0)
    );
    Ok(())
}

fn balance(client: &Client, json: bool) -> Result<(), CliError> {
    let v = client.get_json("/api/ledger/balances")?;
    if json {
        return print_json(&v);
    }
    println!(
        "{:<18} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12} {:>14}",
        "ACCOUNT", "SPENT", "PAID", "EARNED", "NET", "FREE", "CREDIT", "ALLOWANCE LEFT"
    );
    for b in v["accounts"].as_array().into_iter().flatten() {
        println!(
            "{:<18} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12} {:>14}",
            super::evolve::short(&b["account"], "?"),
            b["spent"].as_u64().unwrap_or(0),
            b["paid"].as_u64().unwrap_or(0),
            b["earned"].as_u64().unwrap_or(0),
            b["net"].as_i64().unwrap_or(0),
            b["free"].as_u64().unwrap_or(0),
            b["credit_limit"].as_u64().unwrap_or(0),
            b["allowance_left"].as_u64().unwrap_or(0)
        );
    }
    Ok(())
}

fn receipts(client: &Client, json: bool) -> Result<(), CliError> {
    let v = client.get_json("/api/ledger/receipts")?;
    if json {
        return print_json(&v);
    }
    let me = v["node"].as_str().unwrap_or("");
    println!(
        "{:<5} {:<18} {:>14} {:>8}  SIGNATURE",
        "", "PEER", "CUMULATIVE", "COUNTER"
    );
    for r in v["receipts"].as_array().into_iter().flatten() {
        let (way, peer) = if r["payer"].as_str() == Some(me) {
            ("paid", &r["payee"])
        } else {
            ("got", &r["payer"])
        };
        println!(
            "{:<5} {:<18} {:>14} {:>8}  {}",
            way,
            super::evolve::short(peer, "?"),
            r["cumulative"].as_u64().unwrap_or(0),
            r["counter"].as_u64().unwrap_or(0),
            super::evolve::short(&r["signature"], "?")
        );
    }
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
        let left = ms as i64 - micro_base::Clock::new().now_ms() as i64;
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
