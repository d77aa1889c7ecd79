//! Processes: pidfds, `waitid`, signals, the parent-death signal, `fork`, `_exit`,
//! thread counting and the identity of the running executable.

use std::io;
use std::io::Write as _;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::process::{Pid, PidfdFlags, Signal, WaitId, WaitIdOptions};

/// Names of the helper threads this crate runs; they are not counted as "other threads"
/// when deciding whether `fork` is safe (see [`other_threads`]).
pub(crate) const LAUNCHER_THREAD: &str = "concur-launcher";
/// See [`LAUNCHER_THREAD`].
pub(crate) const REAPER_THREAD: &str = "concur-reaper";
/// See [`LAUNCHER_THREAD`].
pub(crate) const WATCHER_THREAD: &str = "concur-watcher";
/// The OS-visible name of a fork server process.
pub(crate) const FORK_SERVER_NAME: &str = "concur-forksrv";

/// Starts one of this crate's helper threads, named `name` (one of the names above),
/// and returns once it runs: std names a thread from inside it, so before that it
/// would still carry its creator's name and be counted by [`other_threads`].
pub(crate) fn spawn_helper(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let _ = tx.send(());
            f();
        })?;
    rx.recv()
        .map_err(|_| io::Error::other("a helper thread failed to start"))
}

/// How a child process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    /// It exited with this status.
    Code(i32),
    /// A signal with this number killed it.
    Signal(i32),
}

impl Exit {
    /// Python's `exitcode`: the status, or minus the signal number.
    pub(crate) fn exitcode(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => -s,
        }
    }

    /// The inverse of [`exitcode`](Exit::exitcode).
    pub(crate) fn from_exitcode(code: i32) -> Exit {
        if code < 0 {
            Exit::Signal(code.saturating_neg())
        } else {
            Exit::Code(code)
        }
    }
}

/// This process's id.
pub(crate) fn getpid() -> u32 {
    rustix::process::getpid()
        .as_raw_nonzero()
        .get()
        .unsigned_abs()
}

/// The parent's process id (0 when there is none).
pub(crate) fn getppid() -> u32 {
    rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get().unsigned_abs())
}

fn pid(p: u32) -> io::Result<Pid> {
    i32::try_from(p)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "invalid pid"))
}

/// A pidfd for our (unreaped) child `p`: stable even if the pid is later reused.
pub(crate) fn pidfd_open(p: u32) -> io::Result<OwnedFd> {
    Ok(rustix::process::pidfd_open(pid(p)?, PidfdFlags::empty())?)
}

