//! The executor contract's body, shared by every executor that implements `Executor`:
//! included by `concur-process/tests/executor_contract.rs` (threads and processes) and
//! by `concur-cluster/tests/executor_contract.rs` (the Redis cluster). See the former
//! for the CPython tests it ports. An including file brings everything here into its
//! root scope (`use contract::*;`) and instantiates `executor_contract!` once per
//! executor.
#![allow(dead_code)] // each including binary uses its own part

use std::cell::Cell;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Runs `f` on a thread and fails the test if it takes longer than `limit`.
pub(crate) fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let h = std::thread::Builder::new()
        .name(format!("within: {what}"))
        .spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.send(r);
        })
        .expect("spawn test thread");
    match rx.recv_timeout(limit) {
        Ok(Ok(v)) => {
            let _ = h.join();
            v
        }
        Ok(Err(p)) => std::panic::resume_unwind(p),
        Err(_) => panic!("probable deadlock: `{what}` did not finish within {limit:?}"),
    }
}

/// Polls `cond` until it holds (true) or `limit` passes (false).
pub(crate) fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The contract's bound on any single test body.
pub(crate) const BOUND: Duration = Duration::from_secs(120);

pub(crate) fn square(x: u64) -> u64 {
    x * x
}

pub(crate) fn add((a, b): (u64, u64)) -> u64 {
    a + b
}

pub(crate) fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// `x` after sleeping `ms`: later items finish first when earlier ones sleep longer.
pub(crate) fn delayed_identity((x, ms): (u64, u64)) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    x
}

pub(crate) fn boom(what: String) -> u64 {
    panic!("boom: {what}")
}

/// Panics on items `≡ 1 (mod 3)`, else `10 x`.
pub(crate) fn tenfold_or_panic(x: u64) -> u64 {
    if x % 3 == 1 {
        panic!("item {x} refused");
    }
    x * 10
}

thread_local! {
    /// Set by the initializer on the thread (of the worker) that then runs the tasks.
    static MARK: Cell<u32> = const { Cell::new(0) };
}

pub(crate) fn set_mark(v: u32) {
    MARK.with(|m| m.set(v));
}

pub(crate) fn read_mark(_: ()) -> u32 {
    MARK.with(|m| m.get())
}

pub(crate) fn refuse_init(_: ()) {
    panic!("the initializer refuses")
}

