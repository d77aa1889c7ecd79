//! [`ConnectionError`]: why a send, receive or poll on a [`Connection`](super::Connection)
//! failed.

use std::error::Error;
use std::fmt;
use std::io;

/// What kind of failure a [`ConnectionError`] is (private so kinds can be added).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Eof,
    Timeout,
    TooLarge,
    Malformed,
    Decode,
    Encode,
    Direction,
    Io,
    /// A budget shared by several connections (a server's) has no room left for the
    /// rest of a message.
    #[cfg_attr(not(feature = "manager"), allow(dead_code))] // the manager's
    OverBudget,
}

/// Why an operation on a [`Connection`](super::Connection) failed: Python's `EOFError`
/// (the peer closed its end), a timeout, a frame that is too large or malformed, a
/// message that does not decode as the requested type, a value that cannot be
/// serialized, a send on a read-only end (or a receive on a write-only one), or an
/// operating-system error.
///
/// Opaque on purpose: ask it with the predicates. After a framing error (too large or
/// malformed) the receiving side of the connection stays unusable and every later
/// receive reports the same error, because the byte stream can no longer be trusted;
/// a decode error consumed exactly one message and the connection stays usable.
///
/// ```
/// use concur::process::Pipe;
///
/// let (a, b) = Pipe::duplex().unwrap();
/// drop(b);
/// let e = a.recv::<u32>().unwrap_err();
/// assert!(e.is_eof());
/// let as_io: std::io::Error = e.into();
/// assert_eq!(as_io.kind(), std::io::ErrorKind::UnexpectedEof);
/// ```
pub struct ConnectionError {
    kind: Kind,
    message: String,
    source: Option<io::Error>,
}

impl ConnectionError {
    pub(crate) fn new(kind: Kind, message: impl Into<String>) -> Self {
        ConnectionError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn eof() -> Self {
        Self::new(Kind::Eof, "the peer closed the connection")
    }

    pub(crate) fn timeout() -> Self {
        Self::new(Kind::Timeout, "no complete message arrived in time")
    }

    pub(crate) fn too_large(len: u64, max: usize) -> Self {
        Self::new(
            Kind::TooLarge,
            format!("a message of {len} bytes is larger than the limit of {max} bytes"),
        )
    }

    /// A message found to be over the limit while it was being encoded (its full size
    /// is not known: encoding stopped at the limit).
    pub(crate) fn too_large_to_encode(max: usize) -> Self {
        Self::new(
            Kind::TooLarge,
            format!("the message is larger than the limit of {max} bytes (encoding stopped there)"),
        )
    }

    #[cfg_attr(not(feature = "manager"), allow(dead_code))] // the manager's
    pub(crate) fn over_budget(want: usize, cap: usize) -> Self {
        Self::new(
            Kind::OverBudget,
            format!(
                "no room for {want} more bytes of a partly received message: the \
                 {cap}-byte budget shared by this receiver's connections is spent"
            ),
        )
    }

    /// Whether a shared receive budget was spent (only connections given one).
    #[cfg_attr(not(feature = "manager"), allow(dead_code))] // the manager's
    pub(crate) fn is_over_budget(&self) -> bool {
        self.kind == Kind::OverBudget
    }

    pub(crate) fn malformed(message: impl Into<String>) -> Self {
        Self::new(Kind::Malformed, message)
    }

    pub(crate) fn decode(err: impl fmt::Display) -> Self {
        Self::new(
            Kind::Decode,
            format!("the message could not be decoded: {err}"),
        )
    }

    pub(crate) fn encode(err: impl fmt::Display) -> Self {
        Self::new(
            Kind::Encode,
            format!("the value could not be encoded: {err}"),
        )
    }

    pub(crate) fn direction(message: &'static str) -> Self {
        Self::new(Kind::Direction, message)
    }

    /// An I/O error; a closed peer (`EPIPE`, `ECONNRESET`) becomes an EOF error.
    pub(crate) fn io(err: io::Error) -> Self {
        match err.kind() {
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => Self::eof(),
            _ => ConnectionError {
                kind: Kind::Io,
                message: err.to_string(),
                source: Some(err),
            },
        }
    }

    /// A copy of a framing error, for the sticky "broken" state (never an I/O error).
    pub(crate) fn duplicate(&self) -> Self {
        Self::new(self.kind, self.message.clone())
    }

    /// True if the peer closed its end (Python's `EOFError` on `recv`,
    /// `BrokenPipeError` on `send`), including in the middle of a message.
    ///
    /// ```
    /// let (a, b) = concur::process::Pipe::duplex().unwrap();
    /// drop(a);
    /// assert!(b.send(&1u8).unwrap_err().is_eof());
    /// ```
    pub fn is_eof(&self) -> bool {
        self.kind == Kind::Eof
    }

    /// True if no complete message arrived before the deadline (or, for the `try_`
    /// forms, none was ready).
    ///
    /// ```
    /// let (a, _b) = concur::process::Pipe::duplex().unwrap();
    /// assert!(a.try_recv::<u8>().unwrap_err().is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        self.kind == Kind::Timeout
    }

