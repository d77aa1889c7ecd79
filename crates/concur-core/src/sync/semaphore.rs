//! `Semaphore` and `BoundedSemaphore`: Python's counting semaphores.
//!
//! The permit count is an atomic, so `value()` and an uncontended acquire (a CAS that
//! decrements a non-zero count) never lock. Releases and blocked acquirers meet in a
//! [`WaitQueue`]: an acquirer that finds no permit re-checks and enqueues itself under
//! the queue lock; a release adds its permits and notifies as many waiters under the
//! same lock, so a release can never slip between "saw zero" and "went to sleep".
//! A woken waiter retries; if a thread that never slept took the permit first, the
//! waiter queues again (no permit is lost, but the order is not strictly FIFO).

use super::ReleaseError;
use super::waiters::WaitQueue;
use crate::shim::Arc;
use crate::shim::atomic::{AtomicUsize, Ordering};
use std::fmt;
use std::time::{Duration, Instant};

struct Core {
    value: AtomicUsize,
    /// `Some(initial)` for a bounded semaphore.
    bound: Option<usize>,
    queue: WaitQueue<()>,
}

impl Core {
    fn new(value: usize, bound: Option<usize>) -> Self {
        Core {
            value: AtomicUsize::new(value),
            bound,
            queue: WaitQueue::new(()),
        }
    }

    #[inline]
    fn try_take(&self) -> bool {
        let mut v = self.value.load(Ordering::Relaxed);
        while v != 0 {
            match self
                .value
                .compare_exchange_weak(v, v - 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(x) => v = x,
            }
        }
        false
    }

    #[inline]
    fn take_until(&self, deadline: Option<Instant>) -> bool {
        self.try_take() || self.take_slow(deadline)
    }

    #[cold]
    fn take_slow(&self, deadline: Option<Instant>) -> bool {
        loop {
            let mut g = self.queue.lock();
            if self.try_take() {
                return true;
            }
            let w = g.enqueue();
            drop(g);
            if !w.wait(deadline) {
                self.queue.forget(&w);
                // Like Python's `wait_for`, look once more after the deadline.
                return self.try_take();
            }
        }
    }

    fn give(&self, n: usize) -> Result<(), ReleaseError> {
        if n == 0 {
            return Ok(());
        }
        let mut g = self.queue.lock();
        match self.bound {
            Some(b) => {
                let mut v = self.value.load(Ordering::Relaxed);
                loop {
                    match v.checked_add(n) {
                        Some(nv) if nv <= b => {}
                        _ => return Err(ReleaseError::TooManyReleases),
                    }
                    match self.value.compare_exchange_weak(
                        v,
                        v + n,
                        Ordering::Release,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => break,
                        Err(x) => v = x,
                    }
                }
            }
            None => {
                let old = self.value.fetch_add(n, Ordering::Release);
                assert!(old.checked_add(n).is_some(), "semaphore value overflow");
            }
        }
        g.notify(n);
        Ok(())
    }
}

