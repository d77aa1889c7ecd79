//! Tests of `concur_core::futures`, ported in behaviour (not text) from CPython's
//! `Lib/test/test_concurrent_futures/` (test_future.py, test_as_completed.py,
//! test_wait.py, test_init.py, test_thread_pool.py, test_shutdown.py), plus the nested
//! waiting scenarios of the concur issue.

mod common;

use common::{LIMIT, within};
use concur_core::futures::{
    Executor, Future, MapOptions, Promise, ReturnWhen, TaskError, ThreadPoolExecutor, as_completed,
    to_thread, wait,
};
use concur_core::sync::Event;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Stress counts are scaled down under Miri.
fn n(full: usize, miri: usize) -> usize {
    if cfg!(miri) { miri } else { full }
}

fn pending<T>() -> (Promise<T>, Future<T>) {
    let p = Promise::new();
    let f = p.future();
    (p, f)
}

fn running<T>() -> (Promise<T>, Future<T>) {
    let (p, f) = pending();
    assert!(p.set_running());
    (p, f)
}

fn finished<T>(v: T) -> Future<T> {
    let (p, f) = pending();
    assert!(p.set_result(v));
    f
}

fn failed<T>(msg: &str) -> Future<T> {
    let (p, f) = pending();
    assert!(p.set_error(TaskError::user(msg.to_owned())));
    f
}

fn cancelled<T>() -> Future<T> {
    let (_p, f) = pending();
    assert!(f.cancel());
    f
}

// ---- test_future.py -------------------------------------------------------------------

#[test]
fn states_and_predicates() {
    let (_pp, p) = pending::<u8>();
    assert!(!p.done() && !p.running() && !p.cancelled());
    let (_rp, r) = running::<u8>();
    assert!(!r.done() && r.running() && !r.cancelled());
    let c = cancelled::<u8>();
    assert!(c.done() && !c.running() && c.cancelled());
    let f = finished(1u8);
    assert!(f.done() && !f.running() && !f.cancelled());
    let e = failed::<u8>("x");
    assert!(e.done() && !e.cancelled());
    let _ = e.exception(None);
}

#[test]
fn cancel_only_while_pending() {
    let (_p1, f1) = pending::<u8>();
    assert!(f1.cancel());
    assert!(f1.cancel(), "cancelling twice is still true (Python)");
    let (_p2, f2) = running::<u8>();
    assert!(!f2.cancel());
    assert!(!finished(1u8).cancel());
    let e = failed::<u8>("x");
    assert!(!e.cancel());
    let _ = e.exception(None);
}

#[test]
fn promise_gives_exactly_one_outcome() {
    let (p, f) = pending();
    assert!(p.set_result(1));
    assert!(!p.set_result(2));
    assert!(!p.set_error(TaskError::user("late")));
    assert_eq!(f.result().unwrap(), 1);
    let (p, f) = pending::<u8>();
    assert!(f.cancel());
    assert!(!p.set_running());
    assert!(!p.set_result(3));
    assert!(f.result().unwrap_err().is_cancelled());
}

#[test]
fn result_with_timeout() {
    let (_p, f) = pending::<u8>();
    let t0 = Instant::now();
    assert!(
        f.result_timeout(Duration::from_millis(50))
            .unwrap_err()
            .is_timeout()
    );
    assert!(t0.elapsed() >= Duration::from_millis(50));
    assert!(
        cancelled::<u8>()
            .result_timeout(Duration::ZERO)
            .unwrap_err()
            .is_cancelled()
    );
    let e = failed::<u8>("bad")
        .result_timeout(Duration::ZERO)
        .unwrap_err();
    assert!(e.is_user());
    assert_eq!(e.to_string(), "bad");
    assert_eq!(finished(42).result_timeout(Duration::ZERO).unwrap(), 42);
}

#[test]
fn result_set_from_another_thread() {
    within(LIMIT, "result from another thread", || {
        let (p, f) = pending();
        let t = concur_core::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(if cfg!(miri) { 1 } else { 20 }));
            p.set_result(7)
        });
        assert_eq!(f.result().unwrap(), 7);
        assert!(t.join().unwrap());
    });
}

#[test]
fn result_with_cancel_from_another_thread() {
    within(LIMIT, "cancel from another thread", || {
        let (_p, f) = pending::<u8>();
        let f2 = f.clone();
        let t = concur_core::thread::spawn(move || f2.cancel());
        assert!(f.result().unwrap_err().is_cancelled());
        assert!(t.join().unwrap());
    });
}

