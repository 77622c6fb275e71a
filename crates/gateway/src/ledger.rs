//! `/api/ledger` and `/api/tokens…`: which ledger runs here, and API tokens — issue, check,
//! refresh, revoke — as the ledger component answers them. A refused token is a 401 whose kind
//! names why (malformed, forged, tampered, expired, revoked, not allowed).

use super::reply::{self, Body};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use micro_core::node::Node;
use micro_core::system::ledger::{Rights, TokenClaims, TokenRefusal, token_error_kind};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Largest token request body.
const MAX_BODY: usize = 16 * 1024;

/// A token a call carried, checked.
pub struct Bearer {
    pub token: String,
    pub claims: TokenClaims,
}

/// Checks the `Authorization: Bearer <token>` of a call of `service`.`method` (empty: any
/// path of a `wasi:http` service): a bad token, or one for a service served here issued by a
/// node this one does not trust, is a 401 that says why; no token is fine unless the node
/// requires one (`ledger.require_token`). For a service served elsewhere the token travels
/// with the call and the serving node decides whether it takes its issuer.
pub async fn bearer(
    node: &Node,
    headers: &hyper::HeaderMap,
    service: &str,
    method: &str,
) -> Result<Option<Bearer>, Response<Body>> {
    let Some(value) = headers.get(hyper::header::AUTHORIZATION) else {
        if node.config.ledger.require_token {
            return Err(reply::error(
                StatusCode::UNAUTHORIZED,
                "token-required",
                "this node takes calls with a token only: Authorization: Bearer <token> \
                 (micro token create)",
            ));
        }
        return Ok(None);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| {
            reply::error(
                StatusCode::UNAUTHORIZED,
                "malformed-token",
                "the Authorization header must be `Bearer <token>`",
            )
        })?;
    let ledger = node
        .ledger()
        .await
        .map_err(|e| reply::error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e))?;
    let (name, _) = micro_base::names::split_version(service);
    let claims = ledger
        .verify_token(token, name, method, node.clock.now_ms())
        .await
        .map_err(|e| refusal(&e))?;
    // Anyone can run a node and sign tokens: a call is let in by tokens of this node and of
    // the nodes its operator trusts, not by any genuine token.
    let trusted = node.config.governance.trusted.contains(&claims.issuer);
    let here = node.registry.resolve(service).is_some();
    if here && claims.issuer != node.id && !trusted {
        return Err(reply::error(
            StatusCode::UNAUTHORIZED,
            "token-not-allowed",
            format!(
                "token {} was issued by node {}, which this node does not take tokens from \
                 (its own, and those in governance.trusted)",
                claims.id, claims.issuer
            ),
        ));
    }
    Ok(Some(Bearer {
        token: token.to_string(),
        claims,
    }))
}

/// `GET /api/ledger`: the ledger in use, the prices set here, what each service earned here
/// and cost this node elsewhere (since the start), and what is owed and not yet settled.
pub async fn show(node: &Arc<Node>) -> Response<Body> {
    let ledger = match node.ledger().await {
        Ok(l) => l,
        Err(e) => return reply::error(StatusCode::INTERNAL_SERVER_ERROR, "failed", e),
    };
    let loaded = ledger.current();
    let prices: Vec<Value> = ledger
        .prices()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|p| json!({"target": p.target, "amount": p.amount}))
        .collect();
    let (owed, unsent) = ledger.in_flight();
    reply::json(
        StatusCode::OK,
        &json!({
            "name": loaded.name,
            "version": loaded.version,
            "origin": loaded.origin,
            "component": loaded.component,
            "local_free": loaded.local_free,
            "node": node.id,
            "prices": prices,
            "services": ledger.flows(),
            "owed_unsigned": owed,
            "receipts_unsent": unsent,
        }),
    )
}

