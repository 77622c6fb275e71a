//! What a node acknowledged survives a crash: stored data and deployed services come back.

use micro_tests::TestNode;

#[test]
fn storage_and_services_survive_a_crash() {
    let node = TestNode::new("");
    node.deploy("counter", "counter");
    node.deploy("web", "http-hello");
    for _ in 0..5 {
        let (status, _) = node.post("/counter/incr", r#"{"name":"visits"}"#);
        assert_eq!(status, 200);
    }
    // SIGKILL: no shutdown path runs, so only committed data can survive.
    let node = node.restart();
    let (status, body) = node.post_json("/counter/get", r#"{"name":"visits"}"#);
    assert_eq!(status, 200, "{}", node.log());
    assert_eq!(body["value"], 5);
    let (status, _) = node.get("/web/");
    assert_eq!(status, 200, "the wasi:http service came back too");
    let listing: serde_json::Value =
        serde_json::from_str(&node.cli_ok(&["services", "--json"])).unwrap();
    assert_eq!(listing.as_array().unwrap().len(), 2);
}

#[test]
fn a_restarted_node_reuses_compiled_code() {
    let node = TestNode::new("");
    node.deploy("hello", "hello");
    // A first call loads the ledger, which charges it.
    assert_eq!(node.post("/hello/greet", r#"{"name":"x"}"#).0, 200);
    let cache = node.dir().join("data/cache/compiled");
    let files = || {
        std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
            .collect::<Vec<_>>()
    };
    let before = files();
    assert!(
        cache.join("functions.redb").exists(),
        "compiled functions are cached too"
    );
    // The service's code, the governance's (asked before the deploy) and the ledger's.
    assert_eq!(
        before.len(),
        3,
        "three compiled components cached: {before:?}"
    );
    let hash = node.get_json("/api/services")[0]["component"]
        .as_str()
        .expect("a component hash")
        .to_string();
    let service_code = before
        .iter()
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&hash))
        })
        .expect("the service's compiled code")
        .clone();
    let modified = std::fs::metadata(&service_code)
        .unwrap()
        .modified()
        .unwrap();
    let node = node.restart();
    let (status, _) = node.post("/hello/greet", r#"{"name":"x"}"#);
    assert_eq!(status, 200);
    assert_eq!(files(), before, "no new compiled code");
    assert_eq!(
        std::fs::metadata(&service_code)
            .unwrap()
            .modified()
            .unwrap(),
        modified,
        "not rewritten"
    );
}

#[test]
fn storage_is_isolated_per_service() {
    let node = TestNode::new("");
    node.deploy("counter", "counter");
    node.deploy("counter-b", "counter");
    node.post("/counter/incr", r#"{"name":"n","by":7}"#);
    let (_, b) = node.post_json("/counter-b/get", r#"{"name":"n"}"#);
    assert_eq!(b["value"], 0, "counter-b cannot see counter's keys");
    let (_, a) = node.post_json("/counter/list", "");
    assert_eq!(a, serde_json::json!([{ "name": "n", "value": 7 }]));
}

#[test]
fn concurrent_increments_lose_no_update() {
    let node = TestNode::new("");
    node.deploy("counter", "counter");
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let url = node.url.clone();
            std::thread::spawn(move || {
                let agent = micro_tests::agent();
                for _ in 0..10 {
                    let r = agent
                        .post(format!("{url}/counter/incr"))
                        .send(r#"{"name":"race"}"#)
                        .unwrap();
                    assert_eq!(r.status().as_u16(), 200);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let (_, body) = node.post_json("/counter/get", r#"{"name":"race"}"#);
    assert_eq!(body["value"], 80, "compare-and-swap kept every increment");
}