#[test]
fn exception_api() {
    assert!(finished(1u8).exception(None).unwrap().is_none());
    assert!(
        failed::<u8>("e")
            .exception(None)
            .unwrap()
            .unwrap()
            .is_user()
    );
    assert!(
        cancelled::<u8>()
            .exception(None)
            .unwrap_err()
            .is_cancelled()
    );
    let (_p, f) = pending::<u8>();
    assert!(
        f.exception(Some(Duration::from_millis(10)))
            .unwrap_err()
            .is_timeout()
    );
}

#[test]
fn done_callbacks() {
    let log = Arc::new(Mutex::new(Vec::new()));
    // Registered before completion: runs on the completing thread, in order.
    let (p, f) = pending::<i32>();
    for tag in 0..3 {
        let log = log.clone();
        f.add_done_callback(move |f| log.lock().unwrap().push((tag, f.result().ok())));
    }
    assert!(log.lock().unwrap().is_empty());
    assert!(p.set_result(5));
    assert_eq!(
        *log.lock().unwrap(),
        vec![(0, Some(5)), (1, Some(5)), (2, Some(5))]
    );
    // Already done: runs at once.
    log.lock().unwrap().clear();
    let l = log.clone();
    finished(9).add_done_callback(move |f| l.lock().unwrap().push((9, f.result().ok())));
    assert_eq!(*log.lock().unwrap(), vec![(9, Some(9))]);
    // Cancel runs callbacks too.
    let (_p, c) = pending::<i32>();
    let hit = Arc::new(AtomicUsize::new(0));
    let h = hit.clone();
    c.add_done_callback(move |f| {
        assert!(f.cancelled());
        h.fetch_add(1, Ordering::SeqCst);
    });
    c.cancel();
    c.cancel();
    assert_eq!(hit.load(Ordering::SeqCst), 1, "a callback runs once");
}

#[test]
fn a_panicking_callback_is_reported_not_propagated() {
    let (p, f) = pending::<i32>();
    let after = Arc::new(AtomicUsize::new(0));
    f.add_done_callback(|_| panic!("callback boom"));
    let a = after.clone();
    f.add_done_callback(move |_| {
        a.fetch_add(1, Ordering::SeqCst);
    });
    assert!(p.set_result(1));
    assert_eq!(after.load(Ordering::SeqCst), 1, "later callbacks still run");
    finished(2).add_done_callback(|_| panic!("already-done callback boom"));
}

#[test]
fn dropped_promise_breaks_its_future() {
    let (p, f) = pending::<u8>();
    drop(p);
    assert!(f.result().unwrap_err().is_broken_executor());
}

#[test]
fn into_result_takes_the_value() {
    let (p, f) = pending::<String>();
    let g = f.clone();
    assert!(p.set_result("v".into()));
    assert_eq!(f.into_result().unwrap(), "v");
    assert!(g.result().unwrap_err().is_taken());
    assert!(g.done());
}

// ---- test_as_completed.py --------------------------------------------------------------

#[test]
fn as_completed_no_timeout() {
    within(LIMIT, "as_completed", || {
        let (p, f) = pending::<i32>();
        let fs = vec![finished(1), cancelled(), failed("e"), f];
        let t = concur_core::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            p.set_result(4)
        });
        let got: Vec<_> = as_completed(&fs, None)
            .map(|r| r.unwrap().clone())
            .collect();
        assert_eq!(got.len(), 4);
        assert_eq!(got[3], fs[3], "the pending one comes last");
        for f in &fs {
            assert!(got.contains(f));
        }
        t.join().unwrap();
        let _ = fs[2].exception(None);
    });
}

#[test]
fn as_completed_times_out_with_count() {
    let (_p1, a) = pending::<i32>();
    let (_p2, b) = pending::<i32>();
    let fs = vec![finished(1), a, b];
    let t0 = Instant::now();
    let mut it = as_completed(&fs, Some(Duration::from_millis(50)));
    assert_eq!(it.next().unwrap().unwrap(), &fs[0]);
    let e = it.next().unwrap().unwrap_err();
    assert!(e.is_timeout());
    assert_eq!(e.to_string(), "2 (of 3) futures unfinished");
    assert!(t0.elapsed() >= Duration::from_millis(50));
    assert!(it.next().is_none());
}

#[test]
fn as_completed_zero_timeout_yields_done_then_errors() {
    let (_p, a) = pending::<i32>();
    let fs = vec![finished(1), a];
    let items: Vec<_> = as_completed(&fs, Some(Duration::ZERO)).collect();
    assert_eq!(items.len(), 2);
    assert!(items[0].is_ok());
    assert_eq!(
        items[1].as_ref().unwrap_err().to_string(),
        "1 (of 2) futures unfinished"
    );
}

