//! `Barrier`: Python's `multiprocessing.Barrier`, a reusable rendezvous for a fixed
//! number of parties across processes.
//!
//! # Shared state (`BarrierState`)
//!
//! All fields but `seq` change only under `mutex` (a robust process-shared mutex held
//! only inside this module's functions, never across user code), so `Relaxed` atomics
//! suffice for them:
//!
//! | field        | meaning                                                        |
//! |--------------|----------------------------------------------------------------|
//! | `cycle`      | the current cycle; a cycle ends by release or by `reset`       |
//! | `count`      | parties arrived in the current cycle                           |
//! | `broken`     | 1 while broken (a timeout, `abort`, a dead mutex holder)       |
//! | `cause`      | why it is broken ([`BrokenKind`] as a number)                  |
//! | `resets`     | bit `g % 64` set iff cycle `g` ended by `reset`                |
//! | `seq`        | futex word, bumped (under the mutex) on every change above     |
//! | `parties`, `timeout_ns` | fixed at creation                                   |
//!
//! A waiter notes the cycle it joined and sleeps until the cycle changes (released, or
//! reset if its `resets` bit says so) or the barrier breaks. Unlike CPython's
//! threading barrier there is no draining phase: the last arrival starts the next cycle
//! at once, so a process that dies while waiting cannot wedge the barrier — it simply
//! counts as having arrived. (The outcome is exact unless a waiter sleeps through 64
//! later cycles.) Sleeping releases the mutex and waits on `seq`; every change bumps
//! `seq` under the mutex before waking, so no wake-up is lost.
//!
//! No barrier action: a closure cannot travel to other processes.

use super::futex;
use super::robust::{Attempt, RobustMutex};
use super::shared::{Shared, SharedHandle, SharedState, Tag, kind, shared_serde};
use super::{BrokenBarrierError, BrokenKind};
use concur_core::time::{deadline_after, expired};
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The state of a process-shared barrier. See the module docs.
#[repr(C)]
pub(crate) struct BarrierState {
    tag: Tag,
    mutex: RobustMutex,
    seq: AtomicU32,
    parties: AtomicU32,
    cycle: AtomicU32,
    count: AtomicU32,
    broken: AtomicU32,
    cause: AtomicU32,
    resets: AtomicU64,
    timeout_ns: AtomicU64,
}

// SAFETY: `repr(C)`, starts with the tag, made of atomics and the `UnsafeCell`-based
// `RobustMutex` only; alignment 8.
unsafe impl SharedState for BarrierState {
    fn tag(&self) -> &Tag {
        &self.tag
    }
}

const NO_TIMEOUT: u64 = u64::MAX;

fn kind_to_u32(k: BrokenKind) -> u32 {
    match k {
        BrokenKind::Timeout => 1,
        BrokenKind::Reset => 3,
        _ => 2,
    }
}

fn kind_from_u32(k: u32) -> BrokenKind {
    match k {
        1 => BrokenKind::Timeout,
        3 => BrokenKind::Reset,
        _ => BrokenKind::Aborted,
    }
}

/// The barrier's mutex, held; unlocks on drop.
struct Held<'a> {
    s: &'a BarrierState,
}

impl Held<'_> {
    fn changed(&self) {
        self.s.seq.fetch_add(1, Ordering::Relaxed);
        futex::wake_all(&self.s.seq);
    }

    fn break_with(&self, kind: BrokenKind) {
        self.s.broken.store(1, Ordering::Relaxed);
        self.s.cause.store(kind_to_u32(kind), Ordering::Relaxed);
        self.changed();
    }

    /// Ends the current cycle (released, or reset) and starts the next one.
    fn end_cycle(&self, reset: bool) {
        let s = self.s;
        let g = s.cycle.load(Ordering::Relaxed);
        let bit = 1u64 << (g % 64);
        if reset {
            s.resets.fetch_or(bit, Ordering::Relaxed);
        } else {
            s.resets.fetch_and(!bit, Ordering::Relaxed);
        }
        s.cycle.store(g.wrapping_add(1), Ordering::Relaxed);
        s.count.store(0, Ordering::Relaxed);
        self.changed();
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.s.mutex.unlock();
    }
}

/// A reusable barrier shared between processes: Python's `multiprocessing.Barrier`, as
/// a cheaply cloneable, serializable handle.
///
/// [`wait`](Barrier::wait) blocks until `parties` threads (of any processes) have
/// called it, then releases them all and returns each one's arrival index. Waiting
/// comes in three timed forms (`wait` uses the builder's default timeout, if any);
/// a timeout breaks the barrier for everyone, as in Python, until
/// [`reset`](Barrier::reset). There is no barrier action (closures cannot travel
/// between processes). A process that dies while waiting counts as having arrived.
///
/// ```
/// use concur::process::sync::Barrier;
/// let b = Barrier::new(2)?;
/// let b2 = b.clone();
/// let t = std::thread::spawn(move || b2.wait().unwrap());
/// let mine = b.wait().unwrap();
/// let theirs = t.join().unwrap();
/// assert_eq!(mine + theirs, 1); // indices 0 and 1
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Barrier {
    shared: Shared<BarrierState>,
}

