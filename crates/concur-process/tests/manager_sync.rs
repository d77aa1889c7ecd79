//! A manager's synchronization proxies (`Lock`, `RLock`, `Semaphore`,
//! `BoundedSemaphore`, `Event`, `Condition`, `Barrier`) shared between processes.
//!
//! Ported from CPython 3.13 `Lib/test/_test_multiprocessing.py`: `_TestLock`,
//! `_TestSemaphore`, `_TestCondition`, `_TestEvent` and `_TestBarrier`, in their
//! `manager` flavour: the other parties are child `Process`es that get the proxies as
//! arguments (some tests mix in a thread, as CPython's do); CPython's result lists are
//! counters in a manager `Dict`. Not ported: `test_lock_context` (the proxies have no
//! guards), the barrier's `action` and default `timeout` (not offered), `test_thousand`
//! (skipped for managers in CPython too), `test_wait_result`'s SIGINT part. Timing
//! checks are lower bounds only; where CPython sleeps and then checks that something
//! happened, these wait (bounded) for it instead.
//!
//! What the issue asks beyond CPython (crash safety, ownership, shutdown) is in
//! `manager_sync_crash.rs`.

mod children;
mod common;

use std::thread;
use std::time::{Duration, Instant};

use children::{join, spawn};
use common::{LIMIT, within};
use concur_process::manager::{Barrier, Condition, Dict, Event, Semaphore};
use concur_process::{Manager, Process};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// CPython's `DELTA`, `TIMEOUT1`, `TIMEOUT2`, `TIMEOUT3`.
const DELTA: Duration = Duration::from_millis(100);
const TIMEOUT1: Duration = Duration::from_millis(100);
const TIMEOUT2: Duration = Duration::from_millis(200);
const TIMEOUT3: Duration = Duration::from_millis(300);

type Counters = Dict<u8, u64>;

fn bump(d: &Counters, key: u8) {
    d.update(key, |n: Option<u64>| n.unwrap_or(0) + 1).unwrap();
}

fn count(d: &Counters, key: u8) -> u64 {
    d.get(&key).unwrap().unwrap_or(0)
}

// ---------------------------------------------------------------- _TestLock

#[test]
fn test_lock() {
    within(LIMIT, "test_lock", || {
        let m = Manager::start().unwrap();
        let lock = m.lock().unwrap();
        lock.acquire().unwrap();
        assert!(!lock.try_acquire().unwrap());
        lock.release().unwrap();
        assert!(lock.release().unwrap_err().is_invalid_state());
    });
}

#[test]
fn test_rlock() {
    within(LIMIT, "test_rlock", || {
        let m = Manager::start().unwrap();
        let lock = m.rlock().unwrap();
        for _ in 0..3 {
            lock.acquire().unwrap();
        }
        for _ in 0..3 {
            lock.release().unwrap();
        }
        assert!(lock.release().unwrap_err().is_invalid_state());
    });
}

// ----------------------------------------------------------- _TestSemaphore

/// CPython's `_test_semaphore` on a semaphore of 2.
macro_rules! check_semaphore {
    ($sem:expr) => {{
        let sem = $sem;
        assert_eq!(sem.value().unwrap(), 2);
        sem.acquire().unwrap();
        assert_eq!(sem.value().unwrap(), 1);
        sem.acquire().unwrap();
        assert_eq!(sem.value().unwrap(), 0);
        assert!(!sem.try_acquire().unwrap());
        assert_eq!(sem.value().unwrap(), 0);
        sem.release().unwrap();
        assert_eq!(sem.value().unwrap(), 1);
        sem.release().unwrap();
        assert_eq!(sem.value().unwrap(), 2);
    }};
}

#[test]
fn test_semaphore() {
    within(LIMIT, "test_semaphore", || {
        let m = Manager::start().unwrap();
        let sem = m.semaphore(2).unwrap();
        check_semaphore!(&sem);
        sem.release().unwrap();
        assert_eq!(sem.value().unwrap(), 3);
        sem.release().unwrap();
        assert_eq!(sem.value().unwrap(), 4);
    });
}

#[test]
fn test_bounded_semaphore() {
    within(LIMIT, "test_bounded_semaphore", || {
        let m = Manager::start().unwrap();
        let sem = m.bounded_semaphore(2).unwrap();
        check_semaphore!(&sem);
        // The check CPython leaves commented out ("currently fails on OS/X").
        assert!(sem.release().unwrap_err().is_invalid_state());
        assert_eq!(sem.value().unwrap(), 2);
    });
}

