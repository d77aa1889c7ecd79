//! One contract for queues and locks, run against both tiers: `concur_core`'s thread
//! `queue::Queue` and `sync::{Lock, RLock, Semaphore, BoundedSemaphore, Event,
//! Barrier}`, and `concur_process`'s process `Queue` and `sync::*` (used here from
//! threads of one process, which they serve as well as processes). A program can move
//! from one tier to the other by changing a type and the constructors' `?`: the same
//! names, the same errors, the same behaviour. (`executor_contract.rs` does the same
//! for the executors.)
//!
//! Behaviours ported from CPython 3.13's `Lib/test/lock_tests.py` (`BaseLockTests`:
//! constructor, acquire/release, try_acquire, contended acquire, timeout, `locked`;
//! `RLockTests`: reentrancy, release by a non-owner; `EventTests`; `SemaphoreTests`,
//! `BoundedSemaphoreTests`; `BarrierTests`: parties, abort, reset, timeout) and
//! `Lib/test/test_queue.py` (`BaseQueueTestMixin`: order, full/empty, the
//! non-blocking and timed forms; `test_shutdown_*` of 3.13).
//!
//! Each tier is an adapter module of the same names (a constructor per primitive,
//! and `ok` turning a process lock's "the previous owner died" into the guard, which a
//! thread lock never reports); the `contract!` macro writes every test once over
//! those names.

mod common;

use std::time::{Duration, Instant};

use common::within;

/// The contract's bound on any single test body.
const BOUND: Duration = Duration::from_secs(60);

/// The thread tier.
mod threads {
    pub(crate) use concur_core::queue::{
        GetTimeoutError, PutTimeoutError, TryGetError, TryPutError,
    };
    pub(crate) use concur_core::sync::{
        Barrier, BoundedSemaphore, BrokenKind, Event, Lock, RLock, ReleaseError, Semaphore,
    };

    pub(crate) type Queue = concur_core::queue::Queue<u32>;

    pub(crate) fn queue(maxsize: usize) -> Queue {
        Queue::new(maxsize)
    }
    pub(crate) fn lock() -> Lock {
        Lock::new()
    }
    pub(crate) fn rlock() -> RLock {
        RLock::new()
    }
    pub(crate) fn semaphore(n: usize) -> Semaphore {
        Semaphore::new(n)
    }
    pub(crate) fn bounded_semaphore(n: usize) -> BoundedSemaphore {
        BoundedSemaphore::new(n)
    }
    pub(crate) fn event() -> Event {
        Event::new()
    }
    pub(crate) fn barrier(n: usize) -> Barrier {
        Barrier::new(n)
    }
    /// A thread lock's acquisition is the guard itself.
    pub(crate) fn ok<G>(g: G) -> G {
        g
    }
    /// A thread lock's non-blocking or timed acquisition.
    pub(crate) fn try_ok<G>(g: Option<G>) -> Option<G> {
        g
    }
    pub(crate) fn put(q: &Queue, x: u32) -> bool {
        q.put(x).is_ok()
    }
    pub(crate) fn get(q: &Queue) -> Option<u32> {
        q.get().ok()
    }
}

/// The process tier.
mod processes {
    pub(crate) use concur_process::queue::{
        GetTimeoutError, PutTimeoutError, TryGetError, TryPutError,
    };
    pub(crate) use concur_process::sync::{
        Barrier, BoundedSemaphore, BrokenKind, Event, Lock, OwnerDied, RLock, ReleaseError,
        Semaphore, TryAcquireError,
    };

    pub(crate) type Queue = concur_process::Queue<u32>;

