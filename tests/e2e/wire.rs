//! Garbage on the wire: a hand-driven iroh endpoint speaks (and misspeaks) the peer protocol
//! to a real node. Every bad frame, stalled stream, unknown protocol, forged or replayed record
//! is refused and counted, and the node keeps serving.

use iroh::endpoint::presets;
use iroh::{Endpoint, EndpointAddr, RelayMode};
use micro_base::identity::Identity;
use micro_net::records::NodeRecord;
use micro_net::ticket;
use micro_net::wire::{self, CallHeader, Reply, Request};
use micro_tests::{TestNode, eventually};
use std::time::Duration;

/// A loopback-only endpoint speaking `micro/rpc/1`, with `key` or a fresh one.
async fn endpoint(key: Option<&Identity>) -> Endpoint {
    let mut builder = Endpoint::builder(presets::Minimal);
    if let Some(key) = key {
        builder = builder.secret_key(key.secret().clone());
    }
    builder
        .relay_mode(RelayMode::Disabled)
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0")
        .expect("a loopback address")
        .alpns(vec![wire::RPC_ALPN.to_vec()])
        .bind()
        .await
        .expect("binding a test endpoint")
}

/// Sends raw bytes on a new stream and reads the node's reply frame, if any.
async fn raw(conn: &iroh::endpoint::Connection, bytes: &[u8]) -> Option<Reply> {
    raw_with_payload(conn, bytes).await.map(|(r, _)| r)
}

async fn raw_with_payload(
    conn: &iroh::endpoint::Connection,
    bytes: &[u8],
) -> Option<(Reply, Vec<u8>)> {
    let (mut send, mut recv) = conn.open_bi().await.expect("a stream");
    send.write_all(bytes).await.expect("writing");
    let _ = send.finish();
    wire::read_frame::<_, Reply>(&mut recv, 1 << 20)
        .await
        .ok()
        .flatten()
}

/// A framed call of `service`.whoami with an empty body.
async fn whoami_frame(service: &str) -> Vec<u8> {
    let header = CallHeader {
        service: service.into(),
        method: "whoami".into(),
        content_type: "application/json".into(),
        metadata: vec![],
        caller_service: None,
        depth: 0,
        timeout_ms: 5000,
        token: None,
    };
    let mut frame = Vec::new();
    wire::write_frame(&mut frame, &Request::Call(header), b"")
        .await
        .expect("framing");
    frame
}

/// A record of node `key` reachable at `ep`, serving nothing.
fn bare_record(key: &Identity, seq: u64, ep: &Endpoint) -> NodeRecord {
    NodeRecord {
        node: *key.public().as_bytes(),
        seq,
        issued_ms: 0,
        ttl_ms: 60_000,
        addrs: ep.bound_sockets(),
        relay: None,
        services: vec![],
        links: vec![],
        load: 0,
        leaving: false,
        governance: String::new(),
        reports: vec![],
        placements: vec![],
    }
}

fn stat(node: &TestNode, name: &str) -> u64 {
    node.get_json("/api/network")["stats"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no stat {name}"))
}

#[test]
fn garbage_frames_stalled_streams_and_unknown_protocols_are_refused_and_counted() {
    let node = TestNode::new("");
    node.deploy("hello", "hello");
    let addr: EndpointAddr = ticket::decode(&node.ticket()).expect("the node's ticket");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let ep = endpoint(None).await;
        // An unknown protocol: the handshake is refused.
        let refused =
            tokio::time::timeout(Duration::from_secs(10), ep.connect(addr.clone(), b"nope/1"))
                .await
                .expect("an answer within 10 s");
        assert!(
            refused.is_err(),
            "a connection for an unknown ALPN was accepted"
        );

        let conn = ep
            .connect(addr.clone(), wire::RPC_ALPN)
            .await
            .expect("connecting");
        // A header that is not a request.
        let reply = raw(&conn, &[0, 0, 0, 3, 0xff, 0xff, 0xff, 0, 0, 0, 0]).await;
        assert!(
            matches!(reply, Some(Reply::Refused(ref why)) if why.contains("malformed")),
            "{reply:?}"
        );
        // A frame claiming 4 GiB.
        let reply = raw(&conn, &[0xff, 0xff, 0xff, 0xff]).await;
        assert!(
            matches!(reply, Some(Reply::Refused(ref why)) if why.contains("exceeds")),
            "{reply:?}"
        );
        // A stream that starts a frame and never finishes it: the node gives up on it.
        let (mut stalled, _keep) = conn.open_bi().await.expect("a stream");
        stalled.write_all(&[0, 0]).await.expect("writing");
        // The same connection still carries good requests: a real call.
        let frame = whoami_frame("hello").await;
        let reply = raw_with_payload(&conn, &frame).await;
        let Some((Reply::Called(Ok(_), _), payload)) = reply else {
            panic!("a good call after the garbage failed: {reply:?}");
        };
        let who: serde_json::Value = serde_json::from_slice(&payload).expect("JSON");
        // The callee sees the caller's authenticated endpoint id.
        assert_eq!(who["node"], ep.id().to_string().as_str(), "{who}");
        // The stalled stream stays open on this side until the node has given up on it.
        tokio::task::block_in_place(|| {
            eventually("the stalled stream to be dropped", || {
                (stat(&node, "stalled_streams") >= 1).then_some(())
            })
        });
        drop(stalled);
    });
    assert!(stat(&node, "bad_frames") >= 1);
    assert!(stat(&node, "oversized_frames") >= 1);
    eventually("the unknown protocol to be counted", || {
        (stat(&node, "refused_connections") >= 1).then_some(())
    });
    // The node serves on.
    let (status, body) = node.post_json("/hello/whoami", "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(node.get_json("/api/health")["status"], "ok");
}

