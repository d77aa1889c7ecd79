//! The locks under test, behind one adapter trait.
//!
//! [`BenchLock`] is the minimum a lock must offer to be measured: make one guarding a
//! `u64` counter, and increment that counter under the lock. [`Adapter`] turns any
//! `BenchLock` into a [`LockUnderTest`], which owns the measurement loops, so every
//! lock runs exactly the same code around its acquire and release.

use std::hint::black_box;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Which family a lock belongs to: ratios compare concur with the anchor of its family.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum Family {
    /// Non-reentrant mutual exclusion (`Lock`, `Mutex`).
    Lock,
    /// Reentrant locks (`RLock`, `ReentrantMutex`).
    Rlock,
    /// Bounded FIFO queues and channels.
    QueueBounded,
    /// Unbounded FIFO queues and channels.
    QueueUnbounded,
    /// Task pools: submit a task, read its result.
    Submit,
    /// Parallel map collected in order.
    Map,
    /// Starting a child process and joining it.
    ProcessStart,
    /// A message to a child process and back.
    PipeRoundTrip,
    /// Items streamed from a producer process through a process queue.
    ProcessQueue,
    /// Bulk writes into memory.
    BulkWrite,
    /// A request to a manager's server process and its reply (or a raw ping-pong).
    ManagerRoundTrip,
    /// A cluster task taken back from a killed worker and finished by another.
    Reclaim,
}

/// Who wrote the lock: concur itself or an anchor it is compared with.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum Origin {
    /// concur's own lock.
    Concur,
    /// The standard library.
    Std,
    /// parking_lot, the reference anchor for locks.
    ParkingLot,
    /// crossbeam-channel, the reference anchor for queues.
    Crossbeam,
    /// kanal, a reference anchor for queues (the fastest bounded channel measured).
    Kanal,
    /// flume, a reference anchor for queues.
    Flume,
    /// A naive `Mutex<VecDeque>` + `Condvar` queue written in the bench.
    Naive,
    /// CPython (`queue.Queue`, `concurrent.futures`, `multiprocessing`), run in a `python3` child process.
    Python,
    /// rayon, the reference anchor for task pools and parallel map.
    Rayon,
    /// The `threadpool` crate.
    Threadpool,
    /// procspawn's process pool, the reference Rust anchor for process pools.
    Procspawn,
    /// Plain sequential code on the calling thread.
    Sequential,
    /// The bare OS mechanism under a concur feature, written in the bench: an `exec`
    /// of the same binary, a socketpair ping-pong, a `memcpy`.
    Os,
    /// The bare `redis` client doing by hand the round the cluster tier does (the
    /// engine's ceiling), the reference anchor of the cluster suite.
    RedisBare,
    /// A Python task queue (Celery, Dramatiq, RQ) on the same Redis.
    TaskQueue,
}

impl Origin {
    /// Whether ratios are computed against subjects of this origin.
    pub(super) fn is_reference(self) -> bool {
        matches!(
            self,
            Origin::ParkingLot
                | Origin::Crossbeam
                | Origin::Kanal
                | Origin::Flume
                | Origin::Python
                | Origin::Rayon
                | Origin::Os
                | Origin::Procspawn
                | Origin::RedisBare
                | Origin::TaskQueue
        )
    }
}

/// A lock that can be measured: acquire, increment the guarded counter, release.
pub(super) trait BenchLock: Send + Sync + 'static {
    /// Display name, e.g. `concur::sync::Lock`.
    const NAME: &'static str;
    /// Family, for ratios.
    const FAMILY: Family;
    /// Origin, for ratios.
    const ORIGIN: Origin;
    /// A fresh, unlocked lock guarding a counter at 0.
    fn new() -> Self;
    /// One acquire / increment / release.
    fn increment(&self);
    /// The counter's value (taking the lock).
    fn value(&self) -> u64;
}

/// A lock as the harness sees it.
pub(super) trait LockUnderTest: Send + Sync {
    /// Display name.
    fn name(&self) -> &'static str;
    /// Family, for ratios.
    fn family(&self) -> Family;
    /// Origin, for ratios.
    fn origin(&self) -> Origin;
    /// `iters` acquire/increment/release on one thread; the elapsed time.
    ///
    /// # Errors
    /// A message if the counter is wrong afterwards.
    fn run_uncontended(&self, iters: u64) -> Result<Duration, String>;
    /// `threads` threads each doing `iters` acquire/increment/release on one shared
    /// lock, started together; the elapsed time from the common start to the last join.
    ///
    /// # Errors
    /// A message if a thread could not be spawned or panicked, or the count is wrong.
    fn run_contended(&self, threads: usize, iters: u64) -> Result<Duration, String>;
}

/// Runs the measurement loops for any [`BenchLock`].
pub(super) struct Adapter<L>(std::marker::PhantomData<fn() -> L>);

impl<L: BenchLock> Adapter<L> {
    /// The adapter for `L`.
    pub(super) fn boxed() -> Box<dyn LockUnderTest> {
        Box::new(Adapter::<L>(std::marker::PhantomData))
    }
}

