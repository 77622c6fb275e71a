//! What a call's store must carry, whatever else the embedder puts in it: the call's scope
//! (whose code runs, how deep, until when), WASI with every capability denied, outgoing HTTP
//! refused unless allowed, and a deadline the engine's epoch enforces.

use std::time::{Duration, Instant};
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiView};
use wasmtime_wasi_http::{WasiHttpHooks, WasiHttpView};

/// Who is running and until when: the service a store belongs to and the call it serves.
#[derive(Debug, Clone)]
pub struct CallScope {
    /// The service whose code runs in this store; its storage namespace and caller identity.
    pub service: String,
    /// How many calls deep this store runs (0 for a call from outside the node).
    pub depth: u32,
    /// When the call must be finished, nested calls included.
    pub deadline: Instant,
}

impl CallScope {
    /// The scope of a call into `service` that starts now, from outside the node, and may
    /// take `timeout`.
    pub fn fresh(service: &str, timeout: Duration) -> Self {
        Self {
            service: service.to_string(),
            depth: 0,
            deadline: Instant::now() + timeout,
        }
    }
}

/// The data of a store a program runs in: the embedder's, as long as it says which call it
/// serves and offers WASI and wasi:http views.
pub trait CallData: WasiView + WasiHttpView + Send + 'static {
    /// The call this store serves.
    fn scope(&self) -> &CallScope;
}

/// WASI with every capability denied: no preopened directories, no sockets, no name lookups,
/// no inherited environment. Stderr goes to the node's own stderr so a component's panic
/// message is not lost.
pub fn denied_wasi() -> WasiCtx {
    WasiCtxBuilder::new()
        .inherit_stderr()
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build()
}

/// Every epoch tick the guest yields to the executor, so a busy guest never starves others,
/// and past `deadline` it is interrupted.
pub fn arm_deadline<T: 'static>(store: &mut Store<T>, deadline: Instant) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        Ok(if Instant::now() >= deadline {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Yield(1)
        })
    });
}

/// Outgoing HTTP hooks: a request is refused unless the node's configuration allows the
/// service to send one.
pub struct OutgoingHttp {
    allowed: bool,
}

impl OutgoingHttp {
    /// Hooks that send requests if `allowed`, and refuse them otherwise.
    pub fn new(allowed: bool) -> Self {
        Self { allowed }
    }
}

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<wasmtime_wasi_http::WasiBody>,
    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
)>;

impl WasiHttpHooks for OutgoingHttp {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        if !self.allowed {
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        let default = wasmtime_wasi_http::default_hooks();
        default.send_request(request, options, fut)
    }
}
