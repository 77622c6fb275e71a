//! The peer protocol's framing and messages (ALPN `micro/rpc/2`, and `micro/rpc/1` for nodes
//! of the previous protocol).
//!
//! Versions: a node offers every protocol it speaks as ALPN identifiers, newest first, and
//! the TLS handshake settles on the newest both speak; what a connection speaks is its ALPN.
//! Messages are postcard enums, so a variant is never removed or moved: a retired one keeps its
//! place (and an answer a node of its version understands), and new ones go at the end. A
//! message a peer's version does not know is never sent to it.
//!
//! One QUIC stream per exchange: the opener writes a request frame, the other side answers with
//! one reply frame (or, for an event stream, the subscriber writes control frames and the
//! publisher answers with a stream of replies). A frame is a big-endian `u32`
//! header length, the header (postcard), a `u32` payload length and the payload; both lengths
//! are checked against the node's limit before anything is allocated.

use micro_core::transport::CallFailure;
use micro_runtime::wit::micro::network::types::CallError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The ALPN of this build's protocol: calls, pings, the DHT, event streams between nodes.
pub const RPC_ALPN: &[u8] = b"micro/rpc/2";
/// The ALPN of the previous protocol (with node records and anti-entropy), still spoken to
/// nodes that know no other.
pub const RPC_ALPN_1: &[u8] = b"micro/rpc/1";
/// The protocol this build speaks.
pub const PROTOCOL: u16 = 2;

/// The protocol a connection's ALPN names, if this build speaks it.
pub fn protocol_of(alpn: &[u8]) -> Option<u16> {
    match alpn {
        RPC_ALPN => Some(PROTOCOL),
        RPC_ALPN_1 => Some(1),
        _ => None,
    }
}

/// A node record of protocol 1, as it travels (never opened any more).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetiredRecord {
    /// The encoded record.
    pub body: Vec<u8>,
    /// Its node's signature.
    pub signature: Vec<u8>,
}

/// Largest header, whatever the frame limit: headers are small by design.
const MAX_HEADER: usize = 64 * 1024;

/// What can go wrong reading or writing a frame.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    /// Bigger than the reader takes.
    TooLarge {
        /// The frame's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    #[error("malformed frame: {0}")]
    /// It does not decode.
    Malformed(String),
    #[error("stream ended mid-frame")]
    /// The stream ended in the middle of a frame.
    Truncated,
    #[error("i/o: {0}")]
    /// Reading or writing failed.
    Io(#[from] std::io::Error),
}

/// What a node asks of a peer on a new stream.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// Call a service; the payload is the request body.
    Call(CallHeader),
    /// Liveness and round-trip time; answered with [`Reply::Pong`].
    Ping,
    /// Protocol 1's anti-entropy of node records, retired: answered with an empty
    /// [`Reply::Records`].
    Sync {
        /// (node, sequence) of every record the asker has.
        known: Vec<([u8; 32], u64)>,
    },
    /// The WIT of a service served by the peer.
    Wit {
        /// `name` or `name@version`.
        service: String,
    },
    /// A component the peer keeps, by content hash (hex SHA-256): to run a replica of it.
    Component {
        /// Hex SHA-256 of the component.
        hash: String,
    },
    /// A receipt for calls the asker made here (the newest one to this node); answered with
    /// [`Reply::Settled`].
    Settle {
        /// The receipt.
        receipt: WireReceipt,
    },
    /// Protocol 1's record handed over directly, retired: only ever a node's goodbye, so it is
    /// taken as [`Request::Leaving`] and answered with an empty [`Reply::Records`].
    Push {
        /// The record (not opened).
        record: RetiredRecord,
    },
    /// Opens this node's event stream to the peer: one stream per pair of nodes, whatever the
    /// number of subscriptions. The asker writes [`Control`] frames on it (subscribe to a topic
    /// published on the peer, unsubscribe); the peer answers each subscription with
    /// [`Reply::Subscription`] and streams its messages as [`Reply::Messages`] frames.
    Events,
    /// A DHT request, with the asker's contact (checked against the connection's key);
    /// answered with [`Reply::Dht`]. New requests go at the end: older readers refuse what they
    /// do not know, and nothing before changes.
    Dht {
        /// The asker, in its own words.
        from: crate::contact::WireContact,
        /// What it asks.
        request: micro_dht::Request<micro_dht::Id, crate::contact::WireEntry>,
    },
    /// The asker is about to publish on `topic` for the first time and found the peer among
    /// its subscribers: the peer subscribes at the asker (over its event stream) before it
    /// answers [`Reply::Noted`], so the first message reaches it.
    Publishing {
        /// The asker, in its own words (checked against the connection's key).
        from: crate::contact::WireContact,
        /// The topic.
        topic: String,
    },
    /// Everything the asker's governance places on this node now (an empty list takes back
    /// what it placed before); answered with an empty [`Reply::Placements`].
    Place {
        /// The asker, in its own words (checked against the connection's key).
        from: crate::contact::WireContact,
        /// The placements naming this node.
        placements: Vec<crate::placement::Assignment>,
    },
    /// What the peer places on the asker now, asked by a node running a replica whose origin it
    /// has not heard from lately; answered with [`Reply::Placements`].
    Placed,
    /// How much the peer trusts the nodes it knows best; answered with [`Reply::Reports`] in
    /// protocol 1, [`Reply::ReportsOf`] from protocol 2. The connection's key says who reports.
    Reports,
    /// Protocol 2: the asker is leaving (the connection's key says who): the peer forgets it
    /// now, instead of when it stops answering; answered with [`Reply::Goodbye`].
    Leaving,
}

