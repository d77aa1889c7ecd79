//! `Semaphore` and `BoundedSemaphore`: Python's `multiprocessing` counting semaphores,
//! on a shared futex word.
//!
//! # Shared state (`SemState`)
//!
//! | field     | meaning                                                         |
//! |-----------|-----------------------------------------------------------------|
//! | `value`   | free permits; also the futex word acquirers sleep on (at 0)      |
//! | `waiters` | acquirers in the slow path (may sleep); releases wake only if >0 |
//! | `bound`   | a `BoundedSemaphore`'s maximum (its initial value); written once |
//!
//! Acquire: a CAS takes a permit if `value > 0` (`Acquire`). Otherwise the acquirer
//! increments `waiters`, re-checks, and sleeps on `value` while it reads 0. Release
//! adds to `value`, then wakes sleepers if `waiters > 0`. Both sides do "write mine,
//! then read theirs" with `SeqCst` (a Dekker pair), so either the acquirer sees the new
//! permit or the releaser sees the waiter and wakes it; the kernel re-checks `value`
//! under its own lock before sleeping. The order in which waiters get permits is not
//! FIFO.
//!
//! A process that dies holding a permit does not give it back (as with Python's
//! semaphores). One that dies while waiting leaves `waiters` one too high, which only
//! costs later releases a wake-up call.

use super::ReleaseError;
use super::futex;
use super::shared::{Shared, SharedHandle, SharedState, Tag, kind, shared_serde};
use concur_core::time::{deadline_after, expired};
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The largest value a process-shared semaphore can hold (like `SEM_VALUE_MAX`).
const MAX_VALUE: u32 = i32::MAX as u32;

/// The state of a process-shared semaphore. See the module docs.
#[repr(C)]
pub(crate) struct SemState {
    tag: Tag,
    value: AtomicU32,
    waiters: AtomicU32,
    bound: AtomicU32,
}

// SAFETY: `repr(C)`, starts with the tag, atomics only; alignment 4.
unsafe impl SharedState for SemState {
    fn tag(&self) -> &Tag {
        &self.tag
    }
}

fn create(value: usize, kind: u32) -> io::Result<Shared<SemState>> {
    let value = u32::try_from(value)
        .ok()
        .filter(|v| *v <= MAX_VALUE)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("semaphore value {value} exceeds {MAX_VALUE}"),
            )
        })?;
    Shared::create("concur-semaphore", kind, |s: &SemState| {
        s.value.store(value, Ordering::Relaxed);
        s.bound.store(value, Ordering::Relaxed);
        Ok(())
    })
}

fn try_take(s: &SemState) -> bool {
    let mut v = s.value.load(Ordering::Relaxed);
    while v != 0 {
        match s
            .value
            .compare_exchange_weak(v, v - 1, Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => return true,
            Err(x) => v = x,
        }
    }
    false
}

fn take_until(s: &SemState, deadline: Option<Instant>) -> bool {
    if try_take(s) {
        return true;
    }
    s.waiters.fetch_add(1, Ordering::SeqCst);
    let got = loop {
        if try_take(s) {
            break true;
        }
        if expired(deadline) {
            break false;
        }
        // Dekker pair with `give`: our `waiters` increment is ordered before this
        // read of `value`, and the kernel re-reads it before sleeping.
        if s.value.load(Ordering::SeqCst) == 0 {
            futex::wait(&s.value, 0, deadline);
        }
    };
    s.waiters.fetch_sub(1, Ordering::SeqCst);
    got
}

fn give(s: &SemState, n: usize, bounded: bool) -> Result<(), ReleaseError> {
    if n == 0 {
        return Ok(());
    }
    let max = if bounded {
        s.bound.load(Ordering::Relaxed)
    } else {
        MAX_VALUE
    };
    let mut v = s.value.load(Ordering::Relaxed);
    loop {
        let nv = u32::try_from(n)
            .ok()
            .and_then(|n| v.checked_add(n))
            .filter(|nv| *nv <= max);
        let Some(nv) = nv else {
            if bounded {
                return Err(ReleaseError::TooManyReleases);
            }
            panic!("semaphore value overflow (above {MAX_VALUE})");
        };
        match s
            .value
            .compare_exchange_weak(v, nv, Ordering::SeqCst, Ordering::Relaxed)
        {
            Ok(_) => break,
            Err(x) => v = x,
        }
    }
    if s.waiters.load(Ordering::SeqCst) != 0 {
        futex::wake(&s.value, u32::try_from(n).unwrap_or(u32::MAX));
    }
    Ok(())
}

