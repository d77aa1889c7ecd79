//! Behaviour tests for `concur_core::queue`, ported from CPython 3.13's
//! `Lib/test/test_queue.py` (`BaseQueueTestMixin`: `basic_queue_test`, `test_nowait`,
//! `test_queue_task_done`, `queue_join_test`, the `test_shutdown_*` family, and
//! `BlockingTestMixin.do_blocking_test`), plus drop accounting that Python does not
//! need.
//!
//! Each shared body is generic over a small adapter trait and run, by the `kinds!`
//! macro, against `Queue` (the bounded ring and, where the body uses `maxsize = 0`,
//! the unbounded flavor), `LifoQueue` and `PriorityQueue`. `SimpleQueue` has its own
//! tests at the end (it has no bound, task tracking or shutdown). Timing asserts are
//! lower bounds only; every wait is bounded by `within` or a timeout.

mod common;

use common::{LIMIT, within};
use concur_core::queue::{
    GetTimeoutError, LifoQueue, PriorityQueue, PutTimeoutError, Queue, ShutDown, SimpleQueue,
    TaskDoneError, TryGetError, TryPutError,
};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const QUEUE_SIZE: usize = 5;

/// How long a trigger thread waits before unblocking the main thread.
const TRIGGER_DELAY: Duration = Duration::from_millis(if cfg!(miri) { 5 } else { 50 });

/// The operations every joinable kind shares, so one body runs against each.
trait Kind<T: Send + 'static>: Clone + Send + Sync + 'static {
    fn make(maxsize: usize) -> Self;
    /// The order `get` returns `items` put in that order.
    fn order(items: &[i64]) -> Vec<i64>;
    fn put(&self, t: T) -> Result<(), ShutDown<T>>;
    fn try_put(&self, t: T) -> Result<(), TryPutError<T>>;
    fn put_timeout(&self, t: T, d: Duration) -> Result<(), PutTimeoutError<T>>;
    fn put_deadline(&self, t: T, d: Instant) -> Result<(), PutTimeoutError<T>>;
    fn get(&self) -> Result<T, ShutDown>;
    fn try_get(&self) -> Result<T, TryGetError>;
    fn get_timeout(&self, d: Duration) -> Result<T, GetTimeoutError>;
    fn get_deadline(&self, d: Instant) -> Result<T, GetTimeoutError>;
    fn qsize(&self) -> usize;
    fn empty(&self) -> bool;
    fn full(&self) -> bool;
    fn maxsize(&self) -> usize;
    fn task_done(&self) -> Result<(), TaskDoneError>;
    fn join(&self);
    fn join_timeout(&self, d: Duration) -> bool;
    fn shutdown(&self, immediate: bool);
    fn is_shutdown(&self) -> bool;
    fn drain_blocking(&self) -> Vec<T>;
    fn drain_now(&self) -> Vec<T>;
}

macro_rules! impl_kind {
    ($ty:ident, $order:expr) => {
        impl<T: Ord + Send + 'static> Kind<T> for $ty<T> {
            fn make(maxsize: usize) -> Self {
                $ty::new(maxsize)
            }
            fn order(items: &[i64]) -> Vec<i64> {
                let f: fn(&[i64]) -> Vec<i64> = $order;
                f(items)
            }
            fn put(&self, t: T) -> Result<(), ShutDown<T>> {
                $ty::put(self, t)
            }
            fn try_put(&self, t: T) -> Result<(), TryPutError<T>> {
                $ty::try_put(self, t)
            }
            fn put_timeout(&self, t: T, d: Duration) -> Result<(), PutTimeoutError<T>> {
                $ty::put_timeout(self, t, d)
            }
            fn put_deadline(&self, t: T, d: Instant) -> Result<(), PutTimeoutError<T>> {
                $ty::put_deadline(self, t, d)
            }
            fn get(&self) -> Result<T, ShutDown> {
                $ty::get(self)
            }
            fn try_get(&self) -> Result<T, TryGetError> {
                $ty::try_get(self)
            }
            fn get_timeout(&self, d: Duration) -> Result<T, GetTimeoutError> {
                $ty::get_timeout(self, d)
            }
            fn get_deadline(&self, d: Instant) -> Result<T, GetTimeoutError> {
                $ty::get_deadline(self, d)
            }
            fn qsize(&self) -> usize {
                $ty::qsize(self)
            }
            fn empty(&self) -> bool {
                $ty::empty(self)
            }
            fn full(&self) -> bool {
                $ty::full(self)
            }
            fn maxsize(&self) -> usize {
                $ty::maxsize(self)
            }
            fn task_done(&self) -> Result<(), TaskDoneError> {
                $ty::task_done(self)
            }
            fn join(&self) {
                $ty::join(self)
            }
            fn join_timeout(&self, d: Duration) -> bool {
                $ty::join_timeout(self, d)
            }
            fn shutdown(&self, immediate: bool) {
                $ty::shutdown(self, immediate)
            }
            fn is_shutdown(&self) -> bool {
                $ty::is_shutdown(self)
            }
            fn drain_blocking(&self) -> Vec<T> {
                self.iter().collect()
            }
            fn drain_now(&self) -> Vec<T> {
                self.try_iter().collect()
            }
        }
    };
}

