//! Measures, from inside a component, what a service sees: the round trip of `transport.call`
//! and the cost of `broker.publish`. Timing uses the WASI monotonic clock.

use micro_sdk::{Context, Error, Result};
use serde::{Deserialize, Serialize};
use std::time::Instant;

struct Caller;

#[derive(Deserialize)]
struct Measure {
    service: String,
    method: String,
    body: serde_json::Value,
    n: usize,
}

#[derive(Serialize)]
struct Latency {
    n: usize,
    p50_ns: u64,
    p99_ns: u64,
    mean_ns: u64,
    min_ns: u64,
}

fn measure(_ctx: &Context, input: Measure) -> Result<Latency> {
    let payload = serde_json::to_vec(&input.body).map_err(|e| Error::bad_request(e.to_string()))?;
    let mut samples = Vec::with_capacity(input.n);
    for _ in 0..input.n.max(1) {
        let start = Instant::now();
        micro_sdk::call_raw(
            &input.service,
            &input.method,
            payload.clone(),
            "application/json",
        )?;
        samples.push(start.elapsed().as_nanos() as u64);
    }
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    Ok(Latency {
        n: samples.len(),
        p50_ns: at(0.50),
        p99_ns: at(0.99),
        mean_ns: samples.iter().sum::<u64>() / samples.len() as u64,
        min_ns: samples[0],
    })
}

#[derive(Deserialize)]
struct Publish {
    topic: String,
    n: u64,
    size: usize,
}

#[derive(Serialize)]
struct Published {
    n: u64,
    elapsed_ns: u64,
}

fn publish(_ctx: &Context, input: Publish) -> Result<Published> {
    let payload = vec![b'x'; input.size];
    let start = Instant::now();
    for _ in 0..input.n {
        micro_sdk::publish(&input.topic, &payload, "text/plain")?;
    }
    Ok(Published {
        n: input.n,
        elapsed_ns: start.elapsed().as_nanos() as u64,
    })
}

micro_sdk::service!(Caller {
    "measure" => measure,
    "publish" => publish,
});
