//! A hostile service fails alone, within its limits, and the node keeps serving the rest.

use micro_tests::TestNode;

const LIMITS: &str = "
[limits]
call_timeout_ms = 3000
memory_mib = 64
max_request_bytes = 1048576
max_response_bytes = 1048576
max_concurrency_per_service = 2
";

fn node_with_hostile() -> TestNode {
    let node = TestNode::new(LIMITS);
    node.deploy("hostile", "hostile");
    node.deploy("hello", "hello");
    node
}

fn echo_works(node: &TestNode) {
    let (status, body) = node.post_json("/hostile/echo", r#"{"still":"alive"}"#);
    assert_eq!(
        (status, body),
        (200, serde_json::json!({ "still": "alive" }))
    );
}

#[test]
fn an_infinite_loop_times_out_while_other_services_keep_answering() {
    let node = node_with_hostile();
    let url = node.url.clone();
    let spinner = std::thread::spawn(move || {
        let agent = micro_tests::agent();
        let mut r = agent.post(format!("{url}/hostile/spin")).send("").unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    });
    for i in 0..20 {
        let (status, body) = node.post_json("/hello/greet", &format!(r#"{{"name":"n{i}"}}"#));
        assert_eq!(
            (status, body["message"].as_str()),
            (200, Some(format!("Hello, n{i}!").as_str()))
        );
    }
    assert!(
        !spinner.is_finished(),
        "hello answered 20 calls while the loop was still running"
    );
    let (status, body) = spinner.join().unwrap();
    assert_eq!(status, 504, "{body}");
    assert!(
        body.contains("\"timeout\"") && body.contains("deadline"),
        "{body}"
    );
    echo_works(&node);
}

#[test]
fn a_call_through_the_gateway_counts_in_the_nodes_load_while_it_runs() {
    let node = node_with_hostile();
    let load = |node: &TestNode| node.get_json("/api/node")["load"].as_u64();
    assert_eq!(load(&node), Some(0));
    let url = node.url.clone();
    let spinner = std::thread::spawn(move || {
        let agent = micro_tests::agent();
        let r = agent.post(format!("{url}/hostile/spin")).send("").unwrap();
        r.status().as_u16()
    });
    // The load peers see (and placement weighs) includes a call that came in by HTTP.
    micro_tests::eventually("the spinning call in the node's load", || {
        (load(&node) == Some(1)).then_some(())
    });
    assert_eq!(spinner.join().unwrap(), 504);
    micro_tests::eventually("the load back to 0 once the call ended", || {
        (load(&node) == Some(0)).then_some(())
    });
}

#[test]
fn a_memory_bomb_traps_at_its_limit_and_the_memory_comes_back() {
    let node = node_with_hostile();
    echo_works(&node);
    let before = node.rss_kib();
    for _ in 0..3 {
        let (status, body) = node.post_json("/hostile/bomb", "");
        assert_eq!((status, body["error"].as_str()), (500, Some("failed")));
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("memory limit of 64 MiB"),
            "{body}"
        );
    }
    let after = node.rss_kib();
    assert!(
        after < before + 32 * 1024,
        "three 64 MiB bombs left the node at {after} KiB, from {before} KiB"
    );
    echo_works(&node);
}

#[test]
fn deep_recursion_and_traps_fail_alone() {
    let node = node_with_hostile();
    let (status, body) = node.post_json("/hostile/recurse", r#"{"depth":10000000}"#);
    assert_eq!(status, 500, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("trapped"),
        "{body}"
    );
    echo_works(&node);
    let (status, body) = node.post_json("/hostile/trap", "");
    assert_eq!(status, 500);
    assert!(
        body["message"].as_str().unwrap().contains("trapped"),
        "{body}"
    );
    echo_works(&node);
    // A shallow recursion still works: the limit is on depth, not on recursion.
    let (status, body) = node.post_json("/hostile/recurse", r#"{"depth":100}"#);
    assert_eq!((status, body), (200, serde_json::json!(100)));
}

#[test]
fn oversized_requests_and_responses_are_refused() {
    let node = node_with_hostile();
    let big = format!("\"{}\"", "x".repeat(2 << 20));
    let (status, body) = node.post_json("/hostile/echo", &big);
    assert_eq!(
        (status, body["error"].as_str()),
        (413, Some("too-large")),
        "{body}"
    );
    let (status, body) = node.post_json("/hostile/big", r#"{"bytes":2000000}"#);
    assert_eq!(status, 500);
    assert!(
        body["message"].as_str().unwrap().contains("over the limit"),
        "{body}"
    );
    echo_works(&node);
}

#[test]
fn a_call_loop_is_stopped_by_the_depth_limit() {
    let node = node_with_hostile();
    let (status, body) = node.post_json("/hostile/loop", "");
    assert_eq!(status, 500, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("call depth limit"),
        "{body}"
    );
    echo_works(&node);
}

#[test]
fn calls_beyond_the_concurrency_cap_wait_instead_of_failing() {
    let node = node_with_hostile();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let url = node.url.clone();
            std::thread::spawn(move || {
                let agent = micro_tests::agent();
                let mut r = agent
                    .post(format!("{url}/hostile/recurse"))
                    .send(format!(r#"{{"depth":{}}}"#, 1000 + i))
                    .unwrap();
                (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
            })
        })
        .collect();
    for (i, t) in threads.into_iter().enumerate() {
        assert_eq!(t.join().unwrap(), (200, (1000 + i).to_string()));
    }
}

#[test]
fn the_sandbox_has_no_files_no_environment_and_no_sockets() {
    let node = node_with_hostile();
    let authority = node.url.trim_start_matches("http://").to_string();
    let (status, probe) = node.post_json(
        "/hostile/probe",
        &format!(r#"{{"authority":"{authority}","path":"/"}}"#),
    );
    assert_eq!(status, 200, "{probe}");
    assert!(
        probe["root_dir"].as_str().unwrap().starts_with("error"),
        "{probe}"
    );
    assert_eq!(probe["env_vars"], 0, "{probe}");
    assert!(
        probe["tcp"].as_str().unwrap().starts_with("error"),
        "{probe}"
    );
}

#[test]
fn outgoing_http_is_refused_unless_the_service_is_allowed() {
    let body = |node: &TestNode| {
        let authority = node.url.trim_start_matches("http://").to_string();
        format!(r#"{{"authority":"{authority}","path":"/api/health"}}"#)
    };
    let node = node_with_hostile();
    let (status, answer) = node.post_json("/hostile/fetch", &body(&node));
    assert_eq!(status, 200);
    assert_eq!(answer, "error: ErrorCode::HttpRequestDenied");
    drop(node);

    let node = TestNode::new(&format!(
        "{LIMITS}\n[http]\nallow_outgoing = [\"hostile\"]\n"
    ));
    node.deploy("hostile", "hostile");
    let (status, answer) = node.post_json("/hostile/fetch", &body(&node));
    assert_eq!(
        (status, answer.as_str()),
        (200, Some("status: 200")),
        "{}",
        node.log()
    );
}