#[test]
fn forged_and_replayed_records_are_refused_and_counted() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let fake = Identity::load_or_create(dir.path()).expect("a key");
    let other_dir = tempfile::tempdir().expect("a temp dir");
    let other = Identity::load_or_create(other_dir.path()).expect("a key");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let ep = runtime.block_on(endpoint(Some(&fake)));
    let record = |seq: u64| bare_record(&fake, seq, &ep);
    // Good (seq 10), then an older one (a replay), then one naming this peer but signed by
    // another key (a forgery).
    let answers = vec![
        (record(10).sign(&fake), 0),
        (record(5).sign(&fake), 0),
        (record(11).sign(&other), 0),
    ];
    // Serve the node's pings and syncs as a peer would.
    let server = ep.clone();
    runtime.spawn(async move {
        while let Some(incoming) = server.accept().await {
            let Ok(accepting) = incoming.accept() else {
                continue;
            };
            let Ok(conn) = accepting.await else { continue };
            let answers = answers.clone();
            tokio::spawn(async move {
                while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                    let Ok(Some((request, _))) =
                        wire::read_frame::<_, Request>(&mut recv, 1 << 20).await
                    else {
                        continue;
                    };
                    let reply = match request {
                        Request::Ping => Reply::Pong { load: 0 },
                        Request::Sync { .. } => Reply::Records(answers.clone()),
                        _ => Reply::Refused("test peer".into()),
                    };
                    let _ = wire::write_frame(&mut send, &reply, &[]).await;
                    let _ = send.finish();
                }
            });
        }
    });
    let addr = EndpointAddr::new(fake.public()).with_ip_addr(ep.bound_sockets()[0]);
    let node = TestNode::joining("", &[ticket::encode(&addr)]);
    eventually("the forged record to be refused", || {
        (stat(&node, "bad_records") >= 1).then_some(())
    });
    eventually("the replayed record to be refused", || {
        (stat(&node, "replayed_records") >= 1).then_some(())
    });
    // The genuine record was taken: the peer is listed, at sequence 10.
    let nodes = node.get_json("/api/network/nodes");
    let listed = nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == fake.public().to_string().as_str())
        .cloned()
        .expect("the test peer is listed");
    assert_eq!(listed["record_seq"], 10, "{listed}");
    assert_eq!(node.get_json("/api/health")["status"], "ok");
    drop(node);
    runtime.block_on(ep.close());
}

