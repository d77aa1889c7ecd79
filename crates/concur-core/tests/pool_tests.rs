//! Tests of `concur_core::futures::ThreadPool`, ported in behaviour (not text) from the
//! `_TestPool` cases of CPython's `Lib/test/_test_multiprocessing.py` (run there for
//! `multiprocessing.pool.ThreadPool` as the "threads" flavour): apply, map, starmap,
//! their async forms, imap, imap_unordered, timeouts, empty inputs, close/join/
//! terminate; plus the progress hook and concur's nested-use and no-loss rules.

mod common;

use common::{LIMIT, within};
use concur_core::futures::{MapOptions, Progress, TaskError, ThreadPool};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Sizes are scaled down under Miri.
fn n(full: usize, miri: usize) -> usize {
    if cfg!(miri) { miri } else { full }
}

fn sqr(x: u64) -> u64 {
    x * x
}

fn sqr_slow(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(x % 3));
    x * x
}

#[test]
fn apply() {
    within(LIMIT, "apply", || {
        let pool = ThreadPool::new(4);
        assert_eq!(pool.apply(|| sqr(5)).unwrap(), 25);
        let e = pool.apply(|| -> u64 { panic!("apply boom") }).unwrap_err();
        assert_eq!(e.panic_message(), Some("apply boom"));
    });
}

#[test]
fn a_task_panic_carries_its_location() {
    within(LIMIT, "panic location", || {
        let pool = ThreadPool::new(1);
        let e = pool.apply(|| -> u8 { panic!("where") }).unwrap_err();
        let at = e
            .panic_location()
            .expect("a location for a pool task panic");
        assert!(at.contains("pool_tests.rs"), "{at}");
        // Also for each item of a map.
        let e = pool
            .map(|x: u8| if x == 1 { panic!("item") } else { x }, [0, 1])
            .unwrap_err();
        assert!(
            e.panic_location()
                .is_some_and(|l| l.contains("pool_tests.rs"))
        );
    });
}

#[test]
fn map_matches_sequential_map() {
    within(LIMIT, "map", || {
        let pool = ThreadPool::new(4);
        let k = n(10, 10) as u64;
        assert_eq!(
            pool.map(sqr, 0..k).unwrap(),
            (0..k).map(sqr).collect::<Vec<_>>()
        );
        let k = n(100, 20) as u64;
        let got = pool
            .map_with(sqr, 0..k, MapOptions::new().chunksize(100))
            .unwrap();
        assert_eq!(got, (0..k).map(sqr).collect::<Vec<_>>());
        // An input without a known length (chunk size falls back to 1).
        let got = pool.map(sqr, (0..k).filter(|x| x % 2 == 0)).unwrap();
        assert_eq!(got.len(), k as usize / 2);
    });
}

#[test]
fn map_returns_the_first_error_by_position() {
    within(LIMIT, "map errors", || {
        let pool = ThreadPool::new(2);
        let f = |x: i64| {
            if x < 0 {
                panic!("negative: {x}");
            }
            x
        };
        let e = pool
            .map_with(f, [1, 2, -3, 4, -5], MapOptions::new().chunksize(1))
            .unwrap_err();
        assert_eq!(e.panic_message(), Some("negative: -3"));
        // The pool is fine afterwards.
        assert_eq!(pool.map(f, [7]).unwrap(), [7]);
    });
}

#[test]
fn starmap_and_starmap_async() {
    within(LIMIT, "starmap", || {
        let pool = ThreadPool::new(3);
        let tasks: Vec<(u32, u32)> = (0..10).zip((0..10).rev()).collect();
        let want: Vec<u32> = tasks.iter().map(|(a, b)| a * b).collect();
        assert_eq!(
            pool.starmap(|a: u32, b: u32| a * b, tasks.clone()).unwrap(),
            want
        );
        let r = pool.starmap_async(|a: u32, b: u32| a * b, tasks).unwrap();
        assert_eq!(r.get().unwrap(), want);
        let three = pool
            .starmap(
                |a: u8, b: String, c: bool| format!("{a}{b}{c}"),
                [(1, "x".to_string(), true)],
            )
            .unwrap();
        assert_eq!(three, ["1xtrue"]);
    });
}