/// Sends SIGTERM (`kill == false`) or SIGKILL through a pidfd. A process that was
/// already reaped is not an error (there is nothing left to signal).
pub(crate) fn signal(pidfd: BorrowedFd<'_>, kill: bool) -> io::Result<()> {
    let sig = if kill { Signal::KILL } else { Signal::TERM };
    match rustix::process::pidfd_send_signal(pidfd, sig) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Sends SIGKILL to a pid that is known not to have been reaped yet.
pub(crate) fn kill_pid(p: u32) -> io::Result<()> {
    Ok(rustix::process::kill_process(pid(p)?, Signal::KILL)?)
}

/// Polls (`block == false`) or waits for the exit of the child behind `pidfd`.
/// With `reap` the child is reaped; without, it stays waitable (`WNOWAIT`).
/// `Ok(None)`: still running. `ECHILD` means someone else reaped it.
pub(crate) fn wait(pidfd: BorrowedFd<'_>, block: bool, reap: bool) -> io::Result<Option<Exit>> {
    let mut opts = WaitIdOptions::EXITED;
    if !block {
        opts |= WaitIdOptions::NOHANG;
    }
    if !reap {
        opts |= WaitIdOptions::NOWAIT;
    }
    loop {
        match rustix::process::waitid(WaitId::PidFd(pidfd.as_fd()), opts) {
            Ok(None) => return Ok(None),
            Ok(Some(st)) => {
                if let Some(s) = st.terminating_signal() {
                    return Ok(Some(Exit::Signal(s)));
                }
                if let Some(c) = st.exit_status() {
                    return Ok(Some(Exit::Code(c)));
                }
                // With NOHANG and no state change, some kernels report an empty siginfo.
                return Ok(None);
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reaps the child `p` by pid (used only before a pidfd exists for it).
pub(crate) fn reap_pid(p: u32) {
    if let Ok(p) = pid(p) {
        let _ = rustix::process::waitpid(Some(p), rustix::process::WaitOptions::empty());
    }
}

/// Asks the kernel to SIGKILL this process when the thread that created it exits.
/// Async-signal-safe (one system call).
pub(crate) fn set_parent_death_kill() -> io::Result<()> {
    Ok(rustix::process::set_parent_process_death_signal(Some(
        Signal::KILL,
    ))?)
}

/// A pipe for one exit status: the read end close-on-exec and non-blocking (so a
/// status can be polled for), the write end close-on-exec and blocking. Returns
/// `(read, write)`.
pub(crate) fn status_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    rustix::fs::fcntl_setfl(&r, rustix::fs::OFlags::NONBLOCK)?;
    Ok((r, w))
}

/// What reading an exit status from a [`status_pipe`] gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StatusRead {
    /// The status (Python's `exitcode` form).
    Exit(Exit),
    /// Nothing yet: the writer still holds its end.
    Pending,
    /// The writer closed its end without writing a whole status.
    Lost,
}

/// Writes `exit` to the write end of a [`status_pipe`]. Never blocks: the pipe is new
/// and a status is far smaller than its buffer (and than `PIPE_BUF`, so the write is
/// atomic). A reader that went away is not an error.
pub(crate) fn write_status(fd: BorrowedFd<'_>, exit: Exit) {
    let bytes = exit.exitcode().to_le_bytes();
    loop {
        match rustix::io::write(fd, &bytes) {
            Err(rustix::io::Errno::INTR) => {}
            _ => return,
        }
    }
}

/// Reads the status from the read end of a [`status_pipe`] without blocking. The
/// status is consumed: a second read gives `Lost` (once the writer closed) or
/// `Pending`.
pub(crate) fn read_status(fd: BorrowedFd<'_>) -> StatusRead {
    let mut b = [0u8; 4];
    loop {
        return match rustix::io::read(fd, &mut b) {
            Ok(4) => StatusRead::Exit(Exit::from_exitcode(i32::from_le_bytes(b))),
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::AGAIN) => StatusRead::Pending,
            // End of stream, a torn write (impossible below PIPE_BUF) or an error.
            _ => StatusRead::Lost,
        };
    }
}

/// Closes every descriptor from 3 up except `keep`: for a process forked from a fork
/// server, which must hold nothing of the server's (its socket to the parent, other
/// workers' pidfds and status pipes).
///
/// # Safety
/// Every `OwnedFd` for a closed descriptor must never be used or dropped afterwards
/// (the caller ends the process with `_exit` without dropping them).
pub(crate) unsafe fn close_all_but(keep: BorrowedFd<'_>) -> io::Result<()> {
    let k = u32::try_from(std::os::fd::AsRawFd::as_raw_fd(&keep))
        .map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    let ranges = [(3, k.checked_sub(1)), (k + 1, Some(u32::MAX))];
    for (first, last) in ranges {
        let Some(last) = last.filter(|&l| l >= first) else {
            continue;
        };
        // SAFETY: `close_range` only closes descriptors; that nothing still refers to
        // them is this function's contract.
        let r = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                libc::c_uint::from(first),
                libc::c_uint::from(last),
                0 as libc::c_uint,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Sets close-on-exec on `fd`.
pub(crate) fn set_cloexec(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC)?)
}

/// Names the calling thread (the process's name when called on its main thread), as
/// `ps` shows it; truncated to the kernel's 15 bytes.
pub(crate) fn set_thread_name(name: &str) {
    let bytes: Vec<u8> = name.bytes().filter(|&b| b != 0).take(15).collect();
    if let Ok(c) = std::ffi::CString::new(bytes) {
        let _ = rustix::thread::set_name(&c);
    }
}

/// Ignores SIGPIPE, as Rust's `main` does (a child started before `main` has not had it
/// done for it); writes to a closed pipe then fail with `BrokenPipe`.
pub(crate) fn ignore_sigpipe() {
    // SAFETY: setting a signal disposition to SIG_IGN installs no handler code and is
    // what the Rust runtime does before `main`.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Restores SIGCHLD's default disposition (children stay waitable until reaped).
pub(crate) fn default_sigchld() {
    // SAFETY: setting a signal disposition to SIG_DFL installs no handler code.
    unsafe {
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
    }
}

/// Forks the calling process. `Ok(None)` in the child, `Ok(Some(pid))` in the parent.
///
/// # Safety
/// The child is a copy of this process with only the calling thread. Until it calls
/// [`exit_now`] it must not touch state that another thread might have held locked at
/// the moment of the fork; the caller decides (and documents) why that holds.
pub(crate) unsafe fn fork() -> io::Result<Option<u32>> {
    // SAFETY: `fork` itself has no preconditions; what the child may do afterwards is
    // this function's own safety contract, passed on to the caller.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        p => Ok(Some(p.unsigned_abs())),
    }
}

/// Ends this process at once with `code`, after flushing Rust's standard output
/// buffer; runs no `atexit` handlers and no destructors (a forked child must not run
/// the parent's).
pub(crate) fn exit_now(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    exit_unflushed(code)
}

/// Ends this process at once with `code`, touching no lock at all: for a child forked
/// while other threads ran, where the standard output lock may have been copied held.
pub(crate) fn exit_unflushed(code: i32) -> ! {
    // SAFETY: `_exit` is always safe to call; it does not return.
    unsafe { libc::_exit(code) }
}

/// Kills this process with SIGKILL (what the parent-death signal would have done).
pub(crate) fn kill_self() -> ! {
    let _ = rustix::process::kill_process(rustix::process::getpid(), Signal::KILL);
    exit_unflushed(137)
}

/// How many threads of this process are running besides the calling thread and this
/// crate's own helper threads (launcher, reaper, watcher), from `/proc/self/task`.
pub(crate) fn other_threads() -> io::Result<usize> {
    let me = rustix::thread::gettid().as_raw_nonzero().get();
    let mut n = 0;
    for entry in std::fs::read_dir("/proc/self/task")? {
        let entry = entry?;
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if tid == me {
            continue;
        }
        // A thread that exited since the listing has no comm any more: not counted.
        let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) else {
            continue;
        };
        let comm = comm.trim_end();
        if [LAUNCHER_THREAD, REAPER_THREAD, WATCHER_THREAD].contains(&comm) {
            continue;
        }
        n += 1;
    }
    Ok(n)
}

/// Device, inode, size and modification time of the running executable.
pub(crate) fn exe_stat() -> io::Result<[u64; 5]> {
    let st = rustix::fs::stat("/proc/self/exe")?;
    Ok([
        widen(st.st_dev),
        widen(st.st_ino),
        widen(st.st_size),
        widen(st.st_mtime),
        widen(st.st_mtime_nsec),
    ])
}

/// Casts a stat field (whose width varies by architecture) to u64, bit for bit.
fn widen<T: TryInto<i128>>(v: T) -> u64 {
    v.try_into().map_or(u64::MAX, |w: i128| w as u64)
}

/// The resident set size of process `pid` in bytes (`/proc/<pid>/statm`), or `None`
/// if it is gone or unreadable.
pub(crate) fn resident_bytes(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * rustix::param::page_size() as u64)
}

/// How many processes the kernel's OOM killer has killed since boot (`oom_kill` in
/// `/proc/vmstat`, Linux 4.13+), or `None` where the counter is missing.
pub(crate) fn oom_kills() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/vmstat").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
}