#[test]
fn as_completed_duplicates_once() {
    let f = finished(1);
    let fs = vec![f.clone(), f.clone(), f];
    assert_eq!(as_completed(&fs, None).count(), 1);
}

#[test]
fn as_completed_over_a_pool() {
    within(LIMIT, "as_completed pool", || {
        let pool = ThreadPoolExecutor::new(4);
        let k = n(50, 5);
        let fs: Vec<_> = (0..k).map(|i| pool.submit(move || i).unwrap()).collect();
        let mut got: Vec<usize> = as_completed(&fs, None)
            .map(|f| f.unwrap().result().unwrap())
            .collect();
        got.sort();
        assert_eq!(got, (0..k).collect::<Vec<_>>());
    });
}

// ---- test_wait.py ------------------------------------------------------------------------

#[test]
fn wait_first_completed() {
    within(LIMIT, "wait first completed", || {
        let (p, a) = pending::<i32>();
        let (_q, b) = pending::<i32>();
        let fs = vec![a, b];
        let t = concur_core::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            p.set_result(1)
        });
        let r = wait(&fs, None, ReturnWhen::FirstCompleted);
        assert_eq!(r.done, vec![&fs[0]]);
        assert_eq!(r.not_done, vec![&fs[1]]);
        t.join().unwrap();
    });
}

#[test]
fn wait_first_completed_some_already_done() {
    let (_p, a) = pending::<i32>();
    let fs = vec![cancelled(), finished(2), a];
    let r = wait(
        &fs,
        Some(Duration::from_secs(5)),
        ReturnWhen::FirstCompleted,
    );
    assert_eq!(r.done, vec![&fs[0], &fs[1]]);
    assert_eq!(r.not_done, vec![&fs[2]]);
}

#[test]
fn wait_first_exception() {
    within(LIMIT, "wait first exception", || {
        let (p, a) = pending::<i32>();
        let (_q, b) = pending::<i32>();
        let fs = vec![finished(1), a, b];
        let t = concur_core::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            p.set_error(TaskError::user("x"))
        });
        let r = wait(&fs, None, ReturnWhen::FirstException);
        assert_eq!(r.done, vec![&fs[0], &fs[1]]);
        assert_eq!(r.not_done, vec![&fs[2]]);
        t.join().unwrap();
        let _ = fs[1].exception(None);
    });
}

#[test]
fn wait_first_exception_one_already_failed() {
    let (_p, a) = pending::<i32>();
    let fs = vec![failed("x"), a];
    let r = wait(
        &fs,
        Some(Duration::from_secs(5)),
        ReturnWhen::FirstException,
    );
    assert_eq!(r.done, vec![&fs[0]]);
    assert_eq!(r.not_done, vec![&fs[1]]);
    let _ = fs[0].exception(None);
}

#[test]
fn wait_first_exception_ignores_cancellation_and_waits_for_all() {
    within(LIMIT, "wait first exception all", || {
        let (p, a) = pending::<i32>();
        let fs = vec![cancelled(), finished(1), a];
        let t = concur_core::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            p.set_result(3)
        });
        let r = wait(&fs, None, ReturnWhen::FirstException);
        assert_eq!(r.done.len(), 3);
        assert!(r.not_done.is_empty());
        t.join().unwrap();
    });
}

#[test]
fn wait_all_completed_and_timeout() {
    let fs = vec![finished(1), cancelled(), finished(3)];
    let r = wait(&fs, None, ReturnWhen::AllCompleted);
    assert_eq!(r.done.len(), 3);
    let (_p, a) = pending::<i32>();
    let fs = vec![finished(1), a];
    let t0 = Instant::now();
    let r = wait(
        &fs,
        Some(Duration::from_millis(50)),
        ReturnWhen::AllCompleted,
    );
    assert!(t0.elapsed() >= Duration::from_millis(50));
    assert_eq!(r.done, vec![&fs[0]]);
    assert_eq!(r.not_done, vec![&fs[1]]);
}

#[test]
fn wait_duplicates_are_one_future() {
    // CPython bpo-20369.
    let f = finished(1);
    let fs = vec![f.clone(), f];
    let r = wait(&fs, None, ReturnWhen::AllCompleted);
    assert_eq!(r.done.len(), 1);
}

// ---- executor: submit, map, shutdown ----------------------------------------------------

#[test]
fn submit_returns_values_and_panics() {
    within(LIMIT, "submit", || {
        let pool = ThreadPoolExecutor::new(2);
        assert_eq!(pool.submit(|| 2 + 3).unwrap().result().unwrap(), 5);
        let e = pool
            .submit(|| -> i32 { panic!("task boom") })
            .unwrap()
            .result()
            .unwrap_err();
        assert!(e.is_panic());
        assert_eq!(e.panic_message(), Some("task boom"));
        // A task returning Result keeps it as its value.
        let r = pool
            .submit(|| "x".parse::<i32>())
            .unwrap()
            .into_result()
            .unwrap();
        assert!(r.is_err());
    });
}