/// Builds a [`Barrier`] with a default timeout; made by [`Barrier::builder`].
///
/// ```
/// use std::time::Duration;
/// let b = concur::process::sync::Barrier::builder(2).timeout(Duration::from_millis(5)).build()?;
/// assert!(b.wait().unwrap_err().is_timeout());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct BarrierBuilder {
    parties: usize,
    timeout: Option<Duration>,
}

impl BarrierBuilder {
    /// The timeout [`Barrier::wait`] uses (Python's `timeout` argument), shared by
    /// every process using the barrier.
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = concur::process::sync::Barrier::builder(1).timeout(Duration::from_secs(1)).build()?;
    /// assert_eq!(b.wait(), Ok(0));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Creates the barrier in a shared memory page of its own.
    ///
    /// # Errors
    /// `InvalidInput` if `parties` is 0 or above `u32::MAX`; the OS error if the page
    /// cannot be created or mapped.
    ///
    /// ```
    /// assert!(concur::process::sync::Barrier::builder(0).build().is_err());
    /// ```
    pub fn build(self) -> io::Result<Barrier> {
        let parties = u32::try_from(self.parties)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("a Barrier needs 1..=u32::MAX parties, not {}", self.parties),
                )
            })?;
        let timeout = self.timeout.map_or(NO_TIMEOUT, |t| {
            u64::try_from(t.as_nanos()).unwrap_or(NO_TIMEOUT - 1)
        });
        Shared::create("concur-barrier", kind::BARRIER, |s: &BarrierState| {
            s.mutex.init()?;
            s.parties.store(parties, Ordering::Relaxed);
            s.timeout_ns.store(timeout, Ordering::Relaxed);
            Ok(())
        })
        .map(|shared| Barrier { shared })
    }
}

