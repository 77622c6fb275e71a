//! The Python SDK: the examples in `examples/python` are built by the node from their
//! directories (componentize-py with `import micro`), called through HTTP and the CLI, and talk
//! to services written in Rust — calls and events both ways.

use micro_tests::{GitRepo, TestNode, chat_reaches, example, faults_are_answers};

#[test]
fn python_examples_run_and_talk_to_rust() {
    let node = TestNode::new("");
    node.deploy("hello", "hello");
    node.deploy("chat", "chat");

    // hello: typed input, JSON out, through HTTP and the CLI; bad input is a 400 and the next
    // call works.
    let out = node.cli_ok(&["run", &example("python", "hello")]);
    assert!(out.contains("deployed py-hello"), "{out}");
    let (status, body) = node.post_json("/py-hello/greet", r#"{"name":"Ada"}"#);
    assert_eq!(
        (status, body["message"].as_str()),
        (200, Some("Hello from Python, Ada!")),
        "{body}"
    );
    let (status, body) = node.post_json("/py-hello/greet", r#"{"nam":"Ada"}"#);
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("Greet has no field 'nam' (fields: name)"),
        "{body}"
    );
    let out = node.cli_ok(&["call", "py-hello", "greet", r#"{"name":"Bo"}"#]);
    assert!(out.contains("Hello from Python, Bo!"), "{out}");

    // counter: storage.
    node.cli_ok(&["run", &example("python", "counter")]);
    for expected in 1..=2 {
        let (status, body) = node.post_json("/py-counter/incr", r#"{"name":"a"}"#);
        assert_eq!(
            (status, body["value"].as_i64()),
            (200, Some(expected)),
            "{body}"
        );
    }
    let out = node.cli_ok(&["call", "py-counter", "get", r#"{"name":"a"}"#]);
    let body: serde_json::Value =
        serde_json::from_str(&out).expect("the CLI prints the JSON answer");
    assert_eq!(body["value"], 2, "{body}");
    let (_, body) = node.post_json("/py-counter/list", "{}");
    assert_eq!(body, serde_json::json!([{"name": "a", "value": 2}]));

    // caller: Python calls Rust.
    node.cli_ok(&["run", &example("python", "caller")]);
    let (status, body) = node.post_json("/py-caller/greet", r#"{"name":"Ada"}"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["relayed"], "Hello, Ada!", "{body}");
    let (status, body) = node.post_json("/py-caller/greet", r#"{"service":"nobody"}"#);
    assert_eq!(status, 503, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("nobody is not running"),
        "{body}"
    );

    // chat: a message posted to the Rust chat reaches the Python chat, and back.
    node.cli_ok(&["run", &example("python", "chat")]);
    chat_reaches(&node, "chat", "py-chat", "from rust");
    chat_reaches(&node, "py-chat", "chat", "from python");
}

#[test]
fn python_errors_are_answers_and_the_next_call_works() {
    let node = TestNode::new("");
    let repo = GitRepo::new();
    repo.write(
        "app.py",
        r#"from dataclasses import dataclass
from typing import Optional
import micro

@dataclass
class Add:
    text: str
    n: int = 1
    tags: Optional[list[str]] = None

@micro.method
def add(body: Add):
    return {"text": body.text, "n": body.n, "tags": body.tags}

@micro.method
def boom(body):
    raise ValueError("kaboom")

@micro.method
def odd(body):
    return object()

@micro.method
def missing(body):
    raise micro.NotFound("no such thing")

@micro.method
def ok(body):
    return {"ok": True}

from micro import Handler, Subscriber
"#,
    );
    repo.commit("faults");
    node.cli_ok(&["run", &repo.url(), "--name", "faulty"]);
    faults_are_answers(&node, "ValueError: kaboom");

    // A dataclass body is checked field by field: the caller hears which field and what it
    // expects, never Python's internals.
    for (body, says) in [
        ("{}", "missing field 'text' (a string)"),
        (
            r#"{"text":42}"#,
            "field 'text': expected a string, got an integer",
        ),
        (
            r#"{"text":"a","n":"2"}"#,
            "field 'n': expected an integer, got a string",
        ),
        (
            r#"{"text":"a","tags":["x",1]}"#,
            "field 'tags[1]': expected a string",
        ),
        (r#"{"text":"a","zz":1}"#, "Add has no field 'zz'"),
    ] {
        let (status, answer) = node.post_json("/faulty/add", body);
        assert_eq!(status, 400, "{body}: {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{body}: {answer}");
        assert!(!message.contains("__init__"), "{body}: {answer}");
    }
    let (status, answer) = node.post_json("/faulty/add", r#"{"text":"a","tags":["x"]}"#);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        serde_json::json!({"text": "a", "n": 1, "tags": ["x"]})
    );
}
