//! [`Pipe`] and [`Connection`]: Python's `multiprocessing.Pipe`, over Unix stream
//! sockets that carry file descriptors.

mod capped;
mod error;
mod frame;
pub use capped::{CappedError, encode_capped};
#[cfg(feature = "manager")]
pub(crate) use frame::Budget;
pub(crate) use frame::{HEADER as FRAME_HEADER, header as frame_header};

pub use error::ConnectionError;

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use concur_core::sync::{Lock, LockGuard};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::fds;
use crate::sys::socket::{self, MAX_FDS};
use frame::{HEADER, Rx, Step};

/// The default limit on the size of one message: 64 MiB.
pub const DEFAULT_MAX_FRAME: usize = 64 << 20;

/// A send buffer that grew larger than this is not kept for the next message.
const KEEP_SEND_BUFFER: usize = 1 << 20;

/// Python's `multiprocessing.Pipe`: makes a pair of connected [`Connection`]s.
///
/// A namespace only (it has no values): [`Pipe::duplex`] for two ends that both send and
/// receive, [`Pipe::one_way`] for a reading end and a writing end, and
/// [`Pipe::new`]`(duplex)` as in Python. Creating a pipe never blocks.
///
/// ```
/// use concur::process::Pipe;
///
/// let (a, b) = Pipe::duplex().unwrap();
/// a.send(&("hello", 1u32)).unwrap();
/// assert_eq!(b.recv::<(String, u32)>().unwrap(), ("hello".to_owned(), 1));
/// ```
#[derive(Debug)]
pub enum Pipe {}

impl Pipe {
    /// Python's `Pipe(duplex)`: a duplex pair, or `(reader, writer)` when `duplex` is
    /// false.
    ///
    /// # Errors
    /// The operating system's, if the socket pair cannot be created (e.g. too many
    /// open files).
    ///
    /// ```
    /// let (r, w) = concur::process::Pipe::new(false).unwrap();
    /// w.send_bytes(b"one way").unwrap();
    /// assert_eq!(r.recv_bytes().unwrap(), b"one way");
    /// ```
    // `Pipe` is a namespace named after Python's function; `new` makes its pair.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(duplex: bool) -> std::io::Result<(Connection, Connection)> {
        let (a, b) = socket::socketpair()?;
        if duplex {
            return Ok((Connection::from_fd(a), Connection::from_fd(b)));
        }
        socket::shutdown(a.as_fd(), false)?;
        socket::shutdown(b.as_fd(), true)?;
        Ok((
            Connection::with_direction(a, true, false),
            Connection::with_direction(b, false, true),
        ))
    }

    /// Two connected ends that both send and receive.
    ///
    /// # Errors
    /// As [`Pipe::new`].
    ///
    /// ```
    /// let (a, b) = concur::process::Pipe::duplex().unwrap();
    /// b.send(&7u8).unwrap();
    /// assert_eq!(a.recv::<u8>().unwrap(), 7);
    /// ```
    pub fn duplex() -> std::io::Result<(Connection, Connection)> {
        Self::new(true)
    }

    /// A reading end and a writing end, in that order (Python's `Pipe(False)`).
    ///
    /// # Errors
    /// As [`Pipe::new`].
    ///
    /// ```
    /// let (r, w) = concur::process::Pipe::one_way().unwrap();
    /// w.send(&vec![1u8, 2]).unwrap();
    /// assert_eq!(r.recv::<Vec<u8>>().unwrap(), vec![1, 2]);
    /// ```
    pub fn one_way() -> std::io::Result<(Connection, Connection)> {
        Self::new(false)
    }
}

