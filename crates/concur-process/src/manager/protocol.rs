//! What a manager's clients and server say after authentication.
//!
//! The client sends a [`Hello`] (its binary's identity, so the server can tell a
//! client of another build that its update functions are not in the server's table:
//! a courtesy, not a safety check, see the trust model in the module docs), then [`Request`]s, each answered by one
//! [`Reply`]: the serialized result, or an error kind and message. A request on one
//! object is an op of that object's kind (its own enum, serialized into
//! [`Request::Call`]), decoded by the object: an unknown or malformed op is an error
//! reply, never the end of the connection.
//!
//! The server stores keys and values as their serialized bytes (postcard, which
//! encodes equal values of one type as equal bytes for the types used as keys:
//! integers, strings, tuples and such; not floats with several NaNs or maps with
//! unordered iteration), so it needs to know no type: the proxies are typed, and each
//! object records the type names it was made with, which a proxy attaching to it by id
//! must match.

use serde::{Deserialize, Serialize};

use super::error::{Kind, ManagerError};
use crate::process::protocol::Identity;

/// The largest request or reply after authentication.
pub(crate) const MAX_FRAME: usize = 64 << 20;

/// The first message after authentication.
#[derive(Serialize, Deserialize)]
pub(crate) struct Hello {
    pub(crate) identity: Identity,
}

/// The kinds of shared objects, with their construction parameters.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub(crate) enum ObjKind {
    Dict,
    List,
    Namespace,
    /// A single value; its initial bytes are in `Create::init`.
    Value,
    Queue {
        maxsize: usize,
    },
    JoinableQueue {
        maxsize: usize,
    },
    Lock,
    RLock,
    Semaphore {
        value: usize,
        bounded: bool,
    },
    Event,
    Condition,
    Barrier {
        parties: usize,
    },
}

/// A client's request.
#[derive(Serialize, Deserialize)]
pub(crate) enum Request {
    /// Makes a new object; the reply is its id (`u64`).
    Create {
        kind: ObjKind,
        tag: String,
        init: Vec<u8>,
    },
    /// Checks that object `id` exists and has type tag `tag`.
    Attach { id: u64, tag: String },
    /// Runs op (serialized by the object's kind) on object `id`.
    Call { id: u64, op: Vec<u8> },
    /// Stops the server.
    Shutdown,
}

/// [`Request`] as the server decodes it: the same encoding, with the op borrowed from
/// the received frame instead of copied (keep the variants in step with `Request`).
#[derive(Deserialize)]
pub(crate) enum RequestRef<'a> {
    Create {
        kind: ObjKind,
        tag: String,
        init: Vec<u8>,
    },
    Attach {
        id: u64,
        tag: String,
    },
    Call {
        id: u64,
        op: &'a [u8],
    },
    Shutdown,
}

/// The server's answer to one request.
pub(crate) type Reply = Result<Vec<u8>, (Kind, String)>;

/// Encodes `value` for a reply or an op, refusing it as soon as its encoding passes
/// [`MAX_FRAME`] (nothing over the limit is encoded in full or allocated).
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, ManagerError> {
    use crate::connection::{CappedError, encode_capped};
    encode_capped(value, Vec::new(), MAX_FRAME).map_err(|e| match e {
        CappedError::TooLarge { max } => ManagerError::bad_request(format!(
            "the value is larger than the manager's limit of {max} bytes per message"
        )),
        CappedError::Encode(e) => ManagerError::serialization(e.to_string()),
    })
}

/// Decodes a value received from the other side.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ManagerError> {
    postcard::from_bytes(bytes).map_err(|e| {
        ManagerError::wrong_type(format!(
            "a value did not decode as {}: {e}",
            std::any::type_name::<T>()
        ))
    })
}

/// Decodes an op on the server (a bad one is the client's error).
pub(crate) fn decode_op<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ManagerError> {
    postcard::from_bytes(bytes)
        .map_err(|e| ManagerError::bad_request(format!("malformed or unknown operation: {e}")))
}
