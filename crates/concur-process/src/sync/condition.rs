//! `Condition`: Python's `multiprocessing.Condition`, a condition variable over a
//! process-shared [`Lock`] or [`RLock`], on a shared futex word.
//!
//! # Shared state (`CondState`)
//!
//! | field     | meaning                                             | changed    |
//! |-----------|-----------------------------------------------------|------------|
//! | `seq`     | futex word; bumped by every `notify` that wakes     | under lock |
//! | `waiters` | threads inside `wait`                               | under lock |
//! | `tokens`  | notifications issued and not yet taken by a waiter  | under lock |
//!
//! Every field changes only while the condition's lock is held, which orders all of
//! it (`Relaxed` atomics suffice; they are atomics because other processes touch the
//! memory). A waiter counts itself in, reads `seq`, releases the lock and sleeps while
//! `seq` is unchanged; a notifier can only run after the release, so its bump of `seq`
//! either precedes the waiter's sleep (the kernel sees the new value and does not
//! sleep) or wakes it. `notify(n)` issues `k = min(n, waiters - tokens)` tokens and
//! wakes `k` sleepers; every waiter that wakes (by the futex, a signal, or because it
//! never slept) takes the lock back and returns "notified" only if it can take a token,
//! otherwise it sleeps again. So exactly `k` waits end notified, as in Python — though
//! not necessarily the `k` longest-waiting ones. A waiter whose deadline passes takes
//! a token if one is left, so no notification is lost to a timeout.
//!
//! A process that dies inside `wait` stays counted in `waiters`; a later notify may
//! then issue a token nobody takes at once, which a later waiter takes on its next
//! wake-up (one spurious "notified" return). The lock itself recovers as in the
//! [module docs](super).

use super::futex;
use super::lock::Lock;
use super::mutex::{Outcome, Wait};
use super::rlock::RLock;
use super::shared::{Shared, SharedState, Tag, Wire, kind};
use super::{AcquireResult, OwnerDied, TryAcquireError, TryAcquireResult};
use concur_core::time::{deadline_after, expired};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The state of a process-shared condition variable. See the module docs.
#[repr(C)]
pub(crate) struct CondState {
    tag: Tag,
    seq: AtomicU32,
    waiters: AtomicU32,
    tokens: AtomicU32,
}

// SAFETY: `repr(C)`, starts with the tag, atomics only; alignment 4.
unsafe impl SharedState for CondState {
    fn tag(&self) -> &Tag {
        &self.tag
    }
}

#[derive(Clone, Serialize, Deserialize)]
enum CondLock {
    Lock(Lock),
    RLock(RLock),
}

/// A condition variable shared between processes: Python's
/// `multiprocessing.Condition`, as a cheaply cloneable, serializable handle.
///
/// It is bound to a process-shared [`Lock`] ([`Condition::with_lock`]) or [`RLock`]
/// ([`Condition::with_rlock`]; [`Condition::new`] makes a fresh one, like Python).
/// [`acquire`](Condition::acquire) (four forms) takes the lock and returns a
/// [`ConditionGuard`], on which [`wait`](ConditionGuard::wait),
/// [`wait_for`](ConditionGuard::wait_for), [`notify`](ConditionGuard::notify) and
/// [`notify_all`](ConditionGuard::notify_all) are called. Waiting releases the lock
/// (all levels of an `RLock`), blocks until notified, and takes the lock back.
///
/// If a holder of the lock dies, whoever takes the lock next (an `acquire`, or a
/// waiter taking it back) is told through [`OwnerDied`], as for the lock itself.
///
/// ```
/// use concur::process::sync::Condition;
/// use std::time::Duration;
///
/// let c = Condition::new()?;
/// let c2 = c.clone();
/// let waiter = std::thread::spawn(move || {
///     let mut g = c2.acquire().unwrap();
///     g.wait_timeout(Duration::from_secs(10)).unwrap()
/// });
/// loop {
///     let g = c.acquire().unwrap();
///     if g.notify(1) == 1 {
///         break; // the waiter was waiting, and is now notified
///     }
///     drop(g);
///     std::thread::yield_now();
/// }
/// assert!(waiter.join().unwrap());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Condition {
    state: Shared<CondState>,
    lock: CondLock,
}