macro_rules! common_api {
    ($ty:ident, $kind:literal) => {
        impl $ty {
            /// Blocks until a permit is available and takes it; the guard gives it back
            /// on drop.
            ///
            /// ```
            #[doc = concat!("let s = concur::sync::", stringify!($ty), "::new(1);")]
            /// let g = s.acquire();
            /// assert_eq!(s.value(), 0);
            /// drop(g);
            /// assert_eq!(s.value(), 1);
            /// ```
            #[inline]
            pub fn acquire(&self) -> SemaphoreGuard<'_> {
                self.core.take_until(None);
                SemaphoreGuard { core: &self.core }
            }

            /// Takes a permit if one is available now (Python's
            /// `acquire(blocking=False)`).
            ///
            /// ```
            #[doc = concat!("let s = concur::sync::", stringify!($ty), "::new(1);")]
            /// let _g = s.try_acquire().expect("one permit");
            /// assert!(s.try_acquire().is_none());
            /// ```
            #[inline]
            pub fn try_acquire(&self) -> Option<SemaphoreGuard<'_>> {
                self.core
                    .try_take()
                    .then(|| SemaphoreGuard { core: &self.core })
            }

            /// Blocks for at most `timeout`; `None` if no permit came in time. A timeout
            /// too large to represent waits forever.
            ///
            /// ```
            /// use std::time::Duration;
            #[doc = concat!("let s = concur::sync::", stringify!($ty), "::new(0);")]
            /// assert!(s.acquire_timeout(Duration::from_millis(10)).is_none());
            /// ```
            #[inline]
            pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphoreGuard<'_>> {
                self.acquire_until(crate::time::deadline_after(timeout))
            }

            /// Blocks until `deadline` at the latest; `None` if no permit came in time.
            ///
            /// ```
            /// use std::time::{Duration, Instant};
            #[doc = concat!("let s = concur::sync::", stringify!($ty), "::new(1);")]
            /// assert!(s.acquire_deadline(Instant::now() + Duration::from_millis(10)).is_some());
            /// ```
            #[inline]
            pub fn acquire_deadline(&self, deadline: Instant) -> Option<SemaphoreGuard<'_>> {
                self.acquire_until(Some(deadline))
            }

            #[inline]
            fn acquire_until(&self, deadline: Option<Instant>) -> Option<SemaphoreGuard<'_>> {
                self.core
                    .take_until(deadline)
                    .then(|| SemaphoreGuard { core: &self.core })
            }

            /// The number of permits available at this instant.
            ///
            /// ```
            #[doc = concat!("assert_eq!(concur::sync::", stringify!($ty), "::new(3).value(), 3);")]
            /// ```
            #[inline]
            pub fn value(&self) -> usize {
                self.core.value.load(Ordering::Relaxed)
            }

            /// True if both handles refer to the same semaphore.
            ///
            /// ```
            #[doc = concat!("let s = concur::sync::", stringify!($ty), "::new(1);")]
            /// assert!(s.ptr_eq(&s.clone()));
            /// ```
            pub fn ptr_eq(&self, other: &Self) -> bool {
                Arc::ptr_eq(&self.core, &other.core)
            }
        }

        impl Clone for $ty {
            fn clone(&self) -> Self {
                $ty {
                    core: self.core.clone(),
                }
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct($kind)
                    .field("value", &self.value())
                    .finish_non_exhaustive()
            }
        }
    };
}

/// A counting semaphore: Python's `threading.Semaphore`, as a cheaply cloneable handle.
///
/// It holds a number of permits; [`acquire`](Semaphore::acquire) takes one (blocking
/// while there are none) and returns a [`SemaphoreGuard`] that gives it back on drop.
/// [`release`](Semaphore::release) and [`release_n`](Semaphore::release_n) add permits
/// (Python style, any thread, no upper limit) and wake as many waiters.
///
/// # Examples
///
/// ```
/// use concur::sync::{Lock, Semaphore};
/// use std::thread;
///
/// let slots = Semaphore::new(2);
/// let inside = Lock::with_value((0, 0)); // (now, max)
/// let hs: Vec<_> = (0..6)
///     .map(|_| {
///         let (slots, inside) = (slots.clone(), inside.clone());
///         thread::spawn(move || {
///             let _permit = slots.acquire();
///             { let mut g = inside.acquire(); g.0 += 1; g.1 = g.1.max(g.0); }
///             thread::yield_now();
///             inside.acquire().0 -= 1;
///         })
///     })
///     .collect();
/// for h in hs { h.join().unwrap(); }
/// assert!(inside.acquire().1 <= 2);
/// ```
pub struct Semaphore {
    core: Arc<Core>,
}

impl Semaphore {
    /// Creates a semaphore with `value` permits (Python's default is 1).
    ///
    /// ```
    /// assert_eq!(concur::sync::Semaphore::new(0).value(), 0);
    /// ```
    #[must_use]
    pub fn new(value: usize) -> Self {
        Semaphore {
            core: Arc::new(Core::new(value, None)),
        }
    }

    /// Adds one permit, waking one waiter if any.
    ///
    /// # Panics
    /// If the count would overflow `usize`.
    ///
    /// ```
    /// let s = concur::sync::Semaphore::new(0);
    /// s.release();
    /// assert_eq!(s.value(), 1);
    /// ```
    pub fn release(&self) {
        self.release_n(1);
    }

