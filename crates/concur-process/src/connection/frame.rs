//! The wire format and the receive buffer of a connection.
//!
//! A message is one frame: an 8-byte header, then `len` bytes of body.
//!
//! | bytes | field | rule |
//! |---|---|---|
//! | 0..4 | `len`, u32 little-endian | at most the receiver's `max_frame`, checked before any allocation |
//! | 4..6 | `nfds`, u16 little-endian | descriptors sent with this frame (`SCM_RIGHTS` on its first byte), at most 253 |
//! | 6..8 | flags, u16 | must be zero (reserved) |
//!
//! The receiver reads into a buffer that it keeps between messages, so a small message
//! costs one `recvmsg`; descriptors go to a queue in arrival order and each frame takes
//! its `nfds` from the front (they always arrive no later than the frame's header, see
//! `sys::socket`). The rest of a large body is read with plain `recv`, at most as many
//! bytes as the frame still lacks, into spare capacity (no zeroing). The buffer grows
//! as the body's bytes arrive (about doubling each time), never by the whole announced
//! length at once: a peer that announces 64 MiB and sends 1 KiB costs 1 KiB and a
//! little, not 64 MiB. A receiver given a [`Budget`] (the manager's server gives every
//! connection the same one) charges it before growing a buffer past
//! [`FREE_BYTES`], so the bytes all its connections hold in partial messages stay
//! under one cap.
//! A header that breaks these rules leaves the stream unusable: the buffer records the
//! error and repeats it on every later receive.

use std::collections::VecDeque;
use std::ops::Range;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::error::ConnectionError;
use crate::sys::socket::{self, MAX_FDS, Read};

/// Length of a frame header.
pub(crate) const HEADER: usize = 8;

/// Bodies still lacking more than this are read straight into spare capacity.
const LARGE: usize = 16 * 1024;
/// Smallest free space offered to one `recvmsg`.
const MIN_READ: usize = 4 * 1024;
/// An idle buffer with more capacity than this is freed after a message.
const KEEP: usize = 1 << 20;
/// What a receive buffer may hold without charging its [`Budget`]: small messages,
/// and the start of every large one.
pub(crate) const FREE_BYTES: usize = 64 * 1024;

/// A cap on the bytes that a group of receivers holds in partly received messages
/// together (beyond [`FREE_BYTES`] each): a receive buffer charges what it is about
/// to grow by before allocating it, and gives it back once its message is consumed or
/// the connection is dropped. A growth the budget has no room for fails the
/// receive (sticky, as a framing error: the rest of the message cannot be skipped).
#[derive(Debug)]
pub(crate) struct Budget {
    used: AtomicUsize,
    cap: usize,
}

impl Budget {
    #[cfg_attr(not(feature = "manager"), allow(dead_code))] // the manager's
    pub(crate) fn new(cap: usize) -> Arc<Budget> {
        Arc::new(Budget {
            used: AtomicUsize::new(0),
            cap,
        })
    }

    /// The bytes charged now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn try_charge(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(n).filter(|&t| t <= self.cap)
            })
            .is_ok()
    }

    fn release(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }
}

/// Encodes a frame header.
pub(crate) fn header(len: usize, nfds: usize) -> [u8; HEADER] {
    debug_assert!(len <= u32::MAX as usize && nfds <= MAX_FDS);
    let mut h = [0u8; HEADER];
    h[..4].copy_from_slice(&(len as u32).to_le_bytes());
    h[4..6].copy_from_slice(&(nfds as u16).to_le_bytes());
    h
}

/// Whether a whole frame is buffered.
enum Status {
    /// A frame with this body length and descriptor count is complete.
    Complete { len: usize, nfds: usize },
    /// This many more bytes are needed before anything can be decided.
    Need(usize),
}

/// The receive side's state: buffered bytes and descriptors, end of stream, and a
/// sticky framing error.
pub(crate) struct Rx {
    /// Buffered bytes are `buf[start..end]`; `buf[end..]` is zeroed scratch space.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    fds: VecDeque<OwnedFd>,
    eof: bool,
    broken: Option<ConnectionError>,
    /// The shared cap this buffer charges its growth to, if any, and what it charged.
    budget: Option<Arc<Budget>>,
    charged: usize,
}

/// The outcome of [`Rx::advance`].
pub(crate) enum Step {
    /// A frame is ready: its body is `buf[body]` (see [`Rx::body`]), with its descriptors.
    Frame(Range<usize>, Vec<OwnedFd>),
    /// Nothing more could be read without blocking.
    WouldBlock,
}

