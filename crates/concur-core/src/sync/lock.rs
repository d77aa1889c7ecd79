//! `Lock`: Python's `threading.Lock`, optionally guarding a value.

use super::ReleaseError;
use super::watched::WatchedLock;
use crate::shim::Arc;
use std::cell::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

/// A mutual-exclusion lock: Python's `threading.Lock`, as a cheaply cloneable handle.
///
/// Every clone is a handle to the same lock, so a `Lock` is passed to threads the way a
/// Python lock is passed as an argument. `Lock::new()` guards no data, exactly like
/// Python's; [`Lock::with_value`] makes a lock whose guard dereferences to the value
/// it protects, the Rust way.
///
/// Acquiring blocks in one of four forms: [`acquire`](Lock::acquire) (until it is
/// free), [`try_acquire`](Lock::try_acquire) (never), [`acquire_timeout`](Lock::acquire_timeout)
/// and [`acquire_deadline`](Lock::acquire_deadline). Each returns a [`LockGuard`] that
/// releases on drop. As in Python, a dataless lock has no owner: it may be released
/// by any thread with [`release`](Lock::release) (after [`LockGuard::leak`]), and
/// releasing it when it is not locked is an error, not undefined behaviour.
///
/// The lock is eventually fair (after the algorithm of `parking_lot`): a thread that
/// has waited ~0.5 ms gets the lock handed to it directly, so no waiter starves.
/// A lock created while deadlock detection is on (see [`crate::deadlock`]) has every
/// acquisition checked for lock-order inversions and wait-for cycles; a lock created
/// while it is off pays nothing for it: its fast paths are a single compare-and-swap.
///
/// # Examples
///
/// ```
/// use concur::sync::Lock;
/// use std::thread;
///
/// let lock = Lock::with_value(0i64);
/// let handles: Vec<_> = (0..2)
///     .map(|i| {
///         let lock = lock.clone();
///         thread::spawn(move || {
///             for _ in 0..1000 {
///                 *lock.acquire() += if i == 0 { 100 } else { -100 };
///             }
///         })
///     })
///     .collect();
/// for h in handles {
///     h.join().unwrap();
/// }
/// assert_eq!(*lock.acquire(), 0);
/// ```
pub struct Lock<T: ?Sized = ()> {
    inner: Arc<Inner<T>>,
}

struct Inner<T: ?Sized> {
    lock: WatchedLock,
    value: UnsafeCell<T>,
}

// SAFETY: the lock hands out `&mut T` to one thread at a time and moves no `T` between
// threads except through that exclusive access, so `T: Send` suffices, as for
// `std::sync::Mutex`.
unsafe impl<T: ?Sized + Send> Send for Inner<T> {}
// SAFETY: as above; shared `&Lock` only gives access to `T` through the lock.
unsafe impl<T: ?Sized + Send> Sync for Inner<T> {}

impl Lock<()> {
    /// Creates an unlocked lock guarding nothing, like `threading.Lock()`.
    ///
    /// ```
    /// let lock = concur::sync::Lock::new();
    /// assert!(!lock.locked());
    /// ```
    #[track_caller]
    #[must_use]
    pub fn new() -> Self {
        Self::build((), None)
    }

    /// Releases the lock, whichever thread acquired it, like Python's `release()`.
    ///
    /// Use it with a guard given up through [`LockGuard::leak`]; releasing a lock whose
    /// guard is still alive makes that guard release it a second time (an error is then
    /// impossible to report, so the second release is ignored if the lock is free).
    ///
    /// # Errors
    /// [`ReleaseError::NotLocked`] if the lock is not locked.
    ///
    /// ```
    /// use concur::sync::{Lock, ReleaseError};
    /// let lock = Lock::new();
    /// lock.acquire().leak();                 // held, with no guard
    /// let l2 = lock.clone();
    /// std::thread::spawn(move || l2.release()).join().unwrap().unwrap();
    /// assert!(!lock.locked());
    /// assert_eq!(lock.release(), Err(ReleaseError::NotLocked));
    /// ```
    pub fn release(&self) -> Result<(), ReleaseError> {
        if self.inner.lock.try_unlock() {
            Ok(())
        } else {
            Err(ReleaseError::NotLocked)
        }
    }
}

