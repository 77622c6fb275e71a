//! Write micro services in Rust.
//!
//! A service is a type, a few functions taking and returning serde types, and one macro call:
//!
//! ```ignore
//! use micro_sdk::{Context, Result};
//! use serde::{Deserialize, Serialize};
//!
//! struct Hello;
//!
//! #[derive(Deserialize)]
//! struct Greet { name: String }
//!
//! #[derive(Serialize)]
//! struct Greeting { message: String }
//!
//! fn greet(_ctx: &Context, input: Greet) -> Result<Greeting> {
//!     Ok(Greeting { message: format!("Hello, {}!", input.name) })
//! }
//!
//! micro_sdk::service!(Hello { "greet" => greet });
//! ```
//!
//! The generated WIT bindings are in [`bindings`] for anything the typed layer does not cover.

pub mod bindings;
mod call;
mod context;
mod error;
pub mod events;
mod export;
pub mod log;
pub mod registry;
pub mod storage;

pub use call::{call, call_raw};
pub use context::Context;
pub use error::{Error, Result};
pub use events::{Message, Subscription, publish, publish_json};
pub use export::Service;

#[doc(hidden)]
pub mod __private {
    pub use crate::export::{Adapter, Dispatch, invoke};
    pub use serde_json;
}