impl_kind!(Queue, |v| v.to_vec());
impl_kind!(LifoQueue, |v| v.iter().rev().copied().collect());
impl_kind!(PriorityQueue, |v| {
    let mut v = v.to_vec();
    v.sort();
    v
});

/// Runs each body against every kind: `body::<K>()` for `K` in the three types.
macro_rules! kinds {
    ($($body:ident),* $(,)?) => {$(
        mod $body {
            use super::*;
            #[test]
            fn fifo() {
                super::$body::<Queue<i64>>();
            }
            #[test]
            fn lifo() {
                super::$body::<LifoQueue<i64>>();
            }
            #[test]
            fn priority() {
                super::$body::<PriorityQueue<i64>>();
            }
        }
    )*};
}

kinds!(
    basic,
    nowait,
    timeouts,
    task_done_too_many,
    join_with_workers_bounded,
    join_with_workers_unbounded,
    shutdown_empty,
    shutdown_nonempty,
    shutdown_immediate,
    shutdown_transitions,
    shutdown_wakes_blocked_getters,
    shutdown_get_drains_then_fails,
    shutdown_wakes_blocked_putters,
    shutdown_immediate_join_waits_for_taken,
    shutdown_join_waits_for_task_done,
    iterator_ends_at_shutdown,
    drop_counts,
    drop_counts_unbounded,
);

/// `BlockingTestMixin.do_blocking_test`: `block` must not return before `trigger` (run
/// on another thread after a delay) has started.
fn do_blocking_test<R: Send + 'static>(
    block: impl FnOnce() -> R + Send + 'static,
    trigger: impl FnOnce() + Send + 'static,
) -> R {
    let started = Arc::new(AtomicBool::new(false));
    let t = thread::spawn({
        let started = started.clone();
        move || {
            thread::sleep(TRIGGER_DELAY);
            started.store(true, Ordering::SeqCst);
            trigger();
        }
    });
    let r = within(LIMIT, "blocking call woken by trigger", block);
    assert!(
        started.load(Ordering::SeqCst),
        "blocking call returned before its trigger ran"
    );
    t.join().unwrap();
    r
}

/// `basic_queue_test`, done twice on the same queue as `test_basic` does.
fn basic<K: Kind<i64>>() {
    let q = K::make(QUEUE_SIZE);
    for _ in 0..2 {
        assert_eq!(q.qsize(), 0);
        assert!(q.empty());
        assert!(!q.full());
        for x in [111, 333, 222] {
            q.put(x).unwrap();
        }
        let got: Vec<i64> = (0..3).map(|_| q.get().unwrap()).collect();
        assert_eq!(got, K::order(&[111, 333, 222]), "wrong order");
        for i in 0..QUEUE_SIZE as i64 - 1 {
            q.put(i).unwrap();
            assert!(q.qsize() > 0);
        }
        assert!(!q.full());
        let last = 2 * QUEUE_SIZE as i64;
        let full = 3 * 2 * QUEUE_SIZE as i64;
        q.put(last).unwrap();
        assert!(q.full());
        assert!(!q.empty());
        assert_eq!(q.try_put(full), Err(TryPutError::Full(full)));
        assert_eq!(
            q.put_timeout(full, Duration::from_millis(10)),
            Err(PutTimeoutError::Full(full))
        );
        // A blocking put, woken by a get on another thread.
        let (q1, q2) = (q.clone(), q.clone());
        do_blocking_test(
            move || q1.put(full).unwrap(),
            move || {
                q2.get().unwrap();
            },
        );
        let (q1, q2) = (q.clone(), q.clone());
        do_blocking_test(
            move || q1.put_timeout(full, Duration::from_secs(10)).unwrap(),
            move || {
                q2.get().unwrap();
            },
        );
        for _ in 0..QUEUE_SIZE {
            q.get().unwrap();
        }
        assert_eq!(q.qsize(), 0);
        assert_eq!(q.try_get(), Err(TryGetError::Empty));
        assert_eq!(
            q.get_timeout(Duration::from_millis(10)),
            Err(GetTimeoutError::Empty)
        );
        // A blocking get, woken by a put on another thread.
        let (q1, q2) = (q.clone(), q.clone());
        let got = do_blocking_test(move || q1.get().unwrap(), move || q2.put(-7).unwrap());
        assert_eq!(got, -7);
        let (q1, q2) = (q.clone(), q.clone());
        let got = do_blocking_test(
            move || q1.get_timeout(Duration::from_secs(10)).unwrap(),
            move || q2.put(-8).unwrap(),
        );
        assert_eq!(got, -8);
        // Balance the books so the second round starts clean.
        while q.task_done().is_ok() {}
    }
}

