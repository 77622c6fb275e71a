//! The micro node's core, above its runtime and services (crates `micro-runtime`,
//! `micro-services`) and below the peer layer, the gateway and the CLI: what a node deploys,
//! the one pipeline every call goes through, and the swappable system components.
//!
//! `registry` keeps the deployed versions; `host_state` is a call's store and links the
//! interfaces the node offers (`transport` and `component_registry` implement two of them
//! here, the services crate the rest); `catalog` is the network's services as this node knows
//! them; `http_relay` carries HTTP requests for `wasi:http` services on other nodes as calls;
//! `deploy` turns a component into a running version; `evolve` builds services from source
//! into versions; `system` holds the system components (builders, governance, the ledger);
//! `node` holds the parts; `remote` is what the core asks of other nodes, answered by the peer
//! layer above it (crate `micro-net`) without the core knowing how; `subscriptions` makes
//! every subscription network-wide through it.

pub mod catalog;
pub mod component_registry;
pub mod deploy;
pub mod evolve;
pub mod host_state;
pub mod http_relay;
pub mod kit;
pub mod node;
pub mod registry;
pub mod remote;
pub mod subscriptions;
pub mod system;
pub mod transport;
