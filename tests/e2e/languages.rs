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
