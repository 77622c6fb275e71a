//! `micro server`, the composition root: opens the node's core, starts its peer layer and
//! attaches it as the core's `Remote`, brings back its services, starts the loops of each
//! layer and serves the gateway with the parts it reads.

use super::CliError;
use micro_base::config::Config;
use micro_core::node::{Node, default_data_dir};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// What the node logs unless RUST_LOG says otherwise.
const DEFAULT_LOG_FILTER: &str = "info,wasmtime=warn,cranelift=warn";

/// Targets kept quiet unless RUST_LOG names them. The peer layer's lookups and relay client
/// warn on every retry when the internet is out of reach (a kilobyte each, every few seconds)
/// and its relay client errs when the node stops; the node says once itself whether a relay
/// answered, so theirs are off.
const QUIET: [(&str, &str); 5] = [
    ("iroh::address_lookup", "error"),
    ("iroh::net_report", "error"),
    ("iroh_relay", "error"),
    ("iroh::socket::transports::relay", "off"),
    ("swarm_discovery", "warn"),
];

/// The node's log filter: RUST_LOG (or the default), with the noisy targets it does not name
/// kept quiet.
fn log_filter(rust_log: Option<&str>) -> tracing_subscriber::EnvFilter {
    let asked = rust_log.unwrap_or(DEFAULT_LOG_FILTER);
    let mut filter = tracing_subscriber::EnvFilter::try_new(asked)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    for (target, level) in QUIET {
        if !asked.contains(target)
            && let Ok(directive) = format!("{target}={level}").parse()
        {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

/// Runs a node until Ctrl-C or SIGTERM.
pub fn run(
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    config: Option<PathBuf>,
    peers: Vec<String>,
) -> Result<(), CliError> {
    use std::io::IsTerminal as _;
    tracing_subscriber::fmt()
        .with_env_filter(log_filter(std::env::var("RUST_LOG").ok().as_deref()))
        // Colour for a person at a terminal, plain text for a file or a pipe.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let mut config = match config {
        Some(path) => Config::load(&path).map_err(CliError::failed)?,
        None => Config::default(),
    };
    if let Some(listen) = listen {
        config.listen = listen;
    }
    let data_dir = data_dir.unwrap_or_else(default_data_dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failed(format!("starting the async runtime: {e}")))?;
    runtime
        .block_on(serve(config, data_dir, peers))
        .map_err(|e| CliError::failed(format!("{e:#}")))
}

async fn serve(config: Config, data_dir: PathBuf, peers: Vec<String>) -> anyhow::Result<()> {
    let listen = config.listen;
    // A bad ticket is a typo on the command line: say so before anything starts.
    for t in config.network.peers.iter().chain(&peers) {
        micro_net::ticket::decode(t).map_err(|e| anyhow::anyhow!("peer ticket {t:?}: {e}"))?;
    }
    let node = Node::open(config, &data_dir)?;
    // The peer layer comes up before services are restored, so their subscriptions are
    // network-wide from the start.
    // The peer layer sees the node only as a `Local`; the node sees it only as a `Remote`.
    let local = micro_net::local::of(&node);
    let network = if node.config.network.enabled {
        let start = micro_net::Start {
            identity: node.identity.clone(),
            config: node.config.clone(),
            clock: node.clock.clone(),
            data_dir: node.data_dir.clone(),
            askers: node.askers.clone(),
        };
        let net = micro_net::Network::start(local.clone(), start, &peers).await?;
        node.set_remote(Arc::new(micro_net::remote::PeerRemote::new(&local, &net)));
        Some(net)
    } else {
        if !peers.is_empty() {
            anyhow::bail!("--peer given but the network is disabled in the configuration");
        }
        None
    };
    let restored = micro_core::deploy::restore(&node).await?;
    let watched = micro_core::evolve::watch::resume(&node)?;
    tokio::spawn(micro_core::deploy::retire_loop(node.clone()));
    tokio::spawn(micro_net::observe::observe_loop(
        local.clone(),
        network.clone(),
        node.config.governance.observe_interval_ms,
    ));
    if let Some(net) = &network {
        tokio::spawn(micro_net::placement::place_loop(local.clone(), net.clone()));
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let address = listener.local_addr()?;
    tracing::info!(node = %node.id, data_dir = %data_dir.display(), allocator = ?node.runtime.allocator(), restored, watched, "node started");
    // The readiness line: scripts and tests wait for it (the port may have been chosen by the OS).
    println!(
        "micro node {} listening on http://{address} (dashboard: http://{address}/)",
        node.id
    );
    // Governance loads after the node is up (the first decision would load it anyway), so the
    // node's record can say which governance it runs.
    tokio::spawn({
        let node = node.clone();
        async move {
            if let Err(e) = node.governance().await {
                tracing::error!(error = %e, "governance not loaded; every decision denies");
            }
        }
    });
    let gateway = micro_gateway::Gateway {
        node,
        net: network.clone(),
    };
    micro_gateway::serve(gateway, listener, shutdown_signal()).await?;
    if let Some(network) = network {
        network.shutdown().await;
    }
    tracing::info!("node stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
