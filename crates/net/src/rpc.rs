//! Requests between nodes over `micro/rpc`: a pooled connection per peer (speaking the newest
//! protocol both ends know), one stream per request, and the server side that answers them.

use super::conduct::{self, Admission};
use super::wire::{self, CallHeader, CallOk, Reply, Request, WireError};
use super::{NetError, Network};
use crate::local::Local;
use crate::traffic::{Kind, Traffic};
use iroh::endpoint::{Connection, RecvStream, SendStream};
use iroh::{Endpoint, EndpointAddr, PublicKey};
use micro_runtime::wit::micro::network::types::{Caller, Request as CallRequest};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// QUIC application error code for a stream refused by its reader.
const REFUSED: u32 = 1;

/// Connections this node keeps open at most; past it the least recently used closes.
pub const MAX_CONNECTIONS: usize = 128;

struct Pooled {
    conn: Connection,
    /// The protocol the connection speaks.
    protocol: u16,
    used: Instant,
    /// Long-lived streams open on it (subscriptions): it is never idle while any is.
    streams: Arc<std::sync::atomic::AtomicUsize>,
}

impl Pooled {
    fn idle_for(&self, idle: Duration) -> bool {
        self.streams.load(std::sync::atomic::Ordering::Relaxed) == 0 && self.used.elapsed() >= idle
    }
}