/// The contract. `$new`, `$with_init` and `$failing_init` are closures
/// `|workers: usize| -> executor`: a plain one, one whose initializer calls
/// `set_mark(7)`, and one whose initializer panics.
#[macro_export]
macro_rules! executor_contract {
    ($name:ident, new: $new:expr, with_init: $with_init:expr, failing_init: $failing_init:expr $(,)?) => {
        mod $name {
            use super::*;
            use super::{eventually, within};
            use std::time::Duration;
            use concur_core::futures::{
                as_completed, wait, Executor, MapOptions, ReturnWhen, TaskError,
            };
            use std::sync::Arc;
            use std::sync::atomic::{AtomicUsize, Ordering};

            #[test]
            fn submit_and_call_give_values() {
                within(BOUND, "submit and call", || {
                    let pool = ($new)(2);
                    assert_eq!(pool.submit(|| 6 * 7u64).unwrap().result().unwrap(), 42);
                    assert_eq!(pool.call(square, 9).unwrap().result().unwrap(), 81);
                    assert_eq!(pool.call(add, (40, 2)).unwrap().result().unwrap(), 42);
                    // A `Result` returned by the task is a value, not a failure.
                    let r: Result<u8, String> =
                        pool.submit(|| Err::<u8, String>("no".into())).unwrap().result().unwrap();
                    assert_eq!(r, Err("no".to_owned()));
                    let fs: Vec<_> = (0..50).map(|i| pool.call(square, i).unwrap()).collect();
                    for (i, f) in (0..50u64).zip(&fs) {
                        assert_eq!(f.result().unwrap(), i * i);
                    }
                });
            }

            #[test]
            fn zero_workers_means_one() {
                within(BOUND, "zero workers", || {
                    let pool = ($new)(0);
                    assert_eq!(pool.max_workers(), 1);
                    assert_eq!(pool.call(square, 3).unwrap().result().unwrap(), 9);
                });
            }

            #[test]
            fn a_panic_is_an_is_panic_error_with_its_message() {
                within(BOUND, "panic", || {
                    let pool = ($new)(1);
                    let e = pool.call(boom, "kaput".to_owned()).unwrap().result().unwrap_err();
                    assert!(e.is_panic(), "{e}");
                    assert_eq!(e.panic_message(), Some("boom: kaput"), "{e}");
                    // The executor goes on.
                    assert_eq!(pool.call(square, 4).unwrap().result().unwrap(), 16);
                });
            }

            #[test]
            fn map_yields_in_input_order() {
                within(BOUND, "map order", || {
                    let pool = ($new)(2);
                    let out: Vec<u64> = pool
                        .map(square, 0..100, MapOptions::new())
                        .unwrap()
                        .collect::<Result<_, _>>()
                        .unwrap();
                    assert_eq!(out, (0..100).map(|x| x * x).collect::<Vec<_>>());
                    // Earlier items sleep longer, so they finish last: order still holds.
                    let items: Vec<(u64, u64)> = (0..6).map(|i| (i, 60 - 10 * i)).collect();
                    let out: Vec<u64> = pool
                        .map(delayed_identity, items, MapOptions::new())
                        .unwrap()
                        .collect::<Result<_, _>>()
                        .unwrap();
                    assert_eq!(out, vec![0, 1, 2, 3, 4, 5]);
                });
            }

            #[test]
            fn map_errors_stay_at_their_position() {
                within(BOUND, "map errors", || {
                    let pool = ($new)(2);
                    for chunksize in [1, 2, 4, 50] {
                        let out: Vec<_> = pool
                            .map(tenfold_or_panic, 0..20, MapOptions::new().chunksize(chunksize))
                            .unwrap()
                            .collect();
                        assert_eq!(out.len(), 20, "chunksize {chunksize}: iteration stopped");
                        for (x, r) in (0..20u64).zip(&out) {
                            if x % 3 == 1 {
                                let e = r.as_ref().unwrap_err();
                                assert!(e.is_panic(), "item {x}: {e}");
                                let want = format!("item {x} refused");
                                assert_eq!(e.panic_message(), Some(want.as_str()));
                            } else {
                                assert_eq!(r.as_ref().unwrap(), &(x * 10), "item {x}");
                            }
                        }
                    }
                });
            }

            #[test]
            fn map_with_chunksize() {
                within(BOUND, "map chunksize", || {
                    let pool = ($new)(2);
                    let want: Vec<u64> = (0..337).map(|x| x * x).collect();
                    for chunksize in [1, 2, 3, 5, 16, 336, 337, 1000] {
                        let out: Vec<u64> = pool
                            .map(square, 0..337, MapOptions::new().chunksize(chunksize))
                            .unwrap()
                            .collect::<Result<_, _>>()
                            .unwrap();
                        assert_eq!(out, want, "chunksize {chunksize}");
                    }
                    // A small read-ahead bound gives the same results.
                    let out: Vec<u64> = pool
                        .map(square, 0..337, MapOptions::new().chunksize(7).buffersize(2))
                        .unwrap()
                        .collect::<Result<_, _>>()
                        .unwrap();
                    assert_eq!(out, want);
                });
            }

            #[test]
            fn map_timeout_then_the_rest_is_cancelled() {
                within(BOUND, "map timeout", || {
                    let pool = ($new)(2);
                    let ran = Arc::new(AtomicUsize::new(0));
                    let r = ran.clone();
                    // Two quick items, then many long ones: the timeout falls on the
                    // third.
                    let mut items = vec![0, 0];
                    items.extend([1500; 20]);
                    let opts = MapOptions::new()
                        .timeout(Duration::from_millis(400))
                        .progress(move |_| {
                            r.fetch_add(1, Ordering::SeqCst);
                        });
                    let mut m = pool.map(sleep_ms, items, opts).unwrap();
                    assert_eq!(m.next().unwrap().unwrap(), 0);
                    assert_eq!(m.next().unwrap().unwrap(), 0);
                    let e = m.next().unwrap().unwrap_err();
                    assert!(e.is_timeout(), "{e}");
                    assert!(m.next().is_none(), "the map goes on after its timeout");
                    drop(m);
                    // The long items not started were cancelled: waiting for the pool
                    // runs at most those that had started (one per worker, and on a
                    // process pool those already handed to a worker).
                    pool.shutdown(true, false).unwrap();
                    let n = ran.load(Ordering::SeqCst);
                    assert!(n < 22, "all {n} items ran: the rest was not cancelled");
                });
            }

            #[test]
            fn map_over_nothing() {
                within(BOUND, "map empty", || {
                    let pool = ($new)(2);
                    let mut m = pool.map(square, Vec::<u64>::new(), MapOptions::new()).unwrap();
                    assert!(m.next().is_none());
                    assert!(m.next().is_none());
                });
            }

            #[test]
            fn map_progress_reaches_total() {
                within(BOUND, "map progress", || {
                    let pool = ($new)(2);
                    for chunksize in [1, 7] {
                        let most = Arc::new(AtomicUsize::new(0));
                        let calls = Arc::new(AtomicUsize::new(0));
                        let (m2, c2) = (most.clone(), calls.clone());
                        let opts = MapOptions::new().chunksize(chunksize).progress(move |p| {
                            assert_eq!(p.total, Some(50));
                            m2.fetch_max(p.done, Ordering::SeqCst);
                            c2.fetch_add(1, Ordering::SeqCst);
                        });
                        let n = pool.map(square, 0..50, opts).unwrap().count();
                        assert_eq!(n, 50);
                        assert_eq!(most.load(Ordering::SeqCst), 50, "chunksize {chunksize}");
                        assert_eq!(calls.load(Ordering::SeqCst), 50, "chunksize {chunksize}");
                    }
                });
            }

            #[test]
            fn shutdown_wait_completes_queued_work() {
                within(BOUND, "shutdown wait", || {
                    let pool = ($new)(2);
                    let fs: Vec<_> = (0..30).map(|_| pool.call(sleep_ms, 10).unwrap()).collect();
                    pool.shutdown(true, false).unwrap();
                    for f in &fs {
                        assert!(f.done(), "shutdown(wait) returned before a queued task ran");
                        assert_eq!(f.result().unwrap(), 10);
                    }
                    // Calling it again is harmless.
                    pool.shutdown(true, false).unwrap();
                    pool.shutdown(false, true).unwrap();
                });
            }

            #[test]
            fn shutdown_without_wait_still_finishes_the_work() {
                within(BOUND, "shutdown no wait", || {
                    let pool = ($new)(2);
                    let fs: Vec<_> = (0..6).map(|_| pool.call(sleep_ms, 50).unwrap()).collect();
                    pool.shutdown(false, false).unwrap();
                    for f in &fs {
                        assert_eq!(f.result().unwrap(), 50);
                    }
                });
            }

            #[test]
            fn shutdown_cancel_futures_cancels_the_queued_ones() {
                within(BOUND, "shutdown cancel", || {
                    let pool = ($new)(2);
                    let fs: Vec<_> = (0..50).map(|_| pool.call(sleep_ms, 100).unwrap()).collect();
                    // Once work has started (else all 50 may rightly be cancelled).
                    assert!(eventually(Duration::from_secs(60), || fs[0].running()
                        || fs[0].done()));
                    pool.shutdown(true, true).unwrap();
                    let cancelled = fs.iter().filter(|f| f.cancelled()).count();
                    let others: Vec<_> = fs.iter().filter(|f| !f.cancelled()).collect();
                    for f in &fs {
                        assert!(f.done(), "a future left pending by shutdown(cancel)");
                    }
                    for f in &fs {
                        if f.cancelled() {
                            assert!(f.result().unwrap_err().is_cancelled());
                        }
                    }
                    for f in &others {
                        assert_eq!(f.result().unwrap(), 100, "a started task did not finish");
                    }
                    // As CPython: with 2 workers most of 50 queued tasks are cancelled,
                    // and the running ones finished.
                    assert!(
                        cancelled > 20,
                        "only {cancelled} of 50 queued futures were cancelled by shutdown(cancel_futures)"
                    );
                    assert!(!others.is_empty());
                });
            }

            #[test]
            fn submit_after_shutdown_is_refused() {
                within(BOUND, "run after shutdown", || {
                    let pool = ($new)(2);
                    assert_eq!(pool.call(square, 2).unwrap().result().unwrap(), 4);
                    pool.shutdown(true, false).unwrap();
                    assert!(pool.submit(|| 1u8).unwrap_err().is_shutdown());
                    assert!(pool.call(square, 2).unwrap_err().is_shutdown());
                    let e = pool.map(square, 0..3, MapOptions::new()).err().unwrap();
                    assert!(e.is_shutdown(), "{e}");
                    // Never started at all: same.
                    let fresh = ($new)(1);
                    fresh.shutdown(false, false).unwrap();
                    assert!(fresh.call(square, 2).unwrap_err().is_shutdown());
                });
            }

            #[test]
            fn a_future_not_started_can_be_cancelled() {
                within(BOUND, "cancel pending", || {
                    let pool = ($new)(2);
                    let blockers: Vec<_> =
                        (0..2).map(|_| pool.call(sleep_ms, 500).unwrap()).collect();
                    // Enough behind the blockers that the last ones are still queued
                    // (a process pool hands a worker a share of the queue ahead).
                    let fs: Vec<_> = (0..300).map(|i| pool.call(square, i).unwrap()).collect();
                    let last = &fs[299];
                    assert!(last.cancel(), "a queued future could not be cancelled");
                    assert!(last.cancelled() && last.done());
                    assert!(last.cancel(), "cancel is idempotent");
                    assert!(last.result().unwrap_err().is_cancelled());
                    for b in &blockers {
                        assert_eq!(b.result().unwrap(), 500);
                        assert!(!b.cancel(), "a finished future cannot be cancelled");
                    }
                    for (i, f) in (0..299u64).zip(&fs) {
                        assert_eq!(f.result().unwrap(), i * i);
                    }
                });
            }

            #[test]
            fn as_completed_yields_each_once() {
                within(BOUND, "as_completed", || {
                    let pool = ($new)(2);
                    let fs: Vec<_> =
                        [30, 0, 10, 0].iter().map(|&ms| pool.call(sleep_ms, ms).unwrap()).collect();
                    // Duplicates are yielded once.
                    let mut dup = fs.clone();
                    dup.push(fs[0].clone());
                    let mut seen: Vec<u64> = as_completed(&dup, None)
                        .map(|f| f.unwrap().result().unwrap())
                        .collect();
                    seen.sort_unstable();
                    assert_eq!(seen, vec![0, 0, 10, 30]);
                });
            }

            #[test]
            fn as_completed_times_out_with_a_count() {
                within(BOUND, "as_completed timeout", || {
                    let pool = ($new)(2);
                    let fs = vec![pool.call(sleep_ms, 0).unwrap(), pool.call(sleep_ms, 3000).unwrap()];
                    fs[0].result().unwrap();
                    let mut it = as_completed(&fs, Some(Duration::from_millis(200)));
                    assert_eq!(it.next().unwrap().unwrap().result().unwrap(), 0);
                    let e = it.next().unwrap().unwrap_err();
                    assert!(e.is_timeout(), "{e}");
                    assert!(e.to_string().contains("1 (of 2) futures unfinished"), "{e}");
                    assert!(it.next().is_none());
                });
            }

            #[test]
            fn wait_return_when() {
                within(BOUND, "wait", || {
                    let pool = ($new)(2);
                    let long = pool.call(sleep_ms, 3000).unwrap();
                    let quick = pool.call(sleep_ms, 0).unwrap();
                    quick.result().unwrap();
                    let fs = [long.clone(), quick.clone()];
                    let r = wait(&fs, None, ReturnWhen::FirstCompleted);
                    assert_eq!(
                        (r.done, r.not_done),
                        (vec![&fs[1]], vec![&fs[0]]),
                        "FirstCompleted: the 3 s task should still run once the quick one is \
                         done (if both are done, the quick task waited behind the long one: \
                         a 2-worker executor ran them one after the other)"
                    );
                    // A timeout is not an error: the sets say what finished.
                    let r = wait(&fs, Some(Duration::from_millis(100)), ReturnWhen::AllCompleted);
                    assert_eq!((r.done.len(), r.not_done.len()), (1, 1));

                    let pool2 = ($new)(2);
                    let slow = pool2.call(sleep_ms, 3000).unwrap();
                    let bad = pool2.call(boom, "first exception".to_owned()).unwrap();
                    let fs2 = [slow, bad];
                    let r = wait(&fs2, None, ReturnWhen::FirstException);
                    assert_eq!(
                        (r.done, r.not_done),
                        (vec![&fs2[1]], vec![&fs2[0]]),
                        "FirstException: the failing task should end while the 3 s one runs"
                    );
                    assert!(fs2[1].exception(None).unwrap().unwrap().is_panic());

                    let all: Vec<_> = (0..5).map(|i| pool.call(square, i).unwrap()).collect();
                    let r = wait(&all, None, ReturnWhen::AllCompleted);
                    assert_eq!((r.done.len(), r.not_done.len()), (5, 0));
                    assert_eq!(long.result().unwrap(), 3000);
                    assert_eq!(fs2[0].result().unwrap(), 3000);
                });
            }

            #[test]
            fn the_initializer_runs_before_tasks() {
                within(BOUND, "initializer", || {
                    let pool = ($with_init)(2);
                    let fs: Vec<_> = (0..20).map(|_| pool.call(read_mark, ()).unwrap()).collect();
                    for f in &fs {
                        assert_eq!(f.result().unwrap(), 7, "a task ran before the initializer");
                    }
                });
            }

            #[test]
            fn a_failing_initializer_breaks_the_executor() {
                within(BOUND, "failing initializer", || {
                    let pool = ($failing_init)(2);
                    let e = match pool.call(square, 1) {
                        Ok(f) => f.result().unwrap_err(),
                        Err(e) => e,
                    };
                    assert!(
                        e.is_broken_executor(),
                        "the first task of an executor whose initializer panicked: {e:?}"
                    );
                    // Later submits fail the same way, now or through their future.
                    let e: TaskError = match pool.call(square, 2) {
                        Ok(f) => f.result().unwrap_err(),
                        Err(e) => e,
                    };
                    assert!(e.is_broken_executor(), "{e}");
                });
            }

            #[test]
            fn dropping_the_executor_waits_for_queued_tasks() {
                within(BOUND, "drop waits", || {
                    let pool = ($new)(2);
                    let fs: Vec<_> = (0..10).map(|_| pool.call(sleep_ms, 30).unwrap()).collect();
                    drop(pool);
                    for f in &fs {
                        assert!(f.done(), "drop returned before a queued task ran");
                        assert_eq!(f.result().unwrap(), 30);
                    }
                });
            }
        }
    };
}