#[test]
fn a_peer_that_sends_bad_records_is_throttled_then_refused() {
    // Observations reach governance every 50 ms.
    let node = TestNode::new("[governance]\nobserve_interval_ms = 50\n");
    let dir = tempfile::tempdir().expect("a temp dir");
    let rogue = Identity::load_or_create(dir.path()).expect("a key");
    let other_dir = tempfile::tempdir().expect("a temp dir");
    let other = Identity::load_or_create(other_dir.path()).expect("a key");
    let addr: EndpointAddr = ticket::decode(&node.ticket()).expect("the node's ticket");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let ep = runtime.block_on(endpoint(Some(&rogue)));
    let conn = runtime
        .block_on(ep.connect(addr.clone(), wire::RPC_ALPN))
        .expect("connecting");
    // A record in the rogue's name, signed by another key, spoofing a report that the rogue is
    // fully trusted: it does not verify, and the rogue handed it over itself, so it is to blame.
    let genuine = bare_record(&rogue, 1, &ep).sign(&rogue);
    let mut spoofed = bare_record(&rogue, 2, &ep);
    spoofed.reports = vec![micro_net::records::Report {
        node: *rogue.public().as_bytes(),
        score: 10_000,
    }];
    let forged = spoofed.sign(&other);
    let frame = |request: &Request| {
        let mut bytes = Vec::new();
        runtime
            .block_on(wire::write_frame(&mut bytes, request, &[]))
            .expect("framing");
        bytes
    };
    let push = || {
        let bytes = frame(&Request::Push {
            record: forged.clone(),
        });
        runtime.block_on(raw(&conn, &bytes))
    };
    let ping = || runtime.block_on(raw(&conn, &frame(&Request::Ping)));
    let has_record = || {
        node.get_json("/api/network/nodes")
            .as_array()
            .expect("a list")
            .iter()
            .any(|n| n["node"] == rogue.public().to_string().as_str() && n["record_seq"].is_u64())
    };
    // Admitted at first: a fresh key starts at the base reputation, and its own genuine
    // record is taken.
    assert!(matches!(ping(), Some(Reply::Pong { .. })));
    let taken = runtime.block_on(raw(&conn, &frame(&Request::Push { record: genuine })));
    assert!(matches!(taken, Some(Reply::Records(_))), "{taken:?}");
    assert!(has_record(), "the rogue's genuine record was not taken");
    assert!(matches!(push(), Some(Reply::Records(_))), "first push");
    // Once governance hears of the bad record, the rogue is below the base level: throttled.
    // Pings (harmless, but still requests) soon meet the rate limit.
    let throttled = eventually("the rogue to be throttled", || match ping() {
        Some(Reply::Refused(why)) => Some(why),
        _ => None,
    });
    assert!(
        throttled.contains("rate limited by governance") && throttled.contains("throttled"),
        "{throttled}"
    );
    // More bad records: refused outright, then not even let in.
    let refused = eventually("the rogue to be refused", || match push() {
        Some(Reply::Refused(why)) if why.contains("denied") => Some(why),
        None => Some("connection closed".to_string()),
        _ => None,
    });
    // A new connection is closed as soon as it is made: nothing is answered on it.
    let ping_frame = frame(&Request::Ping);
    let answered = runtime.block_on(async {
        let conn = ep.connect(addr, wire::RPC_ALPN).await.ok()?;
        let (mut send, mut recv) = conn.open_bi().await.ok()?;
        send.write_all(&ping_frame).await.ok()?;
        let _ = send.finish();
        wire::read_frame::<_, Reply>(&mut recv, 1 << 20)
            .await
            .ok()
            .flatten()
    });
    assert!(
        answered.is_none(),
        "a refused peer was answered: {answered:?} ({refused})"
    );
    let log = node.get_json("/api/governance/log");
    let denial = log
        .as_array()
        .expect("a log")
        .iter()
        .find(|d| d["kind"] == "admit-peer" && d["subject"] == rogue.public().to_string().as_str())
        .cloned()
        .expect("an admission decision about the rogue");
    assert_eq!(denial["allow"], false, "{denial}");
    assert!(
        denial["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("below the admission floor"),
        "{denial}"
    );
    assert!(stat(&node, "throttled") >= 1);
    assert!(stat(&node, "refused_peers") >= 1);
    // Nothing is routed to a refused peer: its record is gone.
    assert!(!has_record(), "a refused peer's record is still held");
    assert!(stat(&node, "bad_records") >= 3);
    // The node serves the rest as before.
    node.deploy("hello", "hello");
    assert_eq!(node.post("/hello/greet", r#"{"name":"Ada"}"#).0, 200);
    drop(node);
    runtime.block_on(ep.close());
}

#[test]
fn a_private_service_answers_its_own_node_only() {
    let node = TestNode::new("");
    let hello = micro_tests::component("hello");
    let path = hello.to_str().expect("a UTF-8 path");
    node.cli_ok(&["run", path, "--name", "secret", "--private"]);
    node.deploy("open", "hello");
    let listed = node.get_json("/api/services");
    let secret = listed
        .as_array()
        .expect("a list")
        .iter()
        .find(|s| s["name"] == "secret")
        .cloned()
        .expect("secret listed");
    assert_eq!(secret["private"], true, "{secret}");
    // Its own node calls it.
    let (status, body) = node.post_json("/secret/whoami", "");
    assert_eq!(status, 200, "{body}");
    // Another node calling it directly (it is not announced, so it has to know the name) is
    // refused by the default governance; a public service on the same node answers.
    let addr: EndpointAddr = ticket::decode(&node.ticket()).expect("the node's ticket");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let ep = endpoint(None).await;
        let conn = ep.connect(addr, wire::RPC_ALPN).await.expect("connecting");
        let refused = raw(&conn, &whoami_frame("secret").await).await;
        let Some(Reply::Called(Err(e), _)) = refused else {
            panic!("a remote call to a private service was not refused: {refused:?}");
        };
        let e = format!("{e:?}");
        assert!(e.contains("private to its node"), "{e}");
        let open = raw(&conn, &whoami_frame("open").await).await;
        assert!(matches!(open, Some(Reply::Called(Ok(_), _))), "{open:?}");
        ep.close().await;
    });
    // Not in the node's record: the network does not learn of it.
    let other = TestNode::joining("", &[node.ticket()]);
    eventually("the other node to learn the public service", || {
        let routes = other.get_json("/api/network/routes?service=open");
        (routes[0]["routes"][0]["node"] == node.id().as_str()).then_some(())
    });
    let (status, body) = other.post_json("/secret/whoami", "");
    assert_eq!(status, 404, "{body}");
}

/// A receipt from `payer` to `payee`, signed by `signer`.
fn receipt(
    payer: &Identity,
    payee: &str,
    cumulative: u64,
    counter: u64,
    signer: &Identity,
) -> wire::WireReceipt {
    let payer_id = payer.public().to_string();
    let text = format!("micro-receipt/1\n{payer_id}\n{payee}\n{cumulative}\n{counter}");
    wire::WireReceipt {
        payer: payer_id,
        payee: payee.to_string(),
        cumulative,
        counter,
        signature: signer.sign(text.as_bytes()).to_vec(),
    }
}

#[test]
fn replayed_out_of_order_foreign_and_forged_receipts_are_refused_and_forgery_counts_against_the_sender()
 {
    use micro_core::system::ledger::accounts::ReceiptRefusal;
    let node = TestNode::new("[governance]\nobserve_interval_ms = 50\n");
    let me = node.id();
    let dir = tempfile::tempdir().expect("a temp dir");
    let peer = Identity::load_or_create(dir.path()).expect("a key");
    let other_dir = tempfile::tempdir().expect("a temp dir");
    let other = Identity::load_or_create(other_dir.path()).expect("a key");
    let addr: EndpointAddr = ticket::decode(&node.ticket()).expect("the node's ticket");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let ep = runtime.block_on(endpoint(Some(&peer)));
    let conn = runtime
        .block_on(ep.connect(addr, wire::RPC_ALPN))
        .expect("connecting");
    let settle = |receipt: wire::WireReceipt| {
        let mut bytes = Vec::new();
        runtime
            .block_on(wire::write_frame(
                &mut bytes,
                &Request::Settle { receipt },
                &[],
            ))
            .expect("framing");
        match runtime.block_on(raw(&conn, &bytes)) {
            Some(Reply::Settled(outcome)) => outcome,
            other => panic!("not a settle answer: {other:?}"),
        }
    };
    // A genuine receipt is taken; the next one credits only what it adds.
    assert_eq!(settle(receipt(&peer, &me, 5000, 1, &peer)).ok(), Some(5000));
    assert_eq!(settle(receipt(&peer, &me, 7000, 2, &peer)).ok(), Some(2000));
    // The same one again, an older one, and a newer counter with a smaller amount.
    for (cumulative, counter) in [(7000, 2), (5000, 1), (6000, 3)] {
        let outcome = settle(receipt(&peer, &me, cumulative, counter, &peer));
        assert!(
            matches!(outcome, Err(ReceiptRefusal::Replayed(ref why)) if why.contains("not newer")),
            "{outcome:?}"
        );
    }
    // Another payer's receipt, and one to another node.
    let foreign = settle(receipt(&other, &me, 100, 1, &other));
    assert!(
        matches!(foreign, Err(ReceiptRefusal::Refused(ref why)) if why.contains("only its payer")),
        "{foreign:?}"
    );
    let elsewhere = settle(receipt(&peer, &other.public().to_string(), 9000, 4, &peer));
    assert!(
        matches!(elsewhere, Err(ReceiptRefusal::Refused(ref why)) if why.contains("handed to")),
        "{elsewhere:?}"
    );
    // Where the node stands with the peer: the newest genuine receipt only.
    let balances = node.get_json("/api/ledger/balances");
    let account = balances["accounts"]
        .as_array()
        .expect("a list")
        .iter()
        .find(|a| a["account"] == peer.public().to_string().as_str())
        .cloned()
        .unwrap_or_else(|| panic!("no account of the peer: {balances}"));
    assert_eq!(account["paid"], 7000, "{account}");
    assert_eq!(account["counter_in"], 2, "{account}");
    // A receipt whose signature is not its payer's: refused, and it counts against the peer
    // that handed it over, which is soon throttled.
    let forged = settle(receipt(&peer, &me, 99_000, 5, &other));
    assert!(
        matches!(forged, Err(ReceiptRefusal::BadSignature(ref why)) if why.contains("not signed by its payer")),
        "{forged:?}"
    );
    let ping = || {
        let mut bytes = Vec::new();
        runtime
            .block_on(wire::write_frame(&mut bytes, &Request::Ping, &[]))
            .expect("framing");
        runtime.block_on(raw(&conn, &bytes))
    };
    let throttled = eventually("the peer to be throttled", || match ping() {
        Some(Reply::Refused(why)) => Some(why),
        _ => None,
    });
    assert!(throttled.contains("throttled"), "{throttled}");
    assert_eq!(stat(&node, "receipts_taken"), 2);
    assert_eq!(stat(&node, "receipts_replayed"), 3);
    assert_eq!(stat(&node, "receipts_forged"), 1);
    assert_eq!(
        stat(&node, "receipts_refused"),
        2,
        "{}",
        node.get_json("/api/network")["stats"]
    );
    assert_eq!(
        node.get_json("/api/ledger/balances")["accounts"]
            .as_array()
            .expect("a list")
            .iter()
            .find(|a| a["account"] == peer.public().to_string().as_str())
            .map(|a| a["paid"].clone()),
        Some(serde_json::json!(7000))
    );
}

#[test]
fn records_naming_a_victims_address_never_make_the_node_dial_it() {
    // Once, every node pinged every record's addresses each heartbeat: a thousand fake records
    // naming one address turned the network into an amplifier against it.
    const FAKES: usize = 100;
    let node = TestNode::new("");
    let socket = || {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("a socket");
        let addr = s.local_addr().expect("its address");
        (s, addr)
    };
    let (victim, victim_addr) = socket();
    victim.set_nonblocking(true).expect("non-blocking");
    // One more record names a socket of its own: the control that a dial is seen.
    let (control, control_addr) = socket();
    control
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    let keys = tempfile::tempdir().expect("a temp dir");
    let fakes: Vec<Identity> = (0..=FAKES)
        .map(|i| {
            let dir = keys.path().join(i.to_string());
            std::fs::create_dir_all(&dir).expect("a key dir");
            Identity::load_or_create(&dir).expect("a key")
        })
        .collect();
    let addr: EndpointAddr = ticket::decode(&node.ticket()).expect("the node's ticket");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let ep = runtime.block_on(endpoint(None));
    let conn = runtime
        .block_on(ep.connect(addr, wire::RPC_ALPN))
        .expect("connecting");
    for (i, key) in fakes.iter().enumerate() {
        // Genuine records (each signed by its own key) naming the victim, living 5 s.
        let mut record = bare_record(key, 1, &ep);
        record.addrs = vec![if i == FAKES {
            control_addr
        } else {
            victim_addr
        }];
        record.ttl_ms = 5000;
        let mut bytes = Vec::new();
        runtime
            .block_on(wire::write_frame(
                &mut bytes,
                &Request::Push {
                    record: record.sign(key),
                },
                &[],
            ))
            .expect("framing");
        let reply = runtime.block_on(raw(&conn, &bytes));
        assert!(matches!(reply, Some(Reply::Records(_))), "{reply:?}");
    }
    let fake_ids: Vec<String> = fakes.iter().map(|k| k.public().to_string()).collect();
    let held = || {
        node.get_json("/api/network/nodes")
            .as_array()
            .expect("a list")
            .iter()
            .filter(|n| {
                n["node"]
                    .as_str()
                    .is_some_and(|id| fake_ids.iter().any(|f| f == id))
            })
            .count()
    };
    assert_eq!(held(), FAKES + 1, "the node took every fake record");
    // The sockets do see a dial when there is one: the node's owner pinging the control's node
    // by its id sends its socket QUIC's first packets (and the ping fails).
    let (status, _) = node.get(&format!("/api/network/ping/{}?n=1", fake_ids[FAKES]));
    assert_ne!(status, 200, "a fake node answered a ping");
    let mut buf = [0u8; 2048];
    assert!(
        control.recv_from(&mut buf).is_ok(),
        "asked to, the node dials the address it was told"
    );
    // Every heartbeat of the records' whole life passes (250 ms each, 5 s of life)...
    eventually("the fake records to expire", || (held() == 0).then_some(()));
    // ...and not one packet went to the address they named.
    match victim.recv_from(&mut buf) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the node sent the victim's address a packet: {other:?}"),
    }
    assert_eq!(stat(&node, "bad_records"), 0);
}