macro_rules! common_api {
    ($ty:ident, $bounded:literal) => {
        impl $ty {
            #[doc = "Blocks until a permit is available and takes it; the guard gives it back."]
            ///
            /// ```
            #[doc = concat!("let s = concur::process::sync::", stringify!($ty), "::new(1)?;")]
            /// let g = s.acquire();
            /// assert_eq!(s.value(), 0);
            /// drop(g);
            /// assert_eq!(s.value(), 1);
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn acquire(&self) -> SemaphoreGuard<'_> {
                take_until(self.shared.get(), None);
                self.guard()
            }

            /// Takes a permit if one is available right now (Python's
            /// `acquire(block=False)`).
            ///
            /// ```
            #[doc = concat!("let s = concur::process::sync::", stringify!($ty), "::new(1)?;")]
            /// let g = s.try_acquire().expect("one permit");
            /// assert!(s.try_acquire().is_none());
            /// drop(g);
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn try_acquire(&self) -> Option<SemaphoreGuard<'_>> {
                try_take(self.shared.get()).then(|| self.guard())
            }

            /// Blocks for at most `timeout`; `None` if no permit came. A timeout too
            /// large to represent waits forever.
            ///
            /// ```
            /// use std::time::Duration;
            #[doc = concat!("let s = concur::process::sync::", stringify!($ty), "::new(0)?;")]
            /// assert!(s.acquire_timeout(Duration::from_millis(10)).is_none());
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphoreGuard<'_>> {
                take_until(self.shared.get(), deadline_after(timeout)).then(|| self.guard())
            }

            /// Blocks until `deadline` at the latest; `None` if no permit came.
            ///
            /// ```
            /// use std::time::{Duration, Instant};
            #[doc = concat!("let s = concur::process::sync::", stringify!($ty), "::new(1)?;")]
            /// assert!(s.acquire_deadline(Instant::now() + Duration::from_secs(1)).is_some());
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn acquire_deadline(&self, deadline: Instant) -> Option<SemaphoreGuard<'_>> {
                take_until(self.shared.get(), Some(deadline)).then(|| self.guard())
            }

            fn guard(&self) -> SemaphoreGuard<'_> {
                SemaphoreGuard {
                    state: self.shared.get(),
                    bounded: $bounded,
                }
            }

            /// The number of free permits at this instant (Python's `get_value()`).
            ///
            /// ```
            #[doc = concat!("assert_eq!(concur::process::sync::", stringify!($ty), "::new(3)?.value(), 3);")]
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn value(&self) -> usize {
                self.shared.get().value.load(Ordering::Relaxed) as usize
            }

            /// True if both handles refer to the same semaphore.
            ///
            /// ```
            #[doc = concat!("let s = concur::process::sync::", stringify!($ty), "::new(1)?;")]
            /// assert!(s.ptr_eq(&s.clone()));
            /// # Ok::<(), std::io::Error>(())
            /// ```
            pub fn ptr_eq(&self, other: &Self) -> bool {
                self.shared.same(&other.shared)
            }
        }

        impl SharedHandle for $ty {
            type State = SemState;
            const KIND: u32 = if $bounded { kind::BOUNDED_SEMAPHORE } else { kind::SEMAPHORE };
            fn shared(&self) -> &Shared<SemState> {
                &self.shared
            }
            fn from_shared(shared: Shared<SemState>) -> Self {
                $ty { shared }
            }
        }

        shared_serde!($ty);

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("value", &self.value())
                    .finish_non_exhaustive()
            }
        }
    };
}

/// A counting semaphore shared between processes: Python's
/// `multiprocessing.Semaphore`, as a cheaply cloneable, serializable handle.
///
/// [`acquire`](Semaphore::acquire) takes a permit (blocking while there is none),
/// in four forms; the returned [`SemaphoreGuard`] gives it back on drop (or use
/// [`SemaphoreGuard::leak`] and [`release`](Semaphore::release), Python style). Any
/// thread of any process may release. A process that dies holding a permit does not
/// give it back.
///
/// ```
/// use concur::process::sync::Semaphore;
/// let s = Semaphore::new(2)?;
/// let a = s.acquire();
/// let b = s.acquire();
/// assert!(s.try_acquire().is_none());
/// drop((a, b));
/// assert_eq!(s.value(), 2);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Semaphore {
    shared: Shared<SemState>,
}

