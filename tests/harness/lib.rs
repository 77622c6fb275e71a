//! Shared by the end-to-end tests: starts real `micro server` processes on loopback, finds the
//! components built from this repository, and talks to nodes over HTTP and through the CLI.
//!
//! The node binary and the components must be built first; `scripts/test` does both.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The longest a node may take to print its readiness line before a test gives up.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// The cargo target directory the tests were built in.
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        return if dir.is_absolute() {
            dir
        } else {
            repo_root().join(dir)
        };
    }
    // target/debug/deps/<test binary>
    let exe = std::env::current_exe().expect("the test binary knows its path");
    exe.ancestors()
        .nth(3)
        .expect("test binary lives in target/<profile>/deps")
        .to_owned()
}

/// A directory for what a test run leaves to look at afterwards (screenshots and the like):
/// `<target>/artifacts/<name>`, emptied first.
pub fn artifacts_dir(name: &str) -> PathBuf {
    let dir = target_dir().join("artifacts").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating the artifacts directory");
    dir
}

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_owned()
}

/// The `micro` binary under test.
pub fn micro_bin() -> PathBuf {
    binary(
        "MICRO_BIN",
        &["debug", "micro"],
        "build it with `cargo build -p micro` (scripts/test does)",
    )
}

/// The `micro` binary of the previous protocol, built from the commit `scripts/test` names
/// (`MICRO_PREVIOUS_BIN`, or `<target>/previous/micro`).
pub fn previous_bin() -> PathBuf {
    binary(
        "MICRO_PREVIOUS_BIN",
        &["previous", "micro"],
        "./scripts/test builds it from the previous protocol's commit",
    )
}

/// A binary named by `var`, or at `path` under the target directory, which must exist.
fn binary(var: &str, path: &[&str], how: &str) -> PathBuf {
    if let Some(bin) = std::env::var_os(var) {
        return bin.into();
    }
    let bin = path.iter().fold(target_dir(), |dir, part| dir.join(part));
    assert!(bin.exists(), "{} is missing: {how}", bin.display());
    bin
}

/// A component built from this repository (`examples/` or `tests/components/`).
pub fn component(name: &str) -> PathBuf {
    let dir = target_dir().join("wasm32-wasip2").join("release");
    // Libraries (cdylib) are named with '_', binaries keep their '-'.
    let library = dir.join(format!("{}.wasm", name.replace('-', "_")));
    let path = if library.exists() {
        library
    } else {
        dir.join(format!("{name}.wasm"))
    };
    assert!(
        path.exists(),
        "{} is missing: build the components with `scripts/build-components`",
        path.display()
    );
    path
}

/// A directory holding one prebuilt component, as `micro governance use <dir>` and
/// `micro ledger use <dir>` take it.
pub fn component_dir(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let wasm = component(name);
    std::fs::copy(
        &wasm,
        dir.path().join(wasm.file_name().expect("a file name")),
    )
    .expect("copying the component");
    dir
}

/// The peer layer of test nodes: loopback only, no relays, no public lookup, no multicast, no
/// port mapping (nothing may need the internet), and short timers so tests run quickly.
pub const LOOPBACK_NETWORK: &str = r#"
[network]
bind = "127.0.0.1:0"
relays = false
public_lookup = false
mdns = false
port_mapping = false
heartbeat_ms = 250
report_interval_ms = 1000
peer_silence_ms = 3000
connect_timeout_ms = 1000
"#;

/// A running node process with its own data directory.
pub struct TestNode {
    child: Child,
    /// The gateway's base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    dir: PathBuf,
    config: String,
    virtual_kib: Option<u64>,
    /// Tickets the node joins through.
    peers: Vec<String>,
    /// The binary it runs.
    bin: PathBuf,
    /// The temporary directory the node lives in, removed after the node is killed.
    temp: Option<tempfile::TempDir>,
}

impl TestNode {
    /// Starts a node in a temporary directory of its own, with `config` (TOML over the
    /// embedded defaults).
    pub fn new(config: &str) -> TestNode {
        Self::in_temp_dir(config, None, &[])
    }

    /// Starts a node that joins the network through the nodes of `tickets`.
    pub fn joining(config: &str, tickets: &[String]) -> TestNode {
        Self::in_temp_dir(config, None, tickets)
    }

    /// Starts a node of the previous protocol ([`previous_bin`]) joining through `tickets`.
    pub fn previous(config: &str, tickets: &[String]) -> TestNode {
        Self::in_temp_dir_with(config, None, tickets, &previous_bin())
    }

    /// Starts a node whose address space is limited to `virtual_kib` (as `ulimit -v` does).
    pub fn new_limited(config: &str, virtual_kib: u64) -> TestNode {
        Self::in_temp_dir(config, Some(virtual_kib), &[])
    }

