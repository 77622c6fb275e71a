//! Services in each language, side by side: the `hello` example of Rust, Python and JavaScript,
//! each built by the node from its directory. Per language: component size, deploy time (the
//! build excluded: validate, compile, describe), the first call's latency, and steady calls
//! through the gateway under wrk (p50, p99, requests per second).

use super::{Args, Result, agent, evolve, start_micro, wrk};
use std::time::Instant;

/// Runs the languages benchmark and prints its table.
pub fn run(args: &Args) -> Result<()> {
    let root = evolve::repo_root();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (_node, url) = start_micro(args, dir.path(), "")?;
    println!("\n## Services in each language (`hello`, built by the node from its directory)\n");
    println!(
        "| language | component | deploy (build excluded) | first call | p50 | p99 | req/s (wrk, 16 connections) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (language, source, name) in [
        ("Rust", root.join("examples/hello"), "hello"),
        ("Python", root.join("examples/python/hello"), "py-hello"),
        ("JavaScript", root.join("examples/js/hello"), "js-hello"),
    ] {
        let timeline = evolve::run(&url, &source.display().to_string())?;
        let deploy = timeline.done - timeline.at("deploy");
        let mut r = agent()
            .get(format!("{url}/api/services/{name}"))
            .call()
            .map_err(|e| e.to_string())?;
        let record: serde_json::Value =
            serde_json::from_str(&r.body_mut().read_to_string().map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
        let size = record["size"].as_f64().unwrap_or(0.0) / (1024.0 * 1024.0);
        let started = Instant::now();
        super::call(&url, &format!("/{name}/greet"), r#"{"name":"Ada"}"#)?;
        let first = started.elapsed().as_secs_f64() * 1e3;
        let w = wrk(
            &format!("{url}/{name}/greet"),
            args.seconds,
            Some(r#"{"name":"Ada"}"#),
            dir.path(),
        )?;
        println!(
            "| {language} | {size:.1} MB | {deploy:.2} s | {first:.1} ms | {} | {} | {:.0} |{}",
            w.p50,
            w.p99,
            w.rps,
            if w.errors.is_empty() {
                String::new()
            } else {
                format!(" {}", w.errors)
            }
        );
    }
    Ok(())
}
