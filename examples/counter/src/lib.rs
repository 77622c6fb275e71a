//! Counts in durable storage: each counter is one key of the service's own namespace.

use micro_sdk::{Context, Error, Result, storage};
use serde::{Deserialize, Serialize};

struct Counter;

#[derive(Deserialize)]
struct Incr {
    #[serde(default = "default_name")]
    name: String,
    #[serde(default = "one")]
    by: i64,
}

#[derive(Deserialize)]
struct Get {
    #[serde(default = "default_name")]
    name: String,
}

fn default_name() -> String {
    "default".into()
}

fn one() -> i64 {
    1
}

#[derive(Serialize)]
struct Value {
    name: String,
    value: i64,
}

fn key(name: &str) -> String {
    format!("count/{name}")
}

/// Adds to a counter with compare-and-swap, so concurrent increments never lose an update.
fn incr(_ctx: &Context, input: Incr) -> Result<Value> {
    let key = key(&input.name);
    loop {
        let current = storage::get(&key)?;
        let value = match &current {
            None => 0,
            Some(bytes) => decode(bytes)?,
        };
        let next = value
            .checked_add(input.by)
            .ok_or_else(|| Error::bad_request("counter would overflow"))?;
        let next_bytes = next.to_string().into_bytes();
        if storage::compare_and_swap(&key, current.as_deref(), Some(&next_bytes))? {
            return Ok(Value {
                name: input.name,
                value: next,
            });
        }
    }
}

fn get(_ctx: &Context, input: Get) -> Result<Value> {
    let value = match storage::get(&key(&input.name))? {
        None => 0,
        Some(bytes) => decode(&bytes)?,
    };
    Ok(Value {
        name: input.name,
        value,
    })
}

/// Every counter, read page by page.
fn list(_ctx: &Context, _: ()) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = storage::list("count/", after.as_deref(), 100)?;
        for (k, v) in page.entries {
            out.push(Value {
                name: k.trim_start_matches("count/").to_string(),
                value: decode(&v)?,
            });
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(out),
        }
    }
}

fn decode(bytes: &[u8]) -> Result<i64> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::failed("stored counter is not a number"))
}

micro_sdk::service!(Counter {
    "incr" => incr,
    "get" => get,
    "list" => list,
});