#[test]
fn map_async_and_its_errors() {
    within(LIMIT, "map_async", || {
        let pool = ThreadPool::new(4);
        let r = pool.map_async(sqr, 0..10).unwrap();
        assert_eq!(
            r.get_timeout(LIMIT).unwrap(),
            (0..10).map(sqr).collect::<Vec<_>>()
        );
        assert_eq!(r.successful(), Some(true));

        let r = pool
            .map_async_with(
                |x: u32| if x % 4 == 3 { panic!("bad {x}") } else { x },
                0..20,
                MapOptions::new().chunksize(2),
            )
            .unwrap();
        let e = r.get().unwrap_err();
        assert_eq!(
            e.panic_message(),
            Some("bad 3"),
            "the first failing position"
        );
        assert_eq!(r.successful(), Some(false));
    });
}

#[test]
fn map_async_result_is_delivered_through_a_callback() {
    within(LIMIT, "map_async callback", || {
        let pool = ThreadPool::new(2);
        let got = Arc::new(Mutex::new(None));
        let g = got.clone();
        let r = pool.map_async(sqr, 0..5).unwrap();
        r.add_done_callback(move |f| *g.lock().unwrap() = Some(f.result().unwrap()));
        pool.close();
        pool.join().unwrap();
        assert_eq!(got.lock().unwrap().take().unwrap(), [0, 1, 4, 9, 16]);
    });
}

#[test]
fn async_get_times_out_then_completes() {
    within(LIMIT, "async timeout", || {
        let pool = ThreadPool::new(2);
        let r = pool
            .apply_async(|| {
                std::thread::sleep(Duration::from_millis(300));
                1
            })
            .unwrap();
        let t = Instant::now();
        assert!(
            r.get_timeout(Duration::from_millis(20))
                .unwrap_err()
                .is_timeout()
        );
        assert!(t.elapsed() >= Duration::from_millis(20));
        assert!(!r.ready());
        assert_eq!(r.successful(), None, "not ready yet");
        assert!(!r.wait_timeout(Duration::from_millis(1)));
        assert_eq!(r.get().unwrap(), 1);

        let m = pool
            .map_async(
                |x: u64| {
                    std::thread::sleep(Duration::from_millis(300));
                    x
                },
                0..2,
            )
            .unwrap();
        assert!(
            m.get_timeout(Duration::from_millis(20))
                .unwrap_err()
                .is_timeout()
        );
        assert_eq!(m.get().unwrap(), [0, 1]);
    });
}

#[test]
fn imap_is_ordered_and_chunked() {
    within(LIMIT, "imap", || {
        let pool = ThreadPool::new(4);
        let k = n(100, 20) as u64;
        let got: Vec<u64> = pool
            .imap(sqr_slow, 0..k)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, (0..k).map(sqr).collect::<Vec<_>>());
        let got: Vec<u64> = pool
            .imap_with(sqr_slow, 0..k, MapOptions::new().chunksize(7))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, (0..k).map(sqr).collect::<Vec<_>>());
    });
}

#[test]
fn imap_yields_each_error_in_place_and_goes_on() {
    within(LIMIT, "imap errors", || {
        let pool = ThreadPool::new(2);
        let out: Vec<Result<u32, TaskError>> = pool
            .imap(|x: u32| if x == 2 { panic!("two") } else { x }, 0..5)
            .unwrap()
            .collect();
        assert_eq!(out.len(), 5);
        assert!(out[2].as_ref().unwrap_err().is_panic());
        let ok: Vec<u32> = out.into_iter().filter_map(Result::ok).collect();
        assert_eq!(ok, [0, 1, 3, 4]);
    });
}

#[test]
fn imap_over_an_endless_input_reads_a_bounded_amount() {
    within(LIMIT, "imap endless", || {
        let pool = ThreadPool::new(2);
        let pulled = Arc::new(AtomicUsize::new(0));
        let p = pulled.clone();
        let input = (0u64..).inspect(move |_| {
            p.fetch_add(1, Ordering::SeqCst);
        });
        let opts = MapOptions::new().chunksize(3).buffersize(4);
        let first: Vec<u64> = pool
            .imap_with(sqr, input, opts)
            .unwrap()
            .take(10)
            .map(Result::unwrap)
            .collect();
        assert_eq!(first, (0..10).map(sqr).collect::<Vec<_>>());
        assert!(pulled.load(Ordering::SeqCst) <= 10 + 3 * 4 + 3);
    });
}

