//! The ledger's API tokens, on real nodes with the embedded default ledger: issued and signed
//! by a node, checked on any node without asking the issuer, refused with a distinct 401 for
//! each way a token can be bad, refreshed and revoked.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use micro_base::identity::Identity;
use micro_tests::{TestNode, eventually};
use serde_json::{Value, json};

/// Issues a token on `node` (CLI), answering the token and its claims.
fn create(node: &TestNode, args: &[&str]) -> (String, Value) {
    let mut all = vec!["token", "create", "--json"];
    all.extend_from_slice(args);
    let v: Value = serde_json::from_str(&node.cli_ok(&all)).expect("--json is JSON");
    (
        v["token"].as_str().expect("a token").to_string(),
        v["claims"].clone(),
    )
}

/// Checks a token on `node`: the status and the answer.
fn verify(node: &TestNode, body: Value) -> (u16, Value) {
    node.post_json("/api/tokens/verify", &body.to_string())
}

/// The parts of a token: claims bytes, signer, signature bytes.
fn parts(token: &str) -> (Vec<u8>, String, Vec<u8>) {
    let p: Vec<&str> = token.split('.').collect();
    assert_eq!(p.len(), 4, "{token}");
    (
        B64.decode(p[1]).expect("claims"),
        p[2].to_string(),
        B64.decode(p[3]).expect("signature"),
    )
}

/// A token's id, as the node that issued it reads it.
fn parts_id(node: &TestNode, token: &str) -> String {
    let (status, v) = verify(node, json!({ "token": token }));
    assert_eq!(status, 200, "{v}");
    v["id"].as_str().expect("an id").to_string()
}

fn assemble(claims: &[u8], signer: &str, signature: &[u8]) -> String {
    format!(
        "micro1.{}.{signer}.{}",
        B64.encode(claims),
        B64.encode(signature)
    )
}

