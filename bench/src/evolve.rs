//! Evolution from source: the time from a commit to its version serving, split into fetch,
//! checkout and detect, the language toolchain's build, and deploy (validate, compile,
//! describe), for a Rust crate (warm cargo cache) and a Python app (componentize-py).
//!
//! Each source is run once to warm the caches, then committed to and run again a few times;
//! the times are when each step's event reached the client that asked for the build.

use super::{Args, Result, agent, start_micro};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const COMMITS: usize = 3;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn git(dir: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("git")
        .args(["-c", "user.name=bench", "-c", "user.email=bench@localhost"])
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("git: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

fn write(dir: &Path, path: &str, contents: impl AsRef<[u8]>) -> Result<()> {
    let full = dir.join(path);
    if let Some(parent) = full.parent() {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    std::fs::write(&full, contents).map_err(|e| format!("{}: {e}", full.display()))
}

/// A Rust service crate answering `greeting` (the tests' fixture).
fn rust_tree(dir: &Path, greeting: &str) -> Result<()> {
    let root = repo_root();
    let fixture = |name: &str| {
        std::fs::read_to_string(root.join("tests/fixtures/rust-greeter").join(name))
            .map_err(|e| format!("the rust-greeter fixture: {e}"))
    };
    let sdk = root.join("sdk/rust").display().to_string();
    write(
        dir,
        "Cargo.toml",
        fixture("Cargo.toml.in")?.replace("@SDK@", &sdk),
    )?;
    let lock = std::fs::read(root.join("Cargo.lock")).map_err(|e| e.to_string())?;
    write(dir, "Cargo.lock", lock)?;
    write(
        dir,
        "src/lib.rs",
        fixture("lib.rs.in")?.replace("@GREETING@", greeting),
    )
}

/// A Python service answering `greeting`.
fn python_tree(dir: &Path, greeting: &str) -> Result<()> {
    let app = std::fs::read_to_string(repo_root().join("tests/components/py-hello/app.py"))
        .map_err(|e| e.to_string())?;
    write(
        dir,
        "app.py",
        app.replace("Hello from Python", &format!("{greeting} from Python")),
    )?;
    write(dir, "pyproject.toml", "[project]\nname = \"py-greeter\"\n")
}

/// When each step's event arrived, in seconds since the request.
#[derive(Default)]
pub struct Timeline {
    steps: Vec<(String, f64)>,
    pub done: f64,
}

impl Timeline {
    /// When `step` began (when the build ended, for a step it skipped).
    pub fn at(&self, step: &str) -> f64 {
        self.steps
            .iter()
            .find(|(s, _)| s == step)
            .map_or(self.done, |(_, t)| *t)
    }
}

/// Asks the node to build and run `source`; follows its event stream to the end.
pub fn run(url: &str, source: &str) -> Result<Timeline> {
    let started = Instant::now();
    let body = serde_json::json!({ "source": source }).to_string();
    let mut response = agent()
        .post(format!("{url}/api/run"))
        .header("content-type", "application/json")
        .send(body.as_str())
        .map_err(|e| e.to_string())?;
    let reader = BufReader::new(response.body_mut().as_reader());
    let mut timeline = Timeline::default();
    for line in reader.lines() {
        let line = line.map_err(|e| e.to_string())?;
        let event: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| format!("{e}: {line}"))?;
        let t = started.elapsed().as_secs_f64();
        match event["event"].as_str() {
            Some("step") => timeline
                .steps
                .push((event["step"].as_str().unwrap_or("").to_string(), t)),
            Some("done") => {
                timeline.done = t;
                return Ok(timeline);
            }
            Some("failed") => return Err(format!("the build failed: {}", event["reason"])),
            _ => {}
        }
    }
    Err("the build's event stream ended without an outcome".into())
}

fn measure(url: &str, what: &str, tree: fn(&Path, &str) -> Result<()>) -> Result<()> {
    let repo = tempfile::tempdir().map_err(|e| e.to_string())?;
    git(repo.path(), &["init", "-q", "-b", "main"])?;
    let source = format!("file://{}", repo.path().display());
    for i in 0..=COMMITS {
        tree(repo.path(), &format!("Greeting {i}"))?;
        git(repo.path(), &["add", "-A"])?;
        git(repo.path(), &["commit", "-q", "-m", &format!("commit {i}")])?;
        let t = run(url, &source)?;
        let (fetch, checkout, build, deploy) = (
            t.at("fetch"),
            t.at("checkout"),
            t.at("build"),
            t.at("deploy"),
        );
        let label = if i == 0 {
            "first (cold)"
        } else {
            "next commit"
        };
        println!(
            "| {what}, {label} | {:.0} ms | {:.0} ms | {:.2} s | {:.2} s | {:.2} s | **{:.2} s** |",
            (checkout - fetch) * 1e3,
            (build - checkout) * 1e3,
            deploy - build,
            t.done - deploy,
            t.done,
            t.done - (deploy - build),
        );
    }
    Ok(())
}

/// Runs the evolution benchmark and prints its table.
pub fn run_all(args: &Args) -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (_node, url) = start_micro(args, dir.path(), "")?;
    println!("\n## Evolution from source: commit to serving\n");
    println!(
        "| source | fetch | checkout + detect | build (toolchain) | deploy (validate, compile, describe) | total | everything but the toolchain |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    measure(&url, "Rust crate", rust_tree)?;
    measure(&url, "Python app", python_tree)
}