#[test]
fn imap_unordered_yields_every_result_once() {
    within(LIMIT, "imap_unordered", || {
        let pool = ThreadPool::new(4);
        let k = n(1000, 30) as u64;
        for chunksize in [1, 53] {
            let mut got: Vec<u64> = pool
                .imap_unordered_with(sqr_slow, 0..k, MapOptions::new().chunksize(chunksize))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            got.sort();
            assert_eq!(got, (0..k).map(sqr).collect::<Vec<_>>());
        }
    });
}

#[test]
#[cfg_attr(
    miri,
    ignore = "depends on real sleep timing, which Miri's virtual clock does not keep"
)]
fn imap_unordered_yields_in_completion_order() {
    within(LIMIT, "imap_unordered order", || {
        let pool = ThreadPool::new(2);
        let mut it = pool
            .imap_unordered(
                |ms: u64| {
                    std::thread::sleep(Duration::from_millis(ms));
                    ms
                },
                [400, 1],
            )
            .unwrap();
        assert_eq!(it.next().unwrap().unwrap(), 1, "the fast one first");
        assert_eq!(it.next().unwrap().unwrap(), 400);
        assert!(it.next().is_none());
    });
}

#[test]
fn imap_unordered_errors_and_timeout() {
    within(LIMIT, "imap_unordered errors", || {
        let pool = ThreadPool::new(2);
        let out: Vec<_> = pool
            .imap_unordered(|x: u8| if x == 1 { panic!("one") } else { x }, 0..4)
            .unwrap()
            .collect();
        assert_eq!(out.len(), 4);
        assert_eq!(out.iter().filter(|r| r.is_err()).count(), 1);

        let t = Instant::now();
        let out: Vec<_> = pool
            .imap_unordered_with(
                |_: u8| std::thread::sleep(Duration::from_millis(300)),
                0..4,
                MapOptions::new().timeout(Duration::from_millis(30)),
            )
            .unwrap()
            .collect();
        assert_eq!(out.len(), 1);
        assert!(out[0].as_ref().unwrap_err().is_timeout());
        assert!(t.elapsed() >= Duration::from_millis(30));
    });
}

#[test]
fn empty_inputs() {
    within(LIMIT, "empty", || {
        let pool = ThreadPool::new(2);
        assert!(pool.map(sqr, Vec::new()).unwrap().is_empty());
        assert!(
            pool.map_async(sqr, Vec::new())
                .unwrap()
                .get()
                .unwrap()
                .is_empty()
        );
        assert_eq!(pool.imap(sqr, Vec::new()).unwrap().count(), 0);
        assert_eq!(pool.imap_unordered(sqr, Vec::new()).unwrap().count(), 0);
        assert!(
            pool.starmap(|a: u8, b: u8| a + b, Vec::<(u8, u8)>::new())
                .unwrap()
                .is_empty()
        );
    });
}

#[test]
fn close_then_join_waits_for_queued_work() {
    within(LIMIT, "close/join", || {
        let pool = ThreadPool::new(2);
        let done = Arc::new(AtomicUsize::new(0));
        let rs: Vec<_> = (0..10)
            .map(|_| {
                let d = done.clone();
                pool.apply_async(move || {
                    std::thread::sleep(Duration::from_millis(5));
                    d.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap()
            })
            .collect();
        assert!(
            pool.join().unwrap_err().is_invalid_state(),
            "join before close"
        );
        pool.close();
        assert!(pool.apply(|| ()).unwrap_err().is_shutdown());
        assert!(pool.map(sqr, [1]).unwrap_err().is_shutdown());
        assert!(pool.imap(sqr, [1]).err().unwrap().is_shutdown());
        pool.join().unwrap();
        assert_eq!(done.load(Ordering::SeqCst), 10);
        assert!(rs.iter().all(|r| r.successful() == Some(true)));
    });
}

#[test]
fn imap_started_before_close_still_finishes() {
    within(LIMIT, "imap after close", || {
        let pool = ThreadPool::new(2);
        let it = pool
            .imap_with(sqr, 0..50, MapOptions::new().buffersize(2))
            .unwrap();
        pool.close();
        let got: Vec<u64> = it.map(Result::unwrap).collect();
        assert_eq!(got.len(), 50);
        pool.join().unwrap();
    });
}

#[test]
#[cfg_attr(
    miri,
    ignore = "depends on real sleep timing, which Miri's virtual clock does not keep"
)]
fn terminate_cancels_queued_work_promptly() {
    within(LIMIT, "terminate", || {
        let pool = ThreadPool::new(1);
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let result = pool
            .map_async_with(
                move |_: u32| {
                    r.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(100));
                },
                0..100,
                MapOptions::new().chunksize(1),
            )
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        pool.terminate().unwrap();
        // Promptness shows in what ran (`within` bounds a hang), not in a timing.
        assert!(
            ran.load(Ordering::SeqCst) <= 2,
            "queued tasks were cancelled"
        );
        assert!(result.get().unwrap_err().is_cancelled());
        pool.join().unwrap();
        assert!(pool.apply(|| ()).unwrap_err().is_shutdown());
    });
}