/// What a waiting thread gave up and must take back.
enum Saved {
    Lock,
    RLock(u32),
}

impl Condition {
    /// Creates a condition over a fresh process-shared [`RLock`], like
    /// `multiprocessing.Condition()`.
    ///
    /// # Errors
    /// The OS error if shared memory cannot be created or mapped.
    ///
    /// ```
    /// let c = concur::process::sync::Condition::new()?;
    /// let g = c.acquire().unwrap();
    /// assert_eq!(g.notify(1), 0); // nobody waits
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> io::Result<Self> {
        Self::build(CondLock::RLock(RLock::new()?))
    }

    /// Creates a condition over `lock` (typically a clone of a lock used elsewhere).
    ///
    /// # Errors
    /// As for [`new`](Condition::new).
    ///
    /// ```
    /// use concur::process::sync::{Condition, Lock};
    /// let lock = Lock::new()?;
    /// let c = Condition::with_lock(lock.clone())?;
    /// let _g = c.acquire().unwrap();
    /// assert!(lock.locked());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_lock(lock: Lock) -> io::Result<Self> {
        Self::build(CondLock::Lock(lock))
    }

    /// Creates a condition over the reentrant lock `rlock`.
    ///
    /// # Errors
    /// As for [`new`](Condition::new).
    ///
    /// ```
    /// use concur::process::sync::{Condition, RLock};
    /// let r = RLock::new()?;
    /// let c = Condition::with_rlock(r.clone())?;
    /// let _outer = r.acquire().unwrap();
    /// let _g = c.acquire().unwrap(); // reentrant: does not block
    /// assert_eq!(r.count(), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_rlock(rlock: RLock) -> io::Result<Self> {
        Self::build(CondLock::RLock(rlock))
    }

    fn build(lock: CondLock) -> io::Result<Self> {
        let state = Shared::create("concur-condition", kind::CONDITION, |_: &CondState| Ok(()))?;
        Ok(Condition { state, lock })
    }

    /// Blocks until the underlying lock is acquired.
    ///
    /// # Errors
    /// [`OwnerDied`] (holding the guard) if the lock's previous holder died holding it.
    ///
    /// # Panics
    /// Over a [`Lock`], if the calling thread already holds it.
    ///
    /// ```
    /// let c = concur::process::sync::Condition::new()?;
    /// let g = c.acquire().unwrap();
    /// assert!(g.condition().ptr_eq(&c));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn acquire(&self) -> AcquireResult<ConditionGuard<'_>> {
        let r: AcquireResult<()> = match &self.lock {
            CondLock::Lock(l) => l
                .acquire()
                .map(|g| g.leak())
                .map_err(|e| e.map(|g| g.leak())),
            CondLock::RLock(r) => r
                .acquire()
                .map(|g| g.leak())
                .map_err(|e| e.map(|g| g.leak())),
        };
        r.map(|()| self.guard())
            .map_err(|e| e.map(|()| self.guard()))
    }

    /// Acquires the underlying lock if that is possible at once.
    ///
    /// # Errors
    /// As for [`Lock::try_acquire`].
    ///
    /// ```
    /// let c = concur::process::sync::Condition::new()?;
    /// assert!(c.try_acquire().is_ok());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_acquire(&self) -> TryAcquireResult<ConditionGuard<'_>> {
        let r = match &self.lock {
            CondLock::Lock(l) => leak(l.try_acquire(), |g| g.leak()),
            CondLock::RLock(r) => leak(r.try_acquire(), |g| g.leak()),
        };
        self.wrap(r)
    }

    /// Blocks for at most `timeout` to acquire the underlying lock.
    ///
    /// # Errors
    /// As for [`Lock::acquire_timeout`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = concur::process::sync::Condition::new()?;
    /// assert!(c.acquire_timeout(Duration::from_millis(10)).is_ok());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> TryAcquireResult<ConditionGuard<'_>> {
        match deadline_after(timeout) {
            Some(d) => self.acquire_deadline(d),
            None => self.acquire().map_err(TryAcquireError::from),
        }
    }

    /// Blocks until `deadline` at the latest to acquire the underlying lock.
    ///
    /// # Errors
    /// As for [`Lock::acquire_deadline`].
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let c = concur::process::sync::Condition::new()?;
    /// assert!(c.acquire_deadline(Instant::now() + Duration::from_secs(1)).is_ok());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn acquire_deadline(&self, deadline: Instant) -> TryAcquireResult<ConditionGuard<'_>> {
        let r = match &self.lock {
            CondLock::Lock(l) => leak(l.acquire_deadline(deadline), |g| g.leak()),
            CondLock::RLock(r) => leak(r.acquire_deadline(deadline), |g| g.leak()),
        };
        self.wrap(r)
    }

    fn wrap(&self, r: TryAcquireResult<()>) -> TryAcquireResult<ConditionGuard<'_>> {
        match r {
            Ok(()) => Ok(self.guard()),
            Err(TryAcquireError::WouldBlock) => Err(TryAcquireError::WouldBlock),
            Err(TryAcquireError::OwnerDied(e)) => Err(e.map(|()| self.guard()).into()),
        }
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
    /// let c = concur::process::sync::Condition::new()?;
    /// assert!(c.ptr_eq(&c.clone()));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ptr_eq(&self, other: &Self) -> bool {
        self.state.same(&other.state)
    }

    fn release_save(&self) -> Saved {
        match &self.lock {
            CondLock::Lock(l) => {
                l.release_held();
                Saved::Lock
            }
            CondLock::RLock(r) => Saved::RLock(r.release_save()),
        }
    }

    /// Takes the lock back; true if a previous holder died meanwhile.
    fn restore(&self, saved: Saved) -> bool {
        match (&self.lock, saved) {
            (CondLock::Lock(l), _) => match l.raw().acquire(Wait::Until(None)) {
                Outcome::Acquired { owner_died } => owner_died,
                other => unreachable!("restoring a released Lock: {other:?}"),
            },
            (CondLock::RLock(r), Saved::RLock(c)) => r.acquire_restore(c),
            (CondLock::RLock(r), Saved::Lock) => r.acquire_restore(1),
        }
    }

    /// Waits (holding the lock on entry and exit); returns (notified, owner died).
    fn wait_until(&self, deadline: Option<Instant>) -> (bool, bool) {
        let s = self.state.get();
        s.waiters.fetch_add(1, Ordering::Relaxed);
        let mut died = false;
        loop {
            let seq = s.seq.load(Ordering::Relaxed);
            let saved = self.release_save();
            futex::wait(&s.seq, seq, deadline);
            died |= self.restore(saved);
            let t = s.tokens.load(Ordering::Relaxed);
            if t > 0 {
                s.tokens.store(t - 1, Ordering::Relaxed);
                s.waiters.fetch_sub(1, Ordering::Relaxed);
                return (true, died);
            }
            if expired(deadline) {
                s.waiters.fetch_sub(1, Ordering::Relaxed);
                return (false, died);
            }
        }
    }

    fn release_held(&self) {
        match &self.lock {
            CondLock::Lock(l) => l.release_held(),
            CondLock::RLock(r) => r.release_held(),
        }
    }
}

