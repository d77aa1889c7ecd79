//! `Condition`: Python's `threading.Condition`, a condition variable bound to a lock.
//!
//! Waiters queue in a [`WaitQueue`] (FIFO, one one-shot parker each, as in CPython
//! where each waiter blocks on a lock of its own). A waiter enqueues itself while it
//! still holds the user's lock, so a `notify` (which needs the lock too) cannot run
//! between "decide to wait" and "be on the queue". See `waiters.rs` for why a waiter
//! that times out never swallows a notification.

use super::lock::Lock;
use super::rlock::RLock;
use super::waiters::WaitQueue;
use crate::shim::Arc;
use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

/// A condition variable: Python's `threading.Condition`, as a cheaply cloneable
/// handle.
///
/// It is bound to a [`Lock`] ([`Condition::with_lock`]) or an [`RLock`]
/// ([`Condition::with_rlock`]; [`Condition::new`] makes a fresh one, like Python).
/// [`acquire`](Condition::acquire) takes the lock and returns a [`ConditionGuard`], on
/// which [`wait`](ConditionGuard::wait), [`wait_for`](ConditionGuard::wait_for),
/// [`notify`](ConditionGuard::notify) and [`notify_all`](ConditionGuard::notify_all)
/// are called: holding the guard proves the lock is held, so Python's
/// "cannot wait on un-acquired lock" `RuntimeError` cannot happen.
///
/// Waiting releases the lock (all levels of an `RLock`) and blocks until notified,
/// then takes the lock back (at the same recursion level) before returning.
///
/// # Examples
///
/// ```
/// use concur::sync::{Condition, Lock};
/// use std::thread;
///
/// let items = Lock::with_value(Vec::<i32>::new());
/// let cond = Condition::new();
/// let (i2, c2) = (items.clone(), cond.clone());
/// let consumer = thread::spawn(move || {
///     let mut g = c2.acquire();
///     g.wait_for(|| !i2.acquire().is_empty());
///     i2.acquire().pop()
/// });
/// {
///     let g = cond.acquire();
///     items.acquire().push(7);
///     g.notify(1);
/// }
/// assert_eq!(consumer.join().unwrap(), Some(7));
/// ```
pub struct Condition {
    inner: Arc<Inner>,
}

struct Inner {
    lock: CondLock,
    waiters: WaitQueue<()>,
}

enum CondLock {
    Lock(Lock),
    RLock(RLock),
}

/// What a waiting thread gave up and must take back.
enum Saved {
    Lock,
    RLock(usize),
}

impl Condition {
    /// Creates a condition over a fresh [`RLock`], like `threading.Condition()`.
    ///
    /// ```
    /// let c = concur::sync::Condition::new();
    /// let g = c.acquire();
    /// assert_eq!(g.notify(1), 0); // nobody waits
    /// ```
    #[track_caller]
    #[must_use]
    pub fn new() -> Self {
        Self::with_rlock(RLock::new())
    }

    /// Creates a condition over `lock` (a clone of a lock used elsewhere, typically).
    ///
    /// ```
    /// use concur::sync::{Condition, Lock};
    /// let lock = Lock::new();
    /// let c = Condition::with_lock(lock.clone());
    /// let _g = c.acquire();
    /// assert!(lock.locked());
    /// ```
    #[must_use]
    pub fn with_lock(lock: Lock) -> Self {
        Self::build(CondLock::Lock(lock))
    }

    /// Creates a condition over the reentrant lock `rlock`.
    ///
    /// ```
    /// use concur::sync::{Condition, RLock};
    /// let r = RLock::new();
    /// let c = Condition::with_rlock(r.clone());
    /// let _outer = r.acquire();
    /// let _g = c.acquire(); // reentrant: does not block
    /// assert_eq!(r.count(), 2);
    /// ```
    #[must_use]
    pub fn with_rlock(rlock: RLock) -> Self {
        Self::build(CondLock::RLock(rlock))
    }

    fn build(lock: CondLock) -> Self {
        Condition {
            inner: Arc::new(Inner {
                lock,
                waiters: WaitQueue::new(()),
            }),
        }
    }