/// A long-lived stream's hold on its connection: the pool does not close the connection as
/// idle while it is held.
pub struct Held(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// One open connection per peer, made on first use and remade when it closes; at most
/// [`MAX_CONNECTIONS`], the least recently used closing first, and idle ones closed by
/// [`Pool::close_idle`].
pub struct Pool {
    endpoint: Endpoint,
    connect_timeout: Duration,
    connections: Mutex<HashMap<PublicKey, Pooled>>,
    /// One dial at a time per peer, so concurrent first calls share one connection.
    dialing: Mutex<HashMap<PublicKey, Arc<tokio::sync::Mutex<()>>>>,
    /// Frame bytes in and out by kind, both directions of every connection.
    pub traffic: Traffic,
}

impl Pool {
    /// A pool dialling from `endpoint`.
    pub fn new(endpoint: Endpoint, connect_timeout: Duration) -> Self {
        Self {
            endpoint,
            connect_timeout,
            connections: Mutex::default(),
            dialing: Mutex::default(),
            traffic: Traffic::default(),
        }
    }

    fn open_connection(&self, id: &PublicKey) -> Option<Connection> {
        let mut connections = micro_base::sync::lock(&self.connections);
        let pooled = connections
            .get_mut(id)
            .filter(|c| c.conn.close_reason().is_none())?;
        pooled.used = Instant::now();
        Some(pooled.conn.clone())
    }

    /// Pools a new connection, closing the least recently used one when the pool is full.
    fn keep(&self, id: PublicKey, conn: Connection) {
        let evicted = {
            let mut connections = micro_base::sync::lock(&self.connections);
            connections.retain(|_, c| c.conn.close_reason().is_none());
            let evicted = if connections.len() >= MAX_CONNECTIONS && !connections.contains_key(&id)
            {
                let oldest = connections
                    .iter()
                    .filter(|(_, c)| c.idle_for(Duration::ZERO))
                    .min_by_key(|(_, c)| c.used)
                    .map(|(id, _)| *id);
                oldest.and_then(|o| connections.remove(&o))
            } else {
                None
            };
            connections.insert(
                id,
                Pooled {
                    protocol: wire::protocol_of(conn.alpn()).unwrap_or(1),
                    conn,
                    used: Instant::now(),
                    streams: Arc::default(),
                },
            );
            evicted
        };
        if let Some(old) = evicted {
            old.conn.close(0u32.into(), b"connection pool full");
        }
    }

    /// Closes the connections not used for `idle`, except those to `keep`; how many closed.
    pub fn close_idle(&self, idle: Duration, keep: &[PublicKey]) -> usize {
        let closing: Vec<Connection> = {
            let mut connections = micro_base::sync::lock(&self.connections);
            let ids: Vec<PublicKey> = connections
                .iter()
                .filter(|(id, c)| c.idle_for(idle) && !keep.contains(id))
                .map(|(id, _)| *id)
                .collect();
            ids.iter()
                .filter_map(|id| connections.remove(id))
                .map(|c| c.conn)
                .collect()
        };
        for conn in &closing {
            conn.close(0u32.into(), b"idle");
        }
        closing.len()
    }

    /// The protocol the open connection to `id` speaks, if there is one.
    pub fn protocol(&self, id: &PublicKey) -> Option<u16> {
        micro_base::sync::lock(&self.connections)
            .get(id)
            .filter(|c| c.conn.close_reason().is_none())
            .map(|c| c.protocol)
    }

    /// Connections open now.
    pub fn len(&self) -> usize {
        micro_base::sync::lock(&self.connections).len()
    }

    /// No connection open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The connection to `addr`'s node, dialling it if needed (within the connect timeout).
    pub async fn connection(&self, addr: &EndpointAddr) -> Result<Connection, NetError> {
        if let Some(conn) = self.open_connection(&addr.id) {
            return Ok(conn);
        }
        let gate = micro_base::sync::lock(&self.dialing)
            .entry(addr.id)
            .or_default()
            .clone();
        let _dialing = gate.lock().await;
        let dialed = self.dial(addr).await;
        {
            // The gate goes once nobody else waits at it, so the map holds dials in progress only.
            let mut dialing = micro_base::sync::lock(&self.dialing);
            if Arc::strong_count(&gate) <= 2 {
                dialing.remove(&addr.id);
            }
        }
        dialed
    }

    async fn dial(&self, addr: &EndpointAddr) -> Result<Connection, NetError> {
        if let Some(conn) = self.open_connection(&addr.id) {
            return Ok(conn);
        }
        let conn = tokio::time::timeout(self.connect_timeout, async {
            // The newest protocol first; a node of the previous one answers in its own.
            let options = iroh::endpoint::ConnectOptions::new()
                .with_additional_alpns(vec![wire::RPC_ALPN_1.to_vec()]);
            self.endpoint
                .connect_with_opts(addr.clone(), wire::RPC_ALPN, options)
                .await
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|_| {
            NetError::Unreachable(format!(
                "no connection to node {} within {} ms",
                addr.id.fmt_short(),
                self.connect_timeout.as_millis()
            ))
        })?
        .map_err(|e| {
            NetError::Unreachable(format!("connecting to node {}: {e}", addr.id.fmt_short()))
        })?;
        self.keep(addr.id, conn.clone());
        Ok(conn)
    }

    /// Drops the pooled connection to a peer (it failed; the next request dials again).
    pub fn forget(&self, id: &PublicKey) {
        micro_base::sync::lock(&self.connections).remove(id);
    }

    /// Closes the pooled connection to a peer that stopped answering: requests waiting on it
    /// fail now (and fail over) instead of at the call's deadline.
    pub fn close(&self, id: &PublicKey) {
        let conn = micro_base::sync::lock(&self.connections).remove(id);
        if let Some(pooled) = conn {
            pooled.conn.close(2u32.into(), b"peer stopped answering");
        }
    }

    /// Closes every pooled connection.
    pub fn close_all(&self) {
        let conns: Vec<Connection> = micro_base::sync::lock(&self.connections)
            .drain()
            .map(|(_, c)| c.conn)
            .collect();
        for conn in conns {
            conn.close(0u32.into(), b"node stopping");
        }
    }

    /// Opens a stream to the peer, sends `request` and reads one reply, all before `deadline`.
    pub async fn request(
        &self,
        addr: &EndpointAddr,
        request: &Request,
        payload: &[u8],
        limit: usize,
        deadline: Instant,
    ) -> Result<(Reply, Vec<u8>), NetError> {
        let exchange = async {
            let conn = self.connection(addr).await?;
            let (mut send, mut recv) = conn.open_bi().await.map_err(|e| {
                NetError::Unreachable(format!("opening a stream to {}: {e}", addr.id.fmt_short()))
            })?;
            // Once the request is out, a broken stream means the peer went away mid-exchange.
            let lost = |e: WireError| match e {
                WireError::Io(e) => NetError::Lost(format!(
                    "lost node {} during the exchange: {e}",
                    addr.id.fmt_short()
                )),
                WireError::Truncated => NetError::Lost(format!(
                    "node {} closed the stream before answering",
                    addr.id.fmt_short()
                )),
                e => NetError::Wire(e),
            };
            let kind = Kind::of(request);
            let sent = wire::write_frame(&mut send, request, payload)
                .await
                .map_err(lost)?;
            self.traffic.sent(kind, sent);
            let _ = send.finish();
            let (reply, body, received) = wire::read_sized_frame::<_, Reply>(&mut recv, limit)
                .await
                .map_err(lost)?
                .ok_or_else(|| lost(WireError::Truncated))?;
            self.traffic.received(kind, received);
            Ok((reply, body))
        };
        match tokio::time::timeout_at(deadline.into(), exchange).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => {
                if matches!(e, NetError::Unreachable(_) | NetError::Lost(_)) {
                    self.forget(&addr.id);
                }
                Err(e)
            }
            Err(_) => Err(NetError::Timeout(format!(
                "node {} did not answer in time",
                addr.id.fmt_short()
            ))),
        }
    }

    /// Opens a stream for a long exchange (a subscription): sends `request`, returns the
    /// stream's halves.
    pub async fn open(
        &self,
        addr: &EndpointAddr,
        request: &Request,
    ) -> Result<(SendStream, RecvStream, Held), NetError> {
        let conn = self.connection(addr).await?;
        let held = {
            let connections = micro_base::sync::lock(&self.connections);
            let streams = connections
                .get(&addr.id)
                .map(|c| c.streams.clone())
                .unwrap_or_default();
            streams.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Held(streams)
        };
        let (mut send, recv) = conn.open_bi().await.map_err(|e| {
            self.forget(&addr.id);
            NetError::Unreachable(format!("opening a stream to {}: {e}", addr.id.fmt_short()))
        })?;
        let sent = wire::write_frame(&mut send, request, &[]).await?;
        self.traffic.sent(Kind::of(request), sent);
        Ok((send, recv, held))
    }
}

/// Serves one incoming `micro/rpc/1` connection: every stream is one request.
pub async fn serve_connection(
    net: Arc<Network>,
    local: Arc<dyn Local>,
    conn: Connection,
    protocol: u16,
) {
    let remote = conn.remote_id();
    if let Admission::Refused(why) = conduct::admit(local.as_ref(), &net, &remote).await {
        tracing::debug!(peer = %remote.fmt_short(), %why, "refused a peer's connection");
        conn.close(REFUSED.into(), why.as_bytes());
        return;
    }
    net.peers.heard_from(&remote);
    // The first few requests in flight are served inside this task: no task hop, which is
    // most of a short call's latency on a small machine. Beyond that they spill into tasks of
    // their own, so a busy peer's calls can use every core.
    let inline_limit = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut streams = futures::stream::FuturesUnordered::new();
    loop {
        tokio::select! {
            accepted = conn.accept_bi() => match accepted {
                Ok((send, recv)) => {
                    let serve =
                        serve_stream(net.clone(), local.clone(), remote, protocol, send, recv);
                    if streams.len() < inline_limit {
                        streams.push(serve);
                    } else {
                        tokio::spawn(serve);
                    }
                }
                Err(e) => {
                    tracing::debug!(peer = %remote.fmt_short(), error = %e, "connection closed");
                    return;
                }
            },
            Some(()) = futures::StreamExt::next(&mut streams), if !streams.is_empty() => {}
        }
    }
}

async fn serve_stream(
    net: Arc<Network>,
    local: Arc<dyn Local>,
    remote: PublicKey,
    protocol: u16,
    mut send: SendStream,
    mut recv: RecvStream,
) {
    // A peer that opens a stream and never writes holds nothing for long.
    let first = tokio::time::timeout(
        net.config.network.header_timeout(),
        wire::read_sized_frame::<_, Request>(&mut recv, net.frame_limit()),
    )
    .await;
    let (request, payload) = match first {
        Ok(Ok(Some((request, payload, size)))) => {
            net.pool.traffic.received(Kind::of(&request), size);
            (request, payload)
        }
        Ok(Ok(None)) => return,
        Ok(Err(e)) => {
            net.stats.count_bad_frame(&e);
            net.conduct.invalid(remote, &e);
            tracing::debug!(peer = %remote.fmt_short(), error = %e, "refused a frame");
            let _ = wire::write_frame(&mut send, &Reply::Refused(e.to_string()), &[]).await;
            let _ = send.finish();
            let _ = recv.stop(REFUSED.into());
            return;
        }
        Err(_) => {
            net.stats
                .stalled_streams
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let _ = send.reset(REFUSED.into());
            let _ = recv.stop(REFUSED.into());
            return;
        }
    };
    // Calls ask governance themselves (authorize-call); anything else asks whether the peer is
    // admitted, and takes from its allowance when it is throttled.
    if !matches!(request, Request::Call(_)) {
        match conduct::admit(local.as_ref(), &net, &remote).await {
            Admission::Admitted => {}
            Admission::Throttled(why) | Admission::Refused(why) => {
                let _ = wire::write_frame(&mut send, &Reply::Refused(why), &[]).await;
                let _ = send.finish();
                return;
            }
        }
    }
    let kind = Kind::of(&request);
    let (reply, body) = match request {
        Request::Call(header) => call(local.as_ref(), &net, remote, header, payload).await,
        Request::Ping => (Reply::Pong { load: local.load() }, Vec::new()),
        Request::Settle { receipt } => (
            settle(local.as_ref(), &net, remote, receipt).await,
            Vec::new(),
        ),
        Request::Leaving => {
            super::overlay::left(&net, &remote);
            (Reply::Goodbye, Vec::new())
        }
        // Protocol 1's anti-entropy: there are no records to give.
        Request::Sync { .. } => (Reply::Records(Vec::new()), Vec::new()),
        // Protocol 1 pushed a record only to say goodbye.
        Request::Push { .. } => {
            super::overlay::left(&net, &remote);
            (Reply::Records(Vec::new()), Vec::new())
        }
        Request::Component { hash } => {
            // Only what this node serves to the network: never a private service's code, and
            // the hash never names a file unless it is one of ours.
            match local.served_component(&hash) {
                Some(wasm) => (Reply::Component(Ok(wasm.len() as u64)), wasm),
                None => (
                    Reply::Component(Err(format!("no component {hash:.64} served here"))),
                    Vec::new(),
                ),
            }
        }
        Request::Dht { from, request } => (net.dht.serve(&net, &remote, from, request), Vec::new()),
        Request::Wit { service } => {
            let wit = local
                .wit(&service)
                .ok_or_else(|| format!("no service named {service:?} on this node"));
            (Reply::Wit(wit), Vec::new())
        }
        Request::Events => {
            // The stream lives as long as the subscriber keeps it, in a task of its own.
            tokio::spawn(super::events::serve::serve(local, net, remote, send, recv));
            return;
        }
        Request::Publishing { from, topic } => {
            (publishing(&net, &remote, from, topic).await, Vec::new())
        }
        Request::Place { from, placements } => {
            (placed_here(&net, &remote, from, placements), Vec::new())
        }
        Request::Placed => (
            Reply::Placements(net.placement.placed_on(&remote)),
            Vec::new(),
        ),
        Request::Reports if protocol < 2 => (Reply::Reports(net.conduct.reports()), Vec::new()),
        Request::Reports => (
            Reply::ReportsOf {
                governance: local.governance_label().unwrap_or_default(),
                reports: net.conduct.reports(),
            },
            Vec::new(),
        ),
    };
    match wire::write_frame(&mut send, &reply, &body).await {
        Ok(sent) => net.pool.traffic.sent(kind, sent),
        Err(e) => tracing::debug!(peer = %remote.fmt_short(), error = %e, "reply not delivered"),
    }
    let _ = send.finish();
}

/// A peer's governance places `placements` on this node; kept for the placement loop, which
/// asks this node's governance before it runs any of them.
fn placed_here(
    net: &Network,
    remote: &PublicKey,
    from: crate::contact::WireContact,
    placements: Vec<crate::placement::Assignment>,
) -> Reply {
    let dial = match from.check_from(remote, net.config.network.work_bits) {
        Ok(contact) => crate::dht::contact_addr(contact.wire()),
        Err(why) => return Reply::Refused(why),
    };
    if placements.len() > crate::placement::MAX_PLACEMENTS {
        return Reply::Refused(format!(
            "{} placements, at most {}",
            placements.len(),
            crate::placement::MAX_PLACEMENTS
        ));
    }
    net.placement.took(*remote, dial, placements);
    Reply::Placements(Vec::new())
}

/// A publisher about to publish on `topic` found this node among its subscribers: the
/// subscriptions here to the topic subscribe at it.
async fn publishing(
    net: &Arc<Network>,
    remote: &PublicKey,
    from: crate::contact::WireContact,
    topic: String,
) -> Reply {
    if let Err(e) = micro_services::broker::check_topic(&topic) {
        return Reply::Refused(format!("{e:?}"));
    }
    let dial = match from.check_from(remote, net.config.network.work_bits) {
        Ok(contact) => crate::dht::contact_addr(contact.wire()),
        Err(why) => return Reply::Refused(why),
    };
    let subscribed = super::events::publisher_appeared(net, *remote, dial, &topic).await;
    Reply::Noted { subscribed }
}

async fn call(
    local: &dyn Local,
    net: &Network,
    remote: PublicKey,
    header: CallHeader,
    payload: Vec<u8>,
) -> (Reply, Vec<u8>) {
    let caller = Caller {
        service: header.caller_service,
        // The authenticated id of the connection, not anything the peer claims.
        node: remote.to_string(),
        depth: header.depth,
    };
    let timeout = Duration::from_millis(header.timeout_ms.min(net.config.limits.call_timeout_ms));
    let payer = match &header.token {
        Some(token) => {
            match token_account(local, net, token, &header.service, &header.method).await {
                Ok(account) => account,
                Err(e) => return (Reply::Called(Err(e.into()), 0), Vec::new()),
            }
        }
        None => None,
    };
    let request = CallRequest {
        service: header.service,
        method: header.method,
        payload,
        content_type: header.content_type,
        metadata: header.metadata,
    };
    let (outcome, charged) = local
        .serve(caller, payer.as_deref(), Instant::now() + timeout, request)
        .await;
    // A token's account pays here: the calling node owes nothing for the call.
    let charged = if payer.is_some() { 0 } else { charged };
    match outcome {
        Ok(response) => (
            Reply::Called(
                Ok(CallOk {
                    content_type: response.content_type,
                    metadata: response.metadata,
                }),
                charged,
            ),
            response.payload,
        ),
        Err(e) => (Reply::Called(Err(e.into()), charged), Vec::new()),
    }
}

/// Checks a token that came with a call from another node: a bad one refuses the call; one
/// this node issued or whose issuer it trusts names the account that pays; any other (the
/// calling node's own, say) leaves the calling node to pay.
async fn token_account(
    local: &dyn Local,
    net: &Network,
    token: &str,
    service: &str,
    method: &str,
) -> Result<Option<String>, micro_runtime::wit::micro::network::types::CallError> {
    use micro_runtime::wit::micro::network::types::CallError;
    let ledger = local
        .ledger()
        .await
        .map_err(|e| CallError::Denied(format!("the token cannot be checked, so denied: {e}")))?;
    let (name, _) = micro_base::names::split_version(service);
    let claims = ledger
        .verify_token(token, name, method, net.clock.now_ms())
        .await
        .map_err(|e| match &e {
            micro_core::system::ledger::TokenRefusal::Refused(t) => CallError::Denied(format!(
                "{}: {e}",
                micro_core::system::ledger::token_error_kind(t)
            )),
            _ => CallError::Denied(e.to_string()),
        })?;
    let trusted = claims.issuer == net.askers.this_node() || net.askers.pre_trusted(&claims.issuer);
    Ok(trusted.then_some(claims.account))
}

/// Takes a receipt a peer handed over for its calls here. Only the payer hands over its own
/// receipts; one whose signature is not its payer's counts against the peer that sent it (an
/// `invalid` observation to governance).
async fn settle(
    local: &dyn Local,
    net: &Network,
    remote: PublicKey,
    receipt: wire::WireReceipt,
) -> Reply {
    use micro_core::system::ledger::accounts::ReceiptRefusal;
    if receipt.payer != remote.to_string() {
        let outcome = Err(ReceiptRefusal::Refused(format!(
            "a receipt of {} handed over by {remote}: only its payer hands it over",
            receipt.payer
        )));
        net.stats.count_settle(&outcome);
        return Reply::Settled(outcome);
    }
    let ledger = match local.ledger().await {
        Ok(ledger) => ledger,
        Err(e) => return Reply::Settled(Err(ReceiptRefusal::Failed(e.to_string()))),
    };
    let outcome = ledger
        .accept_receipt(&receipt.into(), net.clock.now_ms())
        .await;
    if let Err(ReceiptRefusal::BadSignature(why)) = &outcome {
        net.conduct.invalid(remote, why);
    }
    net.stats.count_settle(&outcome);
    Reply::Settled(outcome)
}
