//! A real `micro server` process in a temporary directory, talked to over HTTP and through
//! the CLI, and a subscription to its event stream.

use crate::agent;
use crate::paths::{component, micro_bin, previous_bin, target_dir};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The longest a node may take to print its readiness line before a test gives up.
const START_TIMEOUT: Duration = Duration::from_secs(120);

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
