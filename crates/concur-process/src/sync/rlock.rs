//! `RLock`: Python's `multiprocessing.RLock`, robust, reentrant and process-shared.
//!
//! The same robust mutex as `Lock` (see `mutex.rs`); reentry is detected by the mutex
//! itself (`EDEADLK` from `trylock` means "the caller holds it"), and the recursion
//! level is the `count` word of the shared state, written only by the holder.

use super::mutex::{self, Outcome, RawLock, Wait};
use super::shared::{Shared, SharedHandle, kind, shared_serde};
use super::{AcquireResult, OwnerDied, ReleaseError, TryAcquireError, TryAcquireResult};
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

/// A reentrant lock shared between processes: Python's `multiprocessing.RLock`, as a
/// cheaply cloneable, serializable handle.
///
/// The thread that holds it may acquire it again without blocking; it is released
/// when every level has been released. Acquiring comes in four forms, each returning
/// an [`RLockGuard`] that releases one level on drop. If the previous holder died
/// holding it, the acquirer gets it (at level 1) with an [`OwnerDied`] error wrapping
/// the guard (see the [module docs](super)). Only the holding thread may release.
///
/// # Examples
///
/// ```
/// use concur::process::sync::RLock;
///
/// let r = RLock::new()?;
/// let outer = r.acquire().unwrap();
/// let inner = r.acquire().unwrap(); // same thread: does not block
/// assert_eq!(r.count(), 2);
/// drop(inner);
/// drop(outer);
/// assert!(!r.locked());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct RLock {
    raw: RawLock,
}

impl RLock {
    /// Creates an unlocked reentrant lock in a shared memory page of its own.
    ///
    /// # Errors
    /// The OS error if the page cannot be created or mapped, or the mutex set up.
    ///
    /// ```
    /// let r = concur::process::sync::RLock::new()?;
    /// assert!(!r.locked() && !r.is_owned());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> io::Result<Self> {
        RawLock::create(kind::RLOCK).map(|raw| RLock { raw })
    }

    /// Blocks until the calling thread owns the lock (at once if it already does) and
    /// returns a guard that releases one level.
    ///
    /// # Errors
    /// [`OwnerDied`] (holding the guard) if the previous holder died holding the lock.
    ///
    /// # Panics
    /// If the recursion level would overflow `u32`.
    ///
    /// ```
    /// let r = concur::process::sync::RLock::new()?;
    /// let _g = r.acquire().unwrap();
    /// assert!(r.is_owned());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn acquire(&self) -> AcquireResult<RLockGuard<'_>> {
        match self.acquire_until(Wait::Until(None)) {
            Ok(g) => Ok(g),
            Err(TryAcquireError::OwnerDied(e)) => Err(e),
            Err(TryAcquireError::WouldBlock) => unreachable!("an unlimited wait returned"),
        }
    }

    /// Acquires the lock if the caller owns it or it is free, without blocking.
    ///
    /// # Errors
    /// [`TryAcquireError::WouldBlock`] if another thread holds it;
    /// [`TryAcquireError::OwnerDied`] if it was acquired from a dead holder.
    ///
    /// ```
    /// let r = concur::process::sync::RLock::new()?;
    /// let g = r.try_acquire().unwrap();
    /// let r2 = r.clone();
    /// assert!(std::thread::spawn(move || r2.try_acquire().is_err()).join().unwrap());
    /// drop(g);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn try_acquire(&self) -> TryAcquireResult<RLockGuard<'_>> {
        self.acquire_until(Wait::Now)
    }

    /// Blocks for at most `timeout`. A timeout too large to represent waits forever.
    ///
    /// # Errors
    /// As for [`try_acquire`](RLock::try_acquire), `WouldBlock` meaning "not within
    /// the timeout".
    ///
    /// ```
    /// use std::time::Duration;
    /// let r = concur::process::sync::RLock::new()?;
    /// let _g = r.acquire().unwrap();
    /// let r2 = r.clone();
    /// let got = std::thread::spawn(move || r2.acquire_timeout(Duration::from_millis(20)).is_ok());
    /// assert!(!got.join().unwrap());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn acquire_timeout(&self, timeout: Duration) -> TryAcquireResult<RLockGuard<'_>> {
        self.acquire_until(Wait::Until(concur_core::time::deadline_after(timeout)))
    }

    /// Blocks until `deadline` at the latest.
    ///
    /// # Errors
    /// As for [`acquire_timeout`](RLock::acquire_timeout).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let r = concur::process::sync::RLock::new()?;
    /// assert!(r.acquire_deadline(Instant::now() + Duration::from_secs(1)).is_ok());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn acquire_deadline(&self, deadline: Instant) -> TryAcquireResult<RLockGuard<'_>> {
        self.acquire_until(Wait::Until(Some(deadline)))
    }

    #[track_caller]
    fn acquire_until(&self, wait: Wait) -> TryAcquireResult<RLockGuard<'_>> {
        match self.raw.acquire(wait) {
            Outcome::Acquired { owner_died } => {
                self.raw.set_count(1);
                if owner_died {
                    Err(OwnerDied::new(self.guard()).into())
                } else {
                    Ok(self.guard())
                }
            }
            Outcome::HeldByCaller => {
                let c = self.raw.count().checked_add(1);
                self.raw
                    .set_count(c.expect("RLock recursion count overflow"));
                Ok(self.guard())
            }
            Outcome::Busy => Err(TryAcquireError::WouldBlock),
        }
    }

    fn guard(&self) -> RLockGuard<'_> {
        RLockGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }

    /// Releases one level of the caller's ownership, Python style (use it with
    /// [`RLockGuard::leak`]).
    ///
    /// # Errors
    /// [`ReleaseError::NotOwner`] if the calling thread does not own the lock, which
    /// includes the lock being free.
    ///
    /// ```
    /// use concur::process::sync::{RLock, ReleaseError};
    /// let r = RLock::new()?;
    /// r.acquire().unwrap().leak();
    /// r.release().unwrap();
    /// assert_eq!(r.release(), Err(ReleaseError::NotOwner));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn release(&self) -> Result<(), ReleaseError> {
        if !self.raw.held_by_me() {
            return Err(ReleaseError::NotOwner);
        }
        self.release_one();
        Ok(())
    }

    /// Releases one level; the caller owns the lock.
    fn release_one(&self) {
        let c = self.raw.count().saturating_sub(1);
        self.raw.set_count(c);
        if c == 0 {
            self.raw.release();
        }
    }

    /// Releases one level on behalf of a guard (if the level was not given back
    /// through `release` already).
    pub(crate) fn release_held(&self) {
        if self.raw.held_by_me() {
            self.release_one();
        }
    }

    /// Fully releases a lock the caller owns; returns the level to restore (Python's
    /// `_release_save`). For `Condition::wait`.
    pub(crate) fn release_save(&self) -> u32 {
        let c = self.raw.count();
        self.raw.set_count(0);
        self.raw.release();
        c
    }

    /// Blocks until the caller owns the lock again at level `count` (Python's
    /// `_acquire_restore`); true if a previous holder died meanwhile.
    pub(crate) fn acquire_restore(&self, count: u32) -> bool {
        match self.raw.acquire(Wait::Until(None)) {
            Outcome::Acquired { owner_died } => {
                self.raw.set_count(count);
                owner_died
            }
            other => unreachable!("restoring a released RLock: {other:?}"),
        }
    }

    /// Whether any thread of any process holds the lock (or died holding it) at this
    /// instant; compare [`is_owned`](RLock::is_owned).
    ///
    /// ```
    /// let r = concur::process::sync::RLock::new()?;
    /// assert!(!r.locked());
    /// let _g = r.acquire().unwrap();
    /// let r2 = r.clone();
    /// assert!(std::thread::spawn(move || r2.locked() && !r2.is_owned()).join().unwrap());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn locked(&self) -> bool {
        self.raw.locked()
    }

    /// Whether the calling thread holds the lock (Python's private `_is_owned`).
    ///
    /// ```
    /// let r = concur::process::sync::RLock::new()?;
    /// let _g = r.acquire().unwrap();
    /// assert!(r.is_owned());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_owned(&self) -> bool {
        self.raw.held_by_me()
    }

    /// The recursion level if the calling thread owns the lock, else 0 (Python's
    /// `_recursion_count`).
    ///
    /// ```
    /// let r = concur::process::sync::RLock::new()?;
    /// let (_a, _b) = (r.acquire().unwrap(), r.acquire().unwrap());
    /// assert_eq!(r.count(), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn count(&self) -> usize {
        if self.raw.held_by_me() {
            self.raw.count() as usize
        } else {
            0
        }
    }

    /// True if both handles refer to the same lock.
    ///
    /// ```
    /// let a = concur::process::sync::RLock::new()?;
    /// assert!(a.ptr_eq(&a.clone()));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ptr_eq(&self, other: &Self) -> bool {
        self.raw.same(&other.raw)
    }
}