/// What a subscriber writes on its event stream to a publisher.
#[derive(Debug, Serialize, Deserialize)]
pub enum Control {
    /// Subscribe to `topic` on the peer, as subscription `sub` of this stream.
    Subscribe {
        /// The subscriber's number for it, unique on the stream.
        sub: u32,
        /// The topic.
        topic: String,
        /// The queue group the subscription stands in for.
        group: Option<String>,
        /// Replay the topic's retained messages first.
        history: bool,
    },
    /// Drop subscription `sub`.
    Unsubscribe {
        /// The subscriber's number for it.
        sub: u32,
    },
}

/// A call's header; the payload follows in the frame.
#[derive(Debug, Serialize, Deserialize)]
pub struct CallHeader {
    /// `name` or `name@version`.
    pub service: String,
    /// The method.
    pub method: String,
    /// The media type of the payload.
    pub content_type: String,
    /// The caller's metadata.
    pub metadata: Vec<(String, String)>,
    /// The calling service, if a component made the call.
    pub caller_service: Option<String>,
    /// How many calls deep the call is.
    pub depth: u32,
    /// Time left for the call, in milliseconds.
    pub timeout_ms: u64,
    /// An API token the caller's client gave: checked by the serving node, whose account it
    /// names pays when that node issued it or trusts its issuer.
    pub token: Option<String>,
}

