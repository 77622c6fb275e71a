//! Greets by name: the smallest micro service.

use micro_sdk::{Context, Result};
use serde::{Deserialize, Serialize};

struct Hello;

#[derive(Deserialize)]
struct Greet {
    name: String,
}

#[derive(Serialize)]
struct Greeting {
    message: String,
}

fn greet(_ctx: &Context, input: Greet) -> Result<Greeting> {
    Ok(Greeting {
        message: format!("Hello, {}!", input.name),
    })
}

/// Who is calling, as the node tells the callee.
#[derive(Serialize)]
struct Caller {
    service: Option<String>,
    node: String,
    depth: u32,
}

fn whoami(ctx: &Context, _: ()) -> Result<Caller> {
    Ok(Caller {
        service: ctx.caller_service().map(str::to_string),
        node: ctx.caller_node().to_string(),
        depth: ctx.depth(),
    })
}

micro_sdk::service!(Hello {
    "greet" => greet,
    "whoami" => whoami,
});