#[test]
fn map_is_ordered_and_chunked() {
    within(LIMIT, "map order", || {
        let pool = ThreadPoolExecutor::new(3);
        let k = n(100, 10);
        for chunk in [1, 3, 7] {
            let out: Vec<usize> = pool
                .map(|x: usize| x * 2, 0..k, MapOptions::new().chunksize(chunk))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_eq!(out, (0..k).map(|x| x * 2).collect::<Vec<_>>());
        }
    });
}

#[test]
fn map_error_position_and_all_bodies_ran() {
    within(LIMIT, "map error", || {
        let pool = ThreadPoolExecutor::new(2);
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let items: Vec<_> = pool
            .map(
                move |x: i32| {
                    r.fetch_add(1, Ordering::SeqCst);
                    assert!(x >= 0, "negative");
                    x * x
                },
                vec![2, -1, 4],
                MapOptions::new(),
            )
            .unwrap()
            .collect();
        assert_eq!(items[0].as_ref().unwrap(), &4);
        assert!(items[1].as_ref().unwrap_err().is_panic());
        assert_eq!(items[2].as_ref().unwrap(), &16);
        assert_eq!(ran.load(Ordering::SeqCst), 3);
    });
}

#[test]
#[cfg_attr(miri, ignore = "needs real time: Miri is too slow for a 100 ms budget")]
fn map_timeout_counts_from_the_call() {
    within(LIMIT, "map timeout", || {
        let pool = ThreadPoolExecutor::new(1);
        let gate = Event::new();
        let g = gate.clone();
        let t0 = Instant::now();
        let mut it = pool
            .map(
                move |x: u32| {
                    if x == 1 {
                        g.wait_timeout(Duration::from_secs(10));
                    }
                    x
                },
                0..3,
                MapOptions::new().timeout(Duration::from_millis(100)),
            )
            .unwrap();
        assert_eq!(it.next().unwrap().unwrap(), 0);
        let e = it.next().unwrap().unwrap_err();
        assert!(e.is_timeout());
        assert!(t0.elapsed() >= Duration::from_millis(100));
        assert!(it.next().is_none());
        gate.set();
    });
}

#[test]
fn map_reads_ahead_a_bounded_amount() {
    within(LIMIT, "map read-ahead", || {
        let pool = ThreadPoolExecutor::new(2);
        let pulled = Arc::new(AtomicUsize::new(0));
        let p = pulled.clone();
        let input = (0..10_000_000u64).inspect(move |_| {
            p.fetch_add(1, Ordering::SeqCst);
        });
        let mut it = pool
            .map(|x| x, input, MapOptions::new().buffersize(8).chunksize(2))
            .unwrap();
        assert!(pulled.load(Ordering::SeqCst) <= 16);
        for i in 0..n(100, 10) as u64 {
            assert_eq!(it.next().unwrap().unwrap(), i);
            assert!(pulled.load(Ordering::SeqCst) <= i as usize + 1 + 18);
        }
        drop(it);
        assert!(pulled.load(Ordering::SeqCst) < 200);
    });
}

#[test]
fn map_submits_without_iteration() {
    // test_thread_pool.py::test_map_submits_without_iteration
    within(LIMIT, "map eager", || {
        let pool = ThreadPoolExecutor::new(2);
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        let it = pool
            .map(
                move |_: u8| {
                    d.fetch_add(1, Ordering::SeqCst);
                },
                0..4,
                MapOptions::new(),
            )
            .unwrap();
        pool.shutdown(true, false).unwrap();
        assert_eq!(done.load(Ordering::SeqCst), 4);
        drop(it);
    });
}

#[test]
fn submit_after_shutdown_is_an_error() {
    let pool = ThreadPoolExecutor::new(1);
    pool.shutdown(false, false).unwrap();
    assert!(pool.submit(|| 1).unwrap_err().is_shutdown());
    assert!(pool.try_submit(|| 1).unwrap_err().is_shutdown());
    assert!(pool.map(|x: u8| x, 0..3, MapOptions::new()).is_err());
    pool.shutdown(true, false).unwrap();
}

