//! How a child is made, one file per start method (the shape of crossbeam-channel's
//! `flavors/`): [`spawn`] re-executes the binary, [`fork`] forks on the launcher
//! thread, [`forkserver`] asks a fork server. What they make is one private enum,
//! [`Started`], by who reaps the child: our own child (spawned or forked, reaped
//! through its pidfd) or the fork server's (which reaps it and sends its status). The
//! rest of `Process` asks `Started`, never the method.
//!
//! Also here: the constructor in `.init_array` that recognizes, before `main`, a
//! re-executed binary that is to be a spawned child or a fork server, and sends it to
//! its flavor's entry point.

mod fork;
mod forkserver;
mod launcher;
mod spawn;

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use rustix::event::PollFlags;

use super::StartMethod;
use super::child::{ENV, Role, Trampoline};
use super::protocol::Identity;
use crate::connection::Connection;
use crate::error::ProcessError;
use crate::sys::proc::{self as sys, Exit, StatusRead};
use crate::sys::socket;

/// `Process::exit` (a child's exit code, shared with whoever records it) holds no
/// status yet.
pub(crate) const NO_EXIT: i64 = i64::MIN;

/// What a start needs besides the method.
pub(crate) struct Launch<'a> {
    pub(crate) name: &'a str,
    pub(crate) trampoline: Trampoline,
    pub(crate) args: Vec<u8>,
    pub(crate) fds: Vec<OwnedFd>,
    /// This binary's identity (checked by a spawned child and by a fork server).
    pub(crate) identity: &'a dyn Fn() -> Result<Identity, ProcessError>,
}

/// Starts a child by `method`: the child, and the parent's end of its control socket.
///
/// # Errors
/// As `Process::start`.
pub(crate) fn start(
    method: StartMethod,
    launch: Launch<'_>,
) -> Result<(Started, Connection), ProcessError> {
    ensure_linked();
    match method {
        StartMethod::Spawn => spawn::start(launch),
        StartMethod::Fork { force } => fork::start(force, launch),
        StartMethod::ForkServer => forkserver::start(launch),
    }
}

/// A started child, by who reaps it.
pub(crate) enum Started {
    /// Our own child (spawned or forked): `waitid` on its pidfd reaps it.
    Own { pid: u32, pidfd: OwnedFd },
    /// A child of the fork server, not ours to `waitid`: the server reaps it and its
    /// status comes through `status`. Signals go through the pidfd the server sent.
    Served {
        pid: u32,
        pidfd: OwnedFd,
        status: forkserver::Status,
    },
}

impl Started {
    /// The child's pid.
    pub(crate) fn pid(&self) -> u32 {
        match self {
            Started::Own { pid, .. } | Started::Served { pid, .. } => *pid,
        }
    }

    /// The child's pidfd (for signals, which it keeps bound to this very process).
    pub(crate) fn pidfd(&self) -> BorrowedFd<'_> {
        match self {
            Started::Own { pidfd, .. } | Started::Served { pidfd, .. } => pidfd.as_fd(),
        }
    }

    /// The pidfd, to hand the child to the reaper.
    pub(crate) fn into_pidfd(self) -> OwnedFd {
        match self {
            Started::Own { pidfd, .. } | Started::Served { pidfd, .. } => pidfd,
        }
    }

    /// Readable once the child's end is known: its pidfd, or the status pipe.
    pub(crate) fn exit_fd(&self) -> BorrowedFd<'_> {
        match self {
            Started::Own { pidfd, .. } => pidfd.as_fd(),
            Started::Served { status, .. } => status.fd(),
        }
    }

    /// The exit of a child whose [`exit_fd`](Self::exit_fd) just turned readable;
    /// reaps a child of ours, and records the status in `exit` for a served one.
    /// `None` if it turns out not to have exited.
    pub(crate) fn collect_exit(
        &self,
        exit: &AtomicI64,
        deadline: Option<Instant>,
        name: &str,
    ) -> Result<Option<Exit>, ProcessError> {
        let (pidfd, status) = match self {
            // Readable pidfd: the child has exited, so this does not block.
            Started::Own { pidfd, .. } => {
                return sys::wait(pidfd.as_fd(), true, true).map_err(ProcessError::io);
            }
            Started::Served { pidfd, status, .. } => (pidfd, status),
        };
        match status.try_exit(exit) {
            StatusRead::Exit(e) => Ok(Some(e)),
            StatusRead::Pending => Ok(None),
            StatusRead::Lost => {
                // The server died without reporting: its children die with it by
                // SIGKILL (their parent-death signal), so once this one is gone that
                // is how it ended.
                let gone = socket::wait_for(pidfd.as_fd(), PollFlags::IN, deadline)
                    .map_err(ProcessError::io)?;
                if !gone {
                    return Err(ProcessError::timeout());
                }
                tracing::warn!(name = %name, "the fork server died before reporting");
                let e = Exit::Signal(libc::SIGKILL);
                exit.store(i64::from(e.exitcode()), Ordering::Release);
                Ok(Some(e))
            }
        }
    }

    /// Python's `exitcode` of the running or finished child, `exit` being the status
    /// recorded so far (`NO_EXIT` if none). Never blocks; does not reap.
    pub(crate) fn exitcode(&self, exit: &AtomicI64) -> Option<i32> {
        let pidfd = match self {
            Started::Served { status, pidfd, .. } => {
                return match status.try_exit(exit) {
                    StatusRead::Exit(e) => Some(e.exitcode()),
                    StatusRead::Pending => None,
                    // The server died without reporting (see `collect_exit`).
                    StatusRead::Lost => {
                        let gone =
                            socket::wait_for(pidfd.as_fd(), PollFlags::IN, Some(Instant::now()));
                        gone.unwrap_or(false).then_some(-libc::SIGKILL)
                    }
                };
            }
            Started::Own { pidfd, .. } => pidfd,
        };
        for _ in 0..1000 {
            let c = exit.load(Ordering::Acquire);
            if c != NO_EXIT {
                return i32::try_from(c).ok();
            }
            match sys::wait(pidfd.as_fd(), false, false) {
                Ok(Some(e)) => return Some(e.exitcode()),
                Ok(None) => return None,
                // Reaped by a join this instant: its status is being stored.
                Err(_) => std::thread::yield_now(),
            }
        }
        None
    }

    /// For a dropped `Process`: true if the child has exited and is reaped (reaping
    /// it now if it is ours); false if it still runs.
    pub(crate) fn reaped_if_exited(&self, exit: &AtomicI64) -> bool {
        match self {
            Started::Served { status, .. } => matches!(status.try_exit(exit), StatusRead::Exit(_)),
            Started::Own { pidfd, .. } => {
                !matches!(sys::wait(pidfd.as_fd(), false, true), Ok(None))
            }
        }
    }
}

