//! The ledger slot: the component that says what calls cost, who owes whom, and issues and
//! checks API tokens (the `ledger-world` WIT world). Like governance, the node holds one live
//! instance and asks it one question at a time within a deadline; a trap or an overrun is a
//! refusal, never a free pass. The component signs and verifies with the node's key through the
//! host's `identity` interface (the private key never enters it) and keeps its state in its own
//! storage namespace. It is swapped while the node runs (`micro ledger use`).
//!
//! Tokens are here; charging, paying and receipts in `accounts`; the component in
//! `component`.

pub mod accounts;
pub mod component;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// Host bindings of the ledger world; its storage import is the services' storage interface.
#[allow(
    missing_docs,
    reason = "generated from the WIT, whose comments document it"
)]
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "ledger-world",
        imports: { default: async },
        exports: { default: async },
        with: {
            "micro:network/storage": micro_runtime::wit::micro::network::storage,
        },
    });
}

pub use bindings::exports::micro::network::ledger::{
    Rights, TokenClaims, TokenError, TokenRequest,
};

use micro_embedded::DEFAULT_LEDGER;

/// Verified tokens cached at most; past it the cache starts over.
const VERIFIED_CACHE: usize = 65_536;

/// Why a token question was not answered.
#[derive(Debug, thiserror::Error)]
pub enum TokenRefusal {
    /// The token is refused, for this reason.
    #[error("{}", token_error_message(.0))]
    Refused(TokenError),
    /// The request itself is refused (a bad account or lifetime, an unknown id).
    #[error("{0}")]
    Invalid(String),
    /// The ledger failed: nothing can be verified, so nothing is let through.
    #[error("the ledger failed, so refused: {0}")]
    Failed(String),
}

/// A token error's kind, as the API names it.
pub fn token_error_kind(e: &TokenError) -> &'static str {
    match e {
        TokenError::Malformed(_) => "malformed-token",
        TokenError::Forged(_) => "forged-token",
        TokenError::Tampered(_) => "tampered-token",
        TokenError::Expired(_) => "expired-token",
        TokenError::Revoked(_) => "revoked-token",
        TokenError::NotAllowed(_) => "token-not-allowed",
    }
}

fn token_error_message(e: &TokenError) -> &str {
    match e {
        TokenError::Malformed(m)
        | TokenError::Forged(m)
        | TokenError::Tampered(m)
        | TokenError::Expired(m)
        | TokenError::Revoked(m)
        | TokenError::NotAllowed(m) => m,
    }
}

/// The node's ledger: the component in use, and what the host keeps beside it.
pub struct Ledger {
    host: component::Host,
    current: RwLock<Arc<component::Loaded>>,
    /// Tokens verified for a service and method, until they expire: a call with a token pays
    /// a hash lookup, not a signature check in wasm. Dropped on every revocation and swap.
    verified: RwLock<HashMap<String, TokenClaims>>,
    /// What the host counts and holds for accounting (see `accounts`).
    books: Mutex<accounts::HostBooks>,
}

impl Ledger {
    /// Loads the embedded default ledger with the node's key and store.
    pub async fn with_default(
        runtime: &crate::host_state::Runtime,
        identity: micro_base::identity::Identity,
        storage: micro_services::storage::Storage,
    ) -> anyhow::Result<Self> {
        let host = component::Host::new(runtime, identity, storage)?;
        let loaded = host.load(runtime, DEFAULT_LEDGER, "embedded").await?;
        Ok(Self {
            host,
            current: RwLock::new(Arc::new(loaded)),
            verified: RwLock::default(),
            books: Mutex::default(),
        })
    }

    /// The ledger in use.
    pub fn current(&self) -> Arc<component::Loaded> {
        micro_base::sync::read(&self.current).clone()
    }

    /// Compiles and checks a ledger component (not yet in use).
    pub async fn load(
        &self,
        runtime: &crate::host_state::Runtime,
        wasm: &[u8],
        origin: &str,
    ) -> anyhow::Result<component::Loaded> {
        self.host.load(runtime, wasm, origin).await
    }