#[test]
fn shutdown_wait_runs_everything_queued() {
    within(LIMIT, "shutdown wait", || {
        let pool = ThreadPoolExecutor::new(2);
        let ran = Arc::new(AtomicUsize::new(0));
        let fs: Vec<_> = (0..n(20, 4))
            .map(|_| {
                let r = ran.clone();
                pool.submit(move || {
                    std::thread::sleep(Duration::from_millis(1));
                    r.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap()
            })
            .collect();
        pool.shutdown(true, false).unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), fs.len());
        assert!(fs.iter().all(Future::done));
        assert_eq!(pool.num_threads(), 0);
    });
}

#[test]
fn shutdown_cancel_futures() {
    // The scenario: pool of 1, 100 half-second tasks, shutdown after 0.1 s.
    within(LIMIT, "shutdown cancel", || {
        let pool = ThreadPoolExecutor::new(1);
        let (count, nap) = if cfg!(miri) {
            (5, Duration::from_millis(500))
        } else {
            (100, Duration::from_millis(500))
        };
        let started = Event::new();
        let fs: Vec<_> = (0..count)
            .map(|_| {
                let s = started.clone();
                pool.submit(move || {
                    s.set();
                    std::thread::sleep(nap);
                })
                .unwrap()
            })
            .collect();
        assert!(started.wait_timeout(Duration::from_secs(10)));
        std::thread::sleep(nap / 5);
        pool.shutdown(true, true).unwrap();
        // Promptness is structural, not timed: shutdown returned having run only the
        // one started task (the 99 others would take tens of seconds), and every
        // future is settled; `within` fails the test if it hangs.
        let ran = fs.iter().filter(|f| f.done() && !f.cancelled()).count();
        let cancelled = fs.iter().filter(|f| f.cancelled()).count();
        assert_eq!((ran, cancelled), (1, count - 1));
        assert!(
            fs.iter().all(|f| f.done()),
            "every future settled at return"
        );
    });
}