    fn in_temp_dir(config: &str, virtual_kib: Option<u64>, peers: &[String]) -> TestNode {
        Self::in_temp_dir_with(config, virtual_kib, peers, &micro_bin())
    }

    fn in_temp_dir_with(
        config: &str,
        virtual_kib: Option<u64>,
        peers: &[String],
        bin: &Path,
    ) -> TestNode {
        let temp = tempfile::Builder::new()
            .prefix("micro-e2e-")
            .tempdir()
            .expect("creating a temp dir");
        let mut node = Self::start_with(temp.path(), config, virtual_kib, peers, bin);
        node.temp = Some(temp);
        node
    }

    /// This node's id.
    pub fn id(&self) -> String {
        let (_, body) = self.get("/api/health");
        let v: serde_json::Value = serde_json::from_str(&body).expect("health is JSON");
        v["node"]
            .as_str()
            .expect("health names the node")
            .to_string()
    }

    /// This node's ticket, to join through it.
    pub fn ticket(&self) -> String {
        self.get_json("/api/network")["ticket"]
            .as_str()
            .expect("the node has a ticket")
            .to_string()
    }

    /// GETs `path` and parses the JSON answer (status 200 expected).
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("GET {path} is not JSON ({e}): {body}"))
    }

    /// The node's directory (its data directory is `data/` inside).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn start_with(
        dir: &Path,
        config: &str,
        virtual_kib: Option<u64>,
        peers: &[String],
        bin: &Path,
    ) -> TestNode {
        std::fs::create_dir_all(dir).expect("creating the node's directory");
        let config_path = dir.join("config.toml");
        let mut full: toml::Table = config.parse().expect("a test's config is TOML");
        // Tests never reach for the internet: loopback peers only, unless a test says otherwise.
        full.entry("network").or_insert_with(|| {
            let loopback: toml::Table = LOOPBACK_NETWORK.parse().expect("LOOPBACK_NETWORK is TOML");
            loopback["network"].clone()
        });
        // Builds share one warm cargo cache across test nodes (cargo locks it).
        if let Some(evolve) = full
            .entry("evolve")
            .or_insert_with(|| toml::Table::new().into())
            .as_table_mut()
        {
            evolve.entry("build_cache_dir").or_insert_with(|| {
                target_dir()
                    .join("micro-test-builds")
                    .display()
                    .to_string()
                    .into()
            });
        }
        if bin != micro_bin()
            && let Some(network) = full.get_mut("network").and_then(|n| n.as_table_mut())
        {
            // The previous build knows these keys by their older names.
            for (new, old) in [
                ("peer_silence_ms", "record_ttl_ms"),
                ("report_interval_ms", "announce_interval_ms"),
            ] {
                if let Some(value) = network.remove(new) {
                    network.insert(old.into(), value);
                }
            }
        }
        let full = toml::to_string(&full).expect("a table prints as TOML");
        std::fs::write(&config_path, full).expect("writing the node's config");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("node.log"))
            .expect("opening the node's log");
        let mut command = match virtual_kib {
            Some(kib) => {
                let mut c = Command::new("sh");
                c.args(["-c", &format!("ulimit -v {kib} && exec \"$0\" \"$@\"")])
                    .arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let mut child = command
            .arg("server")
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(["--listen", "127.0.0.1:0", "--config"])
            .arg(&config_path)
            .args(peers.iter().flat_map(|t| ["--peer", t.as_str()]))
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("starting micro server");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next();
            let _ = tx.send(first);
            for _ in lines {}
        });
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Some(Ok(line))) => line,
            other => {
                let _ = child.kill();
                let log = std::fs::read_to_string(dir.join("node.log")).unwrap_or_default();
                panic!("the node did not become ready ({other:?}); its log:\n{log}");
            }
        };
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("unexpected readiness line: {line}"))
            .to_string();
        TestNode {
            child,
            url,
            dir: dir.to_owned(),
            config: config.to_string(),
            virtual_kib,
            peers: peers.to_vec(),
            bin: bin.to_owned(),
            temp: None,
        }
    }

    /// The node's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the node at once (SIGKILL), as a crash would.
    pub fn crash(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the node as its owner would (SIGTERM) and waits until it has exited.
    #[cfg(unix)]
    pub fn stop(&mut self) -> std::process::ExitStatus {
        // SAFETY: signals the child process this harness started (and has not reaped).
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().expect("waiting for the node to exit")
    }

    /// Crashes the node and starts it again on the same data directory.
    pub fn restart(mut self) -> TestNode {
        self.crash();
        let mut node = TestNode::start_with(
            &self.dir.clone(),
            &self.config.clone(),
            self.virtual_kib,
            &self.peers.clone(),
            &self.bin.clone(),
        );
        node.temp = self.temp.take();
        node
    }

    /// The node's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }

    /// Runs `micro` with `args` against this node.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(micro_bin())
            .args(args)
            .env("MICRO_NODE", &self.url)
            .output()
            .expect("running micro")
    }

    /// Runs `micro` and returns its stdout, failing the test if it fails.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "micro {args:?} failed ({}):\n{}\nnode log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Deploys a component built from this repository as `name`.
    pub fn deploy(&self, name: &str, component_name: &str) {
        let path = component(component_name);
        self.cli_ok(&["run", path.to_str().expect("utf-8 path"), "--name", name]);
    }

    /// POSTs `body` to `path`; returns the status and the body as text.
    pub fn post(&self, path: &str, body: impl AsRef<[u8]>) -> (u16, String) {
        let mut r = agent()
            .post(format!("{}{path}", self.url))
            .send(body.as_ref())
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = r.status().as_u16();
        (
            status,
            r.body_mut()
                .with_config()
                .limit(64 << 20)
                .read_to_string()
                .unwrap_or_default(),
        )
    }

    /// GETs `path`; returns the status and the body as text.
    pub fn get(&self, path: &str) -> (u16, String) {
        let mut r = agent()
            .get(format!("{}{path}", self.url))
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = r.status().as_u16();
        (status, r.body_mut().read_to_string().unwrap_or_default())
    }

    /// POSTs `body` to `path` and parses the JSON answer.
    pub fn post_json(&self, path: &str, body: &str) -> (u16, serde_json::Value) {
        let (status, text) = self.post(path, body);
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("POST {path} answered non-JSON ({e}): {text}"));
        (status, value)
    }

    /// Resident memory of the node process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("reading /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS in /proc status")
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client that returns error statuses as answers instead of failing.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// Messages of one subscription, as the gateway's event stream delivers them.
pub struct Subscriber {
    pub messages: mpsc::Receiver<serde_json::Value>,
}

