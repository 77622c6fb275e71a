//! Settling: every `ledger.settle_interval_ms` this node has its ledger sign one receipt per
//! peer it owes (covering every call there since the last receipt) and hands the newest
//! receipt to each payee until it is taken. Receipts are cumulative, so one lost or late is
//! made good by the next. Every second the ledger also saves what it holds in memory.

use super::Network;
use super::wire::{Reply, Request};
use crate::local::Local;
use micro_core::system::ledger::accounts::ReceiptRefusal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How often the ledger saves what it holds in memory.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Runs for the life of the peer layer.
pub async fn settle_loop(local: Arc<dyn Local>, net: Arc<Network>) {
    let every = Duration::from_millis(net.config.ledger.settle_interval_ms.max(10));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut checkpointed = Instant::now();
    loop {
        ticks.tick().await;
        let Some(ledger) = local.ledger_if_loaded() else {
            continue;
        };
        let now = net.clock.now_ms();
        for receipt in ledger.receipts_due(net.askers.this_node(), now).await {
            if hand_over(&net, &receipt, every).await {
                ledger.delivered(&receipt);
            }
        }
        if checkpointed.elapsed() >= CHECKPOINT_EVERY {
            checkpointed = Instant::now();
            if let Err(e) = ledger.checkpoint(now).await {
                tracing::warn!(error = %e, "the ledger could not save its state");
            }
        }
    }
}

/// Hands `receipt` to its payee; whether it has it now (taken, or it had a newer one).
async fn hand_over(
    net: &Network,
    receipt: &micro_core::system::ledger::accounts::Receipt,
    time: Duration,
) -> bool {
    let Ok(payee) = micro_base::identity::parse_node_id(&receipt.payee) else {
        return true;
    };
    let Some(addr) = net.addr_of(&payee) else {
        return false;
    };
    let request = Request::Settle {
        receipt: receipt.clone().into(),
    };
    let deadline = Instant::now() + time.max(Duration::from_secs(1));
    let reply = net
        .pool
        .request(&addr, &request, &[], net.frame_limit(), deadline)
        .await;
    match reply {
        Ok((Reply::Settled(Ok(_) | Err(ReceiptRefusal::Replayed(_))), _)) => {
            net.stats.receipts_delivered.fetch_add(1, Ordering::Relaxed);
            true
        }
        Ok((Reply::Settled(Err(e)), _)) => {
            tracing::warn!(payee = %payee.fmt_short(), error = %e, "a peer did not take a receipt");
            // A payee that refuses it for good (not its receipt) is not asked again; a failed
            // ledger is.
            !matches!(e, ReceiptRefusal::Failed(_))
        }
        Ok((other, _)) => {
            tracing::debug!(payee = %payee.fmt_short(), reply = ?other, "receipt not taken");
            false
        }
        Err(e) => {
            tracing::debug!(payee = %payee.fmt_short(), error = %e, "receipt not handed over");
            false
        }
    }
}