impl Barrier {
    /// Creates a barrier for `parties` threads, without a default timeout.
    ///
    /// # Errors
    /// As for [`BarrierBuilder::build`].
    ///
    /// ```
    /// assert_eq!(concur::process::sync::Barrier::new(3)?.parties(), 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(parties: usize) -> io::Result<Self> {
        Self::builder(parties).build()
    }

    /// A builder, to set a default timeout.
    ///
    /// ```
    /// let b = concur::process::sync::Barrier::builder(1).build()?;
    /// assert_eq!(b.wait(), Ok(0));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn builder(parties: usize) -> BarrierBuilder {
        BarrierBuilder {
            parties,
            timeout: None,
        }
    }

    fn state(&self) -> &BarrierState {
        self.shared.get()
    }

    fn lock(&self) -> Held<'_> {
        let s = self.state();
        match s.mutex.lock(None) {
            Attempt::Acquired => Held { s },
            Attempt::OwnerDied => {
                let h = Held { s };
                tracing::warn!("a process died inside a Barrier operation; breaking it");
                h.break_with(BrokenKind::Aborted);
                h
            }
            other => unreachable!("barrier mutex: {other:?}"),
        }
    }

    /// Blocks until all parties have arrived (or the default timeout passes); returns
    /// this thread's arrival index in `0..parties`.
    ///
    /// # Errors
    /// [`BrokenBarrierError`] (the thread tier's very type) if the barrier is or
    /// becomes broken (a timeout — this
    /// thread's or another's —, [`abort`](Barrier::abort)) or is
    /// [`reset`](Barrier::reset) while this thread waits.
    ///
    /// ```
    /// let b = concur::process::sync::Barrier::new(1)?;
    /// assert_eq!(b.wait(), Ok(0));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait(&self) -> Result<usize, BrokenBarrierError> {
        let t = self.state().timeout_ns.load(Ordering::Relaxed);
        let deadline = if t == NO_TIMEOUT {
            None
        } else {
            deadline_after(Duration::from_nanos(t))
        };
        self.wait_until(deadline)
    }

    /// Like [`wait`](Barrier::wait) with this `timeout` instead of the default one.
    /// A timeout breaks the barrier for everyone.
    ///
    /// # Errors
    /// As for [`wait`](Barrier::wait); [`BrokenKind::Timeout`] in the thread whose
    /// timeout broke it.
    ///
    /// ```
    /// use concur::process::sync::{Barrier, BrokenKind};
    /// use std::time::Duration;
    /// let b = Barrier::new(2)?;
    /// let e = b.wait_timeout(Duration::from_millis(10)).unwrap_err();
    /// assert_eq!(e.kind(), BrokenKind::Timeout);
    /// assert!(b.broken());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, BrokenBarrierError> {
        self.wait_until(deadline_after(timeout))
    }

    /// Like [`wait`](Barrier::wait) until `deadline` at the latest.
    ///
    /// # Errors
    /// As for [`wait_timeout`](Barrier::wait_timeout).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let b = concur::process::sync::Barrier::new(2)?;
    /// assert!(b.wait_deadline(Instant::now() + Duration::from_millis(5)).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_deadline(&self, deadline: Instant) -> Result<usize, BrokenBarrierError> {
        self.wait_until(Some(deadline))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<usize, BrokenBarrierError> {
        let s = self.state();
        let mut held = self.lock();
        if s.broken.load(Ordering::Relaxed) != 0 {
            return Err(BrokenBarrierError::new(kind_from_u32(
                s.cause.load(Ordering::Relaxed),
            )));
        }
        let cycle = s.cycle.load(Ordering::Relaxed);
        let index = s.count.load(Ordering::Relaxed);
        s.count.store(index + 1, Ordering::Relaxed);
        if index + 1 >= s.parties.load(Ordering::Relaxed) {
            held.end_cycle(false);
            return Ok(index as usize);
        }
        loop {
            if s.cycle.load(Ordering::Relaxed) != cycle {
                let reset = s.resets.load(Ordering::Relaxed) & (1u64 << (cycle % 64)) != 0;
                return if reset {
                    Err(BrokenBarrierError::new(BrokenKind::Reset))
                } else {
                    Ok(index as usize)
                };
            }
            if s.broken.load(Ordering::Relaxed) != 0 {
                s.count.fetch_sub(1, Ordering::Relaxed);
                return Err(BrokenBarrierError::new(kind_from_u32(
                    s.cause.load(Ordering::Relaxed),
                )));
            }
            if expired(deadline) {
                held.break_with(BrokenKind::Timeout);
                s.count.fetch_sub(1, Ordering::Relaxed);
                return Err(BrokenBarrierError::new(BrokenKind::Timeout));
            }
            let seq = s.seq.load(Ordering::Relaxed);
            drop(held);
            futex::wait(&s.seq, seq, deadline);
            held = self.lock();
        }
    }

    /// Breaks the barrier: every waiting thread and every later `wait` fails with
    /// [`BrokenKind::Aborted`] until [`reset`](Barrier::reset).
    ///
    /// ```
    /// let b = concur::process::sync::Barrier::new(2)?;
    /// b.abort();
    /// assert!(b.broken());
    /// assert!(b.wait().is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn abort(&self) {
        self.lock().break_with(BrokenKind::Aborted);
    }

    /// Returns the barrier to its initial, unbroken state. Threads waiting in it fail
    /// with [`BrokenKind::Reset`].
    ///
    /// ```
    /// let b = concur::process::sync::Barrier::new(1)?;
    /// b.abort();
    /// b.reset();
    /// assert!(!b.broken());
    /// assert_eq!(b.wait(), Ok(0));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reset(&self) {
        let held = self.lock();
        let s = self.state();
        s.broken.store(0, Ordering::Relaxed);
        if s.count.load(Ordering::Relaxed) > 0 {
            held.end_cycle(true);
        } else {
            held.changed();
        }
    }

    /// The number of threads currently waiting for the others.
    ///
    /// ```
    /// assert_eq!(concur::process::sync::Barrier::new(2)?.n_waiting(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn n_waiting(&self) -> usize {
        let _held = self.lock();
        let s = self.state();
        if s.broken.load(Ordering::Relaxed) != 0 {
            0
        } else {
            s.count.load(Ordering::Relaxed) as usize
        }
    }

    /// The number of parties needed to pass the barrier.
    ///
    /// ```
    /// assert_eq!(concur::process::sync::Barrier::new(3)?.parties(), 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn parties(&self) -> usize {
        self.state().parties.load(Ordering::Relaxed) as usize
    }

    /// Whether the barrier is broken.
    ///
    /// ```
    /// assert!(!concur::process::sync::Barrier::new(2)?.broken());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn broken(&self) -> bool {
        let _held = self.lock();
        self.state().broken.load(Ordering::Relaxed) != 0
    }

    /// True if both handles refer to the same barrier.
    ///
    /// ```
    /// let b = concur::process::sync::Barrier::new(2)?;
    /// assert!(b.ptr_eq(&b.clone()));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ptr_eq(&self, other: &Self) -> bool {
        self.shared.same(&other.shared)
    }
}

impl SharedHandle for Barrier {
    type State = BarrierState;
    const KIND: u32 = kind::BARRIER;
    fn shared(&self) -> &Shared<BarrierState> {
        &self.shared
    }
    fn from_shared(shared: Shared<BarrierState>) -> Self {
        Barrier { shared }
    }
}

shared_serde!(Barrier);

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties())
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.broken())
            .finish_non_exhaustive()
    }
}
