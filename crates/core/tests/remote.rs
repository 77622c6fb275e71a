//! The core alone, with a fake [`Remote`] standing in for the peer layer: a call to a service
//! this node does not run goes to the remote with the caller and the client's token, the
//! node's catalog lists what the remote offers, and governance sees a peer's age through it.
//! Without a remote, the same call is `not-found` here.

#![allow(clippy::unwrap_used, reason = "a test: a failed step is the failure")]

use futures::FutureExt as _;
use futures::future::BoxFuture;
use micro_base::config::Config;
use micro_core::catalog::{self, Offer};
use micro_core::node::Node;
use micro_core::remote::Remote;
use micro_core::system::governance::PeerAges;
use micro_core::transport::{self, CallFailure};
use micro_runtime::wit::micro::network::types::{CallError, Caller, Request, Response};
use micro_services::broker::Subscription;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The calls the fake was asked to make.
#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<(Caller, Option<String>, Request)>>,
    /// Topics whose first publish the node announced.
    published: Mutex<Vec<String>>,
}

const PEER: &str = "peer-node";

impl Remote for Fake {
    fn call<'a>(
        &'a self,
        caller: Caller,
        token: Option<&'a str>,
        _deadline: Instant,
        request: Request,
    ) -> BoxFuture<'a, Result<Response, CallFailure>> {
        async move {
            let known = request.service == "elsewhere";
            self.calls
                .lock()
                .unwrap()
                .push((caller, token.map(str::to_string), request.clone()));
            if request.service == "busy" {
                return Err(CallFailure::RateLimited("over the rate".into()));
            }
            if !known {
                return Err(
                    CallError::NotFound(format!("no node serves {}", request.service)).into(),
                );
            }
            Ok(Response {
                payload: [b"remote:".as_slice(), &request.payload].concat(),
                content_type: "text/plain".into(),
                metadata: vec![],
            })
        }
        .boxed()
    }

    fn subscribe<'a>(
        &'a self,
        local: Subscription,
        _topic: &'a str,
        _group: Option<&'a str>,
        _history: bool,
    ) -> BoxFuture<'a, Subscription> {
        std::future::ready(local).boxed()
    }

    fn offers(&self) -> Vec<Offer> {
        vec![Offer {
            name: "elsewhere".into(),
            version: "v1".into(),
            node: PEER.into(),
            local: false,
            serving: true,
            methods: vec!["greet".into()],
            http: false,
            interface: Some([7; 8]),
        }]
    }

    fn find<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Vec<Offer>> {
        let found = self
            .offers()
            .into_iter()
            .filter(|o| o.name == name)
            .collect();
        std::future::ready(found).boxed()
    }

    fn wit<'a>(
        &'a self,
        _node: &'a str,
        _service: &'a str,
        _deadline: Instant,
    ) -> BoxFuture<'a, Option<String>> {
        std::future::ready(None).boxed()
    }
}

impl micro_services::broker::FirstPublish for Fake {
    fn publishing<'a>(&'a self, topic: &'a str) -> BoxFuture<'a, ()> {
        self.published.lock().unwrap().push(topic.to_string());
        std::future::ready(()).boxed()
    }
}

impl PeerAges for Fake {
    fn peer_age_ms(&self, node: &str) -> u64 {
        if node == PEER { 42_000 } else { 0 }
    }
}

fn request(service: &str) -> Request {
    Request {
        service: service.into(),
        method: "greet".into(),
        payload: b"Ada".to_vec(),
        content_type: "text/plain".into(),
        metadata: vec![],
    }
}

fn caller(node: &Node) -> Caller {
    Caller {
        service: None,
        node: node.id.clone(),
        depth: 0,
    }
}

fn open() -> (tempfile::TempDir, Arc<Node>) {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(Config::default(), dir.path()).unwrap();
    (dir, node)
}

#[tokio::test]
async fn a_call_to_a_service_not_here_goes_to_the_remote_with_its_token() {
    let (_dir, node) = open();
    let deadline = Instant::now() + Duration::from_secs(5);

    // No remote: nothing serves it.
    let alone = transport::call(&node, caller(&node), deadline, request("elsewhere")).await;
    assert!(
        matches!(&alone, Err(CallFailure::Call(CallError::NotFound(why))) if why.contains("elsewhere")),
        "{alone:?}"
    );

    let fake = Arc::new(Fake::default());
    node.set_remote(fake.clone());
    let client = transport::Client {
        account: "acct",
        token: "micro1.token",
    };
    let answer = transport::call_for(
        &node,
        caller(&node),
        Some(client),
        deadline,
        request("elsewhere"),
    )
    .await
    .unwrap();
    assert_eq!(answer.payload, b"remote:Ada");
    let calls = fake.calls.lock().unwrap();
    assert_eq!(calls.len(), 1);
    let (who, token, asked) = &calls[0];
    assert_eq!(who.node, node.id);
    assert_eq!(token.as_deref(), Some("micro1.token"));
    assert_eq!(
        (asked.service.as_str(), asked.method.as_str()),
        ("elsewhere", "greet")
    );
}

#[tokio::test]
async fn what_the_remote_refuses_the_node_passes_on() {
    let (_dir, node) = open();
    node.set_remote(Arc::new(Fake::default()));
    let deadline = Instant::now() + Duration::from_secs(5);
    let outcome = transport::call(&node, caller(&node), deadline, request("nowhere")).await;
    assert!(
        matches!(&outcome, Err(CallFailure::Call(CallError::NotFound(why))) if why == "no node serves nowhere"),
        "{outcome:?}"
    );
    // A serving node's rate limit stays a rate limit (the gateway answers it with 429)...
    let outcome = transport::call(&node, caller(&node), deadline, request("busy")).await;
    assert!(
        matches!(&outcome, Err(CallFailure::RateLimited(why)) if why == "over the rate"),
        "{outcome:?}"
    );
    // ...and a component that made the call reads it as `denied`.
    let seen = outcome.map_err(CallError::from);
    assert!(
        matches!(&seen, Err(CallError::Denied(why)) if why == "over the rate"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn the_catalog_and_peer_ages_come_from_the_remote() {
    let (_dir, node) = open();
    assert!(catalog::offers(&node).is_empty());
    assert_eq!(node.peer_ages().peer_age_ms(PEER), 0);
    node.set_remote(Arc::new(Fake::default()));
    let offers = catalog::offers(&node);
    assert_eq!(offers.len(), 1);
    assert_eq!(
        (offers[0].name.as_str(), offers[0].node.as_str()),
        ("elsewhere", PEER)
    );
    assert_eq!(node.peer_ages().peer_age_ms(PEER), 42_000);
    assert_eq!(node.peer_ages().peer_age_ms("someone-else"), 0);
}

#[tokio::test]
async fn the_remote_hears_of_each_topics_first_publish_once() {
    let (_dir, node) = open();
    // Published before there is a remote: nobody to tell.
    node.broker
        .publish("early", b"1".to_vec(), "text/plain".into(), None)
        .await
        .unwrap();
    let fake = Arc::new(Fake::default());
    node.set_remote(fake.clone());
    for topic in ["orders", "orders", "early", "orders"] {
        node.broker
            .publish(topic, b"x".to_vec(), "text/plain".into(), None)
            .await
            .unwrap();
    }
    assert_eq!(*fake.published.lock().unwrap(), vec!["orders", "early"]);
}
