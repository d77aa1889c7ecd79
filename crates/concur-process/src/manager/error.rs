//! [`ManagerError`]: why a manager call failed.

use std::fmt;
use std::io;

use serde::{Deserialize, Serialize};

/// What kind of failure a [`ManagerError`] is; it also travels in error replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Kind {
    /// The key (or index, or field) is not there.
    Missing,
    /// The object is not of the type the proxy expects, or a value does not decode
    /// as its type.
    WrongType,
    /// The manager has shut down (or its process is gone).
    ShutDown,
    /// The authentication key was refused (by either side).
    AuthFailed,
    /// A blocking call's timeout passed.
    Timeout,
    /// The request was malformed, unknown or too large.
    BadRequest,
    /// The object is in a state that forbids the call (releasing an unheld lock,
    /// a broken barrier, a full queue with `put_nowait`...).
    InvalidState,
    /// A function sent to the server cannot run there (another binary), or panicked.
    Remote,
    /// A value could not be serialized.
    Serialization,
    /// An operating-system error (connect, read, write).
    Io,
    /// The authentication handshake did not finish in time (either side's deadline).
    HandshakeTimeout,
    /// The server refused the connection: it is at its configured connection cap.
    Refused,
    /// The server is overloaded: out of descriptors, threads or memory for partial
    /// messages, or it dropped a pending handshake to make room for newer ones.
    Overloaded,
}

/// Why a manager call failed: Python's `KeyError`, `IndexError`, `RemoteError`,
/// `AuthenticationError`, `EOFError` of a dead manager, and the like, as one typed
/// error. Ask it with the predicates.
///
/// ```
/// use concur::process::Manager;
/// let m = Manager::start().unwrap();
/// let d = m.dict::<String, u32>().unwrap();
/// let e = d.get_item(&"nope".to_string()).unwrap_err();
/// assert!(e.is_missing());
/// ```
#[derive(Clone)]
pub struct ManagerError {
    kind: Kind,
    message: String,
}

