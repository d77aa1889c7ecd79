//! Test support shared by the integration tests: bounded waits, so that no test can
//! hang CI, and helpers to look at processes through `/proc`.
#![allow(dead_code)]

use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The default bound for a test body.
pub const LIMIT: Duration = Duration::from_secs(60);

/// Runs `f` on its own thread and returns its result, or panics with a message naming
/// the probable deadlock if it does not finish within `limit`. A panic in `f` is
/// re-raised here with its original payload.
#[track_caller]
pub fn within<T: Send + 'static>(
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

/// The state letter of `/proc/<pid>/stat` (R, S, Z, ...), or `None` if there is no
/// such process.
pub fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the parenthesized command name, which may contain spaces.
    let after = &stat[stat.rfind(')')? + 1..];
    after.trim_start().chars().next()
}

/// Whether `pid` is gone or dead (a zombie waiting for someone else to reap it).
pub fn gone_or_dead(pid: u32) -> bool {
    matches!(proc_state(pid), None | Some('Z') | Some('X'))
}

/// Polls `cond` every few milliseconds until it holds or `limit` passes.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
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
