//! What one call's store holds on this node: the calling scope, the node's services the call
//! may use, WASI with every capability denied, limits. The runtime below knows only that it
//! carries a scope; the interfaces the node offers are implemented on it.

use crate::node::Node;
use micro_runtime::{CallData, CallLimiter, CallScope, OutgoingHttp, arm_deadline, denied_wasi};
use std::sync::Arc;
use wasmtime::Store;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// The node's runtime: programs run in stores of [`HostState`].
pub type Runtime = micro_runtime::Runtime<HostState>;

/// A deployed version's code, run in stores of [`HostState`].
pub type Program = micro_runtime::Program<HostState>;

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

impl CallData for HostState {
    fn scope(&self) -> &CallScope {
        &self.scope
    }
}

/// The scope of a call into `service` that starts now, from outside the node.
pub fn fresh_scope(node: &Node, service: &str) -> CallScope {
    CallScope::fresh(
        service,
        std::time::Duration::from_millis(node.config.limits.call_timeout_ms),
    )
}

impl HostState {
    /// A store for one call, with its memory limit and deadline armed.
    pub fn store(node: &Arc<Node>, scope: CallScope) -> Store<HostState> {
        let engine = node.runtime.engine();
        let node = node.clone();
        let allow_http = node.config.http.allow_outgoing.contains(&scope.service);
        let limiter = CallLimiter::new(node.config.limits.memory_mib);
        let deadline = scope.deadline;
        let state = HostState {
            node,
            scope,
            wasi: denied_wasi(),
            http: WasiHttpCtx::new(),
            hooks: OutgoingHttp::new(allow_http),
            table: ResourceTable::new(),
            limiter,
        };
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limiter);
        arm_deadline(&mut store, deadline);
        store
    }
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

/// Links what the node offers a component beyond WASI: `micro:network` and `wasi:keyvalue`.
/// Each interface gets a view of only what it needs; `registry` and `transport` reach the
/// node (the network's view, the call pipeline).
pub fn link(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    use micro_runtime::wit::keyvalue::{atomics, batch, store};
    use micro_runtime::wit::micro::network::{broker, logging, registry, storage, transport};
    use micro_services::broker::{HasPublisher, Publisher};
    use micro_services::keyvalue::{Buckets, HasBuckets};
    use micro_services::logging::{HasServiceLog, ServiceLog};
    use micro_services::storage::{HasNamespace, Namespace};
    logging::add_to_linker::<_, HasServiceLog>(linker, |s| {
        ServiceLog::new(&s.node.registry.logs, &s.scope.service)
    })?;
    storage::add_to_linker::<_, HasNamespace>(linker, |s| {
        Namespace::new(&s.node.storage, &s.scope.service)
    })?;
    broker::add_to_linker::<_, HasPublisher>(linker, |s| {
        Publisher::new(&s.node.broker, &s.scope.service)
    })?;
    registry::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    transport::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    fn buckets(s: &mut HostState) -> Buckets<'_> {
        Buckets::new(&s.node.storage, &s.scope.service, &mut s.table)
    }
    store::add_to_linker::<_, HasBuckets>(linker, buckets)?;
    atomics::add_to_linker::<_, HasBuckets>(linker, buckets)?;
    batch::add_to_linker::<_, HasBuckets>(linker, buckets)?;
    Ok(())
}