    /// Adds `n` permits, waking up to `n` waiters (Python's `release(n)`).
    ///
    /// # Panics
    /// If the count would overflow `usize`.
    ///
    /// ```
    /// let s = concur::sync::Semaphore::new(0);
    /// s.release_n(3);
    /// assert_eq!(s.value(), 3);
    /// ```
    pub fn release_n(&self, n: usize) {
        let _ = self.core.give(n);
    }
}

impl Default for Semaphore {
    /// One permit, like `threading.Semaphore()`.
    fn default() -> Self {
        Self::new(1)
    }
}

common_api!(Semaphore, "Semaphore");

/// A semaphore that refuses to rise above its initial value: Python's
/// `threading.BoundedSemaphore`, which catches releases that were never acquired.
///
/// Same blocking behaviour as [`Semaphore`]; [`release`](BoundedSemaphore::release)
/// returns an error instead of adding a permit too many.
///
/// # Examples
///
/// ```
/// use concur::sync::{BoundedSemaphore, ReleaseError};
/// let s = BoundedSemaphore::new(1);
/// s.acquire().leak();
/// assert_eq!(s.release(), Ok(()));
/// assert_eq!(s.release(), Err(ReleaseError::TooManyReleases));
/// ```
pub struct BoundedSemaphore {
    core: Arc<Core>,
}

impl BoundedSemaphore {
    /// Creates a bounded semaphore with `value` permits, which is also its maximum.
    ///
    /// ```
    /// assert_eq!(concur::sync::BoundedSemaphore::new(2).value(), 2);
    /// ```
    #[must_use]
    pub fn new(value: usize) -> Self {
        BoundedSemaphore {
            core: Arc::new(Core::new(value, Some(value))),
        }
    }

    /// Adds one permit, waking one waiter if any.
    ///
    /// # Errors
    /// [`ReleaseError::TooManyReleases`] if the value would exceed the initial value
    /// (nothing is added then).
    ///
    /// ```
    /// let s = concur::sync::BoundedSemaphore::new(1);
    /// assert!(s.release().is_err());
    /// ```
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.core.give(1)
    }

    /// Adds `n` permits at once, waking up to `n` waiters.
    ///
    /// # Errors
    /// [`ReleaseError::TooManyReleases`] if the value would exceed the initial value
    /// (nothing is added then).
    ///
    /// ```
    /// let s = concur::sync::BoundedSemaphore::new(2);
    /// s.acquire().leak();
    /// assert!(s.release_n(2).is_err());
    /// assert!(s.release_n(1).is_ok());
    /// ```
    pub fn release_n(&self, n: usize) -> Result<(), ReleaseError> {
        self.core.give(n)
    }
}

impl Default for BoundedSemaphore {
    /// One permit, like `threading.BoundedSemaphore()`.
    fn default() -> Self {
        Self::new(1)
    }
}

common_api!(BoundedSemaphore, "BoundedSemaphore");

/// A permit of a [`Semaphore`] or [`BoundedSemaphore`]; gives it back when dropped.
///
/// ```
/// let s = concur::sync::BoundedSemaphore::new(2);
/// let a = s.acquire();
/// let b = s.acquire();
/// assert_eq!(s.value(), 0);
/// drop(a);
/// assert_eq!(s.value(), 1);
/// drop(b);
/// assert_eq!(s.value(), 2);
/// ```
#[must_use = "the permit is given back as soon as the guard is dropped"]
pub struct SemaphoreGuard<'a> {
    core: &'a Core,
}

impl SemaphoreGuard<'_> {
    /// Keeps the permit: some thread must `release` it later (Python style).
    ///
    /// ```
    /// let s = concur::sync::Semaphore::new(1);
    /// s.acquire().leak();
    /// assert_eq!(s.value(), 0);
    /// s.release();
    /// assert_eq!(s.value(), 1);
    /// ```
    pub fn leak(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        // On a bounded semaphore this can only fail if the permit was also released
        // by hand; the value is then already at its maximum, so dropping is right.
        if self.core.give(1).is_err() {
            tracing::warn!("BoundedSemaphore guard dropped after its permit was released by hand");
        }
    }
}

impl fmt::Debug for SemaphoreGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphoreGuard").finish_non_exhaustive()
    }
}
