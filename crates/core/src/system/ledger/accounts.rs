//! Accounting as the host runs it: every call served here is charged through the ledger
//! component before it runs; what this node's calls cost at other nodes is owed until the
//! settle loop (`net::settle`) has the ledger sign one receipt per payee for all of it and
//! hands it over. The ledger component decides prices, allowance and credit and keeps the
//! receipts; the host keeps only what is cheap and in flight: amounts owed since the last
//! receipt, receipts not yet delivered, and per-service totals for the node's stats.

use super::Ledger;
pub use super::bindings::exports::micro::network::ledger::{
    Account, AccountBalance, ChargeError, ChargeRequest, Charged, PriceEntry, Receipt, ReceiptError,
};
use crate::system::governance::{Askers, Governance};
use micro_runtime::wit::micro::network::types::CallError;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// How long a reputation asked of governance is used for pricing and credit.
const REPUTATION_TTL: Duration = Duration::from_secs(5);

/// What one service earned here and cost this node elsewhere, since the node started.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Flow {
    /// Charged to its callers here (micro-tokens).
    pub earned: u64,
    /// Covered by callers' allowances here.
    pub free: u64,
    /// What this node's calls to it on other nodes cost this node.
    pub spent: u64,
}

/// What the host holds for accounting.
#[derive(Default)]
pub struct HostBooks {
    flows: BTreeMap<String, Flow>,
    /// Owed to each payee since the last receipt signed to it.
    owed: HashMap<String, u64>,
    /// The newest receipt to each payee not yet taken by it.
    pending: HashMap<String, Receipt>,
    /// Whether `pending` was filled from the ledger's receipts after a start.
    restored: bool,
    reputations: HashMap<String, (f64, Instant)>,
}

impl HostBooks {
    /// The figures of `service`, made on its first charge (a charged call allocates nothing).
    fn flow(&mut self, service: &str) -> &mut Flow {
        if !self.flows.contains_key(service) {
            self.flows.insert(service.to_string(), Flow::default());
        }
        match self.flows.get_mut(service) {
            Some(flow) => flow,
            None => unreachable!("inserted above"),
        }
    }
}

/// Why a receipt handed over was not taken, for the wire.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, thiserror::Error)]
pub enum ReceiptRefusal {
    #[error("bad signature: {0}")]
    /// Its signature does not verify against its payer.
    BadSignature(String),
    #[error("replayed: {0}")]
    /// Not newer than the last one taken.
    Replayed(String),
    #[error("refused: {0}")]
    /// The ledger refused it (its reason).
    Refused(String),
    /// The ledger failed: the receipt is not taken (the payer hands it over again).
    #[error("the ledger failed: {0}")]
    Failed(String),
}

impl From<ReceiptError> for ReceiptRefusal {
    fn from(e: ReceiptError) -> Self {
        match e {
            ReceiptError::BadSignature(m) => Self::BadSignature(m),
            ReceiptError::Replayed(m) => Self::Replayed(m),
            ReceiptError::Refused(m) => Self::Refused(m),
        }
    }
}