/// Opens the pidfd of a just-made child of ours; on failure kills and reaps it by pid
/// (safe: it cannot have been reaped, so the pid is still its own).
fn own_child(pid: u32) -> Result<Started, ProcessError> {
    match sys::pidfd_open(pid) {
        Ok(pidfd) => Ok(Started::Own { pid, pidfd }),
        Err(e) => {
            let _ = sys::kill_pid(pid);
            sys::reap_pid(pid);
            Err(ProcessError::spawn(e))
        }
    }
}

/// The parent's end of a new control socket.
fn control(parent_end: OwnedFd) -> Connection {
    let c = Connection::from_fd(parent_end);
    c.set_max_frame(usize::MAX);
    c
}

// ---- before `main`: the constructor that runs spawned children and fork servers ----

#[used]
#[unsafe(link_section = ".init_array")]
static CHILD_HOOK: extern "C" fn() = child_hook;

/// Makes sure the constructor is linked into any binary that starts processes.
fn ensure_linked() {
    std::hint::black_box(&CHILD_HOOK);
}

/// Runs before `main` in every process of a binary that links this crate's process
/// support. In a spawned child it runs the function and exits, so `main` never runs;
/// in a fork server it serves and exits; anywhere else it returns at once.
extern "C" fn child_hook() {
    let Some(value) = std::env::var_os(ENV) else {
        return;
    };
    // SAFETY: constructors run before `main`, on the only thread there is, so nothing
    // reads the environment concurrently. Removing the variable keeps grandchildren
    // started with `std::process::Command` from taking themselves for children.
    unsafe { std::env::remove_var(ENV) };
    // Bind this process's life to its parent's before anything else (a spawned child
    // is started by `posix_spawn`, which runs no code of ours between clone and exec).
    // The kernel sends the signal when the thread that made us exits: the launcher
    // thread, which lives as long as the parent process. If the parent died before the
    // line below, we have been reparented and the pid check sees it.
    // (A value without a parent is malformed: reported below.)
    if let Some(parent) = parse_parent(&value)
        && (sys::set_parent_death_kill().is_err() || sys::getppid() != parent)
    {
        sys::kill_self();
    }
    sys::ignore_sigpipe();
    let Some((role, raw)) = parse_env(&value) else {
        // Not started by concur (someone set the variable by hand): say so and stop
        // rather than run `main` as a child.
        eprintln!("{ENV} is set but does not name a control socket; exiting");
        sys::exit_now(2);
    };
    // SAFETY: the parent made this descriptor (checked open and a socket by
    // `parse_env`) for this process image alone; nothing else here owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let _ = sys::set_cloexec(fd.as_fd());
    match role {
        Role::Child => spawn::spawned_main(fd),
        Role::ForkServer => forkserver::server_main(fd),
    }
}

/// The parent pid named in the environment value (`<role>:<fd>:<parent>`).
fn parse_parent(value: &OsStr) -> Option<u32> {
    let mut parts = value.to_str()?.split(':');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(_), Some(parent), None) => parent.parse().ok(),
        _ => None,
    }
}

fn parse_env(value: &OsStr) -> Option<(Role, RawFd)> {
    let s = value.to_str()?;
    let (role, rest) = s.split_once(':')?;
    let (fd, _parent) = rest.split_once(':')?;
    // The parent field must be what `parse_parent` reads (the death binding relies on
    // it): a value it rejects is malformed here too.
    parse_parent(value)?;
    let role = match role {
        "1" => Role::Child,
        "2" => Role::ForkServer,
        _ => return None,
    };
    let fd: RawFd = fd.parse().ok()?;
    // The descriptor must be open and a socket before anything takes ownership of it.
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `fstat` writes a `stat` into the buffer on success and only reads the
    // integer descriptor (an unopened number is EBADF, not undefined behaviour).
    let ok = unsafe { libc::fstat(fd, st.as_mut_ptr()) } == 0;
    // SAFETY: initialized by the successful `fstat` just above.
    let is_socket = ok && (unsafe { st.assume_init() }.st_mode & libc::S_IFMT) == libc::S_IFSOCK;
    is_socket.then_some((role, fd))
}

#[cfg(test)]
pub(crate) use forkserver::greet_for_test;
