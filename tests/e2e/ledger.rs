//! The ledger's API tokens, on real nodes with the embedded default ledger: issued and signed
//! by a node, checked on any node without asking the issuer, refused with a distinct 401 for
//! each way a token can be bad, refreshed and revoked.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use micro_host::identity::Identity;
use micro_tests::TestNode;
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

    // Refreshed: a new token for the same account and rights; then the old one is revoked.
    let refreshed: Value =
        serde_json::from_str(&a.cli_ok(&["token", "refresh", &token, "--json"])).expect("JSON");
    assert_ne!(refreshed["claims"]["id"], claims["id"]);
    assert_eq!(refreshed["claims"]["account"], "ada");
    assert_eq!(refreshed["claims"]["services"], json!(["hello"]));
    let id = claims["id"].as_str().expect("an id");
    a.cli_ok(&["token", "revoke", id]);
    let (status, v) = verify(&a, json!({"token": token}));
    assert_eq!(
        (status, v["error"].as_str()),
        (401, Some("revoked-token")),
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