/// One end of a [`Pipe`]: sends and receives whole messages, serde values or bytes,
/// with message boundaries kept (Python's `multiprocessing.connection.Connection`).
///
/// Values are encoded with `postcard`. A value that owns file descriptors (another
/// `Connection`, a shared-memory block, a process-shared lock) carries them along
/// (`SCM_RIGHTS`), so it arrives usable in the receiving process; a `Connection` is
/// itself such a value, which is how one is handed to a child [`Process`](crate::Process).
///
/// Receiving comes in the four forms: [`recv`](Connection::recv) blocks until a message
/// arrives, [`try_recv`](Connection::try_recv) never blocks,
/// [`recv_timeout`](Connection::recv_timeout) and [`recv_deadline`](Connection::recv_deadline)
/// block at most until their limit; the `recv_bytes` family is the same for raw bytes.
/// A timeout leaves a half-received message buffered, so nothing is lost. Sending
/// blocks until the whole message is written to the socket (the peer's receive buffer
/// may make it wait for the peer to read).
///
/// A `Connection` is `Send` and `Sync`: one thread may send while another receives.
/// Two receivers (or two senders) take turns, one message each. Each message is
/// checked against [`max_frame`](Connection::max_frame) (64 MiB by default) before
/// anything is allocated for it; a malformed stream is an error, never a panic.
///
/// ```
/// use concur::process::Pipe;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, PartialEq, Debug)]
/// struct Job { id: u32, name: String }
///
/// let (parent, child) = Pipe::duplex().unwrap();
/// parent.send(&Job { id: 1, name: "resize".into() }).unwrap();
/// let job: Job = child.recv().unwrap();
/// assert_eq!(job.id, 1);
/// drop(parent);
/// assert!(child.recv::<Job>().unwrap_err().is_eof());
/// ```
pub struct Connection {
    fd: OwnedFd,
    readable: bool,
    writable: bool,
    max_frame: AtomicUsize,
    rx: Lock<Rx>,
    tx: Lock<Vec<u8>>,
}

