//! The default ledger of a micro node, in code anyone can read and replace.
//!
//! API tokens (`token`): issued and signed with the node's key (through the host's
//! `identity`, so the key never enters this component), verifiable on any node, refreshable
//! shortly after expiry by their issuer while the account is in good standing, revocable.
//! Accounts (`accounts`): prices, charging with an allowance and a credit from reputation,
//! receipts signed by the payer and taken by the payee, balances.

mod accounts;
mod token;

wit_bindgen::generate!({
    path: "../../wit",
    world: "ledger-world",
});

use exports::micro::network::ledger::{
    Account, AccountBalance, ChargeError, ChargeRequest, Charged, Guest, LedgerInfo, PriceEntry,
    Receipt, ReceiptError, TokenClaims, TokenError, TokenRequest,
};

struct Default;

impl Guest for Default {
    fn info() -> LedgerInfo {
        LedgerInfo {
            name: "default".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            // `accounts::price` answers 0 for the local account.
            local_free: true,
        }
    }

    fn price(caller: Account, service: String, method: String, _now_ms: u64) -> u64 {
        accounts::price(&caller, &service, &method)
    }

    fn set_price(target: String, amount: u64) -> Result<(), String> {
        accounts::set_price(&target, amount)
    }

    fn prices() -> Vec<PriceEntry> {
        accounts::prices()
    }

    fn charge(request: ChargeRequest) -> Result<Charged, ChargeError> {
        accounts::charge(request)
    }

    fn pay(payee: String, amount: u64, _now_ms: u64) -> Result<Receipt, String> {
        accounts::pay(&payee, amount)
    }

    fn accept_receipt(receipt: Receipt, _now_ms: u64) -> Result<u64, ReceiptError> {
        accounts::accept(receipt)
    }

    fn receipts() -> Vec<Receipt> {
        accounts::receipts()
    }

    fn balance(account: String, now_ms: u64) -> AccountBalance {
        accounts::balance(&account, now_ms)
    }

    fn balances(now_ms: u64) -> Vec<AccountBalance> {
        accounts::balances(now_ms)
    }

    fn checkpoint(_now_ms: u64) -> Result<(), String> {
        accounts::checkpoint()
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
