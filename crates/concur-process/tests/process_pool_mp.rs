//! `ProcessPool` (Python's `multiprocessing.Pool`), porting the behaviours of
//! CPython 3.13's `Lib/test/_test_multiprocessing.py`: `_TestPool` (apply, map, map
//! with chunksize, starmap, map_async and its callbacks, apply_async with
//! `get(timeout)`, imap, imap_unordered, empty iterables, terminate, close/join),
//! `_TestPoolWorkerLifetime` (maxtasksperchild) and `_TestInitializers` (initializer),
//! plus what this pool adds: errors at their position, a crashed worker failing only its
//! item, a broken pool after a failed initializer, no worker left after `terminate`.
//!
//! Where Python raises an exception from the *input iterator*, a Rust iterator cannot
//! fail; the same positions are exercised with a task that panics instead.

mod common;

use common::{LIMIT, eventually, proc_state, within};
use concur_core::futures::{Executor, MapOptions, ThreadPoolExecutor};
use concur_process::sync::Event;
use concur_process::{ProcessPool, ProcessPoolExecutor};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn sqr(x: i64) -> i64 {
    x * x
}

/// Python's `sqr(x, wait)`: squares after sleeping `ms` milliseconds.
fn slow_sqr((x, ms): (i64, u64)) -> i64 {
    std::thread::sleep(Duration::from_millis(ms));
    x * x
}

fn mul(a: i64, b: i64) -> i64 {
    a * b
}

