//! What the core asks of other nodes, and nothing of how they are reached: the peer layer
//! (crate `micro-net`) implements [`Remote`] and the composition root hands it to the node, so
//! the core never imports the network and a node runs whole without one. A test can stand a
//! fake in its place.

use crate::catalog::Offer;
use crate::system::governance::PeerAges;
use crate::transport::CallFailure;
use futures::future::BoxFuture;
use micro_runtime::wit::micro::network::types::{Caller, Request, Response};
use micro_services::broker::{FirstPublish, Subscription};
use std::time::Instant;

/// Other nodes, as the core sees them; it also knows how long this node has known each peer
/// ([`PeerAges`], in ms of the node's clock), which governance reads of an asker, and is told
/// of the first publish of each topic here ([`FirstPublish`]) to find that topic's subscribers.
pub trait Remote: PeerAges + FirstPublish + Send + Sync {
    /// Calls `request.service` on another node that serves it (the best route first, failing
    /// over while the call never started), within `deadline`. `token` is a client's API token
    /// that travels with the call. A service no other node serves is `not-found`; a serving
    /// node's governance refusing the caller's rate is [`CallFailure::RateLimited`].
    fn call<'a>(
        &'a self,
        caller: Caller,
        token: Option<&'a str>,
        deadline: Instant,
        request: Request,
    ) -> BoxFuture<'a, Result<Response, CallFailure>>;

    /// Extends `local`, a subscription to `topic` on this node's broker, to the nodes that
    /// publish on the topic (and those that start later); returns once the publishers found now
    /// take it (or the connect timeout passed), so what is published anywhere after that is
    /// delivered.
    fn subscribe<'a>(
        &'a self,
        local: Subscription,
        topic: &'a str,
        group: Option<&'a str>,
        history: bool,
    ) -> BoxFuture<'a, Subscription>;

    /// What other nodes offer, as far as this node knows now (a local view: in a large
    /// network, the services it called or looked up, never the whole network).
    fn offers(&self) -> Vec<Offer>;

    /// The offers of `name` (a service or `name@version`) anywhere in the network, looked up
    /// when this node does not know them; empty when no other node serves it.
    fn find<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Vec<Offer>>;

    /// The WIT of `service` (`name@version`) as node `node` serves it, fetched before
    /// `deadline`; none when the node cannot be reached or does not serve it.
    fn wit<'a>(
        &'a self,
        node: &'a str,
        service: &'a str,
        deadline: Instant,
    ) -> BoxFuture<'a, Option<String>>;
}
