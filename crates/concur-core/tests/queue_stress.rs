//! Many producers and many consumers through one queue: 4 producers × 4 consumers pass
//! 40,000 distinct items through `Queue::bounded(16)` and `Queue::unbounded()` (and
//! the lock-based kinds); every item arrives exactly once (none lost, none duplicated)
//! and `join` returns. Repeated so that a rare race shows; scaled down under Miri.

mod common;

use common::within;
use concur_core::queue::{LifoQueue, PriorityQueue, Queue};
use std::thread;
use std::time::Duration;

const PRODUCERS: usize = 4;
const CONSUMERS: usize = 4;
const ITEMS: usize = if cfg!(miri) { 200 } else { 40_000 };
const ROUNDS: usize = if cfg!(miri) { 1 } else { 20 };
const LIMIT: Duration = Duration::from_secs(60);

/// The handful of calls a stress round needs, over each kind.
trait Mpmc: Clone + Send + 'static {
    fn put(&self, x: usize);
    fn get(&self) -> Option<usize>;
    fn task_done(&self);
    fn join(&self);
    fn shutdown(&self);
}

macro_rules! mpmc {
    ($ty:ident) => {
        impl Mpmc for $ty<usize> {
            fn put(&self, x: usize) {
                $ty::put(self, x).unwrap();
            }
            fn get(&self) -> Option<usize> {
                $ty::get(self).ok()
            }
            fn task_done(&self) {
                $ty::task_done(self).unwrap();
            }
            fn join(&self) {
                $ty::join(self);
            }
            fn shutdown(&self) {
                $ty::shutdown(self, false);
            }
        }
    };
}
mpmc!(Queue);
mpmc!(LifoQueue);
mpmc!(PriorityQueue);

fn round<Q: Mpmc>(q: Q, what: &'static str) {
    within(LIMIT, what, move || {
        let per = ITEMS / PRODUCERS;
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let q = q.clone();
                thread::spawn(move || {
                    for i in 0..per {
                        q.put(p * per + i);
                    }
                })
            })
            .collect();
        let consumers: Vec<_> = (0..CONSUMERS)
            .map(|_| {
                let q = q.clone();
                thread::spawn(move || {
                    let mut got = Vec::new();
                    while let Some(x) = q.get() {
                        got.push(x);
                        q.task_done();
                    }
                    got
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        q.join();
        q.shutdown();
        let mut seen = vec![false; ITEMS];
        for c in consumers {
            for x in c.join().unwrap() {
                assert!(!seen[x], "item {x} delivered twice");
                seen[x] = true;
            }
        }
        assert!(seen.iter().all(|&b| b), "an item was lost");
    });
}

#[test]
fn fifo_bounded_16() {
    for _ in 0..ROUNDS {
        round(Queue::bounded(16), "4x4 through Queue::bounded(16)");
    }
}

#[test]
fn fifo_bounded_1() {
    for _ in 0..ROUNDS.div_ceil(4) {
        round(Queue::bounded(1), "4x4 through Queue::bounded(1)");
    }
}

#[test]
fn fifo_unbounded() {
    for _ in 0..ROUNDS {
        round(Queue::unbounded(), "4x4 through Queue::unbounded()");
    }
}

#[test]
fn lifo_bounded_16() {
    for _ in 0..ROUNDS.div_ceil(4) {
        round(LifoQueue::bounded(16), "4x4 through LifoQueue::bounded(16)");
    }
}

#[test]
fn priority_unbounded() {
    for _ in 0..ROUNDS.div_ceil(4) {
        round(
            PriorityQueue::unbounded(),
            "4x4 through PriorityQueue::unbounded()",
        );
    }
}

/// Producers racing a shutdown: every item is either delivered once, or handed back to
/// its producer; never both, never neither.
#[test]
fn shutdown_races_producers() {
    for _ in 0..ROUNDS {
        within(LIMIT, "producers racing shutdown", || {
            let q = Queue::bounded(8);
            let per = ITEMS / PRODUCERS / 4;
            let producers: Vec<_> = (0..PRODUCERS)
                .map(|p| {
                    let q = q.clone();
                    thread::spawn(move || {
                        let mut back = Vec::new();
                        for i in 0..per {
                            if let Err(e) = q.put(p * per + i) {
                                back.push(e.into_inner());
                            }
                        }
                        back
                    })
                })
                .collect();
            let consumers: Vec<_> = (0..CONSUMERS)
                .map(|_| {
                    let q = q.clone();
                    thread::spawn(move || q.iter().collect::<Vec<_>>())
                })
                .collect();
            thread::sleep(Duration::from_millis(1));
            q.shutdown(false);
            let mut seen = vec![0u8; per * PRODUCERS];
            for h in producers.into_iter().chain(consumers) {
                for x in h.join().unwrap() {
                    seen[x] += 1;
                }
            }
            // Items put in the window between a consumer's last get and its exit are
            // still queued; take them now.
            for x in q.try_iter() {
                seen[x] += 1;
            }
            assert!(seen.iter().all(|&n| n == 1), "item lost or duplicated");
        });
    }
}