#[test]
fn drop_shuts_down_and_waits() {
    within(LIMIT, "drop waits", || {
        let ran = Arc::new(AtomicUsize::new(0));
        {
            let pool = ThreadPoolExecutor::new(2);
            for _ in 0..4 {
                let r = ran.clone();
                pool.submit(move || {
                    std::thread::sleep(Duration::from_millis(5));
                    r.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
            }
        }
        assert_eq!(ran.load(Ordering::SeqCst), 4);
    });
}

// ---- test_init.py -------------------------------------------------------------------------

#[test]
fn initializer_runs_once_per_worker() {
    within(LIMIT, "initializer", || {
        let inits = Arc::new(AtomicUsize::new(0));
        let i = inits.clone();
        let pool = ThreadPoolExecutor::builder()
            .max_workers(2)
            .initializer(move || {
                i.fetch_add(1, Ordering::SeqCst);
            })
            .build();
        for _ in 0..n(10, 3) {
            pool.submit(|| ()).unwrap().result().unwrap();
        }
        pool.shutdown(true, false).unwrap();
        let k = inits.load(Ordering::SeqCst);
        assert!((1..=2).contains(&k), "one per worker, got {k}");
    });
}

#[test]
fn failing_initializer_breaks_the_pool() {
    within(LIMIT, "initializer failure", || {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(2)
            .initializer(|| panic!("init failed"))
            .build();
        let fs: Vec<_> = (0..5).filter_map(|_| pool.submit(|| 1).ok()).collect();
        assert!(!fs.is_empty());
        for f in &fs {
            let e = f.result().unwrap_err();
            assert!(e.is_broken_executor(), "{e}");
        }
        // The pool stays broken.
        let e = pool.submit(|| 1).unwrap_err();
        assert!(e.is_broken_executor());
        assert!(e.to_string().contains("init failed"));
    });
}

// ---- test_thread_pool.py --------------------------------------------------------------------

#[test]
fn threads_start_lazily_and_are_reused() {
    within(LIMIT, "lazy threads", || {
        let pool = ThreadPoolExecutor::new(5);
        assert_eq!(pool.num_threads(), 0);
        for _ in 0..n(10, 3) {
            pool.submit(|| ()).unwrap().result().unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(pool.num_threads(), 1, "idle thread reused");
        // Three blocking tasks need three threads, not five.
        let gate = Event::new();
        let fs: Vec<_> = (0..3)
            .map(|_| {
                let g = gate.clone();
                pool.submit(move || {
                    g.wait_timeout(Duration::from_secs(10));
                })
                .unwrap()
            })
            .collect();
        let t = pool.num_threads();
        assert!(t <= 3, "{t} threads");
        gate.set();
        for f in fs {
            f.result().unwrap();
        }
    });
}

#[test]
fn thread_names_use_the_prefix() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(1)
        .thread_name_prefix("SpecialPool")
        .build();
    let name = pool
        .submit(|| concur_core::thread::current_thread().name())
        .unwrap()
        .result()
        .unwrap();
    assert_eq!(name, "SpecialPool_0");
}

#[test]
fn bounded_submission_queue() {
    within(LIMIT, "bounded queue", || {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(1)
            .queue_size(2)
            .build();
        let gate = Event::new();
        let started = Event::new();
        let (g, s) = (gate.clone(), started.clone());
        let first = pool
            .submit(move || {
                s.set();
                g.wait_timeout(Duration::from_secs(10));
            })
            .unwrap();
        assert!(started.wait_timeout(Duration::from_secs(10)));
        let a = pool.try_submit(|| ()).unwrap();
        let b = pool.try_submit(|| ()).unwrap();
        assert!(pool.try_submit(|| ()).unwrap_err().is_full());
        gate.set();
        // submit blocks until there is room, then succeeds.
        let c = pool.submit(|| ()).unwrap();
        for f in [first, a, b, c] {
            f.result().unwrap();
        }
    });
}

#[test]
fn tasks_start_with_fresh_thread_locals() {
    within(LIMIT, "fresh locals", || {
        let local = concur_core::thread::Local::new(|| 0u32);
        let fresh = ThreadPoolExecutor::new(1);
        let keep = ThreadPoolExecutor::builder()
            .max_workers(1)
            .keep_thread_locals(true)
            .build();
        for (pool, expect) in [(&fresh, vec![1, 1, 1]), (&keep, vec![1, 2, 3])] {
            let got: Vec<u32> = (0..3)
                .map(|_| {
                    let l = local.clone();
                    pool.submit(move || {
                        l.with_mut(|v| *v += 1);
                        l.get()
                    })
                    .unwrap()
                    .result()
                    .unwrap()
                })
                .collect();
            assert_eq!(got, expect);
        }
    });
}

// ---- nested waits (the CWE scenarios) -----------------------------------------------

#[test]
fn outer_tasks_wait_on_inner_tasks_pool_of_two() {
    within(LIMIT, "nested pool of 2", || {
        let pool = ThreadPoolExecutor::new(2);
        let outer: Vec<_> = (0..10u64)
            .map(|i| {
                let p = pool.clone();
                pool.submit(move || p.submit(move || i * i).unwrap().result().unwrap())
                    .unwrap()
            })
            .collect();
        let got: Vec<u64> = outer.iter().map(|f| f.result().unwrap()).collect();
        assert_eq!(got, (0..10).map(|i| i * i).collect::<Vec<_>>());
    });
}

fn tree(pool: &ThreadPoolExecutor, depth: u32) -> usize {
    if depth == 0 {
        return 1;
    }
    let fs: Vec<_> = (0..5)
        .map(|_| {
            let p = pool.clone();
            pool.submit(move || tree(&p, depth - 1)).unwrap()
        })
        .collect();
    fs.iter().map(|f| f.result().unwrap()).sum()
}

#[test]
fn three_nested_levels_any_pool_size() {
    // 125 leaves; two levels (25) under Miri, which is too slow for 156 tasks.
    let depth = if cfg!(miri) { 2 } else { 3 };
    for size in [1, 2, 4, 32] {
        within(LIMIT, "nested tree", move || {
            let pool = ThreadPoolExecutor::new(size);
            let p = pool.clone();
            let total = pool
                .submit(move || tree(&p, depth))
                .unwrap()
                .result()
                .unwrap();
            assert_eq!(total, 5usize.pow(depth), "pool size {size}");
        });
    }
}

#[test]
fn waiting_on_a_running_task_of_the_same_pool_adds_a_worker() {
    within(LIMIT, "temporary worker", || {
        // Pool of 2: B runs and waits for an event that only D (queued) sets; A runs on
        // the other worker and blocks on B. Without a temporary worker for the blocked
        // A, D would never run (B's wait would time out and return false).
        let pool = ThreadPoolExecutor::new(2);
        let (b_started, ev) = (Event::new(), Event::new());
        let (s, e) = (b_started.clone(), ev.clone());
        let b = pool
            .submit(move || {
                s.set();
                e.wait_timeout(Duration::from_secs(10))
            })
            .unwrap();
        assert!(b_started.wait_timeout(Duration::from_secs(10)));
        let b2 = b.clone();
        let a = pool.submit(move || b2.result().unwrap()).unwrap();
        let e = ev.clone();
        let d = pool.submit(move || e.set()).unwrap();
        assert!(a.result().unwrap(), "D ran while A was blocked on B");
        assert!(b.result().unwrap());
        d.result().unwrap();
        assert!(pool.num_threads() <= 3);
    });
}

#[test]
fn a_waiting_worker_runs_only_the_awaited_task_inline() {
    within(LIMIT, "inline only the awaited task", || {
        let pool = ThreadPoolExecutor::new(1);
        let p = pool.clone();
        let a = pool
            .submit(move || {
                let me = concur_core::thread::get_ident();
                let other = p.submit(concur_core::thread::get_ident).unwrap();
                let d = p.submit(concur_core::thread::get_ident).unwrap();
                // Only D runs inline here; `other` stays queued (or runs elsewhere).
                let on = d.result().unwrap();
                (me, on, other)
            })
            .unwrap();
        let (me, on, other) = a.result().unwrap();
        assert_eq!(me, on);
        assert!(other.result().is_ok());
    });
}

#[test]
fn as_completed_and_wait_inside_a_pool_of_one() {
    // Python deadlocks here: the only worker waits for subtasks queued behind it.
    within(LIMIT, "as_completed/wait on a pool of 1", || {
        // Repeated: a worker retiring while the outer task blocks again once raced
        // with the spawn of its replacement.
        for _ in 0..n(200, 2) {
            nested_as_completed_and_wait();
        }
    });
}

fn nested_as_completed_and_wait() {
    {
        let pool = ThreadPoolExecutor::new(1);
        let p = pool.clone();
        let outer = pool
            .submit(move || {
                let fs: Vec<_> = (0..3).map(|i| p.submit(move || i * 10).unwrap()).collect();
                let mut seen: Vec<i32> = as_completed(&fs, None)
                    .map(|f| f.unwrap().result().unwrap())
                    .collect();
                seen.sort();
                let more: Vec<_> = (0..3).map(|i| p.submit(move || i).unwrap()).collect();
                let r = wait(&more, None, ReturnWhen::AllCompleted);
                (seen, r.done.len(), r.not_done.len())
            })
            .unwrap();
        assert_eq!(outer.result().unwrap(), (vec![0, 10, 20], 3, 0));
    }
}

#[test]
fn self_wait_is_an_error() {
    within(LIMIT, "self wait", || {
        let pool = ThreadPoolExecutor::new(2);
        let slot: Arc<Mutex<Option<Future<bool>>>> = Arc::new(Mutex::new(None));
        let gate = Event::new();
        let (s, g) = (slot.clone(), gate.clone());
        let f = pool
            .submit(move || {
                g.wait_timeout(Duration::from_secs(10));
                let me = s.lock().unwrap().clone().unwrap();
                me.result().unwrap_err().is_self_wait()
            })
            .unwrap();
        *slot.lock().unwrap() = Some(f.clone());
        gate.set();
        assert!(f.result().unwrap());
    });
}

#[test]
fn waiting_on_a_task_suspended_below_an_inline_run_is_an_error() {
    within(LIMIT, "inline cycle", || {
        // A waits on B; B runs inline on A's thread and waits on A: a sure deadlock,
        // reported as a self-wait instead.
        let pool = ThreadPoolExecutor::new(1);
        let slot: Arc<Mutex<Option<Future<bool>>>> = Arc::new(Mutex::new(None));
        let gate = Event::new();
        let (s, g, p) = (slot.clone(), gate.clone(), pool.clone());
        let a = pool
            .submit(move || {
                g.wait_timeout(Duration::from_secs(10));
                let me = s.lock().unwrap().clone().unwrap();
                let b = p
                    .submit(move || me.result().unwrap_err().is_self_wait())
                    .unwrap();
                b.result().unwrap()
            })
            .unwrap();
        *slot.lock().unwrap() = Some(a.clone());
        gate.set();
        assert!(a.result().unwrap());
    });
}

#[test]
fn shutdown_wait_from_own_task_is_an_error() {
    within(LIMIT, "self shutdown", || {
        let pool = ThreadPoolExecutor::new(1);
        let p = pool.clone();
        let f = pool.submit(move || p.shutdown(true, false)).unwrap();
        assert!(f.result().unwrap().unwrap_err().is_self_wait());
        assert!(pool.submit(|| ()).unwrap_err().is_shutdown());
    });
}

// ---- async -------------------------------------------------------------------------------------

#[test]
#[cfg_attr(miri, ignore = "the default pool's threads outlive the test")]
fn to_thread_joined_in_block_on() {
    within(LIMIT, "to_thread", || {
        let a = to_thread(|| {
            std::thread::sleep(Duration::from_millis(5));
            1
        });
        let b = to_thread(|| "two".to_owned());
        let (x, y) = futures::executor::block_on(futures::future::join(a, b));
        assert_eq!((x.unwrap(), y.unwrap().as_str()), (1, "two"));
    });
}

#[test]
fn awaiting_a_promise_future() {
    within(LIMIT, "await promise", || {
        let (p, f) = pending::<u8>();
        let t = concur_core::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            p.set_result(8)
        });
        assert_eq!(futures::executor::block_on(f).unwrap(), 8);
        t.join().unwrap();
    });
}

