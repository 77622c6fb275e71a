//! Calls to services (the `transport` WIT interface): from the gateway, the CLI, components and
//! other nodes. A service running here is called in process; one running elsewhere is called
//! through the node's [`Remote`](crate::remote::Remote), the peer layer. The callee sees who
//! called.

use crate::host_state::HostState;
use crate::http_relay;
use crate::node::Node;
use crate::registry::{Deployment, Failure as _};
use micro_base::names::split_version;
use micro_runtime::wit::micro::network::transport as wit;
use micro_runtime::wit::micro::network::types::{CallError, Caller, Request, Response};
use micro_runtime::{CallScope, HttpResponse};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Why a call failed, as the node tells its own callers (the gateway, the CLI, other nodes). A
/// component sees the [`CallError`] it converts to: the WIT has no case for a rate limit, so a
/// component reads it as `denied`.
#[derive(Debug, Clone)]
pub enum CallFailure {
    /// What the call's WIT error says.
    Call(CallError),
    /// Governance refused the call for its rate: the same call may pass later.
    RateLimited(String),
}

impl From<CallError> for CallFailure {
    fn from(e: CallError) -> Self {
        CallFailure::Call(e)
    }
}

impl From<CallFailure> for CallError {
    fn from(f: CallFailure) -> Self {
        match f {
            CallFailure::Call(e) => e,
            CallFailure::RateLimited(why) => CallError::Denied(why),
        }
    }
}

impl crate::registry::Failure for CallFailure {
    fn describe(&self) -> String {
        match self {
            CallFailure::Call(e) => e.describe(),
            CallFailure::RateLimited(why) => format!("rate-limited: {why}"),
        }
    }
}

/// The caller of a call from outside the node (the gateway, the CLI): this node, no calling
/// service, at depth 0.
pub fn edge_caller(node: &Node) -> Caller {
    Caller {
        service: None,
        node: node.id.clone(),
        depth: 0,
    }
}

/// The deadline of a call that starts now, from outside the node.
pub fn deadline_from_now(node: &Node) -> Instant {
    Instant::now() + Duration::from_millis(node.config.limits.call_timeout_ms)
}

/// Asks governance whether the node `caller_node` may call `service`.`method` here; a
/// refusal (or no governance to ask) is a `denied` error with governance's reason, a refusal
/// for the caller's rate is [`CallFailure::RateLimited`].
pub async fn govern_call(
    node: &Node,
    caller_node: &str,
    service: &str,
    method: &str,
    private: bool,
) -> Result<(), CallFailure> {
    use crate::system::governance::{Refusal, Visibility};
    let governance = node
        .governance()
        .await
        .map_err(|e| CallError::Denied(format!("no governance to ask, so denied: {e}")))?;
    let caller = node.asker_for(caller_node);
    let visibility = if private {
        Visibility::Private
    } else {
        Visibility::Public
    };
    governance
        .authorize_call(&caller, service, method, visibility)
        .await
        .map_err(|refusal| match refusal {
            Refusal::RateLimited { .. } => CallFailure::RateLimited(refusal.to_string()),
            Refusal::Denied { .. } => CallFailure::Call(CallError::Denied(refusal.to_string())),
        })
}

/// Calls a service wherever it runs, this node first, and waits for its answer, within
/// `deadline`. The calling node pays.
pub async fn call(
    node: &Arc<Node>,
    caller: Caller,
    deadline: Instant,
    request: Request,
) -> Result<Response, CallFailure> {
    call_for(node, caller, None, deadline, request).await
}

/// A client's API token, as a call made for it uses it.
pub struct Client<'a> {
    /// The account the token names: it pays for what this node serves.
    pub account: &'a str,
    /// The token itself: a call served elsewhere takes it along, and the serving node checks
    /// it (and, when it issued or trusts the token, charges the token's account instead of
    /// this node).
    pub token: &'a str,
}

