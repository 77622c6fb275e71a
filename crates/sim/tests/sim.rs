//! The DHT in the simulator, at sizes a test run affords: what must hold of the protocol at
//! any size (lookups find what was provided, in few hops; churn and lying nodes do not break
//! it; a node's state and traffic do not grow with the network), and that a seed fixes a run.

use micro_sim::{Config, Start, run};

fn small(nodes: usize) -> Config {
    let mut config = Config::new(nodes);
    config.warmup_s = 120;
    config.measure_s = 120;
    config.lookups_per_node_hour = 30.0;
    config
}

#[test]
fn a_seed_fixes_the_run() {
    let a = run(small(500));
    let b = run(small(500));
    assert_eq!(a.events, b.events);
    assert_eq!(a.lookups, b.lookups);
    assert_eq!(a.bytes_per_s.mean(), b.bytes_per_s.mean());
    let mut other = small(500);
    other.seed = 2;
    assert_ne!(run(other).events, a.events);
}

#[test]
fn nodes_that_joined_through_the_protocol_find_providers_in_few_hops() {
    let mut config = small(2000);
    config.start = Start::Joined;
    // Joins are spread over half the warm-up, and the first provides follow them.
    config.warmup_s = 600;
    let r = run(config);
    assert!(r.lookups > 500, "{} lookups", r.lookups);
    // 99.8-100 % over seeds 1-4: an entry stored while the network was small can sit on nodes
    // no longer among the closest, for newcomers no holder handed it to, until its republish.
    assert!(r.success() >= 0.997, "found {:.4}", r.success());
    // log2(2000) / 2 ≈ 5.5
    assert!(
        r.hops.quantile(0.99) <= 5.5,
        "hops p99 {}",
        r.hops.quantile(0.99)
    );
    assert!(
        r.stored.quantile(0.5) >= 8.0,
        "replicas {}",
        r.stored.quantile(0.5)
    );
}

#[test]
fn churn_leaves_lookups_succeeding() {
    let mut config = small(2000);
    config.churn_per_hour = 0.3;
    let r = run(config);
    assert!(r.churned > 0);
    assert!(
        r.success() >= 0.999,
        "found {:.4} at 30 % churn",
        r.success()
    );
}

#[test]
fn lying_nodes_on_a_tenth_of_the_network_hide_almost_nothing() {
    let mut config = small(2000);
    config.sybil = 0.1;
    let r = run(config);
    assert!(r.sybils > 0);
    assert!(
        r.success() >= 0.99,
        "found {:.4} with 10 % Sybils",
        r.success()
    );
}

#[test]
fn state_and_traffic_per_node_barely_grow_with_the_network() {
    let a = run(small(1000));
    let b = run(small(8000));
    let traffic = b.bytes_per_s.quantile(0.5) / a.bytes_per_s.quantile(0.5);
    let state = b.state_bytes.quantile(0.5) / a.state_bytes.quantile(0.5);
    // ×8 nodes: log2 grows by 3 bits of about 10.
    assert!(traffic < 1.6, "traffic ×{traffic:.2}");
    assert!(state < 1.6, "state ×{state:.2}");
}