impl TestNode {
    /// Subscribes to `topic` over the gateway's event stream (`query` as in
    /// `history=true&group=g`); returns once the node confirms the subscription is in place.
    pub fn subscribe(&self, topic: &str, query: &str) -> Subscriber {
        // Wait for the `subscribed` event: from then on no published message is missed.
        self.event_stream(&format!("/api/topics/{topic}/events?{query}"), "subscribed")
    }

    /// Opens a server-sent event stream at `path`; returns once its `ready` event came, with
    /// the data of every later event.
    pub fn event_stream(&self, path: &str, ready: &str) -> Subscriber {
        let url = format!("{}{path}", self.url);
        let response = agent()
            .get(&url)
            .call()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert_eq!(response.status().as_u16(), 200, "GET {path}");
        let mut lines = BufReader::new(response.into_body().into_reader()).lines();
        let mut event = String::new();
        for line in lines.by_ref() {
            let line = line.expect("reading the event stream");
            if let Some(name) = line.strip_prefix("event: ") {
                event = name.to_string();
            } else if line.starts_with("data: ") && event == ready {
                break;
            }
        }
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in lines {
                let Ok(line) = line else { return };
                if let Some(data) = line.strip_prefix("data: ") {
                    let value = serde_json::from_str(data).expect("event data is JSON");
                    if tx.send(value).is_err() {
                        return;
                    }
                }
            }
        });
        Subscriber { messages: rx }
    }
}

impl Subscriber {
    /// The next message; fails the test if none arrives within a generous bound.
    pub fn next(&self) -> serde_json::Value {
        self.messages
            .recv_timeout(Duration::from_secs(30))
            .expect("a message within 30 s")
    }

    /// Every message that arrives until the stream is quiet for `quiet`.
    pub fn drain(&self, quiet: Duration) -> Vec<serde_json::Value> {
        std::iter::from_fn(|| self.messages.recv_timeout(quiet).ok()).collect()
    }
}

/// A git repository in a temporary directory, committed to with the `git` command.
pub struct GitRepo {
    dir: tempfile::TempDir,
}

impl GitRepo {
    /// An empty repository on branch `main`.
    pub fn new() -> GitRepo {
        let dir = tempfile::Builder::new()
            .prefix("micro-repo-")
            .tempdir()
            .expect("creating a temp dir");
        let repo = GitRepo { dir };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    /// The repository's directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Its `file://` URL.
    pub fn url(&self) -> String {
        format!("file://{}", self.path().display())
    }

    /// Writes a file (creating its directories).
    pub fn write(&self, path: &str, contents: impl AsRef<[u8]>) {
        let full = self.path().join(path);
        std::fs::create_dir_all(full.parent().expect("a file has a directory"))
            .expect("creating directories");
        std::fs::write(full, contents).expect("writing a file");
    }

    /// Commits everything; answers the commit's id.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&[
            "-c",
            "user.name=micro tests",
            "-c",
            "user.email=tests@micro.invalid",
            "commit",
            "-q",
            "-m",
            message,
        ]);
        self.git(&["rev-parse", "HEAD"]).trim().to_string()
    }

    /// Runs git in the repository; answers its output.
    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(self.path())
            .output()
            .expect("running git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Default for GitRepo {
    fn default() -> Self {
        Self::new()
    }
}

