//! `Barrier`: Python's `threading.Barrier`, a reusable rendezvous for a fixed number of
//! threads.
//!
//! A port of CPython's state machine (`Lib/threading.py`), with its state and the
//! waiting threads in one [`WaitQueue`]:
//!
//! | `phase`     | meaning                                                       |
//! |-------------|---------------------------------------------------------------|
//! | `FILLING`   | threads arrive and wait for the last one                      |
//! | `ACTION`    | the last thread runs the action (without the queue lock)      |
//! | `DRAINING`  | released threads leave; new arrivals wait for the next cycle  |
//! | `RESETTING` | `reset` while threads waited: they fail, then back to filling |
//! | `BROKEN`    | a timeout, `abort` or panicking action broke it until `reset` |
//!
//! `ACTION` is ours: CPython runs the action holding the condition's lock; we drop the
//! lock so the action may call back into the barrier (`n_waiting`, `parties`), and keep
//! everyone else out (arrivals, `abort`, `reset` wait while it runs, as they would wait
//! for CPython's lock). The last thread out of a `DRAINING` or `RESETTING` cycle turns
//! the barrier back to `FILLING`.

use super::waiters::{QueueGuard, WaitQueue};
use crate::shim::Arc;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::{Duration, Instant};

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Phase {
    Filling,
    Action,
    Draining,
    Resetting,
    Broken,
}

struct State {
    phase: Phase,
    /// Threads inside `wait` (arrived and not yet left).
    count: usize,
    /// Why the barrier is broken (meaningful in `Broken`).
    cause: BrokenKind,
}

type Action = Box<dyn Fn() + Send + Sync>;

struct Inner {
    parties: usize,
    action: Option<Action>,
    timeout: Option<Duration>,
    queue: WaitQueue<State>,
}

/// A reusable barrier: Python's `threading.Barrier`, as a cheaply cloneable handle.
///
/// [`wait`](Barrier::wait) blocks until `parties` threads have called it, then
/// releases them all and returns each a distinct index in `0..parties` (as in Python,
/// the first to arrive gets 0 and the last `parties - 1`). The barrier then resets
/// itself for the next cycle. An optional action runs exactly once per cycle, in the
/// last thread to arrive, before anyone is released.
///
/// A wait that times out, an [`abort`](Barrier::abort) or a panicking action *breaks*
/// the barrier: every thread waiting, and every later `wait`, fails with
/// [`BrokenBarrierError`] until [`reset`](Barrier::reset).
///
/// # Examples
///
/// ```
/// use concur::sync::Barrier;
/// use std::thread;
///
/// let b = Barrier::new(3);
/// let hs: Vec<_> = (0..3).map(|_| { let b = b.clone(); thread::spawn(move || b.wait()) }).collect();
/// let mut idx: Vec<usize> = hs.into_iter().map(|h| h.join().unwrap().unwrap()).collect();
/// idx.sort();
/// assert_eq!(idx, [0, 1, 2]);
/// ```
pub struct Barrier {
    inner: Arc<Inner>,
}

/// Builds a [`Barrier`] with an action and/or a default timeout; made by
/// [`Barrier::builder`].
///
/// ```
/// use concur::sync::{Barrier, BrokenKind};
/// use std::time::Duration;
/// let b = Barrier::builder(2).timeout(Duration::from_millis(10)).build();
/// assert_eq!(b.parties(), 2);
/// // Nobody else comes: the default timeout ends the wait and breaks the barrier.
/// assert_eq!(b.wait().unwrap_err().kind(), BrokenKind::Timeout);
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct BarrierBuilder {
    parties: usize,
    action: Option<Action>,
    timeout: Option<Duration>,
}

impl BarrierBuilder {
    /// Runs `action` once per cycle, in the last thread to arrive, before the others
    /// are released (Python's `action=`). If it panics, the barrier breaks, the other
    /// waiters get [`BrokenBarrierError`] and the panic propagates out of the `wait`
    /// of the thread that ran it, as the exception does in Python.
    ///
    /// ```
    /// use concur::sync::{Barrier, Lock};
    /// let log = Lock::with_value(Vec::new());
    /// let l = log.clone();
    /// let b = Barrier::builder(2).action(move || l.acquire().push("action")).build();
    /// let b2 = b.clone();
    /// let l2 = log.clone();
    /// let t = std::thread::spawn(move || {
    ///     b2.wait().unwrap();
    ///     l2.acquire().push("released");
    /// });
    /// b.wait().unwrap();
    /// t.join().unwrap();
    /// assert_eq!(log.acquire()[0], "action"); // before anyone was released
    /// assert_eq!(log.acquire().len(), 2);
    /// ```
    pub fn action(mut self, action: impl Fn() + Send + Sync + 'static) -> Self {
        self.action = Some(Box::new(action));
        self
    }