impl<L: BenchLock> LockUnderTest for Adapter<L> {
    fn name(&self) -> &'static str {
        L::NAME
    }

    fn family(&self) -> Family {
        L::FAMILY
    }

    fn origin(&self) -> Origin {
        L::ORIGIN
    }

    fn run_uncontended(&self, iters: u64) -> Result<Duration, String> {
        let lock = L::new();
        let lock = black_box(&lock);
        let start = Instant::now();
        for _ in 0..iters {
            lock.increment();
        }
        let elapsed = start.elapsed();
        check_count(L::NAME, lock.value(), iters)?;
        Ok(elapsed)
    }

    fn run_contended(&self, threads: usize, iters: u64) -> Result<Duration, String> {
        let lock = L::new();
        // All threads start together: they spin (yielding) until `start` says GO, or
        // leave at once on ABORT if another thread could not be spawned.
        let start = AtomicU8::new(WAIT);
        let elapsed = std::thread::scope(|s| {
            let mut workers = Vec::with_capacity(threads);
            for t in 0..threads {
                let (lock, start) = (&lock, &start);
                let spawned = std::thread::Builder::new()
                    .name(format!("bench-{t}"))
                    .spawn_scoped(s, move || {
                        let go = loop {
                            match start.load(Ordering::Acquire) {
                                WAIT => std::thread::yield_now(),
                                state => break state == GO,
                            }
                        };
                        if go {
                            for _ in 0..iters {
                                black_box(lock).increment();
                            }
                        }
                    });
                match spawned {
                    Ok(w) => workers.push(w),
                    Err(e) => {
                        start.store(ABORT, Ordering::Release);
                        return Err(format!("{}: could not spawn a bench thread: {e}", L::NAME));
                    }
                }
            }
            let begin = Instant::now();
            start.store(GO, Ordering::Release);
            let mut panicked = false;
            for w in workers {
                panicked |= w.join().is_err();
            }
            let elapsed = begin.elapsed();
            if panicked {
                Err(format!("{}: a bench thread panicked", L::NAME))
            } else {
                Ok(elapsed)
            }
        })?;
        check_count(L::NAME, lock.value(), iters * threads as u64)?;
        Ok(elapsed)
    }
}

const WAIT: u8 = 0;
const GO: u8 = 1;
const ABORT: u8 = 2;

fn check_count(name: &str, got: u64, want: u64) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "{name}: counter is {got} after {want} locked increments (lost updates)"
        ))
    }
}

/// `concur::sync::Lock<u64>`.
pub(super) struct ConcurLock(concur::sync::Lock<u64>);

impl BenchLock for ConcurLock {
    const NAME: &'static str = "concur::sync::Lock";
    const FAMILY: Family = Family::Lock;
    const ORIGIN: Origin = Origin::Concur;
    fn new() -> Self {
        ConcurLock(concur::sync::Lock::with_value(0))
    }
    #[inline]
    fn increment(&self) {
        *self.0.acquire() += 1;
    }
    fn value(&self) -> u64 {
        *self.0.acquire()
    }
}

/// `std::sync::Mutex<u64>`.
pub(super) struct StdMutex(std::sync::Mutex<u64>);

impl BenchLock for StdMutex {
    const NAME: &'static str = "std::sync::Mutex";
    const FAMILY: Family = Family::Lock;
    const ORIGIN: Origin = Origin::Std;
    fn new() -> Self {
        StdMutex(std::sync::Mutex::new(0))
    }
    #[inline]
    fn increment(&self) {
        // A poisoned mutex still counts: the benchmark only measures the locking.
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
    }
    fn value(&self) -> u64 {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `parking_lot::Mutex<u64>`.
pub(super) struct ParkingLotMutex(parking_lot::Mutex<u64>);

impl BenchLock for ParkingLotMutex {
    const NAME: &'static str = "parking_lot::Mutex";
    const FAMILY: Family = Family::Lock;
    const ORIGIN: Origin = Origin::ParkingLot;
    fn new() -> Self {
        ParkingLotMutex(parking_lot::Mutex::new(0))
    }
    #[inline]
    fn increment(&self) {
        *self.0.lock() += 1;
    }
    fn value(&self) -> u64 {
        *self.0.lock()
    }
}

// The reentrant family. `RLock` guards no data (like Python's), so both sides count in
// an `AtomicU64` with a relaxed load + store (as cheap as a `Cell`), protected by the
// lock under test: the comparison is lock against lock.

/// `concur::sync::RLock` guarding a relaxed counter.
pub(super) struct ConcurRLock(concur::sync::RLock, AtomicU64);

impl BenchLock for ConcurRLock {
    const NAME: &'static str = "concur::sync::RLock";
    const FAMILY: Family = Family::Rlock;
    const ORIGIN: Origin = Origin::Concur;
    fn new() -> Self {
        ConcurRLock(concur::sync::RLock::new(), AtomicU64::new(0))
    }
    #[inline]
    fn increment(&self) {
        let _g = self.0.acquire();
        self.1
            .store(self.1.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
    fn value(&self) -> u64 {
        let _g = self.0.acquire();
        self.1.load(Ordering::Relaxed)
    }
}

/// `parking_lot::ReentrantMutex<()>` guarding a relaxed counter.
pub(super) struct ParkingLotReentrant(parking_lot::ReentrantMutex<()>, AtomicU64);

impl BenchLock for ParkingLotReentrant {
    const NAME: &'static str = "parking_lot::ReentrantMutex";
    const FAMILY: Family = Family::Rlock;
    const ORIGIN: Origin = Origin::ParkingLot;
    fn new() -> Self {
        ParkingLotReentrant(parking_lot::ReentrantMutex::new(()), AtomicU64::new(0))
    }
    #[inline]
    fn increment(&self) {
        let _g = self.0.lock();
        self.1
            .store(self.1.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
    fn value(&self) -> u64 {
        let _g = self.0.lock();
        self.1.load(Ordering::Relaxed)
    }
}

/// Every lock under test, concur first within each family.
pub(super) fn all() -> Vec<Box<dyn LockUnderTest>> {
    vec![
        Adapter::<ConcurLock>::boxed(),
        Adapter::<StdMutex>::boxed(),
        Adapter::<ParkingLotMutex>::boxed(),
        Adapter::<ConcurRLock>::boxed(),
        Adapter::<ParkingLotReentrant>::boxed(),
    ]
}
