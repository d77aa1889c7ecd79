//! `Lock`: Python's `multiprocessing.Lock`, robust and process-shared.

use super::mutex::{self, Outcome, RawLock, Wait};
use super::shared::{Shared, SharedHandle, kind, shared_serde};
use super::{AcquireResult, OwnerDied, ReleaseError, TryAcquireError, TryAcquireResult};
use crate::block::SharedMemory;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

/// A mutual-exclusion lock shared between processes: Python's
/// `multiprocessing.Lock`, as a cheaply cloneable, serializable handle.
///
/// Acquiring blocks in one of four forms — [`acquire`](Lock::acquire),
/// [`try_acquire`](Lock::try_acquire), [`acquire_timeout`](Lock::acquire_timeout),
/// [`acquire_deadline`](Lock::acquire_deadline) — and returns a [`LockGuard`] that
/// releases on drop. If the previous holder died holding the lock, the acquirer gets it
/// with an [`OwnerDied`] error wrapping the guard (see the [module docs](super)).
///
/// Not reentrant: acquiring it again from the thread that holds it is refused
/// (`acquire` panics instead of deadlocking; the other forms report
/// [`TryAcquireError::WouldBlock`]). Only the holding thread can release it.
///
/// # Examples
///
/// ```
/// use concur::process::sync::Lock;
///
/// let lock = Lock::new()?;
/// let g = lock.acquire().unwrap();
/// assert!(lock.locked());
/// assert!(lock.try_acquire().is_err()); // held
/// drop(g);
/// assert!(lock.try_acquire().is_ok());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Lock {
    raw: RawLock,
}

