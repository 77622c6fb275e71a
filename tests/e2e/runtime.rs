//! The runtime adapts to its machine: the instance pool falls back cleanly.

use micro_tests::TestNode;

#[test]
fn without_address_space_for_the_pool_the_node_allocates_on_demand_and_still_serves() {
    // 16 GiB of address space: far too little for the pool's reservations (terabytes).
    let node = TestNode::new_limited("", 16 << 20);
    let (status, health) = node.get("/api/health");
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["allocator"], "on-demand", "{health}");
    node.deploy("hello", "hello");
    node.deploy("counter", "counter");
    for expected in 1..=3 {
        let (status, body) = node.post_json("/counter/incr", "{}");
        assert_eq!((status, body["value"].as_i64()), (200, Some(expected)));
    }
    let (status, body) = node.post_json("/hello/greet", r#"{"name":"Ada"}"#);
    assert_eq!(
        (status, body["message"].as_str()),
        (200, Some("Hello, Ada!"))
    );
}

#[test]
fn a_node_with_room_uses_the_pooling_allocator() {
    let node = TestNode::new("");
    let (_, health) = node.get("/api/health");
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["allocator"], "pooling", "{health}");
}