impl SharedHandle for RLock {
    type State = mutex::MutexState;
    const KIND: u32 = kind::RLOCK;
    fn shared(&self) -> &Shared<Self::State> {
        self.raw.shared()
    }
    fn from_shared(shared: Shared<Self::State>) -> Self {
        RLock {
            raw: RawLock::from_shared(shared),
        }
    }
}

shared_serde!(RLock);

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock")
            .field("locked", &self.locked())
            .field("owner_tid", &self.raw.owner())
            .finish_non_exhaustive()
    }
}

/// Proof that the calling thread holds one level of an [`RLock`]; releases that level
/// when dropped. Not `Send`: only the owner may release.
///
/// ```
/// let r = concur::process::sync::RLock::new()?;
/// let outer = r.acquire().unwrap();
/// let inner = r.acquire().unwrap();
/// drop(inner);
/// assert_eq!(r.count(), 1);
/// drop(outer);
/// assert!(!r.locked());
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// A guard cannot move to another thread (the C library requires the owner to unlock):
///
/// ```compile_fail
/// fn send<T: Send>(_: T) {}
/// let lock = concur::process::sync::RLock::new().unwrap();
/// send(lock.acquire().unwrap());
/// ```
#[must_use = "the level is released as soon as the guard is dropped"]
pub struct RLockGuard<'a> {
    lock: &'a RLock,
    _not_send: PhantomData<*const ()>,
}

impl<'a> RLockGuard<'a> {
    /// The lock this guard holds.
    ///
    /// ```
    /// let r = concur::process::sync::RLock::new()?;
    /// let g = r.acquire().unwrap();
    /// assert!(g.lock().ptr_eq(&r) && g.lock().is_owned());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn lock(&self) -> &'a RLock {
        self.lock
    }

    /// Gives up the guard but keeps the level held, Python style: the owning thread
    /// must call [`RLock::release`] later.
    ///
    /// ```
    /// let r = concur::process::sync::RLock::new()?;
    /// r.acquire().unwrap().leak();
    /// assert_eq!(r.count(), 1);
    /// r.release().unwrap();
    /// assert!(!r.locked());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn leak(self) {
        std::mem::forget(self);
    }
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        self.lock.release_held();
    }
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLockGuard")
            .field("lock", self.lock)
            .finish()
    }
}