/// `test_nowait`.
fn nowait<K: Kind<i64>>() {
    let q = K::make(QUEUE_SIZE);
    assert_eq!(q.maxsize(), QUEUE_SIZE);
    for _ in 0..QUEUE_SIZE {
        q.try_put(1).unwrap();
    }
    let e = q.try_put(1).unwrap_err();
    assert!(e.is_full() && !e.is_shutdown());
    for _ in 0..QUEUE_SIZE {
        q.try_get().unwrap();
    }
    assert_eq!(q.try_get(), Err(TryGetError::Empty));
}

/// `put(timeout=)` / `get(timeout=)` raise Full / Empty, after at least the timeout;
/// deadlines in the past do not block.
fn timeouts<K: Kind<i64>>() {
    let q = K::make(1);
    let t = Duration::from_millis(30);
    let start = Instant::now();
    assert_eq!(q.get_timeout(t), Err(GetTimeoutError::Empty));
    assert!(start.elapsed() >= t);
    assert_eq!(q.get_deadline(Instant::now()), Err(GetTimeoutError::Empty));
    q.put(1).unwrap();
    let start = Instant::now();
    assert_eq!(q.put_timeout(2, t), Err(PutTimeoutError::Full(2)));
    assert!(start.elapsed() >= t);
    assert_eq!(
        q.put_deadline(3, Instant::now()),
        Err(PutTimeoutError::Full(3))
    );
    // A huge timeout means "forever", and succeeds at once when it can.
    assert_eq!(q.get_timeout(Duration::MAX), Ok(1));
    q.put_timeout(4, Duration::MAX).unwrap();
    assert_eq!(q.get_deadline(Instant::now()), Ok(4));
}

/// `test_queue_task_done`: one call too many is an error, never an underflow.
fn task_done_too_many<K: Kind<i64>>() {
    let q = K::make(0);
    assert!(q.task_done().is_err());
    q.put(1).unwrap();
    // Python allows task_done before get: it only counts puts.
    q.task_done().unwrap();
    assert_eq!(
        q.task_done().unwrap_err().to_string(),
        "task_done() called too many times"
    );
    assert!(q.join_timeout(Duration::ZERO));
    q.get().unwrap();
    assert!(q.task_done().is_err());
}

/// `queue_join_test`, done twice on one queue as `test_queue_join` does.
fn join_with_workers<K: Kind<i64>>(q: K) {
    for _ in 0..2 {
        let cum = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let (q, cum) = (q.clone(), cum.clone());
                thread::spawn(move || {
                    loop {
                        let x = q.get().unwrap();
                        if x < 0 {
                            q.task_done().unwrap();
                            return;
                        }
                        cum.fetch_add(x as usize, Ordering::SeqCst);
                        q.task_done().unwrap();
                    }
                })
            })
            .collect();
        let q2 = q.clone();
        let cum2 = cum.clone();
        within(LIMIT, "join after 100 items", move || {
            for i in 0..100 {
                q2.put(i).unwrap();
            }
            q2.join();
            assert_eq!(cum2.load(Ordering::SeqCst), (0..100).sum());
            for _ in 0..2 {
                q2.put(-1).unwrap();
            }
            q2.join(); // joining twice works
        });
        for w in workers {
            w.join().unwrap();
        }
    }
    assert!(q.task_done().is_err());
}