fn nap(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// Panics on the items 3 and 7 (after a while for 3, at once for 7).
fn fail_at_3_and_7(x: i64) -> i64 {
    match x {
        3 => {
            std::thread::sleep(Duration::from_millis(200));
            panic!("bad item {x}")
        }
        7 => panic!("bad item {x}"),
        _ => x * x,
    }
}

fn pid(_: u32) -> u32 {
    std::process::id()
}

#[test]
fn apply() {
    within(LIMIT, "apply", || {
        let pool = ProcessPool::new(4);
        assert_eq!(pool.apply(sqr, 5).unwrap(), 25);
        assert_eq!(pool.apply(slow_sqr, (3, 0)).unwrap(), 9);
        // A different process from the test's.
        assert_ne!(pool.apply(pid, 0).unwrap(), std::process::id());
        let e = pool.apply(fail_at_3_and_7, 7).unwrap_err();
        assert!(e.is_panic());
        assert_eq!(e.panic_message(), Some("bad item 7"));
        assert!(e.panic_location().unwrap().contains("process_pool_mp.rs"));
    });
}

#[test]
fn map_and_map_with_chunksize() {
    within(LIMIT, "map", || {
        let pool = ProcessPool::new(4);
        let want: Vec<i64> = (0..10).map(sqr).collect();
        assert_eq!(pool.map(sqr, 0..10).unwrap(), want);
        let want: Vec<i64> = (0..100).map(sqr).collect();
        let got = pool
            .map_with(sqr, 0..100, MapOptions::new().chunksize(20))
            .unwrap();
        assert_eq!(got, want);
        // An input of unknown length (read to its end first, as Python does).
        let got = pool.map(sqr, (0..100).filter(|x| x % 2 == 0)).unwrap();
        assert_eq!(got, (0..100).step_by(2).map(sqr).collect::<Vec<_>>());
    });
}

#[test]
fn map_returns_the_first_error_by_position() {
    within(LIMIT, "map errors", || {
        let pool = ProcessPool::new(4);
        // Item 7 fails first in time, item 3 first by position: 3 is reported.
        for cs in [1, 2, 5, 20] {
            let e = pool
                .map_with(fail_at_3_and_7, 0..20, MapOptions::new().chunksize(cs))
                .unwrap_err();
            assert_eq!(e.panic_message(), Some("bad item 3"), "chunksize {cs}");
        }
        let e = pool.map(fail_at_3_and_7, 0..20).unwrap_err();
        assert_eq!(e.panic_message(), Some("bad item 3"));
        // The pool is still fine.
        assert_eq!(pool.map(sqr, [2, 3]).unwrap(), [4, 9]);
    });
}

#[test]
fn starmap_and_starmap_async() {
    within(LIMIT, "starmap", || {
        let pool = ProcessPool::new(4);
        let tuples: Vec<(i64, i64)> = (0..10).zip((0..10).rev()).collect();
        let want: Vec<i64> = tuples.iter().map(|&(a, b)| a * b).collect();
        assert_eq!(pool.starmap(mul, tuples.clone()).unwrap(), want);
        let tuples: Vec<(i64, i64)> = (0..100).zip((0..100).rev()).collect();
        let want: Vec<i64> = tuples.iter().map(|&(a, b)| a * b).collect();
        let r = pool.starmap_async(mul, tuples).unwrap();
        assert_eq!(r.get_timeout(LIMIT).unwrap(), want);
        // Three fields, and a closure that captures nothing.
        let v = pool
            .starmap(
                |a: u8, b: String, c: bool| format!("{a}{b}{c}"),
                [(1, "x".to_string(), true)],
            )
            .unwrap();
        assert_eq!(v, ["1xtrue"]);
    });
}

#[test]
fn map_async_and_get_timeout() {
    within(LIMIT, "map_async", || {
        let pool = ProcessPool::new(4);
        let r = pool.map_async(sqr, (0..10).collect::<Vec<_>>()).unwrap();
        assert_eq!(
            r.get_timeout(LIMIT).unwrap(),
            (0..10).map(sqr).collect::<Vec<_>>()
        );
        assert_eq!(r.successful(), Some(true));

        // Not ready while its items sleep; a short get times out, a long one succeeds.
        let r = pool
            .map_async(slow_sqr, vec![(1, 500), (2, 0), (3, 500)])
            .unwrap();
        let start = Instant::now();
        assert!(
            r.get_timeout(Duration::from_millis(50))
                .unwrap_err()
                .is_timeout()
        );
        assert!(start.elapsed() >= Duration::from_millis(50));
        assert_eq!(r.successful(), None);
        assert_eq!(r.get_timeout(LIMIT).unwrap(), [1, 4, 9]);

        // The first error by position, whichever finished first.
        let r = pool
            .map_async_with(fail_at_3_and_7, 0..12, MapOptions::new().chunksize(1))
            .unwrap();
        assert!(r.wait_timeout(LIMIT));
        assert_eq!(r.successful(), Some(false));
        assert_eq!(r.get().unwrap_err().panic_message(), Some("bad item 3"));
    });
}

fn parse(s: String) -> i64 {
    s.parse().expect("not a number")
}

/// What a `map_async` callback saw: the values, or the panic message.
type Outcome = Result<Vec<i64>, String>;

#[test]
fn map_async_callbacks() {
    within(LIMIT, "map_async callbacks", || {
        let pool = ProcessPool::new(2);
        let calls: Arc<Mutex<Vec<Outcome>>> = Arc::default();
        for input in ["1", "a"] {
            let c = calls.clone();
            let r = pool.map_async(parse, vec![input.to_string()]).unwrap();
            r.add_done_callback(move |f| {
                c.lock().unwrap().push(
                    f.result()
                        .map_err(|e| e.panic_message().unwrap_or("").to_owned()),
                );
            });
            r.wait();
        }
        // A callback runs when the result completes, so after `wait` it has run or is
        // about to (it runs on the pool's thread right after waking the waiters).
        assert!(eventually(LIMIT, || calls.lock().unwrap().len() == 2));
        let calls = calls.lock().unwrap();
        assert_eq!(calls[0], Ok(vec![1]));
        assert!(calls[1].as_ref().unwrap_err().contains("not a number"));
    });
}

#[test]
fn map_async_with_chunksize_on_an_empty_list_does_not_stall() {
    within(LIMIT, "map_async empty", || {
        let pool = ProcessPool::new(2);
        let r = pool
            .map_async_with(sqr, Vec::<i64>::new(), MapOptions::new().chunksize(1))
            .unwrap();
        assert_eq!(
            r.get_timeout(Duration::from_secs(5)).unwrap(),
            Vec::<i64>::new()
        );
    });
}

#[test]
fn apply_async_get_and_get_timeout() {
    within(LIMIT, "apply_async", || {
        let pool = ProcessPool::new(3);
        // test_async: `get` waits for the value.
        let start = Instant::now();
        let r = pool.apply_async(slow_sqr, (7, 100)).unwrap();
        assert_eq!(r.get().unwrap(), 49);
        assert!(start.elapsed() >= Duration::from_millis(100));
        // test_async_timeout: a `get` with a short timeout fails, a later one succeeds.
        let r = pool.apply_async(slow_sqr, (6, 600)).unwrap();
        let start = Instant::now();
        let e = r.get_timeout(Duration::from_millis(100)).unwrap_err();
        assert!(e.is_timeout());
        assert!(start.elapsed() >= Duration::from_millis(100));
        assert!(!r.ready());
        assert_eq!(r.get_timeout(LIMIT).unwrap(), 36);
        assert!(r.ready());
    });
}

#[test]
fn imap_in_order_with_and_without_chunksize() {
    within(LIMIT, "imap", || {
        let pool = ProcessPool::new(4);
        let all: Vec<i64> = pool.imap(sqr, 0..10).unwrap().map(Result::unwrap).collect();
        assert_eq!(all, (0..10).map(sqr).collect::<Vec<_>>());

        let mut it = pool.imap(sqr, 0..10).unwrap();
        for i in 0..10 {
            assert_eq!(it.next().unwrap().unwrap(), i * i);
        }
        assert!(it.next().is_none());

        let opts = MapOptions::new().chunksize(100);
        let mut it = pool.imap_with(sqr, 0..1000, opts).unwrap();
        for i in 0..1000 {
            assert_eq!(it.next().unwrap().unwrap(), i * i);
        }
        assert!(it.next().is_none());

        // An endless input, read a bounded number of chunks ahead.
        let firsts: Vec<i64> = pool
            .imap(sqr, 0..)
            .unwrap()
            .take(5)
            .map(Result::unwrap)
            .collect();
        assert_eq!(firsts, [0, 1, 4, 9, 16]);
    });
}

#[test]
fn imap_yields_each_error_at_its_place_and_goes_on() {
    within(LIMIT, "imap errors", || {
        let pool = ProcessPool::new(4);
        for cs in [1, 2, 4] {
            let opts = MapOptions::new().chunksize(cs);
            let got: Vec<_> = pool
                .imap_with(fail_at_3_and_7, 0..10, opts)
                .unwrap()
                .collect();
            assert_eq!(got.len(), 10);
            for (i, r) in got.into_iter().enumerate() {
                match i {
                    3 | 7 => assert_eq!(
                        r.unwrap_err().panic_message(),
                        Some(format!("bad item {i}").as_str())
                    ),
                    _ => assert_eq!(r.unwrap(), (i * i) as i64, "chunksize {cs}"),
                }
            }
        }
    });
}

#[test]
fn imap_unordered_yields_every_item_once() {
    within(LIMIT, "imap_unordered", || {
        let pool = ProcessPool::new(4);
        let mut got: Vec<i64> = pool
            .imap_unordered(sqr, 0..10)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        got.sort();
        assert_eq!(got, (0..10).map(sqr).collect::<Vec<_>>());

        let opts = MapOptions::new().chunksize(100);
        let mut got: Vec<i64> = pool
            .imap_unordered_with(sqr, 0..1000, opts)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        got.sort();
        assert_eq!(got, (0..1000).map(sqr).collect::<Vec<_>>());

        // Uneven task times, a small read-ahead and a last chunk shorter than the
        // others: every item exactly once.
        let items: Vec<(i64, u64)> = (0..203).map(|i| (i, (i as u64 * 7) % 5)).collect();
        let opts = MapOptions::new().chunksize(3).buffersize(2);
        let got: Vec<i64> = pool
            .imap_unordered_with(slow_sqr, items, opts)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got.len(), 203);
        let set: HashSet<i64> = got.into_iter().collect();
        assert_eq!(set, (0..203).map(sqr).collect::<HashSet<_>>());
    });
}