#[test]
fn test_semaphore_timeout() {
    within(LIMIT, "test_semaphore_timeout", || {
        let m = Manager::start().unwrap();
        let sem = m.semaphore(0).unwrap();
        assert!(!sem.try_acquire().unwrap());
        for t in [TIMEOUT2, TIMEOUT3] {
            let start = Instant::now();
            assert!(!sem.acquire_timeout(t).unwrap());
            assert!(start.elapsed() >= t);
        }
        let start = Instant::now();
        assert!(!sem.acquire_deadline(start + TIMEOUT1).unwrap());
        assert!(start.elapsed() >= TIMEOUT1);
    });
}

// ----------------------------------------------------------- _TestCondition

type CondArgs = (Condition, Semaphore, Semaphore, Option<Duration>);

/// CPython's `_TestCondition.f`.
fn cond_f((cond, sleeping, woken, timeout): CondArgs) {
    cond.acquire().unwrap();
    sleeping.release().unwrap();
    match timeout {
        Some(t) => {
            cond.wait_timeout(t).unwrap();
        }
        None => cond.wait().unwrap(),
    }
    woken.release().unwrap();
    cond.release().unwrap();
}

/// Starts 3 processes and 3 threads running `cond_f`.
fn six_sleepers(args: &CondArgs) -> (Vec<Process<()>>, Vec<thread::JoinHandle<()>>) {
    let clone = |a: &CondArgs| (a.0.clone(), a.1.clone(), a.2.clone(), a.3);
    let ps = (0..3).map(|_| spawn(cond_f, clone(args))).collect();
    let ts = (0..3)
        .map(|_| {
            let a = clone(args);
            thread::spawn(move || cond_f(a))
        })
        .collect();
    (ps, ts)
}

/// Waits (bounded) until `n` more units were released to `woken`, taking them.
fn take_woken(woken: &Semaphore, n: usize) {
    for _ in 0..n {
        assert!(woken.acquire_timeout(LIMIT).unwrap(), "a waiter woke");
    }
}

#[test]
fn test_condition_notify() {
    within(LIMIT, "test_condition_notify", || {
        let m = Manager::start().unwrap();
        let cond = m.condition().unwrap();
        let sleeping = m.semaphore(0).unwrap();
        let woken = m.semaphore(0).unwrap();
        let p = spawn(
            cond_f,
            (cond.clone(), sleeping.clone(), woken.clone(), None),
        );
        let a = (cond.clone(), sleeping.clone(), woken.clone(), None);
        let t = thread::spawn(move || cond_f(a));

        // Wait for both to sleep; nobody wakes without a notification.
        take_woken(&sleeping, 2);
        assert!(!woken.acquire_timeout(DELTA).unwrap());

        for _ in 0..2 {
            cond.acquire().unwrap();
            assert_eq!(cond.notify(1).unwrap(), 1);
            cond.release().unwrap();
            take_woken(&woken, 1);
        }
        assert!(!woken.try_acquire().unwrap());
        join(&p);
        t.join().unwrap();
    });
}

#[test]
fn test_condition_notify_all() {
    within(LIMIT, "test_condition_notify_all", || {
        let m = Manager::start().unwrap();
        let cond = m.condition().unwrap();
        let sleeping = m.semaphore(0).unwrap();
        let woken = m.semaphore(0).unwrap();

        // Sleepers that time out.
        let args = (
            cond.clone(),
            sleeping.clone(),
            woken.clone(),
            Some(TIMEOUT1),
        );
        let (ps, ts) = six_sleepers(&args);
        take_woken(&sleeping, 6);
        take_woken(&woken, 6);
        assert_eq!(woken.value().unwrap(), 0);
        ps.iter().for_each(|p| join(p));
        ts.into_iter().for_each(|t| t.join().unwrap());

        // Sleepers that wait for a notification.
        let args = (cond.clone(), sleeping.clone(), woken.clone(), None);
        let (ps, ts) = six_sleepers(&args);
        take_woken(&sleeping, 6);
        assert!(!woken.acquire_timeout(DELTA).unwrap());
        cond.acquire().unwrap();
        // Each sleeper holds the lock from its `sleeping` release until its wait, so
        // all six are waiting once we hold it.
        assert_eq!(cond.notify_all().unwrap(), 6);
        cond.release().unwrap();
        take_woken(&woken, 6);
        ps.iter().for_each(|p| join(p));
        ts.into_iter().for_each(|t| t.join().unwrap());
    });
}

