//! Garbage on the wire: a hand-driven iroh endpoint speaks (and misspeaks) the peer protocol
//! to a real node. Every bad frame, stalled stream, unknown protocol, forged or replayed
//! provider entry is refused and counted, and the node keeps serving.

use iroh::endpoint::presets;
use iroh::{Endpoint, EndpointAddr, RelayMode};
use micro_base::identity::Identity;
use micro_net::contact::{EntryBody, FORMAT, WireContact, WireEntry};
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

/// The DHT contact of `key` with the work a node asks (16 bits, the default), reachable at
/// `addrs`; the work's nonce is kept in `dir`.
fn contact(key: &Identity, dir: &std::path::Path, addrs: Vec<std::net::SocketAddr>) -> WireContact {
    let (nonce, _) = micro_net::contact::load_or_solve(dir, key, 16).expect("a key with work");
    WireContact {
        node: *key.public().as_bytes(),
        nonce,
        addrs,
        relay: None,
    }
}

/// Now, in ms since the epoch (the node's clock).
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_millis() as u64
}

/// An entry saying `provider` serves `name` (one method, `greet`), issued at `issued_ms` and
/// living a minute, signed by `signer`.
fn entry(name: &str, provider: &WireContact, issued_ms: u64, signer: &Identity) -> WireEntry {
    EntryBody {
        format: FORMAT,
        name: name.into(),
        provider: provider.clone(),
        version: "v1".into(),
        interface: [0; 8],
        http: false,
        load: 0,
        issued_ms,
        expires_ms: issued_ms + 60_000,
        methods: vec!["greet".into()],
        withdrawn: false,
    }
    .sign(signer)
}

/// A framed DHT request from `from`.
fn dht_frame(
    runtime: &tokio::runtime::Runtime,
    from: &WireContact,
    request: micro_dht::Request<micro_dht::Id, WireEntry>,
) -> Vec<u8> {
    let mut bytes = Vec::new();
    runtime
        .block_on(wire::write_frame(
            &mut bytes,
            &Request::Dht {
                from: from.clone(),
                request,
            },
            &[],
        ))
        .expect("framing");
    bytes
}

/// A request to keep `value` under the key of `name`.
fn add_provider(name: &str, value: WireEntry) -> micro_dht::Request<micro_dht::Id, WireEntry> {
    micro_dht::Request::AddProvider {
        key: micro_net::contact::key_of(name).expect("a service name"),
        value,
    }
}

/// The DHT answer in a reply, or what came instead.
fn dht_response(
    reply: Option<Reply>,
) -> Result<micro_dht::Response<WireContact, WireEntry>, String> {
    match reply {
        Some(Reply::Dht { response, .. }) => Ok(response),
        other => Err(format!("{other:?}")),
    }
}

/// Whether the node took what it was asked to keep.
fn stored(response: &Result<micro_dht::Response<WireContact, WireEntry>, String>) -> bool {
    matches!(response, Ok(micro_dht::Response::Stored))
}