#[test]
fn imap_unordered_errors_are_counted_once() {
    within(LIMIT, "imap_unordered errors", || {
        let pool = ProcessPool::new(4);
        for cs in [1, 2, 3] {
            let opts = MapOptions::new().chunksize(cs);
            let got: Vec<_> = pool
                .imap_unordered_with(fail_at_3_and_7, 0..20, opts)
                .unwrap()
                .collect();
            assert_eq!(got.len(), 20);
            let mut errors: Vec<String> = got
                .iter()
                .filter_map(|r| r.as_ref().err())
                .map(|e| e.panic_message().unwrap().to_owned())
                .collect();
            errors.sort();
            assert_eq!(errors, ["bad item 3", "bad item 7"]);
            let mut ok: Vec<i64> = got.into_iter().filter_map(Result::ok).collect();
            ok.sort();
            let want: Vec<i64> = (0..20).filter(|x| *x != 3 && *x != 7).map(sqr).collect();
            assert_eq!(ok, want);
        }
    });
}

/// Item 0 waits for the event; the others return at once.
fn held_first((go, i): (Event, u32)) -> u32 {
    if i == 0 {
        assert!(go.wait_timeout(Duration::from_secs(10)));
    }
    i
}

// Items handed ahead to the worker held by item 0 are taken back for the idle worker.
#[test]
fn imap_unordered_yields_in_completion_order() {
    within(LIMIT, "imap_unordered order", || {
        let pool = ProcessPool::new(2);
        let go = Event::new().unwrap();
        let items: Vec<(Event, u32)> = (0..10).map(|i| (go.clone(), i)).collect();
        let mut it = pool.imap_unordered(held_first, items).unwrap();
        // Items 1..10 all complete while item 0 is held: they come first.
        let mut firsts: Vec<u32> = (0..9).map(|_| it.next().unwrap().unwrap()).collect();
        firsts.sort();
        assert_eq!(firsts, (1..10).collect::<Vec<_>>());
        go.set();
        assert_eq!(it.next().unwrap().unwrap(), 0);
        assert!(it.next().is_none());
    });
}