/// [`call`], for a client that gave a token (none: the calling node pays).
pub async fn call_for(
    node: &Arc<Node>,
    caller: Caller,
    client: Option<Client<'_>>,
    deadline: Instant,
    request: Request,
) -> Result<Response, CallFailure> {
    let (name, _) = split_version(&request.service);
    let here = node.registry.resolve(&request.service).is_some();
    let payer = client.as_ref().map(|c| c.account);
    match node.remote() {
        Some(remote) if !here && request.payload.len() <= node.config.limits.max_request_bytes => {
            // Another version runs here: if the network has none either, this node's answer
            // names the version it does serve.
            let fallback = node.registry.get(name).map(|_| request.clone());
            let token = client.as_ref().map(|c| c.token);
            let outcome = remote.call(caller.clone(), token, deadline, request).await;
            match (outcome, fallback) {
                (Err(CallFailure::Call(CallError::NotFound(_))), Some(request)) => {
                    serve(node, caller, payer, deadline, request).await.0
                }
                (outcome, _) => outcome,
            }
        }
        _ => serve(node, caller, payer, deadline, request).await.0,
    }
}

/// Serves a call on this node only, charged to `payer` (an account a token named; by default
/// the calling node): its outcome, and what it was charged (an admitted call is charged
/// whatever its outcome; one refused before it runs is not). Calls from other nodes end here:
/// they are never routed onwards, so a stale route cannot bounce a call around the network.
pub async fn serve(
    node: &Arc<Node>,
    caller: Caller,
    payer: Option<&str>,
    deadline: Instant,
    request: Request,
) -> (Result<Response, CallFailure>, u64) {
    let _load = Load::count(node);
    let mut charged = 0;
    let outcome = call_local(node, caller, payer, &mut charged, deadline, request).await;
    (outcome, charged)
}

/// Serves an HTTP request with the `wasi:http` component of `deployment` (service `name`),
/// charged to `payer` (by default this node): governance asks, admission, the ledger's
/// charge, the call counted in the node's load and the deployment's stats, as any call.
pub async fn serve_http(
    node: &Arc<Node>,
    payer: Option<&str>,
    deployment: &Deployment,
    name: &str,
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<HttpResponse, CallFailure> {
    let _load = Load::count(node);
    let method = request.method().as_str().to_string();
    govern_call(node, &node.id, name, &method, deployment.record.private).await?;
    let deadline = deadline_from_now(node);
    let _permit = deployment.admit(deadline).await?;
    charge_call(node, payer.unwrap_or(&node.id), name, &method).await?;
    let scope = CallScope {
        service: name.to_string(),
        depth: 0,
        deadline,
    };
    let store = HostState::store(node, scope);
    let _running = deployment.enter();
    let outcome = deployment.program.serve_http(store, request).await;
    deployment.count(&outcome);
    Ok(outcome?)
}

/// A call counted in the node's load (what peers see) while it runs.
struct Load<'a>(&'a std::sync::atomic::AtomicU32);

impl<'a> Load<'a> {
    fn count(node: &'a Node) -> Self {
        node.load.fetch_add(1, Ordering::Relaxed);
        Self(&node.load)
    }
}

impl Drop for Load<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Charges one call of `service`.`method` to `payer` through the ledger.
pub async fn charge_call(
    node: &Node,
    payer: &str,
    service: &str,
    method: &str,
) -> Result<u64, CallError> {
    let ledger = node
        .ledger()
        .await
        .map_err(|e| CallError::Denied(format!("payment cannot be verified, so denied: {e}")))?;
    // The ledger said it never charges this node's own calls: not asked (a call through the
    // gateway would otherwise wait its turn at the ledger's one instance).
    if payer == node.id && ledger.current().local_free {
        return Ok(0);
    }
    // The payer's reputation is governance's: a charge may be the node's first question.
    let governance = node.governance().await.ok();
    let account = ledger.account_of(&node.askers, governance, payer).await;
    ledger
        .charge(account, service, method, node.clock.now_ms())
        .await
}

