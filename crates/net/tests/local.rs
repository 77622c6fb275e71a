//! The peer layer alone, under fake nodes: real networks on loopback (iroh endpoints, the
//! overlay, the DHT, the `micro/rpc/1` protocol), each serving a [`Local`] that stands for a
//! node, with no wasm engine, registry or governance component behind it. What this tier
//! shows: a service one node offers is routed to from another and the call lands on the
//! offering node with the caller's authenticated id; a node's refusal of a peer keeps that
//! peer's calls out.

#![allow(clippy::unwrap_used, reason = "a test: a failed step is the failure")]

use futures::FutureExt as _;
use futures::future::BoxFuture;
use micro_base::config::Config;
use micro_base::identity::Identity;
use micro_core::deploy::Origin;
use micro_core::node::NotLoaded;
use micro_core::system::governance::{Askers, Governance, Refusal};
use micro_core::system::ledger::Ledger;
use micro_core::transport::CallFailure;
use micro_net::local::{AdmitError, Deployed, Local};
use micro_net::provide::ServiceEntry;
use micro_net::{Network, Start, routes};
use micro_runtime::DeployError;
use micro_runtime::wit::micro::network::types::{CallError, Caller, Request, Response};
use micro_services::broker::{Owner, PublishError, Subscription};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A node that serves `echo.greet` (when it says so), admits peers (when it says so), and
/// remembers the calls it served.
struct FakeNode {
    serves_echo: bool,
    admits: bool,
    served: Mutex<Vec<(Caller, Request)>>,
}

impl FakeNode {
    fn new(serves_echo: bool, admits: bool) -> Arc<FakeNode> {
        Arc::new(FakeNode {
            serves_echo,
            admits,
            served: Mutex::new(Vec::new()),
        })
    }
}

fn none<T>(slot: &'static str) -> Result<T, NotLoaded> {
    Err(NotLoaded {
        slot,
        reason: "a fake node has none".into(),
    })
}

impl Local for FakeNode {
    fn load(&self) -> u32 {
        0
    }

    fn offered(&self) -> Vec<ServiceEntry> {
        if !self.serves_echo {
            return Vec::new();
        }
        vec![ServiceEntry {
            name: "echo".into(),
            version: "v1".into(),
            interface: [7; 8],
            methods: vec!["greet".into()],
            http: false,
            serving: true,
        }]
    }

    fn changes(&self) -> Vec<tokio::sync::watch::Receiver<u64>> {
        Vec::new()
    }

    fn governance_label(&self) -> Option<String> {
        None
    }

    fn deployed(&self) -> Vec<Deployed> {
        Vec::new()
    }

    fn deployed_one(&self, _name: &str) -> Option<Deployed> {
        None
    }

    fn served_component(&self, _hash: &str) -> Option<Vec<u8>> {
        None
    }

    fn wit(&self, _service: &str) -> Option<String> {
        None
    }

    fn admit_peer<'a>(&'a self, _peer: &'a str) -> BoxFuture<'a, Result<(), AdmitError>> {
        let answer = if self.admits {
            Ok(())
        } else {
            Err(AdmitError::Refused(Refusal::Denied {
                governance: "fake".into(),
                reason: "nobody gets in".into(),
            }))
        };
        std::future::ready(answer).boxed()
    }