/// `GET /api/ledger/balances`: where every account stands with this node.
pub async fn balances(node: &Arc<Node>) -> Response<Body> {
    let ledger = match node.ledger().await {
        Ok(l) => l,
        Err(e) => return reply::error(StatusCode::INTERNAL_SERVER_ERROR, "failed", e),
    };
    match ledger.balances(node.clock.now_ms()).await {
        Ok(list) => {
            let list: Vec<Value> = list
                .into_iter()
                .map(|b| {
                    json!({
                        "account": b.account,
                        "spent": b.spent,
                        "paid": b.paid,
                        "unpaid": b.spent.saturating_sub(b.paid),
                        "earned": b.earned,
                        "net": b.earned as i128 - b.spent as i128,
                        "free": b.free,
                        "credit_limit": b.credit_limit,
                        "allowance_left": b.allowance_left,
                        "allowance_refresh_ms": b.allowance_refresh_ms,
                        "counter_in": b.counter_in,
                        "counter_out": b.counter_out,
                    })
                })
                .collect();
            reply::json(StatusCode::OK, &json!({"node": node.id, "accounts": list}))
        }
        Err(e) => reply::error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e),
    }
}

/// `GET /api/ledger/receipts`: the newest receipt of each pair this node is part of.
pub async fn receipts(node: &Arc<Node>) -> Response<Body> {
    let ledger = match node.ledger().await {
        Ok(l) => l,
        Err(e) => return reply::error(StatusCode::INTERNAL_SERVER_ERROR, "failed", e),
    };
    match ledger.receipts().await {
        Ok(list) => {
            let list: Vec<Value> = list
                .into_iter()
                .map(|r| {
                    json!({
                        "payer": r.payer,
                        "payee": r.payee,
                        "cumulative": r.cumulative,
                        "counter": r.counter,
                        "signature": hex::encode(&r.signature),
                    })
                })
                .collect();
            reply::json(StatusCode::OK, &json!({"node": node.id, "receipts": list}))
        }
        Err(e) => reply::error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e),
    }
}

/// `PUT /api/ledger/prices/{service or service.method}` with `{"amount": micro-tokens}`.
pub async fn set_price(
    node: &Arc<Node>,
    target: &str,
    request: Request<Incoming>,
) -> Response<Body> {
    #[derive(Deserialize)]
    struct Price {
        amount: u64,
    }
    let price: Price = match body(request, r#"{"amount": 1000}"#).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let ledger = match node.ledger().await {
        Ok(l) => l,
        Err(e) => return reply::error(StatusCode::INTERNAL_SERVER_ERROR, "failed", e),
    };
    match ledger.set_price(target, price.amount).await {
        Ok(Ok(())) => reply::json(
            StatusCode::OK,
            &json!({"target": target, "amount": price.amount}),
        ),
        Ok(Err(e)) => reply::error(StatusCode::BAD_REQUEST, "bad-request", e),
        Err(e) => reply::error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e),
    }
}

/// A token's claims as the API shows them.
pub fn claims_json(c: &TokenClaims) -> Value {
    json!({
        "id": c.id,
        "account": c.account,
        "issuer": c.issuer,
        "services": c.rights.services,
        "methods": c.rights.methods,
        "issued_ms": c.issued_ms,
        "expires_ms": c.expires_ms,
    })
}

/// The answer to a refused token question.
pub fn refusal(e: &TokenRefusal) -> Response<Body> {
    match e {
        TokenRefusal::Refused(t) => reply::error(StatusCode::UNAUTHORIZED, token_error_kind(t), e),
        TokenRefusal::Invalid(_) => reply::error(StatusCode::BAD_REQUEST, "bad-request", e),
        TokenRefusal::Failed(_) => reply::error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e),
    }
}

async fn body<T: serde::de::DeserializeOwned>(
    request: Request<Incoming>,
    example: &str,
) -> Result<T, Response<Body>> {
    reply::read_json(request, MAX_BODY, example).await
}