impl Lock<()> {
    /// A builder for a named lock (names appear in deadlock reports).
    ///
    /// ```
    /// let a = concur::sync::Lock::builder().name("A").build();
    /// assert_eq!(a.name(), Some("A"));
    /// ```
    pub fn builder() -> LockBuilder {
        LockBuilder { name: None }
    }
}

impl Default for Lock<()> {
    #[track_caller]
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Lock<T> {
    /// Creates an unlocked lock guarding `value`; its guards dereference to it.
    ///
    /// ```
    /// let names = concur::sync::Lock::with_value(Vec::<String>::new());
    /// names.acquire().push("A".into());
    /// assert_eq!(names.acquire().len(), 1);
    /// ```
    #[track_caller]
    #[must_use]
    pub fn with_value(value: T) -> Self {
        Self::build(value, None)
    }

    #[track_caller]
    fn build(value: T, name: Option<Box<str>>) -> Self {
        Lock {
            inner: Arc::new(Inner {
                lock: WatchedLock::new("Lock", name),
                value: UnsafeCell::new(value),
            }),
        }
    }
}

/// Builds a [`Lock`] with a name; made by [`Lock::builder`].
///
/// ```
/// use concur::sync::Lock;
/// let plain = Lock::builder().name("plain").build();
/// let guarded = Lock::builder().name("counter").build_with(0u32);
/// assert_eq!((plain.name(), guarded.name()), (Some("plain"), Some("counter")));
/// *guarded.acquire() += 1;
/// assert_eq!(*guarded.acquire(), 1);
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct LockBuilder {
    name: Option<Box<str>>,
}

impl LockBuilder {
    /// Names the lock; deadlock reports use the name instead of the creation site.
    ///
    /// ```
    /// let lock = concur::sync::Lock::builder().name("config").build();
    /// assert_eq!(lock.name(), Some("config"));
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into().into_boxed_str());
        self
    }

    /// A dataless lock, unlocked, like [`Lock::new`].
    ///
    /// ```
    /// let lock = concur::sync::Lock::builder().build();
    /// assert_eq!(lock.name(), None);
    /// assert!(!lock.locked());
    /// ```
    #[track_caller]
    pub fn build(self) -> Lock<()> {
        Lock::build((), self.name)
    }

    /// A lock guarding `value`, unlocked, like [`Lock::with_value`].
    ///
    /// ```
    /// let names = concur::sync::Lock::builder().name("names").build_with(vec!["A"]);
    /// names.acquire().push("B");
    /// assert_eq!(*names.acquire(), ["A", "B"]);
    /// ```
    #[track_caller]
    pub fn build_with<T>(self, value: T) -> Lock<T> {
        Lock::build(value, self.name)
    }
}