    fn governance(&self) -> BoxFuture<'_, Result<&Governance, NotLoaded>> {
        std::future::ready(none("governance")).boxed()
    }

    fn governance_if_loaded(&self) -> Option<&Governance> {
        None
    }

    fn ledger(&self) -> BoxFuture<'_, Result<&Ledger, NotLoaded>> {
        std::future::ready(none("ledger")).boxed()
    }

    fn ledger_if_loaded(&self) -> Option<&Ledger> {
        None
    }

    fn serve<'a>(
        &'a self,
        caller: Caller,
        _payer: Option<&'a str>,
        _deadline: Instant,
        request: Request,
    ) -> BoxFuture<'a, (Result<Response, CallFailure>, u64)> {
        let outcome = if self.serves_echo && request.service == "echo" {
            Ok(Response {
                payload: [b"echo:".as_slice(), &request.payload].concat(),
                content_type: "text/plain".into(),
                metadata: vec![],
            })
        } else {
            Err(CallError::NotFound(format!("no {} here", request.service)).into())
        };
        self.served.lock().unwrap().push((caller, request));
        std::future::ready((outcome, 0)).boxed()
    }

    fn subscribe(
        &self,
        _topic: &str,
        _group: Option<&str>,
        _history: bool,
        _owner: Owner,
    ) -> Result<Subscription, PublishError> {
        Err(PublishError::Unavailable(
            "a fake node has no broker".into(),
        ))
    }

    fn deploy_replica<'a>(
        &'a self,
        _name: &'a str,
        _wasm: Vec<u8>,
        _origin: Origin,
    ) -> BoxFuture<'a, Result<(), DeployError>> {
        std::future::ready(Err(DeployError::Denied("a fake node runs nothing".into()))).boxed()
    }

    fn stop(&self, _name: &str) -> anyhow::Result<bool> {
        Ok(false)
    }
}

/// A network on loopback serving `local`, joined through `tickets`.
async fn start(local: Arc<FakeNode>, dir: &tempfile::TempDir, tickets: &[String]) -> Arc<Network> {
    let mut config = Config::default();
    config.network.bind = "127.0.0.1:0".parse().unwrap();
    config.network.mdns = false;
    config.network.relays = false;
    config.network.public_lookup = false;
    config.network.port_mapping = false;
    let identity = Identity::load_or_create(dir.path()).unwrap();
    let askers = Askers::new(&identity.public().to_string(), &[], Instant::now());
    let start = Start {
        identity,
        config,
        clock: micro_base::Clock::new(),
        data_dir: dir.path().to_owned(),
        askers,
    };
    Network::start(local, start, tickets).await.unwrap()
}

