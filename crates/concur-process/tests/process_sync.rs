//! Process-shared locks, semaphores, conditions, events and barriers across forked
//! processes.
//!
//! Ported from CPython 3.13 `Lib/test/_test_multiprocessing.py`: `_TestLock`,
//! `_TestSemaphore`, `_TestCondition` and `_TestEvent`, in their `processes` flavour
//! (the other parties are forked children; some tests mix in a thread, as CPython's
//! do). Timing checks are lower bounds only. Barriers are in `process_barrier.rs`,
//! the robust-lock scenarios in `robust_locks.rs`.

mod common;

use common::{LIMIT, fork, within};
use concur_process::shm::Value;
use concur_process::sync::{
    BoundedSemaphore, Condition, Event, Lock, RLock, ReleaseError, Semaphore, TryAcquireError,
};
use std::thread;
use std::time::{Duration, Instant};

/// CPython's `DELTA`, `TIMEOUT1`, `TIMEOUT2`.
const DELTA: Duration = Duration::from_millis(100);
const TIMEOUT1: Duration = Duration::from_millis(100);
const TIMEOUT2: Duration = Duration::from_millis(200);

/// Python's `sem.acquire()`: takes a permit for good (bounded, so a missing release
/// fails the test instead of hanging it).
fn take(sem: &Semaphore) {
    sem.acquire_timeout(LIMIT)
        .expect("a permit within the limit")
        .leak();
}

// ---------------------------------------------------------------- _TestLock

#[test]
fn test_lock() {
    let lock = Lock::new().unwrap();
    let g = lock.acquire().unwrap();
    assert!(matches!(
        lock.try_acquire(),
        Err(TryAcquireError::WouldBlock)
    ));
    g.leak();
    assert_eq!(lock.release(), Ok(()));
    assert_eq!(lock.release(), Err(ReleaseError::NotLocked));
}

#[test]
fn test_rlock() {
    let lock = RLock::new().unwrap();
    for _ in 0..3 {
        lock.acquire().unwrap().leak();
    }
    assert_eq!(lock.count(), 3);
    for _ in 0..3 {
        assert_eq!(lock.release(), Ok(()));
    }
    assert_eq!(lock.release(), Err(ReleaseError::NotOwner));
}

#[test]
fn test_lock_context() {
    let lock = Lock::new().unwrap();
    {
        let _g = lock.acquire().unwrap();
        assert!(lock.locked());
    }
    assert!(!lock.locked());
}

#[test]
fn lock_excludes_another_process_until_released() {
    let lock = Lock::new().unwrap();
    let (held, go) = (Event::new().unwrap(), Event::new().unwrap());
    let child = fork(|| {
        let g = lock.acquire().unwrap();
        held.set();
        assert!(go.wait_timeout(LIMIT));
        drop(g);
    });
    assert!(held.wait_timeout(LIMIT));
    assert!(lock.locked());
    assert!(matches!(
        lock.try_acquire(),
        Err(TryAcquireError::WouldBlock)
    ));
    // Only the holder may release a process-shared lock.
    assert_eq!(lock.release(), Err(ReleaseError::NotOwner));
    go.set();
    let g = lock.acquire_timeout(LIMIT).expect("released by the child");
    drop(g);
    child.expect_success(LIMIT, "lock holder");
}

#[test]
fn rlock_is_owned_per_thread_across_processes() {
    let r = RLock::new().unwrap();
    let (held, go) = (Event::new().unwrap(), Event::new().unwrap());
    let child = fork(|| {
        let a = r.acquire().unwrap();
        let b = r.try_acquire().unwrap();
        assert_eq!(r.count(), 2);
        held.set();
        assert!(go.wait_timeout(LIMIT));
        drop((b, a));
        assert!(!r.locked());
    });
    assert!(held.wait_timeout(LIMIT));
    assert!(r.locked() && !r.is_owned() && r.count() == 0);
    assert_eq!(r.release(), Err(ReleaseError::NotOwner));
    assert!(r.acquire_timeout(Duration::from_millis(20)).is_err());
    go.set();
    drop(r.acquire_timeout(LIMIT).expect("released by the child"));
    child.expect_success(LIMIT, "rlock holder");
}