fn join_with_workers_bounded<K: Kind<i64>>() {
    join_with_workers(K::make(QUEUE_SIZE));
}

fn join_with_workers_unbounded<K: Kind<i64>>() {
    join_with_workers(K::make(0));
}

/// `test_shutdown_empty`.
fn shutdown_empty<K: Kind<i64>>() {
    let q = K::make(QUEUE_SIZE);
    q.shutdown(false);
    assert_eq!(q.put(1), Err(ShutDown(1)));
    assert_eq!(q.try_put(2), Err(TryPutError::ShutDown(2)));
    assert!(
        q.put_timeout(3, Duration::from_millis(1))
            .unwrap_err()
            .is_shutdown()
    );
    assert_eq!(q.get(), Err(ShutDown(())));
    assert_eq!(q.try_get(), Err(TryGetError::ShutDown));
    assert_eq!(
        q.get_timeout(Duration::from_secs(5)),
        Err(GetTimeoutError::ShutDown)
    );
}

/// `test_shutdown_nonempty`: a normal shutdown still hands out what is queued.
fn shutdown_nonempty<K: Kind<i64>>() {
    let q = K::make(QUEUE_SIZE);
    q.put(1).unwrap();
    q.put(2).unwrap();
    q.shutdown(false);
    assert_eq!(q.put(3), Err(ShutDown(3)));
    let mut got = vec![q.get().unwrap(), q.try_get().unwrap()];
    got.sort();
    assert_eq!(got, [1, 2]);
    assert_eq!(q.get(), Err(ShutDown(())));
    // Both items are unfinished until task_done.
    assert!(!q.join_timeout(Duration::from_millis(1)));
    q.task_done().unwrap();
    q.task_done().unwrap();
    assert!(q.join_timeout(Duration::ZERO));
}

/// `test_shutdown_immediate`: queued items are discarded and count as done.
fn shutdown_immediate<K: Kind<i64>>() {
    let q = K::make(QUEUE_SIZE);
    q.put(1).unwrap();
    q.put(2).unwrap();
    q.shutdown(true);
    assert_eq!(q.qsize(), 0);
    assert_eq!(q.get(), Err(ShutDown(())));
    assert!(q.join_timeout(Duration::ZERO));
    assert!(q.task_done().is_err());
}

/// `test_shutdown_allowed_transitions`.
fn shutdown_transitions<K: Kind<i64>>() {
    let q = K::make(0);
    assert!(!q.is_shutdown());
    q.shutdown(false);
    assert!(q.is_shutdown());
    q.shutdown(true);
    assert!(q.is_shutdown());
    q.shutdown(false);
    assert!(q.is_shutdown());
}

/// Blocked getters wake with `ShutDown` (both modes).
fn shutdown_wakes_blocked_getters<K: Kind<i64>>() {
    for immediate in [false, true] {
        let q = K::make(2);
        let getters: Vec<_> = (0..2)
            .map(|_| {
                let q = q.clone();
                thread::spawn(move || q.get())
            })
            .collect();
        thread::sleep(TRIGGER_DELAY);
        q.shutdown(immediate);
        within(LIMIT, "blocked getters woken by shutdown", move || {
            for g in getters {
                assert_eq!(g.join().unwrap(), Err(ShutDown(())));
            }
        });
    }
}

/// `_shutdown_get`: with two items queued and three getters, a normal shutdown lets
/// two succeed and one fail; an immediate one fails both getters.
fn shutdown_get_drains_then_fails<K: Kind<i64>>() {
    for immediate in [false, true] {
        let q = K::make(2);
        q.put(1).unwrap();
        q.put(2).unwrap();
        q.shutdown(immediate);
        let n = if immediate { 2 } else { 3 };
        let getters: Vec<_> = (0..n)
            .map(|_| {
                let q = q.clone();
                thread::spawn(move || q.get().is_ok())
            })
            .collect();
        let mut results = within(LIMIT, "getters after shutdown", move || {
            getters
                .into_iter()
                .map(|g| g.join().unwrap())
                .collect::<Vec<_>>()
        });
        results.sort();
        if immediate {
            assert_eq!(results, [false, false]);
        } else {
            assert_eq!(results, [false, true, true]);
        }
    }
}

