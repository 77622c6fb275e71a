//! Bad input gets a clear, specific error and never takes the node down.

use micro_tests::{TestNode, component};
use std::io::{Read, Write};

fn deploy_error(node: &TestNode, path: &std::path::Path) -> String {
    let out = node.cli(&["run", path.to_str().unwrap(), "--name", "bad"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "deploying {} must fail",
        path.display()
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn components_that_cannot_run_are_refused_at_deploy_with_the_reason() {
    let node = TestNode::new("");
    let garbage = node.dir().join("garbage.wasm");
    std::fs::write(&garbage, b"this is not wasm at all").unwrap();
    let core = node.dir().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();

    let e = deploy_error(&node, &garbage);
    assert!(e.contains("not-wasm") && e.contains("magic"), "{e}");
    let e = deploy_error(&node, &core);
    assert!(
        e.contains("core-module") && e.contains("not a component"),
        "{e}"
    );
    let e = deploy_error(&node, &component("cli-app"));
    assert!(
        e.contains("wrong-world") && e.contains("wasi:cli/run"),
        "{e}"
    );
    let e = deploy_error(&node, &component("unlinkable"));
    assert!(
        e.contains("missing-import") && e.contains("acme:missing/oracle@1.0.0"),
        "{e}"
    );

    let (status, body) = node.get("/api/services");
    assert_eq!((status, body.as_str()), (200, "[]"), "nothing was deployed");
}

#[test]
fn deploy_errors_have_specific_statuses() {
    let node = TestNode::new("[limits]\nmax_component_bytes = 300000\n");
    let agent = micro_tests::agent();
    let put = |name: &str, body: Vec<u8>| {
        let mut r = agent
            .put(format!("{}/api/services/{name}", node.url))
            .send(&body[..])
            .unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        (
            r.status().as_u16(),
            v["error"].as_str().unwrap_or("").to_string(),
        )
    };
    let hello = std::fs::read(component("hello")).unwrap();
    assert_eq!(put("hello", b"nope".to_vec()), (400, "not-wasm".into()));
    assert_eq!(put("Hello!", hello.clone()), (400, "invalid-name".into()));
    assert_eq!(put("api", hello.clone()), (400, "invalid-name".into()));
    assert_eq!(put("big", vec![0; 400_000]), (413, "too-large".into()));
    assert_eq!(
        put("wrong", std::fs::read(component("cli-app")).unwrap()),
        (422, "wrong-world".into())
    );
    let truncated = hello[..hello.len() / 2].to_vec();
    assert_eq!(put("cut", truncated), (400, "invalid-component".into()));
    assert_eq!(put("hello", hello).0, 201);
}

#[test]
fn invalid_json_to_a_json_service_is_a_400() {
    let node = TestNode::new("");
    node.deploy("hello", "hello");
    let (status, body) = node.post_json("/hello/greet", "{not json");
    assert_eq!((status, body["error"].as_str()), (400, Some("bad-request")));
    assert!(
        body["message"].as_str().unwrap().contains("invalid JSON"),
        "{body}"
    );
    let (status, body) = node.post_json("/hello/greet", r#"{"nom":"x"}"#);
    assert_eq!(status, 400, "missing field: {body}");
}

#[test]
fn garbage_on_the_wire_does_not_disturb_the_node() {
    let node = TestNode::new("");
    node.deploy("hello", "hello");
    let address = node.url.trim_start_matches("http://").to_string();
    for garbage in [
        &b"\x00\xff\x13\x37 garbage\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        &[0xAB; 100_000][..],
    ] {
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        let _ = stream.write_all(garbage);
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
    }
    let (status, body) = node.post_json("/hello/greet", r#"{"name":"still here"}"#);
    assert_eq!(
        (status, body["message"].as_str()),
        (200, Some("Hello, still here!"))
    );
}