impl Semaphore {
    /// Creates a semaphore with `value` permits, in a shared memory page of its own.
    ///
    /// # Errors
    /// `InvalidInput` if `value` exceeds `i32::MAX`; the OS error if the page cannot be
    /// created or mapped.
    ///
    /// ```
    /// use concur::process::sync::Semaphore;
    /// assert_eq!(Semaphore::new(3)?.value(), 3);
    /// assert!(Semaphore::new(usize::MAX).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(value: usize) -> io::Result<Self> {
        create(value, kind::SEMAPHORE).map(|shared| Semaphore { shared })
    }

    /// Gives one permit back, waking a waiter (Python's `release()`).
    ///
    /// # Panics
    /// If the value would exceed `i32::MAX`.
    ///
    /// ```
    /// let s = concur::process::sync::Semaphore::new(0)?;
    /// s.release();
    /// assert_eq!(s.value(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn release(&self) {
        self.release_n(1);
    }

    /// Gives `n` permits back at once (Python's `release(n)`).
    ///
    /// # Panics
    /// If the value would exceed `i32::MAX`.
    ///
    /// ```
    /// let s = concur::process::sync::Semaphore::new(0)?;
    /// s.release_n(3);
    /// assert_eq!(s.value(), 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn release_n(&self, n: usize) {
        let _ = give(self.shared.get(), n, false);
    }
}

common_api!(Semaphore, false);

/// A semaphore that refuses to rise above its initial value: Python's
/// `multiprocessing.BoundedSemaphore`, process-shared.
///
/// ```
/// use concur::process::sync::{BoundedSemaphore, ReleaseError};
/// let s = BoundedSemaphore::new(1)?;
/// assert_eq!(s.release(), Err(ReleaseError::TooManyReleases));
/// s.acquire().leak();
/// assert_eq!(s.release(), Ok(()));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct BoundedSemaphore {
    shared: Shared<SemState>,
}

impl BoundedSemaphore {
    /// Creates a bounded semaphore with `value` permits (also its maximum).
    ///
    /// # Errors
    /// As for [`Semaphore::new`].
    ///
    /// ```
    /// assert_eq!(concur::process::sync::BoundedSemaphore::new(2)?.value(), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(value: usize) -> io::Result<Self> {
        create(value, kind::BOUNDED_SEMAPHORE).map(|shared| BoundedSemaphore { shared })
    }

    /// Gives one permit back.
    ///
    /// # Errors
    /// [`ReleaseError::TooManyReleases`] if that would exceed the initial value
    /// (nothing changes then).
    ///
    /// ```
    /// let s = concur::process::sync::BoundedSemaphore::new(1)?;
    /// assert!(s.release().is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.release_n(1)
    }

    /// Gives `n` permits back at once, or none if that would exceed the initial value.
    ///
    /// # Errors
    /// [`ReleaseError::TooManyReleases`] as for [`release`](BoundedSemaphore::release).
    ///
    /// ```
    /// let s = concur::process::sync::BoundedSemaphore::new(2)?;
    /// s.acquire().leak();
    /// assert!(s.release_n(2).is_err());
    /// assert!(s.release_n(1).is_ok());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn release_n(&self, n: usize) -> Result<(), ReleaseError> {
        give(self.shared.get(), n, true)
    }
}

common_api!(BoundedSemaphore, true);

/// A permit taken from a [`Semaphore`] or [`BoundedSemaphore`]; given back on drop.
///
/// ```
/// let s = concur::process::sync::Semaphore::new(1)?;
/// {
///     let _permit = s.acquire();
///     assert_eq!(s.value(), 0);
/// }
/// assert_eq!(s.value(), 1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[must_use = "the permit is given back as soon as the guard is dropped"]
pub struct SemaphoreGuard<'a> {
    state: &'a SemState,
    bounded: bool,
}

impl SemaphoreGuard<'_> {
    /// Keeps the permit: someone must `release` it later, Python style.
    ///
    /// ```
    /// let s = concur::process::sync::Semaphore::new(1)?;
    /// s.acquire().leak();
    /// assert_eq!(s.value(), 0);
    /// s.release();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn leak(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        if give(self.state, 1, self.bounded).is_err() {
            tracing::warn!("BoundedSemaphore guard dropped after its permit was released by hand");
        }
    }
}

impl fmt::Debug for SemaphoreGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphoreGuard").finish_non_exhaustive()
    }
}
