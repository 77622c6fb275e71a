//! The node's configuration: embedded defaults, overridden by an optional TOML file and flags.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The defaults every node starts from.
pub const DEFAULT_CONFIG: &str = include_str!("default-config.toml");

/// Errors reading a configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or names a key the node does not have.
    #[error("config {path} is not valid: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        source: toml::de::Error,
    },
}

/// Everything a node can be configured with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address of the gateway.
    pub listen: SocketAddr,
    /// What one service and one call may use.
    pub limits: Limits,
    /// The key-value store's limits.
    pub storage: StorageLimits,
    /// Publish/subscribe retention and queues.
    pub broker: BrokerConfig,
    /// Outgoing HTTP from services.
    pub http: HttpConfig,
    /// The peer layer.
    pub network: NetworkConfig,
    /// Builds from source and version lifetimes.
    pub evolve: EvolveConfig,
    /// How the node works with its governance component.
    pub governance: GovernanceConfig,
    /// How the node works with its ledger.
    pub ledger: LedgerConfig,
}

/// How the node works with its ledger.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    /// Calls through the gateway must carry `Authorization: Bearer <token>` (for a gateway
    /// that others reach); otherwise a token is checked only when one is given.
    pub require_token: bool,
    /// How often this node signs receipts for what its calls to other nodes cost, and hands
    /// them over, in milliseconds (one receipt per payee covers every call since the last).
    pub settle_interval_ms: u64,
}

/// How the node works with its governance component.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GovernanceConfig {
    /// How often observations go to the governance component, in milliseconds.
    pub observe_interval_ms: u64,
    /// How often this node asks governance where its services should run (and checks what
    /// other nodes placed on it), in milliseconds.
    pub place_interval_ms: u64,
    /// Tests only: governance's clock can be moved forward over the API.
    pub test_clock: bool,
    /// Node ids this node's operator trusts from the start (their own other nodes, say).
    pub trusted: Vec<String>,
}

/// The peer layer: how this node joins others, keeps its peers and reaches services.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Off: the node runs alone and serves only what is deployed on it.
    pub enabled: bool,
    /// UDP address the peer endpoint binds.
    pub bind: SocketAddr,
    /// Tickets of nodes to join through (`micro server --peer` adds to these).
    pub peers: Vec<String>,
    /// Relay servers for nodes that cannot reach each other directly.
    pub relays: bool,
    /// Publish and resolve node addresses through the public DNS lookup service.
    pub public_lookup: bool,
    /// Find nodes on the local network by multicast DNS.
    pub mdns: bool,
    /// Ask the router for a port mapping (UPnP, PCP, NAT-PMP).
    pub port_mapping: bool,
    /// How long a peer this node checks may stay silent before it is forgotten, in
    /// milliseconds (`record_ttl_ms` in configurations written before records went).
    pub peer_silence_ms: u64,
    /// How often this node asks the peers it checks how they trust others, in milliseconds
    /// (`announce_interval_ms` in older configurations).
    pub report_interval_ms: u64,
    /// How often the peers this node checks are pinged, in milliseconds.
    pub heartbeat_ms: u64,
    /// How long a connection attempt to a peer may take, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Largest frame a peer may send, in bytes (request payloads are limited separately).
    pub max_frame_bytes: usize,
    /// Leading zero bits of work a node's DHT key must carry: this node makes its own key with
    /// this much and accepts no contact with less. Every node of a network should agree.
    pub work_bits: u32,
}

impl NetworkConfig {
    /// How long a new stream may take to send its request.
    pub fn header_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.connect_timeout_ms.max(1000))
    }
}

/// Building services from source and the lifetime of their versions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvolveConfig {
    /// How long one build may take, in milliseconds.
    pub build_timeout_ms: u64,
    /// Most output (build log and tools' standard output) one build may write, in bytes.
    pub max_build_output_bytes: usize,
    /// Where build caches live; empty for `<data dir>/cache/builds`.
    pub build_cache_dir: PathBuf,
    /// The cargo builders run (a bare name is looked up in PATH).
    pub cargo: String,
    /// The componentize-py builders run (also looked up in `~/.cache/micro/venv/bin`).
    pub componentize_py: String,
    /// The Node.js builders run for JavaScript services.
    pub node: String,
    /// The npm project with componentize-js and esbuild (`sdk/js/package.json` installed);
    /// empty for `~/.cache/micro/js`.
    pub componentize_js: PathBuf,
    /// How long a superseded version keeps serving, in milliseconds.
    pub superseded_lifetime_ms: u64,
    /// How often watched sources are polled, in milliseconds.
    pub watch_interval_ms: u64,
}

