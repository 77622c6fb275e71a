//! Tickets: a node's id and addresses in one copy-pasteable string, to join through it.

use base64::Engine as _;
use iroh::EndpointAddr;

/// Every ticket starts with this.
const PREFIX: &str = "micro1";

/// A ticket that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("not a micro ticket ({0}); `micro network ticket` on a running node prints one")]
pub struct BadTicket(String);

/// Encodes a node's address as a ticket.
pub fn encode(addr: &EndpointAddr) -> String {
    let bytes = postcard::to_stdvec(addr).unwrap_or_default();
    format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Decodes a ticket.
pub fn decode(ticket: &str) -> Result<EndpointAddr, BadTicket> {
    let body = ticket
        .trim()
        .strip_prefix(PREFIX)
        .ok_or_else(|| BadTicket(format!("it does not start with {PREFIX:?}")))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|e| BadTicket(e.to_string()))?;
    postcard::from_bytes(&bytes).map_err(|e| BadTicket(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_round_trip_and_garbage_is_refused() {
        let id = iroh::SecretKey::generate().public();
        let addr = EndpointAddr::new(id).with_ip_addr("127.0.0.1:4242".parse().unwrap());
        let ticket = encode(&addr);
        assert_eq!(decode(&ticket).unwrap(), addr);
        assert!(decode("hello").unwrap_err().to_string().contains("micro1"));
        assert!(decode("micro1!!!").is_err());
        assert!(decode("micro1AAAA").is_err());
    }
}
