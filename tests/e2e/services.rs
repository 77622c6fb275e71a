//! Deploying services and calling them through HTTP, the CLI and from other services.

use micro_tests::{TestNode, eventually};
use serde_json::json;

#[test]
fn hello_answers_over_http_and_the_cli() {
    let node = TestNode::new("");
    node.deploy("hello", "hello");

    let (status, body) = node.post_json("/hello/greet", r#"{"name":"Ada"}"#);
    assert_eq!(status, 200);
    assert_eq!(body, json!({ "message": "Hello, Ada!" }));

    let out = node.cli_ok(&["call", "hello", "greet", r#"{"name":"Grace"}"#]);
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["message"], "Hello, Grace!");

    // A method of `()` takes an empty body, `null` and `{}` alike.
    for body in ["", "null", "{}", " { } "] {
        let (status, answer) = node.post_json("/hello/whoami", body);
        assert_eq!(status, 200, "{body:?}: {answer}");
    }
    let (status, _) = node.post_json("/hello/whoami", "[1]");
    assert_eq!(status, 400);

    let listing: serde_json::Value =
        serde_json::from_str(&node.cli_ok(&["services", "--json"])).unwrap();
    let hello = &listing.as_array().unwrap()[0];
    assert_eq!(hello["name"], "hello");
    assert_eq!(hello["methods"], json!(["greet", "whoami"]));
    assert_eq!(hello["calls"], 7);
}

#[test]
fn a_deploy_loads_the_ledger_so_the_first_call_does_not_wait_for_it() {
    let node = TestNode::new("");
    assert!(
        node.get_json("/api/node")["ledger"].is_null(),
        "nothing has loaded the ledger yet"
    );
    node.deploy("hello", "hello");
    // Loaded beside the deploy, before any call asked it to charge.
    eventually("the ledger loaded by the deploy", || {
        (!node.get_json("/api/node")["ledger"].is_null()).then_some(())
    });
    let services = node.get_json("/api/node")["services"].clone();
    assert_eq!(services[0]["calls"], 0, "{services}");
}

#[test]
fn describe_shows_the_wit_extracted_from_the_component() {
    let node = TestNode::new("");
    node.deploy("hello", "hello");
    let wit = node.cli_ok(&["describe", "hello"]);
    assert!(wit.contains("export micro:network/handler@0.1.0"), "{wit}");
    assert!(wit.contains("import micro:network/types@0.1.0"), "{wit}");
    assert!(
        wit.contains(
            "handle: func(caller: caller, request: request) -> result<response, call-error>;"
        ),
        "the interfaces are defined too: {wit}"
    );
    assert!(wit.contains("methods:    greet, whoami"), "{wit}");
}

#[test]
fn services_call_each_other_and_the_callee_sees_the_caller() {
    let node = TestNode::new("");
    node.deploy("hello", "hello");
    node.deploy("counter", "counter");
    node.deploy("frontend", "frontend");

    for expected in 1..=3 {
        let (status, body) = node.post_json("/frontend/visit", r#"{"name":"Ada"}"#);
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body,
            json!({ "greeting": "Hello, Ada!", "visits": expected })
        );
    }
    let (_, who) = node.post_json("/frontend/whoami", "");
    assert_eq!(who["service"], "frontend");
    assert_eq!(who["depth"], 1);

    // A call from outside has no calling service.
    let (_, who) = node.post_json("/hello/whoami", "");
    assert_eq!(who["service"], serde_json::Value::Null);
    assert_eq!(who["depth"], 0);
}

#[test]
fn a_missing_callee_is_an_error_the_caller_can_match() {
    let node = TestNode::new("");
    node.deploy("frontend", "frontend");
    let (status, body) = node.post_json("/frontend/visit", r#"{"name":"Ada"}"#);
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "not-found");
    assert!(
        body["message"].as_str().unwrap().contains("hello"),
        "{body}"
    );
}

#[test]
fn unknown_services_methods_and_versions_are_404() {
    let node = TestNode::new("");
    node.deploy("hello", "hello");
    let (status, body) = node.post_json("/nobody/greet", "{}");
    assert_eq!((status, body["error"].as_str()), (404, Some("not-found")));
    let (status, body) = node.post_json("/hello/shout", "{}");
    assert_eq!(status, 404);
    assert!(
        body["message"].as_str().unwrap().contains("greet"),
        "lists the methods: {body}"
    );
    let (status, _) = node.post_json("/hello@0000/greet", r#"{"name":"x"}"#);
    assert_eq!(status, 404);
    let (_, listing) = node.post_json("/api/call/hello/greet", r#"{"name":"x"}"#);
    assert_eq!(listing["message"], "Hello, x!");
}

#[test]
fn the_version_can_be_pinned() {
    let node = TestNode::new("");
    node.deploy("hello", "hello");
    let (_, record) = node.get("/api/services/hello");
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    let version = record["version"].as_str().unwrap();
    let (status, body) = node.post_json(&format!("/hello@{version}/greet"), r#"{"name":"Ada"}"#);
    assert_eq!(
        (status, body["message"].as_str()),
        (200, Some("Hello, Ada!"))
    );
}

#[test]
fn a_stock_wasi_http_component_is_served_unmodified() {
    let node = TestNode::new("");
    node.deploy("web", "http-hello");
    let (status, body) = node.get("/web/some/path?x=1");
    assert_eq!(status, 200);
    assert_eq!(body, "Hello from wasi:http at /some/path?x=1");
    let (status, body) = node.post("/web/", "a body");
    assert_eq!(
        (status, body.as_str()),
        (200, "Hello from wasi:http at /: POST of 6 bytes: a body")
    );
}

#[test]
fn stop_removes_a_service() {
    let node = TestNode::new("");
    node.deploy("hello", "hello");
    node.cli_ok(&["stop", "hello"]);
    let (status, _) = node.post("/hello/greet", r#"{"name":"x"}"#);
    assert_eq!(status, 404);
    let out = node.cli(&["stop", "hello"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not-found"));
}

#[test]
fn the_cli_says_when_no_node_answers() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = std::process::Command::new(micro_tests::micro_bin())
        .args(["services"])
        .env("MICRO_NODE", format!("http://127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(69));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no node answers") && err.contains("micro server"),
        "{err}"
    );
}

#[test]
fn run_builds_a_rust_crate_directory_and_deploys_it() {
    let node = TestNode::new("");
    let crate_dir = micro_tests::repo_root().join("examples/hello");
    let out = node.cli(&["run", crate_dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("deployed hello"));
    let (status, body) = node.post_json("/hello/greet", r#"{"name":"Ada"}"#);
    assert_eq!(
        (status, body["message"].as_str()),
        (200, Some("Hello, Ada!"))
    );
}
