//! Publish and subscribe: queue groups, history replay, services that subscribe.

use micro_tests::{TestNode, eventually};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;

#[test]
fn queue_group_members_share_messages_and_plain_subscribers_get_all() {
    let node = TestNode::new("");
    let a = node.subscribe("orders", "group=workers");
    let b = node.subscribe("orders", "group=workers");
    let all = node.subscribe("orders", "");
    for i in 0..10 {
        let (status, body) = node.post_json("/api/topics/orders", &format!(r#"{{"order":{i}}}"#));
        assert_eq!(status, 200);
        assert_eq!(body["sequence"], i + 1);
    }
    let everything: Vec<u64> = (0..10)
        .map(|_| all.next()["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(everything, (1..=10).collect::<Vec<_>>(), "in order");
    let got_a: BTreeSet<u64> = a
        .drain(Duration::from_millis(300))
        .iter()
        .map(|m| m["sequence"].as_u64().unwrap())
        .collect();
    let got_b: BTreeSet<u64> = b
        .drain(Duration::from_millis(300))
        .iter()
        .map(|m| m["sequence"].as_u64().unwrap())
        .collect();
    assert!(
        got_a.is_disjoint(&got_b),
        "each message to one member: {got_a:?} {got_b:?}"
    );
    assert_eq!(got_a.len() + got_b.len(), 10, "{got_a:?} {got_b:?}");
    assert!(
        !got_a.is_empty() && !got_b.is_empty(),
        "both members take work"
    );
}

#[test]
fn a_late_subscriber_asking_for_history_gets_recent_messages_first() {
    let node = TestNode::new("[broker]\nretain_messages = 3\n");
    for text in ["one", "two", "three", "four"] {
        node.cli_ok(&["publish", "news", text]);
    }
    let out = node.cli_ok(&["subscribe", "news", "--history", "--count", "3"]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["#2 two", "#3 three", "#4 four"],
        "bounded by count, in order"
    );

    let sub = node.subscribe("news", "history=true");
    node.cli_ok(&["publish", "news", "five"]);
    let seqs: Vec<u64> = (0..4)
        .map(|_| sub.next()["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        [2, 3, 4, 5],
        "history, then live, no gap, no duplicate"
    );
}

#[test]
fn a_subscribing_service_receives_messages_from_services_and_outside() {
    let node = TestNode::new("");
    node.deploy("chat", "chat");
    let (status, body) = node.post_json("/chat/post", r#"{"room":"lobby","text":"hi"}"#);
    assert_eq!(status, 200, "{body}");
    node.post(
        "/api/topics/chat",
        r#"{"room":"lobby","text":"from outside"}"#,
    );
    let history = eventually("both messages in chat's history", || {
        let (_, h) = node.post_json("/chat/history", r#"{"room":"lobby"}"#);
        (h.as_array()?.len() == 2).then_some(h)
    });
    assert_eq!(history, json!(["hi", "from outside"]));
}

#[test]
fn a_service_deployed_later_gets_the_topic_history() {
    let node = TestNode::new("");
    node.post(
        "/api/topics/chat",
        r#"{"room":"early","text":"before chat existed"}"#,
    );
    node.deploy("chat", "chat");
    let history = eventually("the retained message replayed to chat", || {
        let (_, h) = node.post_json("/chat/history", r#"{"room":"early"}"#);
        (!h.as_array()?.is_empty()).then_some(h)
    });
    assert_eq!(history, json!(["before chat existed"]));
}

#[test]
fn bad_topics_and_oversized_messages_are_refused() {
    let node = TestNode::new("[broker]\nmax_message_bytes = 16\n");
    let (status, body) = node.post_json("/api/topics/bad%20topic", "x");
    assert_eq!((status, body["error"].as_str()), (400, Some("bad-request")));
    let (status, body) = node.post_json("/api/topics/t", &"x".repeat(17));
    assert_eq!((status, body["error"].as_str()), (413, Some("too-large")));
}