/// Limits on what one service and one call may use.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Linear memory one instance may use, in MiB.
    pub memory_mib: u64,
    /// Wall-clock time one call may take, nested calls included, in milliseconds.
    pub call_timeout_ms: u64,
    /// Instances of one service running at once; further calls wait.
    pub max_concurrency_per_service: usize,
    /// Instances of all services running at once on this node.
    pub max_instances: u32,
    /// How deep calls may nest before the node stops them as a loop.
    pub max_call_depth: u32,
    /// Largest request payload, in bytes.
    pub max_request_bytes: usize,
    /// Largest response payload, in bytes.
    pub max_response_bytes: usize,
    /// Largest component accepted at deploy, in bytes.
    pub max_component_bytes: usize,
}

/// Limits of the key-value store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageLimits {
    /// Longest key, in bytes.
    pub max_key_bytes: usize,
    /// Largest value, in bytes.
    pub max_value_bytes: usize,
    /// The most entries one `list` page returns.
    pub max_page: u32,
}

/// Broker retention and queueing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// Recent messages kept per topic for replay (0 keeps none).
    pub retain_messages: u64,
    /// Retained messages older than this are dropped, in seconds.
    pub retain_seconds: u64,
    /// Largest message payload, in bytes.
    pub max_message_bytes: usize,
    /// Messages queued per subscriber before it misses some.
    pub subscriber_queue: usize,
}

/// Outgoing HTTP from services.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Services allowed to make outgoing HTTP requests.
    pub allow_outgoing: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        // The embedded file is part of the binary and covered by a unit test.
        #[allow(
            clippy::expect_used,
            reason = "embedded in the binary, parsed by a unit test"
        )]
        toml::from_str(DEFAULT_CONFIG).expect("embedded default config is valid")
    }
}

impl Config {
    /// Loads `path` over the embedded defaults: keys it leaves out keep their default values.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_over_defaults(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    fn from_toml_over_defaults(text: &str) -> Result<Self, toml::de::Error> {
        let mut base: toml::Table = toml::from_str(DEFAULT_CONFIG)?;
        let mut over: toml::Table = toml::from_str(text)?;
        renamed(&mut over);
        merge(&mut base, over);
        toml::Value::Table(base).try_into()
    }
}

/// Keys renamed since a configuration may have been written: (section, old name, new name).
const RENAMED: &[(&str, &str, &str)] = &[
    ("network", "record_ttl_ms", "peer_silence_ms"),
    ("network", "announce_interval_ms", "report_interval_ms"),
];

/// Reads a key under its old name as its new one, so a configuration written for an earlier
/// build still loads (the new name wins when both are given).
fn renamed(over: &mut toml::Table) {
    for (section, old, new) in RENAMED {
        if let Some(toml::Value::Table(t)) = over.get_mut(*section)
            && let Some(value) = t.remove(*old)
        {
            t.entry(*new).or_insert(value);
        }
    }
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_older_configurations_load_under_their_new_names() {
        let c = Config::from_toml_over_defaults(
            "[network]\nrecord_ttl_ms = 1234\nannounce_interval_ms = 567\n",
        )
        .expect("an older configuration loads");
        assert_eq!(
            (c.network.peer_silence_ms, c.network.report_interval_ms),
            (1234, 567)
        );
    }

    #[test]
    fn embedded_defaults_parse() {
        let c = Config::default();
        assert_eq!(c.listen.port(), 8080);
        assert!(c.limits.memory_mib > 0);
    }

    #[test]
    fn a_file_overrides_only_what_it_names() {
        let c = Config::from_toml_over_defaults("[limits]\nmemory_mib = 7\n").unwrap();
        assert_eq!(c.limits.memory_mib, 7);
        assert_eq!(
            c.limits.call_timeout_ms,
            Config::default().limits.call_timeout_ms
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = Config::from_toml_over_defaults("[limits]\nmemory_mb = 7\n").unwrap_err();
        assert!(err.to_string().contains("memory_mb"), "{err}");
    }
}
