//! Assertions several end-to-end tests make of the examples: what a chat service kept and
//! passed on, and that a service's faults come back as answers.

use crate::{TestNode, eventually};

/// What a chat example (any language) kept of `room`.
pub fn chat_history(node: &TestNode, service: &str, room: &str) -> Vec<String> {
    let (status, body) = node.post_json(
        &format!("/{service}/history"),
        &format!(r#"{{"room":"{room}"}}"#),
    );
    assert_eq!(status, 200, "{body}");
    body.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Posts `text` to chat `from` and waits until chat `to` (another language's) has kept it.
pub fn chat_reaches(node: &TestNode, from: &str, to: &str, text: &str) {
    let (status, body) = node.post_json(
        &format!("/{from}/post"),
        &format!(r#"{{"room":"r","text":"{text}"}}"#),
    );
    assert_eq!(status, 200, "{body}");
    eventually(&format!("{to} to receive what {from} posted"), || {
        chat_history(node, to, "r")
            .contains(&text.to_string())
            .then_some(())
    });
}

/// Checks the answers of service `faulty`, written in an SDK with methods `boom` (raises an
/// exception whose message is `boom_message`), `odd` (answers something JSON cannot hold),
/// `missing` (raises not-found "no such thing") and `ok`: each fault is an answer, and the
/// next call works.
pub fn faults_are_answers(node: &TestNode, boom_message: &str) {
    let ok = || assert_eq!(node.post_json("/faulty/ok", "{}").0, 200);
    let (status, body) = node.post_json("/faulty/boom", "{}");
    assert_eq!(
        (status, body["error"].as_str()),
        (500, Some("failed")),
        "{body}"
    );
    assert_eq!(body["message"], boom_message, "{body}");
    ok();
    let (status, body) = node.post_json("/faulty/odd", "{}");
    assert_eq!(status, 500, "{body}");
    let message = body["message"].as_str().unwrap_or("");
    assert!(
        message.contains("the answer of odd cannot be sent as JSON"),
        "{body}"
    );
    let (status, body) = node.post_json("/faulty/missing", "{}");
    assert_eq!(
        (status, body["message"].as_str()),
        (404, Some("no such thing")),
        "{body}"
    );
    ok();
}
