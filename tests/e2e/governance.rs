//! Governance in code: a node asks its governance component before every deploy and call;
//! a denial is a 403 with the component's reason; a governance that traps or loops denies
//! rather than allows and the node keeps serving; governance is swapped while calls run, with
//! none failing, and built from Rust source; a newcomer's calls from another node are
//! rate-limited and its rate grows with reputation; reports of pre-trusted peers move
//! reputation; a service in demand is placed on other nodes and outlives its origin.

use micro_tests::{TestNode, component_dir, eventually};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The newest decision `node`'s governance made about a call by `subject`.
fn latest_call_decision_about(node: &TestNode, subject: &str) -> Option<serde_json::Value> {
    let log = node.get_json("/api/governance/log");
    log.as_array()?
        .iter()
        .find(|d| d["subject"] == subject && d["kind"] == "authorize-call")
        .cloned()
}

fn use_governance(node: &TestNode, name: &str) -> String {
    let dir = component_dir(name);
    let path = dir.path().to_str().expect("a UTF-8 path").to_string();
    node.cli_ok(&["governance", "use", &path])
}

#[test]
fn default_governance_decides_and_logs() {
    let node = TestNode::new("");
    node.deploy("hello", "hello");
    let (status, _) = node.post("/hello/greet", r#"{"name":"Ada"}"#);
    assert_eq!(status, 200);
    let show = node.get_json("/api/governance");
    assert_eq!(show["name"], "default");
    assert_eq!(show["origin"], "embedded");
    let log = node.get_json("/api/governance/log");
    let kinds: Vec<&str> = log
        .as_array()
        .expect("a list")
        .iter()
        .map(|d| d["kind"].as_str().unwrap_or_default())
        .collect();
    assert!(kinds.contains(&"approve-deploy"), "{log}");
    assert!(kinds.contains(&"authorize-call"), "{log}");
    assert!(
        log[0]["allow"] == true && log[0]["micros"].is_u64(),
        "{log}"
    );
    // The CLI shows the same.
    let show = node.cli_ok(&["governance", "show"]);
    assert!(show.starts_with("governance default "), "{show}");
    let log = node.cli_ok(&["governance", "log"]);
    assert!(
        log.contains("hello.greet") && log.contains("allow"),
        "{log}"
    );
}

#[test]
fn a_policy_that_closes_a_method_answers_403_with_its_reason() {
    let node = TestNode::new("");
    node.deploy("hello", "hello");
    let out = use_governance(&node, "governance-test");
    assert!(out.contains("governance test 1 now in use"), "{out}");
    let (status, body) = node.post("/hello/whoami", "{}");
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("whoami is closed by the test policy"),
        "{body}"
    );
    let (status, _) = node.post("/hello/greet", r#"{"name":"Ada"}"#);
    assert_eq!(status, 200);
    // The CLI says it too, with its exit code for a refusal.
    let out = node.cli(&["call", "hello", "whoami"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("closed by the test policy"));
    // Kept across a restart.
    let node = node.restart();
    let (status, _) = node.post("/hello/whoami", "{}");
    assert_eq!(status, 403);
    assert_eq!(node.get_json("/api/governance")["name"], "test");
}

#[test]
fn a_governance_that_traps_or_loops_denies_and_the_node_keeps_serving() {
    let node = TestNode::new("");
    node.deploy("hello", "hello");
    node.deploy("trap-me", "hello");
    node.deploy("loop-me", "hello");
    use_governance(&node, "governance-test");
    let (status, body) = node.post("/trap-me/greet", "{}");
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("governance failed, so denied") && body.contains("trapped"),
        "{body}"
    );
    let (status, body) = node.post("/loop-me/greet", "{}");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("ran past its time limit"), "{body}");
    // The governance is instantiated again for the next question; other services are served.
    let (status, body) = node.post("/hello/greet", r#"{"name":"Ada"}"#);
    assert_eq!(
        (status, body.contains("Hello, Ada!")),
        (200, true),
        "{body}"
    );
    let counts = node.get_json("/api/governance")["decisions"].clone();
    assert!(counts["failed"].as_u64().unwrap_or(0) >= 2, "{counts}");
    // A working governance put in use recovers everything.
    let out = use_governance(&node, "micro-governance");
    assert!(out.contains("governance default"), "{out}");
    let (status, body) = node.post("/trap-me/greet", r#"{"name":"Ada"}"#);
    assert_eq!(status, 200, "{body}");
}

#[test]
fn governance_swaps_under_load_without_a_failed_call() {
    let node = Arc::new(TestNode::new(""));
    node.deploy("hello", "hello");
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(std::sync::Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (node, stop, ok, failed) = (node.clone(), stop.clone(), ok.clone(), failed.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let (status, body) = node.post("/hello/greet", r#"{"name":"Ada"}"#);
                    if status == 200 {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else if let Ok(mut f) = failed.lock() {
                        f.push(format!("{status} {body}"));
                    }
                }
            })
        })
        .collect();
    eventually("calls to be flowing", || {
        (ok.load(Ordering::Relaxed) > 50).then_some(())
    });
    for name in ["governance-test", "micro-governance", "governance-test"] {
        let before = ok.load(Ordering::Relaxed);
        use_governance(&node, name);
        eventually("calls to flow on after the swap", || {
            (ok.load(Ordering::Relaxed) > before + 50).then_some(())
        });
    }
    // The new policy is in force at once.
    let (status, _) = node.post("/hello/whoami", "{}");
    assert_eq!(status, 403);
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("a worker");
    }
    let failed = failed.lock().expect("the failures").clone();
    assert!(
        failed.is_empty(),
        "{} calls failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    println!(
        "{} calls, none failed, across 3 swaps",
        ok.load(Ordering::Relaxed)
    );
}