impl Rx {
    pub(crate) fn new() -> Self {
        Rx {
            buf: Vec::new(),
            start: 0,
            end: 0,
            fds: VecDeque::new(),
            eof: false,
            broken: None,
            budget: None,
            charged: 0,
        }
    }

    /// A receive buffer that starts with `bytes` and `fds` already queued (a connection
    /// that arrived in a message, with what its sender had buffered).
    pub(crate) fn with_buffered(bytes: Vec<u8>, fds: Vec<OwnedFd>) -> Self {
        let end = bytes.len();
        Rx {
            buf: bytes,
            start: 0,
            end,
            fds: fds.into(),
            eof: false,
            broken: None,
            budget: None,
            charged: 0,
        }
    }

    /// The buffered bytes and queued descriptors (to send this connection elsewhere).
    pub(crate) fn buffered(&self) -> (&[u8], impl Iterator<Item = BorrowedFd<'_>>) {
        use std::os::fd::AsFd;
        (
            &self.buf[self.start..self.end],
            self.fds.iter().map(|f| f.as_fd()),
        )
    }

    #[cfg_attr(not(feature = "manager"), allow(dead_code))] // the manager's
    /// Charges this buffer's growth to `budget` from now on (what it holds already
    /// beyond [`FREE_BYTES`] is charged at once, even past the cap).
    pub(crate) fn set_budget(&mut self, budget: Arc<Budget>) {
        self.release_charge();
        let held = self.buf.capacity().saturating_sub(FREE_BYTES);
        budget.used.fetch_add(held, Ordering::AcqRel);
        self.charged = held;
        self.budget = Some(budget);
    }

    fn release_charge(&mut self) {
        if let Some(b) = &self.budget {
            b.release(self.charged);
        }
        self.charged = 0;
    }

    /// Makes room for `additional` bytes after the buffered ones, charging the budget
    /// (if any) before allocating for what the buffer grows past [`FREE_BYTES`].
    fn reserve(&mut self, additional: usize) -> Result<(), ConnectionError> {
        let target = self.end + additional;
        if target <= self.buf.capacity() {
            return Ok(());
        }
        if let Some(b) = &self.budget {
            let want = target
                .saturating_sub(FREE_BYTES)
                .saturating_sub(self.charged);
            if want > 0 {
                if !b.try_charge(want) {
                    let cap = b.cap;
                    return Err(self.fail(ConnectionError::over_budget(want, cap)));
                }
                self.charged += want;
            }
        }
        self.buf.reserve_exact(target - self.buf.len());
        if let Some(b) = &self.budget {
            // The allocator may round up: charge that too (a few bytes, past the cap
            // if need be, so that the accounting stays exact).
            let extra = self
                .buf
                .capacity()
                .saturating_sub(FREE_BYTES)
                .saturating_sub(self.charged);
            b.used.fetch_add(extra, Ordering::AcqRel);
            self.charged += extra;
        }
        Ok(())
    }

    #[cfg_attr(not(feature = "manager"), allow(dead_code))] // the manager's
    /// Descriptors received that no frame has claimed yet.
    pub(crate) fn queued_fds(&self) -> usize {
        self.fds.len()
    }

    /// The sticky framing error, if the stream is broken.
    pub(crate) fn broken(&self) -> Option<&ConnectionError> {
        self.broken.as_ref()
    }

    fn fail(&mut self, e: ConnectionError) -> ConnectionError {
        self.broken = Some(e.duplicate());
        e
    }

    fn status(&mut self, max: usize) -> Result<Status, ConnectionError> {
        if let Some(b) = &self.broken {
            return Err(b.duplicate());
        }
        let avail = self.end - self.start;
        if avail < HEADER {
            return Ok(Status::Need(HEADER - avail));
        }
        let h = &self.buf[self.start..self.start + HEADER];
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let nfds = usize::from(u16::from_le_bytes([h[4], h[5]]));
        let flags = u16::from_le_bytes([h[6], h[7]]);
        if flags != 0 {
            return Err(self.fail(ConnectionError::malformed(format!(
                "malformed frame header: reserved flags {flags:#06x} are not zero"
            ))));
        }
        if nfds > MAX_FDS {
            return Err(self.fail(ConnectionError::malformed(format!(
                "malformed frame header: {nfds} descriptors announced (at most {MAX_FDS})"
            ))));
        }
        // `len` fits usize on every platform this crate builds for (64-bit Linux and
        // 32-bit with a u32 length).
        let len_usize = len as usize;
        if len_usize > max {
            return Err(self.fail(ConnectionError::too_large(u64::from(len), max)));
        }
        let total = HEADER + len_usize;
        if avail < total {
            return Ok(Status::Need(total - avail));
        }
        if self.fds.len() < nfds {
            return Err(self.fail(ConnectionError::malformed(format!(
                "a message announced {nfds} descriptors but {} arrived",
                self.fds.len()
            ))));
        }
        Ok(Status::Complete {
            len: len_usize,
            nfds,
        })
    }