impl Lock {
    /// Creates an unlocked lock in a shared memory page of its own.
    ///
    /// # Errors
    /// The OS error if the page cannot be created or mapped, or the mutex set up.
    ///
    /// ```
    /// let lock = concur::process::sync::Lock::new()?;
    /// assert!(!lock.locked());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> io::Result<Self> {
        RawLock::create(kind::LOCK).map(|raw| Lock { raw })
    }

    /// A lock inside the fresh block `mem` at `offset` (a `Value`'s own lock).
    pub(crate) fn create_at(mem: SharedMemory, offset: usize) -> io::Result<Self> {
        RawLock::create_at(mem, offset, kind::LOCK).map(|raw| Lock { raw })
    }

    /// Attaches to the lock at `offset` of `mem`.
    pub(crate) fn attach(mem: SharedMemory, offset: usize) -> io::Result<Self> {
        Shared::attach(mem, offset, kind::LOCK).map(Self::from_shared)
    }

    /// Blocks until the lock is acquired and returns the guard that releases it.
    ///
    /// # Errors
    /// [`OwnerDied`] (holding the guard: the lock *is* acquired) if the previous holder
    /// died holding it.
    ///
    /// # Panics
    /// If the calling thread already holds the lock: waiting would never end.
    ///
    /// ```
    /// let lock = concur::process::sync::Lock::new()?;
    /// let g = lock.acquire().expect("no holder died");
    /// assert!(lock.locked());
    /// drop(g);
    /// assert!(!lock.locked());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn acquire(&self) -> AcquireResult<LockGuard<'_>> {
        match self.acquire_until(Wait::Until(None)) {
            Ok(g) => Ok(g),
            Err(TryAcquireError::OwnerDied(e)) => Err(e),
            Err(TryAcquireError::WouldBlock) => panic!(
                "deadlock: the calling thread already holds this process-shared Lock \
                 (use an RLock for reentrant locking)"
            ),
        }
    }

    /// Acquires the lock if it is free right now (Python's `acquire(block=False)`).
    ///
    /// # Errors
    /// [`TryAcquireError::WouldBlock`] if it is held (also by the calling thread);
    /// [`TryAcquireError::OwnerDied`] if it was acquired from a dead holder.
    ///
    /// ```
    /// let lock = concur::process::sync::Lock::new()?;
    /// let g = lock.try_acquire().unwrap();
    /// assert!(lock.try_acquire().is_err());
    /// drop(g);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_acquire(&self) -> TryAcquireResult<LockGuard<'_>> {
        self.acquire_until(Wait::Now)
    }

    /// Blocks for at most `timeout`. A timeout too large to represent waits forever.
    ///
    /// # Errors
    /// As for [`try_acquire`](Lock::try_acquire), `WouldBlock` meaning "not within
    /// the timeout".
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let lock = concur::process::sync::Lock::new()?;
    /// let _g = lock.acquire().unwrap();
    /// let start = Instant::now();
    /// assert!(lock.acquire_timeout(Duration::from_millis(30)).is_err());
    /// assert!(start.elapsed() >= Duration::from_millis(30));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> TryAcquireResult<LockGuard<'_>> {
        self.acquire_until(Wait::Until(concur_core::time::deadline_after(timeout)))
    }

    /// Blocks until `deadline` at the latest.
    ///
    /// # Errors
    /// As for [`acquire_timeout`](Lock::acquire_timeout).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let lock = concur::process::sync::Lock::new()?;
    /// assert!(lock.acquire_deadline(Instant::now() + Duration::from_secs(1)).is_ok());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn acquire_deadline(&self, deadline: Instant) -> TryAcquireResult<LockGuard<'_>> {
        self.acquire_until(Wait::Until(Some(deadline)))
    }

    fn acquire_until(&self, wait: Wait) -> TryAcquireResult<LockGuard<'_>> {
        match self.raw.acquire(wait) {
            Outcome::Acquired { owner_died: false } => Ok(self.guard()),
            Outcome::Acquired { owner_died: true } => Err(OwnerDied::new(self.guard()).into()),
            Outcome::Busy => Err(TryAcquireError::WouldBlock),
            Outcome::HeldByCaller => {
                // Held by this very thread: it cannot become free before the deadline.
                if let Wait::Until(Some(d)) = wait {
                    super::sleep_until(d);
                }
                Err(TryAcquireError::WouldBlock)
            }
        }
    }

    fn guard(&self) -> LockGuard<'_> {
        LockGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }

    /// Releases the lock acquired by the calling thread without a guard (after
    /// [`LockGuard::leak`]), Python style.
    ///
    /// # Errors
    /// [`ReleaseError::NotLocked`] if the lock is free; [`ReleaseError::NotOwner`] if
    /// another thread or process holds it, or if the calling thread lent the memory
    /// it protects out (inside [`Array::with_lock`](crate::shm::Array::with_lock)).
    ///
    /// ```
    /// use concur::process::sync::{Lock, ReleaseError};
    /// let lock = Lock::new()?;
    /// lock.acquire().unwrap().leak();
    /// assert!(lock.locked());
    /// lock.release().unwrap();
    /// assert_eq!(lock.release(), Err(ReleaseError::NotLocked));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn release(&self) -> Result<(), ReleaseError> {
        if mutex::is_lock_lent(self.raw.key()) || (!self.raw.held_by_me() && self.raw.locked()) {
            return Err(ReleaseError::NotOwner);
        }
        if self.raw.release() {
            Ok(())
        } else {
            Err(ReleaseError::NotLocked)
        }
    }

    /// Whether the lock is held at this instant, by any thread of any process
    /// (Python's `locked()`). A lock whose holder died counts as held until someone
    /// acquires it.
    ///
    /// ```
    /// let lock = concur::process::sync::Lock::new()?;
    /// assert!(!lock.locked());
    /// let _g = lock.acquire().unwrap();
    /// assert!(lock.locked());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn locked(&self) -> bool {
        self.raw.locked()
    }

    /// True if both handles refer to the same lock (even one received from another
    /// process).
    ///
    /// ```
    /// use concur::process::sync::Lock;
    /// let a = Lock::new()?;
    /// assert!(a.ptr_eq(&a.clone()));
    /// assert!(!a.ptr_eq(&Lock::new()?));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ptr_eq(&self, other: &Self) -> bool {
        self.raw.same(&other.raw)
    }

    pub(crate) fn raw(&self) -> &RawLock {
        &self.raw
    }

    /// Releases on behalf of a guard (or a `Condition` that owns the acquisition).
    pub(crate) fn release_held(&self) {
        self.raw.release();
    }

    /// Acquisition for a plain copy of the data at `data` under the lock (`Value::get`
    /// and friends): a guard, or `None` if the calling thread already holds the lock
    /// (through a guard or a `with_lock` on other data; that hold then protects the
    /// copy). A dead previous holder is logged, not reported.
    ///
    /// # Panics
    /// If the calling thread is inside `with_lock` on this very data (the copy would
    /// alias the lent `&mut`).
    #[track_caller]
    pub(crate) fn acquire_for_copy(&self, data: mutex::Key) -> Option<LockGuard<'_>> {
        match self.acquire_until(Wait::Until(None)) {
            Ok(g) => Some(g),
            Err(TryAcquireError::OwnerDied(e)) => {
                tracing::warn!("shared value's lock recovered from a dead holder");
                Some(e.into_inner())
            }
            Err(TryAcquireError::WouldBlock) => {
                assert!(
                    !mutex::is_data_lent(data),
                    "shared value accessed inside its own `with_lock`: use the reference \
                     given to the closure"
                );
                None
            }
        }
    }

    /// Runs `f` holding the lock, with the data at `data` marked lent (see `release`
    /// and `acquire_for_copy`).
    ///
    /// # Panics
    /// If the calling thread already holds the lock.
    #[track_caller]
    pub(crate) fn exclusive<R>(
        &self,
        data: mutex::Key,
        f: impl FnOnce() -> R,
    ) -> Result<R, OwnerDied<R>> {
        let (guard, died) = match self.acquire() {
            Ok(g) => (g, false),
            Err(e) => (e.into_inner(), true),
        };
        let r = mutex::lend(self.raw.key(), data, f);
        drop(guard);
        if died { Err(OwnerDied::new(r)) } else { Ok(r) }
    }
}

