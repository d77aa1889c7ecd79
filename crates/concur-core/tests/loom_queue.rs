//! Loom models of the queue's blocking/wake protocol (queue/chan.rs over the lock-free
//! ring in queue/flavors/array.rs and the locked flavor): no lost wake-up when both
//! sides block on a `bounded(1)` queue, shutdown waking a blocked getter, and
//! `task_done` waking `join`. Run with:
//! `RUSTFLAGS="--cfg concur_loom" CARGO_TARGET_DIR=target/loom cargo test -p concur-core --test loom_queue --release`
#![cfg(concur_loom)]

use concur_core::queue::{Queue, ShutDown};
use loom::thread;

fn builder(bound: usize) -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(bound);
    b
}

/// SPSC through `bounded(1)`: the producer blocks on full, the consumer on empty; each
/// must be woken by the other (a lost wake-up shows as a loom deadlock).
#[test]
fn spsc_bounded_1_blocks_and_wakes() {
    builder(3).check(|| {
        let q = Queue::bounded(1);
        let p = {
            let q = q.clone();
            thread::spawn(move || {
                q.put(1).unwrap();
                q.put(2).unwrap();
            })
        };
        assert_eq!(q.get(), Ok(1));
        assert_eq!(q.get(), Ok(2));
        p.join().unwrap();
        assert!(q.empty());
    });
}

/// The unbounded (locked) flavor: a getter blocked on empty is woken by a put.
#[test]
fn unbounded_get_woken_by_put() {
    builder(3).check(|| {
        let q = Queue::unbounded();
        let p = {
            let q = q.clone();
            thread::spawn(move || q.put(7).unwrap())
        };
        assert_eq!(q.get(), Ok(7));
        p.join().unwrap();
    });
}

/// The unbounded list across a block boundary (3 slots a block under loom): a putter
/// installs the next block while a getter drains up to and past it, freeing the first.
#[test]
fn unbounded_across_block_boundary() {
    builder(2).check(|| {
        let q = Queue::unbounded();
        q.put(0).unwrap();
        let p = {
            let q = q.clone();
            thread::spawn(move || {
                for i in 1..4 {
                    q.put(i).unwrap();
                }
            })
        };
        for i in 0..4 {
            assert_eq!(q.get(), Ok(i));
        }
        p.join().unwrap();
        assert!(q.empty());
    });
}

/// A getter blocked on an empty queue wakes with `ShutDown` when it is shut down.
#[test]
fn shutdown_wakes_blocked_getter() {
    builder(3).check(|| {
        let q = Queue::<u8>::bounded(1);
        let g = {
            let q = q.clone();
            thread::spawn(move || q.get())
        };
        q.shutdown(false);
        assert_eq!(g.join().unwrap(), Err(ShutDown(())));
    });
}

/// A putter blocked on a full queue wakes with its item when it is shut down; if
/// its put races the immediate shutdown and lands, the item is still discarded.
#[test]
fn shutdown_wakes_blocked_putter() {
    builder(2).check(|| {
        let q = Queue::bounded(1);
        q.put(1u8).unwrap();
        let p = {
            let q = q.clone();
            thread::spawn(move || q.put(2))
        };
        q.shutdown(true);
        let r = p.join().unwrap();
        assert!(r == Ok(()) || r == Err(ShutDown(2)));
        assert!(q.empty());
        assert!(q.join_timeout(std::time::Duration::ZERO));
    });
}

/// `join` returns once the consumer's `task_done` matches the put.
#[test]
fn task_done_wakes_join() {
    builder(2).check(|| {
        let q = Queue::bounded(1);
        q.put(1u8).unwrap();
        let c = {
            let q = q.clone();
            thread::spawn(move || {
                assert_eq!(q.get(), Ok(1));
                q.task_done().unwrap();
            })
        };
        q.join();
        assert!(q.task_done().is_err());
        c.join().unwrap();
    });
}