    /// The timeout of [`Barrier::wait`] (Python's `timeout=`); without one, `wait`
    /// waits forever. [`wait_timeout`](Barrier::wait_timeout) and
    /// [`wait_deadline`](Barrier::wait_deadline) ignore it.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let b = concur::sync::Barrier::builder(2).timeout(Duration::from_millis(20)).build();
    /// let start = Instant::now();
    /// assert!(b.wait().unwrap_err().is_timeout());
    /// assert!(start.elapsed() >= Duration::from_millis(20));
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Makes the barrier.
    ///
    /// # Panics
    /// If `parties` is 0 (Python raises `ValueError`).
    ///
    /// ```
    /// use concur::sync::Barrier;
    /// let b = Barrier::builder(1).build();
    /// assert_eq!(b.wait(), Ok(0)); // one party: never blocks
    /// assert!(std::panic::catch_unwind(|| Barrier::builder(0).build()).is_err());
    /// ```
    #[track_caller]
    pub fn build(self) -> Barrier {
        assert!(self.parties > 0, "a Barrier needs at least one party");
        Barrier {
            inner: Arc::new(Inner {
                parties: self.parties,
                action: self.action,
                timeout: self.timeout,
                queue: WaitQueue::new(State {
                    phase: Phase::Filling,
                    count: 0,
                    cause: BrokenKind::Aborted,
                }),
            }),
        }
    }
}

