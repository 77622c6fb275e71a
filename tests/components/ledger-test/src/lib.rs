//! A ledger for the tests, whose answers depend only on the question: charging a call of a
//! service named `trap-me` traps and of `loop-me` never ends; every other call is free. It
//! keeps no accounts, signs no receipts and takes no tokens.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "ledger-world",
});

use exports::micro::network::ledger::{
    Account, AccountBalance, ChargeError, ChargeRequest, Charged, Guest, LedgerInfo, PriceEntry,
    Receipt, ReceiptError, TokenClaims, TokenError, TokenRequest,
};

struct Test;

impl Guest for Test {
    fn info() -> LedgerInfo {
        LedgerInfo {
            name: "test".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            // Asked about every call, the node's own too: that is how it traps on them.
            local_free: false,
        }
    }

    fn price(_caller: Account, _service: String, _method: String, _now_ms: u64) -> u64 {
        0
    }

    fn set_price(_target: String, _amount: u64) -> Result<(), String> {
        Err("the test ledger keeps no prices".into())
    }

    fn prices() -> Vec<PriceEntry> {
        Vec::new()
    }

    fn charge(request: ChargeRequest) -> Result<Charged, ChargeError> {
        match request.service.as_str() {
            "trap-me" => unreachable!("a ledger that traps"),
            "loop-me" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            _ => Ok(Charged { amount: 0, free: 0 }),
        }
    }

    fn pay(_payee: String, _amount: u64, _now_ms: u64) -> Result<Receipt, String> {
        Err("the test ledger signs no receipts".into())
    }

    fn accept_receipt(_receipt: Receipt, _now_ms: u64) -> Result<u64, ReceiptError> {
        Err(ReceiptError::Refused(
            "the test ledger takes no receipts".into(),
        ))
    }

    fn receipts() -> Vec<Receipt> {
        Vec::new()
    }

    fn balance(account: String, _now_ms: u64) -> AccountBalance {
        AccountBalance {
            account,
            spent: 0,
            paid: 0,
            earned: 0,
            free: 0,
            credit_limit: 0,
            allowance_left: 0,
            allowance_refresh_ms: 0,
            counter_in: 0,
            counter_out: 0,
        }
    }

    fn balances(_now_ms: u64) -> Vec<AccountBalance> {
        Vec::new()
    }

    fn checkpoint(_now_ms: u64) -> Result<(), String> {
        Ok(())
    }

    fn issue_token(_request: TokenRequest) -> Result<String, String> {
        Err("the test ledger issues no tokens".into())
    }

    fn verify_token(
        _token: String,
        _service: String,
        _method: String,
        _now_ms: u64,
    ) -> Result<TokenClaims, TokenError> {
        Err(TokenError::Malformed(
            "the test ledger takes no tokens".into(),
        ))
    }

    fn refresh_token(_token: String, _now_ms: u64) -> Result<String, TokenError> {
        Err(TokenError::Malformed(
            "the test ledger takes no tokens".into(),
        ))
    }

    fn revoke_token(_id: String, _now_ms: u64) -> Result<(), String> {
        Err("the test ledger takes no tokens".into())
    }
}

export!(Test);