    pub(crate) fn queue(maxsize: usize) -> Queue {
        if maxsize == 0 {
            Queue::new(0).unwrap() // the default bound: as good as none here
        } else {
            Queue::bounded(maxsize).unwrap()
        }
    }
    pub(crate) fn lock() -> Lock {
        Lock::new().unwrap()
    }
    pub(crate) fn rlock() -> RLock {
        RLock::new().unwrap()
    }
    pub(crate) fn semaphore(n: usize) -> Semaphore {
        Semaphore::new(n).unwrap()
    }
    pub(crate) fn bounded_semaphore(n: usize) -> BoundedSemaphore {
        BoundedSemaphore::new(n).unwrap()
    }
    pub(crate) fn event() -> Event {
        Event::new().unwrap()
    }
    pub(crate) fn barrier(n: usize) -> Barrier {
        Barrier::new(n).unwrap()
    }
    /// No process dies in these tests: a dead owner's lock is still the lock.
    pub(crate) fn ok<G>(g: Result<G, OwnerDied<G>>) -> G {
        g.unwrap_or_else(OwnerDied::into_inner)
    }
    pub(crate) fn try_ok<G>(g: Result<G, TryAcquireError<G>>) -> Option<G> {
        match g {
            Ok(g) => Some(g),
            Err(TryAcquireError::OwnerDied(d)) => Some(d.into_inner()),
            Err(TryAcquireError::WouldBlock) => None,
        }
    }
    pub(crate) fn put(q: &Queue, x: u32) -> bool {
        q.put(x).is_ok()
    }
    pub(crate) fn get(q: &Queue) -> Option<u32> {
        q.get().ok()
    }
}

