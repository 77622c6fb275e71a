//! The web dashboard in a real browser: two real nodes, Debian's headless Chromium driven by
//! playwright-core (tests/browser/dashboard.mjs, installed by scripts/test). The script walks
//! every page — the graph shows both nodes; a service deployed on the other node appears
//! without a reload; the call form calls it and shows the answer, and a 400 for invalid JSON;
//! events publish and arrive live; the node page shows resource use; every page fits a phone;
//! a node that dies greys out and leaves the graph; a node that stops answering is reported —
//! and writes a screenshot of each page to `<target>/artifacts/dashboard/`.

use micro_tests::{TestNode, artifacts_dir, component, eventually, repo_root};
use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

/// The browser the tests drive (Debian's `chromium` package, or `MICRO_CHROMIUM`).
fn chromium() -> String {
    let path = std::env::var("MICRO_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} is missing: ./scripts/test installs Debian's chromium package (or set MICRO_CHROMIUM)"
    );
    path
}

#[test]
fn dashboard_shows_the_network_and_calls_services_in_a_browser() {
    let browser = chromium();
    let script_dir = repo_root().join("tests/browser");
    assert!(
        script_dir.join("node_modules/playwright-core").exists(),
        "playwright-core is missing in tests/browser: ./scripts/test installs it (npm install)"
    );
    let a = TestNode::new("");
    let b = TestNode::joining("", &[a.ticket()]);
    for (node, other) in [(&a, b.id()), (&b, a.id())] {
        eventually("both nodes to know each other", || {
            let nodes = node.get_json("/api/network/nodes");
            nodes
                .as_array()?
                .iter()
                .any(|n| n["node"] == other.as_str() && n["healthy"] == true)
                .then_some(())
        });
    }
    let shots = artifacts_dir("dashboard");
    let mut child = Command::new("node")
        .arg("dashboard.mjs")
        .current_dir(&script_dir)
        .env("MICRO_A_URL", &a.url)
        .env("MICRO_A_ID", a.id())
        .env("MICRO_A_PID", a.pid().to_string())
        .env("MICRO_B_URL", &b.url)
        .env("MICRO_B_ID", b.id())
        .env("MICRO_B_PID", b.pid().to_string())
        .env("MICRO_HELLO_WASM", component("hello"))
        .env("MICRO_SCREENSHOTS", &shots)
        .env("MICRO_CHROMIUM", &browser)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting node (Node.js) for the browser test");
    let mut steps = Vec::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            println!("{line}");
            steps.push(line);
        }
    }
    let status = child.wait().expect("waiting for the browser test");
    assert!(
        status.success(),
        "the browser test failed (see above; screenshots in {}); node A's log:\n{}",
        shots.display(),
        a.log()
    );
    // Every step ran, and each page left its screenshot.
    assert_eq!(steps.iter().filter(|l| l.starts_with("step: ")).count(), 11);
    for page in [
        "network",
        "services",
        "service",
        "service-invalid-json",
        "events",
        "node",
        "network-phone",
        "services-phone",
        "service-phone",
        "events-phone",
        "node-phone",
        "scripts-blocked",
        "network-node-down",
        "network-node-gone",
        "node-unreachable",
    ] {
        let shot = shots.join(format!("{page}.png"));
        let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
        assert!(size > 1000, "{} is missing or empty", shot.display());
    }
}

/// GETs `path` with headers; answers the status, the headers asked for, and the body.
fn fetch(
    node: &TestNode,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, ureq::http::HeaderMap) {
    let mut request = micro_tests::agent().get(format!("{}{path}", node.url));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let mut response = request.call().unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        response.body_mut().read_to_string().unwrap_or_default(),
        headers,
    )
}

