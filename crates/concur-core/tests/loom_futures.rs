//! Loom models of the future's wait/wake protocol (futures/future.rs, wait.rs):
//! completion racing a blocked waiter, cancel racing the start of the work, callbacks
//! running exactly once whoever completes, and `as_completed` hearing a completion that
//! races its registration. Run with:
//! `RUSTFLAGS="--cfg concur_loom" CARGO_TARGET_DIR=target/loom cargo test -p concur-core --test loom_futures --release`
#![cfg(concur_loom)]

use concur_core::futures::{Promise, ReturnWhen, as_completed, wait};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(2);
    b.check(f);
}

#[test]
fn complete_vs_wait() {
    model(|| {
        let p = Promise::new();
        let f = p.future();
        let t = thread::spawn(move || {
            assert!(p.set_result(7));
        });
        assert_eq!(f.result().unwrap(), 7);
        t.join().unwrap();
    });
}

#[test]
fn cancel_vs_start() {
    model(|| {
        let p = Promise::<u8>::new();
        let f = p.future();
        let g = f.clone();
        let t = thread::spawn(move || g.cancel());
        let started = p.set_running();
        if started {
            assert!(p.set_result(1));
        }
        let cancelled = t.join().unwrap();
        // Exactly one of the two wins.
        assert_ne!(started, cancelled);
        assert_eq!(f.cancelled(), cancelled);
        assert!(f.done());
    });
}

#[test]
fn callback_runs_once() {
    model(|| {
        let p = Promise::<u8>::new();
        let f = p.future();
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let g = f.clone();
        let t = thread::spawn(move || {
            g.add_done_callback(move |_| {
                h.fetch_add(1, Ordering::SeqCst);
            });
        });
        let g2 = f.clone();
        let c = thread::spawn(move || g2.cancel());
        // Races with the cancel: whichever comes first is the outcome.
        let _first = p.set_result(3);
        t.join().unwrap();
        c.join().unwrap();
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn as_completed_hears_a_racing_completion() {
    model(|| {
        let p = Promise::<u8>::new();
        let fs = vec![p.future()];
        let t = thread::spawn(move || {
            assert!(p.set_result(1));
        });
        let n = as_completed(&fs, None)
            .map(|r| r.unwrap().done())
            .filter(|d| *d)
            .count();
        assert_eq!(n, 1);
        t.join().unwrap();
    });
}

#[test]
fn wait_first_completed_hears_a_racing_completion() {
    model(|| {
        let p = Promise::<u8>::new();
        let fs = vec![p.future()];
        let t = thread::spawn(move || {
            assert!(p.set_result(1));
        });
        let r = wait(&fs, None, ReturnWhen::FirstCompleted);
        assert_eq!(r.done.len(), 1);
        t.join().unwrap();
    });
}

#[test]
fn wait_hears_a_racing_acknowledgement_of_a_cancel() {
    // A future its user cancelled counts as done for `wait` once the completing side
    // acknowledges it (`set_running`, Python's `set_running_or_notify_cancel`): an
    // acknowledgement racing the waiter's registration is never lost.
    model(|| {
        let p = Promise::<u8>::new();
        assert!(p.future().cancel());
        let fs = vec![p.future()];
        let t = thread::spawn(move || {
            assert!(!p.set_running());
        });
        let r = wait(&fs, None, ReturnWhen::AllCompleted);
        assert_eq!(r.done.len(), 1);
        t.join().unwrap();
    });
}