/// Turns an acquisition result into one about the acquisition only (the guard leaked:
/// the `ConditionGuard` takes over releasing).
fn leak<G>(r: TryAcquireResult<G>, f: impl Fn(G)) -> TryAcquireResult<()> {
    match r {
        Ok(g) => {
            f(g);
            Ok(())
        }
        Err(TryAcquireError::WouldBlock) => Err(TryAcquireError::WouldBlock),
        Err(TryAcquireError::OwnerDied(e)) => Err(e.map(f).into()),
    }
}

#[derive(Serialize, Deserialize)]
struct CondWire {
    state: Wire,
    lock: CondLock,
}

impl Serialize for Condition {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        CondWire {
            state: self.state.to_wire(),
            lock: self.lock.clone(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = CondWire::deserialize(d)?;
        let state = Shared::from_wire(w.state, kind::CONDITION)
            .map_err(<D::Error as serde::de::Error>::custom)?;
        Ok(Condition {
            state,
            lock: w.lock,
        })
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Condition");
        match &self.lock {
            CondLock::Lock(l) => d.field("lock", l),
            CondLock::RLock(r) => d.field("lock", r),
        };
        d.finish_non_exhaustive()
    }
}

/// Proof that the calling thread holds a [`Condition`]'s lock; waits and notifies
/// happen through it. Releases the lock (one level of an `RLock`) when dropped. Not
/// `Send`.
///
/// ```
/// let c = concur::process::sync::Condition::new()?;
/// let mut g = c.acquire().unwrap();
/// assert_eq!(g.wait_timeout(std::time::Duration::from_millis(5)).unwrap(), false);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// A guard cannot move to another thread (the C library requires the owner to unlock):
///
/// ```compile_fail
/// fn send<T: Send>(_: T) {}
/// let lock = concur::process::sync::Condition::new().unwrap();
/// send(lock.acquire().unwrap());
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ConditionGuard<'a> {
    cond: &'a Condition,
    _not_send: PhantomData<*const ()>,
}