    /// Makes progress towards one frame: returns it when one is (or becomes) complete,
    /// reading from `fd` as needed. With `nonblocking`, stops with `WouldBlock` rather
    /// than wait; otherwise blocks until a frame is complete.
    ///
    /// # Errors
    /// End of stream (also in the middle of a frame), a framing error (sticky), or an
    /// I/O error.
    pub(crate) fn advance(
        &mut self,
        fd: BorrowedFd<'_>,
        max: usize,
        nonblocking: bool,
    ) -> Result<Step, ConnectionError> {
        loop {
            match self.status(max)? {
                Status::Complete { len, nfds } => {
                    let body = self.start + HEADER..self.start + HEADER + len;
                    self.start = body.end;
                    let fds = self.fds.drain(..nfds).collect();
                    return Ok(Step::Frame(body, fds));
                }
                Status::Need(need) => {
                    if self.eof {
                        let have = self.end - self.start;
                        return Err(if have == 0 {
                            ConnectionError::eof()
                        } else {
                            self.fail(ConnectionError::new(
                                super::error::Kind::Eof,
                                format!(
                                    "the peer closed the connection in the middle of a \
                                     message ({have} bytes of it arrived)"
                                ),
                            ))
                        });
                    }
                    match self.fill(fd, need, nonblocking)? {
                        Read::Bytes(_) => {}
                        Read::Eof => self.eof = true,
                        Read::WouldBlock => return Ok(Step::WouldBlock),
                    }
                }
            }
        }
    }

    /// Whether the buffer alone settles the next receive (a whole frame, the end of the
    /// stream or an error), without reading from the socket.
    pub(crate) fn settled(&mut self, max: usize) -> bool {
        self.eof || !matches!(self.status(max), Ok(Status::Need(_)))
    }

    /// Whether a receive would return at once: a whole frame, an end of stream or an
    /// error is ready. Reads what is available without blocking.
    pub(crate) fn ready(&mut self, fd: BorrowedFd<'_>, max: usize) -> bool {
        loop {
            match self.status(max) {
                Err(_) | Ok(Status::Complete { .. }) => return true,
                Ok(Status::Need(_)) if self.eof => return true,
                Ok(Status::Need(need)) => match self.fill(fd, need, true) {
                    Ok(Read::Bytes(_)) => {}
                    Ok(Read::Eof) => self.eof = true,
                    Ok(Read::WouldBlock) => return false,
                    Err(_) => return true,
                },
            }
        }
    }

    /// The body of a frame returned by [`Rx::advance`]; valid until the next call.
    pub(crate) fn body(&self, body: Range<usize>) -> &[u8] {
        &self.buf[body]
    }

