//! Misbehaves on request, so tests can show that the node contains it; also shows what the
//! node's interfaces give a component (echo, forward, the registry's view of the network).

use micro_sdk::{Context, Result};
use serde::Deserialize;

struct Hostile;

/// Never returns.
fn spin(_ctx: &Context, _: ()) -> Result<u64> {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// Allocates until something stops it.
fn bomb(_ctx: &Context, _: ()) -> Result<usize> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = vec![0u8; 1 << 20];
        chunk[0] = 1;
        hoard.push(std::hint::black_box(chunk));
    }
}

#[derive(Deserialize)]
struct Depth {
    depth: u64,
}

/// Recurses `depth` deep with a real frame on each level.
fn recurse(_ctx: &Context, input: Depth) -> Result<u64> {
    fn down(n: u64) -> u64 {
        // A frame the optimiser cannot remove: every level really uses stack.
        let frame = std::hint::black_box([n; 32]);
        if n == 0 {
            0
        } else {
            1 + down(n - 1) + frame[31].wrapping_sub(n)
        }
    }
    Ok(down(input.depth))
}

/// Panics, which traps the instance.
fn trap(_ctx: &Context, _: ()) -> Result<()> {
    panic!("this service traps on purpose")
}

/// Echoes its input.
fn echo(_ctx: &Context, input: serde_json::Value) -> Result<serde_json::Value> {
    Ok(input)
}

#[derive(Deserialize)]
struct Size {
    bytes: usize,
}

/// Answers with a string of `bytes` bytes.
fn big(_ctx: &Context, input: Size) -> Result<String> {
    Ok("x".repeat(input.bytes))
}

#[derive(Deserialize)]
struct Forward {
    service: String,
    method: String,
    #[serde(default)]
    body: serde_json::Value,
}

/// Calls another service (or itself, to make a loop).
fn forward(_ctx: &Context, input: Forward) -> Result<serde_json::Value> {
    micro_sdk::call(&input.service, &input.method, &input.body)
}

/// Calls itself forever: only the node's call depth limit ends it.
fn call_loop(_ctx: &Context, _: ()) -> Result<serde_json::Value> {
    micro_sdk::call("hostile", "loop", &())
}

#[derive(Deserialize)]
struct Fetch {
    /// `host:port` to send `GET {path}` to over plain HTTP.
    authority: String,
    path: String,
}

/// Tries an outgoing HTTP request through `wasi:http/outgoing-handler`; answers the status or
/// the error code the host gave.
fn fetch(_ctx: &Context, input: Fetch) -> Result<String> {
    use wasip2::http::types::{Fields, OutgoingRequest, Scheme};
    let request = OutgoingRequest::new(Fields::new());
    let _ = request.set_scheme(Some(&Scheme::Http));
    let _ = request.set_authority(Some(&input.authority));
    let _ = request.set_path_with_query(Some(&input.path));
    let future = match wasip2::http::outgoing_handler::handle(request, None) {
        Ok(future) => future,
        Err(code) => return Ok(format!("error: {code:?}")),
    };
    future.subscribe().block();
    Ok(match future.get() {
        Some(Ok(Ok(response))) => format!("status: {}", response.status()),
        Some(Ok(Err(code))) => format!("error: {code:?}"),
        other => format!("error: {other:?}"),
    })
}

/// What the sandbox lets a component see of the machine.
#[derive(serde::Serialize)]
struct Probe {
    root_dir: String,
    env_vars: usize,
    tcp: String,
}

fn probe(_ctx: &Context, input: Fetch) -> Result<Probe> {
    Ok(Probe {
        root_dir: match std::fs::read_dir("/") {
            Ok(entries) => format!("listed {} entries", entries.count()),
            Err(e) => format!("error: {e}"),
        },
        env_vars: std::env::vars().count(),
        tcp: match std::net::TcpStream::connect(&input.authority) {
            Ok(_) => "connected".into(),
            Err(e) => format!("error: {e}"),
        },
    })
}

/// Which service to look up.
#[derive(serde::Deserialize)]
struct Lookup {
    name: String,
}

/// The network's services, as the registry interface shows them to a component.
fn services(_ctx: &Context, _input: ()) -> Result<Vec<micro_sdk::registry::ServiceInfo>> {
    Ok(micro_sdk::registry::list())
}

/// One service, wherever it runs.
fn lookup(_ctx: &Context, input: Lookup) -> Result<Option<micro_sdk::registry::ServiceInfo>> {
    Ok(micro_sdk::registry::lookup(&input.name))
}

micro_sdk::service!(Hostile {
    "fetch" => fetch,
    "probe" => probe,
    "loop" => call_loop,
    "spin" => spin,
    "bomb" => bomb,
    "recurse" => recurse,
    "trap" => trap,
    "echo" => echo,
    "big" => big,
    "forward" => forward,
    "services" => services,
    "lookup" => lookup,
});
