//! {{name}}: a micro service.

use micro_sdk::{Context, Result};
use serde::{Deserialize, Serialize};

struct {{type}};

#[derive(Deserialize)]
struct Greet {
    #[serde(default = "world")]
    name: String,
}

fn world() -> String {
    "world".into()
}

#[derive(Serialize)]
struct Greeting {
    message: String,
}

fn greet(_ctx: &Context, input: Greet) -> Result<Greeting> {
    Ok(Greeting {
        message: format!("Hello from {{name}}, {}!", input.name),
    })
}

micro_sdk::service!({{type}} { "greet" => greet });
