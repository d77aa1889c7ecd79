//! Where the model-checked protocols of this crate take their atomics, futex and
//! locks from, so that `RUSTFLAGS="--cfg concur_loom"` can swap them for
//! [loom](https://docs.rs/loom)'s (as `concur-core`'s `shim` does for the thread tier).
//!
//! Two protocols are modelled: the start-or-take-back words of the pool's tasks
//! (`pool/slots.rs`) and the shared-memory queue ring (`queue/ring.rs`), in the
//! `loom_*` unit tests beside them:
//!
//! ```text
//! RUSTFLAGS="--cfg concur_loom" cargo test -p concur-process --release --lib loom_
//! ```
//!
//! In a real build these are the atomics of `std`, the kernel's futex and the robust
//! pthread mutex, all living in shared memory. Under loom the same protocol code runs
//! on loom's atomics in ordinary memory, a futex made of a loom mutex and condition
//! variable (a sleeper wakes only when woken, so a lost wake-up is a deadlock loom
//! reports), and a spin lock for each side's mutex. (A process dying mid-operation,
//! the robust mutex's business, is not modelled: it is tested with real processes in
//! `ring_tests.rs`.)

#[cfg(not(concur_loom))]
pub(crate) mod atomic {
    pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
}
#[cfg(concur_loom)]
pub(crate) mod atomic {
    pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
}

/// Futex waits and wakes on an event word.
#[cfg(not(concur_loom))]
pub(crate) use crate::sync::futex;

/// Futex waits and wakes, for loom: one mutex and condition variable for every word
/// (a wake wakes every sleeper; each re-checks its word, as after a real futex wake).
#[cfg(concur_loom)]
pub(crate) mod futex {
    use super::atomic::{AtomicU32, Ordering};
    use std::time::Instant;

    loom::lazy_static! {
        static ref SLEEP: (loom::sync::Mutex<()>, loom::sync::Condvar) =
            (loom::sync::Mutex::new(()), loom::sync::Condvar::new());
    }

    /// Sleeps while `word == expected`, until woken (the models wait without
    /// deadlines).
    pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) {
        assert!(deadline.is_none(), "the loom models wait without deadlines");
        let g = SLEEP.0.lock().unwrap();
        if word.load(Ordering::SeqCst) == expected {
            drop(SLEEP.1.wait(g).unwrap());
        }
    }

    /// Wakes every sleeper.
    pub(crate) fn wake_all(_word: &AtomicU32) -> usize {
        let _g = SLEEP.0.lock().unwrap();
        SLEEP.1.notify_all();
        0
    }
}

/// The mutex of one side of a queue ring.
#[cfg(not(concur_loom))]
pub(crate) use crate::sync::robust::RobustMutex as SideLock;

#[cfg(concur_loom)]
pub(crate) use loom_lock::SideLock;

/// A spin lock with the robust mutex's interface, for loom (owners never die there).
#[cfg(concur_loom)]
mod loom_lock {
    use crate::sync::robust::Attempt;
    use loom::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;

    pub(crate) struct SideLock {
        held: AtomicBool,
    }

    impl SideLock {
        pub(crate) fn new() -> Self {
            SideLock {
                held: AtomicBool::new(false),
            }
        }

        pub(crate) fn init(&self) -> std::io::Result<()> {
            Ok(())
        }

        pub(crate) fn try_lock(&self) -> Attempt {
            match self
                .held
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => Attempt::Acquired,
                Err(_) => Attempt::Busy,
            }
        }

        pub(crate) fn lock(&self, deadline: Option<Instant>) -> Attempt {
            assert!(deadline.is_none(), "the loom models wait without deadlines");
            loop {
                if self.try_lock() == Attempt::Acquired {
                    return Attempt::Acquired;
                }
                loom::thread::yield_now();
            }
        }

        pub(crate) fn unlock(&self) -> bool {
            self.held.store(false, Ordering::Release);
            true
        }
    }
}

/// Spins before a waiter sleeps (a model explores every one: keep it short there).
pub(crate) const SPINS: u32 = if cfg!(concur_loom) { 2 } else { 200 };
