//! The micro node: runs WebAssembly services written against the `micro:network` WIT package,
//! keeps their state, lets them call each other and exchange events, and serves them over HTTP.
//!
//! The module tree mirrors the architecture: `runtime` runs components; `registry`, `transport`,
//! `broker`, `storage` and `logging` each implement one WIT interface the host offers; `gateway`
//! serves HTTP; `net` joins other nodes (identity, gossip, routes, remote calls and events); `evolve`
//! builds services from source into versions; `placement` runs services where governance
//! places them; `system` holds the swappable system components (builders, governance); `cli`
//! is the `micro` command; `node` wires the services together.

pub mod catalog;
pub mod cli;
pub mod deploy;
pub mod evolve;
pub mod gateway;
pub mod host_state;
pub mod kit;
pub mod net;
pub mod node;
pub mod placement;
pub mod registry;
pub mod system;
pub mod transport;
