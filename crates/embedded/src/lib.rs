//! The default system components a node embeds, so it builds services from source and governs
//! itself with nothing beside it: the builders, the governance and the ledger, as component
//! bytes. `build.rs` builds them from `components/` with a nested cargo for wasm32-wasip2; this
//! is the only crate of the node that needs that target, so the layers below build and test
//! without it.

include!(concat!(env!("OUT_DIR"), "/builders.rs"));
include!(concat!(env!("OUT_DIR"), "/governance.rs"));
include!(concat!(env!("OUT_DIR"), "/ledger.rs"));
