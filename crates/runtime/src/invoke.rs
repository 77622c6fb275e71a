//! Calling into a program: one fresh instance per call, traps turned into call errors.

use super::call::CallData;
use super::limits::MemoryLimitExceeded;
use super::program::{Entry, Program};
use crate::wit::exports::micro::network::handler::{self, Description};
use crate::wit::micro::network::broker::Message;
use crate::wit::micro::network::types::{CallError, Caller, Request, Response};
use wasmtime::{Store, Trap};
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// The result of a call.
pub type CallOutcome = Result<Response, CallError>;

/// The result of an HTTP request to a `wasi:http` component.
pub type HttpOutcome = Result<HttpResponse, CallError>;

/// What a `wasi:http` component answered.
pub type HttpResponse = hyper::Response<HyperOutgoingBody>;

impl<T: CallData> Program<T> {
    /// Asks a service to describe itself (its methods and subscriptions).
    pub async fn describe(&self, mut store: Store<T>) -> Result<Description, CallError> {
        let Entry::Service { handler, .. } = &self.entry else {
            return Ok(Description {
                methods: Vec::new(),
                subscriptions: Vec::new(),
            });
        };
        let _running = self.ticker.running();
        let guest = self.handler(&mut store, handler).await?;
        guest
            .call_describe(&mut store)
            .await
            .map_err(|e| classify(&store, self.timeout_ms, e))
    }

    /// Runs one call on a fresh instance.
    pub async fn handle(
        &self,
        mut store: Store<T>,
        caller: &Caller,
        request: &Request,
    ) -> CallOutcome {
        let Entry::Service { handler, .. } = &self.entry else {
            return Err(CallError::BadRequest(format!(
                "{} is a wasi:http component: call it over HTTP under /{}/",
                request.service, request.service
            )));
        };
        let _running = self.ticker.running();
        let guest = self.handler(&mut store, handler).await?;
        guest
            .call_handle(&mut store, caller, request)
            .await
            .map_err(|e| classify(&store, self.timeout_ms, e))?
    }

    /// A fresh instance's `handler` export.
    async fn handler(
        &self,
        store: &mut Store<T>,
        indices: &handler::GuestIndices,
    ) -> Result<handler::Guest, CallError> {
        let instance = self
            .pre
            .instantiate_async(&mut *store)
            .await
            .map_err(|e| classify(store, self.timeout_ms, e))?;
        indices
            .load(&mut *store, &instance)
            .map_err(|e| classify(store, self.timeout_ms, e))
    }

    /// Delivers one broker message on a fresh instance.
    pub async fn deliver(&self, mut store: Store<T>, message: &Message) -> Result<(), String> {
        let Entry::Service {
            subscriber: Some(subscriber),
            ..
        } = &self.entry
        else {
            return Err("the service does not export micro:network/subscriber".into());
        };
        let _running = self.ticker.running();
        let run = async {
            let instance = self.pre.instantiate_async(&mut store).await?;
            let guest = subscriber.load(&mut store, &instance)?;
            guest.call_on_message(&mut store, message).await
        };
        match run.await {
            Ok(result) => result,
            Err(e) => Err(classify(&store, self.timeout_ms, e).to_string()),
        }
    }

    /// Serves one HTTP request with a `wasi:http` component, exactly as `wasmtime serve` would.
    pub async fn serve_http<B>(
        &self,
        mut store: Store<T>,
        request: hyper::Request<B>,
    ) -> HttpOutcome
    where
        B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let Entry::Http(proxy) = &self.entry else {
            return Err(CallError::BadRequest("not a wasi:http component".into()));
        };
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let prepared: wasmtime::Result<_> = (|| {
            let mut http = wasmtime_wasi_http::WasiHttpView::http(store.data_mut());
            let req = http.new_incoming_request(Scheme::Http, request)?;
            let out = http.new_response_outparam(sender)?;
            wasmtime::Result::Ok((req, out))
        })();
        let (req, out) = prepared.map_err(|e| CallError::BadRequest(format!("{e:#}")))?;
        let proxy = proxy.clone();
        let timeout_ms = self.timeout_ms;
        let running = self.ticker.running();
        // The component may keep streaming its body after it has set the response, so it runs
        // in its own task, bounded by the store's deadline.
        let task = tokio::spawn(async move {
            let _running = running;
            let result = async {
                let instance = proxy.instantiate_async(&mut store).await?;
                instance
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, req, out)
                    .await
            }
            .await;
            result.map_err(|e| classify(&store, timeout_ms, e))
        });
        match receiver.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => Err(http_error(code)),
            Err(_) => match task.await {
                Ok(Err(e)) => Err(e),
                Ok(Ok(())) => Err(CallError::Failed(
                    "the component never set a response".into(),
                )),
                Err(e) => Err(CallError::Failed(format!("the request task failed: {e}"))),
            },
        }
    }
}

fn http_error(code: ErrorCode) -> CallError {
    CallError::Failed(format!("the component answered with an error: {code:?}"))
}

/// Turns a wasmtime error into the call error a caller can act on.
fn classify<T: CallData>(store: &Store<T>, timeout_ms: u64, error: wasmtime::Error) -> CallError {
    let service = &store.data().scope().service;
    if let Some(limit) = error.downcast_ref::<MemoryLimitExceeded>() {
        return CallError::Failed(limit.to_string());
    }
    if let Some(trap) = error.downcast_ref::<Trap>() {
        return match trap {
            Trap::Interrupt => CallError::Timeout(format!(
                "{service} ran past its deadline of {timeout_ms} ms"
            )),
            Trap::StackOverflow => CallError::Failed(format!(
                "{service} trapped: stack overflow (call stack exhausted, recursion too deep)"
            )),
            trap => CallError::Failed(format!("{service} trapped: {trap}")),
        };
    }
    if let Some(full) = error.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
        return CallError::Unavailable(format!("the node is at its instance limit: {full}"));
    }
    CallError::Failed(format!("{error:#}"))
}
