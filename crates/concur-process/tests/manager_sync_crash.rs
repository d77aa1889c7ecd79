//! Crash safety and ownership of a manager's synchronization proxies, beyond
//! CPython's tests (issue 7): a client process SIGKILLed while holding the lock, a
//! semaphore unit, an RLock (every level) or a condition's lock does not block the
//! others (they acquire within 2 s), nor does one killed while waiting to acquire;
//! RLock ownership across processes; a lock or unit released by another client stays
//! with its next holder when the first client goes; shutdown wakes blocked waiters.
//! The CPython ports are in `manager_sync.rs`.

mod children;
mod common;

use std::thread;
use std::time::Duration;

use children::{join, spawn};
use common::{LIMIT, within};
use concur_process::manager::{Condition, Event, Lock, RLock, Semaphore};
use concur_process::{Manager, Process};

const DELTA: Duration = Duration::from_millis(100);

/// How soon the issue wants a dead client's lock to pass to another.
const RELEASE_BOUND: Duration = Duration::from_secs(2);

/// Takes the lock, says so, and sleeps until killed.
fn hold_lock((lock, held): (Lock, Event)) {
    lock.acquire().unwrap();
    held.set().unwrap();
    thread::sleep(LIMIT);
}

/// Kills `p` (bounded reap).
fn kill(p: &Process<()>) {
    p.kill().unwrap();
    assert!(p.join_timeout(LIMIT).is_err(), "the child was killed");
}

#[test]
fn killed_lock_holder_releases_the_lock() {
    within(LIMIT, "killed_lock_holder_releases_the_lock", || {
        let m = Manager::start().unwrap();
        let lock = m.lock().unwrap();
        let held = m.event().unwrap();
        let p = spawn(hold_lock, (lock.clone(), held.clone()));
        assert!(held.wait_timeout(LIMIT).unwrap());
        assert!(!lock.try_acquire().unwrap(), "the child holds it");
        kill(&p);
        assert!(
            lock.acquire_timeout(RELEASE_BOUND).unwrap(),
            "the dead client's lock was released within 2 s"
        );
    });
}

fn hold_unit((sem, held): (Semaphore, Event)) {
    sem.acquire().unwrap();
    held.set().unwrap();
    thread::sleep(LIMIT);
}

#[test]
fn killed_semaphore_holder_returns_its_unit() {
    within(LIMIT, "killed_semaphore_holder_returns_its_unit", || {
        let m = Manager::start().unwrap();
        let sem = m.semaphore(1).unwrap();
        let held = m.event().unwrap();
        let p = spawn(hold_unit, (sem.clone(), held.clone()));
        assert!(held.wait_timeout(LIMIT).unwrap());
        assert!(!sem.try_acquire().unwrap(), "the child holds the unit");
        kill(&p);
        assert!(sem.acquire_timeout(RELEASE_BOUND).unwrap());
        assert_eq!(sem.value().unwrap(), 0);
    });
}

fn hold_rlock((lock, held): (RLock, Event)) {
    lock.acquire().unwrap();
    lock.acquire().unwrap();
    held.set().unwrap();
    thread::sleep(LIMIT);
}

#[test]
fn killed_rlock_owner_releases_every_level() {
    within(LIMIT, "killed_rlock_owner_releases_every_level", || {
        let m = Manager::start().unwrap();
        let lock = m.rlock().unwrap();
        let held = m.event().unwrap();
        let p = spawn(hold_rlock, (lock.clone(), held.clone()));
        assert!(held.wait_timeout(LIMIT).unwrap());
        assert!(!lock.try_acquire().unwrap());
        kill(&p);
        assert!(lock.acquire_timeout(RELEASE_BOUND).unwrap());
        lock.release().unwrap();
        assert!(!lock.locked().unwrap());
    });
}

fn hold_condition((c, held): (Condition, Event)) {
    c.acquire().unwrap();
    held.set().unwrap();
    thread::sleep(LIMIT);
}

#[test]
fn killed_condition_owner_releases_it() {
    within(LIMIT, "killed_condition_owner_releases_it", || {
        let m = Manager::start().unwrap();
        let c = m.condition().unwrap();
        let held = m.event().unwrap();
        let p = spawn(hold_condition, (c.clone(), held.clone()));
        assert!(held.wait_timeout(LIMIT).unwrap());
        assert!(!c.try_acquire().unwrap());
        kill(&p);
        assert!(c.acquire_timeout(RELEASE_BOUND).unwrap());
    });
}

fn rlock_other_owner(lock: RLock) -> (bool, bool) {
    let release_refused = lock.release().unwrap_err().is_invalid_state();
    let acquired = lock.try_acquire().unwrap();
    (release_refused, acquired)
}

