//! API tokens: `micro1.<claims>.<signer>.<signature>` — the claims encoded with postcard and
//! base64url, the node id that signed, and its ed25519 signature of the claims bytes.
//!
//! Anyone can check a token with the issuer's public key (its node id), so no node asks
//! another. Keeping the signer beside the claims tells a forgery (signed properly, by someone
//! who is not the claimed issuer) from tampering (claims changed after signing: the signature
//! matches no one).

use crate::exports::micro::network::ledger::{Rights, TokenClaims, TokenError, TokenRequest};
use crate::micro::network::{identity, storage};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};

const PREFIX: &str = "micro1";
/// A token's lifetime when none is asked for, and the longest one issued.
const DEFAULT_TTL_MS: u64 = 3600 * 1000;
const MAX_TTL_MS: u64 = 30 * 24 * 3600 * 1000;
/// How long after expiry its issuer still refreshes a token.
const REFRESH_GRACE_MS: u64 = 10 * 60 * 1000;

#[derive(Serialize, Deserialize)]
struct Claims {
    id: String,
    account: String,
    issuer: String,
    services: Vec<String>,
    methods: Vec<String>,
    issued_ms: u64,
    expires_ms: u64,
}

impl Claims {
    fn public(self) -> TokenClaims {
        TokenClaims {
            id: self.id,
            account: self.account,
            issuer: self.issuer,
            rights: Rights {
                services: self.services,
                methods: self.methods,
            },
            issued_ms: self.issued_ms,
            expires_ms: self.expires_ms,
        }
    }
}

/// A fresh token id: this node's counter, kept in storage so ids never repeat.
fn next_id(now_ms: u64) -> Result<String, String> {
    loop {
        let current = storage::get("token-seq").map_err(|e| format!("{e:?}"))?;
        let n = current
            .as_deref()
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_le_bytes)
            + 1;
        let swapped =
            storage::compare_and_swap("token-seq", current.as_deref(), Some(&n.to_le_bytes()))
                .map_err(|e| format!("{e:?}"))?;
        if swapped {
            return Ok(format!("{now_ms:x}-{n}"));
        }
    }
}

fn sign(claims: &Claims) -> Result<String, String> {
    let body = postcard::to_allocvec(claims).map_err(|e| e.to_string())?;
    let signature = identity::sign(&body);
    Ok(format!(
        "{PREFIX}.{}.{}.{}",
        B64.encode(&body),
        identity::node_id(),
        B64.encode(signature)
    ))
}

/// Issues a token for `request.account`, signed by this node.
pub fn issue(request: TokenRequest) -> Result<String, String> {
    if request.account.trim().is_empty() {
        return Err("a token needs an account".into());
    }
    let ttl = match request.ttl_ms {
        0 => DEFAULT_TTL_MS,
        t if t > MAX_TTL_MS => {
            return Err(format!(
                "a lifetime of {t} ms is over the longest, {MAX_TTL_MS} ms (30 days)"
            ));
        }
        t => t,
    };
    let claims = Claims {
        id: next_id(request.now_ms)?,
        account: request.account,
        issuer: identity::node_id(),
        services: request.rights.services,
        methods: request.rights.methods,
        issued_ms: request.now_ms,
        expires_ms: request.now_ms.saturating_add(ttl),
    };
    sign(&claims)
}

/// Decodes a token and checks its signature: the claims of a genuine token.
fn open(token: &str) -> Result<Claims, TokenError> {
    let malformed = |why: &str| TokenError::Malformed(format!("not a micro token: {why}"));
    let mut parts = token.trim().split('.');
    if parts.next() != Some(PREFIX) {
        return Err(malformed("it does not start with micro1."));
    }
    let (Some(body), Some(signer), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("it needs four parts separated by dots"));
    };
    let body = B64
        .decode(body)
        .map_err(|e| malformed(&format!("claims: {e}")))?;
    let signature = B64
        .decode(signature)
        .map_err(|e| malformed(&format!("signature: {e}")))?;
    let claims: Claims =
        postcard::from_bytes(&body).map_err(|e| malformed(&format!("claims: {e}")))?;
    if identity::verify(&claims.issuer, &body, &signature) {
        return Ok(claims);
    }
    if signer != claims.issuer && identity::verify(signer, &body, &signature) {
        return Err(TokenError::Forged(format!(
            "signed by {signer}, not by its issuer {}",
            claims.issuer
        )));
    }
    Err(TokenError::Tampered(
        "its signature does not match its claims: they were changed after signing".into(),
    ))
}

