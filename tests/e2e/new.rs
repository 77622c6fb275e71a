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
        let (status, body) = node.post_json(&format!("/{name}/greet"), r#"{"name":"Ada"}"#);
        assert_eq!(status, 200, "{lang}: {body}");
        assert_eq!(
            body["message"],
            format!("Hello from {name}, Ada!"),
            "{lang}: {body}"
        );
    }
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
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no template for language \"cobol\"") && err.contains("rust, python, js"),
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
