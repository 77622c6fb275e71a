//! Publish and subscribe: queue groups, history replay, services that subscribe.

use micro_tests::{TestNode, chat_history, eventually};
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
    // Each line names the node whose sequence it is.
    let id = node.id();
    let expected: Vec<String> = ["#2 two", "#3 three", "#4 four"]
        .iter()
        .map(|line| format!("{}{line}", &id[..8]))
        .collect();
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        expected,
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

/// The same component with a custom section added: other bytes, so another version.
fn another_version_of(component_name: &str, note: &str) -> tempfile::NamedTempFile {
    let mut wasm = std::fs::read(micro_tests::component(component_name)).unwrap();
    let name = b"note";
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.extend_from_slice(note.as_bytes());
    assert!(section.len() < 128, "one LEB128 byte of size");
    wasm.push(0); // a custom section
    wasm.push(section.len() as u8);
    wasm.extend_from_slice(&section);
    let file = tempfile::Builder::new().suffix(".wasm").tempfile().unwrap();
    std::fs::write(file.path(), wasm).unwrap();
    file
}

#[test]
fn a_new_version_of_a_subscriber_does_not_get_the_history_again() {
    let node = TestNode::new("");
    node.post("/api/topics/chat", r#"{"room":"r","text":"one"}"#);
    node.deploy("chat", "chat");
    eventually("the history replayed to the first version", || {
        (chat_history(&node, "chat", "r") == ["one"]).then_some(())
    });

    let v2 = another_version_of("chat", "v2");
    let out = node.cli_ok(&["run", v2.path().to_str().unwrap(), "--name", "chat"]);
    assert!(out.contains("subscribes: chat (history)"), "{out}");
    let versions: serde_json::Value =
        serde_json::from_str(&node.cli_ok(&["versions", "chat", "--json"])).unwrap();
    assert_eq!(versions.as_array().map(Vec::len), Some(2), "{versions}");

    // A live message reaches the new version, and it is the only message delivered to it:
    // its calls are the deliveries and the history calls made here (chat keys what it keeps
    // by message, so its history alone would not show a replay).
    node.post("/api/topics/chat", r#"{"room":"r","text":"two"}"#);
    let mut asked = 0;
    let history = eventually("the live message in the new version", || {
        asked += 1;
        let h = chat_history(&node, "chat", "r");
        h.contains(&"two".to_string()).then_some(h)
    });
    assert_eq!(history, ["one", "two"]);
    let served = node.get_json("/api/services/chat");
    assert_eq!(served["version"], versions[0]["version"], "{served}");
    let delivered = served["calls"].as_u64().unwrap() - asked;
    assert_eq!(delivered, 1, "only the live message, no replay: {served}");
}

#[test]
fn bad_topics_and_oversized_messages_are_refused() {
    let node = TestNode::new("[broker]\nmax_message_bytes = 16\n");
    let (status, body) = node.post_json("/api/topics/bad%20topic", "x");
    assert_eq!((status, body["error"].as_str()), (400, Some("bad-request")));
    let (status, body) = node.post_json("/api/topics/t", &"x".repeat(17));
    assert_eq!((status, body["error"].as_str()), (413, Some("too-large")));
}
