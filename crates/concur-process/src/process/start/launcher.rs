//! The launcher: one long-lived thread per process that makes every child.
//!
//! Linux sends the parent-death signal when the *thread* that created a child exits,
//! not the process. Children made by a short-lived thread (a test, a pool worker that
//! is replaced) would be killed with it. So every `fork` (and the `fork` inside
//! `Command::spawn`) happens on this thread, which never exits: a child's
//! `PR_SET_PDEATHSIG(SIGKILL)` then fires exactly when the parent process dies.
//! A panic in a job is caught so the thread survives it.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::panic::{self, AssertUnwindSafe};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, PoisonError};

use crate::process::child;
use crate::sys::proc as sys;

type Job = Box<dyn FnOnce() + Send>;

struct Launcher {
    jobs: mpsc::Sender<Job>,
    /// The process the thread runs in (a forked child has no launcher thread, whatever
    /// its copy of this static says).
    owner: u32,
}

static LAUNCHER: Mutex<Option<Launcher>> = Mutex::new(None);

fn jobs() -> io::Result<mpsc::Sender<Job>> {
    let mut g = LAUNCHER.lock().unwrap_or_else(PoisonError::into_inner);
    let me = sys::getpid();
    if let Some(l) = g.as_ref().filter(|l| l.owner == me) {
        return Ok(l.jobs.clone());
    }
    let (tx, rx) = mpsc::channel::<Job>();
    sys::spawn_helper(sys::LAUNCHER_THREAD, move || {
        // The sender lives in a static, so this loop never ends.
        for job in rx {
            let _ = panic::catch_unwind(AssertUnwindSafe(job));
        }
    })?;
    *g = Some(Launcher {
        jobs: tx.clone(),
        owner: me,
    });
    Ok(tx)
}

/// Runs `f` on the launcher thread and returns its result.
fn on_launcher<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> io::Result<T> {
    let jobs = jobs()?;
    let (tx, rx) = mpsc::sync_channel(1);
    jobs.send(Box::new(move || {
        let _ = tx.send(f());
    }))
    .map_err(|_| io::Error::other("the process launcher thread is gone"))?;
    // The caller holds none of this crate's locks while it waits here, so a fork on
    // the launcher thread copies nothing the child could need and find locked.
    rx.recv()
        .map_err(|_| io::Error::other("the process launcher failed while starting a child"))
}

/// Starts `/proc/self/exe` as a spawned child (or a fork server, by `role`) that
/// inherits `child_end` as its control socket. Returns its pid.
pub(super) fn spawn_exec(child_end: OwnedFd, role: child::Role) -> io::Result<u32> {
    on_launcher(move || exec_child(&child_end, role))?
}

fn exec_child(child_end: &OwnedFd, role: child::Role) -> io::Result<u32> {
    let parent = sys::getpid();
    let raw = child_end.as_raw_fd();
    let mut cmd = Command::new("/proc/self/exe");
    if let Some(arg0) = std::env::args_os().next() {
        cmd.arg0(arg0);
    }
    cmd.arg(role.arg())
        .env(child::ENV, role.env_value(raw))
        .stdin(Stdio::null());
    let pre_exec = move || {
        // SAFETY: `raw` is open in the forked child: it is the child's copy of
        // `child_end`, which the launcher keeps open until `spawn` returns.
        let fd = unsafe { BorrowedFd::borrow_raw(raw) };
        sys::clear_cloexec(fd)?;
        sys::set_parent_death_kill()?;
        if sys::getppid() != parent {
            // The parent died before the death signal was armed.
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        Ok(())
    };
    // SAFETY: the closure runs between fork and exec; it only makes async-signal-safe
    // system calls (fcntl, prctl, getppid) and allocates nothing.
    unsafe { cmd.pre_exec(pre_exec) };
    let child = cmd.spawn()?;
    Ok(child.id())
}

/// Forks a child that runs `child_main` (which never returns: it ends with `_exit`,
/// hence its uninhabited return type). Returns its pid.
///
/// The fork happens on the launcher thread, so the child is a copy of the process with
/// only that thread, whose state at the fork is known: it is running this job.
pub(super) fn fork(
    child_main: impl FnOnce() -> std::convert::Infallible + Send + 'static,
) -> io::Result<u32> {
    on_launcher(move || {
        // SAFETY: the child only runs `child_main`, which ends with `_exit` (fork.rs's
        // `fork_child_main`). At the fork, the caller that asked for it waits on a
        // channel holding no lock, and the other threads are either this crate's idle
        // helpers or ones the caller accepted by forcing the fork (see
        // `StartMethod::Fork`).
        match unsafe { sys::fork() } {
            Ok(None) => match child_main() {},
            Ok(Some(pid)) => Ok(pid),
            Err(e) => Err(e),
        }
    })?
}