#[test]
fn map_progress_hook_counts_every_item() {
    within(LIMIT, "progress", || {
        let pool = ProcessPool::new(2);
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        let opts = MapOptions::new().chunksize(4).progress(move |p| {
            assert_eq!(p.total, Some(30));
            d.fetch_max(p.done, Ordering::SeqCst);
        });
        assert_eq!(pool.map_with(sqr, 0..30, opts.clone()).unwrap().len(), 30);
        assert_eq!(done.load(Ordering::SeqCst), 30);
        done.store(0, Ordering::SeqCst);
        assert_eq!(
            pool.imap_unordered_with(sqr, 0..30, opts).unwrap().count(),
            30
        );
        assert_eq!(done.load(Ordering::SeqCst), 30);
    });
}

#[test]
fn map_with_timeout_gives_up() {
    within(LIMIT, "map timeout", || {
        let pool = ProcessPool::new(1);
        let start = Instant::now();
        let opts = MapOptions::new().timeout(Duration::from_millis(200));
        let e = pool.map_with(nap, [10_000, 10_000], opts).unwrap_err();
        assert!(e.is_timeout());
        assert!(start.elapsed() >= Duration::from_millis(200));
        // imap_unordered: one timeout error, then the end.
        let opts = MapOptions::new().timeout(Duration::from_millis(200));
        let mut it = pool
            .imap_unordered_with(nap, [10_000, 10_000], opts)
            .unwrap();
        assert!(it.next().unwrap().unwrap_err().is_timeout());
        assert!(it.next().is_none());
        drop(it);
        pool.terminate().unwrap();
    });
}

#[test]
fn empty_iterables() {
    within(LIMIT, "empty iterables", || {
        let pool = ProcessPool::new(1);
        assert_eq!(pool.map(sqr, Vec::<i64>::new()).unwrap(), Vec::<i64>::new());
        assert_eq!(pool.imap(sqr, Vec::<i64>::new()).unwrap().count(), 0);
        assert_eq!(
            pool.imap_unordered(sqr, Vec::<i64>::new()).unwrap().count(),
            0
        );
        assert_eq!(
            pool.map_async(sqr, Vec::<i64>::new())
                .unwrap()
                .get()
                .unwrap(),
            Vec::<i64>::new()
        );
        assert_eq!(
            pool.starmap(mul, Vec::<(i64, i64)>::new()).unwrap(),
            Vec::<i64>::new()
        );
        pool.close();
        pool.join().unwrap();
        // Nothing was ever submitted, so no worker was started.
        assert_eq!(pool.executor().workers_started(), 0);
    });
}

