//! Topic delivery in the simulator: a topic's subscribers as a gossip swarm deliver every
//! message to every subscriber that lives through it, under churn, and a node's traffic does
//! not grow with the number of subscribers.

use micro_sim::{TopicConfig, run_topic};

fn topic(subscribers: usize, churn: f64) -> TopicConfig {
    let mut config = TopicConfig::new(subscribers);
    config.churn_per_hour = churn;
    config.warmup_s = 60;
    config.measure_s = 60;
    config
}

#[test]
fn a_topic_reaches_its_subscribers_under_churn() {
    let r = run_topic(topic(500, 0.3));
    assert_eq!(r.messages, 60);
    assert!(r.expected > 25_000, "{} expected", r.expected);
    assert!(r.delivery() >= 0.995, "delivered {:.4}", r.delivery());
    assert_eq!(r.deaf, 0, "subscribers that received nothing");
    assert!(r.churned > 0);
}

#[test]
fn a_nodes_traffic_does_not_grow_with_the_topic() {
    let small = run_topic(topic(50, 0.0));
    let large = run_topic(topic(1000, 0.0));
    assert!(small.delivery() >= 0.999 && large.delivery() >= 0.999);
    let ratio = large.bytes_per_s.quantile(0.5) / small.bytes_per_s.quantile(0.5);
    assert!(
        ratio < 2.0,
        "bytes/s p50 x{ratio:.2} from 50 to 1,000 subscribers"
    );
    // A node keeps a handful of neighbours whatever the size.
    assert!(large.neighbours.max() <= 5.0);
}

#[test]
fn a_seed_fixes_a_topic_run() {
    let a = run_topic(topic(200, 0.1));
    let b = run_topic(topic(200, 0.1));
    assert_eq!(a.events, b.events);
    assert_eq!(a.delivered, b.delivered);
    let mut other = topic(200, 0.1);
    other.seed = 2;
    assert_ne!(run_topic(other).events, a.events);
}