macro_rules! contract {
    ($name:ident, $tier:ident) => {
        mod $name {
            use super::*;
            use $tier::*;

            // ---- queues (test_queue.py) -------------------------------------------

            #[test]
            fn queue_is_fifo_with_sizes() {
                let q = queue(3);
                assert!(q.empty() && !q.full() && q.qsize() == 0);
                for x in [111, 333, 222] {
                    assert!(put(&q, x));
                }
                assert!(q.full() && q.qsize() == 3);
                assert_eq!(
                    (get(&q), get(&q), get(&q)),
                    (Some(111), Some(333), Some(222))
                );
                assert!(q.empty());
            }

            #[test]
            fn queue_non_blocking_and_timed_forms() {
                let q = queue(1);
                assert_eq!(q.try_get(), Err(TryGetError::Empty));
                q.try_put(1).unwrap();
                assert_eq!(q.try_put(2), Err(TryPutError::Full(2)));
                let t = Instant::now();
                assert_eq!(
                    q.put_timeout(3, Duration::from_millis(20)),
                    Err(PutTimeoutError::Full(3))
                );
                assert!(t.elapsed() >= Duration::from_millis(20));
                assert_eq!(q.try_get(), Ok(1));
                let t = Instant::now();
                assert_eq!(
                    q.get_timeout(Duration::from_millis(20)),
                    Err(GetTimeoutError::Empty)
                );
                assert!(t.elapsed() >= Duration::from_millis(20));
                q.put_deadline(4, Instant::now() + BOUND).unwrap();
                assert_eq!(q.get_deadline(Instant::now() + BOUND), Ok(4));
            }

            #[test]
            fn queue_producer_and_consumer_threads() {
                within(BOUND, "producer and consumer", || {
                    let q = queue(4);
                    let p = q.clone();
                    let producer = std::thread::spawn(move || {
                        for x in 0..200 {
                            assert!(put(&p, x));
                        }
                    });
                    let got: Vec<u32> = (0..200).map(|_| get(&q).unwrap()).collect();
                    producer.join().unwrap();
                    assert_eq!(got, (0..200).collect::<Vec<_>>());
                });
            }

            #[test]
            fn queue_shutdown_drains_then_refuses() {
                let q = queue(4);
                assert!(put(&q, 1) && put(&q, 2));
                q.shutdown(false);
                assert!(q.is_shutdown());
                assert_eq!(q.try_put(3), Err(TryPutError::ShutDown(3)));
                assert_eq!((get(&q), get(&q)), (Some(1), Some(2)));
                assert_eq!(get(&q), None);
                assert_eq!(q.try_get(), Err(TryGetError::ShutDown));
                assert_eq!(
                    q.get_timeout(Duration::from_millis(1)),
                    Err(GetTimeoutError::ShutDown)
                );
            }

            #[test]
            fn queue_immediate_shutdown_drops_what_is_queued() {
                let q = queue(4);
                assert!(put(&q, 1));
                q.shutdown(true);
                assert_eq!(q.try_get(), Err(TryGetError::ShutDown));
                assert!(q.empty());
            }

            #[test]
            fn queue_shutdown_wakes_a_blocked_get() {
                within(BOUND, "shutdown wakes get", || {
                    let q = queue(4);
                    let c = q.clone();
                    let getter = std::thread::spawn(move || get(&c));
                    std::thread::sleep(Duration::from_millis(20));
                    q.shutdown(false);
                    assert_eq!(getter.join().unwrap(), None);
                });
            }

            // ---- Lock (BaseLockTests) ---------------------------------------------

            #[test]
            fn lock_acquire_release() {
                let l = lock();
                assert!(!l.locked());
                {
                    let _g = ok(l.acquire());
                    assert!(l.locked());
                }
                assert!(!l.locked());
                assert_eq!(l.release(), Err(ReleaseError::NotLocked));
            }

            #[test]
            fn lock_try_acquire_and_contention() {
                within(BOUND, "lock contention", || {
                    let l = lock();
                    let g = try_ok(l.try_acquire()).expect("free");
                    let other = l.clone();
                    let busy = std::thread::spawn(move || try_ok(other.try_acquire()).is_none());
                    assert!(busy.join().unwrap(), "held by this thread");
                    let other = l.clone();
                    let t = Instant::now();
                    let timed = std::thread::spawn(move || {
                        try_ok(other.acquire_timeout(Duration::from_millis(30))).is_none()
                    });
                    assert!(timed.join().unwrap());
                    assert!(t.elapsed() >= Duration::from_millis(30));
                    let other = l.clone();
                    let waiter = std::thread::spawn(move || {
                        let _g = ok(other.acquire());
                        7
                    });
                    std::thread::sleep(Duration::from_millis(20));
                    drop(g);
                    assert_eq!(waiter.join().unwrap(), 7, "the waiter got it once released");
                });
            }

            #[test]
            fn lock_excludes() {
                within(BOUND, "mutual exclusion", || {
                    let l = lock();
                    let inside = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
                    let ts: Vec<_> = (0..4)
                        .map(|_| {
                            let (l, inside) = (l.clone(), inside.clone());
                            std::thread::spawn(move || {
                                for _ in 0..200 {
                                    let _g = ok(l.acquire());
                                    let n =
                                        inside.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                    assert_eq!(n, 0, "two holders at once");
                                    inside.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                                }
                            })
                        })
                        .collect();
                    for t in ts {
                        t.join().unwrap();
                    }
                });
            }

            // ---- RLock (RLockTests) -------------------------------------------------

            #[test]
            fn rlock_is_reentrant_and_owned() {
                within(BOUND, "rlock", || {
                    let r = rlock();
                    let a = ok(r.acquire());
                    let b = ok(r.acquire());
                    assert_eq!(r.count(), 2);
                    assert!(r.is_owned() && r.locked());
                    let other = r.clone();
                    let theirs = std::thread::spawn(move || {
                        (
                            other.is_owned(),
                            try_ok(other.try_acquire()).is_none(),
                            other.release(),
                        )
                    });
                    assert_eq!(
                        theirs.join().unwrap(),
                        (false, true, Err(ReleaseError::NotOwner))
                    );
                    drop(b);
                    drop(a);
                    assert!(!r.locked());
                    assert_eq!(r.release(), Err(ReleaseError::NotOwner), "un-acquired");
                });
            }

            // ---- Event (EventTests) -------------------------------------------------

            #[test]
            fn event_set_clear_wait() {
                within(BOUND, "event", || {
                    let e = event();
                    assert!(!e.is_set() && !e.try_wait());
                    let t = Instant::now();
                    assert!(!e.wait_timeout(Duration::from_millis(20)));
                    assert!(t.elapsed() >= Duration::from_millis(20));
                    let waiters: Vec<_> = (0..3)
                        .map(|_| {
                            let e = e.clone();
                            std::thread::spawn(move || e.wait())
                        })
                        .collect();
                    std::thread::sleep(Duration::from_millis(20));
                    e.set();
                    for w in waiters {
                        assert!(w.join().unwrap());
                    }
                    assert!(e.is_set() && e.wait_deadline(Instant::now()));
                    e.clear();
                    assert!(!e.is_set());
                });
            }

            // ---- Semaphore, BoundedSemaphore (SemaphoreTests) ----------------------

            #[test]
            fn semaphore_counts_and_wakes() {
                within(BOUND, "semaphore", || {
                    let s = semaphore(2);
                    let a = s.try_acquire().expect("one");
                    let b = s.acquire();
                    assert_eq!(s.value(), 0);
                    assert!(s.try_acquire().is_none());
                    let t = Instant::now();
                    assert!(s.acquire_timeout(Duration::from_millis(20)).is_none());
                    assert!(t.elapsed() >= Duration::from_millis(20));
                    let other = s.clone();
                    let waiter = std::thread::spawn(move || {
                        other.acquire().leak();
                        1
                    });
                    std::thread::sleep(Duration::from_millis(20));
                    drop(a);
                    assert_eq!(waiter.join().unwrap(), 1);
                    drop(b);
                    assert_eq!(s.value(), 1);
                    s.release();
                    assert_eq!(s.value(), 2);
                });
            }

            #[test]
            fn bounded_semaphore_refuses_over_release() {
                let s = bounded_semaphore(1);
                assert_eq!(s.release(), Err(ReleaseError::TooManyReleases));
                s.acquire().leak();
                assert_eq!(s.value(), 0);
                s.release().unwrap();
                assert_eq!(s.value(), 1);
            }

            // ---- Barrier (BarrierTests) ---------------------------------------------

            #[test]
            fn barrier_passes_its_parties_with_distinct_indices() {
                within(BOUND, "barrier", || {
                    let n = 3;
                    let b = barrier(n);
                    assert_eq!((b.parties(), b.n_waiting(), b.broken()), (n, 0, false));
                    for _round in 0..2 {
                        let ts: Vec<_> = (0..n)
                            .map(|_| {
                                let b = b.clone();
                                std::thread::spawn(move || b.wait().unwrap())
                            })
                            .collect();
                        let mut idx: Vec<usize> =
                            ts.into_iter().map(|t| t.join().unwrap()).collect();
                        idx.sort();
                        assert_eq!(idx, (0..n).collect::<Vec<_>>());
                    }
                });
            }

            #[test]
            fn barrier_abort_timeout_and_reset() {
                within(BOUND, "barrier breaks", || {
                    let b = barrier(2);
                    let e = b.wait_timeout(Duration::from_millis(10)).unwrap_err();
                    assert_eq!(e.kind(), BrokenKind::Timeout);
                    assert!(e.is_timeout() && b.broken());
                    b.reset();
                    assert!(!b.broken());
                    let other = b.clone();
                    let waiter = std::thread::spawn(move || other.wait());
                    while b.n_waiting() == 0 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    b.abort();
                    assert_eq!(
                        waiter.join().unwrap().unwrap_err().kind(),
                        BrokenKind::Aborted
                    );
                    assert_eq!(b.wait().unwrap_err().kind(), BrokenKind::Aborted);
                    b.reset();
                    let other = b.clone();
                    let passer = std::thread::spawn(move || other.wait().is_ok());
                    assert!(b.wait().is_ok() && passer.join().unwrap());
                });
            }
        }
    };
}

contract!(thread_tier, threads);
contract!(process_tier, processes);
