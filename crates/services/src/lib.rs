//! The services a node offers the components it runs, each a module owning its state: the
//! key-value store (`storage`, and `keyvalue` for `wasi:keyvalue` on the same namespaces), the
//! publish/subscribe broker with its retention (`broker`), and service log lines (`logging`,
//! kept per service in `service_logs`). Nothing here knows the node or the network: a call's
//! store hands each interface a view of what it needs ([`storage::Namespace`],
//! [`keyvalue::Buckets`], [`broker::Publisher`], [`logging::ServiceLog`]), projected with
//! wasmtime's `HasData`.

pub mod broker;
pub mod keyvalue;
pub mod logging;
pub mod service_logs;
pub mod storage;
