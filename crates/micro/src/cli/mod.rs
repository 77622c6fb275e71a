//! The `micro` command line: `micro server` runs a node; every other command talks to a running
//! node over its HTTP API.

mod client;
mod commands;
mod evolve;
mod governance;
mod ledger;
mod network;
mod new;
mod server;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code when no node answers (EX_UNAVAILABLE).
pub const EXIT_NO_NODE: u8 = 69;
/// Exit code when the node answered with an error.
pub const EXIT_FAILED: u8 = 1;

/// micro: an open peer-to-peer network for micro services.
#[derive(Debug, Parser)]
#[command(name = "micro", version, about)]
pub struct Cli {
    /// The node to talk to: `host:port` or `http://host:port` [default: http://127.0.0.1:8080].
    #[arg(long, global = true, env = "MICRO_NODE", value_parser = parse_node)]
    node: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node.
    Server {
        /// Where the node keeps its state [default: $MICRO_DATA_DIR or the user's data directory].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Address of the HTTP gateway [default: from the configuration, 127.0.0.1:8080].
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// A TOML file overriding the embedded defaults.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print the embedded default configuration and exit.
        #[arg(long)]
        print_default_config: bool,
        /// Join the network through this node's ticket (`micro network ticket`); repeatable.
        #[arg(long = "peer", value_name = "TICKET")]
        peers: Vec<String>,
    },
    /// Print this node's id (its public key): of the node `--node` names when given, else
    /// read from (or made in) the data directory.
    Identity {
        /// The node's data directory [default: $MICRO_DATA_DIR or the user's data directory].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// The network as the node sees it.
    Network {
        #[command(subcommand)]
        command: NetworkCommand,
    },
    /// Deploy a service: a .wasm component, or source (a git URL or a directory) that the node
    /// fetches, recognises and builds into a new version.
    Run {
        /// A .wasm file; a git URL `url[@ref][#subdir]` (file://, https://, ssh); or a
        /// directory on the node's machine.
        source: String,
        /// The service's name [default: the file, crate or package name, or the source's].
        #[arg(long)]
        name: Option<String>,
        /// Keep polling the source and deploy each new commit.
        #[arg(long)]
        watch: bool,
        /// How often to poll a watched source, e.g. 30s, 5m [default: the node's, 30s].
        #[arg(long, value_parser = parse_duration_ms)]
        interval: Option<u64>,
        /// How long a superseded version keeps serving pinned calls [default: the node's, 1h].
        #[arg(long, value_parser = parse_duration_ms)]
        lifetime: Option<u64>,
        /// For this node only: not announced to the network, and (with the default
        /// governance) calls from other nodes are refused. A .wasm file only, for now.
        #[arg(long)]
        private: bool,
        /// Build even if the tree is unchanged since a build (for a directory whose path
        /// dependencies outside it changed).
        #[arg(long)]
        rebuild: bool,
    },
    /// The versions of a service: state (building, serving, superseded, retired, failed) and
    /// time left.
    Versions {
        service: String,
        #[arg(long)]
        json: bool,
    },
    /// A service's recent runtime lines (what it logged, calls that failed in it, messages
    /// it could not handle); with --build, the log of a version's build.
    Logs {
        /// The service; `service@version` for a build log (the newest version when none).
        service: String,
        /// The log of the version's build instead.
        #[arg(long)]
        build: bool,
        /// How many of the newest lines.
        #[arg(long, short = 'n', default_value_t = 50)]
        lines: usize,
        #[arg(long)]
        json: bool,
    },
    /// The governance that decides here: which one, its decisions, and swapping it.
    Governance {
        #[command(subcommand)]
        command: GovernanceCommand,
    },
    /// The ledger that runs here (tokens today; pricing and balances to come).
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// API tokens of this node: signed, with a lifetime and the services they open.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The node's system components.
    System {
        #[command(subcommand)]
        command: SystemCommand,
    },
    /// What the node uses (memory, CPU, threads, files, store) and the calls and errors of
    /// each service version it runs (what the dashboard's Node page shows).
    Status {
        #[arg(long)]
        json: bool,
    },
    /// List the services on the node.
    Services {
        #[arg(long)]
        json: bool,
    },
    /// Show a service: its methods and the WIT of its world.
    Describe {
        service: String,
        #[arg(long)]
        json: bool,
    },
    /// Call a method of a service.
    Call {
        service: String,
        method: String,
        /// The request body (JSON) [default: empty].
        body: Option<String>,
    },
    /// Publish a message to a topic.
    Publish { topic: String, message: String },
    /// Print the messages of a topic as they arrive.
    Subscribe {
        topic: String,
        /// Replay the topic's retained messages first.
        #[arg(long)]
        history: bool,
        /// Share the topic's messages with the other members of this queue group.
        #[arg(long)]
        queue: Option<String>,
        /// Exit after this many messages.
        #[arg(long)]
        count: Option<u64>,
        /// Print each message as a JSON line (with sequence, publisher, timestamps).
        #[arg(long)]
        json: bool,
    },
    /// Stop a service (its stored data is kept).
    Stop { service: String },
    /// Make a new service project that builds and runs as it is: `micro run <name>` next.
    New {
        /// The service's name (lowercase letters, digits and '-').
        name: String,
        /// The language.
        #[arg(long, default_value = "rust", value_parser = clap::builder::PossibleValuesParser::new(new::languages()))]
        lang: String,
        /// Where to make it [default: ./<name>].
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// `micro system …`
#[derive(Debug, Subcommand)]
enum SystemCommand {
    /// The builders in use, in the order they are asked; `use <source>` replaces one.
    Builders {
        #[command(subcommand)]
        command: Option<BuildersCommand>,
        #[arg(long)]
        json: bool,
    },
}

/// `micro governance …`
#[derive(Debug, Subcommand)]
enum GovernanceCommand {
    /// The governance in use: name, version, where it came from, decisions so far.
    Show {
        #[arg(long)]
        json: bool,
    },
    /// The most recent decisions it was asked for, newest first.
    Log {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Build a governance component from source and swap it in while the node runs.
    Use {
        /// A git URL `url[@ref][#subdir]` or a directory on the node's machine.
        source: String,
    },
}

/// `micro ledger …`
#[derive(Debug, Subcommand)]
enum LedgerCommand {
    /// The ledger in use (name, version, where it came from), the prices set here, and what
    /// each service earned here and cost this node elsewhere.
    Show {
        #[arg(long)]
        json: bool,
    },
    /// Where each account stands with this node: spent here, paid by receipts, earned from
    /// this node, allowance and credit.
    Balance {
        #[arg(long)]
        json: bool,
    },
    /// The newest receipt of each pair this node is part of, both ways.
    Receipts {
        #[arg(long)]
        json: bool,
    },
    /// Set what one call of a service (or of service.method) costs, in micro-tokens.
    Price { target: String, amount: u64 },
    /// Build a ledger component from a git repository or directory and swap it in while the
    /// node runs (accounts and tokens stay: they are in the ledger's storage).
    Use { source: String },
}

/// `micro token …`
#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Issue a token signed by this node; prints it.
    Create {
        /// The account it acts for [default: this node].
        #[arg(long)]
        account: Option<String>,
        /// How long it lives, e.g. 30m, 1h, 7d [default: the ledger's, 1h].
        #[arg(long, value_parser = parse_duration_ms)]
        ttl: Option<u64>,
        /// The services it opens (comma-separated) [default: all of this node's].
        #[arg(long, value_delimiter = ',')]
        services: Vec<String>,
        /// The methods it opens, as service.method (comma-separated) [default: all].
        #[arg(long, value_delimiter = ',')]
        methods: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Check a token (optionally for one service and method) and print its claims.
    Inspect {
        token: String,
        #[arg(long)]
        service: Option<String>,
        #[arg(long)]
        method: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// A new token for the same account and rights (from a valid token, or one expired less
    /// than 10 minutes ago); prints it.
    Refresh {
        token: String,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its id (`micro token inspect` shows it).
    Revoke { id: String },
}

/// `micro system builders …`
#[derive(Debug, Subcommand)]
enum BuildersCommand {
    /// Build a builder component from source and swap it in while the node runs.
    Use {
        /// A git URL `url[@ref][#subdir]` or a directory on the node's machine.
        source: String,
    },
}

/// Reads a duration like `500ms`, `30s`, `5m`, `1h` (a bare number is seconds).
fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 500ms, 30s, 5m or 1h"))?;
    let factor = match unit {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("{text:?}: the unit must be ms, s, m or h")),
    };
    Ok(n * factor)
}

/// `micro network …`
#[derive(Debug, Subcommand)]
enum NetworkCommand {
    /// Print the node's ticket, for `micro server --peer <ticket>` on another node.
    Ticket,
    /// The nodes this node knows: first and last seen, round-trip time, services.
    Nodes {
        #[arg(long)]
        json: bool,
    },
    /// Services and the nodes serving them.
    ///
    /// Without a name, the services this node knows of (a local view of the network); with
    /// one, that service is looked up in the network now.
    Services {
        /// Look this service up in the network.
        service: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Routes to services, cheapest first, with their cost.
    ///
    /// Without a name, the services this node already knows routes to (its cache);
    /// with one, that service is looked up in the network now.
    Routes {
        /// Look this service up in the network.
        service: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The peer graph: nodes and their measured links.
    Graph {
        #[arg(long)]
        json: bool,
        /// Graphviz dot.
        #[arg(long, conflicts_with = "json")]
        dot: bool,
    },
}

/// The node the CLI talks to when none is named.
const DEFAULT_NODE: &str = "http://127.0.0.1:8080";

/// Reads `--node`: a URL with http(s), or a bare `host:port` (taken as http).
fn parse_node(text: &str) -> Result<String, String> {
    let text = text.trim().trim_end_matches('/');
    let (scheme, rest) = match text.split_once("://") {
        Some((scheme, rest)) => (scheme, rest),
        None => ("http", text),
    };
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "{text:?}: a node is reached over http or https, not {scheme}://"
        ));
    }
    let authority = rest.split('/').next().unwrap_or_default();
    // `[::1]` is a host with no port; `[::1]:8080` and `host:8080` have one.
    let port = authority
        .rsplit_once(':')
        .filter(|(_, p)| !p.ends_with(']'))
        .map(|(_, p)| p);
    let valid_host = !authority.is_empty()
        && !authority.starts_with(':')
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:[]".contains(&b));
    if !valid_host || port.is_some_and(|p| p.parse::<u16>().is_err()) {
        return Err(format!(
            "{text:?} is not a node's address; write it as host:port or http://host:port, e.g. 127.0.0.1:8080"
        ));
    }
    Ok(format!("{scheme}://{rest}"))
}

/// Runs the command line; the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Server { .. }) {
        // A listing piped into `head` or `grep -q` ends when the reader does, quietly, as other
        // command-line tools do (Rust ignores SIGPIPE, so printing would panic instead).
        // SAFETY: restores the default disposition of one signal before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let named_node = cli.node.clone();
    let node = cli.node.unwrap_or_else(|| DEFAULT_NODE.to_string());
    let client = || client::Client::new(&node);
    let result = match cli.command {
        Command::Server {
            data_dir,
            listen,
            config,
            print_default_config,
            peers,
        } => {
            if print_default_config {
                print!("{}", micro_base::config::DEFAULT_CONFIG);
                return ExitCode::SUCCESS;
            }
            server::run(data_dir, listen, config, peers)
        }
        Command::Identity { data_dir, json } => match (named_node, data_dir) {
            (Some(_), None) => network::remote_identity(&client(), json),
            (_, data_dir) => network::identity(data_dir, json),
        },
        Command::New { name, lang, dir } => new::run(&name, &lang, dir),
        Command::Network { command } => network::run(&client(), command),
        Command::System { command } => evolve::system(&client(), command),
        Command::Governance { command } => governance::run(&client(), command),
        Command::Ledger { command } => ledger::ledger(&client(), command),
        Command::Token { command } => ledger::token(&client(), command),
        command => commands::run(&client(), command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}

/// Prints a listing for programs (`--json`).
fn print_json(v: &serde_json::Value) -> Result<(), CliError> {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    Ok(())
}

/// A failed command: what to tell the user and the exit code.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub code: u8,
}

impl CliError {
    fn failed(message: impl std::fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            code: EXIT_FAILED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_node;

    #[test]
    fn node_addresses_take_a_bare_host_and_port() {
        for (given, taken) in [
            ("127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
            ("https://node.example:443", "https://node.example:443"),
            ("[::1]:8080", "http://[::1]:8080"),
            ("[::1]", "http://[::1]"),
            ("localhost", "http://localhost"),
        ] {
            assert_eq!(parse_node(given).as_deref(), Ok(taken), "{given}");
        }
        for bad in ["ftp://x:1", "a b", ":8080", "host:port", "host:99999", ""] {
            assert!(parse_node(bad).is_err(), "{bad}");
        }
    }
}
