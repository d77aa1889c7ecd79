//! Unit tests of the detector state, driven through the same calls the hooks make,
//! with simulated threads (so no global mode is touched and nothing blocks). The
//! join cases stand in for end-to-end tests until concur's thread joins call the hooks.

use super::*;
use crate::deadlock::ReportKind;

fn t(ident: u64, name: &str) -> Me {
    Me {
        ident,
        name: Arc::from(name),
    }
}

fn here() -> &'static Location<'static> {
    Location::caller()
}

fn lbl(s: &'static str) -> impl FnOnce() -> Arc<str> {
    move || Arc::from(s)
}

/// A blocking acquire that succeeds at once.
fn acquire(s: &mut State, me: &Me, id: u64, name: &'static str) -> Vec<Report> {
    let r = s.before_acquire(me, id, lbl(name), here(), true);
    s.after_acquire(me, id, lbl(name));
    r
}

#[test]
fn inversion_reported_once() {
    let mut s = State::default();
    let (t1, t2) = (t(1, "t1"), t(2, "t2"));
    assert!(acquire(&mut s, &t1, 10, "A").is_empty());
    assert!(acquire(&mut s, &t1, 11, "B").is_empty());
    s.on_release(11);
    s.on_release(10);
    assert!(acquire(&mut s, &t2, 11, "B").is_empty());
    let r = acquire(&mut s, &t2, 10, "A");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind(), ReportKind::LockOrderInversion);
    assert_eq!(
        r[0].message(),
        "lock order inversion: A -> B in thread t1, B -> A in thread t2"
    );
    assert_eq!(r[0].threads(), ["t1", "t2"]);
    assert_eq!(r[0].locks(), ["A", "B"]);
    s.on_release(10);
    s.on_release(11);
    // Same pair again, either order: not reported twice.
    assert!(acquire(&mut s, &t2, 11, "B").is_empty());
    assert!(acquire(&mut s, &t2, 10, "A").is_empty());
    s.on_release(10);
    s.on_release(11);
    assert_eq!(s.thread_count(), 0, "threads holding nothing are forgotten");
}

#[test]
fn self_deadlock_on_plain_lock() {
    let mut s = State::default();
    let t1 = t(1, "t1");
    assert!(acquire(&mut s, &t1, 10, "A").is_empty());
    let r = s.before_acquire(&t1, 10, lbl("A"), here(), true);
    assert_eq!(r.len(), 1);
    assert_eq!(
        r[0].message(),
        "deadlock: thread t1 holds A and waits for A"
    );
}

#[test]
fn wait_for_cycle_two_threads() {
    let mut s = State::default();
    let (t1, t2) = (t(1, "t1"), t(2, "t2"));
    acquire(&mut s, &t1, 10, "A");
    acquire(&mut s, &t2, 11, "B");
    // t1 blocks on B (held by t2, which waits for nothing yet).
    let r = s.before_acquire(&t1, 11, lbl("B"), here(), true);
    assert!(r.is_empty());
    // t2 blocks on A: inversion and an actual cycle.
    let r = s.before_acquire(&t2, 10, lbl("A"), here(), true);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].kind(), ReportKind::LockOrderInversion);
    assert_eq!(r[1].kind(), ReportKind::WaitForCycle);
    assert_eq!(
        r[1].message(),
        "deadlock: thread t2 holds B and waits for A; thread t1 holds A and waits for B"
    );
    assert_eq!(r[1].threads(), ["t2", "t1"]);
    assert_eq!(r[1].locks(), ["B", "A"]);
    // Panic mode: t2 gives up (the hook did not record its wait); t1 goes on.
    s.end_wait(&t2);
    s.on_release(11);
    s.after_acquire(&t1, 11, lbl("B"));
}

#[test]
fn unrecorded_wait_in_panic_mode() {
    let mut s = State::default();
    let (t1, t2) = (t(1, "t1"), t(2, "t2"));
    acquire(&mut s, &t1, 10, "A");
    acquire(&mut s, &t2, 11, "B");
    assert!(
        s.before_acquire(&t1, 11, lbl("B"), here(), false)
            .is_empty()
    );
    // Nothing found: recorded even with record = false.
    let r = s.before_acquire(&t2, 10, lbl("A"), here(), false);
    assert_eq!(r.len(), 2);
    // t2 was not recorded as waiting: t1 re-checking finds no cycle.
    s.end_wait(&t1);
    assert!(s.find_cycle(1, Wait::Lock(11)).is_none());
}

