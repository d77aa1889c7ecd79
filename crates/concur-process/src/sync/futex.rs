//! Shared (non-private) futex waits and wakes on words in shared memory.
//!
//! A futex on a `MAP_SHARED` file mapping is keyed by the file and offset, not the
//! address, so processes that map the same block at different addresses wait on and
//! wake the same futex. Callers always re-check their condition after [`wait`]
//! returns: it also returns on a spurious wakeup, a signal, a changed word or the
//! deadline.

use rustix::io::Errno;
use rustix::thread::futex::{self, Flags, Timespec};
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

fn timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}

/// Sleeps while `word == expected`, until woken or `deadline` (`None`: no limit).
/// Returns at once if the word differs or the deadline has passed.
///
/// # Panics
/// If the kernel reports an error other than "changed", "interrupted" or "timed out"
/// (which would mean the word is not in valid memory: a bug in this crate).
pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) {
    let timeout = match deadline {
        None => None,
        Some(d) => {
            let now = Instant::now();
            if now >= d {
                return;
            }
            Some(timespec(d - now))
        }
    };
    match futex::wait(word, Flags::empty(), expected, timeout.as_ref()) {
        Ok(()) | Err(Errno::AGAIN | Errno::INTR | Errno::TIMEDOUT) => {}
        Err(e) => panic!("futex wait failed: {e}"),
    }
}

/// Wakes at most `n` threads (in any process) sleeping on `word`; returns how many.
pub(crate) fn wake(word: &AtomicU32, n: u32) -> usize {
    let n = n.min(i32::MAX as u32);
    futex::wake(word, Flags::empty(), n).unwrap_or(0)
}

/// Wakes every thread sleeping on `word`.
pub(crate) fn wake_all(word: &AtomicU32) -> usize {
    wake(word, u32::MAX)
}
