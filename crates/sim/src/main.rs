//! `micro-sim`: runs the DHT simulator over network sizes, churn rates and Sybil shares, prints
//! one markdown row per run, and fails when a node's traffic more than doubles from the
//! smallest network to the largest (at no churn and no Sybils).

use clap::Parser;
use micro_sim::{Config, Report, Start, TopicConfig, TopicReport, run, run_topic};
use std::process::ExitCode;

#[derive(Parser)]
#[command(about = "Simulates the micro DHT: per-node traffic, state, lookup hops and success")]
struct Args {
    /// Honest nodes, comma-separated sizes.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    nodes: Vec<usize>,
    /// Fractions of nodes replaced per hour, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    churn: Vec<f64>,
    /// Sybil shares of all nodes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    sybil: Vec<f64>,
    /// Every node joins through the protocol instead of starting from a made table.
    #[arg(long)]
    joined: bool,
    /// Simulated seconds before measuring.
    #[arg(long, default_value_t = 120)]
    warmup: u64,
    /// Simulated seconds measured.
    #[arg(long, default_value_t = 300)]
    measure: u64,
    /// Provider lookups per node per hour.
    #[arg(long, default_value_t = 6.0)]
    lookups: f64,
    /// Services per node.
    #[arg(long, default_value_t = 1)]
    services: usize,
    /// Disjoint paths per lookup.
    #[arg(long)]
    paths: Option<usize>,
    /// Requests in flight per lookup.
    #[arg(long)]
    alpha: Option<usize>,
    /// Connections a node keeps open.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// The seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Simulate topic delivery instead: one topic's subscribers as a gossip swarm, these
    /// sizes, comma-separated (`--churn`, `--warmup`, `--measure` and `--seed` apply).
    #[arg(long, value_delimiter = ',')]
    topics: Vec<usize>,
    /// Messages the topic's publisher sends per second.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Seconds a topic node hears nothing before it joins through one more subscriber
    /// (0: never).
    #[arg(long, default_value_t = 30)]
    refresh: u64,
}

fn topics(args: &Args) -> ExitCode {
    println!("{}", TopicReport::header());
    for &subscribers in &args.topics {
        for &churn in &args.churn {
            let mut config = TopicConfig::new(subscribers);
            config.churn_per_hour = churn;
            config.warmup_s = args.warmup;
            config.measure_s = args.measure;
            config.messages_per_s = args.rate;
            config.refresh_ms = args.refresh * 1000;
            config.seed = args.seed;
            println!("{}", run_topic(config));
        }
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !args.topics.is_empty() {
        return topics(&args);
    }
    println!("{}", Report::header());
    let mut clean: Vec<Report> = Vec::new();
    for &nodes in &args.nodes {
        for &churn in &args.churn {
            for &sybil in &args.sybil {
                let mut config = Config::new(nodes);
                config.churn_per_hour = churn;
                config.sybil = sybil;
                config.start = if args.joined {
                    Start::Joined
                } else {
                    Start::Made
                };
                config.warmup_s = args.warmup;
                config.measure_s = args.measure;
                config.lookups_per_node_hour = args.lookups;
                config.services_per_node = args.services;
                config.seed = args.seed;
                config.connections = args.connections;
                if let Some(p) = args.paths {
                    config.params.paths = p;
                }
                if let Some(a) = args.alpha {
                    config.params.alpha = a;
                }
                let report = run(config);
                println!("{report}");
                if churn == 0.0 && sybil == 0.0 {
                    clean.push(report);
                }
            }
        }
    }
    if let (Some(small), Some(large)) = (clean.first(), clean.last())
        && large.nodes > small.nodes
    {
        let p50 = large.bytes_per_s.quantile(0.5) / small.bytes_per_s.quantile(0.5).max(1.0);
        let p99 = large.bytes_per_s.quantile(0.99) / small.bytes_per_s.quantile(0.99).max(1.0);
        println!(
            "\nper-node traffic from {} to {} nodes: p50 ×{p50:.2}, p99 ×{p99:.2} (the goal: at most ×2)",
            small.nodes, large.nodes
        );
        if p50 > 2.0 || p99 > 2.0 {
            println!("FAILED: per-node traffic more than doubled");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
