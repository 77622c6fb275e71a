//! Calls to other services, wherever they run.

use crate::bindings::micro::network::transport;
use crate::bindings::micro::network::types::{Request, Response};
use crate::{Error, Result};
use serde::{Serialize, de::DeserializeOwned};

/// Calls `method` of `service` with a JSON body and decodes the JSON answer.
pub fn call<In: Serialize + ?Sized, Out: DeserializeOwned>(
    service: &str,
    method: &str,
    input: &In,
) -> Result<Out> {
    let payload = serde_json::to_vec(input)
        .map_err(|e| Error::bad_request(format!("encoding the request: {e}")))?;
    let response = call_raw(service, method, payload, "application/json")?;
    serde_json::from_slice(&response.payload).map_err(|e| {
        Error::failed(format!(
            "{service}.{method} answered something that is not the expected JSON: {e}"
        ))
    })
}

/// Calls `method` of `service` with raw bytes.
pub fn call_raw(
    service: &str,
    method: &str,
    payload: Vec<u8>,
    content_type: &str,
) -> Result<Response> {
    transport::call(&Request {
        service: service.to_string(),
        method: method.to_string(),
        payload,
        content_type: content_type.to_string(),
        metadata: Vec::new(),
    })
}