#[test]
fn tokens_are_issued_checked_anywhere_and_every_bad_one_is_refused_with_its_reason() {
    let a = TestNode::new("");
    let b = TestNode::joining("", &[a.ticket()]);
    let show = a.cli_ok(&["ledger", "show"]);
    assert!(show.starts_with("ledger default "), "{show}");

    let (token, claims) = create(
        &a,
        &["--account", "ada", "--services", "hello", "--ttl", "1h"],
    );
    assert_eq!(claims["account"], "ada");
    assert_eq!(claims["issuer"], a.id().as_str());
    assert_eq!(claims["services"], json!(["hello"]));
    let expires = claims["expires_ms"].as_u64().expect("expiry");
    let issued = claims["issued_ms"].as_u64().expect("issue time");
    assert_eq!(expires - issued, 3_600_000);

    // Good for hello, here and on another node (which checks the issuer's signature itself).
    for node in [&a, &b] {
        let (status, v) = verify(
            node,
            json!({"token": token, "service": "hello", "method": "greet"}),
        );
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["account"], "ada");
    }
    let inspected = a.cli_ok(&["token", "inspect", &token]);
    assert!(
        inspected.starts_with("valid") && inspected.contains("ada"),
        "{inspected}"
    );

    // A token for hello does not open counter.
    let (status, v) = verify(&a, json!({"token": token, "service": "counter"}));
    assert_eq!(
        (status, v["error"].as_str()),
        (401, Some("token-not-allowed")),
        "{v}"
    );

    // Expired: checked as of a time past its expiry.
    let (status, v) = verify(&a, json!({"token": token, "at_ms": expires + 1}));
    assert_eq!(
        (status, v["error"].as_str()),
        (401, Some("expired-token")),
        "{v}"
    );

    // Malformed.
    let (status, v) = verify(&a, json!({"token": "hello"}));
    assert_eq!(
        (status, v["error"].as_str()),
        (401, Some("malformed-token")),
        "{v}"
    );

    // Tampered: the account changed after signing (same length, so it still decodes).
    let (body, signer, signature) = parts(&token);
    let at = body
        .windows(3)
        .position(|w| w == b"ada")
        .expect("the account in the claims");
    let mut changed = body.clone();
    changed[at..at + 3].copy_from_slice(b"eve");
    let tampered = assemble(&changed, &signer, &signature);
    let (status, v) = verify(&b, json!({"token": tampered}));
    assert_eq!(
        (status, v["error"].as_str()),
        (401, Some("tampered-token")),
        "{v}"
    );

    // Forged: the same claims (issuer A) properly signed by another key.
    let dir = tempfile::tempdir().expect("temp dir");
    let forger = Identity::load_or_create(dir.path()).expect("a key");
    let forged = assemble(&body, &forger.public().to_string(), &forger.sign(&body));
    let (status, v) = verify(&b, json!({"token": forged}));
    assert_eq!(
        (status, v["error"].as_str()),
        (401, Some("forged-token")),
        "{v}"
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap_or("")
            .contains("not by its issuer"),
        "{v}"
    );

    // Refreshed: a new token for the same account and rights; the old one, replayed, is
    // refused with what replaced it, and cannot be refreshed again.
    let refreshed: Value =
        serde_json::from_str(&a.cli_ok(&["token", "refresh", &token, "--json"])).expect("JSON");
    assert_ne!(refreshed["claims"]["id"], claims["id"]);
    assert_eq!(refreshed["claims"]["account"], "ada");
    assert_eq!(refreshed["claims"]["services"], json!(["hello"]));
    let (status, v) = verify(&a, json!({"token": token}));
    assert_eq!(
        (status, v["error"].as_str()),
        (401, Some("revoked-token")),
        "{v}"
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap_or("")
            .contains("was refreshed into token"),
        "{v}"
    );
    let (status, v) = a.post_json("/api/tokens/refresh", &json!({"token": token}).to_string());
    assert_eq!(
        (status, v["error"].as_str()),
        (401, Some("revoked-token")),
        "{v}"
    );
    // Revoked: refused as revoked.
    let (revoked, _) = create(&a, &["--account", "ada"]);
    let revoked_id = parts_id(&a, &revoked);
    a.cli_ok(&["token", "revoke", &revoked_id]);
    let (status, v) = verify(&a, json!({"token": revoked}));
    assert_eq!(
        (status, v["error"].as_str()),
        (401, Some("revoked-token")),
        "{v}"
    );
    assert!(
        v["message"].as_str().unwrap_or("").ends_with("was revoked"),
        "{v}"
    );
    let fresh = refreshed["token"].as_str().expect("a token");
    let (status, v) = verify(&a, json!({"token": fresh}));
    assert_eq!(status, 200, "{v}");
    // The CLI says why, with exit code 1.
    let out = a.cli(&["token", "inspect", &tampered]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tampered-token") || err.contains("signature does not match"),
        "{err}"
    );
    // Only its issuer refreshes a token.
    let (status, v) = b.post_json("/api/tokens/refresh", &json!({"token": fresh}).to_string());
    assert_eq!(
        (status, v["error"].as_str()),
        (401, Some("token-not-allowed")),
        "{v}"
    );
}