impl<'a> ConditionGuard<'a> {
    /// The condition this guard belongs to.
    ///
    /// ```
    /// let c = concur::process::sync::Condition::new()?;
    /// assert!(c.acquire().unwrap().condition().ptr_eq(&c));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn condition(&self) -> &'a Condition {
        self.cond
    }

    fn result<T>(value: T, died: bool) -> AcquireResult<T> {
        if died {
            Err(OwnerDied::new(value))
        } else {
            Ok(value)
        }
    }

    /// Releases the lock, blocks until notified, and takes the lock back.
    ///
    /// # Errors
    /// [`OwnerDied`] if, while this thread waited, a holder of the lock died holding
    /// it (the lock is held again when this returns, either way).
    ///
    /// ```
    /// use concur::process::sync::Condition;
    /// let c = Condition::new()?;
    /// let c2 = c.clone();
    /// let t = std::thread::spawn(move || {
    ///     let mut g = c2.acquire().unwrap();
    ///     g.wait().unwrap();
    /// });
    /// while !t.is_finished() {
    ///     c.acquire().unwrap().notify_all();
    ///     std::thread::yield_now();
    /// }
    /// t.join().unwrap();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait(&mut self) -> AcquireResult<()> {
        let (_, died) = self.cond.wait_until(None);
        Self::result((), died)
    }

    /// Like [`wait`](ConditionGuard::wait) for at most `timeout`; `Ok(false)` if not
    /// notified in time. A timeout too large to represent waits forever.
    ///
    /// # Errors
    /// As for [`wait`](ConditionGuard::wait), carrying the same boolean.
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = concur::process::sync::Condition::new()?;
    /// let mut g = c.acquire().unwrap();
    /// assert_eq!(g.wait_timeout(Duration::from_millis(10)).unwrap(), false);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_timeout(&mut self, timeout: Duration) -> AcquireResult<bool> {
        let (n, died) = self.cond.wait_until(deadline_after(timeout));
        Self::result(n, died)
    }

    /// Like [`wait`](ConditionGuard::wait) until `deadline` at the latest.
    ///
    /// # Errors
    /// As for [`wait_timeout`](ConditionGuard::wait_timeout).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let c = concur::process::sync::Condition::new()?;
    /// let mut g = c.acquire().unwrap();
    /// assert_eq!(g.wait_deadline(Instant::now() + Duration::from_millis(5)).unwrap(), false);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_deadline(&mut self, deadline: Instant) -> AcquireResult<bool> {
        let (n, died) = self.cond.wait_until(Some(deadline));
        Self::result(n, died)
    }

    /// Waits until `pred()` is true (checked with the lock held; Python's `wait_for`).
    /// Returns the last value of `pred`, so always `Ok(true)` here.
    ///
    /// # Errors
    /// [`OwnerDied`] with the result if a holder of the lock died during the wait.
    ///
    /// ```
    /// let c = concur::process::sync::Condition::new()?;
    /// let mut g = c.acquire().unwrap();
    /// assert!(g.wait_for(|| true).unwrap());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_for(&mut self, pred: impl FnMut() -> bool) -> AcquireResult<bool> {
        self.wait_for_until(None, pred)
    }

    /// Like [`wait_for`](ConditionGuard::wait_for) for at most `timeout`; returns the
    /// last value of `pred`.
    ///
    /// # Errors
    /// As for [`wait_for`](ConditionGuard::wait_for).
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = concur::process::sync::Condition::new()?;
    /// let mut g = c.acquire().unwrap();
    /// assert_eq!(g.wait_for_timeout(Duration::from_millis(10), || false).unwrap(), false);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_for_timeout(
        &mut self,
        timeout: Duration,
        pred: impl FnMut() -> bool,
    ) -> AcquireResult<bool> {
        self.wait_for_until(deadline_after(timeout), pred)
    }

    /// Like [`wait_for`](ConditionGuard::wait_for) until `deadline` at the latest.
    ///
    /// # Errors
    /// As for [`wait_for`](ConditionGuard::wait_for).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let c = concur::process::sync::Condition::new()?;
    /// let mut g = c.acquire().unwrap();
    /// let d = Instant::now() + Duration::from_millis(5);
    /// assert_eq!(g.wait_for_deadline(d, || false).unwrap(), false);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_for_deadline(
        &mut self,
        deadline: Instant,
        pred: impl FnMut() -> bool,
    ) -> AcquireResult<bool> {
        self.wait_for_until(Some(deadline), pred)
    }

    fn wait_for_until(
        &mut self,
        deadline: Option<Instant>,
        mut pred: impl FnMut() -> bool,
    ) -> AcquireResult<bool> {
        let mut died = false;
        let mut result = pred();
        while !result {
            if expired(deadline) {
                break;
            }
            died |= self.cond.wait_until(deadline).1;
            result = pred();
        }
        Self::result(result, died)
    }

    /// Wakes up to `n` waiting threads (of any process); returns how many were
    /// notified. Exactly that many `wait`s return "notified".
    ///
    /// ```
    /// let c = concur::process::sync::Condition::new()?;
    /// assert_eq!(c.acquire().unwrap().notify(3), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn notify(&self, n: usize) -> usize {
        let s = self.cond.state.get();
        let waiting = s.waiters.load(Ordering::Relaxed);
        let tokens = s.tokens.load(Ordering::Relaxed);
        let k = waiting
            .saturating_sub(tokens)
            .min(u32::try_from(n).unwrap_or(u32::MAX));
        if k > 0 {
            s.tokens.store(tokens + k, Ordering::Relaxed);
            s.seq.fetch_add(1, Ordering::Relaxed);
            futex::wake(&s.seq, k);
        }
        k as usize
    }

    /// Wakes every waiting thread; returns how many were notified.
    ///
    /// ```
    /// let c = concur::process::sync::Condition::new()?;
    /// assert_eq!(c.acquire().unwrap().notify_all(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn notify_all(&self) -> usize {
        self.notify(usize::MAX)
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
