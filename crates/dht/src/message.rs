//! The DHT's requests and answers. Every request is answered from what the asked node holds,
//! without asking anyone else, so serving one costs a bounded amount of work.

use crate::key::Key;
use crate::peer::{Contact, Value};
use crate::store::Refusal;
use serde::{Deserialize, Serialize};

/// What one node asks another.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request<K, V> {
    /// The k nodes closest to `target` the asked node knows.
    FindNode {
        /// The key looked up.
        target: K,
    },
    /// Providers under `key`, and the closest nodes to it.
    GetProviders {
        /// The key looked up.
        key: K,
    },
    /// Keep `value` under `key`.
    AddProvider {
        /// The key.
        key: K,
        /// The signed entry.
        value: V,
    },
}

/// An answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Response<C, V> {
    /// The closest nodes known.
    Nodes(Vec<C>),
    /// Providers held under the key, and the closest nodes known.
    Providers {
        /// Entries held.
        providers: Vec<V>,
        /// Closest nodes known.
        closer: Vec<C>,
    },
    /// The entry is kept.
    Stored,
    /// The entry is not kept, and why.
    Refused(Refusal),
}

impl<K, V> Request<K, V> {
    /// The same request with its entry (if it carries one) turned by `f`, or `f`'s refusal.
    pub fn map_value<W, E>(self, f: impl FnOnce(V) -> Result<W, E>) -> Result<Request<K, W>, E> {
        Ok(match self {
            Self::FindNode { target } => Request::FindNode { target },
            Self::GetProviders { key } => Request::GetProviders { key },
            Self::AddProvider { key, value } => Request::AddProvider {
                key,
                value: f(value)?,
            },
        })
    }
}

impl<C, V> Response<C, V> {
    /// The same answer with its contacts and entries turned by `contact` and `value`; those
    /// they turn into nothing are left out.
    pub fn map<D, W>(
        self,
        contact: impl FnMut(C) -> Option<D>,
        value: impl FnMut(V) -> Option<W>,
    ) -> Response<D, W> {
        match self {
            Self::Nodes(nodes) => Response::Nodes(nodes.into_iter().filter_map(contact).collect()),
            Self::Providers { providers, closer } => Response::Providers {
                providers: providers.into_iter().filter_map(value).collect(),
                closer: closer.into_iter().filter_map(contact).collect(),
            },
            Self::Stored => Response::Stored,
            Self::Refused(why) => Response::Refused(why),
        }
    }
}

/// Bytes of a message's own framing, beyond what it carries: the kind, lengths and the peer
/// protocol's frame header.
pub const FRAME_BYTES: usize = 16;

impl<K: Key, V: Value<Key = K>> Request<K, V> {
    /// Its size on the wire, as the node encodes it.
    pub fn wire_len(&self) -> usize {
        let key = K::WIRE_BYTES;
        FRAME_BYTES
            + key
            + match self {
                Self::AddProvider { value, .. } => value.wire_len(),
                _ => 0,
            }
    }
}

impl<C: Contact, V: Value<Key = C::Key>> Response<C, V> {
    /// Its size on the wire.
    pub fn wire_len(&self) -> usize {
        FRAME_BYTES
            + match self {
                Self::Nodes(nodes) => nodes.iter().map(Contact::wire_len).sum(),
                Self::Providers { providers, closer } => {
                    providers.iter().map(Value::wire_len).sum::<usize>()
                        + closer.iter().map(Contact::wire_len).sum::<usize>()
                }
                Self::Stored | Self::Refused(_) => 1,
            }
    }
}
