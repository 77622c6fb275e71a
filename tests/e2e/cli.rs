//! The `micro` command as a newcomer meets it: pipes that close early, `--node` as people
//! write it, listings that say what a service does, a service's own log lines.

use micro_tests::{TestNode, component, eventually, micro_bin};
use std::process::{Command, Stdio};

/// Runs `micro args` against `node` with its output into a pipe nobody reads any more.
fn into_a_closed_pipe(node: &TestNode, args: &[&str]) -> std::process::Output {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    Command::new(micro_bin())
        .args(args)
        .env("MICRO_NODE", &node.url)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("running micro")
}

#[test]
fn a_listing_into_a_closed_pipe_ends_quietly() {
    let node = TestNode::new("");
    node.deploy("hello", "hello");
    for args in [
        &["describe", "hello"][..],
        &["status"],
        &["services"],
        &["network", "services"],
    ] {
        let out = into_a_closed_pipe(&node, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "micro {args:?}: {err}");
        assert_ne!(out.status.code(), Some(101), "micro {args:?}: {err}");
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt as _;
            assert_eq!(
                out.status.signal(),
                Some(libc::SIGPIPE),
                "micro {args:?} ends as other tools do: {:?} {err}",
                out.status
            );
        }
    }
}

#[test]
fn node_addresses_are_taken_as_people_write_them() {
    let node = TestNode::new("");
    let bare = node.url.trim_start_matches("http://").to_string();
    // `micro identity --node` names that node, not the default data directory's.
    let out = Command::new(micro_bin())
        .args(["--node", &bare, "identity"])
        .env_remove("MICRO_NODE")
        .env("MICRO_DATA_DIR", node.dir().join("elsewhere"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), node.id());
    assert!(!node.dir().join("elsewhere").exists(), "no identity made");

    for (address, says) in [
        ("ftp://127.0.0.1:1", "over http or https"),
        ("127.0.0.1:notaport", "host:port or http://host:port"),
    ] {
        let out = Command::new(micro_bin())
            .args(["--node", address, "services"])
            .env_remove("MICRO_NODE")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{address}: {err}");
        assert!(err.contains(says), "{address}: {err}");
    }
}

#[test]
fn a_subscribing_service_says_so_in_every_listing() {
    let node = TestNode::new("");
    let path = component("chat");
    let out = node.cli_ok(&["run", path.to_str().unwrap(), "--name", "chat"]);
    assert!(out.contains("(service, subscriber)"), "{out}");
    assert!(out.contains("subscribes: chat (history)"), "{out}");
    let described = node.cli_ok(&["describe", "chat"]);
    assert!(
        described.contains("subscribes: chat (history)"),
        "{described}"
    );
    let listed = node.cli_ok(&["services"]);
    assert!(
        listed.contains("SUBSCRIBES") && listed.contains("chat (history)"),
        "{listed}"
    );
}

#[test]
fn a_services_recent_lines_are_in_its_log() {
    let node = TestNode::new("");
    node.deploy("chat", "chat");
    node.deploy("hostile", "hostile");
    // A message chat cannot read, and a call that traps.
    node.post("/api/topics/chat", "not json");
    let (status, _) = node.post("/hostile/trap", "");
    assert_eq!(status, 500);
    let chat = eventually("chat's failure in its log", || {
        let out = node.cli_ok(&["logs", "chat"]);
        out.contains("not handled").then_some(out)
    });
    assert!(
        chat.contains("warn") && chat.contains("of chat not handled"),
        "{chat}"
    );
    let hostile = node.cli_ok(&["logs", "hostile", "--json"]);
    let lines: serde_json::Value = serde_json::from_str(&hostile).unwrap();
    let line = &lines.as_array().unwrap()[0];
    assert_eq!(line["level"], "error", "{line}");
    assert!(
        line["message"]
            .as_str()
            .unwrap()
            .starts_with("hostile.trap failed:"),
        "{line}"
    );
    let out = node.cli(&["logs", "nobody"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no service \"nobody\""));
}