impl ManagerError {
    pub(crate) fn new(kind: Kind, message: impl Into<String>) -> Self {
        ManagerError {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn io(context: &str, e: io::Error) -> Self {
        Self::new(Kind::Io, format!("{context}: {e}"))
    }

    pub(crate) fn shutdown(message: impl Into<String>) -> Self {
        Self::new(Kind::ShutDown, message)
    }

    pub(crate) fn wrong_type(message: impl Into<String>) -> Self {
        Self::new(Kind::WrongType, message)
    }

    pub(crate) fn serialization(message: impl Into<String>) -> Self {
        Self::new(Kind::Serialization, message)
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(Kind::BadRequest, message)
    }

    /// True if a key, index or field is missing (Python's `KeyError`/`IndexError`).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let d = m.dict::<u8, u8>().unwrap();
    /// assert!(d.get_item(&3).unwrap_err().is_missing());
    /// let l = m.list::<u8>().unwrap();
    /// assert!(l.get(0).unwrap_err().is_missing());
    /// ```
    pub fn is_missing(&self) -> bool {
        self.kind == Kind::Missing
    }

    /// True if the object or a value is not of the expected type.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let d = m.dict::<u8, u8>().unwrap();
    /// let same = m.dict_by_id::<u8, String>(d.id()).unwrap_err();
    /// assert!(same.is_wrong_type());
    /// ```
    pub fn is_wrong_type(&self) -> bool {
        self.kind == Kind::WrongType
    }

    /// True if the manager has shut down or its process is gone.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let d = m.dict::<u8, u8>().unwrap();
    /// m.shutdown().unwrap();
    /// assert!(d.len().unwrap_err().is_shutdown());
    /// ```
    pub fn is_shutdown(&self) -> bool {
        self.kind == Kind::ShutDown
    }

    /// True if authentication failed: a wrong key on either side, and nothing else (a
    /// handshake that timed out, a refused connection or an overloaded server have
    /// their own predicates).
    ///
    /// ```
    /// use concur::process::{AuthKey, Manager};
    /// let m = Manager::start().unwrap();
    /// let e = Manager::connect(m.address().clone(), AuthKey::from("wrong")).unwrap_err();
    /// assert!(e.is_auth_failed());
    /// ```
    pub fn is_auth_failed(&self) -> bool {
        self.kind == Kind::AuthFailed
    }

    /// True if a blocking call's timeout passed.
    ///
    /// ```
    /// use std::time::Duration;
    /// let m = concur::process::Manager::start().unwrap();
    /// let q = m.queue::<u8>(0).unwrap();
    /// assert!(q.get_timeout(Duration::from_millis(10)).unwrap_err().is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        self.kind == Kind::Timeout
    }

    /// True if the server refused a malformed, unknown or oversized request.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let e = m.dict_by_id::<u8, u8>(999_999).unwrap_err();
    /// assert!(e.is_bad_request() || e.is_missing());
    /// ```
    pub fn is_bad_request(&self) -> bool {
        self.kind == Kind::BadRequest
    }

    /// True if the object's state forbids the call (releasing a lock not held, a
    /// broken barrier, a full or empty queue in a non-blocking call).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let lock = m.lock().unwrap();
    /// assert!(lock.release().unwrap_err().is_invalid_state());
    /// ```
    pub fn is_invalid_state(&self) -> bool {
        self.kind == Kind::InvalidState
    }

    /// True if a function sent to the server could not run there (a server running
    /// another binary) or panicked (Python's `RemoteError`).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let d = m.dict::<u8, u8>().unwrap();
    /// let e = d.update(1, |_: Option<u8>| -> u8 { panic!("no") }).unwrap_err();
    /// assert!(e.is_remote());
    /// ```
    pub fn is_remote(&self) -> bool {
        self.kind == Kind::Remote
    }

    /// True if a value could not be serialized.
    ///
    /// ```
    /// let e = concur::process::ManagerError::from(std::io::Error::other("x"));
    /// assert!(!e.is_serialization());
    /// ```
    pub fn is_serialization(&self) -> bool {
        self.kind == Kind::Serialization
    }

    /// True for an operating-system error (connecting, reading, writing).
    ///
    /// ```
    /// let e = concur::process::ManagerError::from(std::io::Error::other("x"));
    /// assert!(e.is_io());
    /// ```
    pub fn is_io(&self) -> bool {
        self.kind == Kind::Io
    }

    /// True if the authentication handshake did not finish in time: the server gave
    /// up on a client that was too slow (its deadline is
    /// [`ManagerBuilder::handshake_timeout`](crate::ManagerBuilder::handshake_timeout)),
    /// or the client got no answer within its own
    /// ([`Manager::connect_timeout`](crate::Manager::connect_timeout)). Not a wrong key.
    ///
    /// ```
    /// use std::os::linux::net::SocketAddrExt;
    /// use std::os::unix::net::{SocketAddr, UnixListener};
    /// use std::time::Duration;
    /// use concur::process::{Address, AuthKey, Manager};
    /// // Something that accepts connections but never speaks.
    /// let name = SocketAddr::from_abstract_name(b"mute-doc-example").unwrap();
    /// let l = UnixListener::bind_addr(&name).unwrap();
    /// let addr: Address = "@mute-doc-example".parse().unwrap();
    /// let e = Manager::connect_timeout(addr, AuthKey::from("k"), Duration::from_millis(50))
    ///     .unwrap_err();
    /// assert!(e.is_handshake_timeout() && !e.is_auth_failed());
    /// # drop(l);
    /// ```
    pub fn is_handshake_timeout(&self) -> bool {
        self.kind == Kind::HandshakeTimeout
    }

    /// True if the server refused the connection because it is at its connection cap
    /// ([`ManagerBuilder::max_connections`](crate::ManagerBuilder::max_connections)).
    ///
    /// ```
    /// use concur::process::Manager;
    /// let m = Manager::builder().max_connections(1).start().unwrap();
    /// let d = m.dict::<u8, u8>().unwrap(); // the manager's own connection: the one allowed
    /// let e = d.insert(1, 1).unwrap_err(); // the proxy opens a second one
    /// assert!(e.is_refused() && !e.is_auth_failed());
    /// ```
    pub fn is_refused(&self) -> bool {
        self.kind == Kind::Refused
    }

    /// True if the server is overloaded: it ran out of descriptors or threads, its
    /// budget for partly received messages
    /// ([`ManagerBuilder::max_partial_bytes`](crate::ManagerBuilder::max_partial_bytes))
    /// is spent, or it dropped this pending handshake to make room for newer ones
    /// ([`ManagerBuilder::max_pending_handshakes`](crate::ManagerBuilder::max_pending_handshakes)).
    /// Retrying later may succeed.
    ///
    /// ```
    /// let e = concur::process::ManagerError::from(std::io::Error::other("x"));
    /// assert!(!e.is_overloaded());
    /// ```
    pub fn is_overloaded(&self) -> bool {
        self.kind == Kind::Overloaded
    }
}

impl From<io::Error> for ManagerError {
    fn from(e: io::Error) -> Self {
        ManagerError::new(Kind::Io, e.to_string())
    }
}

impl fmt::Display for ManagerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for ManagerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagerError")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .finish()
    }
}

impl std::error::Error for ManagerError {}
