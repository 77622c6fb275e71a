//! The DHT running in the node: `micro-dht`'s state machine behind one lock, driven by one task
//! over `micro/rpc` — its requests go out as `Request::Dht` on the connection pool, answers and
//! failures go back in, it is woken at the time it asks for — and the server side that answers
//! peers' DHT requests from it. Everything that arrives is checked (`contact`) before the state
//! machine sees it; a peer's own contact must be the one its connection authenticated.
//!
//! Addresses learned from the DHT go into the endpoint's address book only: a DHT contact is
//! dialled when a lookup asks it, never pinged on a heartbeat.

use crate::contact::{EntryBody, PeerContact, ProviderEntry, WireContact, WireEntry, key_of};
use crate::wire::{Reply, Request};
use crate::{NetError, Network};
use iroh::{EndpointAddr, PublicKey, TransportAddr};
use micro_dht::{Busy, Dht, Id, Outcome, Output, Params, QueryId, RequestId, Response};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, oneshot};

/// How long a provider entry this node makes lives (it is stored again well before).
pub const ENTRY_TTL_MS: u64 = 30 * 60_000;
/// How long a withdrawal lives where it is kept: past the live entry it replaced there or could
/// meet (the provider stopped republishing that one).
pub const WITHDRAWN_TTL_MS: u64 = ENTRY_TTL_MS;

/// Why a lookup gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The node runs as many lookups as it allows.
    #[error(transparent)]
    Busy(#[from] Busy),
    /// The lookup's task ended (the node is stopping).
    #[error("the DHT stopped")]
    Stopped,
    /// The name is in no namespace this build knows.
    #[error("{0:?} is in no namespace known here")]
    UnknownName(String),
}

/// The key of `name`, or why it has none.
fn key(name: &str) -> Result<Id, LookupError> {
    key_of(name).ok_or_else(|| LookupError::UnknownName(name.to_string()))
}

/// The node's DHT.
pub struct Lookup {
    dht: Mutex<Dht<PeerContact, ProviderEntry>>,
    key: Id,
    nonce: u64,
    work_bits: u32,
    waiting: Mutex<HashMap<QueryId, oneshot::Sender<Outcome<PeerContact, ProviderEntry>>>>,
    /// What this node provides, by key: signed again with fresh times when due.
    provided: Mutex<HashMap<Id, EntryBody>>,
    wake: Notify,
    stopped: std::sync::atomic::AtomicBool,
}