    /// Call after the body of the last frame has been used: recycles the buffer.
    pub(crate) fn consumed(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.capacity() > KEEP || self.charged > 0 {
                // A budgeted buffer gives back what it charged as soon as it is idle.
                self.buf = Vec::new();
                self.release_charge();
            }
        }
    }

    /// One read of at most `need` bytes when they all belong to the current frame's
    /// large body, otherwise one `recvmsg` of whatever is available.
    fn fill(
        &mut self,
        fd: BorrowedFd<'_>,
        need: usize,
        nonblocking: bool,
    ) -> Result<Read, ConnectionError> {
        if self.start > 0 {
            // Move the partial frame to the front; after this `start` stays 0 until the
            // frame is consumed, so each byte moves at most once.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if need > LARGE && self.end >= HEADER {
            // The header is in: the next `need` bytes are this frame's body, which
            // carries no descriptors of its own, so a plain `recv` is exact. The buffer
            // grows as they arrive, about doubling (never by the announced length at
            // once), so copies stay linear in the bytes received.
            self.buf.truncate(self.end);
            let chunk = need.min(self.buf.capacity().max(4 * LARGE));
            if self.buf.capacity() - self.end < chunk.min(MIN_READ) {
                self.reserve(chunk)?;
            }
            let room = (self.buf.capacity() - self.end).min(need);
            let spare = &mut self.buf.spare_capacity_mut()[..room];
            let r =
                socket::recv_into_uninit(fd, spare, nonblocking).map_err(ConnectionError::io)?;
            if let Read::Bytes(n) = r {
                // SAFETY: `recv` initialized the first `n` bytes of the spare capacity
                // (n <= room <= spare capacity).
                unsafe { self.buf.set_len(self.end + n) };
                self.end += n;
            }
            return Ok(r);
        }
        let want = need.max(MIN_READ);
        if self.buf.len() - self.end < want {
            let grow = want.max(LARGE);
            self.reserve(grow)?;
            self.buf.resize(self.end + grow, 0);
        }
        let (r, lost) =
            socket::recv_with_fds(fd, &mut self.buf[self.end..], &mut self.fds, nonblocking)
                .map_err(ConnectionError::io)?;
        if let Read::Bytes(n) = r {
            self.end += n;
        }
        if lost {
            return Err(self.fail(ConnectionError::malformed(
                "descriptors sent with a message were lost (more than 253 in one \
                 message, or this process is out of file descriptors)",
            )));
        }
        Ok(r)
    }
}

impl Drop for Rx {
    fn drop(&mut self) {
        self.release_charge();
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    use super::{Budget, FREE_BYTES, HEADER, Rx, Step, header};

    /// A header announcing `len` bytes, then `sent` bytes of its body, on a socket the
    /// returned stream holds (the peer end of `fd`).
    fn partial(len: usize, sent: usize) -> (UnixStream, UnixStream) {
        let (mine, mut theirs) = UnixStream::pair().unwrap();
        theirs.set_nonblocking(true).unwrap();
        let _ = theirs.write_all(&header(len, 0));
        let chunk = vec![0x5A; 64 * 1024];
        let mut left = sent;
        while left > 0 {
            let n = left.min(chunk.len());
            match theirs.write(&chunk[..n]) {
                Ok(w) => left -= w,
                Err(_) => break, // the socket buffer is full: what is in is `sent - left`
            }
        }
        (mine, theirs)
    }

    /// Reads what is there without blocking (`advance` reads until it would block).
    fn drain(rx: &mut Rx, fd: &UnixStream) -> Result<(), crate::ConnectionError> {
        match rx.advance(fd.as_fd(), 64 << 20, true)? {
            Step::WouldBlock => Ok(()),
            Step::Frame(..) => panic!("the frame is not complete"),
        }
    }

    #[test]
    fn a_large_announced_frame_grows_the_buffer_only_as_bytes_arrive() {
        let (mine, _theirs) = partial(60 << 20, 100 * 1024);
        let mut rx = Rx::new();
        drain(&mut rx, &mine).unwrap();
        let held = rx.end - rx.start;
        assert!(held > HEADER, "nothing arrived");
        // Before issue 14 this reserved the whole announced 60 MiB at once.
        assert!(
            rx.buf.capacity() <= 4 * held.max(FREE_BYTES),
            "{} bytes reserved for {held} received",
            rx.buf.capacity()
        );
    }

    #[test]
    fn a_shared_budget_caps_what_partial_frames_hold_and_is_given_back() {
        let budget = Budget::new(1 << 20);
        let mut held = Vec::new();
        let mut refused = 0;
        for _ in 0..6 {
            // Each peer has sent 400 KiB of a 32 MiB frame (as much as fits a socket
            // buffer, so the buffer may hold less).
            let (mine, theirs) = partial(32 << 20, 400 * 1024);
            let mut rx = Rx::new();
            rx.set_budget(budget.clone());
            match drain(&mut rx, &mine) {
                Ok(()) => {}
                Err(e) => {
                    assert!(e.is_over_budget(), "{e:?}");
                    refused += 1;
                    // Sticky: the stream cannot be trusted past a lost body.
                    assert!(drain(&mut rx, &mine).unwrap_err().is_over_budget());
                }
            }
            assert!(
                budget.used() <= 1 << 20,
                "charged {} of 1 MiB",
                budget.used()
            );
            held.push((rx, mine, theirs));
        }
        assert!(refused > 0, "six 400 KiB partial frames fit a 1 MiB budget");
        drop(held);
        assert_eq!(budget.used(), 0, "dropped receivers gave their charge back");
    }
}
