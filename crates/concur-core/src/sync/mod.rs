//! Python's `threading` synchronisation primitives: [`Lock`], [`RLock`], [`Condition`],
//! [`Semaphore`], [`BoundedSemaphore`], [`Event`] and [`Barrier`].
//!
//! Every blocking call comes in four forms: `op` (blocks until done), `try_op` (never
//! blocks), `op_timeout(Duration)` and `op_deadline(Instant)`. A timeout too large to
//! represent waits forever. Python's `acquire(blocking=False)` is `try_acquire`,
//! `acquire(timeout=t)` is `acquire_timeout(t)`.

mod barrier;
mod condition;
mod event;
mod lock;
pub(crate) mod raw;
mod rlock;
mod semaphore;
pub(crate) mod waiters;
mod watched;

pub use barrier::{Barrier, BarrierBuilder, BrokenBarrierError, BrokenKind};
pub use condition::{Condition, ConditionGuard};
pub use event::Event;
pub use lock::{Lock, LockBuilder, LockGuard};
pub use rlock::{RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, Semaphore, SemaphoreGuard};

use std::fmt;

/// Why a `release` was refused (Python raises `RuntimeError` or `ValueError` for these).
///
/// ```
/// use concur::sync::{BoundedSemaphore, Lock, RLock, ReleaseError};
/// assert_eq!(Lock::new().release(), Err(ReleaseError::NotLocked));
/// assert_eq!(RLock::new().release(), Err(ReleaseError::NotOwner));
/// let s = BoundedSemaphore::new(1);
/// assert_eq!(s.release(), Err(ReleaseError::TooManyReleases));
/// assert_eq!(ReleaseError::NotLocked.to_string(), "release of an unlocked lock");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReleaseError {
    /// The lock was not locked.
    NotLocked,
    /// The calling thread does not own the (reentrant) lock.
    NotOwner,
    /// A `BoundedSemaphore` would rise above its initial value.
    TooManyReleases,
}

impl fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReleaseError::NotLocked => "release of an unlocked lock",
            ReleaseError::NotOwner => {
                "cannot release un-acquired lock: the calling thread does not own it"
            }
            ReleaseError::TooManyReleases => "semaphore released too many times",
        })
    }
}

impl std::error::Error for ReleaseError {}