#[test]
fn test_condition_notify_n() {
    within(LIMIT, "test_condition_notify_n", || {
        let m = Manager::start().unwrap();
        let cond = m.condition().unwrap();
        let sleeping = m.semaphore(0).unwrap();
        let woken = m.semaphore(0).unwrap();
        let args = (cond.clone(), sleeping.clone(), woken.clone(), None);
        let (ps, ts) = six_sleepers(&args);
        take_woken(&sleeping, 6);
        assert!(!woken.acquire_timeout(DELTA).unwrap());

        cond.acquire().unwrap();
        assert_eq!(cond.notify(2).unwrap(), 2);
        cond.release().unwrap();
        take_woken(&woken, 2);
        assert!(!woken.acquire_timeout(DELTA).unwrap());

        cond.acquire().unwrap();
        assert_eq!(cond.notify(4).unwrap(), 4);
        cond.release().unwrap();
        take_woken(&woken, 4);

        cond.acquire().unwrap();
        assert_eq!(cond.notify(3).unwrap(), 0);
        cond.release().unwrap();
        assert_eq!(woken.value().unwrap(), 0);
        ps.iter().for_each(|p| join(p));
        ts.into_iter().for_each(|t| t.join().unwrap());
    });
}

#[test]
fn test_condition_timeout() {
    within(LIMIT, "test_condition_timeout", || {
        let m = Manager::start().unwrap();
        let cond = m.condition().unwrap();
        cond.acquire().unwrap();
        let start = Instant::now();
        assert!(!cond.wait_timeout(TIMEOUT1).unwrap());
        assert!(start.elapsed() >= TIMEOUT1);
        cond.release().unwrap();
    });
}

fn waitfor_f((cond, state): (Condition, Dict<u8, i64>)) -> bool {
    cond.acquire().unwrap();
    state.insert(0, 0).unwrap();
    cond.notify(1).unwrap();
    cond.wait_for(|| state.get(&0).unwrap() == Some(4)).unwrap();
    let ok = state.get(&0).unwrap() == Some(4);
    cond.release().unwrap();
    ok
}

#[test]
fn test_condition_waitfor() {
    within(LIMIT, "test_condition_waitfor", || {
        let m = Manager::start().unwrap();
        let cond = m.condition().unwrap();
        let state = m.dict::<u8, i64>().unwrap();
        state.insert(0, -1).unwrap();
        let p = spawn(waitfor_f, (cond.clone(), state.clone()));
        cond.acquire().unwrap();
        assert!(
            cond.wait_for_timeout(LIMIT, || state.get(&0).unwrap() == Some(0))
                .unwrap()
        );
        cond.release().unwrap();
        for _ in 0..4 {
            thread::sleep(Duration::from_millis(10));
            cond.acquire().unwrap();
            state
                .update(0, |v: Option<i64>| v.unwrap_or(0) + 1)
                .unwrap();
            cond.notify(1).unwrap();
            cond.release().unwrap();
        }
        assert!(join(&p));
    });
}

fn waitfor_timeout_f((cond, state, sem): (Condition, Dict<u8, i64>, Semaphore)) -> bool {
    sem.release().unwrap();
    cond.acquire().unwrap();
    let expected = Duration::from_millis(100);
    let start = Instant::now();
    let result = cond
        .wait_for_timeout(expected, || state.get(&0).unwrap() == Some(4))
        .unwrap();
    let dt = start.elapsed();
    cond.release().unwrap();
    !result && dt >= expected
}

#[test]
fn test_condition_waitfor_timeout() {
    within(LIMIT, "test_condition_waitfor_timeout", || {
        let m = Manager::start().unwrap();
        let cond = m.condition().unwrap();
        let state = m.dict::<u8, i64>().unwrap();
        state.insert(0, 0).unwrap();
        let sem = m.semaphore(0).unwrap();
        let p = spawn(
            waitfor_timeout_f,
            (cond.clone(), state.clone(), sem.clone()),
        );
        assert!(sem.acquire_timeout(LIMIT).unwrap());
        // Only 3 increments: state == 4 is never reached.
        for _ in 0..3 {
            thread::sleep(Duration::from_millis(10));
            cond.acquire().unwrap();
            state
                .update(0, |v: Option<i64>| v.unwrap_or(0) + 1)
                .unwrap();
            cond.notify(1).unwrap();
            cond.release().unwrap();
        }
        assert!(join(&p), "wait_for timed out, not before its timeout");
    });
}

fn wait_result_f(c: Condition) {
    c.acquire().unwrap();
    c.notify(1).unwrap();
    c.release().unwrap();
}

