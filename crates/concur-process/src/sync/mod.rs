//! Process-shared synchronisation: [`Lock`], [`RLock`], [`Semaphore`],
//! [`BoundedSemaphore`], [`Event`], [`Condition`] and [`Barrier`] — Python's
//! `multiprocessing.Lock` and friends, with the API of [`concur::sync`](concur_core::sync).
//!
//! Each primitive lives in shared memory (an anonymous `memfd` page of its own, or
//! inside a [`Value`](crate::shm::Value)'s block). Handles are cheap clones of one
//! primitive; a handle serialized to another process (as a process argument or over
//! a connection) carries the block's file descriptor, and the receiver maps the same
//! primitive. A forked child inherits the mapping directly.
//!
//! Every blocking call comes in four forms, as in `concur::sync`: `op` (blocks
//! until done), `try_op` (never blocks), `op_timeout(Duration)` and
//! `op_deadline(Instant)`. A timeout too large to represent waits forever.
//!
//! # When a lock's owner dies
//!
//! [`Lock`] and [`RLock`] are *robust*: if the process (or thread) holding one dies —
//! it exits, crashes or is `SIGKILL`ed — the kernel marks the lock, and the next
//! acquirer gets it together with the news, as std's `Mutex` reports poisoning:
//! `acquire` returns `Err(`[`OwnerDied`]`(guard))`, and the guard inside holds the
//! lock. Whatever the lock protected may be half-updated; repair it, or just
//! `.unwrap_or_else(OwnerDied::into_inner)` to carry on. Only that one acquirer is
//! told; the lock itself is healthy again at once. (Mechanism: a pthread mutex with
//! `PTHREAD_MUTEX_ROBUST` and `PTHREAD_PROCESS_SHARED`, made consistent at once on
//! `EOWNERDEAD`.)
//!
//! Unlike Python's `multiprocessing.Lock` (a semaphore), a process-shared `Lock` has an
//! owner: only the thread that acquired it can release it, so guards are not `Send`.
//!
//! The other primitives keep their state in futex words; a process that dies in the
//! middle of using one cannot leave it locked, but it can leave it short (a permit it
//! took is not returned, a barrier it was waiting at counts it as arrived): see each
//! type's docs.
//!
//! # Examples
//!
//! ```
//! use concur::process::sync::{Lock, OwnerDied};
//!
//! let lock = Lock::new()?;
//! {
//!     let _g = lock.acquire().unwrap_or_else(OwnerDied::into_inner);
//!     assert!(lock.locked());
//! }
//! assert!(!lock.locked());
//! # Ok::<(), std::io::Error>(())
//! ```

mod barrier;
mod condition;
mod event;
pub(crate) mod futex;
mod lock;
pub(crate) mod mutex;
mod rlock;
pub(crate) mod robust;
mod semaphore;
pub(crate) mod shared;
pub(crate) mod tid;

#[cfg(test)]
mod tests;

pub use barrier::{Barrier, BarrierBuilder};
pub use condition::{Condition, ConditionGuard};
pub use event::Event;
pub use lock::{Lock, LockGuard};
pub use rlock::{RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, Semaphore, SemaphoreGuard};

/// The errors are the thread tier's: one vocabulary for both (a process that died
/// inside a barrier operation breaks the barrier as [`BrokenKind::Aborted`]).
pub use concur_core::sync::{BrokenBarrierError, BrokenKind, ReleaseError};

use std::fmt;
use std::time::Instant;

/// What a blocking acquisition returns: the guard, or the guard together with the
/// news that the previous owner died holding the lock. Mirrors std's `LockResult`.
pub type AcquireResult<G> = Result<G, OwnerDied<G>>;

/// What a non-blocking or time-limited acquisition returns. Mirrors std's
/// `TryLockResult`.
pub type TryAcquireResult<G> = Result<G, TryAcquireError<G>>;

/// The lock was acquired, but its previous owner died holding it: std's
/// `PoisonError` for process-shared locks.
///
/// The caller holds the lock: the guard is inside ([`into_inner`](OwnerDied::into_inner)).
/// The data the lock protected may be half-updated by the dead owner. The lock itself
/// is usable again; only this acquirer is told.
///
/// ```
/// use concur::process::sync::OwnerDied;
/// let e = OwnerDied::new(5);
/// assert_eq!(*e.get_ref(), 5);
/// assert_eq!(e.to_string(), "the previous owner of the lock died while holding it");
/// assert_eq!(e.into_inner(), 5);
/// ```
pub struct OwnerDied<G> {
    guard: G,
}

