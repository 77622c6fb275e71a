//! The error a handler returns and a call can fail with: the WIT `call-error` variant.

use crate::bindings::micro::network::types::CallError;

/// The error type of handlers and calls; a caller can match on its cases.
pub type Error = CallError;

/// Result of a handler or a call.
pub type Result<T, E = Error> = core::result::Result<T, E>;

impl CallError {
    /// The request was malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }
    /// No such thing.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }
    /// The handler failed.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }
    /// The caller may not do this.
    pub fn denied(message: impl Into<String>) -> Self {
        Self::Denied(message.into())
    }
    /// Something this service needs is not available now; the caller may retry.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Unavailable(message.into())
    }
    /// The work did not finish in time.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::Timeout(message.into())
    }
    /// The caller must pay (or pay more) first.
    pub fn payment_required(message: impl Into<String>) -> Self {
        Self::PaymentRequired(message.into())
    }
    /// The message carried by any case.
    pub fn message(&self) -> &str {
        match self {
            Self::NotFound(m)
            | Self::Denied(m)
            | Self::Unavailable(m)
            | Self::Timeout(m)
            | Self::BadRequest(m)
            | Self::PaymentRequired(m)
            | Self::Failed(m) => m,
        }
    }
}

impl From<crate::storage::StorageError> for CallError {
    fn from(e: crate::storage::StorageError) -> Self {
        Self::Failed(format!("storage: {e}"))
    }
}

impl From<crate::events::PublishError> for CallError {
    fn from(e: crate::events::PublishError) -> Self {
        Self::Failed(format!("publish: {e}"))
    }
}