#[test]
fn the_page_and_every_module_it_imports_are_served_from_the_binary() {
    let node = TestNode::new("");
    // A browser gets the page; a program asking `/` gets where the API is.
    let (status, html, headers) = fetch(&node, "/", &[("accept", "text/html,*/*")]);
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/html")
    );
    assert!(headers.contains_key("content-security-policy"));
    let (status, json, _) = fetch(&node, "/", &[("accept", "application/json")]);
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(json["api"], "/api/");

    // Follow the page's scripts and styles, and every module they import: all are served.
    let mut pending: Vec<String> = ["/_/app.js", "/_/boot.js", "/_/style.css", "/_/icon.svg"]
        .map(String::from)
        .to_vec();
    assert!(pending.iter().all(|p| html.contains(p.as_str())));
    let mut seen = std::collections::BTreeSet::new();
    while let Some(path) = pending.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let (status, body, _) = fetch(&node, &path, &[]);
        assert_eq!(status, 200, "{path} is not served");
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        for import in body.lines().filter_map(|l| l.split(" from \"").nth(1)) {
            let target = import.trim_end_matches(['"', ';']);
            let resolved = match target.strip_prefix("../") {
                Some(up) => format!(
                    "{}{up}",
                    &dir[..dir[..dir.len() - 1].rfind('/').map_or(0, |i| i + 1)]
                ),
                None => format!("{dir}{}", target.trim_start_matches("./")),
            };
            pending.push(resolved);
        }
    }
    assert!(
        seen.len() >= 11,
        "only {} files reached: {seen:?}",
        seen.len()
    );

    // A reload costs a 304; an unknown file is a 404 that says so.
    let (_, _, headers) = fetch(&node, "/_/app.js", &[]);
    let etag = headers["etag"].to_str().expect("an ETag").to_string();
    let (status, body, _) = fetch(&node, "/_/app.js", &[("if-none-match", &etag)]);
    assert_eq!((status, body.as_str()), (304, ""));
    let (status, body, _) = fetch(&node, "/_/nope.js", &[]);
    assert_eq!(status, 404);
    assert!(body.contains("the dashboard has no file"), "{body}");
}

#[test]
fn changes_stream_says_what_changed_and_node_stats_count_calls_and_errors() {
    let a = TestNode::new("");
    // The stream opens before B exists, so B joining is a change it sees (peers learn B once).
    let changes = a.event_stream("/api/changes", "hello");
    let b = TestNode::joining("", &[a.ticket()]);
    // A deploy here is a change of services; a node joining is a change of peers; a service
    // found on B is a change of providers.
    a.deploy("hello", "hello");
    b.deploy("greeter", "hello");
    eventually("A to find B's service", || {
        (a.post("/greeter/greet", r#"{"name":"B"}"#).0 == 200).then_some(())
    });
    let mut what = std::collections::BTreeSet::new();
    // Peers change as they are learned and checked: bound the wait by count.
    for _ in 0..200 {
        if what.contains("services") && what.contains("providers") && what.contains("peers") {
            break;
        }
        let event = changes.next();
        for w in event["what"].as_array().expect("a list of what changed") {
            what.insert(w.as_str().unwrap_or_default().to_string());
        }
        assert!(event["services"].as_u64().is_some(), "{event}");
    }
    assert_eq!(what.len(), 3, "saw only {what:?} change");

    // Calls and errors, counted per version, with the last error in words.
    let (status, _) = a.post("/hello/greet", r#"{"name":"Ada"}"#);
    assert_eq!(status, 200);
    let (status, _) = a.post("/hello/greet", "{not json");
    assert_eq!(status, 400);
    let stats = a.get_json("/api/node");
    assert_eq!(stats["node"], a.id());
    let hello = &stats["services"][0];
    assert_eq!(
        (hello["name"].as_str(), hello["serving"].as_bool()),
        (Some("hello"), Some(true))
    );
    assert_eq!(
        (hello["calls"].as_u64(), hello["errors"].as_u64()),
        (Some(2), Some(1))
    );
    let last = hello["last_error"]["message"].as_str().unwrap_or_default();
    assert!(last.starts_with("bad-request: "), "{last}");
    assert!(stats["usage"]["rss_bytes"].as_u64().unwrap_or(0) > 1 << 20);
    assert!(stats["usage"]["store_bytes"].as_u64().unwrap_or(0) > 0);
    assert!(stats["network"]["bad_frames"].is_u64());
    // The CLI shows the same, from the same endpoint.
    let status = a.cli_ok(&["status"]);
    assert!(
        status.contains("hello") && status.contains("bad-request: "),
        "{status}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&a.cli_ok(&["status", "--json"])).expect("--json prints JSON");
    assert_eq!(json["services"][0]["errors"], 1);

    // The graph carries each node's health, for the dashboard to grey out a node that died.
    let b_id = b.id();
    let graph = a.get_json("/api/network/graph");
    let nodes = graph["nodes"].as_array().expect("nodes");
    assert!(
        nodes
            .iter()
            .any(|n| n["node"] == b_id.as_str() && n["healthy"] == true)
    );
    drop(b);
    eventually("the graph to mark the dead node down or drop it", || {
        let graph = a.get_json("/api/network/graph");
        let nodes = graph["nodes"].as_array()?.clone();
        nodes
            .iter()
            .all(|n| n["node"] != b_id.as_str() || n["healthy"] == false)
            .then_some(())
    });
}