impl fmt::Debug for BarrierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BarrierBuilder")
            .field("parties", &self.parties)
            .field("action", &self.action.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Barrier {
    /// A barrier for `parties` threads, with no action and no default timeout.
    ///
    /// # Panics
    /// If `parties` is 0.
    ///
    /// ```
    /// assert_eq!(concur::sync::Barrier::new(4).parties(), 4);
    /// ```
    #[track_caller]
    #[must_use]
    pub fn new(parties: usize) -> Self {
        Self::builder(parties).build()
    }

    /// A builder for a barrier with an action or a default timeout.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// let runs = Arc::new(AtomicUsize::new(0));
    /// let r2 = runs.clone();
    /// let b = concur::sync::Barrier::builder(1)
    ///     .action(move || { r2.fetch_add(1, Ordering::Relaxed); })
    ///     .build();
    /// b.wait().unwrap();
    /// b.wait().unwrap();
    /// assert_eq!(runs.load(Ordering::Relaxed), 2);
    /// ```
    pub fn builder(parties: usize) -> BarrierBuilder {
        BarrierBuilder {
            parties,
            action: None,
            timeout: None,
        }
    }

    /// Blocks until all parties have arrived (or the default timeout given to the
    /// builder passes); returns this thread's index in `0..parties`.
    ///
    /// # Errors
    /// [`BrokenBarrierError`] if the barrier is or becomes broken (a timeout — this
    /// thread's or another's —, [`abort`](Barrier::abort), a panicking action) or is
    /// [`reset`](Barrier::reset) while this thread waits.
    ///
    /// # Panics
    /// Re-raises the panic of the action, in the thread that ran it.
    ///
    /// ```
    /// let b = concur::sync::Barrier::new(1);
    /// assert_eq!(b.wait(), Ok(0));
    /// ```
    pub fn wait(&self) -> Result<usize, BrokenBarrierError> {
        self.wait_until(self.inner.timeout.and_then(crate::time::deadline_after))
    }

    /// Like [`wait`](Barrier::wait) with this `timeout` instead of the default one. A
    /// timeout breaks the barrier for everyone, as in Python.
    ///
    /// # Errors
    /// As for [`wait`](Barrier::wait); [`BrokenKind::Timeout`] in the thread whose
    /// timeout broke it.
    ///
    /// ```
    /// use concur::sync::{Barrier, BrokenKind};
    /// use std::time::Duration;
    /// let b = Barrier::new(2);
    /// let e = b.wait_timeout(Duration::from_millis(10)).unwrap_err();
    /// assert_eq!(e.kind(), BrokenKind::Timeout);
    /// assert!(b.broken());
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, BrokenBarrierError> {
        self.wait_until(crate::time::deadline_after(timeout))
    }

    /// Like [`wait`](Barrier::wait) until `deadline` at the latest.
    ///
    /// # Errors
    /// As for [`wait_timeout`](Barrier::wait_timeout).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let b = concur::sync::Barrier::new(2);
    /// assert!(b.wait_deadline(Instant::now() + Duration::from_millis(5)).is_err());
    /// ```
    pub fn wait_deadline(&self, deadline: Instant) -> Result<usize, BrokenBarrierError> {
        self.wait_until(Some(deadline))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<usize, BrokenBarrierError> {
        let inner = &*self.inner;
        // Enter: wait out an action, a drain or a reset in progress.
        let (mut g, _) = inner.queue.lock().wait_until(None, |s| {
            !matches!(s.phase, Phase::Action | Phase::Draining | Phase::Resetting)
        });
        if g.phase == Phase::Broken {
            return Err(BrokenBarrierError { kind: g.cause });
        }
        let index = g.count;
        g.count += 1;
        let result = if index + 1 == inner.parties {
            match &inner.action {
                None => {}
                Some(action) => {
                    g.phase = Phase::Action;
                    drop(g);
                    let r = catch_unwind(AssertUnwindSafe(action));
                    g = inner.queue.lock();
                    if let Err(payload) = r {
                        Self::break_locked(&mut g, BrokenKind::ActionPanicked);
                        Self::leave(&mut g);
                        drop(g);
                        resume_unwind(payload);
                    }
                }
            }
            g.phase = Phase::Draining;
            g.notify(usize::MAX);
            Ok(index)
        } else {
            let pred = |s: &mut State| !matches!(s.phase, Phase::Filling | Phase::Action);
            let (g2, mut ok) = g.wait_until(deadline, pred);
            g = g2;
            if !ok && g.phase == Phase::Action {
                // The deadline passed while the action ran: in CPython this thread would
                // still be waiting for the lock the action holds, so it is not late.
                let (g2, ok2) = g.wait_until(None, pred);
                g = g2;
                ok = ok2;
            }
            if !ok {
                Self::break_locked(&mut g, BrokenKind::Timeout);
                Err(BrokenBarrierError {
                    kind: BrokenKind::Timeout,
                })
            } else {
                match g.phase {
                    Phase::Draining => Ok(index),
                    Phase::Resetting => Err(BrokenBarrierError {
                        kind: BrokenKind::Reset,
                    }),
                    _ => Err(BrokenBarrierError { kind: g.cause }),
                }
            }
        };
        Self::leave(&mut g);
        result
    }

    /// One thread leaves `wait`; the last one out ends a drain or a reset.
    fn leave(g: &mut QueueGuard<'_, State>) {
        g.count -= 1;
        if g.count == 0 && matches!(g.phase, Phase::Draining | Phase::Resetting) {
            g.phase = Phase::Filling;
            g.notify(usize::MAX);
        }
    }

    fn break_locked(g: &mut QueueGuard<'_, State>, kind: BrokenKind) {
        g.phase = Phase::Broken;
        g.cause = kind;
        g.notify(usize::MAX);
    }

    /// Locks the state once no action is running.
    fn lock_idle(&self) -> QueueGuard<'_, State> {
        self.inner
            .queue
            .lock()
            .wait_until(None, |s| s.phase != Phase::Action)
            .0
    }

    /// Breaks the barrier: every waiting thread and every later `wait` fails with
    /// [`BrokenKind::Aborted`] until [`reset`](Barrier::reset). Waits for a running
    /// action to finish first.
    ///
    /// ```
    /// let b = concur::sync::Barrier::new(2);
    /// b.abort();
    /// assert!(b.broken());
    /// assert!(b.wait().is_err());
    /// ```
    pub fn abort(&self) {
        let mut g = self.lock_idle();
        Self::break_locked(&mut g, BrokenKind::Aborted);
    }

    /// Returns the barrier to its initial, unbroken state. Threads waiting in it fail
    /// with [`BrokenKind::Reset`]. Waits for a running action to finish first.
    ///
    /// ```
    /// let b = concur::sync::Barrier::new(1);
    /// b.abort();
    /// b.reset();
    /// assert!(!b.broken());
    /// assert_eq!(b.wait(), Ok(0));
    /// ```
    pub fn reset(&self) {
        let mut g = self.lock_idle();
        if g.count > 0 {
            if matches!(g.phase, Phase::Filling | Phase::Broken) {
                g.phase = Phase::Resetting;
            }
        } else {
            g.phase = Phase::Filling;
        }
        g.notify(usize::MAX);
    }

    /// The number of threads currently waiting for the others (0 while draining).
    ///
    /// ```
    /// assert_eq!(concur::sync::Barrier::new(2).n_waiting(), 0);
    /// ```
    pub fn n_waiting(&self) -> usize {
        let g = self.inner.queue.lock();
        if matches!(g.phase, Phase::Filling | Phase::Action) {
            g.count
        } else {
            0
        }
    }

    /// The number of threads needed to pass the barrier.
    ///
    /// ```
    /// assert_eq!(concur::sync::Barrier::new(3).parties(), 3);
    /// ```
    pub fn parties(&self) -> usize {
        self.inner.parties
    }

    /// Whether the barrier is broken.
    ///
    /// ```
    /// let b = concur::sync::Barrier::new(2);
    /// assert!(!b.broken());
    /// ```
    pub fn broken(&self) -> bool {
        self.inner.queue.lock().phase == Phase::Broken
    }

    /// True if both handles refer to the same barrier.
    ///
    /// ```
    /// let b = concur::sync::Barrier::new(2);
    /// assert!(b.ptr_eq(&b.clone()));
    /// ```
    pub fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Clone for Barrier {
    fn clone(&self) -> Self {
        Barrier {
            inner: self.inner.clone(),
        }
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties())
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.broken())
            .finish_non_exhaustive()
    }
}