    /// Blocks until the underlying lock is acquired.
    ///
    /// # Panics
    /// In deadlock-detection panic mode, if taking the lock would close a cycle.
    ///
    /// ```
    /// let c = concur::sync::Condition::new();
    /// let g = c.acquire();
    /// drop(g);
    /// ```
    pub fn acquire(&self) -> ConditionGuard<'_> {
        self.acquire_until(None).expect("no deadline")
    }

    /// Acquires the underlying lock if that is possible without blocking.
    ///
    /// ```
    /// use concur::sync::{Condition, Lock};
    /// let c = Condition::with_lock(Lock::new());
    /// let g = c.try_acquire().expect("free");
    /// assert!(c.try_acquire().is_none()); // a plain Lock is not reentrant
    /// drop(g);
    /// ```
    pub fn try_acquire(&self) -> Option<ConditionGuard<'_>> {
        let ok = match &self.inner.lock {
            CondLock::Lock(l) => l.try_acquire().map(|g| g.leak()).is_some(),
            CondLock::RLock(r) => r.try_acquire().map(|g| g.leak()).is_some(),
        };
        ok.then(|| self.guard())
    }

    /// Blocks for at most `timeout`; `None` if the lock could not be acquired in time.
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = concur::sync::Condition::new();
    /// assert!(c.acquire_timeout(Duration::from_millis(10)).is_some());
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<ConditionGuard<'_>> {
        self.acquire_until(crate::time::deadline_after(timeout))
    }

    /// Blocks until `deadline` at the latest; `None` if the lock was not acquired.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let c = concur::sync::Condition::new();
    /// assert!(c.acquire_deadline(Instant::now() + Duration::from_millis(10)).is_some());
    /// ```
    pub fn acquire_deadline(&self, deadline: Instant) -> Option<ConditionGuard<'_>> {
        self.acquire_until(Some(deadline))
    }

    fn acquire_until(&self, deadline: Option<Instant>) -> Option<ConditionGuard<'_>> {
        let ok = match (&self.inner.lock, deadline) {
            (CondLock::Lock(l), None) => {
                l.acquire().leak();
                true
            }
            (CondLock::Lock(l), Some(d)) => l.acquire_deadline(d).map(|g| g.leak()).is_some(),
            (CondLock::RLock(r), None) => {
                r.acquire().leak();
                true
            }
            (CondLock::RLock(r), Some(d)) => r.acquire_deadline(d).map(|g| g.leak()).is_some(),
        };
        ok.then(|| self.guard())
    }

    fn guard(&self) -> ConditionGuard<'_> {
        ConditionGuard {
            cond: self,
            _not_send: PhantomData,
        }
    }

    /// True if both handles refer to the same condition.
    ///
    /// ```
    /// let c = concur::sync::Condition::new();
    /// assert!(c.ptr_eq(&c.clone()));
    /// ```
    pub fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Gives the lock up entirely; what `restore` needs to take it back.
    fn release_save(&self) -> Saved {
        match &self.inner.lock {
            CondLock::Lock(l) => {
                l.unlock_held();
                Saved::Lock
            }
            CondLock::RLock(r) => Saved::RLock(r.release_save()),
        }
    }

    fn restore(&self, saved: Saved) {
        match (&self.inner.lock, saved) {
            (CondLock::Lock(l), _) => l.acquire().leak(),
            (CondLock::RLock(r), Saved::RLock(c)) => r.acquire_restore(c),
            (CondLock::RLock(r), Saved::Lock) => r.acquire_restore(1),
        }
    }

    /// One wait: enqueue (lock held), release, block, dequeue if timed out, restore.
    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        let w = self.inner.waiters.lock().enqueue();
        let saved = self.release_save();
        let notified = w.wait(deadline);
        if !notified {
            self.inner.waiters.forget(&w);
        }
        self.restore(saved);
        notified
    }

    fn release_held(&self) {
        match &self.inner.lock {
            CondLock::Lock(l) => l.unlock_held(),
            CondLock::RLock(r) => r.release_held(),
        }
    }
}

impl Default for Condition {
    #[track_caller]
    fn default() -> Self {
        Self::new()
    }
}

impl Clone for Condition {
    fn clone(&self) -> Self {
        Condition {
            inner: self.inner.clone(),
        }
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Condition");
        match &self.inner.lock {
            CondLock::Lock(l) => d.field("lock", l),
            CondLock::RLock(r) => d.field("lock", r),
        };
        d.finish_non_exhaustive()
    }
}

/// Proof that a [`Condition`]'s lock is held; the place to `wait` and `notify`.
/// Releases (one level of) the lock when dropped.
///
/// ```
/// use concur::sync::{Condition, Lock};
/// let lock = Lock::new();
/// let c = Condition::with_lock(lock.clone());
/// {
///     let g = c.acquire();
///     assert!(lock.locked());
///     assert_eq!(g.notify_all(), 0); // nobody waits
/// } // released here
/// assert!(!lock.locked());
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ConditionGuard<'a> {
    cond: &'a Condition,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a shared guard only allows `notify`, which is thread-safe (it locks the
// waiter queue), and reading the `&Condition`, which is `Sync`.
unsafe impl Sync for ConditionGuard<'_> {}

