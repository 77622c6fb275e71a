//! The micro node above its runtime and services (crates `micro-runtime`, `micro-services`):
//! what it deploys, how calls travel, the peer network, the HTTP gateway and the CLI.
//!
//! `registry` keeps the deployed versions; `host_state` is a call's store and links the
//! interfaces the node offers (`transport` and `component_registry` implement two of them
//! here, the services crate the rest); `catalog` is the network's services as this node knows
//! them; `gateway` serves HTTP; `net` joins other nodes (gossip, routes, remote calls and
//! events); `evolve` builds services from source into versions; `placement` runs services
//! where governance places them; `system` holds the swappable system components (builders,
//! governance, the ledger); `cli` is the `micro` command; `node` wires the parts together.

pub mod catalog;
pub mod cli;
pub mod component_registry;
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