/// Why a barrier was broken: [`BrokenBarrierError::kind`].
///
/// ```
/// use concur::sync::{Barrier, BrokenKind};
/// use std::time::Duration;
/// let b = Barrier::new(2);
/// assert_eq!(b.wait_timeout(Duration::ZERO).unwrap_err().kind(), BrokenKind::Timeout);
/// b.reset();
/// b.abort();
/// assert_eq!(b.wait().unwrap_err().kind(), BrokenKind::Aborted);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BrokenKind {
    /// A `wait` timed out.
    Timeout,
    /// [`Barrier::abort`] was called.
    Aborted,
    /// The action panicked.
    ActionPanicked,
    /// [`Barrier::reset`] was called while this thread waited.
    Reset,
}

/// A barrier wait failed because the barrier is broken: Python's
/// `threading.BrokenBarrierError`. [`kind`](BrokenBarrierError::kind) tells why.
///
/// ```
/// use concur::sync::{Barrier, BrokenKind};
/// let b = Barrier::new(2);
/// b.abort();
/// let err = b.wait().unwrap_err();
/// assert_eq!(err.kind(), BrokenKind::Aborted);
/// assert!(!err.is_timeout());
/// assert_eq!(err.to_string(), "barrier is broken");
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct BrokenBarrierError {
    kind: BrokenKind,
}

impl BrokenBarrierError {
    /// The error of a barrier broken because of `kind`: for barriers built outside
    /// this crate (the process tier's `Barrier` reports with this very type).
    ///
    /// ```
    /// use concur::sync::{BrokenBarrierError, BrokenKind};
    /// let e = BrokenBarrierError::new(BrokenKind::Timeout);
    /// assert!(e.is_timeout());
    /// ```
    pub fn new(kind: BrokenKind) -> Self {
        BrokenBarrierError { kind }
    }

    /// Why the barrier broke (for this thread).
    ///
    /// ```
    /// use concur::sync::{Barrier, BrokenKind};
    /// let b = Barrier::new(2);
    /// b.abort();
    /// assert_eq!(b.wait().unwrap_err().kind(), BrokenKind::Aborted);
    /// ```
    pub fn kind(&self) -> BrokenKind {
        self.kind
    }

    /// True if a timeout broke the barrier.
    ///
    /// ```
    /// let b = concur::sync::Barrier::new(2);
    /// assert!(b.wait_timeout(std::time::Duration::ZERO).unwrap_err().is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        self.kind == BrokenKind::Timeout
    }
}

impl fmt::Display for BrokenBarrierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("barrier is broken")
    }
}

impl std::error::Error for BrokenBarrierError {}
