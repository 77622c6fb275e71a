//! Governance decisions without a network: a node opened alone asks its default governance
//! (the embedded component, in its slot) the node's questions with askers made by
//! [`Askers`]: this node, a stranger, a peer its operator pre-trusts. What holds: the node's
//! own calls and deploys are allowed; a stranger's deploy is refused, its call to a private
//! service denied, its public calls limited to its rate; a replica is taken only from a
//! trusted node; a peer that sends invalid data is throttled, then refused.

#![allow(clippy::unwrap_used, reason = "a test: a failed step is the failure")]

use micro_base::config::Config;
use micro_core::node::Node;
use micro_core::system::governance::{NoPeers, Observation, Refusal, Visibility};
use std::sync::Arc;

/// A key-shaped id nobody pre-trusts.
const STRANGER: &str = "1111111111111111111111111111111111111111111111111111111111111111";
/// A key-shaped id the operator lists in `governance.trusted`.
const FRIEND: &str = "2222222222222222222222222222222222222222222222222222222222222222";

fn open() -> (tempfile::TempDir, Arc<Node>) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.governance.trusted = vec![FRIEND.to_string()];
    let node = Node::open(config, dir.path()).unwrap();
    (dir, node)
}

#[tokio::test]
async fn calls_are_decided_by_who_asks() {
    let (_dir, node) = open();
    let governance = node.governance().await.unwrap();
    let this = node.askers.this();
    let stranger = node.askers.of(STRANGER, &NoPeers);
    let friend = node.askers.of(FRIEND, &NoPeers);
    assert!(this.local && !stranger.local && friend.pre_trusted && !stranger.pre_trusted);

    for visibility in [Visibility::Public, Visibility::Private] {
        governance
            .authorize_call(&this, "todo", "add", visibility)
            .await
            .unwrap();
        governance
            .authorize_call(&friend, "todo", "add", visibility)
            .await
            .unwrap();
    }
    let private = governance
        .authorize_call(&stranger, "todo", "add", Visibility::Private)
        .await;
    assert!(
        matches!(&private, Err(Refusal::Denied { reason, .. }) if reason.contains("private")),
        "{private:?}"
    );

    // A stranger (a newcomer's reputation) is allowed, at its rate: a burst far past it meets
    // a rate limit; this node's own calls never do.
    let mut limited = None;
    for _ in 0..50_000 {
        if let Err(e) = governance
            .authorize_call(&stranger, "todo", "list", Visibility::Public)
            .await
        {
            limited = Some(e);
            break;
        }
    }
    assert!(
        matches!(limited, Some(Refusal::RateLimited { retry_ms, .. }) if retry_ms > 0),
        "{limited:?}"
    );
    for _ in 0..50_000 {
        governance
            .authorize_call(&this, "todo", "list", Visibility::Public)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn deploys_come_from_the_nodes_own_user_and_replicas_from_trusted_nodes() {
    let (_dir, node) = open();
    let governance = node.governance().await.unwrap();
    let deploy = async |asker, replica| {
        governance
            .approve_deploy(&asker, "todo", 10_000, None, 64, 0, replica)
            .await
    };
    deploy(node.askers.this(), false).await.unwrap();
    let stranger = deploy(node.askers.of(STRANGER, &NoPeers), false).await;
    assert!(
        matches!(&stranger, Err(Refusal::Denied { reason, .. }) if reason.contains("own user")),
        "{stranger:?}"
    );
    // A newcomer's replica is refused (replicas are taken from reputation 0.4); a pre-trusted
    // node's is taken.
    let replica = deploy(node.askers.of(STRANGER, &NoPeers), true).await;
    assert!(
        matches!(&replica, Err(Refusal::Denied { reason, .. }) if reason.contains("replica")),
        "{replica:?}"
    );
    deploy(node.askers.of(FRIEND, &NoPeers), true)
        .await
        .unwrap();
    // Over the caps, even this node's own user is refused.
    let big = governance
        .approve_deploy(&node.askers.this(), "todo", 1 << 40, None, 64, 0, false)
        .await;
    assert!(matches!(big, Err(Refusal::Denied { .. })), "{big:?}");
}

#[tokio::test]
async fn a_peer_that_sends_invalid_data_is_throttled_then_refused() {
    let (_dir, node) = open();
    let governance = node.governance().await.unwrap();
    let stranger = node.askers.of(STRANGER, &NoPeers);
    governance.admit_peer(&stranger).await.unwrap();

    // One invalid record: below the level every new key starts at, so throttled.
    governance.observe(Observation::Invalid(STRANGER.to_string()));
    governance.flush_observations().await;
    let mut throttled = None;
    for _ in 0..100 {
        if let Err(e) = governance.admit_peer(&stranger).await {
            throttled = Some(e);
            break;
        }
    }
    assert!(
        matches!(throttled, Some(Refusal::RateLimited { .. })),
        "{throttled:?}"
    );

    // Three: below the admission floor, refused outright.
    for _ in 0..2 {
        governance.observe(Observation::Invalid(STRANGER.to_string()));
    }
    governance.flush_observations().await;
    let refused = governance.admit_peer(&stranger).await;
    assert!(
        matches!(&refused, Err(Refusal::Denied { reason, .. }) if reason.contains("floor")),
        "{refused:?}"
    );
    // A pre-trusted peer is admitted whatever it did.
    let friend = node.askers.of(FRIEND, &NoPeers);
    governance.observe(Observation::Invalid(FRIEND.to_string()));
    governance.flush_observations().await;
    governance.admit_peer(&friend).await.unwrap();
}

#[tokio::test]
async fn a_charge_reads_the_payers_reputation_even_as_the_nodes_first_question() {
    // Two fresh nodes that price a method alike; one was asked a decision before (its
    // governance loaded), the other's first question is the charge itself.
    let charges_until_refused = async |governance_first: bool| {
        let (_dir, node) = open();
        if governance_first {
            node.governance().await.unwrap();
        }
        let ledger = node.ledger().await.unwrap();
        ledger.set_price("hello", 10).await.unwrap().unwrap();
        let mut charged = 0;
        while charged < 30_000 {
            if micro_core::transport::charge_call(&node, STRANGER, "hello", "greet")
                .await
                .is_err()
            {
                break;
            }
            charged += 1;
        }
        charged
    };
    let asked_before = charges_until_refused(true).await;
    let first_question = charges_until_refused(false).await;
    // A stranger has a newcomer's reputation, which gives it credit past its allowance.
    assert!(asked_before > 0);
    assert_eq!(first_question, asked_before);
}
