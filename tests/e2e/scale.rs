//! The network at a size the test suite can afford: two dozen real node processes on loopback
//! (the benchmark `BENCH_NETWORK=scale` runs 250). What must hold at any size: every node joins
//! the DHT, keeps state and connections bounded by what it uses rather than by the network's
//! size, finds a service deployed anywhere, fails over when a provider dies, and delivers a
//! topic's messages to every subscribing node.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use micro_tests::{TestNode, eventually};
use std::time::Duration;

const NODES: usize = 24;

/// The peers a node checks at most in this network: its overlay neighbours, the nodes it
/// joined through and the ones it routes to; the first node, which everyone joined through,
/// is the one node that may hear from more.
fn checked(node: &TestNode) -> usize {
    node.get_json("/api/network/nodes")
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["self"] == false && n["healthy"].is_boolean())
        .count()
}

/// Two dozen nodes, each joined through the first and one other, all in the DHT.
fn joined() -> Vec<TestNode> {
    let mut nodes: Vec<TestNode> = vec![TestNode::new("")];
    for i in 1..NODES {
        let mut tickets = vec![nodes[0].ticket()];
        if i / 2 > 0 {
            tickets.push(nodes[i / 2].ticket());
        }
        nodes.push(TestNode::joining("", &tickets));
    }
    for (i, node) in nodes.iter().enumerate() {
        eventually(&format!("node {i} in the DHT"), || {
            let contacts = node.get_json("/api/network")["dht"]["contacts"].as_u64()?;
            (contacts >= 8).then_some(())
        });
    }
    nodes
}

#[test]
fn two_dozen_nodes_join_find_and_fail_over_with_bounded_state() {
    let mut nodes = joined();
    // A node checks the peers it uses, not the network: most check far fewer than all.
    let counts: Vec<usize> = nodes.iter().map(checked).collect();
    let mut sorted = counts.clone();
    sorted.sort_unstable();
    let median = sorted[NODES / 2];
    assert!(
        median < (NODES - 1) / 2,
        "median peers checked {median} of {} others: {counts:?}",
        NODES - 1
    );

    // A service deployed on one node is callable from every other one.
    nodes[7].deploy("hello", "hello");
    for (i, node) in nodes.iter().enumerate().filter(|(i, _)| *i != 7) {
        eventually(&format!("node {i} calls hello"), || {
            (node.post_json("/hello/greet", r#"{"name":"a"}"#).0 == 200).then_some(())
        });
    }

    // A second provider, then the first one killed: every caller's next call succeeds.
    nodes[11].deploy("hello", "hello");
    let second = nodes[11].id();
    eventually("the second provider in the DHT", || {
        let v = nodes[7].get_json("/api/network/routes?service=hello");
        v.to_string().contains(&second).then_some(())
    });
    let mut dying = nodes.remove(7);
    dying.crash();
    for (i, node) in nodes.iter().enumerate() {
        let (status, body) = node.post_json("/hello/greet", r#"{"name":"b"}"#);
        assert_eq!(
            status, 200,
            "node {i}'s call after the provider died: {body}"
        );
    }
}

#[test]
fn a_topics_messages_reach_subscribers_on_ten_nodes() {
    let nodes = joined();
    // Subscribers on ten nodes, a publisher on another: every one gets every message. With
    // history, a subscribing node the publisher's first rendezvous reached late (it waits a
    // bounded time, then publishes) still gets what was published before it subscribed.
    let subscribers: Vec<_> = (10..20)
        .map(|i| nodes[i].subscribe("scale", "history=true"))
        .collect();
    for m in 0..20 {
        let (status, _) = nodes[3].post_json("/api/topics/scale", &format!(r#"{{"m":{m}}}"#));
        assert_eq!(status, 200);
    }
    for (i, s) in subscribers.iter().enumerate() {
        let got: Vec<u64> = (0..20)
            .map(|_| {
                let m = s.next();
                let p: serde_json::Value =
                    serde_json::from_str(m["payload"].as_str().unwrap()).unwrap();
                p["m"].as_u64().unwrap()
            })
            .collect();
        assert_eq!(
            got,
            (0..20).collect::<Vec<_>>(),
            "subscriber on node {}",
            i + 10
        );
        assert!(s.drain(Duration::from_millis(100)).is_empty(), "once each");
    }
}