/// `_shutdown_put`: putters blocked on a full queue wake with `ShutDown(item)`.
fn shutdown_wakes_blocked_putters<K: Kind<i64>>() {
    for immediate in [false, true] {
        let q = K::make(2);
        q.put(1).unwrap();
        q.put(2).unwrap();
        let putters: Vec<_> = (10..12)
            .map(|i| {
                let q = q.clone();
                thread::spawn(move || q.put(i))
            })
            .collect();
        thread::sleep(TRIGGER_DELAY);
        q.shutdown(immediate);
        let results = within(LIMIT, "blocked putters woken by shutdown", move || {
            putters
                .into_iter()
                .map(|p| p.join().unwrap())
                .collect::<Vec<_>>()
        });
        // A putter that was blocked gets its item back. One that had not yet found
        // the queue full when `shutdown` ran (possible under Miri's scheduler) may
        // land its put, which is then ordered before the shutdown: its item is still
        // queued after a normal shutdown, and discarded by an immediate one.
        let queued = q.drain_now();
        let mut seen = Vec::new();
        for (i, r) in (10..12).zip(results) {
            match r {
                Err(e) => seen.push(e.into_inner()),
                Ok(()) if !immediate => assert!(queued.contains(&i)),
                Ok(()) => seen.push(i),
            }
        }
        if !immediate {
            // The two items queued before the shutdown are still there too.
            assert_eq!(seen.len() + queued.len(), 4);
        } else {
            assert_eq!(seen, [10, 11]);
        }
        assert!(q.empty());
    }
}

/// `_shutdown_join(immediate=True)`: discarded items count as done, but an item
/// already taken still needs its `task_done` before `join` returns.
fn shutdown_immediate_join_waits_for_taken<K: Kind<i64>>() {
    let q = K::make(0);
    q.put(1).unwrap();
    q.put(2).unwrap();
    q.get().unwrap(); // taken, not done
    let joiner = {
        let q = q.clone();
        thread::spawn(move || q.join_timeout(LIMIT))
    };
    thread::sleep(TRIGGER_DELAY);
    q.shutdown(true);
    // The discarded item is done; the taken one is not.
    assert!(!q.join_timeout(TRIGGER_DELAY));
    assert!(!joiner.is_finished());
    q.task_done().unwrap();
    assert!(within(LIMIT, "join after last task_done", move || joiner
        .join()
        .unwrap()));
    assert!(q.task_done().is_err());
}

/// `_shutdown_join(immediate=False)`: `join` still waits for every `task_done`.
fn shutdown_join_waits_for_task_done<K: Kind<i64>>() {
    let q = K::make(0);
    q.put(1).unwrap();
    let joiner = {
        let q = q.clone();
        thread::spawn(move || q.join_timeout(LIMIT))
    };
    q.shutdown(false);
    assert!(!q.join_timeout(TRIGGER_DELAY));
    assert_eq!(q.get(), Ok(1));
    q.task_done().unwrap();
    assert!(within(LIMIT, "join after task_done", move || joiner
        .join()
        .unwrap()));
}

/// `for item in &q` ends at shutdown once the queue is drained.
fn iterator_ends_at_shutdown<K: Kind<i64>>() {
    let q = K::make(4);
    let consumer = {
        let q = q.clone();
        thread::spawn(move || q.drain_blocking())
    };
    let n = if cfg!(miri) { 20 } else { 200 };
    for i in 0..n {
        q.put(i).unwrap();
    }
    q.shutdown(false);
    let mut got = within(LIMIT, "iterator ends at shutdown", move || {
        consumer.join().unwrap()
    });
    got.sort();
    assert_eq!(got, (0..n).collect::<Vec<_>>());
    assert!(q.drain_now().is_empty());
}

/// Counts drops, and panics on a double drop.
struct Tracked {
    id: i64,
    dropped: Arc<Mutex<Vec<bool>>>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let mut d = self.dropped.lock().unwrap();
        assert!(!d[self.id as usize], "item {} dropped twice", self.id);
        d[self.id as usize] = true;
    }
}
impl PartialEq for Tracked {
    fn eq(&self, o: &Self) -> bool {
        self.id == o.id
    }
}
impl Eq for Tracked {}
impl PartialOrd for Tracked {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Tracked {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.id.cmp(&o.id)
    }
}

