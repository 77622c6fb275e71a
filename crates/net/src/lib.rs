//! The peer layer: one iroh endpoint per node, a partial view of peers kept by an iroh-gossip
//! overlay and checked by pings, a DHT from service names and topics to signed provider
//! entries, routes, and calls and events between nodes over `micro/rpc/1`. No part of it holds
//! or sends something per node of the whole network.
//!
//! One module per job: the peers this node keeps (`overlay`) and their health (`membership`);
//! how to reach nodes (`addresses`); contacts and entries as they travel (`contact`); the DHT
//! (`dht`), this node's entries in it (`provide`) and the providers it looked up
//! (`providers`); how peers behave and whether governance admits them (`conduct`); framing
//! (`wire`); requests (`rpc`); subscriptions by topic across nodes (`events`); routing
//! (`routes`); settling what nodes owe each other (`settle`); replicas placed by governance
//! (`placement`); what governance learns of peers (`observe`). `remote` is the core's view of
//! all this: the [`micro_core::remote::Remote`] the node calls, implemented here; `local` is
//! the node as this layer sees it (the mirror: a narrow trait the node implements).

pub mod addresses;
pub mod conduct;
pub mod contact;
pub mod dht;
pub mod events;
pub mod local;
pub mod membership;
pub mod observe;
pub mod overlay;
pub mod placement;
pub mod provide;
pub mod providers;
pub mod remote;
pub mod routes;
pub mod rpc;
pub mod settle;
pub mod ticket;
pub mod traffic;
pub mod wire;

use anyhow::Context as _;
use iroh::address_lookup::memory::MemoryLookup;
use iroh::endpoint::presets;
use iroh::{Endpoint, EndpointAddr, PublicKey, RelayMode};
use iroh_gossip::net::Gossip;
use local::Local;
use membership::Membership;
use micro_base::config::Config;
use micro_base::identity::Identity;
use micro_core::system::governance::Askers;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wire::WireError;

/// Largest message the overlay takes: it carries none of its own, so anything is a peer
/// misspeaking and is cut short.
const MAX_OVERLAY_MESSAGE: usize = 1024;

/// Failures talking to a peer.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{0}")]
    /// No way to reach the peer (no address, the connection failed).
    Unreachable(String),
    #[error("{0}")]
    /// It did not answer in time.
    Timeout(String),
    /// The connection broke after the request was sent: the peer died or was cut off.
    #[error("{0}")]
    Lost(String),
    #[error("{0}")]
    /// A frame could not be read or written.
    Wire(#[from] WireError),
    #[error("unexpected reply: {0}")]
    /// The peer answered something that does not fit the request.
    Protocol(String),
}

micro_base::counters!(
    /// What the peer layer refused or survived, for `/api/network` and the tests.
    pub struct NetStats => NetCounts {
        /// Frames that did not decode.
        bad_frames,
        /// Frames over the size limit.
        oversized_frames,
        /// Streams a peer opened and left without sending in time.
        stalled_streams,
        /// Provider entries and contacts a peer sent that did not check (signature, work,
        /// size, key).
        bad_entries,
        /// Connections refused before or during their handshake.
        refused_connections,
        /// Connections, messages and requests of peers governance refused.
        refused_peers,
        /// Requests and messages over the rate governance allows their peer.
        throttled,
        /// Calls this node sent to peers.
        calls_out,
        /// Calls that went on to the next route after one failed.
        failovers,
        /// Calls whose node stopped answering pings while they were in flight (taken as lost).
        calls_lost_in_flight,
        /// Receipts taken from peers.
        receipts_taken,
        /// Receipts refused as replayed or out of order.
        receipts_replayed,
        /// Receipts refused for a bad signature.
        receipts_forged,
        /// Receipts refused otherwise.
        receipts_refused,
        /// Receipts this node handed over that their payee took.
        receipts_delivered,
    }
);

