//! `RLock`: Python's `threading.RLock`, a reentrant lock owned by one thread at a time.
//!
//! Built on [`RawLock`] plus two atomics: `owner` (the owning thread's
//! [`get_ident`](crate::thread::get_ident), 0 when free) and `count` (the recursion
//! level). Only the owning thread ever writes either while it owns the lock, and a
//! thread only ever finds its own ident in `owner` if it stored it there itself, so
//! both are accessed with `Relaxed` ordering; the `RawLock` orders the hand-over
//! between owners (Acquire on lock, Release on unlock).

use super::ReleaseError;
use super::watched::WatchedLock;
use crate::ident::get_ident;
use crate::shim::Arc;
use crate::shim::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

/// A reentrant lock: Python's `threading.RLock`, as a cheaply cloneable handle.
///
/// The thread that holds it may acquire it again without blocking; it is released
/// when every acquisition has been released. Other threads block in one of four forms:
/// [`acquire`](RLock::acquire), [`try_acquire`](RLock::try_acquire),
/// [`acquire_timeout`](RLock::acquire_timeout) and
/// [`acquire_deadline`](RLock::acquire_deadline), each returning an [`RLockGuard`] that
/// releases one level on drop. Unlike a [`Lock`](super::Lock), only the owner may
/// release it.
///
/// # Examples
///
/// ```
/// use concur::sync::RLock;
///
/// let r = RLock::new();
/// let outer = r.acquire();
/// let inner = r.acquire(); // same thread: does not block
/// assert_eq!(r.count(), 2);
/// drop(inner);
/// drop(outer);
/// assert!(!r.locked());
/// ```
pub struct RLock {
    inner: Arc<Inner>,
}

struct Inner {
    lock: WatchedLock,
    owner: AtomicU64,
    count: AtomicUsize,
}

impl RLock {
    /// Creates an unlocked reentrant lock, like `threading.RLock()`.
    ///
    /// ```
    /// let r = concur::sync::RLock::new();
    /// assert!(!r.locked() && !r.is_owned());
    /// ```
    #[track_caller]
    #[must_use]
    pub fn new() -> Self {
        Self::build(None)
    }

    /// Creates an unlocked reentrant lock named `name` (names appear in deadlock
    /// reports).
    ///
    /// ```
    /// let r = concur::sync::RLock::named("config");
    /// assert_eq!(r.name(), Some("config"));
    /// ```
    #[track_caller]
    #[must_use]
    pub fn named(name: impl Into<String>) -> Self {
        Self::build(Some(name.into().into_boxed_str()))
    }

    #[track_caller]
    fn build(name: Option<Box<str>>) -> Self {
        RLock {
            inner: Arc::new(Inner {
                // Watched by the deadlock detector iff it is on now (watched.rs).
                lock: WatchedLock::new("RLock", name),
                owner: AtomicU64::new(0),
                count: AtomicUsize::new(0),
            }),
        }
    }