/// POSTs `body` to `path` with `Authorization: Bearer <token>` when given.
fn call_with(node: &TestNode, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = micro_tests::agent()
        .post(format!("{}{path}", node.url))
        .header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let mut answer = request.send(r#"{"name":"Ada"}"#).expect("a response");
    let status = answer.status().as_u16();
    let text = answer.body_mut().read_to_string().expect("a body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[test]
fn the_gateway_takes_bearer_tokens_and_can_require_them() {
    let closed = TestNode::new("[ledger]\nrequire_token = true\n");
    // The open node takes tokens of the closed one: its operator trusts it.
    let open = TestNode::new(&format!("[governance]\ntrusted = [\"{}\"]\n", closed.id()));
    for node in [&open, &closed] {
        node.deploy("hello", "hello");
        node.deploy("counter", "counter");
    }
    // A node that requires tokens refuses a call without one, takes a good one for the
    // service, and refuses one that opens another service.
    let (status, v) = call_with(&closed, "/hello/greet", None);
    assert_eq!(
        (status, v["error"].as_str()),
        (401, Some("token-required")),
        "{v}"
    );
    let (hello_only, _) = create(&closed, &["--services", "hello"]);
    let (status, v) = call_with(&closed, "/hello/greet", Some(&hello_only));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["message"], "Hello, Ada!");
    let (status, v) = call_with(&closed, "/counter/increment", Some(&hello_only));
    assert_eq!(
        (status, v["error"].as_str()),
        (401, Some("token-not-allowed")),
        "{v}"
    );
    // Its own method list narrows it further.
    let (greet_only, _) = create(&closed, &["--methods", "hello.greet"]);
    assert_eq!(call_with(&closed, "/hello/greet", Some(&greet_only)).0, 200);
    let (status, v) = call_with(&closed, "/hello/whoami", Some(&greet_only));
    assert_eq!(
        (status, v["error"].as_str()),
        (401, Some("token-not-allowed")),
        "{v}"
    );
    // A revoked token stops working at once (no cached verification is reused).
    let (revocable, claims) = create(&closed, &["--services", "hello"]);
    assert_eq!(call_with(&closed, "/hello/greet", Some(&revocable)).0, 200);
    let revocable_id = claims["id"].as_str().expect("an id").to_string();
    closed.cli_ok(&["token", "revoke", &revocable_id]);
    let (status, v) = call_with(&closed, "/hello/greet", Some(&revocable));
    assert_eq!(
        (status, v["error"].as_str()),
        (401, Some("revoked-token")),
        "{v}"
    );
    // An open node needs no token, but a bad one is still refused.
    assert_eq!(call_with(&open, "/hello/greet", None).0, 200);
    let (status, v) = call_with(&open, "/hello/greet", Some("not-a-token"));
    assert_eq!(
        (status, v["error"].as_str()),
        (401, Some("malformed-token")),
        "{v}"
    );
    // A token of another node is checked with that node's key: the open node takes the
    // closed node's, whose operator it trusts; the closed node does not take the open node's
    // (anyone can run a node and sign tokens).
    assert_eq!(call_with(&open, "/hello/greet", Some(&hello_only)).0, 200);
    let (opens, _) = create(&open, &["--services", "hello"]);
    let (status, v) = call_with(&closed, "/hello/greet", Some(&opens));
    assert_eq!(
        (status, v["error"].as_str()),
        (401, Some("token-not-allowed")),
        "{v}"
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap_or("")
            .contains("does not take tokens from"),
        "{v}"
    );
}

// ---- Accounting: calls priced, charged, earned, paid by receipts and settled. ----

/// Placement off: a caller's calls would have the service replicated onto its own node.
const NO_PLACEMENT: &str = "[governance]\nplace_interval_ms = 3600000\n";

/// Where `who` stands with `node`, as its ledger says.
fn account(node: &TestNode, who: &str) -> Option<Value> {
    node.get_json("/api/ledger/balances")["accounts"]
        .as_array()?
        .iter()
        .find(|a| a["account"] == who)
        .cloned()
}

/// The newest receipt from `payer` to `payee` that `node` holds.
fn newest_receipt(node: &TestNode, payer: &str, payee: &str) -> Option<Value> {
    node.get_json("/api/ledger/receipts")["receipts"]
        .as_array()?
        .iter()
        .find(|r| r["payer"] == payer && r["payee"] == payee)
        .cloned()
}

fn await_route(from: &TestNode, to: &TestNode, service: &str) {
    eventually("the caller to route to the serving node", || {
        let routes = from.get_json(&format!("/api/network/routes?service={service}"));
        (routes[0]["routes"][0]["node"] == to.id().as_str()).then_some(())
    });
}

fn greet(node: &TestNode) -> (u16, String) {
    node.post("/hello/greet", r#"{"name":"Ada"}"#)
}

/// Sets its flag when dropped: the calling threads of a test stop even when it fails.
struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Both sides hold the same newest receipt from `payer` to `payee`, the payee counts it as
/// paid, and the payer has nothing left to sign or hand over: that receipt.
fn settled(payer: &TestNode, payee: &TestNode) -> Value {
    let (payer_id, payee_id) = (payer.id(), payee.id());
    eventually("the payer's newest receipt to be taken", || {
        let mine = newest_receipt(payer, &payer_id, &payee_id)?;
        let theirs = newest_receipt(payee, &payer_id, &payee_id)?;
        let books = payer.get_json("/api/ledger");
        let idle = books["owed_unsigned"] == 0 && books["receipts_unsent"] == 0;
        let paid = account(payee, &payer_id)?["paid"] == mine["cumulative"];
        (mine == theirs && idle && paid).then_some(mine)
    })
}

#[test]
fn a_node_serving_calls_earns_exactly_what_the_caller_spends_seen_from_both_sides() {
    let a = TestNode::new(NO_PLACEMENT);
    let b = TestNode::joining(NO_PLACEMENT, &[a.ticket()]);
    let (a_id, b_id) = (a.id(), b.id());
    a.deploy("hello", "hello");
    // 0.01 token a call: a caller's allowance (0.1 token an hour) covers its first ten.
    let priced = a.cli_ok(&["ledger", "price", "hello", "10000"]);
    assert!(priced.contains("10000 micro-tokens"), "{priced}");
    await_route(&b, &a, "hello");
    for _ in 0..25 {
        let (status, body) = greet(&b);
        assert_eq!(status, 200, "{body}");
    }
    let receipt = settled(&b, &a);
    let at_a = account(&a, &b_id).expect("A keeps an account of B");
    assert_eq!(u(&at_a["free"]), 100_000, "{at_a}");
    assert_eq!(u(&at_a["spent"]), 15 * 10_000, "{at_a}");
    assert_eq!(at_a["paid"], at_a["spent"], "{at_a}");
    assert_eq!(receipt["cumulative"], at_a["spent"], "{receipt}");
    assert_eq!(at_a["counter_in"], receipt["counter"], "{at_a}");
    // B's side: what its calls at A cost it, from the receipts it signed.
    let at_b = account(&b, &a_id).expect("B keeps an account of A");
    assert_eq!(at_b["earned"], at_a["spent"], "{at_b}");
    assert_eq!(at_b["counter_out"], receipt["counter"], "{at_b}");
    // Per service and per peer, in the ledger's figures and the node's stats.
    let a_books = a.get_json("/api/ledger");
    assert_eq!(u(&a_books["services"]["hello"]["earned"]), 150_000);
    assert_eq!(u(&a_books["services"]["hello"]["free"]), 100_000);
    assert_eq!(
        u(&b.get_json("/api/ledger")["services"]["hello"]["spent"]),
        150_000
    );
    let peers = a.get_json("/api/node")["ledger"]["peers"].clone();
    let peer = peers
        .as_array()
        .and_then(|p| p.iter().find(|p| p["account"] == b_id.as_str()))
        .unwrap_or_else(|| panic!("no peer B in A's stats: {peers}"));
    assert_eq!(
        (u(&peer["earned"]), u(&peer["received"])),
        (150_000, 150_000)
    );
    // The CLI shows the same.
    let table = a.cli_ok(&["ledger", "balance"]);
    assert!(
        table.contains("150000") && table.contains("100000"),
        "{table}"
    );
    let receipts = b.cli_ok(&["ledger", "receipts"]);
    assert!(
        receipts.contains("paid") && receipts.contains("150000"),
        "{receipts}"
    );
    let json: Value =
        serde_json::from_str(&b.cli_ok(&["ledger", "receipts", "--json"])).expect("JSON");
    assert_eq!(json["receipts"][0]["cumulative"], 150_000, "{json}");
    // A price over the ledger's bound is refused with the reason.
    let (status, body) = a.post_json("/api/ledger/prices/hello", r#"{"amount": 5000000}"#);
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("over the most"),
        "{body}"
    );
}

#[test]
fn a_caller_over_its_credit_gets_payment_required_until_its_allowance_refreshes() {
    let a = TestNode::new(&format!("{NO_PLACEMENT}test_clock = true\n"));
    let b = TestNode::joining(NO_PLACEMENT, &[a.ticket()]);
    let b_id = b.id();
    a.deploy("hello", "hello");
    // 0.1 token a call: the allowance covers one call an hour; a newcomer's credit (reputation
    // about 0.1, so about 1 token) some ten more.
    a.cli_ok(&["ledger", "price", "hello", "100000"]);
    await_route(&b, &a, "hello");
    let mut served = 0;
    let refused = loop {
        let (status, body) = greet(&b);
        if status == 402 {
            break body;
        }
        assert_eq!(status, 200, "{body}");
        served += 1;
        assert!(served < 100, "no payment-required after {served} calls");
    };
    assert!(served >= 2, "served {served} calls before payment-required");
    let refused: Value = serde_json::from_str(&refused).expect("JSON");
    assert_eq!(refused["error"], "payment-required", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or("")
            .contains("over its credit"),
        "{refused}"
    );
    let before = account(&a, &b_id).expect("A keeps an account of B");
    assert_eq!(
        (u(&before["free"]), u(&before["allowance_left"])),
        (100_000, 0)
    );
    assert!(
        u(&before["spent"]) <= u(&before["credit_limit"]),
        "{before}"
    );
    assert_eq!(greet(&b).0, 402, "still over its credit");
    // An hour later by A's clock the allowance is back: the next call is served, free.
    let (status, body) = a.post("/api/governance/clock", r#"{"advance_ms": 3600000}"#);
    assert_eq!(status, 200, "{body}");
    let (status, body) = greet(&b);
    assert_eq!(status, 200, "{body}");
    let after = account(&a, &b_id).expect("A keeps an account of B");
    assert_eq!(u(&after["free"]), 200_000, "{after}");
    assert_eq!(after["spent"], before["spent"], "{after}");
}

#[test]
fn balances_stay_consistent_with_the_receipts_both_sides_hold_across_a_kill_9() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    // A serves and is killed; it joins through B, so it finds B again after its restart.
    let b = TestNode::new(NO_PLACEMENT);
    let a = TestNode::joining(NO_PLACEMENT, &[b.ticket()]);
    let (a_id, b_id) = (a.id(), b.id());
    a.deploy("hello", "hello");
    a.cli_ok(&["ledger", "price", "hello", "1000"]);
    await_route(&b, &a, "hello");
    let stop = AtomicBool::new(false);
    let served = AtomicU64::new(0);
    let a = std::thread::scope(|s| {
        let _stop = StopOnDrop(&stop);
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                if greet(&b).0 == 200 {
                    served.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let calls_past = |n: u64| {
            eventually("calls to be served", || {
                (served.load(Ordering::Relaxed) >= n).then_some(())
            })
        };
        // Past the allowance (100 calls), with receipts taken, then a kill -9 mid-stream.
        calls_past(150);
        eventually("a receipt of B at A", || {
            (u(&account(&a, &b_id)?["paid"]) > 0).then_some(())
        });
        let a = a.restart();
        let resumed = served.load(Ordering::Relaxed);
        calls_past(resumed + 100);
        stop.store(true, Ordering::Relaxed);
        a
    });
    let receipt = settled(&b, &a);
    let at_a = account(&a, &b_id).expect("A keeps B's account across the crash");
    assert_eq!(at_a["paid"], receipt["cumulative"], "{at_a}");
    assert!(u(&at_a["spent"]) >= u(&at_a["paid"]), "{at_a}");
    // B paid for every call A charged and told it of: what it spent at A is what its newest
    // receipt says, and A holds that very receipt.
    assert_eq!(
        b.get_json("/api/ledger")["services"]["hello"]["spent"],
        receipt["cumulative"]
    );
    assert_eq!(
        account(&b, &a_id).expect("B's account of A")["earned"],
        receipt["cumulative"]
    );
}

#[test]
fn the_ledger_swaps_live_without_a_failed_call_and_one_that_traps_denies_the_call() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let a = TestNode::new(NO_PLACEMENT);
    let b = TestNode::joining(NO_PLACEMENT, &[a.ticket()]);
    let b_id = b.id();
    for name in ["hello", "trap-me", "loop-me"] {
        a.deploy(name, "hello");
    }
    // 100 micro-tokens a call: past the allowance's 1000 calls, within a newcomer's credit.
    a.cli_ok(&["ledger", "price", "hello", "100"]);
    await_route(&b, &a, "hello");
    let default = micro_tests::component_dir("micro-ledger");
    let default = default.path().to_str().expect("a UTF-8 path").to_string();
    let stop = AtomicBool::new(false);
    let (served, failed) = (AtomicU64::new(0), AtomicU64::new(0));
    std::thread::scope(|s| {
        let _stop = StopOnDrop(&stop);
        for _ in 0..2 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let (status, body) = greet(&b);
                    if status == 200 {
                        served.fetch_add(1, Ordering::Relaxed);
                    } else {
                        eprintln!("failed call: {status} {body}");
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        let flowing = |n: u64| {
            eventually("calls to flow", || {
                (served.load(Ordering::Relaxed) >= n).then_some(())
            })
        };
        flowing(1100);
        for _ in 0..2 {
            let out = a.cli_ok(&["ledger", "use", &default]);
            assert!(out.contains("ledger default"), "{out}");
            let now = served.load(Ordering::Relaxed);
            flowing(now + 30);
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "calls failed during the swaps"
    );
    // The accounts went on across the swaps.
    let receipt = settled(&b, &a);
    assert!(u(&receipt["cumulative"]) > 0, "{receipt}");
    let spent = account(&a, &b_id).expect("B's account")["spent"].clone();

    // A ledger that traps or loops cannot verify payment: the call is denied, not free.
    let test = micro_tests::component_dir("ledger-test");
    let out = a.cli_ok(&["ledger", "use", test.path().to_str().expect("utf-8")]);
    assert!(out.contains("ledger test"), "{out}");
    let (status, body) = a.post("/trap-me/greet", r#"{"name":"Ada"}"#);
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("payment cannot be verified") && body.contains("trapped"),
        "{body}"
    );
    let (status, body) = a.post("/loop-me/greet", r#"{"name":"Ada"}"#);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("ran past its time limit"), "{body}");
    let (status, body) = greet(&a);
    assert_eq!(status, 200, "{body}");
    // Back to the default: B's account is where it was.
    a.cli_ok(&["ledger", "use", &default]);
    assert_eq!(account(&a, &b_id).expect("B's account")["spent"], spent);
    assert!(a.cli_ok(&["ledger", "show"]).starts_with("ledger default"));
}

#[test]
fn a_token_travels_with_a_call_to_the_node_that_issued_it_which_charges_its_account() {
    let a = TestNode::new(NO_PLACEMENT);
    let b = TestNode::joining(NO_PLACEMENT, &[a.ticket()]);
    let b_id = b.id();
    a.deploy("hello", "hello");
    a.cli_ok(&["ledger", "price", "hello", "1000"]);
    let (token, claims) = create(&a, &["--account", "ada", "--services", "hello"]);
    await_route(&b, &a, "hello");
    // A client of B's gateway calls with A's token: it goes along to A, which charges ada.
    for _ in 0..3 {
        let (status, body) = call_with(&b, "/hello/greet", Some(&token));
        assert_eq!(status, 200, "{body}");
    }
    let ada = account(&a, "ada").expect("A keeps ada's account");
    assert_eq!(u(&ada["free"]) + u(&ada["spent"]), 3000, "{ada}");
    let charged_to_b =
        |n: &TestNode| account(n, &b_id).map_or(0, |x| u(&x["free"]) + u(&x["spent"]));
    assert_eq!(charged_to_b(&a), 0, "B paid for ada's calls");
    // Revoked at A: refused when it reaches A, whichever node it came through.
    a.cli_ok(&["token", "revoke", claims["id"].as_str().expect("an id")]);
    let (status, body) = call_with(&b, "/hello/greet", Some(&token));
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("revoked-token"),
        "{body}"
    );
    // B's own token: A does not take B's word for an account, so B pays for the call.
    let (own, _) = create(&b, &["--account", "bob"]);
    let (status, body) = call_with(&b, "/hello/greet", Some(&own));
    assert_eq!(status, 200, "{body}");
    assert_eq!(charged_to_b(&a), 1000);
    assert!(account(&a, "bob").is_none(), "A charged an account B named");
}

#[test]
fn a_moved_clock_is_seen_alike_by_token_checks_at_the_gateway_and_in_the_ledger() {
    let a = TestNode::new("[ledger]\nrequire_token = true\n[governance]\ntest_clock = true\n");
    a.deploy("hello", "hello");
    let (token, claims) = create(&a, &["--ttl", "30m"]);
    assert_eq!(call_with(&a, "/hello/greet", Some(&token)).0, 200);
    // The node's one clock moves past the token's expiry: the gateway, which checks tokens
    // before a call, sees the same time as the ledger, which issued it.
    let (status, body) = a.post("/api/governance/clock", r#"{"advance_ms": 3600000}"#);
    assert_eq!(status, 200, "{body}");
    let now: Value = serde_json::from_str(&body).expect("JSON");
    let expires = claims["expires_ms"].as_u64().expect("an expiry");
    assert!(
        now["now_ms"].as_u64().expect("a time") > expires,
        "{now} {claims}"
    );
    let (status, v) = call_with(&a, "/hello/greet", Some(&token));
    assert_eq!(
        (status, v["error"].as_str()),
        (401, Some("expired-token")),
        "{v}"
    );
    let (status, v) = verify(&a, json!({ "token": token }));
    assert_eq!(
        (status, v["error"].as_str()),
        (401, Some("expired-token")),
        "{v}"
    );
    // A token issued now lives from the moved time.
    let (fresh, _) = create(&a, &["--ttl", "30m"]);
    assert_eq!(call_with(&a, "/hello/greet", Some(&fresh)).0, 200);
}