/// Issues, checks and refreshes a token, then answers it with its claims.
async fn answer_token(
    node: &Node,
    ledger: &micro_core::system::ledger::Ledger,
    token: Result<String, TokenRefusal>,
    now: u64,
    status: StatusCode,
) -> Response<Body> {
    let token = match token {
        Ok(t) => t,
        Err(e) => return refusal(&e),
    };
    match ledger.verify_token(&token, "", "", now).await {
        Ok(claims) => reply::json(
            status,
            &json!({ "token": token, "claims": claims_json(&claims), "node": node.id }),
        ),
        Err(e) => refusal(&e),
    }
}

/// `POST /api/tokens` with `{"account", "services"?, "methods"?, "ttl_ms"?}`: a new token.
pub async fn create(node: &Arc<Node>, request: Request<Incoming>) -> Response<Body> {
    #[derive(Deserialize)]
    struct Create {
        account: Option<String>,
        #[serde(default)]
        services: Vec<String>,
        #[serde(default)]
        methods: Vec<String>,
        #[serde(default)]
        ttl_ms: u64,
    }
    let create: Create = match body(request, r#"{"account": "ada", "ttl_ms": 3600000}"#).await {
        Ok(c) => c,
        Err(response) => return response,
    };
    let ledger = match node.ledger().await {
        Ok(l) => l,
        Err(e) => return reply::error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e),
    };
    let account = create.account.unwrap_or_else(|| node.id.clone());
    let rights = Rights {
        services: create.services,
        methods: create.methods,
    };
    let now = node.clock.now_ms();
    let token = ledger
        .issue_token(&account, rights, create.ttl_ms, now)
        .await;
    answer_token(node, ledger, token, now, StatusCode::CREATED).await
}

/// `POST /api/tokens/verify` with `{"token", "service"?, "method"?, "at_ms"?}`: the claims of
/// a token that opens that service and method now (or at `at_ms`), or the 401 that says why
/// not.
pub async fn verify(node: &Arc<Node>, request: Request<Incoming>) -> Response<Body> {
    #[derive(Deserialize)]
    struct Verify {
        token: String,
        #[serde(default)]
        service: String,
        #[serde(default)]
        method: String,
        at_ms: Option<u64>,
    }
    let v: Verify = match body(request, r#"{"token": "micro1…", "service": "hello"}"#).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let ledger = match node.ledger().await {
        Ok(l) => l,
        Err(e) => return reply::error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e),
    };
    let now = v.at_ms.unwrap_or_else(|| node.clock.now_ms());
    match ledger
        .verify_token(&v.token, &v.service, &v.method, now)
        .await
    {
        Ok(claims) => reply::json(StatusCode::OK, &claims_json(&claims)),
        Err(e) => refusal(&e),
    }
}

/// `POST /api/tokens/refresh` with `{"token"}`: a new token for the same account and rights.
pub async fn refresh(node: &Arc<Node>, request: Request<Incoming>) -> Response<Body> {
    #[derive(Deserialize)]
    struct Refresh {
        token: String,
    }
    let r: Refresh = match body(request, r#"{"token": "micro1…"}"#).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    let ledger = match node.ledger().await {
        Ok(l) => l,
        Err(e) => return reply::error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e),
    };
    let now = node.clock.now_ms();
    let token = ledger.refresh_token(&r.token, now).await;
    answer_token(node, ledger, token, now, StatusCode::OK).await
}

/// `DELETE /api/tokens/{id}`: revokes a token this node issued.
pub async fn revoke(node: &Arc<Node>, id: &str) -> Response<Body> {
    let ledger = match node.ledger().await {
        Ok(l) => l,
        Err(e) => return reply::error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e),
    };
    match ledger.revoke_token(id, node.clock.now_ms()).await {
        Ok(()) => reply::json(StatusCode::OK, &json!({ "revoked": id })),
        Err(e) => refusal(&e),
    }
}