impl Ledger {
    fn books(&self) -> std::sync::MutexGuard<'_, HostBooks> {
        micro_base::sync::lock(&self.books)
    }

    /// Who `who` (a node id, or an account name a token of this node carries) is to the
    /// ledger: local, pre-trusted, and its reputation as `governance` says (asked at most
    /// every few seconds per account).
    pub async fn account_of(
        &self,
        askers: &Askers,
        governance: Option<&Governance>,
        who: &str,
    ) -> Account {
        let local = who == askers.this_node();
        let pre_trusted = askers.pre_trusted(who);
        let mut account = Account {
            node: who.to_string(),
            local,
            pre_trusted,
            reputation: if local || pre_trusted { 1.0 } else { 0.0 },
        };
        // A name a token gave (not a node) has no reputation. The shape of a node id is enough
        // to tell: parsing it as a key costs more than the rest of a charge.
        let node_shaped = who.len() == 64 && who.bytes().all(|b| b.is_ascii_hexdigit());
        if local || pre_trusted || !node_shaped {
            return account;
        }
        if let Some((score, at)) = self.books().reputations.get(who)
            && at.elapsed() < REPUTATION_TTL
        {
            account.reputation = *score;
            return account;
        }
        if let Some(governance) = governance
            && let Some(scores) = governance.reputations(&[who.to_string()]).await
            && let Some(score) = scores.first()
        {
            account.reputation = *score;
            let mut books = self.books();
            if books.reputations.len() > 10_000 {
                books.reputations.clear();
            }
            books
                .reputations
                .insert(who.to_string(), (*score, Instant::now()));
        }
        account
    }

    /// Charges one call of `service`.`method` served here to `caller`: the amount it owes
    /// for it. Over its credit it is `payment-required`; a ledger that fails denies the call.
    pub async fn charge(
        &self,
        caller: Account,
        service: &str,
        method: &str,
        now_ms: u64,
    ) -> Result<u64, CallError> {
        let request = ChargeRequest {
            caller,
            service: service.to_string(),
            method: method.to_string(),
            now_ms,
        };
        let charged = self
            .ask("charge", async |l, store| {
                l.call_charge(store, &request).await
            })
            .await
            .map_err(|e| CallError::Denied(format!("payment cannot be verified, so denied: {e}")))?
            .map_err(|e| match e {
                ChargeError::PaymentRequired(m) => CallError::PaymentRequired(m),
                ChargeError::Denied(m) => CallError::Denied(m),
            })?;
        if charged.amount > 0 || charged.free > 0 {
            let mut books = self.books();
            let flow = books.flow(service);
            flow.earned = flow.earned.saturating_add(charged.amount);
            flow.free = flow.free.saturating_add(charged.free);
        }
        Ok(charged.amount)
    }

    /// Notes that `payee` charged this node `amount` for a call of `service`: owed until the
    /// next receipt.
    pub fn owe(&self, payee: &str, service: &str, amount: u64) {
        if amount == 0 {
            return;
        }
        let mut books = self.books();
        let owed = books.owed.entry(payee.to_string()).or_default();
        *owed = owed.saturating_add(amount);
        let flow = books.flow(service);
        flow.spent = flow.spent.saturating_add(amount);
    }

    /// Signs a receipt to each payee this node owes (one for all it owes it) and answers every
    /// receipt still to hand over. After a start, the newest receipt to each payee is handed
    /// over again (it may not have arrived before the node stopped; a payee that has it
    /// answers "replayed").
    pub async fn receipts_due(&self, me: &str, now_ms: u64) -> Vec<Receipt> {
        let restored = self.books().restored;
        if !restored && let Ok(all) = self.receipts().await {
            let mut books = self.books();
            for r in all.into_iter().filter(|r| r.payer == me) {
                books.pending.entry(r.payee.clone()).or_insert(r);
            }
            books.restored = true;
        }
        let owed: Vec<(String, u64)> = self.books().owed.drain().collect();
        for (payee, amount) in owed {
            let signed = self
                .ask("pay", async |l, store| {
                    l.call_pay(store, &payee, amount, now_ms).await
                })
                .await;
            match signed {
                Ok(Ok(receipt)) => {
                    self.books().pending.insert(payee, receipt);
                }
                // Still owed: the next round tries again.
                Ok(Err(e)) | Err(e) => {
                    tracing::warn!(%payee, amount, error = %e, "could not sign a receipt");
                    let mut books = self.books();
                    let owed = books.owed.entry(payee).or_default();
                    *owed = owed.saturating_add(amount);
                }
            }
        }
        self.books().pending.values().cloned().collect()
    }

    /// `receipt` was taken by its payee (or it had a newer one): no need to hand it over again.
    pub fn delivered(&self, receipt: &Receipt) {
        let mut books = self.books();
        if books
            .pending
            .get(&receipt.payee)
            .is_some_and(|r| r.counter <= receipt.counter)
        {
            books.pending.remove(&receipt.payee);
        }
    }

    /// Takes a receipt a peer handed over; answers the amount newly paid.
    pub async fn accept_receipt(
        &self,
        receipt: &Receipt,
        now_ms: u64,
    ) -> Result<u64, ReceiptRefusal> {
        self.ask("accept-receipt", async |l, store| {
            l.call_accept_receipt(store, receipt, now_ms).await
        })
        .await
        .map_err(ReceiptRefusal::Failed)?
        .map_err(ReceiptRefusal::from)
    }

    /// The newest receipt of each pair this node is part of.
    pub async fn receipts(&self) -> Result<Vec<Receipt>, String> {
        self.ask("receipts", async |l, store| l.call_receipts(store).await)
            .await
    }

    /// Where every account stands with this node.
    pub async fn balances(&self, now_ms: u64) -> Result<Vec<AccountBalance>, String> {
        self.ask("balances", async |l, store| {
            l.call_balances(store, now_ms).await
        })
        .await
    }

    /// Sets the price of a service or `service.method`; the inner error is the ledger's
    /// refusal, the outer one its failure.
    pub async fn set_price(&self, target: &str, amount: u64) -> Result<Result<(), String>, String> {
        self.ask("set-price", async |l, store| {
            l.call_set_price(store, target, amount).await
        })
        .await
    }

    /// The prices owners set.
    pub async fn prices(&self) -> Result<Vec<PriceEntry>, String> {
        self.ask("prices", async |l, store| l.call_prices(store).await)
            .await
    }

    /// Has the ledger save what it holds in memory.
    pub async fn checkpoint(&self, now_ms: u64) -> Result<(), String> {
        self.ask("checkpoint", async |l, store| {
            l.call_checkpoint(store, now_ms).await
        })
        .await?
    }

    /// Per service: earned here, covered by allowances, spent elsewhere (since the start).
    pub fn flows(&self) -> BTreeMap<String, Flow> {
        self.books().flows.clone()
    }

    /// What this node owes payees and has not yet signed receipts for, and receipts signed
    /// and not yet taken.
    pub fn in_flight(&self) -> (u64, usize) {
        let books = self.books();
        (books.owed.values().sum(), books.pending.len())
    }
}