/// Why token `id` is refused, if it is: revoked, or replaced by a refresh (the new token's id
/// is kept, so a replay of the old one says what replaced it).
fn revoked(id: &str) -> Option<String> {
    let value = storage::get(&format!("revoked/{id}")).ok()??;
    Some(match std::str::from_utf8(&value) {
        Ok(newer) if newer.starts_with("refreshed:") => format!(
            "token {id} was refreshed into token {}: the old one is not taken again",
            &newer["refreshed:".len()..]
        ),
        _ => format!("token {id} was revoked"),
    })
}

/// Checks a token for a call of `service`.`method` at `now_ms`.
pub fn verify(
    token: &str,
    service: &str,
    method: &str,
    now_ms: u64,
) -> Result<TokenClaims, TokenError> {
    let claims = open(token)?;
    if let Some(why) = revoked(&claims.id) {
        return Err(TokenError::Revoked(why));
    }
    if now_ms >= claims.expires_ms {
        return Err(TokenError::Expired(format!(
            "token {} expired {} s ago",
            claims.id,
            (now_ms - claims.expires_ms) / 1000
        )));
    }
    if !service.is_empty() {
        if !claims.services.is_empty() && !claims.services.iter().any(|s| s == service) {
            return Err(TokenError::NotAllowed(format!(
                "token {} opens {}, not {service}",
                claims.id,
                claims.services.join(", ")
            )));
        }
        let full = format!("{service}.{method}");
        if !method.is_empty() && !claims.methods.is_empty() && !claims.methods.contains(&full) {
            return Err(TokenError::NotAllowed(format!(
                "token {} opens {}, not {full}",
                claims.id,
                claims.methods.join(", ")
            )));
        }
    }
    Ok(claims.public())
}

/// A new token with the same account, rights and lifetime, from a genuine one of this node's
/// that is valid or expired less than [`REFRESH_GRACE_MS`] ago and not revoked, while its
/// account is in good standing. The old one is refused from then on.
pub fn refresh(token: &str, now_ms: u64) -> Result<String, TokenError> {
    let old = open(token)?;
    if old.issuer != identity::node_id() {
        return Err(TokenError::NotAllowed(format!(
            "only its issuer {} refreshes token {}",
            old.issuer, old.id
        )));
    }
    if let Some(why) = revoked(&old.id) {
        return Err(TokenError::Revoked(why));
    }
    if now_ms > old.expires_ms.saturating_add(REFRESH_GRACE_MS) {
        return Err(TokenError::Expired(format!(
            "token {} expired more than {} minutes ago: too late to refresh",
            old.id,
            REFRESH_GRACE_MS / 60_000
        )));
    }
    crate::accounts::in_good_standing(&old.account).map_err(TokenError::NotAllowed)?;
    let ttl = old.expires_ms.saturating_sub(old.issued_ms);
    let old_id = old.id.clone();
    let new = Claims {
        id: next_id(now_ms).map_err(TokenError::Malformed)?,
        issued_ms: now_ms,
        expires_ms: now_ms.saturating_add(ttl),
        ..old
    };
    let token = sign(&new).map_err(TokenError::Malformed)?;
    // The old token is replaced: taking it again would let a refresh double a token's life.
    storage::set(
        &format!("revoked/{old_id}"),
        format!("refreshed:{}", new.id).as_bytes(),
    )
    .map_err(|e| TokenError::Malformed(format!("ledger storage: {e:?}")))?;
    Ok(token)
}

/// Revokes token `id` of this node's: it is refused from now on.
pub fn revoke(id: &str, now_ms: u64) -> Result<(), String> {
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(format!("{id:?} is not a token id"));
    }
    storage::set(&format!("revoked/{id}"), &now_ms.to_le_bytes()).map_err(|e| format!("{e:?}"))
}
