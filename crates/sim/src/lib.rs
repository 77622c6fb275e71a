//! A deterministic discrete-event simulator of the micro DHT. Every node is the node's own
//! `micro_dht::Dht`; the simulator only carries messages between them with a latency, counts
//! their bytes (sized as the node's real messages are, QUIC's framing and handshakes
//! included), churns nodes, plays Sybil nodes that lie, and runs a workload of providers and
//! lookups. One seed fixes the run: the same seed gives the same figures.

mod calendar;
pub mod engine;
mod made;
pub mod model;
pub mod report;
pub mod topics;

pub use engine::{Config, Start, run};
pub use report::Report;
pub use topics::{TopicConfig, TopicReport, run_topic};
