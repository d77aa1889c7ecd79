//! `Event`: Python's `threading.Event`, a flag threads can wait on.
//!
//! The flag is one atomic; waiters park on its address with `validate = !flag`, checked
//! under the parking bucket's lock, and `set` stores the flag before `unpark_all` on the
//! same key, so a waiter either sees the flag or is parked when `set` wakes the key.
//! A `HAS_WAITERS` bit (set by a waiter before it parks, cleared by `set`) lets `set`
//! skip the parking table when nobody waits; a waiter parks only if the state is still
//! exactly `HAS_WAITERS`, otherwise it re-checks (and re-sets the bit).
//!
//! # State machine (`state: AtomicU8`)
//!
//! | bit           | meaning                                         |
//! |---------------|-------------------------------------------------|
//! | `SET`         | the flag                                        |
//! | `HAS_WAITERS` | a thread may be parked (cleared by `set` only)  |
//!
//! Ordering: `set` publishes with `Release` (`fetch_or`/`swap` are `AcqRel`), every
//! read of the flag is `Acquire`, so what the setter wrote before `set` is visible to a
//! thread that saw the flag.

use crate::shim::Arc;
use crate::shim::atomic::{AtomicU8, Ordering};
use crate::shim::park::{self, ParkResult};
use std::fmt;
use std::time::{Duration, Instant};

const SET: u8 = 1;
const HAS_WAITERS: u8 = 2;

/// A flag that threads can wait for: Python's `threading.Event`, as a cheaply
/// cloneable handle.
///
/// [`set`](Event::set) raises the flag and wakes every waiting thread,
/// [`clear`](Event::clear) lowers it, [`wait`](Event::wait) blocks until it is raised
/// (also [`wait_timeout`](Event::wait_timeout), [`wait_deadline`](Event::wait_deadline);
/// [`is_set`](Event::is_set) never blocks).
///
/// # Examples
///
/// ```
/// use concur::sync::Event;
/// let ready = Event::new();
/// let r2 = ready.clone();
/// let t = std::thread::spawn(move || r2.wait());
/// ready.set();
/// assert!(t.join().unwrap());
/// ```
pub struct Event {
    state: Arc<AtomicU8>,
}

impl Event {
    /// Creates an event whose flag is down.
    ///
    /// ```
    /// assert!(!concur::sync::Event::new().is_set());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Event {
            state: Arc::new(AtomicU8::new(0)),
        }
    }

    /// Whether the flag is up (one atomic load; never blocks).
    ///
    /// ```
    /// let e = concur::sync::Event::new();
    /// e.set();
    /// assert!(e.is_set());
    /// ```
    #[inline]
    pub fn is_set(&self) -> bool {
        self.state.load(Ordering::Acquire) & SET != 0
    }

    /// Same as [`is_set`](Event::is_set): the never-blocking form of `wait`.
    ///
    /// ```
    /// assert!(!concur::sync::Event::new().try_wait());
    /// ```
    #[inline]
    pub fn try_wait(&self) -> bool {
        self.is_set()
    }

    /// Raises the flag and wakes every thread waiting for it. Never blocks (beyond a
    /// short internal lock when there are waiters).
    ///
    /// ```
    /// let e = concur::sync::Event::new();
    /// e.set();
    /// e.set(); // idempotent
    /// assert!(e.wait());
    /// ```
    pub fn set(&self) {
        if self.state.swap(SET, Ordering::AcqRel) & HAS_WAITERS != 0 {
            // SAFETY: no callbacks.
            unsafe {
                park::unpark_all(self.key(), 0);
            }
        }
    }

    /// Lowers the flag; later `wait`s block until the next `set`.
    ///
    /// ```
    /// let e = concur::sync::Event::new();
    /// e.set();
    /// e.clear();
    /// assert!(!e.is_set());
    /// ```
    pub fn clear(&self) {
        self.state.fetch_and(!SET, Ordering::Relaxed);
    }

    /// Blocks until the flag is up; returns `true` (Python's `wait()`).
    ///
    /// ```
    /// let e = concur::sync::Event::new();
    /// e.set();
    /// assert!(e.wait());
    /// ```
    pub fn wait(&self) -> bool {
        self.wait_until(None)
    }

    /// Blocks until the flag is up or `timeout` passes; returns the flag, like Python
    /// (`false` means it timed out). A timeout too large to represent waits forever.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let e = concur::sync::Event::new();
    /// let start = Instant::now();
    /// assert!(!e.wait_timeout(Duration::from_millis(20)));
    /// assert!(start.elapsed() >= Duration::from_millis(20));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(crate::time::deadline_after(timeout))
    }

    /// Blocks until the flag is up or `deadline` passes; returns the flag.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let e = concur::sync::Event::new();
    /// assert!(!e.wait_deadline(Instant::now() + Duration::from_millis(5)));
    /// ```
    pub fn wait_deadline(&self, deadline: Instant) -> bool {
        self.wait_until(Some(deadline))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        if self.is_set() {
            return true;
        }
        loop {
            let s = self.state.fetch_or(HAS_WAITERS, Ordering::Acquire);
            if s & SET != 0 {
                return true;
            }
            // Park only if the flag is down *and* our `HAS_WAITERS` is still there: a
            // `set` + `clear` pulse in between would have erased it, and a `set` that
            // finds no `HAS_WAITERS` does not wake the key.
            let validate = || self.state.load(Ordering::Acquire) == HAS_WAITERS;
            // SAFETY: the callbacks only load an atomic.
            match unsafe { park::park(self.key(), validate, || {}, |_, _| {}, deadline) } {
                // Woken by `set`: report success even if the flag was cleared since,
                // as Python does.
                ParkResult::Unparked(_) => return true,
                ParkResult::Invalid => {
                    if self.is_set() {
                        return true;
                    }
                }
                ParkResult::TimedOut => return self.is_set(),
            }
        }
    }

    fn key(&self) -> usize {
        &*self.state as *const AtomicU8 as usize
    }

    /// True if both handles refer to the same event.
    ///
    /// ```
    /// let e = concur::sync::Event::new();
    /// assert!(e.ptr_eq(&e.clone()));
    /// ```
    pub fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.state, &other.state)
    }
}

impl Default for Event {
    fn default() -> Self {
        Self::new()
    }
}

impl Clone for Event {
    fn clone(&self) -> Self {
        Event {
            state: self.state.clone(),
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .finish()
    }
}
