//! The ground floor of a micro node: what every layer above needs and nothing that needs a wasm
//! engine or a network. Each module is one job: who the node is (`identity`), how it is
//! configured (`config`), what time it is (`clock`), what a service may be called (`names`),
//! how a state tells watchers it changed (`changes`), what the process uses (`usage`), and how
//! a lock poisoned by a panic is taken anyway (`sync`).

pub mod changes;
pub mod clock;
pub mod config;
pub mod counters;
pub mod identity;
pub mod names;
pub mod sync;
pub mod usage;

pub use changes::Changes;
pub use clock::Clock;
