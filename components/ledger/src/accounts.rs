//! Accounts: what each caller spent here, what it paid with receipts, what this node spent
//! at it, and its allowance. Charging a call touches memory only (a durable write per call
//! would cost more than the call); receipts, which are what the parties acknowledge, are kept
//! in storage before they are answered, and the rest is saved at each checkpoint (every
//! second) and with every receipt.
//!
//! The policy, in numbers:
//! - a call costs what the service's owner set (at most [`MAX_PRICE`]), else [`DEFAULT_PRICE`];
//!   this node's own calls are free;
//! - every caller gets [`ALLOWANCE`] of free calls per [`ALLOWANCE_WINDOW_MS`];
//! - past it, a caller may run a net debt here (what it spent here less what this node spent
//!   at it) up to its credit: [`CREDIT`] scaled by its reputation (all of it when pre-trusted);
//!   and it may owe unpaid calls (not yet covered by its receipts) up to the same limit.

use crate::exports::micro::network::ledger::{
    Account, AccountBalance, ChargeError, ChargeRequest, Charged, PriceEntry, Receipt, ReceiptError,
};
use crate::micro::network::{identity, storage};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// One token, in micro-tokens.
const TOKEN: u64 = 1_000_000;
/// What a call costs when its owner set no price: one micro-token.
const DEFAULT_PRICE: u64 = 1;
/// The most an owner may ask for one call.
const MAX_PRICE: u64 = TOKEN;
/// Free calls per window, for every caller.
const ALLOWANCE: u64 = TOKEN / 10;
const ALLOWANCE_WINDOW_MS: u64 = 3600 * 1000;
/// The credit of a caller with reputation 1 (or pre-trusted).
const CREDIT: u64 = 10 * TOKEN;

/// What this node knows of one account.
#[derive(Default, Clone, Serialize, Deserialize)]
struct Peer {
    spent: u64,
    free: u64,
    allowance_used: u64,
    window_start_ms: u64,
    /// Credit last computed for it (balances are asked without a reputation).
    credit_limit: u64,
    /// The newest receipt it signed to this node, and this node to it.
    receipt_in: Option<Stored>,
    receipt_out: Option<Stored>,
}

#[derive(Clone, Serialize, Deserialize)]
struct Stored {
    cumulative: u64,
    counter: u64,
    signature: Vec<u8>,
}

impl Peer {
    fn paid(&self) -> u64 {
        self.receipt_in.as_ref().map_or(0, |r| r.cumulative)
    }

    fn earned(&self) -> u64 {
        self.receipt_out.as_ref().map_or(0, |r| r.cumulative)
    }

    /// Starts a new allowance window when the last one is over.
    fn refresh(&mut self, now_ms: u64) {
        if now_ms >= self.window_start_ms.saturating_add(ALLOWANCE_WINDOW_MS) {
            self.window_start_ms = now_ms;
            self.allowance_used = 0;
        }
    }

    fn balance(&self, account: &str, now_ms: u64) -> AccountBalance {
        let mut peer = self.clone();
        peer.refresh(now_ms);
        AccountBalance {
            account: account.to_string(),
            spent: peer.spent,
            paid: peer.paid(),
            earned: peer.earned(),
            free: peer.free,
            credit_limit: peer.credit_limit,
            allowance_left: ALLOWANCE.saturating_sub(peer.allowance_used),
            allowance_refresh_ms: peer.window_start_ms.saturating_add(ALLOWANCE_WINDOW_MS),
            counter_in: peer.receipt_in.as_ref().map_or(0, |r| r.counter),
            counter_out: peer.receipt_out.as_ref().map_or(0, |r| r.counter),
        }
    }
}

#[derive(Default)]
struct Book {
    loaded: bool,
    peers: BTreeMap<String, Peer>,
    prices: BTreeMap<String, u64>,
    /// Accounts changed since they were last saved.
    dirty: std::collections::BTreeSet<String>,
}

thread_local! {
    static BOOK: RefCell<Book> = RefCell::new(Book::default());
}

fn storage_error(e: storage::StorageError) -> String {
    format!("ledger storage: {e:?}")
}

