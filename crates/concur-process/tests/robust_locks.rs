//! Robust process-shared locks: a holder that dies (killed or exiting) does not
//! deadlock the others; the next acquirer gets the lock and is told.
//!
//! No CPython counterpart: Python's `multiprocessing.Lock` is a semaphore, and a
//! process killed holding it leaves it locked forever. The scenarios follow the
//! issue: a child `SIGKILL`ed (or `_exit`ing) while holding a shared `Lock` — the parent
//! acquires it within 1 s and is told the owner died — and the same through `RLock`,
//! a `Value`'s lock, a blocked acquirer and a `Condition` waiter.

mod common;

use common::{Exit, LIMIT, fork, within};
use concur_process::shm::Value;
use concur_process::sync::{Condition, Event, Lock, OwnerDied, RLock, TryAcquireError};
use std::thread;
use std::time::Duration;

const DELTA: Duration = Duration::from_millis(100);

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
fn a_child_forked_while_the_parent_holds_a_lock_does_not_take_it_to_its_grave() {
    // glibc gives a forked child a fresh robust-mutex list: the child's exit must not
    // mark the parent's lock "owner died".
    let lock = Lock::new().unwrap();
    let g = lock.acquire().unwrap();
    fork(|| assert!(lock.locked())).expect_success(LIMIT, "short-lived child");
    assert!(lock.locked());
    drop(g);
    assert!(lock.acquire().is_ok(), "a live holder was reported dead");
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