/// Every item is dropped exactly once: taken ones by their taker, discarded ones by an
/// immediate shutdown, the rest with the last handle; also across the ring's wrap.
fn drop_counts_in<K: Kind<Tracked>>(maxsize: usize) {
    let n = 40;
    let dropped = Arc::new(Mutex::new(vec![false; n]));
    let all = |d: &Arc<Mutex<Vec<bool>>>| d.lock().unwrap().iter().filter(|&&b| b).count();
    let item = |id: usize| Tracked {
        id: id as i64,
        dropped: dropped.clone(),
    };
    // Round 1: wrap the ring a few times, leave some queued, drop the queue.
    {
        let q = K::make(maxsize);
        let q2 = q.clone();
        for id in 0..10 {
            q.put(item(id)).unwrap();
            if id % 3 != 0 {
                drop(q.get().unwrap());
            }
        }
        // A refused put hands the item back; it is dropped by the caller, once.
        q.shutdown(false);
        let back = q.put(item(10)).unwrap_err().into_inner();
        assert_eq!(back.id, 10);
        drop(back);
        drop(q);
        assert_eq!(all(&dropped), 6 + 1);
        drop(q2);
        assert_eq!(all(&dropped), 11);
    }
    // Round 2: an immediate shutdown drops what is queued, at once.
    {
        let q = K::make(maxsize);
        for id in 11..15 {
            q.put(item(id)).unwrap();
        }
        let taken = q.get().unwrap();
        q.shutdown(true);
        assert_eq!(all(&dropped), 11 + 3);
        drop(taken);
        assert_eq!(all(&dropped), 15);
    }
    assert_eq!(all(&dropped), 15);
}

fn drop_counts<K: Kind<i64> + Retype>() {
    // The item type here is `Tracked`, not i64: pick the same kind for it.
    drop_counts_in::<<K as Retype>::Tracked>(4);
}

fn drop_counts_unbounded<K: Kind<i64> + Retype>() {
    drop_counts_in::<<K as Retype>::Tracked>(0);
}

/// Maps a kind over `i64` to the same kind over `Tracked`.
trait Retype {
    type Tracked: Kind<Tracked>;
}
impl Retype for Queue<i64> {
    type Tracked = Queue<Tracked>;
}
impl Retype for LifoQueue<i64> {
    type Tracked = LifoQueue<Tracked>;
}
impl Retype for PriorityQueue<i64> {
    type Tracked = PriorityQueue<Tracked>;
}

// ---- kind-specific behaviour -------------------------------------------------------

#[test]
fn priority_is_stable_for_equal_priorities() {
    let q = PriorityQueue::unbounded();
    for (p, tag) in [(2, 'a'), (1, 'b'), (2, 'c'), (1, 'd'), (0, 'e'), (2, 'f')] {
        q.put(Prio(p, tag)).unwrap();
    }
    let got: String = q.try_iter().map(|Prio(_, t)| t).collect();
    assert_eq!(got, "ebdacf");

    /// Ordered by priority only: the tag is payload.
    struct Prio(u8, char);
    impl PartialEq for Prio {
        fn eq(&self, o: &Self) -> bool {
            self.0 == o.0
        }
    }
    impl Eq for Prio {}
    impl PartialOrd for Prio {
        fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(o))
        }
    }
    impl Ord for Prio {
        fn cmp(&self, o: &Self) -> std::cmp::Ordering {
            self.0.cmp(&o.0)
        }
    }
}

#[test]
fn fifo_bounded_ring_wraps_in_order() {
    // Capacities that are and are not powers of two, through many laps.
    for cap in [1, 2, 3, 5, 8] {
        let q = Queue::bounded(cap);
        let mut next = 0;
        for i in 0..100 {
            if q.try_put(i).is_err() {
                assert_eq!(q.qsize(), cap);
                for _ in 0..cap {
                    assert_eq!(q.get(), Ok(next));
                    next += 1;
                }
                q.try_put(i).unwrap();
            }
        }
        while let Ok(v) = q.try_get() {
            assert_eq!(v, next);
            next += 1;
        }
        assert_eq!(next, 100);
        for _ in 0..100 {
            q.task_done().unwrap();
        }
        assert!(q.task_done().is_err());
        assert!(q.join_timeout(Duration::ZERO));
    }
}