/// Reads every saved account and price, once per instance.
fn load(book: &mut Book) -> Result<(), String> {
    if book.loaded {
        return Ok(());
    }
    for (prefix, prices) in [("account/", false), ("price/", true)] {
        let mut after = None;
        loop {
            let page = storage::list(prefix, after.as_deref(), 500).map_err(storage_error)?;
            for (key, value) in &page.entries {
                let name = key[prefix.len()..].to_string();
                if prices {
                    if let Ok(bytes) = <[u8; 8]>::try_from(value.as_slice()) {
                        book.prices.insert(name, u64::from_le_bytes(bytes));
                    }
                } else if let Ok(peer) = postcard::from_bytes::<Peer>(value) {
                    book.peers.insert(name, peer);
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    book.loaded = true;
    Ok(())
}

fn save(book: &mut Book, account: &str) -> Result<(), String> {
    let Some(peer) = book.peers.get(account) else {
        return Ok(());
    };
    let bytes = postcard::to_allocvec(peer).map_err(|e| e.to_string())?;
    storage::set(&format!("account/{account}"), &bytes).map_err(storage_error)?;
    book.dirty.remove(account);
    Ok(())
}

fn with_book<T>(f: impl FnOnce(&mut Book) -> Result<T, String>) -> Result<T, String> {
    BOOK.with(|book| {
        let mut book = book.borrow_mut();
        load(&mut book)?;
        f(&mut book)
    })
}

/// The text a receipt's signature covers.
fn signed_text(payer: &str, payee: &str, cumulative: u64, counter: u64) -> Vec<u8> {
    format!("micro-receipt/1\n{payer}\n{payee}\n{cumulative}\n{counter}").into_bytes()
}

fn credit_of(caller: &Account) -> u64 {
    if caller.pre_trusted {
        return CREDIT;
    }
    (CREDIT as f64 * caller.reputation.clamp(0.0, 1.0)) as u64
}

/// What one call costs `caller`, from the prices in `book`.
fn price_in(book: &Book, caller: &Account, service: &str, method: &str) -> u64 {
    if caller.local {
        return 0;
    }
    book.prices
        .get(&format!("{service}.{method}"))
        .or_else(|| book.prices.get(service))
        .copied()
        .unwrap_or(DEFAULT_PRICE)
}

pub fn price(caller: &Account, service: &str, method: &str) -> u64 {
    with_book(|book| Ok(price_in(book, caller, service, method))).unwrap_or(DEFAULT_PRICE)
}

pub fn set_price(target: &str, amount: u64) -> Result<(), String> {
    let valid = |s: &str| {
        !s.is_empty()
            && s.len() <= 128
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    let ok = match target.split_once('.') {
        Some((service, method)) => valid(service) && valid(method),
        None => valid(target),
    };
    if !ok {
        return Err(format!(
            "{target:?} names no service or service.method to price"
        ));
    }
    if amount > MAX_PRICE {
        return Err(format!(
            "{amount} micro-tokens is over the most a call may cost here, {MAX_PRICE} (one token)"
        ));
    }
    with_book(|book| {
        storage::set(&format!("price/{target}"), &amount.to_le_bytes()).map_err(storage_error)?;
        book.prices.insert(target.to_string(), amount);
        Ok(())
    })
}

pub fn prices() -> Vec<PriceEntry> {
    with_book(|book| {
        Ok(book
            .prices
            .iter()
            .map(|(target, amount)| PriceEntry {
                target: target.clone(),
                amount: *amount,
            })
            .collect())
    })
    .unwrap_or_default()
}

pub fn charge(request: ChargeRequest) -> Result<Charged, ChargeError> {
    let caller = &request.caller;
    with_book(|book| {
        let amount = price_in(book, caller, &request.service, &request.method);
        if amount == 0 {
            return Ok(Ok(Charged { amount: 0, free: 0 }));
        }
        let peer = book.peers.entry(caller.node.clone()).or_default();
        peer.refresh(request.now_ms);
        peer.credit_limit = credit_of(caller);
        book.dirty.insert(caller.node.clone());
        if peer.allowance_used.saturating_add(amount) <= ALLOWANCE {
            peer.allowance_used += amount;
            peer.free = peer.free.saturating_add(amount);
            return Ok(Ok(Charged {
                amount: 0,
                free: amount,
            }));
        }
        let refresh_s = peer
            .window_start_ms
            .saturating_add(ALLOWANCE_WINDOW_MS)
            .saturating_sub(request.now_ms)
            / 1000;
        let debt = peer
            .spent
            .saturating_add(amount)
            .saturating_sub(peer.earned());
        if debt > peer.credit_limit {
            return Ok(Err(ChargeError::PaymentRequired(format!(
                "{} would owe this node {debt} micro-tokens net, over its credit of {} \
                 (from its reputation); it earns credit by serving this node, and its \
                 allowance refreshes in {refresh_s} s",
                caller.node, peer.credit_limit
            ))));
        }
        let unpaid = peer
            .spent
            .saturating_add(amount)
            .saturating_sub(peer.paid());
        if unpaid > peer.credit_limit {
            return Ok(Err(ChargeError::PaymentRequired(format!(
                "{} has {unpaid} micro-tokens of calls not covered by its receipts, over its \
                 credit of {}: it must settle first",
                caller.node, peer.credit_limit
            ))));
        }
        peer.spent += amount;
        Ok(Ok(Charged { amount, free: 0 }))
    })
    .map_err(|e| ChargeError::Denied(format!("payment cannot be verified: {e}")))?
}

pub fn pay(payee: &str, amount: u64) -> Result<Receipt, String> {
    if amount == 0 {
        return Err("nothing to pay".into());
    }
    let payer = identity::node_id();
    if payee == payer {
        return Err("a node does not pay itself".into());
    }
    with_book(|book| {
        let peer = book.peers.entry(payee.to_string()).or_default();
        let (cumulative, counter) = match &peer.receipt_out {
            Some(r) => (r.cumulative.saturating_add(amount), r.counter + 1),
            None => (amount, 1),
        };
        let signature = identity::sign(&signed_text(&payer, payee, cumulative, counter));
        peer.receipt_out = Some(Stored {
            cumulative,
            counter,
            signature: signature.clone(),
        });
        // Kept before it is handed over: a crash never makes this node sign a lower amount
        // with a counter already used.
        save(book, payee)?;
        Ok(Receipt {
            payer,
            payee: payee.to_string(),
            cumulative,
            counter,
            signature,
        })
    })
}

pub fn accept(receipt: Receipt) -> Result<u64, ReceiptError> {
    let me = identity::node_id();
    if receipt.payee != me {
        return Err(ReceiptError::Refused(format!(
            "a receipt to {} handed to {me}",
            receipt.payee
        )));
    }
    let text = signed_text(
        &receipt.payer,
        &receipt.payee,
        receipt.cumulative,
        receipt.counter,
    );
    if !identity::verify(&receipt.payer, &text, &receipt.signature) {
        return Err(ReceiptError::BadSignature(format!(
            "receipt {} of {} is not signed by its payer",
            receipt.counter, receipt.payer
        )));
    }
    with_book(|book| {
        let peer = book.peers.entry(receipt.payer.clone()).or_default();
        if let Some(newest) = &peer.receipt_in
            && (receipt.counter <= newest.counter || receipt.cumulative < newest.cumulative)
        {
            return Ok(Err(ReceiptError::Replayed(format!(
                "receipt {} ({} micro-tokens) of {} is not newer than receipt {} ({}) taken \
                 already",
                receipt.counter,
                receipt.cumulative,
                receipt.payer,
                newest.counter,
                newest.cumulative
            ))));
        }
        let credited = receipt.cumulative - peer.paid();
        peer.receipt_in = Some(Stored {
            cumulative: receipt.cumulative,
            counter: receipt.counter,
            signature: receipt.signature,
        });
        // A receipt only covers calls it was charged for: after a crash lost charges held in
        // memory, what it paid is what it spent at least.
        peer.spent = peer.spent.max(receipt.cumulative);
        save(book, &receipt.payer)?;
        Ok(Ok(credited))
    })
    .map_err(ReceiptError::Refused)?
}

pub fn receipts() -> Vec<Receipt> {
    let me = identity::node_id();
    with_book(|book| {
        let mut out = Vec::new();
        for (account, peer) in &book.peers {
            if let Some(r) = &peer.receipt_in {
                out.push(Receipt {
                    payer: account.clone(),
                    payee: me.clone(),
                    cumulative: r.cumulative,
                    counter: r.counter,
                    signature: r.signature.clone(),
                });
            }
            if let Some(r) = &peer.receipt_out {
                out.push(Receipt {
                    payer: me.clone(),
                    payee: account.clone(),
                    cumulative: r.cumulative,
                    counter: r.counter,
                    signature: r.signature.clone(),
                });
            }
        }
        Ok(out)
    })
    .unwrap_or_default()
}

pub fn balance(account: &str, now_ms: u64) -> AccountBalance {
    with_book(|book| Ok(book.peers.get(account).map(|p| p.balance(account, now_ms))))
        .ok()
        .flatten()
        .unwrap_or_else(|| Peer::default().balance(account, now_ms))
}

pub fn balances(now_ms: u64) -> Vec<AccountBalance> {
    with_book(|book| {
        Ok(book
            .peers
            .iter()
            .map(|(account, peer)| peer.balance(account, now_ms))
            .collect())
    })
    .unwrap_or_default()
}

/// Whether `account` may have its tokens refreshed: not over its credit here.
pub fn in_good_standing(account: &str) -> Result<(), String> {
    with_book(|book| {
        let Some(peer) = book.peers.get(account) else {
            return Ok(());
        };
        let debt = peer.spent.saturating_sub(peer.earned());
        let unpaid = peer.spent.saturating_sub(peer.paid());
        if debt.max(unpaid) > peer.credit_limit && peer.spent > 0 {
            return Err(format!(
                "account {account} owes this node {} micro-tokens, over its credit of {}",
                debt.max(unpaid),
                peer.credit_limit
            ));
        }
        Ok(())
    })
}

pub fn checkpoint() -> Result<(), String> {
    // Nothing was charged since this instance started if it never read its books: saving
    // nothing must not read them all (a swap asks this of the outgoing ledger).
    if !BOOK.with(|book| book.borrow().loaded) {
        return Ok(());
    }
    with_book(|book| {
        let dirty: Vec<String> = book.dirty.iter().cloned().collect();
        for account in dirty {
            save(book, &account)?;
        }
        Ok(())
    })
}