async fn call_local(
    node: &Arc<Node>,
    caller: Caller,
    payer: Option<&str>,
    charged: &mut u64,
    deadline: Instant,
    request: Request,
) -> Result<Response, CallFailure> {
    let limits = &node.config.limits;
    if request.payload.len() > limits.max_request_bytes {
        return Err(CallError::BadRequest(format!(
            "request of {} bytes exceeds the limit of {} bytes",
            request.payload.len(),
            limits.max_request_bytes
        ))
        .into());
    }
    if caller.depth > limits.max_call_depth {
        return Err(CallError::Failed(format!(
            "call depth limit of {} reached calling {}.{} (a call loop?)",
            limits.max_call_depth, request.service, request.method
        ))
        .into());
    }
    let (name, version) = split_version(&request.service);
    let deployment = match node.registry.resolve(&request.service) {
        Some(d) => d,
        None => return Err(not_found(node, name, version).into()),
    };
    // A version never retires while a call runs in it.
    let _running = deployment.enter();
    // An HTTP request another node's gateway relayed here (`http_relay`); any other call to a
    // `wasi:http` component is refused by the component's entry.
    let relayed =
        if deployment.program.is_http() && request.content_type == http_relay::REQUEST_TYPE {
            Some(http_relay::request_of(&request)?)
        } else {
            None
        };
    if !deployment.program.is_http() && !deployment.record.methods.contains(&request.method) {
        // Named as it was called: a pinned version's methods may not be the serving one's.
        return Err(CallError::NotFound(format!(
            "{} has no method {:?}; it answers {}",
            request.service,
            request.method,
            deployment.record.methods.join(", ")
        ))
        .into());
    }
    govern_call(
        node,
        &caller.node,
        name,
        &request.method,
        deployment.record.private,
    )
    .await?;
    let outcome = async {
        // Admission control happens at the edge: a call from outside waits for a permit, the
        // nested calls of an admitted chain do not (they would deadlock a service that calls
        // itself). The call depth limit and the node's instance pool bound what a chain uses.
        let _permit = if caller.depth == 0 {
            Some(deployment.admit(deadline).await?)
        } else {
            None
        };
        *charged = charge_call(node, payer.unwrap_or(&caller.node), name, &request.method).await?;
        let scope = CallScope {
            service: name.to_string(),
            depth: caller.depth,
            deadline,
        };
        let store = HostState::store(node, scope);
        let run = async {
            match relayed {
                Some(http) => {
                    let limit = limits.max_response_bytes;
                    http_relay::serve(&deployment.program, store, http, limit, deadline).await
                }
                None => deployment.program.handle(store, &caller, &request).await,
            }
        };
        let response = tokio::time::timeout_at(deadline.into(), run)
            .await
            .map_err(|_| {
                CallError::Timeout(format!(
                    "{name}.{} ran past the call's deadline",
                    request.method
                ))
            })??;
        if response.payload.len() > limits.max_response_bytes {
            return Err(CallError::Failed(format!(
                "{name}.{} answered {} bytes, over the limit of {} bytes",
                request.method,
                response.payload.len(),
                limits.max_response_bytes
            )));
        }
        Ok(response)
    }
    .await;
    deployment.count(&outcome);
    if let Err(e @ (CallError::Failed(_) | CallError::Timeout(_))) = &outcome {
        // The service's own failures (a trap, an error it answered, its deadline), for
        // `micro logs`; refusals and bad requests are the caller's business.
        node.registry.logs.push(
            name,
            "error",
            format!(
                "{}.{} failed: {}",
                request.service,
                request.method,
                e.describe()
            ),
        );
    }
    outcome.map_err(CallFailure::from)
}

/// Why `name` or `name@version` is not served here, naming what is.
fn not_found(node: &Node, name: &str, version: Option<&str>) -> CallError {
    let live: Vec<String> = node
        .registry
        .live_versions(name)
        .iter()
        .map(|d| d.record.version.clone())
        .collect();
    match (version, live.first()) {
        (Some(v), Some(serving)) => {
            let retired = node
                .registry
                .version_info(name, v)
                .ok()
                .flatten()
                .map(|info| format!(" (it is {:?})", info.state))
                .unwrap_or_default();
            CallError::NotFound(format!(
                "{name} has no live version {v:?}{retired}; it serves version {serving} (live: {})",
                live.join(", ")
            ))
        }
        _ => CallError::NotFound(format!("no service named {name:?} on this node")),
    }
}

impl wit::Host for HostState {
    async fn call(&mut self, request: Request) -> Result<Response, CallError> {
        let caller = Caller {
            service: Some(self.scope.service.clone()),
            node: self.node.id.clone(),
            depth: self.scope.depth + 1,
        };
        call(&self.node, caller, self.scope.deadline, request)
            .await
            .map_err(CallError::from)
    }
}
