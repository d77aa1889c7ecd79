//! Ending a child when its parent's end of the control socket closes, without a
//! thread: the socket is put in signal-driven mode (`O_ASYNC`, `F_SETOWN`, `F_SETSIG`),
//! so the kernel sends this process `SIGIO` on its events, and the handler checks for
//! the end of stream and kills the process. A watcher thread did the same job but cost
//! a thread start (and a wait for it) on every child start.
//!
//! The socket also signals when the parent reads what the child wrote (room to write
//! again); the handler then finds no end of stream and returns. `SA_RESTART` keeps
//! interrupted system calls of the child's own code going. A child that installs its
//! own `SIGIO` handler replaces this one and keeps only the parent-death signal.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};

/// `fcntl(F_SETSIG)` (Linux's `<fcntl.h>`; not in the `libc` crate): which signal an
/// `O_ASYNC` descriptor sends, with `si_fd` filled in.
const F_SETSIG: libc::c_int = 10;

/// The control socket the handler watches (-1: none).
static WATCHED: AtomicI32 = AtomicI32::new(-1);

/// Whether the peer of `fd` has closed: a peek finds the end of stream (or a reset).
/// Only async-signal-safe calls.
fn peer_closed(fd: RawFd) -> bool {
    let mut b = 0u8;
    // SAFETY: `fd` is a socket this process keeps open for its whole life (the
    // control socket); the buffer is one valid byte.
    let r = unsafe {
        libc::recv(
            fd,
            (&raw mut b).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    // SAFETY: reading errno of this thread.
    r == 0 || (r < 0 && unsafe { *libc::__errno_location() } == libc::ECONNRESET)
}

extern "C" fn on_sigio(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: errno of this thread, saved and restored around the handler's calls.
    let saved = unsafe { *libc::__errno_location() };
    let fd = WATCHED.load(Ordering::Relaxed);
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler; for a
    // signal queued by F_SETSIG, `si_fd` names the descriptor (read through the
    // `sigpoll` view of the union, whose layout `libc` does not expose by name).
    let from = unsafe { sigpoll_fd(info) };
    if fd >= 0 && (from == fd || from < 0) && peer_closed(fd) {
        // SAFETY: `kill` and `_exit` are async-signal-safe.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
            libc::_exit(137);
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved };
}

/// The `si_fd` field of a `SIGPOLL`-style siginfo (-1 if the signal did not come from
/// a descriptor).
///
/// # Safety
/// `info` points to a valid `siginfo_t`.
unsafe fn sigpoll_fd(info: *const libc::siginfo_t) -> RawFd {
    // SAFETY: valid by the contract.
    let i = unsafe { &*info };
    if i.si_code <= 0 {
        return -1; // sent by a process (kill/sigqueue), not by the kernel for an fd
    }
    // Linux x86_64/aarch64 layout: si_signo, si_errno, si_code (3 x i32), padding to
    // 8, then the union; for SIGPOLL the union is { long si_band; int si_fd; }.
    #[repr(C)]
    struct Sigpoll {
        _head: [libc::c_int; 4],
        _band: libc::c_long,
        fd: libc::c_int,
    }
    // SAFETY: `siginfo_t` is 128 bytes, larger than `Sigpoll`, and aligned for it.
    unsafe { (*(info.cast::<Sigpoll>())).fd }
}

/// Arms `fd` (the child's control socket, open until the process exits) so that the
/// process kills itself when the peer closes it.
///
/// # Errors
/// The `sigaction` or `fcntl` error; the caller then falls back to a watcher thread.
pub(crate) fn arm(fd: RawFd) -> io::Result<()> {
    WATCHED.store(fd, Ordering::Relaxed);
    // SAFETY: a zeroed `sigaction` is a valid starting value; the handler has the
    // SA_SIGINFO signature and only makes async-signal-safe calls.
    let r = unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigio as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGIO, &sa, std::ptr::null_mut())
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: plain fcntl calls on a descriptor this process owns.
    let ok = unsafe {
        libc::fcntl(fd, libc::F_SETOWN, libc::getpid()) == 0
            && libc::fcntl(fd, F_SETSIG, libc::SIGIO) == 0
            && {
                let fl = libc::fcntl(fd, libc::F_GETFL);
                fl >= 0 && libc::fcntl(fd, libc::F_SETFL, fl | libc::O_ASYNC) == 0
            }
    };
    if !ok {
        return Err(io::Error::last_os_error());
    }
    // The parent may have gone before the socket was armed: no signal would come.
    if peer_closed(fd) {
        super::proc::kill_self();
    }
    Ok(())
}
