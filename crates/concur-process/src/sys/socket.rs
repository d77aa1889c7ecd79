//! Unix stream sockets that carry bytes and file descriptors (`SCM_RIGHTS`), and `poll`
//! with deadlines.
//!
//! How Linux delivers descriptors on a stream socket (`net/unix/af_unix.c`,
//! `unix_stream_read_generic`), which the framing in `connection` relies on:
//! descriptors sent with a `sendmsg` ride on the first buffer of that call, a read that
//! reaches that buffer receives them, and such a read stops at the end of that buffer,
//! so one `recvmsg` never returns the descriptors of two messages. A plain `recv` that
//! reaches them closes them (and reports `MSG_CTRUNC`), so plain reads are only used for
//! bytes known to lie inside the current message.

use std::collections::VecDeque;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use rustix::event::{PollFd, PollFlags};
use rustix::io::{Errno, IoSlice, IoSliceMut};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, Shutdown, SocketFlags, SocketType,
};

/// The most descriptors one message may carry (Linux's `SCM_MAX_FD`).
pub(crate) const MAX_FDS: usize = 253;

/// A connected pair of close-on-exec Unix stream sockets.
pub(crate) fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

/// Shuts down one direction of `fd` (`SHUT_RD` when `read`, else `SHUT_WR`).
pub(crate) fn shutdown(fd: BorrowedFd<'_>, read: bool) -> io::Result<()> {
    let how = if read {
        Shutdown::Read
    } else {
        Shutdown::Write
    };
    Ok(rustix::net::shutdown(fd, how)?)
}