impl NetStats {
    /// Counts a frame that could not be read.
    pub fn count_bad_frame(&self, e: &WireError) {
        match e {
            WireError::TooLarge { .. } => &self.oversized_frames,
            _ => &self.bad_frames,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `n` provider entries or contacts a peer sent that did not check.
    pub fn count_bad_entries(&self, n: u64) {
        self.bad_entries.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a receipt handed over to this node by what became of it.
    pub fn count_settle(
        &self,
        outcome: &Result<u64, micro_core::system::ledger::accounts::ReceiptRefusal>,
    ) {
        use micro_core::system::ledger::accounts::ReceiptRefusal as R;
        match outcome {
            Ok(_) => &self.receipts_taken,
            Err(R::Replayed(_)) => &self.receipts_replayed,
            Err(R::BadSignature(_)) => &self.receipts_forged,
            Err(R::Refused(_) | R::Failed(_)) => &self.receipts_refused,
        }
        .fetch_add(1, Ordering::Relaxed);
    }
}

/// The running peer layer of a node.
pub struct Network {
    /// The node's key pair.
    pub identity: Identity,
    /// The node's clock: record times, peers' first and last sightings.
    pub clock: micro_base::Clock,
    /// The iroh endpoint.
    pub endpoint: Endpoint,
    gossip: Gossip,
    /// The peers this node knows and their health.
    pub peers: Membership,
    /// Connections to peers, and requests over them.
    pub pool: rpc::Pool,
    /// The endpoint's address book, bounded.
    pub addresses: addresses::AddressBook,
    /// The node's configuration: the peer layer's own section (`network`), and the limits,
    /// intervals and queue sizes of the others that it applies.
    pub config: Config,
    /// Who asks governance and the ledger: this node, and the peers it pre-trusts.
    pub askers: Askers,
    /// What it refused or survived.
    pub stats: NetStats,
    /// How peers behave, and whom governance refused.
    pub conduct: conduct::Conduct,
    /// Where governance placed this node's services, and their demand.
    pub placement: placement::Placement,
    /// The node's DHT: service names to provider entries.
    pub dht: Arc<dht::Lookup>,
    /// The providers of the services this node calls, found through the DHT.
    pub providers: providers::Providers,
    /// This node's subscriptions to topics published on other nodes.
    pub events: events::Events,
    /// The largest frame a peer may send: a call's request and its framing.
    frame_limit: usize,
    /// Current overlay neighbours.
    neighbours: Mutex<HashSet<PublicKey>>,
    gossip_sender: Mutex<Option<iroh_gossip::api::GossipSender>>,
    /// Set when the node stops: what fails from then on is the shutdown, not a fault.
    stopping: AtomicBool,
}

/// What the peer layer is given of its node when it starts, fixed for the node's life.
pub struct Start {
    /// The node's key pair.
    pub identity: Identity,
    /// The node's configuration.
    pub config: Config,
    /// The node's one clock.
    pub clock: micro_base::Clock,
    /// The node's data directory (the peer layer keeps its port there).
    pub data_dir: PathBuf,
    /// Who asks governance and the ledger, as the node tells it.
    pub askers: Askers,
}

impl Network {
    /// Binds the endpoint, joins through `tickets` and starts the accept, overlay, heartbeat,
    /// DHT, provide, events and settle loops, serving `local`. Never waits for relays or public lookup.
    /// The caller attaches the returned network to its node as the node's
    /// [`Remote`](micro_core::remote::Remote) ([`remote::PeerRemote`]).
    pub async fn start(
        local: Arc<dyn Local>,
        start: Start,
        tickets: &[String],
    ) -> anyhow::Result<Arc<Network>> {
        let Start {
            identity,
            config: node_config,
            clock,
            data_dir,
            askers,
        } = start;
        let config = &node_config.network;
        let mut bootstrap = Vec::new();
        for t in config.peers.iter().chain(tickets) {
            bootstrap.push(ticket::decode(t).with_context(|| format!("peer ticket {t:?}"))?);
        }
        let lookup = MemoryLookup::new();
        let builder = |bind: Option<std::net::SocketAddr>| -> anyhow::Result<_> {
            let mut builder = Endpoint::builder(presets::Minimal)
                .secret_key(identity.secret().clone())
                .alpns(vec![
                    wire::RPC_ALPN.to_vec(),
                    wire::RPC_ALPN_1.to_vec(),
                    iroh_gossip::ALPN.to_vec(),
                ])
                .address_lookup(lookup.clone())
                .relay_mode(if config.relays {
                    RelayMode::Default
                } else {
                    RelayMode::Disabled
                });
            if let Some(bind) = bind {
                builder = builder
                    .clear_ip_transports()
                    .bind_addr(bind)
                    .map_err(|e| anyhow::anyhow!("peer address {bind}: {e}"))?;
            }
            if !config.port_mapping {
                builder = builder.portmapper_config(iroh::endpoint::PortmapperConfig::Disabled);
            }
            if config.public_lookup {
                use iroh::address_lookup::{DnsAddressLookup, PkarrPublisher, PkarrResolver};
                builder = builder
                    .address_lookup(PkarrPublisher::n0_dns())
                    .address_lookup(PkarrResolver::n0_dns())
                    .address_lookup(DnsAddressLookup::n0_dns());
            }
            Ok(builder)
        };
        let explicit = !(config.bind.ip().is_unspecified() && config.bind.port() == 0);
        // A node bound to "any port" of an address takes the port it had before when it is
        // free: peers that knew it reach it again at once (a dialer keeps sending to the
        // address it last used for a while, whatever the new record says).
        let port_file = data_dir.join("peer-port");
        let previous = (explicit && config.bind.port() == 0)
            .then(|| {
                std::fs::read_to_string(&port_file)
                    .ok()?
                    .trim()
                    .parse::<u16>()
                    .ok()
            })
            .flatten()
            .map(|port| std::net::SocketAddr::new(config.bind.ip(), port));
        let again = match previous {
            Some(addr) => builder(Some(addr))?.bind().await.ok(),
            None => None,
        };
        let endpoint = match again {
            Some(endpoint) => endpoint,
            None => builder(explicit.then_some(config.bind))?
                .bind()
                .await
                .map_err(|e| {
                    anyhow::anyhow!("binding the peer endpoint on {}: {e}", config.bind)
                })?,
        };
        if explicit
            && config.bind.port() == 0
            && let Some(bound) = endpoint.bound_sockets().first()
            && let Err(e) = std::fs::write(&port_file, bound.port().to_string())
        {
            tracing::warn!(file = %port_file.display(), error = %e, "cannot keep the peer port");
        }
        let gossip = Gossip::builder()
            .max_message_size(MAX_OVERLAY_MESSAGE)
            .spawn(endpoint.clone());
        let pool = rpc::Pool::new(
            endpoint.clone(),
            Duration::from_millis(config.connect_timeout_ms),
        );
        // The node's DHT key costs work, made once (a fraction of a second) and kept.
        let work_bits = config.work_bits;
        let (nonce, key) = {
            let (dir, identity) = (data_dir.clone(), identity.clone());
            tokio::task::spawn_blocking(move || contact::load_or_solve(&dir, &identity, work_bits))
                .await
                .context("making the node's DHT key")??
        };
        let seed = u64::from_le_bytes(key.0[..8].try_into().unwrap_or_default());
        let dht = Arc::new(dht::Lookup::new(
            key,
            nonce,
            work_bits,
            seed,
            clock.now_ms(),
        ));
        let frame_limit = config
            .max_frame_bytes
            .max(node_config.limits.max_request_bytes + 64 * 1024);
        let net = Arc::new(Network {
            identity,
            peers: Membership::new(clock.clone()),
            clock,
            endpoint,
            gossip,
            pool,
            addresses: addresses::AddressBook::new(lookup),
            config: node_config,
            askers,
            stats: NetStats::default(),
            conduct: conduct::Conduct::default(),
            placement: placement::Placement::default(),
            dht,
            providers: providers::Providers::default(),
            events: events::Events::default(),
            frame_limit,
            stopping: AtomicBool::new(false),
            neighbours: Mutex::default(),
            gossip_sender: Mutex::new(None),
        });
        for addr in &bootstrap {
            net.learn(addr.clone(), "ticket");
        }
        let bootstrap_dht = bootstrap.clone();
        if net.config.network.mdns {
            overlay::start_mdns(&net);
            tracing::info!(
                "nodes on this LAN find and join each other by mDNS; [network] mdns = false in the configuration turns it off"
            );
        }
        if net.config.network.relays {
            tokio::spawn(watch_reachability(net.endpoint.clone()));
        }
        tokio::spawn(accept_loop(local.clone(), net.clone()));
        tokio::spawn(net.dht.clone().drive(net.clone()));
        {
            let net = net.clone();
            tokio::spawn(async move {
                match net.dht.join(&net, &bootstrap_dht).await {
                    Ok(n) => tracing::debug!(nodes = n, "joined the DHT"),
                    Err(e) => tracing::debug!(error = %e, "joining the DHT"),
                }
            });
        }
        provide::spawn(local.clone(), net.clone());
        tokio::spawn(events::refresh_loop(net.clone()));
        tokio::spawn(settle::settle_loop(local.clone(), net.clone()));
        overlay::spawn_loops(&local, &net, bootstrap.iter().map(|a| a.id).collect());
        tracing::info!(
            id = %net.identity.public(),
            addrs = ?net.endpoint.bound_sockets(),
            peers = bootstrap.len(),
            relays = net.config.network.relays,
            "peer endpoint up"
        );
        Ok(net)
    }

    /// Remembers how to reach a peer this node checks (tickets, mDNS, neighbours, routes).
    pub fn learn(&self, addr: EndpointAddr, source: &'static str) {
        if addr.id == self.identity.public() {
            return;
        }
        self.addresses
            .add(addr.clone(), matches!(source, "ticket" | "mdns"));
        self.peers.learn(addr, source);
    }

    /// The address of a peer as far as we know it: a peer this node checks, else what the
    /// address book was told (by a DHT contact, a provider entry).
    pub fn addr_of(&self, id: &PublicKey) -> Option<EndpointAddr> {
        if let Some(p) = self.peers.get(id) {
            return Some(p.addr);
        }
        self.addresses.get(id)
    }

    /// How long one request to a peer may take: the connect timeout, a second at least.
    pub fn request_time(&self) -> Duration {
        self.config.network.header_timeout()
    }

    /// Sends `request` to the node at `addr` and takes the reply `expected` accepts, within
    /// `within`; anything else (no connection, a refusal, another reply) is logged as `what`
    /// and gives none.
    pub async fn exchange<T>(
        &self,
        addr: &EndpointAddr,
        request: &wire::Request,
        limit: usize,
        within: Duration,
        what: &str,
        expected: impl FnOnce(wire::Reply) -> Result<T, Box<wire::Reply>>,
    ) -> Option<T> {
        let deadline = std::time::Instant::now() + within;
        match self.pool.request(addr, request, &[], limit, deadline).await {
            Ok((reply, _)) => match expected(reply) {
                Ok(value) => Some(value),
                Err(other) => {
                    tracing::debug!(peer = %addr.id.fmt_short(), reply = ?other, "{what}");
                    None
                }
            },
            Err(e) => {
                tracing::debug!(peer = %addr.id.fmt_short(), error = %e, "{what}");
                None
            }
        }
    }

    /// This node's ticket.
    pub fn ticket(&self) -> String {
        ticket::encode(&self.endpoint.addr())
    }

    /// The largest frame a peer may send us.
    pub fn frame_limit(&self) -> usize {
        self.frame_limit
    }

    /// The handle to the overlay's topic, while joined.
    fn sender(&self) -> Option<iroh_gossip::api::GossipSender> {
        micro_base::sync::lock(&self.gossip_sender).clone()
    }

    /// Current overlay neighbours.
    pub fn neighbours(&self) -> Vec<PublicKey> {
        micro_base::sync::lock(&self.neighbours)
            .iter()
            .copied()
            .collect()
    }

    /// Announces that this node is leaving, then closes the endpoint. Bounded in time: peers
    /// that are already gone are not waited for.
    pub async fn shutdown(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        let bye = async {
            let names = self.dht.provided();
            let withdrawn =
                futures::future::join_all(names.iter().map(|name| self.dht.withdraw(self, name)));
            futures::future::join(withdrawn, overlay::leave(self)).await;
            let _ = self.gossip.shutdown().await;
        };
        let _ = tokio::time::timeout(Duration::from_millis(800), bye).await;
        self.dht.stop();
        self.pool.close_all();
        // Closing waits for peers to acknowledge (iroh's probe timeout, ~3 s, for peers that
        // are gone); past that the endpoint is dropped unclosed, which iroh reports.
        if tokio::time::timeout(Duration::from_secs(3), self.endpoint.close())
            .await
            .is_err()
        {
            tracing::info!("peers did not acknowledge the close in 3 s; not waiting for them");
        }
    }

    /// Whether the node is stopping.
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }
}

/// How long a node waits for a relay before it says the internet is out of reach.
const REACHABILITY_GRACE: Duration = Duration::from_secs(10);

/// Says once whether the internet is reachable (a relay answered), instead of the endpoint's
/// own warnings on every retry; says so again when it becomes reachable later.
async fn watch_reachability(endpoint: Endpoint) {
    if tokio::time::timeout(REACHABILITY_GRACE, endpoint.online())
        .await
        .is_ok()
    {
        tracing::info!("the internet is reachable: connected to a relay");
        return;
    }
    tracing::warn!(
        "the internet is not reachable (no relay answered in {} s): nodes join by ticket and on this LAN; relays and public lookup keep retrying quietly ([network] relays = false and public_lookup = false turn them off)",
        REACHABILITY_GRACE.as_secs()
    );
    tokio::select! {
        () = endpoint.online() => tracing::info!("the internet is reachable now: connected to a relay"),
        () = endpoint.closed() => {}
    }
}

/// Accepts incoming connections and hands each to its protocol by ALPN.
async fn accept_loop(local: Arc<dyn Local>, net: Arc<Network>) {
    while let Some(incoming) = net.endpoint.accept().await {
        let local = local.clone();
        let net = net.clone();
        tokio::spawn(async move {
            let accepting = incoming.accept();
            let conn = match accepting {
                Ok(accepting) => accepting.await,
                Err(e) => {
                    net.stats
                        .refused_connections
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(error = %e, "refused a connection");
                    return;
                }
            };
            let conn = match conn {
                Ok(conn) => conn,
                Err(e) => {
                    // A failed handshake: an unknown ALPN, a bad certificate, garbage.
                    net.stats
                        .refused_connections
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(error = %e, "handshake failed");
                    return;
                }
            };
            let alpn = conn.alpn().to_vec();
            if let Some(protocol) = wire::protocol_of(&alpn) {
                rpc::serve_connection(net, local, conn, protocol).await;
            } else if alpn == iroh_gossip::ALPN {
                if let conduct::Admission::Refused(why) =
                    conduct::admit(local.as_ref(), &net, &conn.remote_id()).await
                {
                    conn.close(2u32.into(), why.as_bytes());
                    return;
                }
                if let Err(e) = net.gossip.handle_connection(conn).await {
                    tracing::debug!(error = %e, "gossip connection failed");
                }
            } else {
                net.stats
                    .refused_connections
                    .fetch_add(1, Ordering::Relaxed);
                conn.close(1u32.into(), b"unknown protocol");
            }
        });
    }
}
