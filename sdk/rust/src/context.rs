//! What a handler knows about the call it is answering.

use crate::bindings::micro::network::types::{Caller, Request};

/// The call being answered: who made it and the raw request.
pub struct Context {
    caller: Caller,
    request: Request,
}

impl Context {
    pub(crate) fn new(caller: Caller, request: Request) -> Self {
        Self { caller, request }
    }

    /// The calling service, if a service made the call (none for HTTP or CLI calls).
    pub fn caller_service(&self) -> Option<&str> {
        self.caller.service.as_deref()
    }

    /// The node the call came from.
    pub fn caller_node(&self) -> &str {
        &self.caller.node
    }

    /// How deep in a chain of calls this one is (0 for a call from outside).
    pub fn depth(&self) -> u32 {
        self.caller.depth
    }

    /// The method being called.
    pub fn method(&self) -> &str {
        &self.request.method
    }

    /// The raw request body.
    pub fn payload(&self) -> &[u8] {
        &self.request.payload
    }

    /// The request's metadata value for `key`, if any.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.request
            .metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}