impl Connection {
    /// Wraps a connected Unix stream socket (one end of a `socketpair`, or a
    /// `std::os::unix::net::UnixStream` turned into an `OwnedFd`) as a duplex
    /// connection. The peer must speak this framing (another `Connection`).
    ///
    /// A descriptor that is not such a socket gives I/O errors on use, not undefined
    /// behaviour.
    ///
    /// ```
    /// use std::os::fd::OwnedFd;
    /// use std::os::unix::net::UnixStream;
    /// use concur::process::Connection;
    ///
    /// let (x, y) = UnixStream::pair().unwrap();
    /// let (x, y) = (Connection::from_fd(OwnedFd::from(x)), Connection::from_fd(OwnedFd::from(y)));
    /// x.send(&"hi").unwrap();
    /// assert_eq!(y.recv::<String>().unwrap(), "hi");
    /// ```
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self::with_direction(fd, true, true)
    }

    fn with_direction(fd: OwnedFd, readable: bool, writable: bool) -> Self {
        Self::assemble(fd, readable, writable, DEFAULT_MAX_FRAME, Rx::new())
    }

    fn assemble(fd: OwnedFd, readable: bool, writable: bool, max: usize, rx: Rx) -> Self {
        Connection {
            fd,
            readable,
            writable,
            max_frame: AtomicUsize::new(max),
            rx: Lock::with_value(rx),
            tx: Lock::with_value(Vec::new()),
        }
    }

    /// Whether this end can receive (false for the writing end of a one-way pipe).
    ///
    /// ```
    /// let (r, w) = concur::process::Pipe::one_way().unwrap();
    /// assert!(r.readable() && !w.readable());
    /// ```
    pub fn readable(&self) -> bool {
        self.readable
    }

    /// Whether this end can send (false for the reading end of a one-way pipe).
    ///
    /// ```
    /// let (r, w) = concur::process::Pipe::one_way().unwrap();
    /// assert!(w.writable() && !r.writable());
    /// ```
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// The largest message body, in bytes, this end sends or accepts.
    ///
    /// ```
    /// let (a, _b) = concur::process::Pipe::duplex().unwrap();
    /// assert_eq!(a.max_frame(), concur::process::DEFAULT_MAX_FRAME);
    /// ```
    pub fn max_frame(&self) -> usize {
        self.max_frame.load(Ordering::Relaxed)
    }

    /// Sets the message size limit of this end (clamped to `u32::MAX`, the largest the
    /// frame header can describe). A received message over the limit is an error that
    /// leaves the receiving side unusable, as in Python's `recv_bytes(maxlength)`; a
    /// message over the limit is refused before it is sent.
    ///
    /// ```
    /// let (a, b) = concur::process::Pipe::duplex().unwrap();
    /// b.set_max_frame(1 << 30);
    /// assert_eq!(b.max_frame(), 1 << 30);
    /// # drop(a);
    /// ```
    pub fn set_max_frame(&self, bytes: usize) {
        let bytes = bytes.min(u32::MAX as usize);
        self.max_frame.store(bytes, Ordering::Relaxed);
    }

    /// Charges what this end holds in partly received messages (beyond a small
    /// allowance) to `budget`, shared with other connections (a server's cap).
    #[cfg_attr(not(feature = "manager"), allow(dead_code))] // the manager's
    pub(crate) fn set_budget(&self, budget: std::sync::Arc<frame::Budget>) {
        self.rx.acquire().set_budget(budget);
    }

    /// Descriptors received on this end that no message has claimed yet.
    #[cfg_attr(not(feature = "manager"), allow(dead_code))] // the manager's
    pub(crate) fn queued_fds(&self) -> usize {
        self.rx.acquire().queued_fds()
    }

    fn check_writable(&self) -> Result<(), ConnectionError> {
        if self.writable {
            Ok(())
        } else {
            Err(ConnectionError::direction("this connection is read-only"))
        }
    }

    fn check_readable(&self) -> Result<(), ConnectionError> {
        if self.readable {
            Ok(())
        } else {
            Err(ConnectionError::direction("this connection is write-only"))
        }
    }

    /// Sends `value` as one message, with any descriptors it owns.
    ///
    /// Blocks until the message is written (see the type's docs).
    ///
    /// # Errors
    /// [`is_eof`](ConnectionError::is_eof) if the peer closed its end,
    /// [`is_encode`](ConnectionError::is_encode) if `value` cannot be serialized,
    /// [`is_too_large`](ConnectionError::is_too_large) if it exceeds
    /// [`max_frame`](Connection::max_frame), [`is_wrong_direction`](ConnectionError::is_wrong_direction)
    /// on a read-only end, or an I/O error.
    ///
    /// ```
    /// let (a, b) = concur::process::Pipe::duplex().unwrap();
    /// a.send(&Some(3.5f64)).unwrap();
    /// assert_eq!(b.recv::<Option<f64>>().unwrap(), Some(3.5));
    /// ```
    pub fn send<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), ConnectionError> {
        self.check_writable()?;
        let mut tx = self.tx.acquire();
        let mut buf = std::mem::take(&mut *tx);
        buf.clear();
        buf.extend_from_slice(&[0; HEADER]);
        // Encoding stops at the limit: an oversized value is refused having cost at
        // most `max_frame` bytes, not its whole size.
        let max = self.max_frame();
        let (encoded, fds) =
            fds::collect_fds(|| capped::encode_capped(value, buf, HEADER.saturating_add(max)));
        let mut buf = encoded.map_err(|e| match e {
            CappedError::TooLarge { .. } => ConnectionError::too_large_to_encode(max),
            CappedError::Encode(e) => ConnectionError::encode(e),
        })?;
        let len = buf.len() - HEADER;
        self.check_outgoing(len, fds.len())?;
        buf[..HEADER].copy_from_slice(&frame::header(len, fds.len()));
        let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
        let r = socket::send_all(self.fd.as_fd(), &buf, &[], &borrowed);
        if buf.capacity() <= KEEP_SEND_BUFFER {
            *tx = buf;
        }
        r.map_err(ConnectionError::io)
    }

    /// Sends `bytes` as one message (Python's `send_bytes`), without copying them.
    ///
    /// Blocks until the message is written.
    ///
    /// # Errors
    /// As [`send`](Connection::send) (there is nothing to encode).
    ///
    /// ```
    /// let (a, b) = concur::process::Pipe::duplex().unwrap();
    /// a.send_bytes(b"").unwrap();
    /// a.send_bytes(b"xyz").unwrap();
    /// assert_eq!(b.recv_bytes().unwrap(), b"");
    /// assert_eq!(b.recv_bytes().unwrap(), b"xyz");
    /// ```
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<(), ConnectionError> {
        self.send_frame(bytes, &[])
    }

    /// Sends one frame of raw `body` with `fds` attached.
    pub(crate) fn send_frame(
        &self,
        body: &[u8],
        fds: &[BorrowedFd<'_>],
    ) -> Result<(), ConnectionError> {
        self.check_writable()?;
        self.check_outgoing(body.len(), fds.len())?;
        let h = frame::header(body.len(), fds.len());
        let _tx = self.tx.acquire();
        socket::send_all(self.fd.as_fd(), &h, body, fds).map_err(ConnectionError::io)
    }

    fn check_outgoing(&self, len: usize, nfds: usize) -> Result<(), ConnectionError> {
        if len > self.max_frame() {
            return Err(ConnectionError::too_large(len as u64, self.max_frame()));
        }
        if nfds > MAX_FDS {
            return Err(ConnectionError::encode(format!(
                "{nfds} file descriptors in one message (at most {MAX_FDS})"
            )));
        }
        Ok(())
    }

    /// Receives one message and decodes it as a `T`, blocking until one arrives.
    ///
    /// # Errors
    /// [`is_eof`](ConnectionError::is_eof) once the peer has closed its end and every
    /// message it sent has been received; [`is_decode`](ConnectionError::is_decode)
    /// if the message is not a `T` (the message is consumed, the connection stays
    /// usable); [`is_too_large`](ConnectionError::is_too_large) or
    /// [`is_malformed`](ConnectionError::is_malformed) for a bad frame (the connection
    /// is unusable afterwards); [`is_wrong_direction`](ConnectionError::is_wrong_direction)
    /// on a write-only end; or an I/O error.
    ///
    /// ```
    /// let (a, b) = concur::process::Pipe::duplex().unwrap();
    /// std::thread::spawn(move || a.send(&[1u16, 2, 3]).unwrap());
    /// assert_eq!(b.recv::<[u16; 3]>().unwrap(), [1, 2, 3]);
    /// ```
    pub fn recv<T: DeserializeOwned>(&self) -> Result<T, ConnectionError> {
        self.recv_until(None)
    }

    /// Receives a message if a whole one is ready now, without blocking.
    ///
    /// # Errors
    /// [`is_timeout`](ConnectionError::is_timeout) if none is ready (or another thread
    /// is receiving); otherwise as [`recv`](Connection::recv).
    ///
    /// ```
    /// let (a, b) = concur::process::Pipe::duplex().unwrap();
    /// assert!(b.try_recv::<u8>().unwrap_err().is_timeout());
    /// a.send(&9u8).unwrap();
    /// assert_eq!(b.try_recv::<u8>().unwrap(), 9);
    /// ```
    pub fn try_recv<T: DeserializeOwned>(&self) -> Result<T, ConnectionError> {
        self.recv_until(Some(Instant::now()))
    }

    /// Receives a message, blocking for at most `timeout` (a timeout too large to
    /// represent waits forever).
    ///
    /// # Errors
    /// [`is_timeout`](ConnectionError::is_timeout) if no whole message arrived in time;
    /// otherwise as [`recv`](Connection::recv).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let (_a, b) = concur::process::Pipe::duplex().unwrap();
    /// let t0 = Instant::now();
    /// assert!(b.recv_timeout::<u8>(Duration::from_millis(30)).unwrap_err().is_timeout());
    /// assert!(t0.elapsed() >= Duration::from_millis(30));
    /// ```
    pub fn recv_timeout<T: DeserializeOwned>(
        &self,
        timeout: Duration,
    ) -> Result<T, ConnectionError> {
        self.recv_until(concur_core::time::deadline_after(timeout))
    }

    /// Receives a message, blocking until `deadline` at the latest.
    ///
    /// # Errors
    /// As [`recv_timeout`](Connection::recv_timeout).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let (a, b) = concur::process::Pipe::duplex().unwrap();
    /// a.send(&"x").unwrap();
    /// let s: String = b.recv_deadline(Instant::now() + Duration::from_secs(5)).unwrap();
    /// assert_eq!(s, "x");
    /// ```
    pub fn recv_deadline<T: DeserializeOwned>(
        &self,
        deadline: Instant,
    ) -> Result<T, ConnectionError> {
        self.recv_until(Some(deadline))
    }

    fn recv_until<T: DeserializeOwned>(
        &self,
        deadline: Option<Instant>,
    ) -> Result<T, ConnectionError> {
        self.recv_frame_with(deadline, |body, fds| {
            fds::provide_fds(fds, || match postcard::take_from_bytes::<T>(body) {
                Ok((v, [])) => Ok(v),
                Ok((_, rest)) => Err(ConnectionError::decode(format_args!(
                    "{} bytes left over after the value",
                    rest.len()
                ))),
                Err(e) => Err(ConnectionError::decode(e)),
            })
        })?
    }

    /// Receives one message as bytes (Python's `recv_bytes`), blocking until one
    /// arrives. Descriptors sent with it are closed.
    ///
    /// # Errors
    /// As [`recv`](Connection::recv), without decode errors.
    ///
    /// ```
    /// let (a, b) = concur::process::Pipe::duplex().unwrap();
    /// a.send_bytes(&[0, 1, 2]).unwrap();
    /// assert_eq!(b.recv_bytes().unwrap(), vec![0, 1, 2]);
    /// ```
    pub fn recv_bytes(&self) -> Result<Vec<u8>, ConnectionError> {
        self.recv_frame_with(None, |body, _| body.to_vec())
    }

    /// Receives one message as bytes if a whole one is ready now.
    ///
    /// # Errors
    /// As [`try_recv`](Connection::try_recv), without decode errors.
    ///
    /// ```
    /// let (a, b) = concur::process::Pipe::duplex().unwrap();
    /// assert!(b.try_recv_bytes().unwrap_err().is_timeout());
    /// a.send_bytes(b"k").unwrap();
    /// assert_eq!(b.try_recv_bytes().unwrap(), b"k");
    /// ```
    pub fn try_recv_bytes(&self) -> Result<Vec<u8>, ConnectionError> {
        self.recv_frame_with(Some(Instant::now()), |body, _| body.to_vec())
    }

    /// Receives one message as bytes, blocking for at most `timeout`.
    ///
    /// # Errors
    /// As [`recv_timeout`](Connection::recv_timeout), without decode errors.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (_a, b) = concur::process::Pipe::duplex().unwrap();
    /// assert!(b.recv_bytes_timeout(Duration::from_millis(5)).unwrap_err().is_timeout());
    /// ```
    pub fn recv_bytes_timeout(&self, timeout: Duration) -> Result<Vec<u8>, ConnectionError> {
        self.recv_frame_with(concur_core::time::deadline_after(timeout), |body, _| {
            body.to_vec()
        })
    }

    /// Receives one message as bytes, blocking until `deadline` at the latest.
    ///
    /// # Errors
    /// As [`recv_deadline`](Connection::recv_deadline), without decode errors.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let (a, b) = concur::process::Pipe::duplex().unwrap();
    /// a.send_bytes(b"d").unwrap();
    /// let got = b.recv_bytes_deadline(Instant::now() + Duration::from_secs(5)).unwrap();
    /// assert_eq!(got, b"d");
    /// ```
    pub fn recv_bytes_deadline(&self, deadline: Instant) -> Result<Vec<u8>, ConnectionError> {
        self.recv_frame_with(Some(deadline), |body, _| body.to_vec())
    }

    fn lock_rx(&self, deadline: Option<Instant>) -> Option<LockGuard<'_, Rx>> {
        match deadline {
            None => Some(self.rx.acquire()),
            Some(d) => self.rx.acquire_deadline(d),
        }
    }

    /// Hands the next frame to `f` if a whole one is buffered or can be read now
    /// without blocking (`Ok(None)` otherwise); at most one `recvmsg` when nothing is
    /// buffered. For event loops that poll the socket themselves.
    pub(crate) fn try_recv_frame_with<U>(
        &self,
        f: impl FnOnce(&[u8], Vec<OwnedFd>) -> U,
    ) -> Result<Option<U>, ConnectionError> {
        self.check_readable()?;
        let mut rx = self.rx.acquire();
        let max = self.max_frame();
        match rx.advance(self.fd.as_fd(), max, true)? {
            Step::Frame(body, fds) => {
                let out = f(rx.body(body), fds);
                rx.consumed();
                Ok(Some(out))
            }
            Step::WouldBlock => Ok(None),
        }
    }

    /// Receives one frame and hands its body and descriptors to `f` (the body is
    /// borrowed from the receive buffer: no copy). `None` blocks forever.
    pub(crate) fn recv_frame_with<U>(
        &self,
        deadline: Option<Instant>,
        f: impl FnOnce(&[u8], Vec<OwnedFd>) -> U,
    ) -> Result<U, ConnectionError> {
        self.check_readable()?;
        let mut rx = self
            .lock_rx(deadline)
            .ok_or_else(ConnectionError::timeout)?;
        let max = self.max_frame();
        if deadline.is_some() && !rx.settled(max) {
            // Wait first, then read: a non-blocking read that finds nothing yet (the
            // usual case for a reply) would cost a third system call.
            let ready = socket::wait_for(self.fd.as_fd(), rustix::event::PollFlags::IN, deadline)
                .map_err(ConnectionError::io)?;
            if !ready {
                return Err(ConnectionError::timeout());
            }
        }
        loop {
            match rx.advance(self.fd.as_fd(), max, deadline.is_some())? {
                Step::Frame(body, fds) => {
                    let out = f(rx.body(body), fds);
                    rx.consumed();
                    return Ok(out);
                }
                Step::WouldBlock => {
                    let ready =
                        socket::wait_for(self.fd.as_fd(), rustix::event::PollFlags::IN, deadline)
                            .map_err(ConnectionError::io)?;
                    if !ready {
                        return Err(ConnectionError::timeout());
                    }
                }
            }
        }
    }

    /// Python's `poll(timeout)`: whether a receive would return at once (a whole
    /// message, the end of the stream, or an error is ready), waiting up to `timeout`
    /// for it. `Duration::ZERO` (Python's `poll()`) checks without waiting; a timeout
    /// too large to represent waits forever.
    ///
    /// Data that arrives while polling is buffered for the next receive.
    ///
    /// # Errors
    /// [`is_wrong_direction`](ConnectionError::is_wrong_direction) on a write-only end,
    /// or an I/O error from `poll`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (a, b) = concur::process::Pipe::duplex().unwrap();
    /// assert!(!b.poll(Duration::ZERO).unwrap());
    /// a.send(&1u8).unwrap();
    /// assert!(b.poll(Duration::from_secs(5)).unwrap());
    /// assert_eq!(b.recv::<u8>().unwrap(), 1);
    /// ```
    pub fn poll(&self, timeout: Duration) -> Result<bool, ConnectionError> {
        self.poll_until(concur_core::time::deadline_after(timeout))
    }

    /// [`poll`](Connection::poll) until `deadline` at the latest.
    ///
    /// # Errors
    /// As [`poll`](Connection::poll).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let (a, b) = concur::process::Pipe::duplex().unwrap();
    /// drop(a); // the end of the stream is "ready" too: recv reports it at once
    /// assert!(b.poll_deadline(Instant::now() + Duration::from_secs(5)).unwrap());
    /// ```
    pub fn poll_deadline(&self, deadline: Instant) -> Result<bool, ConnectionError> {
        self.poll_until(Some(deadline))
    }

    fn poll_until(&self, deadline: Option<Instant>) -> Result<bool, ConnectionError> {
        self.check_readable()?;
        let Some(mut rx) = self.lock_rx(deadline) else {
            return Ok(false);
        };
        let max = self.max_frame();
        loop {
            if rx.ready(self.fd.as_fd(), max) {
                return Ok(true);
            }
            let readable =
                socket::wait_for(self.fd.as_fd(), rustix::event::PollFlags::IN, deadline)
                    .map_err(ConnectionError::io)?;
            if !readable {
                return Ok(false);
            }
        }
    }
}

