//! `micro new`: a project made for each language builds and runs as it is.

use micro_tests::{TestNode, repo_root};

#[test]
fn new_projects_run_in_every_language() {
    let node = TestNode::new("");
    let dir = tempfile::tempdir().unwrap();
    for (lang, name) in [("python", "new-py"), ("js", "new-js"), ("rust", "new-rs")] {
        let project = dir.path().join(name);
        let out = node.cli_ok(&[
            "new",
            name,
            "--lang",
            lang,
            "--dir",
            project.to_str().unwrap(),
        ]);
        assert!(
            out.contains(&format!("created {lang} service {name}")),
            "{out}"
        );
        assert!(project.join("README.md").exists());
        if lang == "rust" {
            assert!(project.join("micro-sdk/wit/service.wit").exists());
            // The workspace's lock: the same dependency versions, resolved without the index.
            std::fs::copy(repo_root().join("Cargo.lock"), project.join("Cargo.lock")).unwrap();
        }
        let out = node.cli_ok(&["run", project.to_str().unwrap()]);
        assert!(out.contains(&format!("deployed {name}")), "{out}");
        // The hint shows no call that would fail: what a method takes is the method's.
        assert!(!out.contains("'{}'"), "{out}");
        let (status, body) = node.post_json(&format!("/{name}/greet"), r#"{"name":"Ada"}"#);
        assert_eq!(status, 200, "{lang}: {body}");
        assert_eq!(
            body["message"],
            format!("Hello from {name}, Ada!"),
            "{lang}: {body}"
        );
    }
    // A build leaves no bytecode caches in the user's directory.
    assert!(!dir.path().join("new-py/__pycache__").exists());
    // The Rust template's type is named after the service, not after the SDK's trait.
    let lib = std::fs::read_to_string(dir.path().join("new-rs/src/lib.rs")).unwrap();
    assert!(
        lib.contains("struct NewRs;") && !lib.contains("struct Service"),
        "{lib}"
    );
}

/// The one version of `service` the node knows, which must be serving with its component.
fn the_serving_version(node: &TestNode, service: &str) -> serde_json::Value {
    let versions: serde_json::Value =
        serde_json::from_str(&node.cli_ok(&["versions", service, "--json"])).unwrap();
    let versions = versions.as_array().cloned().unwrap_or_default();
    assert_eq!(versions.len(), 1, "{versions:?}");
    let v = versions[0].clone();
    assert_eq!(v["state"], "serving", "{v}");
    assert!(v["component"].is_string(), "{v}");
    v
}

#[test]
fn running_an_unchanged_directory_again_keeps_its_version_serving() {
    let node = TestNode::new("");
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("again");
    let project = project.to_str().unwrap();
    node.cli_ok(&["new", "again", "--lang", "python", "--dir", project]);
    node.cli_ok(&["run", project]);
    let first = the_serving_version(&node, "again");

    let out = node.cli(&["run", project]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("cached: tree unchanged"), "{err}");
    assert_eq!(
        the_serving_version(&node, "again")["version"],
        first["version"]
    );
    let status = node.cli_ok(&["status", "--json"]);
    assert!(status.contains("again"), "{status}");

    // Also after a restart.
    let node = node.restart();
    assert_eq!(
        the_serving_version(&node, "again")["version"],
        first["version"]
    );
    let (code, body) = node.post_json("/again/greet", r#"{"name":"Ada"}"#);
    assert_eq!(code, 200, "{body}");

    // `--rebuild` builds it again all the same; the version is the same tree's.
    let out = node.cli(&["run", project, "--rebuild"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("cached: tree unchanged"), "{err}");
    assert_eq!(
        the_serving_version(&node, "again")["version"],
        first["version"]
    );
}

#[test]
fn new_refuses_what_it_cannot_make() {
    let node = TestNode::new("");
    let dir = tempfile::tempdir().unwrap();
    let out = node.cli(&[
        "new",
        "svc",
        "--lang",
        "cobol",
        "--dir",
        dir.path().join("a").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    // A usage error, as everywhere else in the CLI.
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("invalid value 'cobol'") && err.contains("rust, python, js"),
        "{err}"
    );
    let out = node.cli(&[
        "new",
        "Bad_Name",
        "--dir",
        dir.path().join("b").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    std::fs::write(dir.path().join("c"), "").ok();
    let taken = dir.path();
    let out = node.cli(&["new", "svc", "--dir", taken.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("exists and is not empty"), "{err}");
}