#[test]
fn three_lock_cycle() {
    let mut s = State::default();
    let (t1, t2, t3) = (t(1, "t1"), t(2, "t2"), t(3, "t3"));
    for (me, a, an, b, bn) in [(&t1, 1, "A", 2, "B"), (&t2, 2, "B", 3, "C")] {
        assert!(acquire(&mut s, me, a, an).is_empty());
        assert!(acquire(&mut s, me, b, bn).is_empty());
        s.on_release(b);
        s.on_release(a);
    }
    acquire(&mut s, &t3, 3, "C");
    let r = acquire(&mut s, &t3, 1, "A");
    assert_eq!(r.len(), 1);
    assert_eq!(
        r[0].message(),
        "lock order inversion: A -> B in thread t1, B -> C in thread t2, C -> A in thread t3"
    );
    assert_eq!(r[0].threads(), ["t1", "t2", "t3"]);
}

#[test]
fn consistent_order_and_try_acquire_not_reported() {
    let mut s = State::default();
    let (t1, t2) = (t(1, "t1"), t(2, "t2"));
    for me in [&t1, &t2, &t1] {
        assert!(acquire(&mut s, me, 1, "A").is_empty());
        assert!(acquire(&mut s, me, 2, "B").is_empty());
        // Recursive use through a non-blocking acquire: no edge, no report.
        s.after_acquire(me, 1, lbl("A"));
        s.on_release(1);
        s.on_release(2);
        s.on_release(1);
    }
    // B held, A try-acquired (no before_acquire): not an inversion.
    acquire(&mut s, &t2, 2, "B");
    s.after_acquire(&t2, 1, lbl("A"));
    s.on_release(1);
    s.on_release(2);
    assert_eq!(s.edge_count(), 1);
    assert_eq!(s.thread_count(), 0);
}

#[test]
fn join_on_thread_waiting_for_my_lock() {
    let mut s = State::default();
    let (x, y) = (t(1, "x"), t(2, "y"));
    acquire(&mut s, &x, 10, "A");
    assert!(s.before_acquire(&y, 10, lbl("A"), here(), true).is_empty());
    let r = s.before_join(&x, 2, true);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind(), ReportKind::WaitForCycle);
    assert_eq!(
        r[0].message(),
        "deadlock: thread x holds A and waits for thread y to finish; thread y waits for A"
    );
    // The join ends (timed out), y eventually gets A.
    s.end_wait(&x);
    s.on_release(10);
    s.after_acquire(&y, 10, lbl("A"));
    s.on_release(10);
    assert_eq!(s.thread_count(), 0);
}

#[test]
fn join_chain_and_self_join() {
    let mut s = State::default();
    let (x, y, z) = (t(1, "x"), t(2, "y"), t(3, "z"));
    // y joins z, z joins x, x joins y: a cycle of joins.
    assert!(s.before_join(&y, 3, true).is_empty());
    assert!(s.before_join(&z, 1, true).is_empty());
    let r = s.before_join(&x, 2, true);
    assert_eq!(
        r[0].message(),
        "deadlock: thread x waits for thread y to finish; thread y waits for thread z to \
         finish; thread z waits for thread x to finish"
    );
    let r = s.before_join(&t(9, "w"), 9, true);
    assert_eq!(
        r[0].message(),
        "deadlock: thread w waits for thread w to finish"
    );
}

#[test]
fn join_on_finished_or_unrelated_thread_is_fine() {
    let mut s = State::default();
    let (x, y) = (t(1, "x"), t(2, "y"));
    acquire(&mut s, &x, 10, "A");
    assert!(s.before_join(&x, 42, true).is_empty());
    // y waits for A, held by x, which waits for thread 42: no cycle through y.
    assert!(s.before_acquire(&y, 10, lbl("A"), here(), true).is_empty());
}

#[test]
fn cross_thread_release_clears_owner() {
    let mut s = State::default();
    let (t1, t2) = (t(1, "t1"), t(2, "t2"));
    acquire(&mut s, &t1, 10, "A");
    // t2 releases A (Python-style Lock), then a racing acquire by t2 is seen before
    // the release hook of an earlier holder: the oldest acquisition is the one freed.
    s.on_release(10);
    assert_eq!(s.thread_count(), 0);
    acquire(&mut s, &t1, 10, "A");
    acquire(&mut s, &t2, 10, "A"); // reported late: t1's release not yet seen
    s.on_release(10); // t1's
    assert!(s.before_acquire(&t1, 10, lbl("A"), here(), true).is_empty());
    let r = s.before_acquire(&t2, 11, lbl("B"), here(), true);
    assert!(r.is_empty());
}

#[test]
fn dropped_lock_frees_its_node() {
    let mut s = State::default();
    let t1 = t(1, "t1");
    acquire(&mut s, &t1, 1, "A");
    acquire(&mut s, &t1, 2, "B");
    assert_eq!(s.edge_count(), 1);
    s.lock_dropped(2);
    assert_eq!(s.edge_count(), 0);
    s.on_release(2); // late release of a dropped lock: ignored
    s.on_release(1);
    assert_eq!(s.thread_count(), 0);
    // B -> A with a new B: nothing to invert.
    acquire(&mut s, &t1, 3, "B2");
    assert!(acquire(&mut s, &t1, 1, "A").is_empty());
}