impl<'a> ConditionGuard<'a> {
    /// The condition this guard belongs to.
    ///
    /// ```
    /// let c = concur::sync::Condition::new();
    /// let g = c.acquire();
    /// assert!(g.condition().ptr_eq(&c));
    /// ```
    pub fn condition(&self) -> &'a Condition {
        self.cond
    }

    /// Releases the lock, blocks until notified, and takes the lock back.
    ///
    /// As with any condition variable, check the state you wait for in a loop (or use
    /// [`wait_for`](Self::wait_for)): another thread may change it first.
    ///
    /// ```
    /// use concur::sync::Condition;
    /// let c = Condition::new();
    /// let c2 = c.clone();
    /// let mut g = c.acquire();
    /// let t = std::thread::spawn(move || c2.acquire().notify_all());
    /// g.wait(); // the notifier cannot notify before we wait: it needs the lock
    /// t.join().unwrap();
    /// ```
    pub fn wait(&mut self) {
        self.cond.wait_until(None);
    }

    /// Like [`wait`](Self::wait) for at most `timeout`; false if it timed out.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let c = concur::sync::Condition::new();
    /// let mut g = c.acquire();
    /// let start = Instant::now();
    /// assert!(!g.wait_timeout(Duration::from_millis(20)));
    /// assert!(start.elapsed() >= Duration::from_millis(20));
    /// ```
    pub fn wait_timeout(&mut self, timeout: Duration) -> bool {
        self.cond.wait_until(crate::time::deadline_after(timeout))
    }

    /// Like [`wait`](Self::wait) until `deadline` at the latest; false if it passed.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let c = concur::sync::Condition::new();
    /// let mut g = c.acquire();
    /// assert!(!g.wait_deadline(Instant::now() + Duration::from_millis(5)));
    /// ```
    pub fn wait_deadline(&mut self, deadline: Instant) -> bool {
        self.cond.wait_until(Some(deadline))
    }

    /// Waits until `pred()` is true (checked first, then after every wake-up), like
    /// Python's `wait_for` with no timeout. Returns the final `pred()`, i.e. `true`.
    ///
    /// ```
    /// let c = concur::sync::Condition::new();
    /// let mut g = c.acquire();
    /// assert!(g.wait_for(|| true)); // already true: no wait
    /// ```
    pub fn wait_for(&mut self, pred: impl FnMut() -> bool) -> bool {
        self.wait_for_until(None, pred)
    }

    /// Like [`wait_for`](Self::wait_for) for at most `timeout`; returns the last value
    /// of `pred()` (false if it timed out with the predicate still false).
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = concur::sync::Condition::new();
    /// let mut g = c.acquire();
    /// assert!(!g.wait_for_timeout(Duration::from_millis(10), || false));
    /// ```
    pub fn wait_for_timeout(&mut self, timeout: Duration, pred: impl FnMut() -> bool) -> bool {
        self.wait_for_until(crate::time::deadline_after(timeout), pred)
    }

    /// Like [`wait_for`](Self::wait_for) until `deadline` at the latest.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let c = concur::sync::Condition::new();
    /// let mut g = c.acquire();
    /// let d = Instant::now() + Duration::from_millis(10);
    /// assert!(!g.wait_for_deadline(d, || false));
    /// ```
    pub fn wait_for_deadline(&mut self, deadline: Instant, pred: impl FnMut() -> bool) -> bool {
        self.wait_for_until(Some(deadline), pred)
    }

    fn wait_for_until(
        &mut self,
        deadline: Option<Instant>,
        mut pred: impl FnMut() -> bool,
    ) -> bool {
        let mut result = pred();
        while !result {
            if crate::time::expired(deadline) {
                break;
            }
            self.cond.wait_until(deadline);
            result = pred();
        }
        result
    }

    /// Wakes up to `n` waiting threads, oldest first; returns how many were woken.
    /// Never blocks (beyond a short internal lock).
    ///
    /// Exactly `min(n, waiting)` threads are woken: a waiter that is timing out at
    /// the same moment is either woken (its wait returns `true`) or skipped.
    ///
    /// ```
    /// let c = concur::sync::Condition::new();
    /// assert_eq!(c.acquire().notify(3), 0);
    /// ```
    pub fn notify(&self, n: usize) -> usize {
        self.cond.inner.waiters.lock().notify(n)
    }

    /// Wakes every waiting thread; returns how many were woken.
    ///
    /// ```
    /// let c = concur::sync::Condition::new();
    /// assert_eq!(c.acquire().notify_all(), 0);
    /// ```
    pub fn notify_all(&self) -> usize {
        self.cond.inner.waiters.lock().notify(usize::MAX)
    }
}

impl Drop for ConditionGuard<'_> {
    fn drop(&mut self) {
        self.cond.release_held();
    }
}

impl fmt::Debug for ConditionGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConditionGuard")
            .field("condition", self.cond)
            .finish()
    }
}
