//! Two adjacent builds interoperate: a node of the previous protocol (micro/rpc/1, with node
//! records and anti-entropy), built from its commit by `./scripts/test`, and a node of this
//! build call each other's services, deliver each other's events and say goodbye, and neither
//! sends the other anything it cannot read.

#![allow(clippy::unwrap_used, reason = "a test: a failed step is the failure")]

use micro_tests::{TestNode, eventually};
use serde_json::Value;

fn stat(node: &TestNode, name: &str) -> u64 {
    node.get_json("/api/network")["stats"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no stat {name}"))
}

/// How `node` lists `peer` in its view.
fn row(node: &TestNode, peer: &str) -> Option<Value> {
    node.get_json("/api/network/nodes")
        .as_array()?
        .iter()
        .find(|n| n["node"] == peer)
        .cloned()
}

#[test]
fn a_node_of_the_previous_protocol_and_one_of_this_build_work_together() {
    let old = TestNode::previous("", &[]);
    let new = TestNode::joining("", &[old.ticket()]);
    let (old_id, new_id) = (old.id(), new.id());
    // The new node speaks protocol 1 to the old one: the handshake settled on it.
    let seen = eventually("the new node to check the old one", || {
        row(&new, &old_id).filter(|r| r["healthy"] == true && r["protocol"].is_u64())
    });
    assert_eq!(seen["protocol"], 1, "{seen}");
    assert_eq!(new.get_json("/api/network")["protocol"], 2);
    // Calls both ways, found through the DHT both builds speak.
    old.deploy("hello", "hello");
    new.deploy("greeter", "hello");
    eventually("the new node to call the old node's service", || {
        let (status, body) = new.post_json("/hello/whoami", "");
        (status == 200).then_some(body)
    });
    let (_, who) = new.post_json("/hello/whoami", "");
    assert_eq!(
        who["node"],
        new_id.as_str(),
        "the old node saw the caller: {who}"
    );
    eventually("the old node to call the new node's service", || {
        let (status, body) = old.post_json("/greeter/greet", r#"{"name":"old"}"#);
        (status == 200 && body["message"] == "Hello, old!").then_some(())
    });
    // Events published on the new node reach a subscriber on the old one.
    let published = |node: &TestNode| {
        let (status, body) = node.post_json("/api/topics/upgrade", r#"{"from":"new"}"#);
        assert_eq!(status, 200, "{body}");
    };
    published(&new);
    let sub = old.subscribe("upgrade", "");
    published(&new);
    let message = sub.next();
    assert_eq!(message["node"], new_id.as_str(), "{message}");
    // The old node checks the new one (pings, and a records sync each heartbeat, answered with
    // none); after all of the above, nothing either sent was unreadable to the other.
    eventually("the old node to check the new one", || {
        (row(&old, &new_id)?["healthy"] == true).then_some(())
    });
    assert_eq!(stat(&old, "bad_frames"), 0);
    assert_eq!(stat(&old, "bad_records"), 0);
    assert_eq!(stat(&new, "bad_frames"), 0);
    assert_eq!(stat(&new, "bad_entries"), 0);
    // The old node's goodbye (a record pushed, in protocol 1) makes the new node forget it.
    #[cfg(unix)]
    {
        let mut old = old;
        assert!(old.stop().success());
        eventually("the new node to forget the old one", || {
            row(&new, &old_id)
                .is_none_or(|r| r["source"] == "dht")
                .then_some(())
        });
        assert!(new.log().contains("peer left"), "{}", new.log());
    }
}
