//! Loom model of `Lock`'s wait/wake protocol (sync/raw.rs): mutual exclusion, no lost
//! wake-up when a holder releases while others park, and the timeout path that clears
//! the parked bit. Run with:
//! `RUSTFLAGS="--cfg concur_loom" cargo test -p concur-core --test loom_lock --release`
#![cfg(concur_loom)]

use concur_core::sync::Lock;
use loom::thread;
use std::time::Duration;

#[test]
fn lock_excludes_and_wakes() {
    // Three threads explode the state space; a preemption bound of 2 keeps the model
    // exhaustive for every schedule with at most two forced switches (loom's advice).
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(2);
    b.check(|| {
        let lock = Lock::with_value(0usize);
        let ths: Vec<_> = (0..2)
            .map(|_| {
                let lock = lock.clone();
                thread::spawn(move || {
                    let mut g = lock.acquire();
                    *g += 1;
                })
            })
            .collect();
        {
            let mut g = lock.acquire();
            *g += 1;
        }
        for t in ths {
            t.join().unwrap();
        }
        assert_eq!(*lock.acquire(), 3);
    });
}

#[test]
fn timed_acquire_gives_up_cleanly() {
    loom::model(|| {
        let lock = Lock::new();
        let l2 = lock.clone();
        let g = lock.acquire();
        let t = thread::spawn(move || {
            // Under loom a timed park may time out at once: both outcomes are explored.
            l2.acquire_timeout(Duration::from_millis(1)).is_some()
        });
        drop(g);
        let _ = t.join().unwrap();
        // Whatever happened, the lock ends free and usable.
        assert!(!lock.locked());
        assert!(lock.try_acquire().is_some());
    });
}

#[test]
fn release_from_another_thread() {
    loom::model(|| {
        let lock = Lock::new();
        lock.acquire().leak();
        let l2 = lock.clone();
        let waiter = thread::spawn(move || {
            let _g = l2.acquire();
        });
        let l3 = lock.clone();
        let releaser = thread::spawn(move || l3.release().unwrap());
        releaser.join().unwrap();
        waiter.join().unwrap();
        assert!(!lock.locked());
    });
}