/// Every future a racing `submit` returned finishes (with a value or an error) within a
/// bound: none is stranded in the queue of a pool whose workers are gone.
fn racing_submits_all_finish(pool: ThreadPoolExecutor, close: impl FnOnce(&ThreadPoolExecutor)) {
    let p = pool.clone();
    let submitter = std::thread::spawn(move || {
        (0..n(40, 4))
            .filter_map(|_| p.submit(|| 1).ok())
            .collect::<Vec<_>>()
    });
    close(&pool);
    for f in submitter.join().unwrap() {
        if let Err(e) = f.result_timeout(Duration::from_secs(10)) {
            assert!(!e.is_timeout(), "a future was left pending: {e}");
        }
    }
}

#[test]
fn submits_racing_shutdown_or_breakage_never_leave_a_future_pending() {
    within(LIMIT, "racing submits", || {
        for _ in 0..n(100, 2) {
            racing_submits_all_finish(ThreadPoolExecutor::new(2), |p| {
                p.shutdown(false, false).unwrap();
            });
            let broken = ThreadPoolExecutor::builder()
                .max_workers(2)
                .initializer(|| panic!("init failed"))
                .build();
            racing_submits_all_finish(broken, |p| {
                let _ = p.submit(|| 0);
            });
        }
    });
}