#[test]
fn fifo_unbounded_spans_blocks_and_drops_leftovers() {
    // The unbounded flavor stores items in blocks of 31: cross several boundaries,
    // free consumed blocks, and drop what is left with the queue.
    let n = 200;
    let dropped = Arc::new(Mutex::new(vec![false; n]));
    let q = Queue::unbounded();
    for id in 0..n {
        q.put(Tracked {
            id: id as i64,
            dropped: dropped.clone(),
        })
        .unwrap();
    }
    assert_eq!(q.qsize(), n);
    for id in 0..70 {
        assert_eq!(q.get().unwrap().id, id);
    }
    assert_eq!(q.qsize(), n - 70);
    for _ in 0..70 {
        q.task_done().unwrap();
    }
    assert!(!q.join_timeout(Duration::ZERO));
    drop(q);
    assert!(dropped.lock().unwrap().iter().all(|&b| b));
}

#[test]
fn constructors_and_maxsize() {
    assert_eq!(Queue::<u8>::new(0).maxsize(), 0);
    assert_eq!(Queue::<u8>::unbounded().maxsize(), 0);
    assert_eq!(Queue::<u8>::bounded(7).maxsize(), 7);
    assert_eq!(LifoQueue::<u8>::new(3).maxsize(), 3);
    assert_eq!(PriorityQueue::<u8>::new(0).maxsize(), 0);
    let r = std::panic::catch_unwind(|| Queue::<u8>::bounded(0));
    assert!(r.is_err());
    let q = Queue::<u8>::unbounded();
    assert!(!q.full());
    assert!(format!("{q:?}").contains("maxsize: 0"));
}

#[test]
fn errors_display_debug_and_into_inner() {
    struct NoDebug;
    let e: TryPutError<NoDebug> = TryPutError::Full(NoDebug);
    assert_eq!(format!("{e:?}"), "Full(..)");
    assert_eq!(e.to_string(), "the queue is full");
    let e: PutTimeoutError<NoDebug> = PutTimeoutError::ShutDown(NoDebug);
    assert!(e.is_shutdown());
    assert_eq!(e.to_string(), "the queue is shut down");
    let e: ShutDown<NoDebug> = ShutDown(NoDebug);
    assert_eq!(format!("{e:?}"), "ShutDown(..)");
    let _: NoDebug = e.into_inner();
    let empty: TryGetError = TryGetError::Empty;
    let boxed: Box<dyn std::error::Error> = Box::new(empty);
    assert_eq!(boxed.to_string(), "the queue is empty");
    let empty: GetTimeoutError = GetTimeoutError::Empty;
    assert!(empty.to_string().contains("timeout"));
    let e: TryPutError<u8> = ShutDown(3).into();
    assert_eq!(e, TryPutError::ShutDown(3));
}

// ---- SimpleQueue ---------------------------------------------------------------------

#[test]
fn simple_queue_order_and_nowait() {
    let q = SimpleQueue::new();
    assert!(q.empty());
    for x in [111, 333, 222] {
        q.put(x);
    }
    assert_eq!(q.qsize(), 3);
    assert_eq!([q.get(), q.get(), q.get()], [111, 333, 222]);
    assert_eq!(q.try_get(), None);
    let t = Duration::from_millis(20);
    let start = Instant::now();
    assert_eq!(q.get_timeout(t), None);
    assert!(start.elapsed() >= t);
    assert_eq!(q.get_deadline(Instant::now()), None);
}

#[test]
fn simple_queue_blocking_get_wakes() {
    let q = SimpleQueue::new();
    let (q1, q2) = (q.clone(), q.clone());
    assert_eq!(do_blocking_test(move || q1.get(), move || q2.put(5)), 5);
    let (q1, q2) = (q.clone(), q.clone());
    assert_eq!(
        do_blocking_test(
            move || q1.get_timeout(Duration::from_secs(10)),
            move || q2.put(6)
        ),
        Some(6)
    );
}

#[test]
fn simple_queue_drops_leftovers() {
    let dropped = Arc::new(Mutex::new(vec![false; 3]));
    let q = SimpleQueue::new();
    for id in 0..3 {
        q.put(Tracked {
            id,
            dropped: dropped.clone(),
        });
    }
    drop(q.get());
    drop(q);
    assert!(dropped.lock().unwrap().iter().all(|&b| b));
}
