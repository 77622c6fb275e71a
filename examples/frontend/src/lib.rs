//! Builds on hello and counter: one call here is two calls to other services.

use micro_sdk::{Context, Result, call};
use serde::{Deserialize, Serialize};

struct Frontend;

#[derive(Deserialize)]
struct Visit {
    name: String,
}

#[derive(Serialize)]
struct Welcome {
    greeting: String,
    visits: i64,
}

#[derive(Deserialize)]
struct Greeting {
    message: String,
}

#[derive(Deserialize)]
struct Count {
    value: i64,
}

fn visit(_ctx: &Context, input: Visit) -> Result<Welcome> {
    let greeting: Greeting = call("hello", "greet", &serde_json::json!({ "name": input.name }))?;
    let count: Count = call(
        "counter",
        "incr",
        &serde_json::json!({ "name": input.name }),
    )?;
    Ok(Welcome {
        greeting: greeting.message,
        visits: count.value,
    })
}

/// Asks hello who is calling it: the answer names this service.
fn whoami(_ctx: &Context, _: ()) -> Result<serde_json::Value> {
    call("hello", "whoami", &())
}

micro_sdk::service!(Frontend {
    "visit" => visit,
    "whoami" => whoami,
});