    /// Blocks until the calling thread owns the lock (at once if it already does) and
    /// returns a guard that releases one level.
    ///
    /// # Panics
    /// In deadlock-detection panic mode, if taking this lock would close a lock-order
    /// cycle or a wait-for cycle; also if the recursion count would overflow `usize`.
    ///
    /// ```
    /// let r = concur::sync::RLock::new();
    /// let _g = r.acquire();
    /// assert!(r.is_owned());
    /// ```
    #[inline]
    pub fn acquire(&self) -> RLockGuard<'_> {
        self.acquire_until(None).expect("no deadline")
    }

    /// Acquires the lock if the caller owns it or it is free, without blocking.
    ///
    /// ```
    /// let r = concur::sync::RLock::new();
    /// let g = r.try_acquire().expect("free");
    /// let r2 = r.clone();
    /// assert!(std::thread::spawn(move || r2.try_acquire().is_none()).join().unwrap());
    /// drop(g);
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Option<RLockGuard<'_>> {
        let me = get_ident();
        if self.reenter(me) {
            return Some(self.guard());
        }
        if self.inner.lock.try_lock() {
            self.take(me, 1);
            Some(self.guard())
        } else {
            None
        }
    }

    /// Blocks for at most `timeout`; `None` if another thread kept the lock that long.
    /// A timeout too large to represent waits forever.
    ///
    /// ```
    /// use std::time::Duration;
    /// let r = concur::sync::RLock::new();
    /// let _g = r.acquire();
    /// let r2 = r.clone();
    /// let got = std::thread::spawn(move || r2.acquire_timeout(Duration::from_millis(20)).is_some());
    /// assert!(!got.join().unwrap());
    /// ```
    #[inline]
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<RLockGuard<'_>> {
        self.acquire_until(crate::time::deadline_after(timeout))
    }

    /// Blocks until `deadline` at the latest; `None` if the lock was not acquired.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let r = concur::sync::RLock::new();
    /// assert!(r.acquire_deadline(Instant::now() + Duration::from_secs(1)).is_some());
    /// ```
    #[inline]
    pub fn acquire_deadline(&self, deadline: Instant) -> Option<RLockGuard<'_>> {
        self.acquire_until(Some(deadline))
    }

    #[inline]
    fn acquire_until(&self, deadline: Option<Instant>) -> Option<RLockGuard<'_>> {
        let me = get_ident();
        if self.reenter(me) {
            return Some(self.guard());
        }
        if self.lock_raw(deadline) {
            self.take(me, 1);
            Some(self.guard())
        } else {
            None
        }
    }

    /// Takes the underlying lock (first acquisition), with the deadlock hooks.
    #[inline]
    fn lock_raw(&self, deadline: Option<Instant>) -> bool {
        self.inner.lock.lock(deadline)
    }

    /// If `me` owns the lock, adds one level and returns true.
    #[inline]
    fn reenter(&self, me: u64) -> bool {
        if self.inner.owner.load(Ordering::Relaxed) == me {
            let c = self.inner.count.load(Ordering::Relaxed);
            let c = c.checked_add(1).expect("RLock recursion count overflow");
            self.inner.count.store(c, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    #[inline]
    fn take(&self, me: u64, count: usize) {
        self.inner.owner.store(me, Ordering::Relaxed);
        self.inner.count.store(count, Ordering::Relaxed);
    }

    #[inline]
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
    /// includes the lock being free (Python: "cannot release un-acquired lock").
    ///
    /// ```
    /// use concur::sync::{RLock, ReleaseError};
    /// let r = RLock::new();
    /// r.acquire().leak();
    /// r.release().unwrap();
    /// assert_eq!(r.release(), Err(ReleaseError::NotOwner));
    /// ```
    pub fn release(&self) -> Result<(), ReleaseError> {
        if self.inner.owner.load(Ordering::Relaxed) != get_ident() {
            return Err(ReleaseError::NotOwner);
        }
        self.release_one();
        Ok(())
    }

    /// Releases one level; the caller owns the lock.
    #[inline]
    fn release_one(&self) {
        let c = self.inner.count.load(Ordering::Relaxed) - 1;
        self.inner.count.store(c, Ordering::Relaxed);
        if c == 0 {
            self.inner.owner.store(0, Ordering::Relaxed);
            self.unlock_raw();
        }
    }

    /// Gives the underlying lock up (last level), with the deadlock hook.
    #[inline]
    fn unlock_raw(&self) {
        self.inner.lock.unlock();
    }

    /// Fully releases a lock the caller owns; returns the recursion count to restore
    /// (Python's `_release_save`). For `Condition::wait`.
    pub(crate) fn release_save(&self) -> usize {
        debug_assert!(self.is_owned());
        let c = self.inner.count.load(Ordering::Relaxed);
        self.inner.count.store(0, Ordering::Relaxed);
        self.inner.owner.store(0, Ordering::Relaxed);
        self.unlock_raw();
        c
    }

    /// Blocks until the caller owns the lock again at recursion level `count`
    /// (Python's `_acquire_restore`).
    pub(crate) fn acquire_restore(&self, count: usize) {
        self.lock_raw(None);
        self.take(get_ident(), count);
    }

    /// Releases one level on behalf of a guard or a `ConditionGuard`.
    #[inline]
    pub(crate) fn release_held(&self) {
        // A level already given back through `release` has nothing left to release.
        if self.is_owned() {
            self.release_one();
        }
    }

    /// Whether any thread holds the lock at this instant (compare
    /// [`is_owned`](RLock::is_owned): whether the calling thread does).
    ///
    /// ```
    /// let r = concur::sync::RLock::new();
    /// assert!(!r.locked());
    /// let _g = r.acquire();
    /// let r2 = r.clone();
    /// assert!(std::thread::spawn(move || r2.locked() && !r2.is_owned()).join().unwrap());
    /// ```
    #[inline]
    pub fn locked(&self) -> bool {
        self.inner.lock.is_locked()
    }

    /// Whether the calling thread holds the lock (Python's private `_is_owned`).
    ///
    /// ```
    /// let r = concur::sync::RLock::new();
    /// let _g = r.acquire();
    /// let r2 = r.clone();
    /// assert!(r.is_owned());
    /// assert!(!std::thread::spawn(move || r2.is_owned()).join().unwrap());
    /// ```
    #[inline]
    pub fn is_owned(&self) -> bool {
        self.inner.owner.load(Ordering::Relaxed) == get_ident()
    }

    /// The recursion level if the calling thread owns the lock, else 0 (Python's
    /// `_recursion_count`).
    ///
    /// ```
    /// let r = concur::sync::RLock::new();
    /// let (_a, _b) = (r.acquire(), r.acquire());
    /// assert_eq!(r.count(), 2);
    /// ```
    #[inline]
    pub fn count(&self) -> usize {
        if self.is_owned() {
            self.inner.count.load(Ordering::Relaxed)
        } else {
            0
        }
    }

    /// The name given through [`RLock::named`], if any.
    ///
    /// ```
    /// use concur::sync::RLock;
    /// assert_eq!(RLock::named("A").name(), Some("A"));
    /// assert_eq!(RLock::new().name(), None);
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.inner.lock.meta().name.as_deref()
    }

    /// True if both handles refer to the same lock.
    ///
    /// ```
    /// let a = concur::sync::RLock::new();
    /// assert!(a.ptr_eq(&a.clone()));
    /// ```
    pub fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Default for RLock {
    #[track_caller]
    fn default() -> Self {
        Self::new()
    }
}

impl Clone for RLock {
    fn clone(&self) -> Self {
        RLock {
            inner: self.inner.clone(),
        }
    }
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock")
            .field("name", &self.name())
            .field("locked", &self.locked())
            .field("owner", &self.inner.owner.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Proof that the current thread holds one level of an [`RLock`]; releases that level
/// when dropped. Not `Send`: only the owner may release.
///
/// ```
/// let r = concur::sync::RLock::new();
/// let outer = r.acquire();
/// let inner = r.acquire();
/// drop(inner); // one level released
/// assert_eq!(r.count(), 1);
/// drop(outer); // the last one: the lock is free
/// assert!(!r.locked());
/// ```
#[must_use = "the level is released as soon as the guard is dropped"]
pub struct RLockGuard<'a> {
    lock: &'a RLock,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a shared guard only exposes `lock()`, a `&RLock`, which is `Sync`.
unsafe impl Sync for RLockGuard<'_> {}

impl<'a> RLockGuard<'a> {
    /// The lock this guard holds.
    ///
    /// ```
    /// let r = concur::sync::RLock::new();
    /// let g = r.acquire();
    /// assert!(g.lock().ptr_eq(&r) && g.lock().is_owned());
    /// ```
    pub fn lock(&self) -> &'a RLock {
        self.lock
    }

    /// Gives up the guard but keeps the level held, Python style: the owning thread
    /// must call [`RLock::release`] later.
    ///
    /// ```
    /// let r = concur::sync::RLock::new();
    /// r.acquire().leak();
    /// assert_eq!(r.count(), 1);
    /// r.release().unwrap();
    /// assert!(!r.locked());
    /// ```
    pub fn leak(self) {
        std::mem::forget(self);
    }
}

impl Drop for RLockGuard<'_> {
    #[inline]
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