// ---- cancel guards (work handed ahead to another process) --------------------------

#[test]
fn a_cancel_guard_that_takes_the_work_back_lets_the_cancel_through() {
    let p = Promise::<u8>::new();
    let asked = Arc::new(AtomicUsize::new(0));
    let a = asked.clone();
    assert!(p.set_cancel_guard(move || {
        a.fetch_add(1, Ordering::SeqCst);
        true
    }));
    let f = p.future();
    assert!(f.cancel());
    assert!(f.cancelled());
    assert!(f.cancel(), "a second cancel is still true");
    assert_eq!(asked.load(Ordering::SeqCst), 1, "the guard is asked once");
    assert!(!p.set_result(1), "a cancelled future takes no value");
    assert!(
        !p.set_cancel_guard(|| true),
        "no guard on a finished future"
    );
}

#[test]
fn a_cancel_guard_is_dropped_once_the_future_runs_or_finishes() {
    let p = Promise::<u8>::new();
    let asked = Arc::new(AtomicUsize::new(0));
    let a = asked.clone();
    assert!(p.set_cancel_guard(move || {
        a.fetch_add(1, Ordering::SeqCst);
        true
    }));
    assert!(p.set_running());
    assert!(!p.future().cancel());
    assert_eq!(asked.load(Ordering::SeqCst), 0);
    assert!(p.set_result(3));
    assert_eq!(p.future().result().unwrap(), 3);
}

#[test]
fn a_refusing_cancel_guard_makes_the_future_running() {
    let p = Promise::<u8>::new();
    assert!(p.set_cancel_guard(|| false));
    let f = p.future();
    assert!(!f.cancel());
    assert!(f.running() && !f.done());
    assert!(p.set_result(9));
    assert_eq!(f.result().unwrap(), 9);
}

/// Progress from inside a task: reported to the future while the task runs, in order;
/// nothing after its outcome; nothing from outside a task or from another thread.
#[test]
fn progress_from_a_task_reaches_its_future_until_it_is_done() {
    use concur_core::futures::{Progress, progress};
    within(LIMIT, "progress", || {
        let pool = ThreadPoolExecutor::new(1);
        let go = concur_core::sync::Event::new();
        let g = go.clone();
        let f = pool
            .submit(move || {
                g.wait();
                let elsewhere = std::thread::spawn(|| progress(99, None)).join().unwrap();
                for i in 1..=3 {
                    assert!(progress(i, Some(3)));
                }
                elsewhere
            })
            .unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        f.add_progress_callback(move |p| s.lock().unwrap().push(p.done));
        go.set();
        assert!(
            !f.result().unwrap(),
            "progress from another thread went somewhere"
        );
        assert_eq!(*seen.lock().unwrap(), [1, 2, 3]);
        assert_eq!(
            f.progress(),
            Some(Progress {
                done: 3,
                total: Some(3)
            })
        );
        // A callback added after the outcome hears the last report once, and no more.
        let late = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let l = late.clone();
        f.add_progress_callback(move |_| {
            l.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        assert_eq!(late.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(!progress(1, None), "outside a task");
    });
}