#[test]
fn test_condition_wait_result() {
    within(LIMIT, "test_condition_wait_result", || {
        let m = Manager::start().unwrap();
        let c = m.condition().unwrap();
        c.acquire().unwrap();
        assert!(!c.wait_timeout(Duration::ZERO).unwrap());
        assert!(!c.wait_timeout(TIMEOUT1).unwrap());
        let p = spawn(wait_result_f, c.clone());
        assert!(c.wait_timeout(LIMIT).unwrap());
        c.release().unwrap();
        join(&p);
    });
}

#[test]
fn condition_requires_ownership() {
    within(LIMIT, "condition_requires_ownership", || {
        let m = Manager::start().unwrap();
        let c = m.condition().unwrap();
        let other = c.clone();
        c.acquire().unwrap();
        assert!(other.wait().unwrap_err().is_invalid_state());
        assert!(other.notify(1).unwrap_err().is_invalid_state());
        assert!(other.release().unwrap_err().is_invalid_state());
        // Reentrant: a wait releases every level and takes them all back.
        c.acquire().unwrap();
        assert!(!c.wait_timeout(Duration::from_millis(10)).unwrap());
        c.release().unwrap();
        assert!(!other.try_acquire().unwrap());
        c.release().unwrap();
        assert!(other.try_acquire().unwrap());
    });
}

// --------------------------------------------------------------- _TestEvent

fn event_f(e: Event) {
    thread::sleep(TIMEOUT2);
    e.set().unwrap();
}

#[test]
fn test_event() {
    within(LIMIT, "test_event", || {
        let m = Manager::start().unwrap();
        let event = m.event().unwrap();
        assert!(!event.is_set().unwrap());
        assert!(!event.wait_timeout(Duration::ZERO).unwrap());
        let start = Instant::now();
        assert!(!event.wait_timeout(TIMEOUT1).unwrap());
        assert!(start.elapsed() >= TIMEOUT1);

        event.set().unwrap();
        assert!(event.is_set().unwrap());
        event.wait().unwrap();
        assert!(event.wait_timeout(TIMEOUT1).unwrap());

        event.clear().unwrap();
        assert!(!event.is_set().unwrap());
        let p = spawn(event_f, event.clone());
        let start = Instant::now();
        assert!(event.wait_timeout(LIMIT).unwrap());
        assert!(start.elapsed() >= TIMEOUT2 / 2, "woken by the child's set");
        join(&p);
    });
}

// ------------------------------------------------------------- _TestBarrier

/// CPython's `N` (5 there; 3 processes here: the test process and two children).
const N: usize = 3;

/// Runs `f(args)` in `N - 1` children and in this process, then joins them.
fn run_parties<F, A>(f: F, args: impl Fn() -> A)
where
    F: Fn(A) + Copy + 'static,
    A: Serialize + DeserializeOwned,
{
    let ps: Vec<_> = (0..N - 1).map(|_| spawn(f, args())).collect();
    f(args());
    ps.iter().for_each(|p| join(p));
}

fn multipass((barrier, results, n): (Barrier, Counters, u64)) {
    let m = barrier.parties().unwrap() as u64;
    assert_eq!(m, N as u64);
    for i in 0..n {
        bump(&results, 0);
        assert_eq!(count(&results, 1), i * m);
        barrier.wait_timeout(LIMIT).unwrap();
        bump(&results, 1);
        assert_eq!(count(&results, 0), (i + 1) * m);
        barrier.wait_timeout(LIMIT).unwrap();
    }
    assert_eq!(barrier.n_waiting().unwrap(), 0);
    assert!(!barrier.broken().unwrap());
}

#[test]
fn test_barrier() {
    within(LIMIT, "test_barrier", || {
        let m = Manager::start().unwrap();
        for passes in [1, 10] {
            let b = m.barrier(N).unwrap();
            let results = m.dict::<u8, u64>().unwrap();
            run_parties(multipass, || (b.clone(), results.clone(), passes));
        }
    });
}

fn wait_return_f((barrier, results): (Barrier, Counters)) {
    let i = barrier.wait_timeout(LIMIT).unwrap();
    bump(&results, i as u8);
}

#[test]
fn test_barrier_wait_return() {
    within(LIMIT, "test_barrier_wait_return", || {
        let m = Manager::start().unwrap();
        let b = m.barrier(N).unwrap();
        let results = m.dict::<u8, u64>().unwrap();
        run_parties(wait_return_f, || (b.clone(), results.clone()));
        // Every index 0..N exactly once.
        for i in 0..N as u8 {
            assert_eq!(count(&results, i), 1);
        }
    });
}