impl<G> OwnerDied<G> {
    /// Wraps `guard` (or a result obtained under the lock).
    ///
    /// ```
    /// let e = concur::process::sync::OwnerDied::new("g");
    /// assert_eq!(e.into_inner(), "g");
    /// ```
    pub fn new(guard: G) -> Self {
        OwnerDied { guard }
    }

    /// The guard: the caller holds the lock.
    ///
    /// ```
    /// let e = concur::process::sync::OwnerDied::new(1);
    /// assert_eq!(e.into_inner(), 1);
    /// ```
    pub fn into_inner(self) -> G {
        self.guard
    }

    /// A reference to the guard.
    ///
    /// ```
    /// let e = concur::process::sync::OwnerDied::new(1);
    /// assert_eq!(*e.get_ref(), 1);
    /// ```
    pub fn get_ref(&self) -> &G {
        &self.guard
    }

    /// A mutable reference to the guard.
    ///
    /// ```
    /// let mut e = concur::process::sync::OwnerDied::new(1);
    /// *e.get_mut() += 1;
    /// assert_eq!(e.into_inner(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut G {
        &mut self.guard
    }

    pub(crate) fn map<U>(self, f: impl FnOnce(G) -> U) -> OwnerDied<U> {
        OwnerDied {
            guard: f(self.guard),
        }
    }
}

impl<G> fmt::Debug for OwnerDied<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnerDied").finish_non_exhaustive()
    }
}

/// Compares the carried values (handy for `Result<bool, OwnerDied<bool>>`).
///
/// ```
/// use concur::process::sync::OwnerDied;
/// assert_eq!(OwnerDied::new(true), OwnerDied::new(true));
/// let r: Result<bool, OwnerDied<bool>> = Ok(false);
/// assert_eq!(r, Ok(false));
/// ```
impl<G: PartialEq> PartialEq for OwnerDied<G> {
    fn eq(&self, other: &Self) -> bool {
        self.guard == other.guard
    }
}

impl<G: Eq> Eq for OwnerDied<G> {}

impl<G> fmt::Display for OwnerDied<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the previous owner of the lock died while holding it")
    }
}

impl<G> std::error::Error for OwnerDied<G> {}

/// Why a non-blocking or time-limited acquisition did not simply succeed: std's
/// `TryLockError`.
///
/// ```
/// use concur::process::sync::{Lock, TryAcquireError};
/// let lock = Lock::new()?;
/// let _g = lock.try_acquire().unwrap();
/// let e = lock.try_acquire().unwrap_err(); // this thread holds it
/// assert!(matches!(e, TryAcquireError::WouldBlock));
/// assert_eq!(e.to_string(), "the lock is held elsewhere");
/// # Ok::<(), std::io::Error>(())
/// ```
pub enum TryAcquireError<G> {
    /// The lock was held (by another thread or process, or by the calling thread for
    /// a non-reentrant lock) until the deadline — for `try_acquire`, right now.
    WouldBlock,
    /// Acquired, but the previous owner died holding it; the guard is inside.
    OwnerDied(OwnerDied<G>),
}

impl<G> From<OwnerDied<G>> for TryAcquireError<G> {
    fn from(e: OwnerDied<G>) -> Self {
        TryAcquireError::OwnerDied(e)
    }
}

impl<G> fmt::Debug for TryAcquireError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryAcquireError::WouldBlock => f.write_str("WouldBlock"),
            TryAcquireError::OwnerDied(e) => f.debug_tuple("OwnerDied").field(e).finish(),
        }
    }
}

impl<G> fmt::Display for TryAcquireError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryAcquireError::WouldBlock => f.write_str("the lock is held elsewhere"),
            TryAcquireError::OwnerDied(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl<G> std::error::Error for TryAcquireError<G> {}

/// Sleeps until `deadline` (used where the answer is known to be "not before it").
pub(crate) fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    if deadline > now {
        std::thread::sleep(deadline - now);
    }
}

#[cfg(test)]
#[path = "../../tests/common/mod.rs"]
pub(crate) mod test_common;