    /// True if a message was longer than the connection's limit
    /// ([`Connection::max_frame`](super::Connection::max_frame)), on either side.
    ///
    /// ```
    /// let (a, b) = concur::process::Pipe::duplex().unwrap();
    /// a.set_max_frame(4);
    /// assert!(a.send_bytes(b"12345").unwrap_err().is_too_large());
    /// b.send_bytes(b"12345").unwrap();
    /// assert!(a.recv_bytes().unwrap_err().is_too_large());
    /// ```
    pub fn is_too_large(&self) -> bool {
        self.kind == Kind::TooLarge
    }

    /// True if the byte stream broke the framing protocol (a bad header, descriptors
    /// that did not arrive).
    ///
    /// ```
    /// use std::io::Write;
    /// use std::os::unix::net::UnixStream;
    /// use std::os::fd::OwnedFd;
    ///
    /// let (mine, theirs) = UnixStream::pair().unwrap();
    /// let conn = concur::process::Connection::from_fd(OwnedFd::from(mine));
    /// (&theirs).write_all(&[1, 0, 0, 0, 0, 0, 7, 7, 0]).unwrap(); // nonzero flags
    /// assert!(conn.recv_bytes().unwrap_err().is_malformed());
    /// ```
    pub fn is_malformed(&self) -> bool {
        self.kind == Kind::Malformed
    }

    /// True if a message arrived whole but did not decode as the requested type.
    ///
    /// ```
    /// let (a, b) = concur::process::Pipe::duplex().unwrap();
    /// b.send_bytes(&[0xff]).unwrap();
    /// assert!(a.recv::<String>().unwrap_err().is_decode());
    /// ```
    pub fn is_decode(&self) -> bool {
        self.kind == Kind::Decode
    }

    /// True if the value to send could not be serialized (including a value holding a
    /// descriptor that could not be duplicated, or more than 253 descriptors).
    ///
    /// ```
    /// use serde::ser::{Error, Serialize, Serializer};
    /// struct Refuses;
    /// impl Serialize for Refuses {
    ///     fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
    ///         Err(S::Error::custom("no"))
    ///     }
    /// }
    /// let (a, _b) = concur::process::Pipe::duplex().unwrap();
    /// assert!(a.send(&Refuses).unwrap_err().is_encode());
    /// ```
    pub fn is_encode(&self) -> bool {
        self.kind == Kind::Encode
    }

    /// True for a send on the reading end of a one-way pipe, or a receive on its
    /// writing end.
    ///
    /// ```
    /// let (r, w) = concur::process::Pipe::one_way().unwrap();
    /// assert!(r.send(&1u8).unwrap_err().is_wrong_direction());
    /// assert!(w.recv::<u8>().unwrap_err().is_wrong_direction());
    /// ```
    pub fn is_wrong_direction(&self) -> bool {
        self.kind == Kind::Direction
    }

    /// The operating-system error, for an I/O failure other than a closed peer.
    ///
    /// ```
    /// let (a, b) = concur::process::Pipe::duplex().unwrap();
    /// drop(b);
    /// assert!(a.recv_bytes().unwrap_err().io_error().is_none()); // EOF, not I/O
    /// ```
    pub fn io_error(&self) -> Option<&io::Error> {
        self.source.as_ref()
    }
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionError")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .finish()
    }
}

impl Error for ConnectionError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_ref().map(|e| e as &(dyn Error + 'static))
    }
}

impl From<ConnectionError> for io::Error {
    fn from(e: ConnectionError) -> io::Error {
        let kind = match e.kind {
            Kind::Io => match e.source {
                Some(s) => return s,
                None => io::ErrorKind::Other,
            },
            Kind::Eof => io::ErrorKind::UnexpectedEof,
            Kind::Timeout => io::ErrorKind::TimedOut,
            Kind::TooLarge | Kind::Malformed | Kind::Decode => io::ErrorKind::InvalidData,
            Kind::Encode => io::ErrorKind::InvalidInput,
            Kind::Direction => io::ErrorKind::Unsupported,
            Kind::OverBudget => io::ErrorKind::OutOfMemory,
        };
        io::Error::new(kind, e)
    }
}