impl AsFd for Connection {
    /// The socket, e.g. to wait on several connections with `poll(2)`. Reading from
    /// or writing to it directly breaks the framing.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("fd", &self.fd.as_raw_fd())
            .field("readable", &self.readable)
            .field("writable", &self.writable)
            .finish()
    }
}

/// How a connection travels inside a message: its socket and the bytes and descriptors
/// it had buffered, by index into the message's descriptors.
#[derive(Serialize, Deserialize)]
struct Wire {
    fd: u32,
    readable: bool,
    writable: bool,
    max_frame: u64,
    buffered: Vec<u8>,
    fds: Vec<u32>,
}

/// A `Connection` serializes as a duplicate of its socket (carried by the enclosing
/// message's descriptors) plus whatever it had received but not yet returned, so a
/// connection handed to another process loses nothing. Only concur transports (a
/// `Connection`, a `Process` argument or result) can carry it; plain postcard refuses.
/// The sender keeps its own handle: drop it if the receiver is to see end-of-stream
/// when it is done. Serializing waits for a receive in progress on another thread to
/// finish (its buffered data must be complete).
impl Serialize for Connection {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let rx = self.rx.acquire();
        if let Some(b) = rx.broken() {
            return Err(S::Error::custom(format!(
                "cannot send a broken connection: {b}"
            )));
        }
        let fd = fds::register(self.fd.as_fd()).map_err(S::Error::custom)?;
        let (bytes, queued) = rx.buffered();
        let fds = queued
            .map(fds::register)
            .collect::<Result<Vec<u32>, _>>()
            .map_err(S::Error::custom)?;
        Wire {
            fd,
            readable: self.readable,
            writable: self.writable,
            max_frame: self.max_frame() as u64,
            buffered: bytes.to_vec(),
            fds,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Connection {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let w = Wire::deserialize(d)?;
        let fd = fds::take(w.fd).map_err(D::Error::custom)?;
        let queued = w
            .fds
            .iter()
            .map(|&i| fds::take(i))
            .collect::<Result<Vec<_>, _>>()
            .map_err(D::Error::custom)?;
        let max = usize::try_from(w.max_frame).unwrap_or(usize::MAX);
        let conn = Connection::assemble(
            fd,
            w.readable,
            w.writable,
            DEFAULT_MAX_FRAME,
            Rx::with_buffered(w.buffered, queued),
        );
        conn.set_max_frame(max);
        Ok(conn)
    }
}
