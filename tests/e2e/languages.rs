//! Components made by other languages' own toolchains instantiate and use the node's
//! interfaces: they import WASI 0.2.9 / 0.2.12 interfaces (sockets, filesystem, http) that the
//! node must link, with every capability denied.

use micro_tests::TestNode;

fn greets_and_keeps_state(node: &TestNode, service: &str, language: &str) {
    for n in 1..=2 {
        let (status, body) = node.post_json(&format!("/{service}/greet"), r#"{"name":"Ada"}"#);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["message"], format!("Hello from {language}, Ada!"));
        assert_eq!(body["n"], n, "state kept in storage between calls");
    }
}

#[test]
fn a_componentize_py_service_runs() {
    let node = TestNode::new("");
    node.deploy("py", "py-hello");
    greets_and_keeps_state(&node, "py", "Python");
}

#[test]
fn a_componentize_js_service_runs() {
    let node = TestNode::new("");
    node.deploy("js", "js-hello");
    greets_and_keeps_state(&node, "js", "JavaScript");
    let (_, wit) = node.get("/api/services/js");
    assert!(
        wit.contains("wasi:http/outgoing-handler@0.2.10"),
        "it imports outgoing HTTP: {wit}"
    );
}

#[test]
fn a_wasi_keyvalue_component_uses_the_service_storage() {
    let node = TestNode::new("");
    node.deploy("kv", "kv-counter");
    for n in 1..=3 {
        let (status, body) = node.post_json("/kv/hit", "");
        assert_eq!((status, body["hits"].as_u64()), (200, Some(n)), "{body}");
    }
    // The default bucket is the service's own storage namespace.
    let (_, body) = node.post_json("/kv/storage", "");
    assert_eq!(body["hits"], "3", "{body}");
    // Named buckets, batches and listings with cursors (more keys than one page).
    for i in 0..150 {
        let (status, body) = node.post("/kv/put", format!("item{i:03}=v{i}"));
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = node.post_json("/kv/items", "");
    assert_eq!(status, 200, "{body}");
    let items = body.as_object().expect("an object of items");
    assert_eq!(items.len(), 150, "{body}");
    assert_eq!(items["item149"], "v149");
    // State survives a restart: it is the node's durable storage.
    let node = node.restart();
    let (_, body) = node.post_json("/kv/hit", "");
    assert_eq!(body["hits"], 4, "{body}");
}

#[test]
fn a_stock_wasi_http_component_from_componentize_py_serves_unmodified() {
    let node = TestNode::new("");
    node.deploy("py-web", "py-http");
    let (status, body) = node.get("/py-web/some/path?x=1");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        "Hello from a stock Python wasi:http component at /some/path?x=1\n"
    );
}
