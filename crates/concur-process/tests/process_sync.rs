//! Process-shared locks, semaphores, conditions, events and barriers across forked
//! processes.
//!
//! Ported from CPython 3.13 `Lib/test/_test_multiprocessing.py`: `_TestLock`,
//! `_TestSemaphore`, `_TestCondition`, `_TestEvent` and `_TestBarrier`, in their
//! `processes` flavour (the other parties are forked children; some tests mix in a
//! thread, as CPython's do). Python's result lists become counters in shared memory.
//! Timing checks are lower bounds only. The robust-lock tests at the end (a holder
//! killed or exiting) have no CPython counterpart: its locks are semaphores.

mod common;

use common::{Exit, LIMIT, fork, within};
use concur_process::shm::Value;
use concur_process::sync::{
    Barrier, BoundedSemaphore, BrokenKind, Condition, Event, Lock, OwnerDied, RLock, ReleaseError,
    Semaphore, TryAcquireError,
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

fn bump(v: &Value<u32>) {
    v.with_lock(|x| *x += 1).unwrap();
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

    assert_eq!(cond.acquire().unwrap().notify(1), 1);
    thread::sleep(DELTA);
    assert_eq!(woken.value(), 1);

    assert_eq!(cond.acquire().unwrap().notify(1), 1);
    thread::sleep(DELTA);
    assert_eq!(woken.value(), 2);
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

// ---------------------------------------------------------------- _TestBarrier

const N: usize = 5;

/// CPython's `run_threads`: `f` runs in `N - 1` forked children and here.
fn run_parties(f: impl Fn() + Sync) {
    let children: Vec<_> = (1..N).map(|_| fork(&f)).collect();
    f();
    for c in children {
        c.expect_success(LIMIT, "barrier party");
    }
}

fn barrier() -> Barrier {
    Barrier::builder(N)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn multipass(passes: u32) {
    let b = barrier();
    let (r0, r1) = (Value::new(0u32).unwrap(), Value::new(0u32).unwrap());
    let m = b.parties() as u32;
    run_parties(|| {
        for i in 0..passes {
            bump(&r0);
            assert_eq!(r1.get(), i * m);
            b.wait().unwrap();
            bump(&r1);
            assert_eq!(r0.get(), (i + 1) * m);
            b.wait().unwrap();
        }
        assert!(!b.broken());
    });
    assert_eq!(b.n_waiting(), 0);
}

#[test]
fn test_barrier() {
    multipass(1);
}

#[test]
fn test_barrier_10() {
    multipass(10);
}

#[test]
fn test_wait_return() {
    let b = barrier();
    let zeros = Value::new(0u32).unwrap();
    let total = Value::new(0u32).unwrap();
    run_parties(|| {
        let i = b.wait().unwrap();
        assert!(i < N);
        if i == 0 {
            bump(&zeros);
        }
        bump(&total);
    });
    assert_eq!((zeros.get(), total.get()), (1, N as u32));
}

#[test]
fn test_abort() {
    let b = barrier();
    let (results1, results2) = (Value::new(0u32).unwrap(), Value::new(0u32).unwrap());
    run_parties(|| match b.wait() {
        Ok(i) if i == N / 2 => b.abort(),
        Ok(_) => match b.wait() {
            Ok(_) => bump(&results1),
            Err(_) => bump(&results2),
        },
        Err(_) => bump(&results2),
    });
    assert_eq!(results1.get(), 0);
    assert_eq!(results2.get(), N as u32 - 1);
    assert!(b.broken());
}

#[test]
fn test_reset() {
    let b = barrier();
    let r = [(); 3].map(|()| Value::new(0u32).unwrap());
    run_parties(|| {
        let i = b.wait().unwrap();
        if i == N / 2 {
            // Wait until the other parties are all in the barrier.
            let start = Instant::now();
            while b.n_waiting() < N - 1 {
                assert!(start.elapsed() < LIMIT, "parties never arrived");
                thread::sleep(Duration::from_millis(1));
            }
            b.reset();
        } else {
            match b.wait() {
                Ok(_) => bump(&r[0]),
                Err(e) => {
                    assert_eq!(e.kind(), BrokenKind::Reset);
                    bump(&r[1]);
                }
            }
        }
        // Now, pass the barrier again.
        b.wait().unwrap();
        bump(&r[2]);
    });
    assert_eq!(r.each_ref().map(|v| v.get()), [0, N as u32 - 1, N as u32]);
}

#[test]
fn test_abort_and_reset() {
    let b = barrier();
    let b2 = Barrier::new(N).unwrap();
    let r = [(); 3].map(|()| Value::new(0u32).unwrap());
    run_parties(|| {
        match b.wait() {
            Ok(i) if i == N / 2 => b.abort(),
            Ok(_) => match b.wait() {
                Ok(_) => bump(&r[0]),
                Err(_) => bump(&r[1]),
            },
            Err(_) => bump(&r[1]),
        }
        // Synchronize and reset the barrier: everyone has left it when we reset, and
        // no one enters it before the reset.
        if b2.wait_timeout(LIMIT).unwrap() == N / 2 {
            b.reset();
        }
        b2.wait_timeout(LIMIT).unwrap();
        b.wait().unwrap();
        bump(&r[2]);
    });
    assert_eq!(r.each_ref().map(|v| v.get()), [0, N as u32 - 1, N as u32]);
}

#[test]
fn test_barrier_timeout() {
    let b = barrier();
    let results = Value::new(0u32).unwrap();
    run_parties(|| {
        let i = b.wait().unwrap();
        if i == N / 2 {
            thread::sleep(Duration::from_millis(600)); // one party is late
        }
        if b.wait_timeout(Duration::from_millis(300)).is_err() {
            bump(&results);
        }
    });
    assert_eq!(results.get(), N as u32);
}

#[test]
fn test_default_timeout() {
    let b = Barrier::builder(N)
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let results = Value::new(0u32).unwrap();
    run_parties(|| {
        let i = b.wait_timeout(Duration::from_secs(30)).unwrap();
        if i == N / 2 {
            thread::sleep(Duration::from_millis(600)); // later than the default timeout
        }
        if let Err(e) = b.wait() {
            assert!(e.kind() == BrokenKind::Timeout || b.broken());
            bump(&results);
        }
    });
    assert_eq!(results.get(), N as u32);
}

#[test]
fn test_single_thread() {
    let b = Barrier::new(1).unwrap();
    assert_eq!(b.wait(), Ok(0));
    assert_eq!(b.wait(), Ok(0));
}

#[test]
fn test_thousand() {
    // CPython sends each pass number through a pipe under a lock; here each party
    // counts its passes in shared memory, and checks lockstep as it goes.
    let b = barrier();
    let passes = 1000usize;
    let counts = concur_process::shm::Array::<u32>::zeroed(passes).unwrap();
    run_parties(|| {
        for i in 0..passes {
            b.wait().unwrap();
            if i > 0 {
                // Everyone counted pass i - 1 before arriving at this barrier.
                assert_eq!(counts.get(i - 1), Some(N as u32));
            }
            counts.with_lock(|c| c[i] += 1).unwrap();
        }
    });
    assert!(counts.to_vec().iter().all(|&c| c == N as u32));
}

#[test]
fn a_party_killed_while_waiting_counts_as_arrived_and_does_not_wedge_the_barrier() {
    let b = Barrier::new(3).unwrap();
    let child = fork(|| {
        let _ = b.wait_timeout(LIMIT);
        unreachable!("released without the others");
    });
    let start = Instant::now();
    while b.n_waiting() < 1 {
        assert!(start.elapsed() < LIMIT, "child never arrived");
        thread::sleep(Duration::from_millis(1));
    }
    child.signal(libc::SIGKILL);
    assert_eq!(
        child.wait(LIMIT, "killed party"),
        Exit::Signal(libc::SIGKILL)
    );
    // Two live parties complete the cycle the dead one started...
    let b2 = b.clone();
    let t = thread::spawn(move || b2.wait_timeout(LIMIT));
    assert!(b.wait_timeout(LIMIT).is_ok());
    assert!(t.join().unwrap().is_ok());
    // ...and the next cycle works normally.
    let ts: Vec<_> = (0..2)
        .map(|_| {
            let b = b.clone();
            thread::spawn(move || b.wait_timeout(LIMIT))
        })
        .collect();
    assert!(b.wait_timeout(LIMIT).is_ok());
    for t in ts {
        assert!(t.join().unwrap().is_ok());
    }
}

// ---------------------------------------------------------------- robust locks

/// A child that takes `lock` (through `take`), signals `held`, then sleeps until
/// killed.
fn hold_until_killed(held: &Event, take: impl FnOnce()) -> common::Child {
    let child = fork(|| {
        take();
        held.set();
        loop {
            thread::sleep(Duration::from_secs(1));
        }
    });
    assert!(held.wait_timeout(LIMIT), "child never took the lock");
    child
}

#[test]
fn holder_killed_with_sigkill_the_next_acquirer_is_told_within_a_second() {
    let lock = Lock::new().unwrap();
    let held = Event::new().unwrap();
    let child = hold_until_killed(&held, || lock.acquire().unwrap().leak());
    assert!(lock.locked());
    child.signal(libc::SIGKILL);
    assert_eq!(child.wait(LIMIT, "holder"), Exit::Signal(libc::SIGKILL));

    match lock.acquire_timeout(Duration::from_secs(1)) {
        Err(TryAcquireError::OwnerDied(e)) => {
            let g = e.into_inner();
            assert!(g.lock().locked());
        }
        Err(TryAcquireError::WouldBlock) => panic!("lock of a dead holder not recovered in 1 s"),
        Ok(_) => panic!("the owner's death was not reported"),
    }
    // Reported once: the lock is healthy again.
    assert!(lock.acquire().is_ok());
    assert!(!lock.locked());
}

#[test]
fn holder_exiting_while_holding_is_reported() {
    let lock = Lock::new().unwrap();
    let child = fork(|| lock.acquire().unwrap().leak()); // then `_exit(0)`, holding it
    child.expect_success(LIMIT, "exiting holder");
    let got = lock.acquire_timeout(Duration::from_secs(1));
    assert!(matches!(got, Err(TryAcquireError::OwnerDied(_))), "{got:?}");
}

#[test]
fn a_blocked_acquirer_wakes_when_the_holder_dies() {
    let lock = Lock::new().unwrap();
    let held = Event::new().unwrap();
    let child = hold_until_killed(&held, || lock.acquire().unwrap().leak());
    let l2 = lock.clone();
    let waiter = thread::spawn(move || matches!(l2.acquire(), Err(OwnerDied { .. })));
    thread::sleep(DELTA); // let it block
    child.signal(libc::SIGKILL);
    assert_eq!(child.wait(LIMIT, "holder"), Exit::Signal(libc::SIGKILL));
    let told = within(LIMIT, "blocked acquire", move || waiter.join().unwrap());
    assert!(told, "the blocked acquirer was not told the owner died");
}

#[test]
fn rlock_holder_killed_is_reported_at_level_one() {
    let r = RLock::new().unwrap();
    let held = Event::new().unwrap();
    let child = hold_until_killed(&held, || {
        for _ in 0..3 {
            r.acquire().unwrap().leak();
        }
    });
    child.signal(libc::SIGKILL);
    assert_eq!(child.wait(LIMIT, "holder"), Exit::Signal(libc::SIGKILL));
    let g = match r.acquire_timeout(Duration::from_secs(1)) {
        Err(TryAcquireError::OwnerDied(e)) => e.into_inner(),
        other => panic!("expected OwnerDied, got {other:?}"),
    };
    assert_eq!(r.count(), 1);
    drop(g);
    assert!(!r.locked());
}

#[test]
fn value_lock_holder_killed_mid_update_is_reported_to_with_lock() {
    let v = Value::new(0u64).unwrap();
    let held = Event::new().unwrap();
    let child = hold_until_killed(&held, || {
        // Leave the lock held and the value half-updated.
        let lock = v.get_lock().unwrap();
        lock.acquire().unwrap().leak();
        v.set(7); // this thread holds the lock: no re-locking
    });
    child.signal(libc::SIGKILL);
    assert_eq!(child.wait(LIMIT, "holder"), Exit::Signal(libc::SIGKILL));
    let v2 = v.clone();
    let r = within(LIMIT, "with_lock after owner death", move || {
        v2.with_lock(|x| {
            *x += 1;
            *x
        })
    });
    match r {
        Err(e) => assert_eq!(e.into_inner(), 8),
        Ok(_) => panic!("the owner's death was not reported"),
    }
    assert_eq!(v.with_lock(|x| *x), Ok(8));
}

#[test]
fn condition_waiter_is_told_when_a_lock_holder_dies() {
    let lock = Lock::new().unwrap();
    let cond = Condition::with_lock(lock.clone()).unwrap();
    let held = Event::new().unwrap();
    let c2 = cond.clone();
    let waiter = thread::spawn(move || {
        let mut g = c2.acquire().unwrap();
        let r = g.wait_timeout(LIMIT);
        matches!(r, Err(ref e) if *e.get_ref())
    });
    // The child takes the lock once the waiter released it in `wait`, notifies, and
    // dies still holding it: the waiter gets the lock back with the news.
    thread::sleep(DELTA);
    let child = hold_until_killed(&held, || {
        let g = cond.acquire().unwrap();
        assert_eq!(g.notify(1), 1);
        std::mem::forget(g);
    });
    child.signal(libc::SIGKILL);
    assert_eq!(child.wait(LIMIT, "holder"), Exit::Signal(libc::SIGKILL));
    assert!(within(LIMIT, "condition waiter", move || waiter
        .join()
        .unwrap()));
}