fn abort_f((barrier, results): (Barrier, Counters)) {
    let r = barrier.wait_timeout(LIMIT).and_then(|i| {
        if i == N / 2 {
            barrier.abort().unwrap();
            return Ok(false);
        }
        barrier.wait_timeout(LIMIT).map(|_| true)
    });
    match r {
        Ok(true) => bump(&results, 1),
        Ok(false) => {}
        Err(e) => {
            assert!(e.is_invalid_state(), "{e:?}");
            bump(&results, 2);
        }
    }
}

#[test]
fn test_barrier_abort() {
    within(LIMIT, "test_barrier_abort", || {
        let m = Manager::start().unwrap();
        let b = m.barrier(N).unwrap();
        let results = m.dict::<u8, u64>().unwrap();
        run_parties(abort_f, || (b.clone(), results.clone()));
        assert_eq!(count(&results, 1), 0);
        assert_eq!(count(&results, 2), N as u64 - 1);
        assert!(b.broken().unwrap());
    });
}

fn reset_f((barrier, results): (Barrier, Counters)) {
    let i = barrier.wait_timeout(LIMIT).unwrap();
    if i == N / 2 {
        // Wait until the others are all in the barrier.
        let end = Instant::now() + LIMIT;
        while barrier.n_waiting().unwrap() < N - 1 {
            assert!(Instant::now() < end, "the others never arrived");
            thread::sleep(Duration::from_millis(1));
        }
        barrier.reset().unwrap();
    } else {
        match barrier.wait_timeout(LIMIT) {
            Ok(_) => bump(&results, 1),
            Err(e) => {
                assert!(e.is_invalid_state(), "{e:?}");
                bump(&results, 2);
            }
        }
    }
    // Pass the barrier again.
    barrier.wait_timeout(LIMIT).unwrap();
    bump(&results, 3);
}

#[test]
fn test_barrier_reset() {
    within(LIMIT, "test_barrier_reset", || {
        let m = Manager::start().unwrap();
        let b = m.barrier(N).unwrap();
        let results = m.dict::<u8, u64>().unwrap();
        run_parties(reset_f, || (b.clone(), results.clone()));
        assert_eq!(count(&results, 1), 0);
        assert_eq!(count(&results, 2), N as u64 - 1);
        assert_eq!(count(&results, 3), N as u64);
    });
}

fn abort_and_reset_f((barrier, barrier2, results): (Barrier, Barrier, Counters)) {
    abort_f((barrier.clone(), results.clone()));
    // Everyone leaves the barrier before the reset, and nobody enters it before.
    if barrier2.wait_timeout(LIMIT).unwrap() == N / 2 {
        barrier.reset().unwrap();
    }
    barrier2.wait_timeout(LIMIT).unwrap();
    barrier.wait_timeout(LIMIT).unwrap();
    bump(&results, 3);
}

#[test]
fn test_barrier_abort_and_reset() {
    within(LIMIT, "test_barrier_abort_and_reset", || {
        let m = Manager::start().unwrap();
        let b = m.barrier(N).unwrap();
        let b2 = m.barrier(N).unwrap();
        let results = m.dict::<u8, u64>().unwrap();
        run_parties(abort_and_reset_f, || {
            (b.clone(), b2.clone(), results.clone())
        });
        assert_eq!(count(&results, 1), 0);
        assert_eq!(count(&results, 2), N as u64 - 1);
        assert_eq!(count(&results, 3), N as u64);
    });
}

fn timeout_f((barrier, results): (Barrier, Counters)) {
    let i = barrier.wait_timeout(LIMIT).unwrap();
    if i == N / 2 {
        thread::sleep(Duration::from_secs(1)); // one party is late
    }
    match barrier.wait_timeout(Duration::from_millis(500)) {
        Ok(_) => {}
        // Python's BrokenBarrierError for all: the one that timed out is told so.
        Err(e) if e.is_timeout() || e.is_invalid_state() => bump(&results, 1),
        Err(e) => panic!("{e:?}"),
    }
}

#[test]
fn test_barrier_timeout() {
    within(LIMIT, "test_barrier_timeout", || {
        let m = Manager::start().unwrap();
        let b = m.barrier(N).unwrap();
        let results = m.dict::<u8, u64>().unwrap();
        run_parties(timeout_f, || (b.clone(), results.clone()));
        assert_eq!(count(&results, 1), N as u64);
        assert!(b.broken().unwrap());
    });
}

#[test]
fn test_barrier_single_thread() {
    within(LIMIT, "test_barrier_single_thread", || {
        let m = Manager::start().unwrap();
        let b = m.barrier(1).unwrap();
        assert_eq!(b.wait().unwrap(), 0);
        assert_eq!(b.wait().unwrap(), 0);
    });
}