#[test]
fn calls_from_other_nodes_get_the_rate_governance_allows() {
    let a = TestNode::new("");
    let b = TestNode::joining("", &[a.ticket()]);
    a.deploy("hello", "hello");
    a.deploy("limited", "hello");
    eventually("B to route both services to A", || {
        // Naming the service makes B look it up in the network rather than its cache.
        let served = |s: &str| {
            let routes = b.get_json(&format!("/api/network/routes?service={s}"));
            routes
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r["service"] == s && r["routes"][0]["node"] == a.id().as_str())
        };
        (served("hello") && served("limited")).then_some(())
    });
    // The default governance gives B, a newcomer to A, the base rate for its reputation.
    let (status, _) = b.post("/hello/greet", r#"{"name":"Ada"}"#);
    assert_eq!(status, 200);
    let decision = latest_call_decision_about(&a, &b.id())
        .unwrap_or_else(|| panic!("no decision about B in A's log"));
    assert_eq!(decision["allow"], true);
    let reason = decision["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("reputation 0.10: up to 1990 calls/s"),
        "{reason}"
    );

    // A node says which governance it runs when the peers that check it ask; they list it.
    let governance_of_a = || {
        let nodes = b.get_json("/api/network/nodes");
        nodes
            .as_array()?
            .iter()
            .find(|n| n["node"] == a.id().as_str())?["governance"]
            .as_str()
            .map(str::to_string)
    };
    let announced = eventually("A's governance in B's view", || {
        governance_of_a().filter(|g| !g.is_empty())
    });
    assert!(announced.starts_with("default "), "{announced}");
    let listing = b.cli_ok(&["network", "nodes"]);
    assert!(
        listing.contains("GOVERNANCE") && listing.contains(&announced),
        "{listing}"
    );

    // A policy's rate limit is enforced by the node: past the burst, 429 until tokens refill.
    use_governance(&a, "governance-test");
    eventually("A's new governance in B's view", || {
        governance_of_a().filter(|g| g == "test 1")
    });
    let mut statuses = std::collections::BTreeMap::new();
    let mut message = String::new();
    for _ in 0..20 {
        let (status, body) = b.post("/limited/greet", r#"{"name":"Ada"}"#);
        *statuses.entry(status).or_insert(0) += 1;
        if status == 429 {
            message = body;
        }
    }
    let allowed = statuses.get(&200).copied().unwrap_or(0);
    assert!((3..=10).contains(&allowed), "{statuses:?}");
    assert!(
        statuses.get(&429).copied().unwrap_or(0) >= 10,
        "{statuses:?}"
    );
    assert!(
        message.contains("rate limited by governance test 1") && message.contains("retry in"),
        "{message}"
    );
    // The node's own calls are not limited by that policy.
    for _ in 0..20 {
        assert_eq!(a.post("/limited/greet", r#"{"name":"Ada"}"#).0, 200);
    }
}

#[test]
fn a_newcomer_gains_rate_as_its_reputation_grows() {
    // A's governance clock can be moved (tests only), and observations flow every 100 ms.
    // Placement is off: B calls hello often enough to have it placed on B (B trusts A more
    // with every call A serves it well), and then B's calls would no longer reach A.
    let a = TestNode::new(
        "[governance]\ntest_clock = true\nobserve_interval_ms = 100\nplace_interval_ms = 3600000\n",
    );
    let b = TestNode::joining("", &[a.ticket()]);
    a.deploy("hello", "hello");
    eventually("B to route hello to A", || {
        let routes = b.get_json("/api/network/routes?service=hello");
        (routes[0]["routes"][0]["node"] == a.id().as_str()).then_some(())
    });
    let b_id = b.id();
    let reason_for_b = || {
        let (status, _) = b.post("/hello/greet", r#"{"name":"Ada"}"#);
        assert_eq!(status, 200);
        latest_call_decision_about(&a, &b_id)?["reason"]
            .as_str()
            .map(str::to_string)
    };
    let first = eventually("a decision about B", reason_for_b);
    assert!(
        first.starts_with("reputation 0.10: up to 1990 calls/s"),
        "{first}"
    );
    // A day online, as A's governance sees it: B's reputation and its rate grow.
    let (status, body) = a.post("/api/governance/clock", r#"{"advance_ms": 86400000}"#);
    assert_eq!(status, 200, "{body}");
    let later = eventually("B's reputation to grow", || {
        reason_for_b().filter(|r| !r.starts_with("reputation 0.10"))
    });
    assert!(
        later.starts_with("reputation 0.50: up to 25750 calls/s"),
        "{later}"
    );
    // A node not started for tests refuses to move its clock.
    let (status, _) = b.post("/api/governance/clock", r#"{"advance_ms": 1}"#);
    assert_eq!(status, 403);
}

#[test]
fn nodes_the_operator_pre_trusts_call_without_a_rate_limit() {
    let b = TestNode::new("");
    let a = TestNode::joining(
        &format!("[governance]\ntrusted = [\"{}\"]\n", b.id()),
        &[b.ticket()],
    );
    a.deploy("hello", "hello");
    eventually("B to route hello to A", || {
        let routes = b.get_json("/api/network/routes?service=hello");
        (routes[0]["routes"][0]["node"] == a.id().as_str()).then_some(())
    });
    let (status, _) = b.post("/hello/greet", r#"{"name":"Ada"}"#);
    assert_eq!(status, 200);
    let decision = latest_call_decision_about(&a, &b.id())
        .unwrap_or_else(|| panic!("no decision about B in A's log"));
    assert_eq!(decision["reason"], "pre-trusted by this node", "{decision}");
}

/// The services a node runs, by name, as `/api/services` lists them.
fn services_of(node: &TestNode) -> Vec<serde_json::Value> {
    node.get_json("/api/services")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn placement_replicates_a_service_in_demand_to_two_of_four_nodes_that_outlive_its_origin() {
    // Clocks tests can move, observations every 100 ms, placement every 200 ms.
    let config = "[governance]\ntest_clock = true\nobserve_interval_ms = 100\n\
                  place_interval_ms = 200\n";
    let mut a = TestNode::new(config);
    let others: Vec<TestNode> = (0..3)
        .map(|_| TestNode::joining(config, &[a.ticket()]))
        .collect();
    let everyone = || std::iter::once(&a).chain(others.iter());
    // Each node checks the others itself (a node reports "healthy" only of peers it checks), so
    // each sees the day below pass for all of them.
    eventually("all four nodes to know each other", || {
        everyone()
            .all(|n| {
                let healthy = n.get_json("/api/network/nodes").as_array().map_or(0, |p| {
                    p.iter()
                        .filter(|p| p["self"] == false && p["healthy"] == true)
                        .count()
                });
                healthy >= 3
            })
            .then_some(())
    });
    // A day online as each node's governance sees it: every peer reaches reputation 0.5, the
    // default governance's floor for placing replicas on a node and taking them from one.
    for n in everyone() {
        let (status, body) = n.post("/api/governance/clock", r#"{"advance_ms": 86400000}"#);
        assert_eq!(status, 200, "{body}");
    }
    a.deploy("hello", "hello");
    // Not in demand yet: it stays where it was deployed.
    for _ in 0..5 {
        assert_eq!(a.post("/hello/greet", r#"{"name":"Ada"}"#).0, 200);
    }
    // Demand: the default governance places a service with 600+ calls a minute on 3 nodes.
    for _ in 0..700 {
        assert_eq!(a.post("/hello/greet", r#"{"name":"Ada"}"#).0, 200);
    }
    let a_id = a.id();
    let replicas = |n: &TestNode| {
        services_of(n)
            .iter()
            .any(|s| s["name"] == "hello" && s["replica_of"] == a_id.as_str())
    };
    let demanded = std::time::Instant::now();
    let placed: Vec<usize> = eventually("two replicas of hello", || {
        let placed: Vec<usize> = (0..others.len())
            .filter(|i| replicas(&others[*i]))
            .collect();
        (placed.len() >= 2).then_some(placed)
    });
    println!(
        "figure: two replicas serving {} ms after the 700th call",
        demanded.elapsed().as_millis()
    );
    assert_eq!(placed.len(), 2, "two of the three other nodes, not all");
    let idle = (0..others.len())
        .find(|i| !placed.contains(i))
        .expect("one node without a replica");
    // The replica is the very component deployed on A, fetched and checked against its hash.
    let original = services_of(&a)
        .into_iter()
        .find(|s| s["name"] == "hello")
        .expect("hello on A");
    for i in &placed {
        let replica = services_of(&others[*i])
            .into_iter()
            .find(|s| s["name"] == "hello")
            .expect("hello on the replica");
        assert_eq!(replica["component"], original["component"]);
        assert_eq!(replica["version"], original["version"]);
    }
    // The node without a replica routes to the replicas too once they announce themselves.
    eventually("the idle node to route hello to a replica", || {
        let routes = others[idle].get_json("/api/network/routes?service=hello");
        let nodes: Vec<String> = routes[0]["routes"]
            .as_array()?
            .iter()
            .filter_map(|r| r["node"].as_str().map(str::to_string))
            .collect();
        (nodes.len() >= 3).then_some(())
    });
    // Placement is governance's: the decision log of a replica's node shows the deploy it
    // approved, with A as the deployer.
    let approved = others[placed[0]]
        .get_json("/api/governance/log")
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .find(|d| d["question"] == "replica of hello")
        .expect("the replica's deploy in the decision log");
    assert_eq!(approved["subject"], a_id.as_str(), "{approved}");
    assert_eq!(approved["allow"], true, "{approved}");

    // The origin goes away; the service keeps answering, from every remaining node.
    a.crash();
    for n in &others {
        for _ in 0..10 {
            let (status, body) = n.post("/hello/greet", r#"{"name":"Ada"}"#);
            assert_eq!(status, 200, "{body}");
            assert!(body.contains("Hello, Ada"), "{body}");
        }
    }
    for i in &placed {
        assert!(
            replicas(&others[*i]),
            "a replica stopped when its origin left"
        );
    }
}

/// How `node` trusts `peer` now, as its `/api/network/nodes` says.
fn reputation_of(node: &TestNode, peer: &str) -> Option<f64> {
    node.get_json("/api/network/nodes")
        .as_array()?
        .iter()
        .find(|n| n["node"] == peer)?["reputation"]
        .as_f64()
}

#[test]
fn reports_of_pre_trusted_peers_move_reputation_and_newcomers_reports_do_not() {
    let config = "[governance]\ntest_clock = true\nobserve_interval_ms = 100\n";
    let a = TestNode::new(config);
    let b = TestNode::joining(config, &[a.ticket()]);
    // C's operator trusts A; D trusts no one.
    let c = TestNode::joining(
        &format!("{config}trusted = [\"{}\"]\n", a.id()),
        &[a.ticket()],
    );
    let d = TestNode::joining(config, &[a.ticket()]);
    let b_id = b.id();
    for n in [&c, &d] {
        eventually("a reputation of B", || reputation_of(n, &b_id));
    }
    // A has known B for a day (as A's clock says): it trusts B more (0.5 on its own
    // observations; 0.3 once it weighs what C and D, whom it now knows as long, report of B)
    // and says so in its signed record.
    let (status, body) = a.post("/api/governance/clock", r#"{"advance_ms": 86400000}"#);
    assert_eq!(status, 200, "{body}");
    eventually("A to trust B more", || {
        reputation_of(&a, &b_id).filter(|r| *r >= 0.25)
    });
    // C weighs A's word fully (pre-trusted): B rises from the base level without C having seen
    // more of it — to the mean of C's own 0.1 and A's word. To D, A is a newcomer whose word
    // counts for nothing.
    let at_c = eventually("C to take A's report on B", || {
        reputation_of(&c, &b_id).filter(|r| *r > 0.15)
    });
    assert!((0.19..=0.31).contains(&at_c), "{at_c}");
    let at_d = reputation_of(&d, &b_id).expect("D's view of B");
    assert!((at_d - 0.1).abs() < 0.01, "{at_d}");
    let listing = d.cli_ok(&["network", "nodes"]);
    assert!(
        listing.contains("REPUTATION") && listing.contains("0.10"),
        "{listing}"
    );
}

#[test]
fn governance_is_built_from_rust_source_and_swapped_in() {
    // A fork of the default governance in a git repository of its own: the same code under
    // another name and version, with the WIT beside it.
    let root = micro_tests::repo_root();
    let repo = micro_tests::GitRepo::new();
    repo.write(
        "Cargo.toml",
        "[package]\nname = \"forked-governance\"\nversion = \"0.2.0\"\nedition = \"2024\"\n\n\
         [lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\nwit-bindgen = \"0.62.0\"\n\n\
         [workspace]\n",
    );
    // The workspace's lock: the same dependency versions, resolved without the index.
    repo.write(
        "Cargo.lock",
        std::fs::read(root.join("Cargo.lock")).expect("the workspace has a Cargo.lock"),
    );
    for entry in std::fs::read_dir(root.join("wit")).expect("wit/") {
        let path = entry.expect("an entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).expect("a name");
        repo.write(
            &format!("wit/{name}"),
            std::fs::read(&path).expect("a WIT file"),
        );
    }
    let source = |name: &str| {
        std::fs::read_to_string(root.join("components/governance/src").join(name))
            .expect("the default governance's source")
    };
    let lib = source("lib.rs")
        .replace("\"../../wit\"", "\"wit\"")
        .replace("name: \"default\".into()", "name: \"forked\".into()");
    assert!(lib.contains("\"forked\""), "the fork renames itself");
    repo.write("src/lib.rs", lib);
    repo.write("src/reputation.rs", source("reputation.rs"));
    repo.commit("a fork of the default governance");

    let node = TestNode::new("");
    node.deploy("hello", "hello");
    let out = node.cli_ok(&["governance", "use", &repo.url()]);
    assert!(out.contains("forked 0.2.0"), "{out}");
    let show = node.get_json("/api/governance");
    assert_eq!(show["name"], "forked", "{show}");
    assert_eq!(show["origin"], repo.url().as_str(), "{show}");
    // The next decision is the fork's.
    assert_eq!(node.post("/hello/greet", r#"{"name":"Ada"}"#).0, 200);
    let log = node.get_json("/api/governance/log");
    assert_eq!(log[0]["governance"], "forked 0.2.0", "{log}");
}