/// A peer's answer.
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    /// A call's outcome (on success the payload is the response body), and what the caller
    /// was charged for it (micro-tokens), owed until its next receipt.
    Called(Result<CallOk, WireCallError>, u64),
    /// A receipt taken: the amount it newly paid; or why it was not.
    Settled(Result<u64, micro_core::system::ledger::accounts::ReceiptRefusal>),
    /// The answer to a ping.
    Pong {
        /// Calls in flight on the peer.
        load: u32,
    },
    /// Protocol 1's records, retired: always empty.
    Records(Vec<(RetiredRecord, u64)>),
    /// A service's WIT, or why not.
    Wit(Result<String, String>),
    /// A component's size; its bytes are the payload.
    Component(Result<u64, String>),
    /// Messages of subscription `sub` of an event stream: `count` of them, postcard-encoded
    /// in the payload (a batch can be far bigger than a header may be).
    Messages {
        /// The subscription they are for.
        sub: u32,
        /// How many messages the payload holds.
        count: u32,
    },
    /// The request was refused; why.
    Refused(String),
    /// A DHT answer, with the answering node's contact.
    Dht {
        /// The node that answers, in its own words.
        from: crate::contact::WireContact,
        /// The answer.
        response: micro_dht::Response<crate::contact::WireContact, crate::contact::WireEntry>,
    },
    /// Subscription `sub` of an event stream is in place, or why not.
    Subscription {
        /// The subscriber's number for it.
        sub: u32,
        /// In place, or refused.
        outcome: Result<(), String>,
    },
    /// A [`Request::Publishing`] taken: how many subscriptions the peer made at the asker.
    Noted {
        /// Subscriptions made.
        subscribed: u32,
    },
    /// What the peer places on the asker (empty in answer to [`Request::Place`]).
    Placements(Vec<crate::placement::Assignment>),
    /// Protocol 1: how much the peer trusts the nodes it knows best.
    Reports(Vec<crate::conduct::Report>),
    /// Protocol 2: a [`Request::Leaving`] taken.
    Goodbye,
    /// Protocol 2: how much the peer trusts the nodes it knows best, and the governance that
    /// says so.
    ReportsOf {
        /// The governance the peer runs ("name version"; empty until it is loaded).
        governance: String,
        /// Its reports.
        reports: Vec<crate::conduct::Report>,
    },
}

/// A receipt as it travels: signed by the payer over what it owes the payee in all.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireReceipt {
    /// The paying node.
    pub payer: String,
    /// The node paid.
    pub payee: String,
    /// All the payer owes the payee, in micro-tokens, ever.
    pub cumulative: u64,
    /// Grows with each receipt from this payer to this payee.
    pub counter: u64,
    /// The payer's signature.
    pub signature: Vec<u8>,
}

impl From<micro_core::system::ledger::accounts::Receipt> for WireReceipt {
    fn from(r: micro_core::system::ledger::accounts::Receipt) -> Self {
        Self {
            payer: r.payer,
            payee: r.payee,
            cumulative: r.cumulative,
            counter: r.counter,
            signature: r.signature,
        }
    }
}

impl From<WireReceipt> for micro_core::system::ledger::accounts::Receipt {
    fn from(r: WireReceipt) -> Self {
        Self {
            payer: r.payer,
            payee: r.payee,
            cumulative: r.cumulative,
            counter: r.counter,
            signature: r.signature,
        }
    }
}

/// A successful call's header.
#[derive(Debug, Serialize, Deserialize)]
pub struct CallOk {
    /// The media type of the response.
    pub content_type: String,
    /// The response's metadata.
    pub metadata: Vec<(String, String)>,
}

/// A broker message in an event stream. The topic is its subscription's and the node is the
/// one serving the stream, so neither travels with each message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamedMessage {
    /// The message's body.
    pub payload: Vec<u8>,
    /// Its media type.
    pub content_type: String,
    /// Its sequence on the topic, on the publishing node.
    pub sequence: u64,
    /// When it was published, in ms since the epoch.
    pub published_at_ms: u64,
    /// The publishing service, if a service published it.
    pub publisher: Option<String>,
}

impl StreamedMessage {
    /// The message as the broker knows it, published on `node`.
    pub fn into_message(self, topic: &str, node: &str) -> micro_services::broker::Message {
        micro_services::broker::Message {
            topic: topic.to_string(),
            payload: self.payload,
            content_type: self.content_type,
            sequence: self.sequence,
            published_at_ms: self.published_at_ms,
            publisher: self.publisher,
            node: node.to_string(),
        }
    }
}

impl From<micro_services::broker::Message> for StreamedMessage {
    fn from(m: micro_services::broker::Message) -> Self {
        Self {
            payload: m.payload,
            content_type: m.content_type,
            sequence: m.sequence,
            published_at_ms: m.published_at_ms,
            publisher: m.publisher,
        }
    }
}

