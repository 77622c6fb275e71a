//! What one call's store holds: the calling scope, WASI with every capability denied, limits.

use super::limits::CallLimiter;
use crate::node::Node;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

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

/// The data of one store: one call of one service.
pub struct HostState {
    /// The node's services (storage, broker, registry, runtime) this call may use.
    pub node: Arc<Node>,
    /// The call being served.
    pub scope: CallScope,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutgoingHttp,
    table: ResourceTable,
    limiter: CallLimiter,
}

impl CallScope {
    /// The scope of a call into `service` that starts now, from outside the node.
    pub fn fresh(node: &Node, service: &str) -> Self {
        Self {
            service: service.to_string(),
            depth: 0,
            deadline: crate::transport::deadline_from_now(node),
        }
    }
}

impl HostState {
    /// The call's resources (open buckets, WASI streams).
    pub(crate) fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// A store for one call, with its memory limit and deadline armed.
    pub fn store(node: &Arc<Node>, scope: CallScope) -> Store<HostState> {
        let engine = node.runtime.engine();
        let node = node.clone();
        let allow_http = node.config.http.allow_outgoing.contains(&scope.service);
        let wasi = denied_wasi();
        let limiter = CallLimiter::new(node.config.limits.memory_mib);
        let deadline = scope.deadline;
        let state = HostState {
            node,
            scope,
            wasi,
            http: WasiHttpCtx::new(),
            hooks: OutgoingHttp {
                allowed: allow_http,
            },
            table: ResourceTable::new(),
            limiter,
        };
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limiter);
        arm_deadline(&mut store, deadline);
        store
    }
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

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Outgoing HTTP is refused unless the node's configuration allows it for the service.
struct OutgoingHttp {
    allowed: bool,
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

/// The linker with everything a component may import: WASI 0.2 and `micro:network`.
pub fn linker(engine: &Engine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    crate::wit::EventService::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    crate::keyvalue::Imports::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    Ok(linker)
}
