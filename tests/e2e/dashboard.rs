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
    assert_eq!(steps.iter().filter(|l| l.starts_with("step: ")).count(), 10);
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
        "network-node-down",
        "network-node-gone",
        "node-unreachable",
    ] {
        let shot = shots.join(format!("{page}.png"));
        let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
        assert!(size > 1000, "{} is missing or empty", shot.display());
    }
}