    /// Puts `loaded` in use: what the old one holds in memory is saved first, the next
    /// question goes to the new one, questions already asked finish on the old one.
    pub async fn replace(&self, loaded: component::Loaded, now_ms: u64) -> Arc<component::Loaded> {
        let old = self.current();
        if let Err(e) = old
            .ask("checkpoint", async |l, store| {
                l.call_checkpoint(store, now_ms).await
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r)
        {
            tracing::warn!(ledger = %old.label(), error = %e, "the old ledger did not save its state");
        }
        let loaded = Arc::new(loaded);
        *micro_base::sync::write(&self.current) = loaded.clone();
        self.forget_verified();
        loaded
    }

    /// Drops every verified token: a revocation, a refresh or another ledger may refuse what
    /// was taken before.
    fn forget_verified(&self) {
        micro_base::sync::write(&self.verified).clear();
    }

    async fn ask<T>(
        &self,
        what: &str,
        question: impl AsyncFnOnce(
            &bindings::exports::micro::network::ledger::Guest,
            &mut wasmtime::Store<component::LedgerState>,
        ) -> wasmtime::Result<T>,
    ) -> Result<T, String> {
        self.current()
            .ask(what, question)
            .await
            .map_err(|e| e.to_string())
    }

    /// Issues a token for `account` with `rights`, living `ttl_ms` (0: the ledger's default).
    pub async fn issue_token(
        &self,
        account: &str,
        rights: Rights,
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<String, TokenRefusal> {
        let request = TokenRequest {
            account: account.to_string(),
            rights,
            ttl_ms,
            now_ms,
        };
        self.ask("issue-token", async |l, store| {
            l.call_issue_token(store, &request).await
        })
        .await
        .map_err(TokenRefusal::Failed)?
        .map_err(TokenRefusal::Invalid)
    }

    /// Checks `token` for a call of `service`.`method` (empty: any), from the cache of
    /// verified tokens when it can.
    pub async fn verify_token(
        &self,
        token: &str,
        service: &str,
        method: &str,
        now_ms: u64,
    ) -> Result<TokenClaims, TokenRefusal> {
        let key = format!("{service}\n{method}\n{token}");
        {
            let verified = micro_base::sync::read(&self.verified);
            if let Some(claims) = verified.get(&key)
                && now_ms < claims.expires_ms
                && now_ms >= claims.issued_ms
            {
                return Ok(claims.clone());
            }
        }
        let claims = self
            .ask("verify-token", async |l, store| {
                l.call_verify_token(store, token, service, method, now_ms)
                    .await
            })
            .await
            .map_err(TokenRefusal::Failed)?
            .map_err(TokenRefusal::Refused)?;
        let mut verified = micro_base::sync::write(&self.verified);
        if verified.len() >= VERIFIED_CACHE {
            verified.clear();
        }
        verified.insert(key, claims.clone());
        Ok(claims)
    }

    /// A new token from `token`, as long as it is its issuer's to refresh; `token` is refused
    /// from then on.
    pub async fn refresh_token(&self, token: &str, now_ms: u64) -> Result<String, TokenRefusal> {
        let fresh = self
            .ask("refresh-token", async |l, store| {
                l.call_refresh_token(store, token, now_ms).await
            })
            .await
            .map_err(TokenRefusal::Failed)?
            .map_err(TokenRefusal::Refused)?;
        // The old token is refused from now on: no verification of it is reused.
        self.forget_verified();
        Ok(fresh)
    }

    /// Revokes token `id`; no verification of it is reused from then on.
    pub async fn revoke_token(&self, id: &str, now_ms: u64) -> Result<(), TokenRefusal> {
        self.ask("revoke-token", async |l, store| {
            l.call_revoke_token(store, id, now_ms).await
        })
        .await
        .map_err(TokenRefusal::Failed)?
        .map_err(TokenRefusal::Invalid)?;
        self.forget_verified();
        Ok(())
    }
}