/// Writes all of `header` then all of `body` to `fd`, attaching `fds` to the first byte.
///
/// Blocks until everything is written (waiting for `POLLOUT` should the socket be in
/// non-blocking mode). `SIGPIPE` is never raised: a closed peer is `BrokenPipe`.
pub(crate) fn send_all(
    fd: BorrowedFd<'_>,
    header: &[u8],
    body: &[u8],
    fds: &[BorrowedFd<'_>],
) -> io::Result<()> {
    debug_assert!(fds.len() <= MAX_FDS);
    if fds.is_empty() && body.is_empty() {
        return send_plain(fd, header);
    }
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut sent = 0usize;
    let total = header.len() + body.len();
    let mut first = true;
    while sent < total {
        let (h, b) = if sent < header.len() {
            (&header[sent..], body)
        } else {
            (&[][..], &body[sent - header.len()..])
        };
        let iov = [IoSlice::new(h), IoSlice::new(b)];
        let r = if first && !fds.is_empty() {
            let mut control = SendAncillaryBuffer::new(&mut space);
            if !control.push(SendAncillaryMessage::ScmRights(fds)) {
                return Err(io::Error::other("descriptor control buffer too small"));
            }
            rustix::net::sendmsg(fd, &iov, &mut control, SendFlags::NOSIGNAL)
        } else {
            rustix::net::sendmsg(fd, &iov, &mut Default::default(), SendFlags::NOSIGNAL)
        };
        match r {
            Ok(n) => {
                sent += n;
                first = false;
            }
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => {
                wait_for(fd, PollFlags::OUT, None)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Writes all of `bytes` with plain `send` calls (no descriptors: cheaper than
/// `sendmsg`, which copies in a message header and an iovec array on every call).
fn send_plain(fd: BorrowedFd<'_>, bytes: &[u8]) -> io::Result<()> {
    let mut sent = 0;
    while sent < bytes.len() {
        match rustix::net::send(fd, &bytes[sent..], SendFlags::NOSIGNAL) {
            Ok(n) => sent += n,
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => {
                wait_for(fd, PollFlags::OUT, None)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// What one read returned.
pub(crate) enum Read {
    /// This many bytes (at least one).
    Bytes(usize),
    /// The peer closed its end (or shut down writing).
    Eof,
    /// Nothing is available now (only for non-blocking reads).
    WouldBlock,
}

/// One `recvmsg` into `buf`, pushing any received descriptors (close-on-exec) onto
/// `fds`. Returns what was read and whether descriptors were lost (`MSG_CTRUNC`: the
/// peer sent more than [`MAX_FDS`], or this process ran out of descriptors).
pub(crate) fn recv_with_fds(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut VecDeque<OwnedFd>,
    nonblocking: bool,
) -> io::Result<(Read, bool)> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut flags = RecvFlags::CMSG_CLOEXEC;
    if nonblocking {
        flags |= RecvFlags::DONTWAIT;
    }
    loop {
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut iov = [IoSliceMut::new(buf)];
        match rustix::net::recvmsg(fd, &mut iov, &mut control, flags) {
            Ok(m) => {
                for msg in control.drain() {
                    if let RecvAncillaryMessage::ScmRights(got) = msg {
                        fds.extend(got);
                    }
                }
                let lost = m.flags.contains(ReturnFlags::CTRUNC);
                let read = if m.bytes == 0 {
                    Read::Eof
                } else {
                    Read::Bytes(m.bytes)
                };
                return Ok((read, lost));
            }
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) if nonblocking => return Ok((Read::WouldBlock, false)),
            Err(Errno::AGAIN) => {
                wait_for(fd, PollFlags::IN, None)?;
            }
            Err(Errno::CONNRESET) => return Ok((Read::Eof, false)),
            Err(e) => return Err(e.into()),
        }
    }
}

/// One plain `recv` into `buf`, for bytes known to belong to the message being read.
/// Returns what was read; the first `n` bytes of `buf` are initialized on `Bytes(n)`.
pub(crate) fn recv_into_uninit(
    fd: BorrowedFd<'_>,
    buf: &mut [MaybeUninit<u8>],
    nonblocking: bool,
) -> io::Result<Read> {
    let flags = if nonblocking {
        RecvFlags::DONTWAIT
    } else {
        RecvFlags::empty()
    };
    loop {
        match rustix::net::recv(fd, &mut *buf, flags) {
            Ok((_, 0)) => return Ok(Read::Eof),
            Ok((_, n)) => return Ok(Read::Bytes(n)),
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) if nonblocking => return Ok(Read::WouldBlock),
            Err(Errno::AGAIN) => {
                wait_for(fd, PollFlags::IN, None)?;
            }
            Err(Errno::CONNRESET) => return Ok(Read::Eof),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Waits until `fd` reports one of `events` (or a hang-up or error), or until
/// `deadline`. Returns false on timeout.
pub(crate) fn wait_for(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    deadline: Option<Instant>,
) -> io::Result<bool> {
    let mut p = [PollFd::from_borrowed_fd(fd, events)];
    Ok(poll_until(&mut p, deadline)? > 0)
}

/// `poll` on `fds` until one is ready or `deadline` passes (never, when `None`),
/// retrying after signals with the time that is left. Returns the number ready.
pub(crate) fn poll_until(fds: &mut [PollFd<'_>], deadline: Option<Instant>) -> io::Result<usize> {
    loop {
        let timeout = match deadline {
            None => None,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                // A remaining time that does not fit a timespec is "forever".
                rustix::time::Timespec::try_from(left).ok()
            }
        };
        match rustix::event::poll(fds, timeout.as_ref()) {
            Ok(n) => return Ok(n),
            Err(Errno::INTR) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(0);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Blocks until the peer of `fd` hangs up. Data that arrives meanwhile is read and
/// dropped (with any descriptors). Used by a child's watcher thread on its control
/// socket, on which the parent sends nothing after the start message.
pub(crate) fn wait_hangup(fd: BorrowedFd<'_>) {
    let mut scratch = [0u8; 512];
    let mut sink = VecDeque::new();
    loop {
        let mut p = [PollFd::from_borrowed_fd(
            fd,
            PollFlags::IN | PollFlags::RDHUP,
        )];
        match poll_until(&mut p, None) {
            Ok(_) => {}
            Err(_) => return,
        }
        let ev = p[0].revents();
        if ev.intersects(PollFlags::RDHUP | PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL) {
            return;
        }
        match recv_with_fds(fd.as_fd(), &mut scratch, &mut sink, true) {
            Ok((Read::Eof, _)) | Err(_) => return,
            _ => sink.clear(),
        }
    }
}

/// One non-blocking `sendmsg` of `iov`, attaching `fds` (if any) to its first byte.
/// Returns the bytes written, or `None` if the socket's buffer is full. `SIGPIPE` is
/// never raised: a closed peer is `BrokenPipe`.
pub(crate) fn send_some(
    fd: BorrowedFd<'_>,
    iov: &[IoSlice<'_>],
    fds: &[BorrowedFd<'_>],
) -> io::Result<Option<usize>> {
    debug_assert!(fds.len() <= MAX_FDS);
    let flags = SendFlags::NOSIGNAL | SendFlags::DONTWAIT;
    loop {
        let r = if fds.is_empty() {
            rustix::net::sendmsg(fd, iov, &mut Default::default(), flags)
        } else {
            let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
            let mut control = SendAncillaryBuffer::new(&mut space);
            if !control.push(SendAncillaryMessage::ScmRights(fds)) {
                return Err(io::Error::other("descriptor control buffer too small"));
            }
            rustix::net::sendmsg(fd, iov, &mut control, flags)
        };
        match r {
            Ok(n) => return Ok(Some(n)),
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}