#[test]
fn dropping_the_pool_waits_for_its_work() {
    within(LIMIT, "drop", || {
        let pool = ThreadPool::new(2);
        let rs: Vec<_> = (0..6u64)
            .map(|i| {
                pool.apply_async(move || {
                    std::thread::sleep(Duration::from_millis(10));
                    i
                })
                .unwrap()
            })
            .collect();
        drop(pool);
        let got: Vec<u64> = rs.into_iter().map(|r| r.into_result().unwrap()).collect();
        assert_eq!(got, [0, 1, 2, 3, 4, 5]);
    });
}

#[test]
fn nested_use_of_a_pool_of_one_never_deadlocks() {
    within(LIMIT, "nested", || {
        let pool = Arc::new(ThreadPool::new(1));
        let p = pool.clone();
        let v = pool
            .apply(move || {
                let inner = p.map(sqr, 0..5).unwrap();
                let unordered: u64 = p
                    .imap_unordered(sqr, 0..5)
                    .unwrap()
                    .map(Result::unwrap)
                    .sum();
                let a = p.apply(|| 1).unwrap();
                (inner, unordered, a)
            })
            .unwrap();
        assert_eq!(v, (vec![0, 1, 4, 9, 16], 30, 1));
    });
}

#[test]
fn join_from_a_task_of_its_own_pool_is_an_error() {
    within(LIMIT, "self join", || {
        let pool = Arc::new(ThreadPool::new(2));
        pool.close();
        let p = pool.clone();
        let r = pool.executor().clone();
        let f = concur_core::futures::Executor::submit(&r, move || p.join());
        // Closed pools refuse `apply`, but the executor underneath still takes work
        // until `join`.
        let e = f.unwrap().into_result().unwrap().unwrap_err();
        assert!(e.is_self_wait());
        pool.join().unwrap();
    });
}

#[test]
fn progress_hook_counts_every_item() {
    within(LIMIT, "progress", || {
        let pool = ThreadPool::new(2);
        let k = n(1000, 40);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let opts = MapOptions::new()
            .chunksize(16)
            .progress(move |p: Progress| s.lock().unwrap().push(p));
        let out = pool.map_with(|x: usize| x, 0..k, opts.clone()).unwrap();
        assert_eq!(out.len(), k);
        let calls = std::mem::take(&mut *seen.lock().unwrap());
        assert_eq!(calls.len(), k);
        assert!(calls.iter().all(|p| p.total == Some(k)));
        let dones: HashSet<usize> = calls.iter().map(|p| p.done).collect();
        assert_eq!(dones, (1..=k).collect(), "each count seen once");

        // imap over an input of unknown length: no total.
        let n2 = pool
            .imap_with(|x: usize| x, (0..10).filter(|_| true), opts.clone())
            .unwrap()
            .count();
        assert_eq!(n2, 10);
        let calls = std::mem::take(&mut *seen.lock().unwrap());
        assert_eq!(calls.len(), 10);
        assert!(calls.iter().all(|p| p.total.is_none()));

        // map_async and imap_unordered report too; a panicking hook harms nothing.
        pool.map_async_with(|x: usize| x, 0..10, opts.clone())
            .unwrap()
            .get()
            .unwrap();
        assert_eq!(
            pool.imap_unordered_with(|x: usize| x, 0..10, opts)
                .unwrap()
                .count(),
            10
        );
        assert_eq!(seen.lock().unwrap().len(), 20);
        let bad = MapOptions::new().progress(|_| panic!("hook"));
        assert_eq!(pool.map_with(|x: u8| x, 0..3, bad).unwrap(), [0, 1, 2]);
    });
}