#[test]
fn lock_timeout_waits_at_least_the_timeout() {
    let lock = Lock::new().unwrap();
    let _g = lock.acquire().unwrap();
    let start = Instant::now();
    assert!(lock.acquire_timeout(TIMEOUT1).is_err()); // held by this very thread
    assert!(start.elapsed() >= TIMEOUT1);
    let l2 = lock.clone();
    let elapsed = within(LIMIT, "timed acquire", move || {
        let start = Instant::now();
        assert!(l2.acquire_deadline(start + TIMEOUT1).is_err());
        start.elapsed()
    });
    assert!(elapsed >= TIMEOUT1);
}

#[test]
#[should_panic(expected = "already holds")]
fn reacquiring_a_lock_one_holds_panics_instead_of_hanging() {
    let lock = Lock::new().unwrap();
    let _g = lock.acquire().unwrap();
    let _again = lock.acquire();
}

// ---------------------------------------------------------------- _TestSemaphore

macro_rules! check_semaphore_basics {
    ($sem:expr) => {{
        let sem = $sem;
        assert_eq!(sem.value(), 2);
        sem.acquire().leak();
        assert_eq!(sem.value(), 1);
        sem.acquire().leak();
        assert_eq!(sem.value(), 0);
        assert!(sem.try_acquire().is_none());
        assert_eq!(sem.value(), 0);
        let _ = sem.release();
        assert_eq!(sem.value(), 1);
        let _ = sem.release();
        assert_eq!(sem.value(), 2);
        sem
    }};
}

#[test]
fn test_semaphore() {
    let sem = check_semaphore_basics!(Semaphore::new(2).unwrap());
    sem.release();
    assert_eq!(sem.value(), 3);
    sem.release();
    assert_eq!(sem.value(), 4);
}

#[test]
fn test_bounded_semaphore() {
    let sem = check_semaphore_basics!(BoundedSemaphore::new(2).unwrap());
    assert_eq!(sem.release(), Err(ReleaseError::TooManyReleases));
    assert_eq!(sem.value(), 2);
}

#[test]
fn test_semaphore_timeout() {
    let sem = Semaphore::new(0).unwrap();
    assert!(sem.try_acquire().is_none());
    let start = Instant::now();
    assert!(sem.acquire_timeout(TIMEOUT2).is_none());
    assert!(start.elapsed() >= TIMEOUT2);
    let start = Instant::now();
    assert!(sem.acquire_deadline(start + TIMEOUT1).is_none());
    assert!(start.elapsed() >= TIMEOUT1);
}

#[test]
fn semaphore_release_in_another_process_wakes_a_waiter() {
    let sem = Semaphore::new(0).unwrap();
    let child = fork(|| {
        thread::sleep(TIMEOUT1);
        sem.release();
    });
    let s2 = sem.clone();
    within(LIMIT, "semaphore acquire", move || s2.acquire().leak());
    child.expect_success(LIMIT, "releaser");
    assert_eq!(sem.value(), 0);
}

#[test]
fn semaphore_bounds_concurrency_across_processes() {
    let sem = BoundedSemaphore::new(2).unwrap();
    let inside = Value::new(0u32).unwrap();
    let max_seen = Value::new(0u32).unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            fork(|| {
                for _ in 0..300 {
                    let _permit = sem.acquire_timeout(LIMIT).expect("a permit");
                    let now = inside.with_lock(|n| {
                        *n += 1;
                        *n
                    });
                    max_seen.with_lock(|m| *m = (*m).max(now.unwrap())).unwrap();
                    thread::yield_now();
                    inside.with_lock(|n| *n -= 1).unwrap();
                }
            })
        })
        .collect();
    for c in children {
        c.expect_success(LIMIT, "semaphore user");
    }
    assert!(max_seen.get() <= 2, "{} inside at once", max_seen.get());
    assert_eq!((inside.get(), sem.value()), (0, 2));
}

// ---------------------------------------------------------------- _TestCondition

/// CPython's `_TestCondition.f`: acquire, signal "sleeping", wait, signal "woken".
fn cond_f(cond: &Condition, sleeping: &Semaphore, woken: &Semaphore, timeout: Option<Duration>) {
    let mut g = cond.acquire().unwrap();
    sleeping.release();
    match timeout {
        Some(t) => {
            g.wait_timeout(t).unwrap();
        }
        None => {
            // Bounded so that a lost notification fails the test instead of hanging it.
            assert!(g.wait_timeout(LIMIT).unwrap(), "never notified");
        }
    }
    woken.release();
}

