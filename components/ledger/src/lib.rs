//! The default ledger of a micro node, in code anyone can read and replace.
//!
//! Built so far: API tokens — issued and signed with the node's key (through the host's
//! `identity`, so the key never enters this component), verifiable on any node, refreshable
//! shortly after expiry by their issuer, revocable. Not built yet: pricing (every call is
//! free), charging, receipts and balances; those functions say so.

mod token;

wit_bindgen::generate!({
    path: "../../wit",
    world: "ledger-world",
});

use exports::micro::network::ledger::{
    Account, AccountBalance, ChargeError, ChargeRequest, Guest, LedgerInfo, Receipt, TokenClaims,
    TokenError, TokenRequest,
};

struct Default;

impl Guest for Default {
    fn info() -> LedgerInfo {
        LedgerInfo {
            name: "default".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }

    fn price(_caller: Account, _service: String, _method: String, _now_ms: u64) -> u64 {
        0
    }

    fn charge(_request: ChargeRequest) -> Result<Option<Receipt>, ChargeError> {
        Err(ChargeError::Denied(
            "this ledger does not charge yet (accounting is not built)".into(),
        ))
    }

    fn accept_receipt(_receipt: Receipt, _now_ms: u64) -> Result<u64, String> {
        Err("this ledger does not take receipts yet (accounting is not built)".into())
    }

    fn balance(node: String, _now_ms: u64) -> AccountBalance {
        AccountBalance {
            node,
            earned: 0,
            spent: 0,
            credit_limit: 0,
            allowance_left: 0,
            counter_in: 0,
            counter_out: 0,
        }
    }

    fn balances(_now_ms: u64) -> Vec<AccountBalance> {
        Vec::new()
    }

    fn issue_token(request: TokenRequest) -> Result<String, String> {
        token::issue(request)
    }

    fn verify_token(
        token: String,
        service: String,
        method: String,
        now_ms: u64,
    ) -> Result<TokenClaims, TokenError> {
        token::verify(&token, &service, &method, now_ms)
    }

    fn refresh_token(token: String, now_ms: u64) -> Result<String, TokenError> {
        token::refresh(&token, now_ms)
    }

    fn revoke_token(id: String, now_ms: u64) -> Result<(), String> {
        token::revoke(&id, now_ms)
    }
}

export!(Default);