/// Polls `check` until it returns `Some`, for effects that happen asynchronously inside a node
/// (a delivered message); fails the test after 30 s.
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let until = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            std::time::Instant::now() < until,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The directory of an example: `examples/<language>/<name>` (`examples/<name>` for Rust).
pub fn example(language: &str, name: &str) -> String {
    let dir = repo_root().join("examples");
    let dir = if language == "rust" {
        dir
    } else {
        dir.join(language)
    };
    dir.join(name).display().to_string()
}

/// What a chat example (any language) kept of `room`.
pub fn chat_history(node: &TestNode, service: &str, room: &str) -> Vec<String> {
    let (status, body) = node.post_json(
        &format!("/{service}/history"),
        &format!(r#"{{"room":"{room}"}}"#),
    );
    assert_eq!(status, 200, "{body}");
    body.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Posts `text` to chat `from` and waits until chat `to` (another language's) has kept it.
pub fn chat_reaches(node: &TestNode, from: &str, to: &str, text: &str) {
    let (status, body) = node.post_json(
        &format!("/{from}/post"),
        &format!(r#"{{"room":"r","text":"{text}"}}"#),
    );
    assert_eq!(status, 200, "{body}");
    eventually(&format!("{to} to receive what {from} posted"), || {
        chat_history(node, to, "r")
            .contains(&text.to_string())
            .then_some(())
    });
}

/// Checks the answers of service `faulty`, written in an SDK with methods `boom` (raises an
/// exception whose message is `boom_message`), `odd` (answers something JSON cannot hold),
/// `missing` (raises not-found "no such thing") and `ok`: each fault is an answer, and the
/// next call works.
pub fn faults_are_answers(node: &TestNode, boom_message: &str) {
    let ok = || assert_eq!(node.post_json("/faulty/ok", "{}").0, 200);
    let (status, body) = node.post_json("/faulty/boom", "{}");
    assert_eq!(
        (status, body["error"].as_str()),
        (500, Some("failed")),
        "{body}"
    );
    assert_eq!(body["message"], boom_message, "{body}");
    ok();
    let (status, body) = node.post_json("/faulty/odd", "{}");
    assert_eq!(status, 500, "{body}");
    let message = body["message"].as_str().unwrap_or("");
    assert!(
        message.contains("the answer of odd cannot be sent as JSON"),
        "{body}"
    );
    let (status, body) = node.post_json("/faulty/missing", "{}");
    assert_eq!(
        (status, body["message"].as_str()),
        (404, Some("no such thing")),
        "{body}"
    );
    ok();
}

/// Small networks of real nodes for the end-to-end tests.
pub mod network {
    use super::{TestNode, eventually};
    use std::collections::BTreeSet;

    /// Starts `n` nodes: the first alone, each next one joining through the first and the one
    /// before it (several known peers, as real users would pass).
    pub fn start(n: usize) -> Vec<TestNode> {
        let mut nodes: Vec<TestNode> = vec![TestNode::new("")];
        for i in 1..n {
            let mut tickets = vec![nodes[0].ticket()];
            if i > 1 {
                tickets.push(nodes[i - 1].ticket());
            }
            nodes.push(TestNode::joining("", &tickets));
        }
        nodes
    }

    /// The ids of the nodes in `node`'s view (itself included): the peers it checks and the
    /// contacts of its DHT routing table.
    pub fn known_nodes(node: &TestNode) -> BTreeSet<String> {
        node.get_json("/api/network/nodes")
            .as_array()
            .expect("a list")
            .iter()
            .map(|n| n["node"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Waits until every node has joined: each knows every other (in a network this small, every
    /// lookup meets every node, so each DHT table holds them all).
    pub fn wait_until_all_know_each_other(nodes: &[TestNode]) {
        let all: BTreeSet<String> = nodes.iter().map(|n| n.id()).collect();
        for node in nodes {
            eventually("every node to know every other", || {
                (known_nodes(node) == all).then_some(())
            });
        }
    }

    /// The nodes `node` routes `service` to, best first, as it looks them up now; a provider it
    /// could not reach lately is not among them (the DHT may still name it: a node that died
    /// does not withdraw).
    pub fn routes(node: &TestNode, service: &str) -> Vec<String> {
        let v = node.get_json(&format!("/api/network/routes?service={service}"));
        v[0]["routes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["healthy"] == true)
            .map(|r| r["node"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}