#[test]
fn close_then_join_finishes_the_queued_work() {
    within(LIMIT, "close/join", || {
        let pool = ProcessPool::new(2);
        let rs: Vec<_> = (0..6)
            .map(|i| pool.apply_async(slow_sqr, (i, 50)).unwrap())
            .collect();
        let r_map = pool.map_async(sqr, vec![1, 2, 3]).unwrap();
        pool.close();
        assert!(pool.apply(sqr, 1).unwrap_err().is_shutdown());
        assert!(pool.map(sqr, [1]).unwrap_err().is_shutdown());
        assert!(pool.map_async(sqr, vec![1]).unwrap_err().is_shutdown());
        assert!(pool.imap(sqr, [1]).err().unwrap().is_shutdown());
        assert!(pool.imap_unordered(sqr, [1]).unwrap_err().is_shutdown());
        pool.join().unwrap();
        for (i, r) in rs.iter().enumerate() {
            assert!(r.ready());
            assert_eq!(r.get().unwrap(), (i * i) as i64);
        }
        assert_eq!(r_map.get().unwrap(), [1, 4, 9]);
        assert!(pool.executor().worker_pids().is_empty());
    });
}

#[test]
fn join_before_close_is_an_error() {
    within(LIMIT, "join before close", || {
        let pool = ProcessPool::new(1);
        assert_eq!(pool.apply(sqr, 2).unwrap(), 4);
        let e = pool.join().unwrap_err();
        assert!(e.is_invalid_state());
        // Still usable.
        assert_eq!(pool.apply(sqr, 3).unwrap(), 9);
        pool.close();
        pool.join().unwrap();
    });
}

#[test]
fn drop_closes_and_waits() {
    within(LIMIT, "drop", || {
        let pool = ProcessPool::new(2);
        let r = pool.apply_async(slow_sqr, (4, 200)).unwrap();
        let m = pool.map_async(slow_sqr, vec![(1, 100), (2, 100)]).unwrap();
        let pids_seen = pool.executor().clone();
        drop(pool);
        assert!(r.ready() && m.ready());
        assert_eq!(r.get().unwrap(), 16);
        assert_eq!(m.get().unwrap(), [1, 4]);
        assert!(pids_seen.worker_pids().is_empty());
    });
}

#[test]
fn terminate_kills_long_tasks_and_leaves_no_worker() {
    within(LIMIT, "terminate", || {
        let pool = ProcessPool::new(3);
        // Python's test_terminate: 10,000 tasks that would sleep "forever".
        let r = pool
            .map_async_with(nap, vec![60_000u64; 10_000], MapOptions::new().chunksize(1))
            .unwrap();
        assert!(eventually(LIMIT, || pool.executor().worker_pids().len() == 3));
        std::thread::sleep(Duration::from_millis(200)); // let some tasks start
        let pids = pool.executor().worker_pids();
        assert_eq!(pids.len(), 3);
        let start = Instant::now();
        pool.terminate().unwrap();
        let took = start.elapsed();
        assert!(took < Duration::from_secs(30), "terminate took {took:?}");
        assert!(r.get_timeout(LIMIT).is_err());
        pool.join().unwrap();
        assert!(pool.executor().worker_pids().is_empty());
        for p in pids {
            // Reaped: not running, and not a zombie either.
            assert_eq!(proc_state(p), None, "worker {p} left behind");
        }
        assert!(pool.apply(sqr, 1).unwrap_err().is_shutdown());
    });
}