/// [`CallError`] on the wire.
#[derive(Debug, Serialize, Deserialize)]
pub enum WireCallError {
    /// No such service or method.
    NotFound(String),
    /// The caller may not make this call.
    Denied(String),
    /// The service cannot take the call now.
    Unavailable(String),
    /// The call ran out of time.
    Timeout(String),
    /// The request is malformed.
    BadRequest(String),
    /// The caller must pay first.
    PaymentRequired(String),
    /// The service failed.
    Failed(String),
    /// Governance refused the caller's rate (a component's caller sees `denied`).
    RateLimited(String),
}

impl From<CallFailure> for WireCallError {
    fn from(f: CallFailure) -> Self {
        match f {
            CallFailure::Call(e) => e.into(),
            CallFailure::RateLimited(why) => Self::RateLimited(why),
        }
    }
}

impl From<WireCallError> for CallFailure {
    fn from(e: WireCallError) -> Self {
        match e {
            WireCallError::RateLimited(why) => CallFailure::RateLimited(why),
            other => CallFailure::Call(other.into()),
        }
    }
}

impl From<CallError> for WireCallError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::NotFound(m) => Self::NotFound(m),
            CallError::Denied(m) => Self::Denied(m),
            CallError::Unavailable(m) => Self::Unavailable(m),
            CallError::Timeout(m) => Self::Timeout(m),
            CallError::BadRequest(m) => Self::BadRequest(m),
            CallError::PaymentRequired(m) => Self::PaymentRequired(m),
            CallError::Failed(m) => Self::Failed(m),
        }
    }
}

impl From<WireCallError> for CallError {
    fn from(e: WireCallError) -> Self {
        match e {
            WireCallError::NotFound(m) => Self::NotFound(m),
            WireCallError::Denied(m) => Self::Denied(m),
            WireCallError::Unavailable(m) => Self::Unavailable(m),
            WireCallError::Timeout(m) => Self::Timeout(m),
            WireCallError::BadRequest(m) => Self::BadRequest(m),
            WireCallError::PaymentRequired(m) => Self::PaymentRequired(m),
            WireCallError::Failed(m) => Self::Failed(m),
            WireCallError::RateLimited(m) => Self::Denied(m),
        }
    }
}

/// Encodes a batch of messages as a `Messages` frame's payload.
pub fn encode_messages(messages: &[StreamedMessage]) -> Vec<u8> {
    postcard::to_stdvec(messages).unwrap_or_default()
}

/// Decodes a `Messages` frame's payload.
pub fn decode_messages(payload: &[u8]) -> Result<Vec<StreamedMessage>, WireError> {
    postcard::from_bytes(payload).map_err(|e| WireError::Malformed(format!("messages: {e}")))
}

/// Writes one frame; the bytes it took.
pub async fn write_frame<W: AsyncWrite + Unpin, H: Serialize>(
    out: &mut W,
    header: &H,
    payload: &[u8],
) -> Result<usize, WireError> {
    let header =
        postcard::to_stdvec(header).map_err(|e| WireError::Malformed(format!("encoding: {e}")))?;
    let mut buf = Vec::with_capacity(8 + header.len() + payload.len());
    buf.extend_from_slice(&(header.len() as u32).to_be_bytes());
    buf.extend_from_slice(&header);
    buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    buf.extend_from_slice(payload);
    out.write_all(&buf).await?;
    Ok(buf.len())
}

/// Reads one frame of at most `limit` bytes; `None` when the stream ended cleanly before it.
pub async fn read_frame<R: AsyncRead + Unpin, H: DeserializeOwned>(
    input: &mut R,
    limit: usize,
) -> Result<Option<(H, Vec<u8>)>, WireError> {
    Ok(read_sized_frame(input, limit)
        .await?
        .map(|(header, payload, _)| (header, payload)))
}

