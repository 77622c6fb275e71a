//! Counts hits with `wasi:keyvalue/atomics` and keeps named items with `wasi:keyvalue/store`
//! and `batch`, like a component written for another host's key-value store; `storage` reads
//! the same counter through micro's own storage interface, to show they share a namespace.

wit_bindgen::generate!({
    inline: "
        package test:kv;
        world kv-counter {
            include micro:network/service@0.1.0;
            import wasi:keyvalue/store@0.2.0-draft;
            import wasi:keyvalue/atomics@0.2.0-draft;
            import wasi:keyvalue/batch@0.2.0-draft;
        }
    ",
    path: ["../../../wit", "../../../crates/runtime/wit/keyvalue"],
    generate_all,
});

use exports::micro::network::handler::{Description, Guest};
use micro::network::types::{CallError, Caller, Request, Response};
use wasi::keyvalue::{atomics, batch, store};

struct KvCounter;

fn json(text: String) -> Result<Response, CallError> {
    Ok(Response {
        payload: text.into_bytes(),
        content_type: "application/json".into(),
        metadata: vec![],
    })
}

fn failed(e: store::Error) -> CallError {
    CallError::Failed(format!("{e:?}"))
}

impl Guest for KvCounter {
    fn describe() -> Description {
        Description {
            methods: vec!["hit".into(), "put".into(), "items".into(), "storage".into()],
            subscriptions: vec![],
        }
    }

    fn handle(_caller: Caller, request: Request) -> Result<Response, CallError> {
        let body = String::from_utf8_lossy(&request.payload).into_owned();
        match request.method.as_str() {
            "hit" => {
                let bucket = store::open("default").map_err(failed)?;
                let n = atomics::increment(&bucket, "hits", 1).map_err(failed)?;
                json(format!("{{\"hits\":{n}}}"))
            }
            "put" => {
                // The body is `name=value`; kept in the "items" bucket.
                let (name, value) = body
                    .split_once('=')
                    .ok_or_else(|| CallError::BadRequest("name=value".into()))?;
                let bucket = store::open("items").map_err(failed)?;
                batch::set_many(&bucket, &[(name.to_string(), value.as_bytes().to_vec())])
                    .map_err(failed)?;
                json("{}".into())
            }
            "items" => {
                let bucket = store::open("items").map_err(failed)?;
                let mut keys = Vec::new();
                let mut cursor = None;
                loop {
                    let page = bucket.list_keys(cursor).map_err(failed)?;
                    keys.extend(page.keys);
                    match page.cursor {
                        Some(c) => cursor = Some(c),
                        None => break,
                    }
                }
                let values = batch::get_many(&bucket, &keys).map_err(failed)?;
                let pairs: Vec<String> = values
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| format!("\"{k}\":\"{}\"", String::from_utf8_lossy(&v)))
                    .collect();
                json(format!("{{{}}}", pairs.join(",")))
            }
            "storage" => {
                let hits = micro::network::storage::get("hits")
                    .map_err(|e| CallError::Failed(format!("{e:?}")))?
                    .map(|v| String::from_utf8_lossy(&v).into_owned())
                    .unwrap_or_default();
                json(format!("{{\"hits\":\"{hits}\"}}"))
            }
            other => Err(CallError::NotFound(format!("no method {other}"))),
        }
    }
}

export!(KvCounter);
