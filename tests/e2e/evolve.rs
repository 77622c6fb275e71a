//! Evolution from source: git repositories made here with real commits are fetched, recognised
//! by the node's builder components, built and served as versions side by side.

use micro_tests::{GitRepo, TestNode, component, eventually, repo_root};

/// A Rust service crate whose greeting says `greeting`.
fn rust_service(repo: &GitRepo, greeting: &str) {
    let fixture = |name: &str| {
        std::fs::read_to_string(repo_root().join("tests/fixtures/rust-greeter").join(name))
            .expect("the rust-greeter fixture")
    };
    let sdk = repo_root().join("sdk/rust");
    repo.write(
        "Cargo.toml",
        fixture("Cargo.toml.in").replace("@SDK@", &sdk.display().to_string()),
    );
    // The workspace's lock: the same dependency versions, resolved without the index.
    repo.write(
        "Cargo.lock",
        std::fs::read(repo_root().join("Cargo.lock")).expect("the workspace has a Cargo.lock"),
    );
    repo.write(
        "src/lib.rs",
        fixture("lib.rs.in").replace("@GREETING@", greeting),
    );
}

fn greet(node: &TestNode, service: &str) -> (u16, String) {
    let (status, body) = node.post_json(&format!("/{service}/greet"), r#"{"name":"Ada"}"#);
    (
        status,
        body["message"]
            .as_str()
            .unwrap_or(&body.to_string())
            .to_string(),
    )
}

/// A `--json` listing of the CLI.
fn listing(node: &TestNode, args: &[&str]) -> Vec<serde_json::Value> {
    let out = node.cli_ok(args);
    serde_json::from_str::<serde_json::Value>(&out)
        .expect("a --json listing is JSON")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn versions(node: &TestNode, service: &str) -> Vec<serde_json::Value> {
    listing(node, &["versions", service, "--json"])
}

fn state_of(node: &TestNode, service: &str, version: &str) -> String {
    versions(node, service)
        .iter()
        .find(|v| v["version"] == version)
        .and_then(|v| v["state"].as_str())
        .unwrap_or("missing")
        .to_string()
}

#[test]
fn a_rust_repository_evolves_commit_by_commit() {
    let node = TestNode::new("");
    let repo = GitRepo::new();
    rust_service(&repo, "Hello");
    let v1 = repo.commit("v1")[..12].to_string();
    node.cli_ok(&["run", &repo.url(), "--lifetime", "8s"]);
    assert_eq!(greet(&node, "greeter"), (200, "Hello, Ada!".into()));

    // A new commit is a new version: new calls go to it, calls pinned to the old one still
    // reach the old one.
    rust_service(&repo, "Welcome");
    let v2 = repo.commit("v2")[..12].to_string();
    let out = node.cli_ok(&["run", &repo.url(), "--lifetime", "8s"]);
    assert!(out.contains(&v2), "{out}");
    assert_eq!(greet(&node, "greeter"), (200, "Welcome, Ada!".into()));
    assert_eq!(
        greet(&node, &format!("greeter@{v1}")),
        (200, "Hello, Ada!".into())
    );
    let pinned = node.cli_ok(&[
        "call",
        &format!("greeter@{v1}"),
        "greet",
        r#"{"name":"Ada"}"#,
    ]);
    assert!(pinned.contains("Hello, Ada!"), "{pinned}");
    assert_eq!(state_of(&node, "greeter", &v2), "serving");
    assert_eq!(state_of(&node, "greeter", &v1), "superseded");
    let left = versions(&node, "greeter")
        .iter()
        .find(|v| v["version"] == v1.as_str())
        .and_then(|v| v["time_left_ms"].as_u64())
        .expect("a superseded version has time left");
    assert!(left <= 8000, "{left}");

    // A commit that does not compile is a failed version with its log; v2 keeps serving.
    repo.write("src/lib.rs", "this is not rust");
    let v3 = repo.commit("broken")[..12].to_string();
    let out = node.cli(&["run", &repo.url()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("build failed") && err.contains(&v3), "{err}");
    // The compiler's own words, right there, and where the rest is.
    assert!(err.contains("  | error"), "{err}");
    assert!(
        err.contains(&format!("micro logs greeter@{v3} --build")),
        "{err}"
    );
    assert_eq!(state_of(&node, "greeter", &v3), "failed");
    assert_eq!(greet(&node, "greeter"), (200, "Welcome, Ada!".into()));
    let log = node.cli_ok(&["logs", &format!("greeter@{v3}"), "--build"]);
    assert!(
        log.contains("error") && log.contains("cargo build"),
        "{log}"
    );

    // At the end of its lifetime the superseded version retires; pinned calls then fail
    // with a clear error.
    eventually("v1 to retire", || {
        (state_of(&node, "greeter", &v1) == "retired").then_some(())
    });
    let (status, body) = node.post_json(&format!("/greeter@{v1}/greet"), "{}");
    assert_eq!(status, 404, "{body}");
    assert!(
        body["message"].as_str().unwrap_or("").contains(&v2),
        "{body}"
    );
    assert_eq!(greet(&node, "greeter"), (200, "Welcome, Ada!".into()));
}

#[test]
fn a_watched_source_deploys_new_commits_by_itself() {
    let node = TestNode::new("");
    let repo = GitRepo::new();
    repo.write("service.wasm", std::fs::read(component("hello")).unwrap());
    let first = repo.commit("hello")[..12].to_string();
    let out = node.cli_ok(&[
        "run",
        &repo.url(),
        "--name",
        "watched",
        "--watch",
        "--interval",
        "200ms",
    ]);
    assert!(out.contains(&first) && out.contains("watching"), "{out}");
    assert_eq!(node.post_json("/watched/greet", r#"{"name":"Ada"}"#).0, 200);

    repo.write("service.wasm", std::fs::read(component("counter")).unwrap());
    let second = repo.commit("counter")[..12].to_string();
    eventually("the watcher to deploy the new commit", || {
        (state_of(&node, "watched", &second) == "serving").then_some(())
    });
    assert_eq!(state_of(&node, "watched", &first), "superseded");
    let (status, body) = node.post_json("/watched/incr", "{}");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn wat_and_prebuilt_trees_are_deployed() {
    let node = TestNode::new("");
    let hello = std::fs::read(component("hello")).unwrap();
    let wat = wasmprinter::print_bytes(&hello).expect("printing the component as text");
    let repo = GitRepo::new();
    repo.write("hello.wat", wat);
    repo.write("README.md", "a service in WebAssembly text\n");
    repo.commit("wat");
    let out = node.cli_ok(&["run", &repo.url(), "--name", "textual"]);
    assert!(out.contains("built by wat@"), "{out}");
    assert_eq!(greet(&node, "textual"), (200, "Hello, Ada!".into()));

    // A prebuilt component in a subdirectory of a larger repository.
    let repo = GitRepo::new();
    repo.write("services/hello/hello_world.wasm", &hello);
    repo.write("docs/README.md", "many services\n");
    repo.commit("prebuilt");
    let out = node.cli_ok(&["run", &format!("{}#services/hello", repo.url())]);
    assert!(
        out.contains("deployed hello-world") && out.contains("built by wasm@"),
        "{out}"
    );
    assert_eq!(greet(&node, "hello-world"), (200, "Hello, Ada!".into()));
}

#[test]
fn what_cannot_be_built_fails_clearly_and_changes_nothing() {
    let node = TestNode::new("");
    node.deploy("hello", "hello");

    // No builder recognises the tree: each says what it looked for.
    let repo = GitRepo::new();
    repo.write("README.md", "nothing to build\n");
    repo.commit("docs only");
    let out = node.cli(&["run", &repo.url(), "--name", "hello"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for builder in [
        "rust looked for",
        "python looked for",
        "javascript looked for",
        "wat looked for",
        "wasm looked for",
    ] {
        assert!(err.contains(builder), "{builder}: {err}");
    }
    assert_eq!(greet(&node, "hello"), (200, "Hello, Ada!".into()));

    // A ref that does not exist, a repository that does not exist.
    let out = node.cli(&[
        "run",
        &format!("{}@no-such-branch", repo.url()),
        "--name",
        "hello",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("no branch, tag or commit named \"no-such-branch\""),
        "{err}"
    );
    let out = node.cli(&["run", "file:///no/such/repository", "--name", "hello"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("fetching file:///no/such/repository"),
        "{err}"
    );

    // A tree that builds something which is not a service.
    let repo = GitRepo::new();
    repo.write("module.wat", "(module)");
    repo.commit("a core module");
    let out = node.cli(&["run", &repo.url(), "--name", "hello"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("refused"), "{err}");

    // Not a source at all: refused before anything starts.
    let out = node.cli(&["run", "no-such-thing-here", "--name", "hello"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("is not a source"),
        "{err}"
    );
    assert_eq!(greet(&node, "hello"), (200, "Hello, Ada!".into()));
}

#[test]
fn python_and_javascript_trees_are_detected_and_built() {
    let node = TestNode::new("");
    let py = GitRepo::new();
    py.write(
        "app.py",
        std::fs::read(repo_root().join("tests/components/py-hello/app.py")).unwrap(),
    );
    py.write("pyproject.toml", "[project]\nname = \"py-greeter\"\n");
    py.commit("python");
    let out = node.cli_ok(&["run", &py.url()]);
    assert!(
        out.contains("deployed py-greeter") && out.contains("built by python@"),
        "{out}"
    );
    let (status, body) = node.post_json("/py-greeter/greet", r#"{"name":"Ada"}"#);
    assert_eq!(
        (status, body["message"].as_str()),
        (200, Some("Hello from Python, Ada!"))
    );

    let js = GitRepo::new();
    js.write(
        "index.js",
        std::fs::read(repo_root().join("tests/components/js-hello/hello.js")).unwrap(),
    );
    js.commit("javascript");
    let out = node.cli_ok(&["run", &js.url(), "--name", "js-greeter"]);
    assert!(out.contains("built by javascript@"), "{out}");
    let (status, body) = node.post_json("/js-greeter/greet", r#"{"name":"Ada"}"#);
    assert_eq!(status, 200, "{body}");
}

#[test]
fn builders_are_listed_and_replaced_from_source() {
    let node = TestNode::new("");
    let builders = || listing(&node, &["system", "builders", "--json"]);
    let list = builders();
    let names: Vec<&str> = list.iter().filter_map(|b| b["name"].as_str()).collect();
    assert_eq!(names, ["rust", "python", "javascript", "wat", "wasm"]);
    let source = repo_root().join("components/builder-wasm");
    let out = node.cli_ok(&["system", "builders", "use", source.to_str().unwrap()]);
    assert!(out.contains("builder wasm"), "{out}");
    let wasm = builders()
        .into_iter()
        .find(|b| b["name"] == "wasm")
        .expect("a wasm builder");
    assert_eq!(wasm["origin"].as_str(), source.to_str());
    // The next build uses it.
    let repo = GitRepo::new();
    repo.write("hello.wasm", std::fs::read(component("hello")).unwrap());
    repo.commit("prebuilt");
    node.cli_ok(&["run", &repo.url()]);
    assert_eq!(greet(&node, "hello"), (200, "Hello, Ada!".into()));
}

/// A Rust crate with no dependencies whose build script is `build_rs`.
fn crate_with_build_script(repo: &GitRepo, build_rs: &str) {
    repo.write(
        "Cargo.toml",
        "[package]\nname = \"scripted\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
         [lib]\ncrate-type = [\"cdylib\"]\n\n[workspace]\n",
    );
    repo.write("build.rs", build_rs);
    repo.write("src/lib.rs", "");
}

/// Runs `source` on `node` as service `hello`, which must fail with `reason`; answers the log.
fn fails_with(node: &TestNode, source: &str, reason: &str) -> String {
    let out = node.cli(&["run", source, "--name", "hello"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(reason), "{reason}: {err}");
    assert_eq!(greet(node, "hello"), (200, "Hello, Ada!".into()));
    err.into_owned()
}

#[test]
fn a_build_that_hangs_or_floods_is_stopped_and_changes_nothing() {
    let node = TestNode::new("[evolve]\nbuild_timeout_ms = 3000\nmax_build_output_bytes = 65536\n");
    node.deploy("hello", "hello");

    let hang = GitRepo::new();
    crate_with_build_script(
        &hang,
        "fn main() { loop { std::thread::sleep(std::time::Duration::from_secs(1)); } }",
    );
    let version = hang.commit("a build script that never ends")[..12].to_string();
    fails_with(&node, &hang.url(), "ran past its time limit of 3 s");
    assert_eq!(state_of(&node, "hello", &version), "failed");

    // Cargo prints each `cargo:warning` of the build script: megabytes of output.
    let flood = GitRepo::new();
    crate_with_build_script(
        &flood,
        r#"fn main() { for i in 0..200000 { println!("cargo:warning=flooding the build log, line {i}"); } }"#,
    );
    let version = flood.commit("a build that floods its output")[..12].to_string();
    let err = node.cli(&["run", &flood.url(), "--name", "hello"]);
    let err = String::from_utf8_lossy(&err.stderr).into_owned();
    // The flood may also outlast the short time limit on a busy machine; either stops it.
    assert!(
        err.contains("more than its output limit of 65536 bytes")
            || err.contains("ran past its time limit"),
        "{err}"
    );
    assert_eq!(greet(&node, "hello"), (200, "Hello, Ada!".into()));
    let log = node.cli_ok(&["logs", &format!("hello@{version}"), "--build"]);
    assert!(
        log.len() < 200_000,
        "the kept log is bounded: {} bytes",
        log.len()
    );
}

#[test]
fn a_hostile_builder_fails_alone() {
    let node = TestNode::new("[evolve]\nbuild_timeout_ms = 3000\n");
    node.deploy("hello", "hello");
    // Installed from its prebuilt component, through the wasm builder.
    let prebuilt = GitRepo::new();
    prebuilt.write(
        "builder_hostile.wasm",
        std::fs::read(component("builder_hostile")).unwrap(),
    );
    let dir = prebuilt.path().to_str().unwrap().to_string();
    let out = node.cli_ok(&["system", "builders", "use", &dir]);
    assert!(out.contains("builder hostile"), "{out}");

    // A builder that traps or exhausts its memory while detecting is reported; the other
    // builders still build the tree.
    for fault in ["trap-detect", "memory-detect"] {
        let repo = GitRepo::new();
        repo.write("hostile.txt", fault);
        repo.write("hello.wasm", std::fs::read(component("hello")).unwrap());
        let version = repo.commit(fault)[..12].to_string();
        let out = node.cli_ok(&["run", &repo.url(), "--name", "hello"]);
        assert!(out.contains("built by wasm@"), "{fault}: {out}");
        let log = node.cli_ok(&["logs", &format!("hello@{version}"), "--build"]);
        assert!(
            log.contains("builder hostile failed: detect"),
            "{fault}: {log}"
        );
        assert_eq!(greet(&node, "hello"), (200, "Hello, Ada!".into()));
    }

    // A builder that loops in its build is stopped at the build's time limit.
    let repo = GitRepo::new();
    repo.write("hostile.txt", "loop-build");
    repo.commit("loop");
    let err = fails_with(&node, &repo.url(), "ran past its time limit");
    assert!(err.contains("build"), "{err}");
    let builders = listing(&node, &["system", "builders", "--json"]);
    assert!(
        builders.iter().any(|b| b["name"] == "hostile"),
        "{builders:?}"
    );
}