/// Reads one frame as [`read_frame`] does, with the bytes it took.
pub async fn read_sized_frame<R: AsyncRead + Unpin, H: DeserializeOwned>(
    input: &mut R,
    limit: usize,
) -> Result<Option<(H, Vec<u8>, usize)>, WireError> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let header_len = u32::from_be_bytes(len) as usize;
    if header_len > MAX_HEADER.min(limit) {
        return Err(WireError::TooLarge {
            size: header_len,
            limit: MAX_HEADER.min(limit),
        });
    }
    let mut header = vec![0u8; header_len];
    read_exact(input, &mut header).await?;
    read_exact(input, &mut len).await?;
    let payload_len = u32::from_be_bytes(len) as usize;
    if header_len + payload_len > limit {
        return Err(WireError::TooLarge {
            size: header_len + payload_len,
            limit,
        });
    }
    let mut payload = vec![0u8; payload_len];
    read_exact(input, &mut payload).await?;
    let header =
        postcard::from_bytes(&header).map_err(|e| WireError::Malformed(format!("header: {e}")))?;
    Ok(Some((header, payload, 8 + header_len + payload_len)))
}

async fn read_exact<R: AsyncRead + Unpin>(input: &mut R, buf: &mut [u8]) -> Result<(), WireError> {
    match input.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(WireError::Truncated),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_frame_round_trips() {
        let mut buf = Vec::new();
        write_frame(
            &mut buf,
            &Request::Wit {
                service: "hello".into(),
            },
            b"xyz",
        )
        .await
        .unwrap();
        let (header, payload): (Request, _) = read_frame(&mut buf.as_slice(), 1024)
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(header, Request::Wit { service } if service == "hello"));
        assert_eq!(payload, b"xyz");
    }

    #[tokio::test]
    async fn a_full_batch_of_messages_fits_a_frame() {
        let message = StreamedMessage {
            payload: vec![b'x'; 1024],
            content_type: "text/plain".into(),
            sequence: 1,
            published_at_ms: 1,
            publisher: Some("caller".into()),
        };
        let batch = vec![message; 512];
        let mut buf = Vec::new();
        write_frame(
            &mut buf,
            &Reply::Messages { sub: 7, count: 512 },
            &encode_messages(&batch),
        )
        .await
        .unwrap();
        let (header, payload): (Reply, _) = read_frame(&mut buf.as_slice(), 16 << 20)
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(header, Reply::Messages { sub: 7, count: 512 }));
        assert_eq!(decode_messages(&payload).unwrap().len(), 512);
    }

    #[tokio::test]
    async fn oversized_truncated_and_garbage_frames_are_refused() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &Request::Ping, &[0u8; 2000])
            .await
            .unwrap();
        let err = read_frame::<_, Request>(&mut buf.as_slice(), 1000)
            .await
            .unwrap_err();
        assert!(matches!(err, WireError::TooLarge { .. }), "{err}");

        let err = read_frame::<_, Request>(&mut &buf[..10], 100_000)
            .await
            .unwrap_err();
        assert!(matches!(err, WireError::Truncated), "{err}");

        let mut garbage = 3u32.to_be_bytes().to_vec();
        garbage.extend_from_slice(&[0xff, 0xff, 0xff, 0, 0, 0, 0]);
        let err = read_frame::<_, Request>(&mut garbage.as_slice(), 1000)
            .await
            .unwrap_err();
        assert!(matches!(err, WireError::Malformed(_)), "{err}");

        let huge = u32::MAX.to_be_bytes();
        let err = read_frame::<_, Request>(&mut huge.as_slice(), 1 << 30)
            .await
            .unwrap_err();
        assert!(matches!(err, WireError::TooLarge { .. }), "{err}");

        assert!(
            read_frame::<_, Request>(&mut &[][..], 10)
                .await
                .unwrap()
                .is_none()
        );
    }
}
