//! The ledger slot: the component that says what calls cost, who owes whom, and issues and
//! checks API tokens (the `ledger-world` WIT world). Like governance, the node holds one live
//! instance and asks it one question at a time within a deadline; a trap or an overrun is a
//! refusal, never a free pass. The component signs and verifies with the node's key through the
//! host's `identity` interface (the private key never enters it) and keeps its state in its own
//! storage namespace.
//!
//! Built so far: tokens. Pricing, charging and receipts are in the world but not asked yet.

use crate::identity::Identity;
use crate::runtime::CallLimiter;
use crate::storage::{Namespaced, Storage};
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Host bindings of the ledger world; its storage import is the services' storage interface.
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "ledger-world",
        imports: { default: async },
        exports: { default: async },
        with: {
            "micro:network/storage": crate::wit::micro::network::storage,
        },
    });
}

pub use bindings::exports::micro::network::ledger::{
    Rights, TokenClaims, TokenError, TokenRequest,
};

include!(concat!(env!("OUT_DIR"), "/ledger.rs"));

/// The ledger's storage namespace (a service name cannot contain '/').
const NAMESPACE: &str = "system/ledger";
/// How long one question may take.
const ASK_TIME: Duration = Duration::from_millis(100);
/// Verified tokens cached at most; past it the cache starts over.
const VERIFIED_CACHE: usize = 65_536;

/// A store's data while the ledger runs: no files, no sockets; the node's key to sign with and
/// its own storage namespace.
pub struct LedgerState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: CallLimiter,
    identity: Identity,
    storage: Storage,
}

impl super::instance::Limited for LedgerState {
    fn limiter(&mut self) -> &mut CallLimiter {
        &mut self.limiter
    }
}

impl WasiView for LedgerState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl Namespaced for LedgerState {
    fn storage(&self) -> (&Storage, &str) {
        (&self.storage, NAMESPACE)
    }
}

crate::namespaced_storage!(LedgerState);

impl bindings::micro::network::identity::Host for LedgerState {
    async fn node_id(&mut self) -> String {
        self.identity.public().to_string()
    }

    async fn sign(&mut self, message: Vec<u8>) -> Vec<u8> {
        self.identity.sign(&message).to_vec()
    }

    async fn verify(&mut self, node: String, message: Vec<u8>, signature: Vec<u8>) -> bool {
        let (Ok(key), Ok(signature)) = (
            crate::identity::parse_node_id(&node),
            <[u8; 64]>::try_from(signature.as_slice()),
        ) else {
            return false;
        };
        crate::identity::verify(&key, &message, &signature).is_ok()
    }
}

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

/// The node's ledger: the component in use and its live instance.
pub struct Ledger {
    pub name: String,
    pub version: String,
    /// "embedded", or the source it was built from.
    pub origin: String,
    /// Content hash of its component.
    pub component: String,
    pre: bindings::LedgerWorldPre<LedgerState>,
    engine: Engine,
    memory_mib: u64,
    identity: Identity,
    storage: Storage,
    live: super::instance::Live<LedgerState, bindings::LedgerWorld>,
    /// Tokens verified for a service and method, until they expire: a call with a token pays
    /// a hash lookup, not a signature check in wasm. Dropped on every revocation.
    verified: RwLock<HashMap<String, TokenClaims>>,
}

impl Ledger {
    /// Loads the embedded default ledger with the node's key and store.
    pub async fn with_default(
        runtime: &crate::runtime::Runtime,
        identity: Identity,
        storage: Storage,
    ) -> anyhow::Result<Self> {
        let engine = runtime.engine().clone();
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        bindings::LedgerWorld::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
        let component = runtime
            .compile(DEFAULT_LEDGER)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let instance_pre = linker.instantiate_pre(&component).map_err(|e| {
            anyhow::anyhow!(
                "not a ledger component (it may import only WASI, identity and storage): {e:#}"
            )
        })?;
        let pre = bindings::LedgerWorldPre::new(instance_pre).map_err(|e| {
            anyhow::anyhow!("not a ledger component (it must export micro:network/ledger): {e:#}")
        })?;
        let mut ledger = Self {
            name: String::new(),
            version: String::new(),
            origin: "embedded".into(),
            component: crate::runtime::content_hash(DEFAULT_LEDGER),
            pre,
            engine,
            memory_mib: runtime.limits().memory_mib,
            identity,
            storage,
            live: super::instance::Live::default(),
            verified: RwLock::default(),
        };
        let info = ledger
            .ask("info", async |l, store| l.call_info(store).await)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        ledger.name = info.name;
        ledger.version = info.version;
        Ok(ledger)
    }

    /// "name version".
    pub fn label(&self) -> String {
        format!("{} {}", self.name, self.version)
    }

    async fn ask<T>(
        &self,
        what: &str,
        question: impl AsyncFnOnce(
            &bindings::exports::micro::network::ledger::Guest,
            &mut Store<LedgerState>,
        ) -> wasmtime::Result<T>,
    ) -> Result<T, String> {
        self.live
            .ask(
                what,
                ASK_TIME,
                async |deadline| {
                    let state = LedgerState {
                        wasi: crate::runtime::denied_wasi(),
                        table: ResourceTable::new(),
                        limiter: CallLimiter::new(self.memory_mib),
                        identity: self.identity.clone(),
                        storage: self.storage.clone(),
                    };
                    let mut store = super::instance::store(&self.engine, state, deadline);
                    let world = self.pre.instantiate_async(&mut store).await?;
                    Ok((store, world))
                },
                async |world, store| question(world.micro_network_ledger(), store).await,
            )
            .await
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
            let verified = self.verified.read().unwrap_or_else(|p| p.into_inner());
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
        let mut verified = self.verified.write().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= VERIFIED_CACHE {
            verified.clear();
        }
        verified.insert(key, claims.clone());
        Ok(claims)
    }

    /// A new token from `token`, as long as it is its issuer's to refresh.
    pub async fn refresh_token(&self, token: &str, now_ms: u64) -> Result<String, TokenRefusal> {
        self.ask("refresh-token", async |l, store| {
            l.call_refresh_token(store, token, now_ms).await
        })
        .await
        .map_err(TokenRefusal::Failed)?
        .map_err(TokenRefusal::Refused)
    }

    /// Revokes token `id`; no verification of it is reused from then on.
    pub async fn revoke_token(&self, id: &str, now_ms: u64) -> Result<(), TokenRefusal> {
        self.ask("revoke-token", async |l, store| {
            l.call_revoke_token(store, id, now_ms).await
        })
        .await
        .map_err(TokenRefusal::Failed)?
        .map_err(TokenRefusal::Invalid)?;
        self.verified
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        Ok(())
    }
}