impl Lookup {
    /// The DHT of the node whose key (made with `nonce`) is `key`, accepting contacts with
    /// `work_bits` of work.
    pub fn new(key: Id, nonce: u64, work_bits: u32, seed: u64, now_ms: u64) -> Self {
        Self {
            dht: Mutex::new(Dht::new(key, Params::default(), seed, now_ms)),
            key,
            nonce,
            work_bits,
            waiting: Mutex::default(),
            provided: Mutex::default(),
            wake: Notify::new(),
            stopped: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Ends the driver (the node stopped).
    pub fn stop(&self) {
        self.stopped
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// This node's DHT key.
    pub fn key(&self) -> Id {
        self.key
    }

    /// Contacts in the routing table.
    pub fn table_len(&self) -> usize {
        micro_base::sync::lock(&self.dht).table().len()
    }

    /// Up to `max` contacts of the routing table, as they travel.
    pub fn contacts(&self, max: usize) -> Vec<WireContact> {
        micro_base::sync::lock(&self.dht)
            .table()
            .contacts()
            .take(max)
            .map(|c| c.wire().clone())
            .collect()
    }

    /// Node `id` left for good (it said so): it leaves the routing table now.
    pub fn forget_node(&self, id: &PublicKey) {
        let mut dht = micro_base::sync::lock(&self.dht);
        let key = dht
            .table()
            .contacts()
            .find(|c| c.wire().node == *id.as_bytes())
            .map(micro_dht::Contact::key);
        if let Some(key) = key {
            dht.forget(&key);
        }
    }

    /// Entries kept for others.
    pub fn entries_held(&self) -> usize {
        micro_base::sync::lock(&self.dht).store().len()
    }

    /// This node as a contact, with its current addresses.
    pub fn own_contact(&self, net: &Network) -> WireContact {
        let addr = net.endpoint.addr();
        WireContact {
            node: *net.identity.public().as_bytes(),
            nonce: self.nonce,
            addrs: addr
                .ip_addrs()
                .copied()
                .take(crate::contact::MAX_ADDRS)
                .collect(),
            relay: addr.relay_urls().next().map(|u| u.to_string()),
        }
    }

    /// Answers a peer's DHT request; `remote` is the connection's authenticated key.
    pub fn serve(
        &self,
        net: &Network,
        remote: &PublicKey,
        from: WireContact,
        request: micro_dht::Request<Id, WireEntry>,
    ) -> Reply {
        let from = match from.check_from(remote, self.work_bits) {
            Ok(c) => c,
            Err(why) => return Reply::Refused(why),
        };
        let request = match request.map_value(|v| v.check(self.work_bits)) {
            Ok(request) => request,
            Err(e) => {
                net.stats.count_bad_entries(1);
                // A forged entry, handed over by the peer itself: its doing.
                if e.is_forgery() {
                    net.conduct.invalid(*remote, &e);
                }
                return Reply::Refused(e.to_string());
            }
        };
        let now = net.clock.now_ms();
        let response = micro_base::sync::lock(&self.dht).handle(from, request, now);
        self.wake.notify_one();
        Reply::Dht {
            from: self.own_contact(net),
            response: to_wire(response),
        }
    }

    /// Joins the DHT through `seeds` (tickets' addresses): asks each for its own contact, then
    /// looks this node's key up through them.
    pub async fn join(&self, net: &Network, seeds: &[EndpointAddr]) -> Result<usize, LookupError> {
        let mut contacts = Vec::new();
        for seed in seeds {
            let target = micro_dht::Request::FindNode { target: self.key };
            if let Ok((from, _)) = self.exchange(net, seed, target).await {
                contacts.push(from);
            }
        }
        if contacts.is_empty() {
            return Ok(0);
        }
        let now = net.clock.now_ms();
        let done = self.begin(|dht| dht.join(contacts, now))?;
        Ok(outcome(done).await?.nodes.len())
    }

    /// Providers of `name` (a service, or `name@version`) anywhere in the network.
    pub async fn find_providers(
        &self,
        net: &Network,
        name: &str,
    ) -> Result<Vec<ProviderEntry>, LookupError> {
        self.providers(net, name, false).await
    }

    /// Every provider of `name` the closest nodes hold, not just the first ones found (a
    /// topic's rendezvous, where each one missed misses messages).
    pub async fn find_all_providers(
        &self,
        net: &Network,
        name: &str,
    ) -> Result<Vec<ProviderEntry>, LookupError> {
        self.providers(net, name, true).await
    }

    async fn providers(
        &self,
        net: &Network,
        name: &str,
        all: bool,
    ) -> Result<Vec<ProviderEntry>, LookupError> {
        let key = key(name)?;
        let now = net.clock.now_ms();
        let done = self.begin(|dht| {
            if all {
                dht.find_all_providers(key, now)
            } else {
                dht.find_providers(key, now)
            }
        })?;
        Ok(outcome(done).await?.providers)
    }

    /// Provides `name` as `body` says, now and until [`Lookup::withdraw`]; how many nodes took
    /// the entry.
    pub async fn provide(&self, net: &Network, body: EntryBody) -> Result<usize, LookupError> {
        let key = key(&body.name)?;
        micro_base::sync::lock(&self.provided).insert(key, body);
        let entry = self.fresh_entry(net, key)?;
        let now = net.clock.now_ms();
        let done = self.begin(|dht| dht.provide(key, entry, now))?;
        Ok(outcome(done).await?.stored)
    }

    /// Stops providing `name`: the nodes that keep its entry get a withdrawal in its place, so
    /// lookups stop finding this node under it; how many took it.
    pub async fn withdraw(&self, net: &Network, name: &str) -> Result<usize, LookupError> {
        let key = key(name)?;
        let body = micro_base::sync::lock(&self.provided).remove(&key);
        micro_base::sync::lock(&self.dht).withdraw(&key);
        let Some(mut body) = body else {
            return Ok(0);
        };
        let now = net.clock.now_ms();
        body.provider = self.own_contact(net);
        body.withdrawn = true;
        body.issued_ms = now;
        body.expires_ms = now + WITHDRAWN_TTL_MS;
        let entry = body
            .sign(&net.identity)
            .check(self.work_bits)
            .map_err(|_| LookupError::Stopped)?;
        let done = self.begin(|dht| {
            let query = dht.provide(key, entry, now)?;
            // Stored once, never republished.
            dht.withdraw(&key);
            Ok(query)
        })?;
        Ok(outcome(done).await?.stored)
    }

    /// The live entries of `name` this node keeps for others (itself left out).
    pub fn held(&self, net: &Network, name: &str) -> Vec<ProviderEntry> {
        let Some(key) = key_of(name) else {
            return Vec::new();
        };
        let me = *net.identity.public().as_bytes();
        let mut held = micro_base::sync::lock(&self.dht).store().get(
            &key,
            net.clock.now_ms(),
            Params::default().providers_per_answer,
        );
        held.retain(|e| !e.body.withdrawn && e.provider.wire().node != me);
        held
    }

    /// Names this node provides now.
    pub fn provided(&self) -> Vec<String> {
        micro_base::sync::lock(&self.provided)
            .values()
            .map(|b| b.name.clone())
            .collect()
    }

    /// The entry of `key`, signed again with fresh times.
    fn fresh_entry(&self, net: &Network, key: Id) -> Result<ProviderEntry, LookupError> {
        let now = net.clock.now_ms();
        let body = {
            let mut provided = micro_base::sync::lock(&self.provided);
            let Some(body) = provided.get_mut(&key) else {
                return Err(LookupError::Stopped);
            };
            body.provider = self.own_contact(net);
            body.issued_ms = now;
            body.expires_ms = now + ENTRY_TTL_MS;
            body.clone()
        };
        body.sign(&net.identity)
            .check(self.work_bits)
            .map_err(|_| LookupError::Stopped)
    }

    /// Starts a lookup and takes its outcome's place under the same lock: the driver cannot
    /// hand the outcome on before anyone waits for it (a lookup with nothing to ask finishes
    /// as it starts).
    fn begin(
        &self,
        start: impl FnOnce(&mut Dht<PeerContact, ProviderEntry>) -> Result<QueryId, Busy>,
    ) -> Result<Waiting, LookupError> {
        let mut dht = micro_base::sync::lock(&self.dht);
        let query = start(&mut dht)?;
        let (tx, rx) = oneshot::channel();
        micro_base::sync::lock(&self.waiting).insert(query, tx);
        drop(dht);
        self.wake.notify_one();
        Ok(rx)
    }

    /// One request to `addr`'s node: its checked contact and its answer.
    async fn exchange(
        &self,
        net: &Network,
        addr: &EndpointAddr,
        request: micro_dht::Request<Id, WireEntry>,
    ) -> Result<(PeerContact, Response<PeerContact, ProviderEntry>), NetError> {
        let deadline = Instant::now() + Duration::from_millis(Params::default().request_timeout_ms);
        let request = Request::Dht {
            from: self.own_contact(net),
            request,
        };
        let (reply, _) = net
            .pool
            .request(addr, &request, &[], net.frame_limit(), deadline)
            .await?;
        let Reply::Dht { from, response } = reply else {
            return Err(NetError::Protocol(format!("{reply:?} to a DHT request")));
        };
        if from.node != *addr.id.as_bytes() {
            return Err(NetError::Protocol("a DHT answer from another node".into()));
        }
        let from = from
            .check(self.work_bits)
            .map_err(|e| NetError::Protocol(e.to_string()))?;
        let (response, bad, forged) = self.checked(response);
        net.stats.count_bad_entries(bad);
        if forged > 0 {
            // Entries are checked where they are stored: a forged one is the answering node's.
            net.conduct
                .invalid(addr.id, format!("{forged} forged contacts or entries"));
        }
        Ok((from, response))
    }

    /// The answer as the DHT takes it, how many of its contacts and entries did not check
    /// (they are left out) and how many of those were forged.
    fn checked(
        &self,
        response: Response<WireContact, WireEntry>,
    ) -> (Response<PeerContact, ProviderEntry>, u64, u64) {
        let bits = self.work_bits;
        let (bad, forged) = (std::cell::Cell::new(0u64), std::cell::Cell::new(0u64));
        let count = |e: &crate::contact::CheckError| {
            bad.set(bad.get() + 1);
            if e.is_forgery() {
                forged.set(forged.get() + 1);
            }
        };
        let checked = response.map(
            |c| c.check(bits).inspect_err(count).ok(),
            |e| e.check(bits).inspect_err(count).ok(),
        );
        (checked, bad.get(), forged.get())
    }

    /// Runs the DHT: sends what it asks, hands back answers, wakes it when it asks, until the
    /// node stops.
    pub async fn drive(self: Arc<Self>, net: Arc<Network>) {
        loop {
            // Runs on while the node stops, until it has withdrawn what it provides.
            if self.stopped.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
            let (outputs, wake_ms) = {
                let mut dht = micro_base::sync::lock(&self.dht);
                dht.tick(net.clock.now_ms());
                let mut outputs = Vec::new();
                while let Some(out) = dht.poll() {
                    outputs.push(out);
                }
                (outputs, dht.next_wake())
            };
            for output in outputs {
                match output {
                    Output::Send { to, id, request } => {
                        let (lookup, net) = (self.clone(), net.clone());
                        tokio::spawn(async move { lookup.send(&net, to, id, request).await });
                    }
                    Output::Done { query, outcome } => {
                        if let Some(tx) = micro_base::sync::lock(&self.waiting).remove(&query) {
                            let _ = tx.send(outcome);
                        }
                    }
                    Output::Republish { key } => {
                        let republished = self.fresh_entry(&net, key).and_then(|entry| {
                            let now = net.clock.now_ms();
                            Ok(micro_base::sync::lock(&self.dht).provide(key, entry, now)?)
                        });
                        if let Err(e) = republished {
                            tracing::debug!(error = %e, "republishing a provider entry");
                        }
                    }
                }
            }
            let wait = Duration::from_millis(wake_ms.saturating_sub(net.clock.now_ms()));
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.wake.notified() => {}
            }
        }
    }

    async fn send(
        &self,
        net: &Network,
        to: PeerContact,
        id: RequestId,
        request: micro_dht::Request<Id, ProviderEntry>,
    ) {
        let Ok(request) = request.map_value(|v| Ok::<_, std::convert::Infallible>(v.wire));
        let addr = contact_addr(to.wire());
        let outcome = match &addr {
            Some(addr) => {
                // The endpoint's address book only: no membership, no heartbeat pings.
                net.addresses.add(addr.clone(), false);
                self.exchange(net, addr, request).await
            }
            None => Err(NetError::Unreachable(
                "a contact without a valid key".into(),
            )),
        };
        let now = net.clock.now_ms();
        {
            let mut dht = micro_base::sync::lock(&self.dht);
            match outcome {
                Ok((_, response)) => dht.answer(id, response, now),
                Err(e) => {
                    tracing::debug!(error = %e, "DHT request failed");
                    dht.fail(id, now);
                }
            }
        }
        self.wake.notify_one();
    }
}

/// The outcome of a lookup, once it finishes.
type Waiting = oneshot::Receiver<Outcome<PeerContact, ProviderEntry>>;

async fn outcome(waiting: Waiting) -> Result<Outcome<PeerContact, ProviderEntry>, LookupError> {
    waiting.await.map_err(|_| LookupError::Stopped)
}

/// How to dial a contact.
pub(crate) fn contact_addr(contact: &WireContact) -> Option<EndpointAddr> {
    let id = PublicKey::from_bytes(&contact.node).ok()?;
    let mut addrs: Vec<TransportAddr> = contact
        .addrs
        .iter()
        .map(|a| TransportAddr::Ip(*a))
        .collect();
    if let Some(relay) = contact.relay.as_ref().and_then(|r| r.parse().ok()) {
        addrs.push(TransportAddr::Relay(relay));
    }
    Some(EndpointAddr::from_parts(id, addrs))
}

fn to_wire(response: Response<PeerContact, ProviderEntry>) -> Response<WireContact, WireEntry> {
    response.map(|c| Some(c.wire().clone()), |e| Some(e.wire))
}
