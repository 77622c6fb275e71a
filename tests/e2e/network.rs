//! The peer network: real nodes on loopback joining by ticket, services found through the DHT,
//! calls across nodes, failover, and each node's local view of the network (events across
//! nodes: `network_events.rs`).

use micro_tests::network::{known_nodes, routes, start as network, wait_until_all_know_each_other};
use micro_tests::{TestNode, eventually};
use serde_json::Value;
use std::collections::BTreeSet;

/// The ids of the peers `node` checks and finds answering.
fn healthy_peers(node: &TestNode) -> BTreeSet<String> {
    node.get_json("/api/network/nodes")
        .as_array()
        .expect("a list")
        .iter()
        .filter(|n| n["self"] == false && n["healthy"] == true)
        .map(|n| n["node"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn five_nodes_find_and_call_a_service_wherever_it_runs() {
    let nodes = network(5);
    wait_until_all_know_each_other(&nodes);
    let owner = &nodes[2];
    owner.deploy("hello", "hello");
    let owner_id = owner.id();
    for node in &nodes {
        eventually("every node to find the service", || {
            let services = node.get_json("/api/network/services?service=hello");
            (services[0]["nodes"][0]["node"] == owner_id.as_str()).then_some(())
        });
    }
    // Found once, the service is in the CLI's listing of what the node knows, and the gateway
    // answers for it.
    let far = &nodes[4];
    let listing = far.cli_ok(&["network", "services"]);
    assert!(
        listing.contains("hello") && listing.contains("greet") && listing.contains("local view"),
        "{listing}"
    );
    // Named, a service is looked up in the network now.
    let found = far.get_json("/api/network/services?service=hello");
    assert_eq!(found[0]["name"], "hello", "{found}");
    assert_eq!(found[0]["nodes"][0]["node"], owner_id.as_str(), "{found}");
    assert_eq!(
        far.get_json("/api/network/services?service=nobody"),
        serde_json::json!([])
    );
    let named = far.cli_ok(&["network", "services", "hello"]);
    assert!(named.contains(&owner_id[..10]), "{named}");
    let nobody = far.cli_ok(&["network", "services", "nobody"]);
    assert!(nobody.contains("no node serves nobody"), "{nobody}");
    let (status, body) = far.post_json("/hello/greet", r#"{"name":"net"}"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "Hello, net!");
    let out = far.cli_ok(&["call", "hello", "greet", r#"{"name":"cli"}"#]);
    assert!(out.contains("Hello, cli!"), "{out}");
    // The callee sees the calling node's authenticated id.
    let (status, who) = far.post_json("/hello/whoami", "");
    assert_eq!(status, 200, "{who}");
    assert_eq!(who["node"], far.id().as_str());
    // A method it does not have, and a service nobody serves, say so.
    let (status, body) = far.post_json("/hello/nope", "{}");
    assert_eq!(status, 404, "{body}");
    let (status, body) = far.post_json("/nobody/greet", "{}");
    assert_eq!(status, 404, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("network"),
        "{body}"
    );
    // Listings for people and programs: the far node's view holds every node of so small a
    // network, the owner with the service it found there.
    let nodes_json: Value =
        serde_json::from_str(&far.cli_ok(&["network", "nodes", "--json"])).expect("JSON");
    assert_eq!(nodes_json.as_array().unwrap().len(), 5, "{nodes_json}");
    let owner_row = nodes_json
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == owner_id.as_str())
        .expect("the owner in the far node's view");
    assert_eq!(
        owner_row["services"],
        serde_json::json!(["hello"]),
        "{owner_row}"
    );
    let routes_out = far.cli_ok(&["network", "routes", "hello"]);
    assert!(routes_out.contains(&owner_id[..10]), "{routes_out}");
    let dot = far.cli_ok(&["network", "graph", "--dot"]);
    assert!(
        dot.starts_with("graph micro {") && dot.contains("--"),
        "{dot}"
    );
    // The graph is the far node and the peers it checks (at least the two it joined through).
    let graph: Value =
        serde_json::from_str(&far.cli_ok(&["network", "graph", "--json"])).expect("JSON");
    let in_graph: BTreeSet<&str> = graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["node"].as_str())
        .collect();
    for joined in [&nodes[0], &nodes[3], far] {
        assert!(in_graph.contains(joined.id().as_str()), "{graph}");
    }
    // The WIT is fetched from the serving node on demand.
    let described = far.cli_ok(&["describe", "hello"]);
    assert!(described.contains("micro:network"), "{described}");
}

#[test]
fn a_killed_node_loses_its_routes_and_calls_fail_over_to_a_replica() {
    let mut nodes = network(3);
    wait_until_all_know_each_other(&nodes);
    nodes[1].deploy("hello", "hello");
    nodes[2].deploy("hello", "hello");
    let mut dying = nodes.remove(1);
    let caller = &nodes[0];
    eventually("two routes to hello", || {
        (routes(caller, "hello").len() == 2).then_some(())
    });
    let (status, _) = caller.post_json("/hello/greet", r#"{"name":"a"}"#);
    assert_eq!(status, 200);
    let dead = dying.id();
    let replica = nodes[1].id();
    dying.crash();
    // Every call succeeds: a route to the dead node fails over to the replica.
    for i in 0..20 {
        let (status, body) = caller.post_json("/hello/greet", &format!(r#"{{"name":"{i}"}}"#));
        assert_eq!(status, 200, "call {i} after the kill: {body}");
    }
    eventually("the dead node's route to go", || {
        (routes(caller, "hello") == vec![replica.clone()]).then_some(())
    });
    eventually("the dead node to leave the peers the caller checks", || {
        (!healthy_peers(caller).contains(&dead)).then_some(())
    });
}

#[test]
fn a_caller_that_knew_only_the_dead_provider_finds_the_other_one() {
    let mut nodes = network(3);
    wait_until_all_know_each_other(&nodes);
    nodes[1].deploy("hello", "hello");
    // The caller's first call caches the one provider there is.
    eventually("a call to hello", || {
        (nodes[0].post_json("/hello/greet", r#"{"name":"a"}"#).0 == 200).then_some(())
    });
    nodes[2].deploy("hello", "hello");
    // The second provider is in the DHT (seen from the first provider's side), while the
    // caller's cache, fresh for a minute, still names the first one only.
    let second = nodes[2].id();
    eventually("the second provider in the DHT", || {
        routes(&nodes[1], "hello").contains(&second).then_some(())
    });
    let mut dying = nodes.remove(1);
    dying.crash();
    let (status, body) = nodes[0].post_json("/hello/greet", r#"{"name":"b"}"#);
    assert_eq!(status, 200, "the call after the kill: {body}");
    let failovers = nodes[0].get_json("/api/network")["stats"]["failovers"].as_u64();
    assert!(failovers >= Some(1), "counted as a failover: {failovers:?}");
}

#[test]
fn a_call_in_flight_to_a_node_that_dies_is_found_out_by_ping() {
    let mut nodes = network(2);
    wait_until_all_know_each_other(&nodes);
    nodes[1].deploy("hostile", "hostile");
    // The caller routes to it before the call that must reach it (a call made before the
    // provide lands is a plain 404).
    eventually("the route to hostile", || {
        (!routes(&nodes[0], "hostile").is_empty()).then_some(())
    });
    let url = nodes[0].url.clone();
    // A call that spins on the far node until its deadline.
    let call = std::thread::spawn(move || {
        let mut r = micro_tests::agent()
            .post(format!("{url}/hostile/spin"))
            .send("null")
            .unwrap();
        let status = r.status().as_u16();
        (status, r.body_mut().read_to_string().unwrap_or_default())
    });
    eventually("the call running on the far node", || {
        let load = nodes[1].get_json("/api/node")["load"].as_u64()?;
        (load >= 1).then_some(())
    });
    let mut dying = nodes.remove(1);
    dying.crash();
    let (status, body) = call.join().unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("stopped answering"), "{body}");
    let lost = nodes[0].get_json("/api/network")["stats"]["calls_lost_in_flight"].as_u64();
    assert_eq!(lost, Some(1), "found out by the ping, not the heartbeat");
}

#[test]
fn a_node_with_three_hundred_services_is_routable_for_every_one() {
    // A node's record used to carry all its services and stopped fitting a gossip message
    // past ~40; entries in the DHT are one per name.
    let nodes = network(3);
    wait_until_all_know_each_other(&nodes);
    let wasm = std::fs::read(micro_tests::component("hello")).unwrap();
    let host = &nodes[1];
    for i in 0..300 {
        let mut r = micro_tests::agent()
            .put(format!("{}/api/services/s{i}", host.url))
            .send(&wasm[..])
            .unwrap();
        assert_eq!(
            r.status().as_u16(),
            201,
            "deploying s{i}: {}",
            r.body_mut().read_to_string().unwrap_or_default()
        );
    }
    let caller = &nodes[0];
    for i in [0, 1, 99, 150, 298, 299] {
        eventually(&format!("a call to s{i} from another node"), || {
            let (status, v) = caller.post_json(&format!("/s{i}/greet"), r#"{"name":"n"}"#);
            (status == 200).then_some(v)
        });
    }
    let provided = host.get_json("/api/network")["dht"]["names_provided"].as_u64();
    assert!(provided >= Some(300), "each service provided: {provided:?}");
}

#[test]
fn a_stock_wasi_http_component_answers_through_another_nodes_gateway() {
    let nodes = network(3);
    wait_until_all_know_each_other(&nodes);
    nodes[2].deploy("web", "http-hello");
    let far = &nodes[0];
    let body = eventually("the component through a node without it", || {
        let (status, body) = far.get("/web/some/path?x=1");
        (status == 200).then_some(body)
    });
    assert_eq!(body, "Hello from wasi:http at /some/path?x=1");
    let described = far.get_json("/api/services/web");
    assert_eq!(
        (described["kind"].as_str(), described["node"].as_str()),
        (Some("http"), Some(nodes[2].id().as_str())),
        "relayed to the node that serves it, not copied: {described}"
    );
    // Method, body and headers travel both ways.
    let mut r = micro_tests::agent()
        .post(format!("{}/web/form", far.url))
        .header("x-echo", "ping")
        .send("a body")
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    assert_eq!(header("x-echo").as_deref(), Some("ping"));
    assert_eq!(header("content-type").as_deref(), Some("text/plain"));
    assert_eq!(
        r.body_mut().read_to_string().unwrap(),
        "Hello from wasi:http at /form: POST of 6 bytes: a body"
    );
    // The serving node counted it as a call of its own.
    let served = nodes[2].get_json("/api/services/web")["calls"].as_u64();
    assert!(served >= Some(2), "calls served: {served:?}");
    // A body over the node's limit (4 MiB by default) is refused whole, not cut.
    let (status, body) = far.post("/web/big", vec![b'x'; 5 << 20]);
    assert_eq!(status, 413, "{body}");
    assert_eq!(far.get("/nothing/here").0, 404);
}

#[test]
fn a_stopped_service_is_withdrawn_from_the_network() {
    let nodes = network(2);
    wait_until_all_know_each_other(&nodes);
    nodes[1].deploy("hello", "hello");
    eventually("the route", || {
        (routes(&nodes[0], "hello").len() == 1).then_some(())
    });
    nodes[1].cli_ok(&["stop", "hello"]);
    eventually("the route to go", || {
        routes(&nodes[0], "hello").is_empty().then_some(())
    });
    let (status, _) = nodes[0].post_json("/hello/greet", r#"{"name":"a"}"#);
    assert_eq!(status, 404);
}

/// Bytes of `kind` frames a node counted (`direction` "in" or "out").
fn frame_bytes(node: &TestNode, kind: &str, direction: &str) -> u64 {
    node.get_json("/api/network")["traffic"][kind][direction]
        .as_u64()
        .unwrap_or_else(|| panic!("/api/network counts {kind} frames {direction}"))
}

#[test]
fn frame_bytes_are_counted_by_kind_the_same_on_both_sides_of_a_call() {
    let nodes = network(2);
    wait_until_all_know_each_other(&nodes);
    nodes[1].deploy("hello", "hello");
    eventually("the route", || {
        (routes(&nodes[0], "hello").len() == 1).then_some(())
    });
    let (a, b) = (&nodes[0], &nodes[1]);
    assert_eq!(frame_bytes(a, "call", "out"), 0, "no call was made yet");
    let name = "x".repeat(10_000);
    for _ in 0..3 {
        let (status, v) = a.post_json("/hello/greet", &format!(r#"{{"name":"{name}"}}"#));
        assert_eq!(status, 200, "{v}");
    }
    // Each call's frame carries the 10 kB name there and back.
    let (a_out, a_in) = (frame_bytes(a, "call", "out"), frame_bytes(a, "call", "in"));
    assert!(a_out > 30_000 && a_in > 30_000, "out {a_out}, in {a_in}");
    assert_eq!(frame_bytes(b, "call", "in"), a_out, "what a sent, b read");
    assert_eq!(
        frame_bytes(b, "call", "out"),
        a_in,
        "what b answered, a read"
    );
    assert!(frame_bytes(a, "ping", "out") > 0, "a checks b");
    assert!(a.get_json("/api/network")["connections"].as_u64() >= Some(1));
}

#[test]
fn nodes_on_one_lan_find_each_other_without_tickets() {
    // Multicast DNS on; relays, public lookup and port mapping stay off (no internet here).
    let config = micro_tests::LOOPBACK_NETWORK
        .replace("mdns = false", "mdns = true")
        .replace("bind = \"127.0.0.1:0\"", "bind = \"0.0.0.0:0\"");
    let a = TestNode::new(&config);
    let b = TestNode::new(&config);
    let (a_id, b_id) = (a.id(), b.id());
    eventually("each node to find the other by mDNS", || {
        (known_nodes(&a).contains(&b_id) && known_nodes(&b).contains(&a_id)).then_some(())
    });
    // The owner is told, with how to turn it off.
    let log = a.log();
    assert!(
        log.contains("find and join each other by mDNS") && log.contains("mdns = false"),
        "{log}"
    );
}

#[test]
fn a_node_with_relays_and_public_lookup_on_starts_and_serves_without_internet() {
    // The embedded defaults, minus mDNS (other tests' nodes must not be found by this one).
    let node = TestNode::new("[network]\nmdns = false\n");
    let net = node.get_json("/api/network");
    assert_eq!(net["relays"], true, "{net}");
    assert_eq!(net["public_lookup"], true, "{net}");
    node.deploy("hello", "hello");
    let (status, body) = node.post_json("/hello/greet", r#"{"name":"offline"}"#);
    assert_eq!(status, 200, "{body}");
    // It says once that the internet is out of reach, instead of the lookups' retries.
    let log = eventually("the node to say the internet is not reachable", || {
        let log = node.log();
        log.contains("the internet is not reachable").then_some(log)
    });
    assert_eq!(
        log.matches("the internet is not reachable").count(),
        1,
        "{log}"
    );
    assert!(!log.contains("pkarr") && !log.contains("NXDOMAIN"), "{log}");
    assert!(
        !log.contains('\x1b'),
        "no colour codes in a log file: {log}"
    );
    // A clean stop says nothing alarming.
    #[cfg(unix)]
    {
        let mut node = node;
        assert!(node.stop().success());
        let log = node.log();
        let alarming: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .filter(|l| !l.contains("the internet is not reachable"))
            .collect();
        assert!(log.contains("node stopped") && alarming.is_empty(), "{log}");
    }
}

#[test]
fn identity_is_the_node_id_and_its_key_is_private() {
    let node = TestNode::new("");
    let data = node.dir().join("data");
    let printed = node.cli_ok(&["identity", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(printed.trim(), node.id());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(data.join("node.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the key is readable by its owner only: {mode:o}"
        );
    }
    // The same identity after a restart; a garbage ticket is refused with a clear message.
    let id = node.id();
    let node = node.restart();
    assert_eq!(node.id(), id);
    let elsewhere = node.dir().join("never-made");
    let out = node.cli(&[
        "server",
        "--peer",
        "nonsense",
        "--data-dir",
        elsewhere.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ticket"), "{err}");
    assert!(
        !elsewhere.exists(),
        "nothing is made for a command line that is refused"
    );
}

#[test]
fn a_hostile_service_on_another_node_fails_alone() {
    let config = "[limits]\ncall_timeout_ms = 1500\n";
    let a = TestNode::new(config);
    let b = TestNode::joining(config, &[a.ticket()]);
    let nodes = [a, b];
    wait_until_all_know_each_other(&nodes);
    let [a, b] = &nodes;
    b.deploy("hostile", "hostile");
    b.deploy("hello", "hello");
    eventually("both routes", || {
        (routes(a, "hostile").len() == 1 && routes(a, "hello").len() == 1).then_some(())
    });
    // An infinite loop on B, called through A: a timeout, and both nodes serve on.
    let (status, body) = a.post_json("/hostile/spin", "");
    assert_eq!(status, 504, "{body}");
    let (status, body) = a.post_json("/hostile/trap", "");
    assert_eq!(status, 500, "{body}");
    let (status, body) = a.post_json("/hello/greet", r#"{"name":"after"}"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(b.get_json("/api/health")["status"], "ok");
}

#[test]
fn a_call_pinned_to_a_superseded_version_reaches_it_on_another_node() {
    let nodes = network(2);
    wait_until_all_know_each_other(&nodes);
    // Two versions of `svc` on node 1: hello, then counter (which has no `greet`).
    nodes[1].deploy("svc", "hello");
    nodes[1].deploy("svc", "counter");
    let versions: Value =
        serde_json::from_str(&nodes[1].cli_ok(&["versions", "svc", "--json"])).unwrap();
    let old = versions
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["state"] == "superseded")
        .and_then(|v| v["version"].as_str())
        .expect("a superseded version")
        .to_string();
    eventually("node 0 to route pinned calls to node 1", || {
        (routes(&nodes[0], &format!("svc@{old}")) == [nodes[1].id()]).then_some(())
    });
    // Pinned: the old version answers, from the other node.
    let (status, body) = nodes[0].post_json(&format!("/svc@{old}/greet"), r#"{"name":"Ada"}"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "Hello, Ada!");
    // Unpinned: only the serving version takes calls.
    let (status, _) = nodes[0].post_json("/svc/incr", "{}");
    assert_eq!(status, 200);
    let (status, body) = nodes[0].post_json("/svc/greet", r#"{"name":"Ada"}"#);
    assert_eq!(status, 404, "{body}");
    // A missing method says what the service answers, through another node and pinned too.
    let message = |body: &Value| body["message"].as_str().unwrap_or_default().to_string();
    assert!(
        message(&body).contains("svc has no method \"greet\"")
            && message(&body).contains("it answers get, incr, list"),
        "{body}"
    );
    for node in &nodes {
        let (status, body) = node.post_json(&format!("/svc@{old}/incr"), "{}");
        assert_eq!(status, 404, "{body}");
        assert!(
            message(&body).contains(&format!("svc@{old} has no method \"incr\""))
                && message(&body).contains("it answers greet, whoami"),
            "{body}"
        );
    }
}

#[test]
fn a_component_sees_the_services_of_the_network_through_its_registry() {
    let a = TestNode::new("");
    let b = TestNode::joining("", &[a.ticket()]);
    let nodes = [a, b];
    wait_until_all_know_each_other(&nodes);
    let [a, b] = &nodes;
    a.deploy("hello", "hello");
    b.deploy("hostile", "hostile");
    eventually("B to route hello to A", || {
        (routes(b, "hello") == vec![a.id()]).then_some(())
    });
    // `list`: hello, which only A serves, with A as its node; the component's own service
    // with B and its WIT.
    let (status, list) = b.post_json("/hostile/services", "{}");
    assert_eq!(status, 200, "{list}");
    let find = |name: &str| {
        list.as_array()
            .expect("a list")
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {list}"))
            .clone()
    };
    let hello = find("hello");
    assert_eq!(hello["nodes"], serde_json::json!([a.id()]), "{hello}");
    assert!(
        hello["methods"]
            .as_array()
            .expect("methods")
            .iter()
            .any(|m| m == "greet"),
        "{hello}"
    );
    let own = find("hostile");
    assert_eq!(own["nodes"], serde_json::json!([b.id()]), "{own}");
    assert!(
        own["wit"].as_str().expect("a WIT").contains("handler"),
        "{own}"
    );
    // `lookup`: hello wherever it runs, with its WIT fetched from A; a name nobody serves is
    // none.
    let (status, found) = b.post_json("/hostile/lookup", r#"{"name":"hello"}"#);
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["name"], "hello", "{found}");
    assert_eq!(found["nodes"], serde_json::json!([a.id()]), "{found}");
    assert!(
        found["wit"].as_str().expect("a WIT").contains("handler"),
        "{found}"
    );
    let version = found["version"].as_str().expect("a version");
    let (status, pinned) = b.post_json(
        "/hostile/lookup",
        &format!(r#"{{"name":"hello@{version}"}}"#),
    );
    assert_eq!(status, 200, "{pinned}");
    assert_eq!(pinned["version"], version, "{pinned}");
    let (status, none) = b.post_json("/hostile/lookup", r#"{"name":"nobody"}"#);
    assert_eq!((status, none), (200, Value::Null));
}
