//! Test support: run a closure in a forked child process, with a bounded wait that
//! always reaps; `within`, which bounds any wait in the test itself; and helpers to
//! look at processes through `/proc`.
//!
//! `Process` is being written alongside these tests, so cross-process tests fork
//! directly with `libc::fork`. The test binary is multi-threaded (libtest runs tests
//! on threads), and after `fork` only the forking thread exists in the child: a lock
//! another thread held at that instant stays locked forever in the child. Children
//! therefore keep to the primitives under test, atomics and small allocations (glibc's
//! `malloc` is fork-safe); they never print on success. If a child does get stuck
//! (say, its panic message waits for a stderr lock held at fork time), the parent's
//! bounded wait kills it and fails the test instead of hanging. None of this depends
//! on `--test-threads`.
//!
//! Shared with the crate's unit tests through `#[path]` (see `src/sync/mod.rs`).
#![allow(dead_code)] // each test binary uses a different part

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How a child ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    /// `_exit(code)`; 0 means the closure returned, 101 that it panicked.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

/// A forked child. Dropping it kills (`SIGKILL`) and reaps it if it was not waited for.
#[must_use = "a child must be waited for"]
pub(crate) struct Child {
    pid: libc::pid_t,
    reaped: bool,
}

/// Forks; the child runs `body` and `_exit`s with 0 if it returned, 101 if it panicked.
/// Destructors and `atexit` handlers of the parent's state never run in the child.
pub(crate) fn fork(body: impl FnOnce()) -> Child {
    // SAFETY: `fork` has no memory-safety preconditions; the child below runs only
    // `body` (see the module docs for what it may do) and ends with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = match catch_unwind(AssertUnwindSafe(body)) {
            Ok(()) => 0,
            Err(_) => 101,
        };
        // SAFETY: ends the child at once, without unwinding into the test harness.
        unsafe { libc::_exit(code) };
    }
    Child { pid, reaped: false }
}

impl Child {
    /// The child's process id.
    pub(crate) fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// Sends `signal` to the child (if it has not been reaped).
    pub(crate) fn signal(&self, signal: i32) {
        if !self.reaped {
            // SAFETY: signals our own unreaped child, whose pid cannot be reused yet.
            unsafe { libc::kill(self.pid, signal) };
        }
    }

    /// Waits at most `limit` for the child to end; on overrun kills it, reaps it and
    /// panics naming `what`.
    #[track_caller]
    pub(crate) fn wait(mut self, limit: Duration, what: &str) -> Exit {
        let start = Instant::now();
        loop {
            if let Some(exit) = self.try_reap() {
                return exit;
            }
            if start.elapsed() > limit {
                self.signal(libc::SIGKILL);
                let _ = self.reap_blocking();
                panic!(
                    "child for {what:?} still running after {limit:?}: killed (probable deadlock)"
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits (bounded) and asserts the child ended with `_exit(0)`.
    #[track_caller]
    pub(crate) fn expect_success(self, limit: Duration, what: &str) {
        let exit = self.wait(limit, what);
        assert_eq!(exit, Exit::Code(0), "child for {what:?} failed");
    }

    fn try_reap(&mut self) -> Option<Exit> {
        let mut status = 0;
        // SAFETY: waits for our own child without blocking; `status` is a valid out-pointer.
        let r = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
        match r {
            0 => None,
            r if r == self.pid => {
                self.reaped = true;
                Some(decode(status))
            }
            _ => panic!("waitpid failed: {}", std::io::Error::last_os_error()),
        }
    }

    fn reap_blocking(&mut self) -> Option<Exit> {
        let mut status = 0;
        // SAFETY: as above, blocking; only called after SIGKILL, so it returns promptly.
        let r = unsafe { libc::waitpid(self.pid, &mut status, 0) };
        (r == self.pid).then(|| {
            self.reaped = true;
            decode(status)
        })
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            self.signal(libc::SIGKILL);
            let _ = self.reap_blocking();
        }
    }
}

fn decode(status: i32) -> Exit {
    if libc::WIFSIGNALED(status) {
        Exit::Signal(libc::WTERMSIG(status))
    } else {
        Exit::Code(libc::WEXITSTATUS(status))
    }
}

/// Runs `f` on its own thread and returns its result, or panics with a message naming
/// the probable deadlock if it does not finish within `limit`. A panic in `f` is
/// re-raised here with its original payload.
#[track_caller]
pub(crate) fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let h = std::thread::Builder::new()
        .name(format!("within: {what}"))
        .spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.send(r);
        })
        .expect("spawn test thread");
    match rx.recv_timeout(limit) {
        Ok(Ok(v)) => {
            let _ = h.join();
            v
        }
        Ok(Err(p)) => std::panic::resume_unwind(p),
        Err(_) => panic!("probable deadlock: `{what}` did not finish within {limit:?}"),
    }
}

/// A generous bound for waits that normally take microseconds.
pub(crate) const LIMIT: Duration = Duration::from_secs(60);

/// The state letter of `/proc/<pid>/stat` (R, S, Z, ...), or `None` if there is no
/// such process.
pub(crate) fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the parenthesized command name, which may contain spaces.
    let after = &stat[stat.rfind(')')? + 1..];
    after.trim_start().chars().next()
}

/// Whether `pid` is gone or dead (a zombie waiting for someone else to reap it).
pub(crate) fn gone_or_dead(pid: u32) -> bool {
    matches!(proc_state(pid), None | Some('Z') | Some('X'))
}

/// Polls `cond` every few milliseconds until it holds or `limit` passes.
pub(crate) fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