/// CPython's `assertReachesEventually`.
fn reaches_eventually(f: impl Fn() -> usize, value: usize) {
    for _ in 0..10 {
        if f() == value {
            break;
        }
        thread::sleep(DELTA);
    }
    thread::sleep(DELTA);
    assert_eq!(f(), value);
}

/// Starts `n` forked children and `n` threads running `cond_f`.
fn start_sleepers(
    n: usize,
    cond: &Condition,
    sleeping: &Semaphore,
    woken: &Semaphore,
    timeout: Option<Duration>,
) -> (Vec<common::Child>, Vec<thread::JoinHandle<()>>) {
    let mut children = Vec::new();
    let mut threads = Vec::new();
    for _ in 0..n {
        children.push(fork(|| cond_f(cond, sleeping, woken, timeout)));
        let (c, s, w) = (cond.clone(), sleeping.clone(), woken.clone());
        threads.push(thread::spawn(move || cond_f(&c, &s, &w, timeout)));
    }
    (children, threads)
}

fn finish(children: Vec<common::Child>, threads: Vec<thread::JoinHandle<()>>) {
    for c in children {
        c.expect_success(LIMIT, "condition waiter");
    }
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn test_notify() {
    let cond = Condition::new().unwrap();
    let sleeping = Semaphore::new(0).unwrap();
    let woken = Semaphore::new(0).unwrap();
    let (children, threads) = start_sleepers(1, &cond, &sleeping, &woken, None);
    for _ in 0..2 {
        take(&sleeping);
    }
    thread::sleep(DELTA);
    assert_eq!(woken.value(), 0);

    // CPython sleeps DELTA and checks; polling first keeps a loaded machine from
    // failing the test, and the final check after another DELTA still catches a
    // notify that woke too many.
    assert_eq!(cond.acquire().unwrap().notify(1), 1);
    reaches_eventually(|| woken.value(), 1);

    assert_eq!(cond.acquire().unwrap().notify(1), 1);
    reaches_eventually(|| woken.value(), 2);
    finish(children, threads);
}

#[test]
fn test_notify_all() {
    let cond = Condition::new().unwrap();
    let sleeping = Semaphore::new(0).unwrap();
    let woken = Semaphore::new(0).unwrap();

    // Some that will time out.
    let (children, threads) = start_sleepers(3, &cond, &sleeping, &woken, Some(TIMEOUT1));
    for _ in 0..6 {
        take(&sleeping);
    }
    for _ in 0..6 {
        take(&woken);
    }
    assert_eq!(woken.value(), 0);
    finish(children, threads);

    // Some that will be notified.
    let (children, threads) = start_sleepers(3, &cond, &sleeping, &woken, None);
    for _ in 0..6 {
        take(&sleeping);
    }
    thread::sleep(DELTA);
    assert_eq!(woken.value(), 0);
    assert_eq!(cond.acquire().unwrap().notify_all(), 6);
    reaches_eventually(|| woken.value(), 6);
    finish(children, threads);
}

#[test]
fn test_notify_n() {
    let cond = Condition::new().unwrap();
    let sleeping = Semaphore::new(0).unwrap();
    let woken = Semaphore::new(0).unwrap();
    let (children, threads) = start_sleepers(3, &cond, &sleeping, &woken, None);
    for _ in 0..6 {
        take(&sleeping);
    }
    thread::sleep(DELTA);
    assert_eq!(woken.value(), 0);

    assert_eq!(cond.acquire().unwrap().notify(2), 2);
    reaches_eventually(|| woken.value(), 2);

    assert_eq!(cond.acquire().unwrap().notify(4), 4);
    reaches_eventually(|| woken.value(), 6);

    // Doesn't do anything more.
    assert_eq!(cond.acquire().unwrap().notify(3), 0);
    assert_eq!(woken.value(), 6);
    finish(children, threads);
}

#[test]
fn test_condition_timeout() {
    let cond = Condition::new().unwrap();
    let mut g = cond.acquire().unwrap();
    let start = Instant::now();
    assert_eq!(g.wait_timeout(TIMEOUT1), Ok(false));
    assert!(start.elapsed() >= TIMEOUT1);
}

#[test]
fn test_waitfor() {
    let cond = Condition::new().unwrap();
    let state = Value::new(-1i32).unwrap();
    let child = fork(|| {
        let mut g = cond.acquire().unwrap();
        state.set(0);
        g.notify(1);
        let ok = g.wait_for_timeout(LIMIT, || state.get() == 4).unwrap();
        assert!(ok && state.get() == 4);
    });
    {
        let mut g = cond.acquire().unwrap();
        assert_eq!(g.wait_for_timeout(LIMIT, || state.get() == 0), Ok(true));
        assert_eq!(state.get(), 0);
    }
    for _ in 0..4 {
        thread::sleep(Duration::from_millis(10));
        let g = cond.acquire().unwrap();
        state.set(state.get() + 1);
        g.notify(1);
    }
    child.expect_success(LIMIT, "wait_for child");
}

#[test]
fn test_waitfor_timeout() {
    let cond = Condition::new().unwrap();
    let state = Value::new(0i32).unwrap();
    let success = Value::new(0u8).unwrap();
    let sem = Semaphore::new(0).unwrap();
    let child = fork(|| {
        sem.release();
        let mut g = cond.acquire().unwrap();
        let expected = Duration::from_millis(100);
        let start = Instant::now();
        let result = g.wait_for_timeout(expected, || state.get() == 4).unwrap();
        if !result && start.elapsed() >= expected {
            success.set(1);
        }
    });
    take(&sem);
    // Only increment 3 times, so state == 4 is never reached.
    for _ in 0..3 {
        thread::sleep(Duration::from_millis(10));
        let g = cond.acquire().unwrap();
        state.set(state.get() + 1);
        g.notify(1);
    }
    child.expect_success(LIMIT, "wait_for_timeout child");
    assert_eq!(success.get(), 1);
}

#[test]
fn test_wait_result() {
    let cond = Condition::new().unwrap();
    let mut g = cond.acquire().unwrap();
    assert_eq!(g.wait_timeout(Duration::ZERO), Ok(false));
    assert_eq!(g.wait_timeout(TIMEOUT1), Ok(false));
    let child = fork(|| {
        let g = cond.acquire().unwrap();
        g.notify(1);
    });
    assert_eq!(g.wait_timeout(LIMIT), Ok(true));
    drop(g);
    child.expect_success(LIMIT, "notifier");
}

#[test]
fn condition_over_a_plain_lock_across_processes() {
    let lock = Lock::new().unwrap();
    let cond = Condition::with_lock(lock.clone()).unwrap();
    let ready = Value::new(0u32).unwrap();
    let child = fork(|| {
        let mut g = cond.acquire().unwrap();
        assert!(g.wait_for_timeout(LIMIT, || ready.get() == 1).unwrap());
        assert!(lock.locked()); // taken back before returning
    });
    thread::sleep(DELTA);
    let g = cond.acquire().unwrap();
    ready.set(1);
    g.notify_all();
    drop(g);
    child.expect_success(LIMIT, "lock-based condition waiter");
}

// ---------------------------------------------------------------- _TestEvent

#[test]
fn test_event() {
    let event = Event::new().unwrap();
    assert!(!event.is_set());
    let start = Instant::now();
    assert!(!event.wait_timeout(Duration::ZERO));
    assert!(!event.wait_timeout(TIMEOUT1));
    assert!(start.elapsed() >= TIMEOUT1);

    event.set();
    assert!(event.is_set());
    assert!(event.wait());
    assert!(event.wait_timeout(TIMEOUT1));

    event.clear();
    assert!(!event.is_set());
    let child = fork(|| {
        thread::sleep(TIMEOUT2);
        event.set();
    });
    let e = event.clone();
    assert!(within(LIMIT, "event wait", move || e.wait()));
    child.expect_success(LIMIT, "event setter");
}

#[test]
fn event_pulse_wakes_waiters_in_other_processes() {
    let event = Event::new().unwrap();
    let waiting = Semaphore::new(0).unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| {
            fork(|| {
                waiting.release();
                assert!(event.wait_timeout(LIMIT), "missed the pulse");
            })
        })
        .collect();
    for _ in 0..3 {
        take(&waiting);
    }
    thread::sleep(DELTA); // let them sleep
    event.set();
    event.clear(); // a pulse: every waiter must still see it
    for c in children {
        c.expect_success(LIMIT, "event waiter");
    }
}