impl<T: ?Sized> Lock<T> {
    /// Blocks until the lock is acquired and returns the guard that releases it.
    ///
    /// # Panics
    /// In deadlock-detection panic mode, if taking this lock would close a lock-order
    /// cycle or a wait-for cycle (nothing is acquired then).
    ///
    /// ```
    /// use concur::sync::Lock;
    /// let lock = Lock::with_value(1);
    /// let mut g = lock.acquire();
    /// *g += 1;
    /// assert!(lock.locked());
    /// drop(g); // releases
    /// assert!(!lock.locked());
    /// assert_eq!(*lock.acquire(), 2);
    /// ```
    #[inline]
    pub fn acquire(&self) -> LockGuard<'_, T> {
        self.inner.lock.lock(None);
        LockGuard { lock: self }
    }

    /// Acquires the lock if it is free at once (Python's `acquire(blocking=False)`).
    ///
    /// ```
    /// let lock = concur::sync::Lock::new();
    /// let g = lock.try_acquire().expect("free");
    /// assert!(lock.try_acquire().is_none());
    /// drop(g);
    /// assert!(lock.try_acquire().is_some());
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Option<LockGuard<'_, T>> {
        if self.inner.lock.try_lock() {
            Some(LockGuard { lock: self })
        } else {
            None
        }
    }

    /// Blocks for at most `timeout`; `None` if the lock could not be acquired in time.
    /// A timeout too large to represent waits forever.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let lock = concur::sync::Lock::new();
    /// let _held = lock.acquire();
    /// let start = Instant::now();
    /// assert!(lock.acquire_timeout(Duration::from_millis(50)).is_none());
    /// assert!(start.elapsed() >= Duration::from_millis(50));
    /// ```
    #[inline]
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<LockGuard<'_, T>> {
        self.acquire_until(crate::time::deadline_after(timeout))
    }

    /// Blocks until `deadline` at the latest; `None` if the lock was not acquired.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let lock = concur::sync::Lock::new();
    /// assert!(lock.acquire_deadline(Instant::now() + Duration::from_secs(1)).is_some());
    /// ```
    #[inline]
    pub fn acquire_deadline(&self, deadline: Instant) -> Option<LockGuard<'_, T>> {
        self.acquire_until(Some(deadline))
    }

    #[inline]
    fn acquire_until(&self, deadline: Option<Instant>) -> Option<LockGuard<'_, T>> {
        if self.inner.lock.lock(deadline) {
            Some(LockGuard { lock: self })
        } else {
            None
        }
    }

    /// Whether the lock is held at this instant (Python's `locked()`), by any thread.
    ///
    /// ```
    /// let lock = concur::sync::Lock::new();
    /// assert!(!lock.locked());
    /// let _g = lock.acquire();
    /// assert!(lock.locked());
    /// ```
    #[inline]
    pub fn locked(&self) -> bool {
        self.inner.lock.is_locked()
    }

    /// The name given through [`Lock::builder`], if any.
    ///
    /// ```
    /// use concur::sync::Lock;
    /// assert_eq!(Lock::builder().name("A").build().name(), Some("A"));
    /// assert_eq!(Lock::new().name(), None);
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.inner.lock.meta().name.as_deref()
    }

    /// True if both handles refer to the same lock.
    ///
    /// ```
    /// let a = concur::sync::Lock::new();
    /// assert!(a.ptr_eq(&a.clone()));
    /// assert!(!a.ptr_eq(&concur::sync::Lock::new()));
    /// ```
    pub fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Releases on behalf of a guard (or of a `Condition` that owns the acquisition).
    #[inline]
    pub(crate) fn unlock_held(&self) {
        self.inner.lock.unlock();
    }
}

impl<T: ?Sized> Clone for Lock<T> {
    fn clone(&self) -> Self {
        Lock {
            inner: self.inner.clone(),
        }
    }
}

impl<T: ?Sized> fmt::Debug for Lock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("name", &self.name())
            .field("locked", &self.locked())
            .finish_non_exhaustive()
    }
}

/// Proof that a [`Lock`] is held; releases it when dropped.
///
/// Dereferences to the guarded value (`()` for a [`Lock::new`] lock).
///
/// ```
/// use concur::sync::Lock;
/// let lock = Lock::with_value(String::from("a"));
/// {
///     let mut g = lock.acquire();
///     g.push('b'); // DerefMut to the value
///     assert_eq!(g.len(), 2);
/// } // released here
/// assert!(!lock.locked());
/// assert_eq!(*lock.acquire(), "ab");
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a, T: ?Sized = ()> {
    lock: &'a Lock<T>,
}

// SAFETY: a guard gives `&T` access from whichever thread holds it, so sharing it needs
// `T: Sync`, as for `std::sync::MutexGuard`.
unsafe impl<T: ?Sized + Sync> Sync for LockGuard<'_, T> {}

impl<'a, T: ?Sized> LockGuard<'a, T> {
    /// The lock this guard holds.
    ///
    /// ```
    /// let lock = concur::sync::Lock::new();
    /// let g = lock.acquire();
    /// assert!(g.lock().ptr_eq(&lock) && g.lock().locked());
    /// ```
    pub fn lock(&self) -> &'a Lock<T> {
        self.lock
    }
}

impl<'a> LockGuard<'a, ()> {
    /// Gives up the guard but keeps the lock held, Python style: some thread must call
    /// [`Lock::release`] later.
    ///
    /// ```
    /// let lock = concur::sync::Lock::new();
    /// lock.acquire().leak();
    /// assert!(lock.locked());
    /// lock.release().unwrap();
    /// ```
    pub fn leak(self) {
        std::mem::forget(self);
    }
}

impl<T: ?Sized> Deref for LockGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard's existence proves the lock is held, so no `&mut T` exists
        // elsewhere.
        unsafe { &*self.lock.inner.value.get() }
    }
}

impl<T: ?Sized> DerefMut for LockGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the lock is held and this guard is borrowed mutably, so this is the
        // only access to the value.
        unsafe { &mut *self.lock.inner.value.get() }
    }
}

impl<T: ?Sized> Drop for LockGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.unlock_held();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for LockGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
