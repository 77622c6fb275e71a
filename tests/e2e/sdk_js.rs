//! The JavaScript SDK: the examples in `examples/js` are bundled and built by the node from
//! their directories (esbuild and componentize-js, `import { service } from 'micro'`), called
//! through HTTP and the CLI, and talk to services written in Python and Rust.

use micro_tests::{GitRepo, TestNode, chat_reaches, example, faults_are_answers, repo_root};

#[test]
fn javascript_examples_run_and_talk_to_python_and_rust() {
    let node = TestNode::new("");
    node.deploy("chat", "chat");

    let out = node.cli_ok(&["run", &example("js", "hello")]);
    assert!(out.contains("deployed js-hello"), "{out}");
    let (status, body) = node.post_json("/js-hello/greet", r#"{"name":"Ada"}"#);
    assert_eq!(
        (status, body["message"].as_str()),
        (200, Some("Hello from JavaScript, Ada!")),
        "{body}"
    );
    let out = node.cli_ok(&["call", "js-hello", "greet", r#"{"name":"Bo"}"#]);
    assert!(out.contains("Hello from JavaScript, Bo!"), "{out}");
    let (status, body) = node.post("/js-hello/greet", "not json");
    assert_eq!(status, 400, "{body}");

    // counter: storage.
    node.cli_ok(&["run", &example("js", "counter")]);
    for expected in 1..=2 {
        let (status, body) = node.post_json("/js-counter/incr", r#"{"name":"a"}"#);
        assert_eq!(
            (status, body["value"].as_i64()),
            (200, Some(expected)),
            "{body}"
        );
    }
    let (_, body) = node.post_json("/js-counter/list", "{}");
    assert_eq!(body, serde_json::json!([{"name": "a", "value": 2}]));

    // caller: JavaScript calls Python.
    node.cli_ok(&["run", &example("python", "hello")]);
    node.cli_ok(&["run", &example("js", "caller")]);
    let (status, body) = node.post_json("/js-caller/greet", r#"{"name":"Ada"}"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["relayed"], "Hello from Python, Ada!", "{body}");
    let (status, body) = node.post_json("/js-caller/greet", r#"{"service":"nobody"}"#);
    assert_eq!(status, 503, "{body}");

    // chat: Rust → JavaScript, JavaScript → Rust.
    node.cli_ok(&["run", &example("js", "chat")]);
    chat_reaches(&node, "chat", "js-chat", "from rust");
    chat_reaches(&node, "js-chat", "chat", "from js");
}

#[test]
fn javascript_errors_are_answers_and_the_next_call_works() {
    let node = TestNode::new("");
    let repo = GitRepo::new();
    repo.write(
        "index.js",
        r#"import { service, notFound } from 'micro';
export const { handler, subscriber } = service({
  methods: {
    boom() { throw new TypeError('kaboom'); },
    odd() { return { n: 1n << 70n, self: null, loop: (() => { const o = {}; o.o = o; return o; })() }; },
    missing() { throw notFound('no such thing'); },
    ok() { return { ok: true }; },
  },
});
"#,
    );
    repo.commit("faults");
    node.cli_ok(&["run", &repo.url(), "--name", "faulty"]);
    faults_are_answers(&node, "TypeError: kaboom");
}

#[test]
fn rust_calls_python_and_javascript() {
    // The Rust frontend calls `hello` and `counter` by name: here they are the Python hello
    // and the JavaScript counter.
    let node = TestNode::new("");
    node.cli_ok(&["run", &example("python", "hello"), "--name", "hello"]);
    node.cli_ok(&["run", &example("js", "counter"), "--name", "counter"]);
    node.deploy("frontend", "frontend");
    for visits in 1..=2 {
        let (status, body) = node.post_json("/frontend/visit", r#"{"name":"Ada"}"#);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["greeting"], "Hello from Python, Ada!", "{body}");
        assert_eq!(body["visits"], visits, "{body}");
    }
}

#[test]
fn the_typescript_declarations_are_generated_from_the_wit() {
    let out = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("node")
        .arg(repo_root().join("sdk/js/gen-types.mjs"))
        .arg(repo_root().join("wit"))
        .arg(out.path())
        .status()
        .expect("running node");
    assert!(status.success());
    let committed = repo_root().join("sdk/js/types");
    let mut compared = 0;
    for dir in ["", "interfaces"] {
        for entry in std::fs::read_dir(out.path().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                continue;
            }
            let name = path.strip_prefix(out.path()).unwrap();
            let fresh = std::fs::read_to_string(&path).unwrap();
            let kept = std::fs::read_to_string(committed.join(name)).unwrap_or_default();
            assert_eq!(
                fresh,
                kept,
                "sdk/js/types/{} is stale: run `node sdk/js/gen-types.mjs`",
                name.display()
            );
            compared += 1;
        }
    }
    assert_eq!(
        compared, 9,
        "one declaration file per interface, and the world's"
    );
}