impl SharedHandle for Lock {
    type State = mutex::MutexState;
    const KIND: u32 = kind::LOCK;
    fn shared(&self) -> &Shared<Self::State> {
        self.raw.shared()
    }
    fn from_shared(shared: Shared<Self::State>) -> Self {
        Lock {
            raw: RawLock::from_shared(shared),
        }
    }
}

shared_serde!(Lock);

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.locked())
            .finish_non_exhaustive()
    }
}

/// Proof that the calling thread holds a [`Lock`]; releases it when dropped.
///
/// Not `Send`: a process-shared lock must be released by the thread that acquired it.
///
/// ```
/// let lock = concur::process::sync::Lock::new()?;
/// {
///     let g = lock.acquire().unwrap();
///     assert!(g.lock().ptr_eq(&lock));
/// } // released here
/// assert!(!lock.locked());
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// A guard cannot move to another thread (the C library requires the owner to unlock):
///
/// ```compile_fail
/// fn send<T: Send>(_: T) {}
/// let lock = concur::process::sync::Lock::new().unwrap();
/// send(lock.acquire().unwrap());
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
    _not_send: PhantomData<*const ()>,
}

impl<'a> LockGuard<'a> {
    /// The lock this guard holds.
    ///
    /// ```
    /// let lock = concur::process::sync::Lock::new()?;
    /// let g = lock.acquire().unwrap();
    /// assert!(g.lock().locked());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn lock(&self) -> &'a Lock {
        self.lock
    }

    /// Gives up the guard but keeps the lock held, Python style: the same thread must
    /// call [`Lock::release`] later.
    ///
    /// ```
    /// let lock = concur::process::sync::Lock::new()?;
    /// lock.acquire().unwrap().leak();
    /// assert!(lock.locked());
    /// lock.release().unwrap();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn leak(self) {
        std::mem::forget(self);
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        self.lock.release_held();
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("lock", self.lock)
            .finish()
    }
}