#[test]
fn with_executor_keeps_its_initializer() {
    within(LIMIT, "initializer", || {
        let inits = Arc::new(AtomicUsize::new(0));
        let i = inits.clone();
        let exec = concur_core::futures::ThreadPoolExecutor::builder()
            .max_workers(2)
            .initializer(move || {
                i.fetch_add(1, Ordering::SeqCst);
            })
            .build();
        let pool = ThreadPool::with_executor(exec);
        assert_eq!(pool.map(sqr, 0..20).unwrap().len(), 20);
        pool.close();
        pool.join().unwrap();
        let k = inits.load(Ordering::SeqCst);
        assert!((1..=2).contains(&k), "once per worker, got {k}");
    });
}

#[test]
fn map_slice_borrows_and_keeps_order() {
    within(LIMIT, "map_slice", || {
        let pool = ThreadPool::new(2);
        let k = n(10_000, 200) as u64;
        let xs: Vec<u64> = (0..k).collect();
        let offset = 7; // borrowed by the function
        let out = pool.map_slice(|x| sqr(*x) + offset, &xs).unwrap();
        assert_eq!(out, xs.iter().map(|x| sqr(*x) + 7).collect::<Vec<_>>());
        let out = pool
            .map_slice_with(|x| x + 1, &xs, MapOptions::new().chunksize(3))
            .unwrap();
        assert_eq!(out.len(), xs.len());
        assert!(pool.map_slice(|x: &u8| *x, &[]).unwrap().is_empty());
        assert_eq!(pool.map_slice(|_: &u8| (), &[1, 2, 3]).unwrap().len(), 3);
    });
}

/// Counts live values, so a test can see that failed maps drop exactly what they made.
#[derive(Debug)]
struct Tracked(Arc<AtomicUsize>);

impl Tracked {
    fn new(live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::SeqCst);
        Tracked(live.clone())
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[test]
fn map_slice_failure_reports_the_first_position_and_drops_what_was_made() {
    within(LIMIT, "map_slice failure", || {
        let pool = ThreadPool::new(2);
        let live = Arc::new(AtomicUsize::new(0));
        let xs: Vec<usize> = (0..n(400, 40)).collect();
        let l = live.clone();
        let e = pool
            .map_slice_with(
                move |&x| {
                    if x % 13 == 5 {
                        panic!("bad {x}");
                    }
                    Tracked::new(&l)
                },
                &xs,
                MapOptions::new().chunksize(4),
            )
            .unwrap_err();
        assert_eq!(e.panic_message(), Some("bad 5"));
        assert!(e.panic_location().is_some());
        assert_eq!(
            live.load(Ordering::SeqCst),
            0,
            "every made value dropped once"
        );
        // And a good run keeps every value alive until the caller drops them.
        let l = live.clone();
        let ok = pool.map_slice(move |_| Tracked::new(&l), &xs).unwrap();
        assert_eq!(live.load(Ordering::SeqCst), xs.len());
        drop(ok);
        assert_eq!(live.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn map_slice_on_a_closed_or_terminated_pool() {
    within(LIMIT, "map_slice closed", || {
        let pool = ThreadPool::new(1);
        pool.close();
        assert!(pool.map_slice(|x: &u8| *x, &[1]).unwrap_err().is_shutdown());
        pool.join().unwrap();
    });
}

#[test]
fn map_slice_nested_on_a_pool_of_one() {
    within(LIMIT, "map_slice nested", || {
        let pool = Arc::new(ThreadPool::new(1));
        let p = pool.clone();
        let total = pool
            .apply(move || {
                let xs: Vec<u64> = (0..100).collect();
                p.map_slice(|x| x * 2, &xs).unwrap().iter().sum::<u64>()
            })
            .unwrap();
        assert_eq!(total, 9900);
    });
}

#[test]
fn map_slice_reports_progress() {
    within(LIMIT, "map_slice progress", || {
        let pool = ThreadPool::new(2);
        let most = Arc::new(AtomicUsize::new(0));
        let m = most.clone();
        let xs = vec![1u8; n(1000, 50)];
        let opts = MapOptions::new().progress(move |p| {
            assert_eq!(p.total, Some(xs_len()));
            m.fetch_max(p.done, Ordering::SeqCst);
        });
        fn xs_len() -> usize {
            n(1000, 50)
        }
        pool.map_slice_with(|x| *x, &xs, opts).unwrap();
        assert_eq!(most.load(Ordering::SeqCst), xs.len());
    });
}
