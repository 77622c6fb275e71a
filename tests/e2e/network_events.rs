//! Events across nodes: queue groups and history network-wide, many subscriptions over one
//! stream, services subscribing on two nodes.

use micro_tests::eventually;
use micro_tests::network::{routes, start as network, wait_until_all_know_each_other};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

/// A delivered message's JSON payload.
fn payload(message: &Value) -> Value {
    serde_json::from_str(message["payload"].as_str().expect("a text payload")).expect("JSON")
}

#[test]
fn events_cross_nodes_with_queue_groups_and_history() {
    let nodes = network(3);
    wait_until_all_know_each_other(&nodes);
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    // Published on A before anyone listened: replayed to a subscriber on B.
    for i in 0..3 {
        let (status, _) = a.post_json("/api/topics/history", &format!(r#"{{"early":{i}}}"#));
        assert_eq!(status, 200);
    }
    let late = b.subscribe("history", "history=true");
    let replayed: Vec<Value> = (0..3).map(|_| late.next()).collect();
    let seqs: Vec<u64> = replayed
        .iter()
        .map(|m| m["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![1, 2, 3], "{replayed:?}");
    // Live messages published on C reach the subscriber on B too.
    c.post_json("/api/topics/history", r#"{"live":1}"#);
    let live = late.next();
    assert_eq!(payload(&live)["live"], 1, "{live}");

    // A queue group with members on B and C: each message once, network-wide.
    let wb = b.subscribe("jobs", "group=workers");
    let wc = c.subscribe("jobs", "group=workers");
    let everyone = c.subscribe("jobs", "");
    for i in 0..30 {
        let (status, _) = a.post_json("/api/topics/jobs", &format!(r#"{{"job":{i}}}"#));
        assert_eq!(status, 200);
    }
    let all: Vec<u64> = (0..30)
        .map(|_| payload(&everyone.next())["job"].as_u64().unwrap())
        .collect();
    assert_eq!(
        all,
        (0..30).collect::<Vec<_>>(),
        "a plain subscriber gets all, in order"
    );
    let jobs = |s: &micro_tests::Subscriber| -> Vec<u64> {
        s.drain(Duration::from_millis(500))
            .iter()
            .map(|m| payload(m)["job"].as_u64().unwrap())
            .collect()
    };
    let (got_b, got_c) = (jobs(&wb), jobs(&wc));
    let mut together: Vec<u64> = got_b.iter().chain(&got_c).copied().collect();
    together.sort();
    assert_eq!(
        together,
        (0..30).collect::<Vec<_>>(),
        "b {got_b:?} c {got_c:?}"
    );
    assert!(
        !got_b.is_empty() && !got_c.is_empty(),
        "both members served: b {got_b:?} c {got_c:?}"
    );
}

#[test]
fn two_hundred_subscriptions_on_one_node_share_one_stream_and_calls_go_on() {
    // Once, each subscription was a stream of its own to every node: past QUIC's ~100 streams
    // per connection they blocked calls and pings to every peer.
    let nodes = network(2);
    wait_until_all_know_each_other(&nodes);
    let (a, b) = (&nodes[0], &nodes[1]);
    b.deploy("hello", "hello");
    const TOPICS: usize = 200;
    // Each topic is published on B first: A's subscriptions find B as its publisher.
    for i in 0..TOPICS {
        let (status, body) = b.post_json(&format!("/api/topics/load-{i}"), r#"{"n":0}"#);
        assert_eq!(status, 200, "{body}");
    }
    let subscribers: Vec<_> = (0..TOPICS)
        .map(|i| a.subscribe(&format!("load-{i}"), ""))
        .collect();
    let events = &a.get_json("/api/network")["events"];
    assert_eq!(events["subscriptions"], TOPICS, "{events}");
    assert_eq!(events["streams"], 1, "one event stream to B: {events}");
    eventually("the route to hello", || {
        (routes(a, "hello").len() == 1).then_some(())
    });
    for i in 0..20 {
        let (status, body) = a.post_json("/hello/greet", &format!(r#"{{"name":"n{i}"}}"#));
        assert_eq!(
            status, 200,
            "call {i} with {TOPICS} subscriptions open: {body}"
        );
    }
    for i in 0..TOPICS {
        let (status, body) = b.post_json(&format!("/api/topics/load-{i}"), r#"{"n":1}"#);
        assert_eq!(status, 200, "{body}");
    }
    for (i, s) in subscribers.iter().enumerate() {
        let m = s.next();
        assert_eq!(payload(&m)["n"], 1, "topic load-{i}: {m}");
        assert_eq!(m["node"], b.id(), "published on B: {m}");
    }
}

#[test]
fn subscribing_services_on_two_nodes_receive_each_others_messages_without_collisions() {
    let nodes = network(2);
    wait_until_all_know_each_other(&nodes);
    let (a, b) = (&nodes[0], &nodes[1]);
    a.deploy("chat", "chat");
    b.deploy("chat", "chat");
    // Each chat posts through its own node: both messages are the first of the topic there,
    // so only (node, sequence) tells them apart.
    let (status, body) = a.post_json("/chat/post", r#"{"room":"r","text":"from a"}"#);
    assert_eq!(
        (status, body["sequence"].as_u64()),
        (200, Some(1)),
        "{body}"
    );
    let (status, body) = b.post_json("/chat/post", r#"{"room":"r","text":"from b"}"#);
    assert_eq!(
        (status, body["sequence"].as_u64()),
        (200, Some(1)),
        "{body}"
    );
    for node in [a, b] {
        let history = eventually("both posts in each chat", || {
            let (_, h) = node.post_json("/chat/history", r#"{"room":"r"}"#);
            (h.as_array()?.len() == 2).then_some(h)
        });
        let texts: BTreeSet<&str> = history
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t.as_str())
            .collect();
        assert_eq!(texts, BTreeSet::from(["from a", "from b"]));
    }
}