/// Node a (serving nothing) joined through node b, which serves echo and admits its peers
/// when `b_admits`.
struct Pair {
    a: Arc<FakeNode>,
    net_a: Arc<Network>,
    b: Arc<FakeNode>,
    net_b: Arc<Network>,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

async fn pair(b_admits: bool) -> Pair {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let b = FakeNode::new(true, b_admits);
    let net_b = start(b.clone(), &dir_b, &[]).await;
    let a = FakeNode::new(false, true);
    let net_a = start(a.clone(), &dir_a, &[net_b.ticket()]).await;
    Pair {
        a,
        net_a,
        b,
        net_b,
        _dirs: (dir_a, dir_b),
    }
}

/// Calls `request` from node a as its service `web`, through the network, within 10 s.
async fn call_from_a(
    a: &FakeNode,
    net_a: &Arc<Network>,
    request: Request,
) -> Result<Response, CallFailure> {
    let deadline = Instant::now() + Duration::from_secs(10);
    routes::call(a, net_a, caller("web"), None, deadline, request).await
}

/// Waits (up to 30 s) until `ready` holds.
async fn until(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn greet(payload: &str) -> Request {
    Request {
        service: "echo".into(),
        method: "greet".into(),
        payload: payload.as_bytes().to_vec(),
        content_type: "text/plain".into(),
        metadata: vec![],
    }
}

fn caller(service: &str) -> Caller {
    Caller {
        service: Some(service.into()),
        node: "whatever the caller claims".into(),
        depth: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_routed_to_the_node_that_announces_the_service() {
    let Pair {
        a, net_a, b, net_b, ..
    } = pair(true).await;
    // b provides echo in the DHT; a looks it up until b's entry is stored.
    let deadline = Instant::now() + Duration::from_secs(30);
    let routes = loop {
        let routes = routes::find(None, Some(&net_a), "echo").await.unwrap();
        if !routes.is_empty() {
            break routes;
        }
        assert!(Instant::now() < deadline, "a never found b's echo");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let route = &routes[0];
    assert_eq!(route.node, net_b.identity.public().to_string());
    assert_eq!(route.version, "v1");
    assert!(!route.local);

    let answer = call_from_a(&a, &net_a, greet("Ada")).await.unwrap();
    assert_eq!(answer.payload, b"echo:Ada");
    let served = b.served.lock().unwrap().clone();
    assert_eq!(served.len(), 1);
    let (who, what) = &served[0];
    // The serving node sees the connection's authenticated id, not what the caller claimed.
    assert_eq!(who.node, net_a.identity.public().to_string());
    assert_eq!(who.service.as_deref(), Some("web"));
    assert_eq!(what.payload, b"Ada");
    assert!(a.served.lock().unwrap().is_empty(), "a served nothing");
    assert_eq!(net_a.stats.calls_out.load(Ordering::Relaxed), 1);

    // A method no serving node announced is not found without a call going out.
    let mut other = greet("Ada");
    other.method = "shout".into();
    let failure = call_from_a(&a, &net_a, other).await.unwrap_err();
    assert!(
        matches!(&failure, CallFailure::Call(CallError::NotFound(m)) if m.contains("it answers greet")),
        "{failure:?}"
    );
    assert_eq!(net_a.stats.calls_out.load(Ordering::Relaxed), 1);
    net_a.shutdown().await;
    net_b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_refuses_its_peers_serves_them_nothing() {
    // b serves echo but its governance admits nobody.
    let Pair {
        a, net_a, b, net_b, ..
    } = pair(false).await;
    until("b refused a", || {
        net_b.stats.refused_peers.load(Ordering::Relaxed) > 0
    })
    .await;
    // A call aimed at b's service, whatever a knows of it, is not served there.
    let outcome = call_from_a(&a, &net_a, greet("Ada")).await;
    assert!(outcome.is_err(), "{outcome:?}");
    assert!(
        b.served.lock().unwrap().is_empty(),
        "b served a refused peer"
    );
    net_a.shutdown().await;
    net_b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_provided_on_one_node_is_found_through_the_dht_from_another() {
    use micro_net::contact::{EntryBody, FORMAT};
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    // c ← b ← a: a knows only b, b only c.
    let net_c = start(FakeNode::new(false, true), &dirs[2], &[]).await;
    let net_b = start(FakeNode::new(false, true), &dirs[1], &[net_c.ticket()]).await;
    let net_a = start(FakeNode::new(false, true), &dirs[0], &[net_b.ticket()]).await;
    let body = EntryBody {
        format: FORMAT,
        name: "echo".into(),
        provider: net_c.dht.own_contact(&net_c),
        version: "v1".into(),
        interface: [7; 8],
        http: false,
        load: 0,
        issued_ms: 0,
        expires_ms: 0,
        methods: vec!["greet".into()],
        withdrawn: false,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let found = loop {
        assert!(Instant::now() < deadline, "a never found c's echo");
        // The DHT's joins run in the background: provide and look up until they have.
        let stored = net_c.dht.provide(&net_c, body.clone()).await.unwrap();
        let found = net_a.dht.find_providers(&net_a, "echo").await.unwrap();
        if stored > 0 && !found.is_empty() {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(found.len(), 1);
    let entry = &found[0];
    assert_eq!(
        entry.body.provider.node,
        *net_c.identity.public().as_bytes()
    );
    assert_eq!(entry.body.version, "v1");
    assert!(
        entry.body.expires_ms > entry.body.issued_ms,
        "signed with fresh times"
    );
    // Nothing is found for a name nobody provides.
    assert!(
        net_a
            .dht
            .find_providers(&net_a, "nobody")
            .await
            .unwrap()
            .is_empty()
    );
    // a learned c from the DHT, without pinging it on a heartbeat.
    assert!(net_a.dht.table_len() >= 1);
    for net in [net_a, net_b, net_c] {
        net.shutdown().await;
    }
}