#[test]
fn maxtasksperchild_3_runs_the_4th_task_in_a_new_process() {
    within(LIMIT, "maxtasksperchild", || {
        let exec = ProcessPoolExecutor::builder()
            .max_workers(1)
            .max_tasks_per_child(3)
            .build();
        let pool = ProcessPool::with_executor(exec);
        let pids: Vec<u32> = (0..7).map(|i| pool.apply(pid, i).unwrap()).collect();
        assert_eq!(pids[0], pids[1]);
        assert_eq!(pids[1], pids[2]);
        assert_ne!(pids[2], pids[3]);
        assert_eq!(pids[3], pids[4]);
        assert_eq!(pids[4], pids[5]);
        assert_ne!(pids[5], pids[6]);
        assert!(pool.executor().workers_started() >= 3);
        // _TestPoolWorkerLifetime: map keeps working across recycled workers.
        let got = pool
            .map_with(sqr, 0..30, MapOptions::new().chunksize(1))
            .unwrap();
        assert_eq!(got, (0..30).map(sqr).collect::<Vec<_>>());
    });
}

static INIT_VALUE: AtomicU64 = AtomicU64::new(0);

fn init(v: u64) {
    INIT_VALUE.store(v, Ordering::SeqCst);
}

fn read_init(_: u32) -> (u64, u32) {
    (INIT_VALUE.load(Ordering::SeqCst), std::process::id())
}

#[test]
fn initializer_runs_in_each_worker() {
    within(LIMIT, "initializer", || {
        let exec = ProcessPoolExecutor::builder()
            .max_workers(2)
            .initializer(init, 42)
            .max_tasks_per_child(2)
            .build();
        let pool = ProcessPool::with_executor(exec);
        let got = pool
            .map_with(read_init, 0..12, MapOptions::new().chunksize(1))
            .unwrap();
        // Every task, in every worker (at least 6 of them, as each runs 2 tasks), saw
        // the value its worker's initializer set; the test process never ran it.
        assert!(got.iter().all(|&(v, _)| v == 42));
        let workers: HashSet<u32> = got.iter().map(|&(_, p)| p).collect();
        assert!(workers.len() >= 6, "{workers:?}");
        assert_eq!(INIT_VALUE.load(Ordering::SeqCst), 0);
    });
}

fn failing_init(_: ()) {
    panic!("no configuration");
}

#[test]
fn initializer_failure_breaks_the_pool() {
    within(LIMIT, "initializer failure", || {
        let exec = ProcessPoolExecutor::builder()
            .max_workers(2)
            .initializer(failing_init, ())
            .build();
        let pool = ProcessPool::with_executor(exec);
        let e = pool.apply(sqr, 2).unwrap_err();
        assert!(e.is_broken_executor(), "{e}");
        let e = pool.map(sqr, 0..10).unwrap_err();
        assert!(e.is_broken_executor(), "{e}");
        pool.close();
        pool.join().unwrap();
    });
}

fn crash_at_5(x: i64) -> i64 {
    if x == 5 {
        std::process::abort();
    }
    x * x
}

#[test]
fn a_crashed_worker_fails_only_its_item() {
    within(LIMIT, "crash", || {
        let pool = ProcessPool::new(2);
        let got: Vec<_> = pool
            .imap_with(crash_at_5, 0..10, MapOptions::new().chunksize(1))
            .unwrap()
            .collect();
        for (i, r) in got.into_iter().enumerate() {
            if i == 5 {
                let e = r.unwrap_err();
                assert!(e.is_worker_died(), "{e}");
                assert_eq!(e.signal(), Some(libc::SIGABRT));
            } else {
                assert_eq!(r.unwrap(), (i * i) as i64);
            }
        }
        let e = pool
            .map_with(crash_at_5, 0..10, MapOptions::new().chunksize(1))
            .unwrap_err();
        assert!(e.is_worker_died());
        // Python's pool would be broken for good here; this one serves on.
        assert_eq!(pool.map(sqr, 0..4).unwrap(), [0, 1, 4, 9]);
    });
}

/// A task that runs a thread pool inside its worker process.
fn sum_of_squares_on_threads(n: u64) -> (u64, u32) {
    let threads = ThreadPoolExecutor::new(4);
    let total = threads
        .map(|x: u64| x * x, 0..n, MapOptions::new())
        .unwrap()
        .map(Result::unwrap)
        .sum();
    threads.shutdown(true, false).unwrap();
    (total, std::process::id())
}