/// Serves the node's pings (counting them in `pings`) and refuses anything else, as a quiet
/// peer would.
fn serve_pings(
    runtime: &tokio::runtime::Runtime,
    ep: &Endpoint,
    pings: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    let server = ep.clone();
    runtime.spawn(async move {
        while let Some(incoming) = server.accept().await {
            let Ok(accepting) = incoming.accept() else {
                continue;
            };
            let Ok(conn) = accepting.await else { continue };
            let pings = pings.clone();
            tokio::spawn(async move {
                while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                    let Ok(Some((request, _))) =
                        wire::read_frame::<_, Request>(&mut recv, 1 << 20).await
                    else {
                        continue;
                    };
                    let reply = match request {
                        Request::Ping => {
                            pings.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            Reply::Pong { load: 0 }
                        }
                        _ => Reply::Refused("test peer".into()),
                    };
                    let _ = wire::write_frame(&mut send, &reply, &[]).await;
                    let _ = send.finish();
                }
            });
        }
    });
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
fn forged_and_replayed_provider_entries_are_refused_and_counted() {
    let node = TestNode::new("");
    let dir = tempfile::tempdir().expect("a temp dir");
    let peer = Identity::load_or_create(dir.path()).expect("a key");
    let other_dir = tempfile::tempdir().expect("a temp dir");
    let other = Identity::load_or_create(other_dir.path()).expect("a key");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let ep = runtime.block_on(endpoint(Some(&peer)));
    let me = contact(&peer, dir.path(), ep.bound_sockets());
    let addr: EndpointAddr = ticket::decode(&node.ticket()).expect("the node's ticket");
    let conn = runtime
        .block_on(ep.connect(addr, wire::RPC_ALPN))
        .expect("connecting");
    let ask =
        |request| dht_response(runtime.block_on(raw(&conn, &dht_frame(&runtime, &me, request))));
    let now = now_ms();
    // Genuine (the newest), then an older one of the same provider (a replay), then one
    // naming this peer but signed by another key (a forgery).
    let genuine = ask(add_provider("svc", entry("svc", &me, now, &peer)));
    assert!(stored(&genuine), "{genuine:?}");
    let replayed = ask(add_provider("svc", entry("svc", &me, now - 10_000, &peer)));
    assert!(stored(&replayed), "taken, not kept: {replayed:?}");
    let forged = ask(add_provider("svc", entry("svc", &me, now + 1, &other)));
    assert!(
        matches!(&forged, Err(why) if why.contains("bad signature")),
        "{forged:?}"
    );
    assert_eq!(stat(&node, "bad_entries"), 1);
    // A contact without the work a key must carry is refused before anything is looked at.
    let lazy = WireContact {
        nonce: me.nonce.wrapping_add(1),
        ..me.clone()
    };
    let no_work = dht_response(runtime.block_on(raw(
        &conn,
        &dht_frame(
            &runtime,
            &lazy,
            micro_dht::Request::GetProviders {
                key: micro_net::contact::key_of("svc").expect("a name"),
            },
        ),
    )));
    assert!(
        matches!(&no_work, Err(why) if why.contains("work")),
        "{no_work:?}"
    );
    // What the node keeps is the genuine entry, not the replay nor the forgery.
    let held = ask(micro_dht::Request::GetProviders {
        key: micro_net::contact::key_of("svc").expect("a name"),
    });
    let Ok(micro_dht::Response::Providers { providers, .. }) = held else {
        panic!("no providers: {held:?}");
    };
    assert_eq!(providers.len(), 1, "{providers:?}");
    assert_eq!(providers[0], entry("svc", &me, now, &peer));
    // The node's own routes name the peer from that entry.
    let routes = node.get_json("/api/network/routes?service=svc");
    assert_eq!(
        routes[0]["routes"][0]["node"],
        peer.public().to_string().as_str(),
        "{routes}"
    );
    assert_eq!(node.get_json("/api/health")["status"], "ok");
    drop(node);
    runtime.block_on(ep.close());
}