#[test]
fn rlock_ownership_across_processes() {
    within(LIMIT, "rlock_ownership_across_processes", || {
        let m = Manager::start().unwrap();
        let lock = m.rlock().unwrap();
        lock.acquire().unwrap();
        lock.acquire().unwrap();
        assert!(lock.is_owned().unwrap());
        let p = spawn(rlock_other_owner, lock.clone());
        assert_eq!(join(&p), (true, false));
        lock.release().unwrap();
        let p = spawn(rlock_other_owner, lock.clone());
        assert_eq!(join(&p), (true, false), "still held at one level");
        lock.release().unwrap();
        let p = spawn(rlock_other_owner, lock.clone());
        // The child takes it and exits: its level is released with its connection.
        assert_eq!(join(&p), (true, true));
        assert!(lock.acquire_timeout(LIMIT).unwrap());
    });
}

#[test]
fn release_by_another_client_clears_the_record() {
    within(LIMIT, "release_by_another_client_clears_the_record", || {
        let m = Manager::start().unwrap();
        let a = m.lock().unwrap();
        let (b, c) = (a.clone(), a.clone());
        a.acquire().unwrap();
        b.release().unwrap();
        c.acquire().unwrap();
        drop(a); // its connection ends: it holds nothing now
        thread::sleep(DELTA);
        assert!(b.locked().unwrap(), "c still holds the lock");

        let s = m.bounded_semaphore(1).unwrap();
        let (t, u) = (s.clone(), s.clone());
        s.acquire().unwrap();
        t.release().unwrap();
        u.acquire().unwrap();
        drop(s);
        thread::sleep(DELTA);
        assert_eq!(t.value().unwrap(), 0, "u still holds the unit");
    });
}

#[test]
fn shutdown_wakes_blocked_waiters() {
    within(LIMIT, "shutdown_wakes_blocked_waiters", || {
        let m = Manager::start().unwrap();
        let lock = m.lock().unwrap();
        let event = m.event().unwrap();
        lock.acquire().unwrap();
        let (l2, e2) = (lock.clone(), event.clone());
        let t1 = thread::spawn(move || l2.acquire());
        let t2 = thread::spawn(move || e2.wait());
        thread::sleep(DELTA);
        m.shutdown().unwrap();
        assert!(t1.join().unwrap().unwrap_err().is_shutdown());
        assert!(t2.join().unwrap().unwrap_err().is_shutdown());
    });
}

/// Waits to acquire (the lock is held), saying it is about to.
fn wait_for_lock((lock, waiting): (Lock, Event)) {
    waiting.set().unwrap();
    lock.acquire().unwrap();
    thread::sleep(LIMIT);
}

#[test]
fn killed_waiter_does_not_keep_the_lock() {
    within(LIMIT, "killed_waiter_does_not_keep_the_lock", || {
        let m = Manager::start().unwrap();
        let lock = m.lock().unwrap();
        let waiting = m.event().unwrap();
        lock.acquire().unwrap();
        let p = spawn(wait_for_lock, (lock.clone(), waiting.clone()));
        assert!(waiting.wait_timeout(LIMIT).unwrap());
        thread::sleep(DELTA); // let its acquire reach the server
        kill(&p);
        // The dead client's server thread may still take the lock when it is
        // released; it gives it back as soon as it finds the connection gone.
        lock.release().unwrap();
        let other = lock.clone();
        assert!(other.acquire_timeout(RELEASE_BOUND).unwrap());
    });
}

/// Blocks in `get` (announcing it first) until killed.
fn blocked_get((q, started): (concur_process::manager::Queue<u32>, Event)) {
    started.set().unwrap();
    let _ = q.get();
}

#[test]
fn a_client_killed_while_blocked_in_get_takes_no_item() {
    within(
        LIMIT,
        "a_client_killed_while_blocked_in_get_takes_no_item",
        || {
            let m = Manager::start().unwrap();
            let q = m.queue::<u32>(0).unwrap();
            let started = m.event().unwrap();
            let p = spawn(blocked_get, (q.clone(), started.clone()));
            assert!(started.wait_timeout(LIMIT).unwrap());
            // Let the child's `get` reach the server and block there.
            thread::sleep(DELTA);
            kill(&p);
            // Its server thread notices the hang-up within a check interval; an item put
            // after that is for the living.
            thread::sleep(DELTA * 3);
            q.put(7).unwrap();
            assert_eq!(
                q.get_timeout(RELEASE_BOUND).unwrap(),
                7,
                "the dead client's get took the item"
            );
        },
    );
}