#[test]
fn a_task_may_use_a_thread_pool() {
    within(LIMIT, "thread pool in a worker", || {
        let pool = ProcessPool::new(2);
        let got = pool
            .map(sum_of_squares_on_threads, [10, 100, 1000])
            .unwrap();
        let want = |n: u64| (0..n).map(|x| x * x).sum::<u64>();
        assert_eq!(got[0].0, want(10));
        assert_eq!(got[1].0, want(100));
        assert_eq!(got[2].0, want(1000));
        assert!(got.iter().all(|&(_, p)| p != std::process::id()));
    });
}

/// Engine check under `initializer_failure_breaks_the_pool`: with two workers whose
/// initializer fails, every task must fail as a broken pool (Python's
/// `BrokenProcessPool`), whichever worker it was handed to.
///
/// Tasks handed to a worker before its initializer failed fail as broken too.
#[test]
fn every_task_of_a_pool_whose_initializer_fails_is_broken() {
    within(LIMIT, "initializer failure, executor", || {
        for round in 0..5 {
            let exec = ProcessPoolExecutor::builder()
                .max_workers(2)
                .initializer(failing_init, ())
                .build();
            for i in 0..10 {
                let r = exec.call(sqr, i).and_then(|f| f.result());
                let e = r.unwrap_err();
                assert!(e.is_broken_executor(), "round {round}, task {i}: {e}");
            }
        }
    });
}

// ---- an initializer whose argument carries descriptors (Python's everyday
// `Pool(initializer=f, initargs=(shared_value, lock, queue))`) ----------------------

type Shared = (
    concur_process::Value<u64>,
    concur_process::Lock,
    concur_process::Queue<u32>,
);

static SHARED: std::sync::OnceLock<Shared> = std::sync::OnceLock::new();

fn keep_shared(s: Shared) {
    let _ = SHARED.set(s);
}

/// Under the shared lock, adds one to the shared value and says so on the queue.
fn count_in(x: u32) -> u32 {
    let (value, lock, queue) = SHARED.get().expect("the initializer ran");
    let _g = lock
        .acquire()
        .unwrap_or_else(concur_process::sync::OwnerDied::into_inner);
    value.set(value.get() + 1);
    queue.put(x).unwrap();
    x
}

#[test]
fn an_initializer_argument_may_carry_descriptors() {
    within(LIMIT, "initializer with descriptors", || {
        let value = concur_process::Value::new(0u64).unwrap();
        let lock = concur_process::Lock::new().unwrap();
        let queue = concur_process::Queue::<u32>::new(0).unwrap();
        let exec = ProcessPoolExecutor::builder()
            .max_workers(2)
            .initializer(keep_shared, (value.clone(), lock, queue.clone()))
            .build();
        let pool = ProcessPool::with_executor(exec);
        let got = pool
            .map_with(count_in, 0..20, MapOptions::new().chunksize(1))
            .unwrap();
        assert_eq!(got, (0..20).collect::<Vec<_>>());
        assert_eq!(value.get(), 20, "every task counted in the shared value");
        let mut seen: Vec<u32> = (0..20).map(|_| queue.get_timeout(LIMIT).unwrap()).collect();
        seen.sort();
        assert_eq!(seen, (0..20).collect::<Vec<_>>());
        pool.close();
        pool.join().unwrap();
    });
}

/// Serializes as an error, whatever the serializer.
struct Unsendable;

impl serde::Serialize for Unsendable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("this value stays here"))
    }
}

impl<'de> serde::Deserialize<'de> for Unsendable {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Ok(Unsendable)
    }
}

fn take_unsendable(_: Unsendable) {}

#[test]
fn an_unusable_initializer_argument_is_reported_when_the_pool_is_built() {
    let e = ProcessPoolExecutor::builder()
        .initializer(take_unsendable, Unsendable)
        .try_build()
        .unwrap_err();
    assert!(e.is_serialization(), "{e}");
    assert!(e.to_string().contains("initializer"), "{e}");
    assert!(
        e.to_string().contains("this value stays here"),
        "the cause: {e}"
    );
    let panic = std::panic::catch_unwind(|| {
        ProcessPoolExecutor::builder()
            .initializer(take_unsendable, Unsendable)
            .build()
    })
    .unwrap_err();
    let msg = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .unwrap_or_default();
    assert!(msg.contains("this value stays here"), "{msg}");
}