#[test]
fn a_peer_that_sends_forged_entries_is_throttled_then_refused() {
    // Observations reach governance every 50 ms.
    let node = TestNode::new("[governance]\nobserve_interval_ms = 50\n");
    let dir = tempfile::tempdir().expect("a temp dir");
    let rogue = Identity::load_or_create(dir.path()).expect("a key");
    let other_dir = tempfile::tempdir().expect("a temp dir");
    let other = Identity::load_or_create(other_dir.path()).expect("a key");
    let addr: EndpointAddr = ticket::decode(&node.ticket()).expect("the node's ticket");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let ep = runtime.block_on(endpoint(Some(&rogue)));
    let me = contact(&rogue, dir.path(), ep.bound_sockets());
    let conn = runtime
        .block_on(ep.connect(addr.clone(), wire::RPC_ALPN))
        .expect("connecting");
    let frame = |request: &Request| {
        let mut bytes = Vec::new();
        runtime
            .block_on(wire::write_frame(&mut bytes, request, &[]))
            .expect("framing");
        bytes
    };
    // An entry in the rogue's name, signed by another key: it does not verify, and the rogue
    // handed it over itself, so it is to blame.
    let forged = entry("svc", &me, now_ms(), &other);
    let store = |value: WireEntry| {
        runtime.block_on(raw(
            &conn,
            &dht_frame(&runtime, &me, add_provider("svc", value)),
        ))
    };
    let ping = || runtime.block_on(raw(&conn, &frame(&Request::Ping)));
    // Admitted at first: a fresh key starts at the base reputation, and its own genuine
    // entry is kept.
    assert!(matches!(ping(), Some(Reply::Pong { .. })));
    let taken = dht_response(store(entry("svc", &me, now_ms(), &rogue)));
    assert!(stored(&taken), "{taken:?}");
    let first = store(forged.clone());
    assert!(
        matches!(&first, Some(Reply::Refused(why)) if why.contains("bad signature")),
        "first forgery: {first:?}"
    );
    // Once governance hears of the forgery, the rogue is below the base level: throttled.
    // Pings (harmless, but still requests) soon meet the rate limit.
    let throttled = eventually("the rogue to be throttled", || match ping() {
        Some(Reply::Refused(why)) => Some(why),
        _ => None,
    });
    assert!(
        throttled.contains("rate limited by governance") && throttled.contains("throttled"),
        "{throttled}"
    );
    // More forgeries: refused outright, then not even let in.
    let refused = eventually("the rogue to be refused", || match store(forged.clone()) {
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
    assert!(stat(&node, "bad_entries") >= 1);
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
    // Never provided in the DHT: the network does not learn of it.
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
fn entries_naming_a_victims_address_never_make_the_node_dial_it() {
    // Once, every node pinged every record's addresses each heartbeat: a thousand fake records
    // naming one address turned the network into an amplifier against it. Provider entries
    // are dialled when a call needs their provider, never otherwise.
    const FAKES: usize = 100;
    let socket = || {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("a socket");
        let addr = s.local_addr().expect("its address");
        (s, addr)
    };
    let (victim, victim_addr) = socket();
    victim.set_nonblocking(true).expect("non-blocking");
    // One more entry names a socket of its own: the control that a dial is seen.
    let (control, control_addr) = socket();
    control
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    let keys = tempfile::tempdir().expect("a temp dir");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    // The rogue is a peer the node joins through, so the node pings it every heartbeat: the
    // pings it counts say how many heartbeats passed.
    let rogue_dir = keys.path().join("rogue");
    std::fs::create_dir_all(&rogue_dir).expect("a key dir");
    let rogue = Identity::load_or_create(&rogue_dir).expect("a key");
    let ep = runtime.block_on(endpoint(Some(&rogue)));
    let pings = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    serve_pings(&runtime, &ep, pings.clone());
    let rogue_addr = EndpointAddr::new(rogue.public()).with_ip_addr(ep.bound_sockets()[0]);
    let node = TestNode::joining("", &[ticket::encode(&rogue_addr)]);
    let me = contact(&rogue, &rogue_dir, ep.bound_sockets());
    let addr: EndpointAddr = ticket::decode(&node.ticket()).expect("the node's ticket");
    let conn = runtime
        .block_on(ep.connect(addr, wire::RPC_ALPN))
        .expect("connecting");
    let fakes: Vec<Identity> = (0..=FAKES)
        .map(|i| {
            let dir = keys.path().join(i.to_string());
            std::fs::create_dir_all(&dir).expect("a key dir");
            Identity::load_or_create(&dir).expect("a key")
        })
        .collect();
    let now = now_ms();
    for (i, key) in fakes.iter().enumerate() {
        // Genuine entries (each signed by its own key, with its work) naming the victim.
        let dir = keys.path().join(i.to_string());
        let target = if i == FAKES {
            control_addr
        } else {
            victim_addr
        };
        let provider = contact(key, &dir, vec![target]);
        let name = format!("svc-{i}");
        let reply = dht_response(runtime.block_on(raw(
            &conn,
            &dht_frame(
                &runtime,
                &me,
                add_provider(&name, entry(&name, &provider, now, key)),
            ),
        )));
        assert!(stored(&reply), "entry {i}: {reply:?}");
    }
    assert_eq!(
        node.get_json("/api/network")["dht"]["entries_held"],
        FAKES + 1,
        "the node kept every fake entry"
    );
    // The sockets do see a dial when there is one: a call to the control's service sends its
    // socket QUIC's first packets (and fails).
    let (status, _) = node.post(&format!("/svc-{FAKES}/greet"), "{}");
    assert_ne!(status, 200, "a fake provider answered a call");
    let mut buf = [0u8; 2048];
    assert!(
        control.recv_from(&mut buf).is_ok(),
        "asked to, the node dials the address an entry gives"
    );
    // Twenty heartbeats pass (the node pings the rogue at each)...
    let from = pings.load(std::sync::atomic::Ordering::Relaxed);
    eventually("twenty heartbeats", || {
        (pings.load(std::sync::atomic::Ordering::Relaxed) >= from + 20).then_some(())
    });
    // ...and not one packet went to the address the entries named.
    match victim.recv_from(&mut buf) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the node sent the victim's address a packet: {other:?}"),
    }
    assert_eq!(stat(&node, "bad_entries"), 0);
    drop(node);
    runtime.block_on(ep.close());
}
