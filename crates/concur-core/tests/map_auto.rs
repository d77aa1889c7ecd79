//! `Executor::map` with default options: the chunk size is chosen from the measured
//! cost of an item (issue 15). Order, errors at their item, the timeout, cancellation
//! of the unread rest on drop, and the bound on read-ahead and memory; and
//! `ThreadPool::map_slice`, whose calling thread takes part in the work.

mod common;

use common::within;

/// The bound of each test: [`common::LIMIT`], and more under Miri, which interprets
/// every item's task some thousand times slower.
const LIMIT: std::time::Duration = if cfg!(miri) {
    std::time::Duration::from_secs(300)
} else {
    common::LIMIT
};
use concur_core::futures::{Executor, MapOptions, ThreadPoolExecutor};
use concur_core::sync::Event;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Stress counts are scaled down under Miri.
fn n(full: usize, miri: usize) -> usize {
    if cfg!(miri) { miri } else { full }
}

#[test]
fn automatic_chunks_grow_for_cheap_items_and_keep_the_order() {
    within(LIMIT, "auto order", || {
        let pool = ThreadPoolExecutor::new(2);
        let k = n(200_000, 60) as u64;
        let mut m = pool
            .map(|x: u64| x.wrapping_mul(3), 0..k, MapOptions::new())
            .unwrap();
        let mut most = m.chunksize();
        let mut want = 0u64;
        while let Some(r) = m.next() {
            assert_eq!(r.unwrap(), want.wrapping_mul(3), "item {want}");
            want += 1;
            most = most.max(m.chunksize());
        }
        assert_eq!(want, k);
        // Items of a few nanoseconds: chunks must have grown past one item (one task
        // per item is what the default used to be). Miri's clock is not a measurement
        // of the real cost, so only the order is checked there.
        if !cfg!(miri) {
            assert!(most > 1, "the chunk size never grew: {most}");
        }
    });
}

#[test]
fn slow_items_stay_one_per_task() {
    within(LIMIT, "auto slow", || {
        let pool = ThreadPoolExecutor::new(2);
        // Each item sleeps at least 2 ms, twenty times the chunk's target duration:
        // no chunk may hold more than one.
        let mut m = pool
            .map(
                |x: u32| {
                    std::thread::sleep(Duration::from_millis(2));
                    x
                },
                0..n(24, 6) as u32,
                MapOptions::new(),
            )
            .unwrap();
        let mut i = 0;
        while let Some(r) = m.next() {
            assert_eq!(r.unwrap(), i);
            assert_eq!(m.chunksize(), 1, "after item {i}");
            i += 1;
        }
    });
}

#[test]
fn a_fixed_chunksize_of_one_is_kept() {
    within(LIMIT, "chunk 1", || {
        let pool = ThreadPoolExecutor::new(2);
        let mut m = pool
            .map(
                |x: u32| x + 1,
                0..n(5_000, 50) as u32,
                MapOptions::new().chunksize(1),
            )
            .unwrap();
        let mut i = 0;
        while let Some(r) = m.next() {
            i += 1;
            assert_eq!(r.unwrap(), i);
            assert_eq!(m.chunksize(), 1);
        }
    });
}

#[test]
fn an_error_surfaces_at_its_item_and_the_rest_goes_on() {
    within(LIMIT, "auto errors", || {
        let pool = ThreadPoolExecutor::new(2);
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let k = n(50_000, 60);
        let bad = [k / 3, k / 3 + 1, k - 1];
        let out: Vec<_> = pool
            .map(
                move |x: usize| {
                    r.fetch_add(1, Ordering::Relaxed);
                    assert!(!bad.contains(&x), "bad item {x}");
                    x
                },
                0..k,
                MapOptions::new(),
            )
            .unwrap()
            .collect();
        assert_eq!(out.len(), k);
        for (i, r) in out.iter().enumerate() {
            if bad.contains(&i) {
                let e = r.as_ref().unwrap_err();
                assert!(e.is_panic(), "item {i}: {e}");
                assert_eq!(e.panic_message(), Some(format!("bad item {i}").as_str()));
            } else {
                assert_eq!(r.as_ref().unwrap(), &i);
            }
        }
        // Every item's function ran, the failing ones and those after them.
        assert_eq!(ran.load(Ordering::Relaxed), k);
    });
}

#[test]
#[cfg_attr(miri, ignore = "needs real time: Miri is too slow for a 100 ms budget")]
fn the_timeout_ends_the_map_once_with_the_results_before_it_in_order() {
    within(LIMIT, "auto timeout", || {
        let pool = ThreadPoolExecutor::new(2);
        let gate = Event::new();
        let g = gate.clone();
        let started = Arc::new(AtomicUsize::new(0));
        let s = started.clone();
        let t0 = Instant::now();
        let mut it = pool
            .map(
                move |x: u32| {
                    s.fetch_add(1, Ordering::Relaxed);
                    if x == 5_000 {
                        g.wait_timeout(Duration::from_secs(10));
                    }
                    x
                },
                0..1_000_000,
                MapOptions::new().timeout(Duration::from_millis(100)),
            )
            .unwrap();
        let mut next = 0;
        let e = loop {
            match it.next().expect("the map ended without a timeout") {
                Ok(v) => {
                    assert_eq!(v, next);
                    next += 1;
                }
                Err(e) => break e,
            }
        };
        assert!(e.is_timeout(), "{e}");
        assert!(next <= 5_000, "a result after the blocked item: {next}");
        assert!(t0.elapsed() >= Duration::from_millis(100));
        assert!(it.next().is_none());
        drop(it);
        gate.set();
        pool.shutdown(true, false).unwrap();
        // The rest was cancelled: far from every item ran.
        assert!(started.load(Ordering::Relaxed) < 200_000);
    });
}

#[test]
#[cfg_attr(
    miri,
    ignore = "runs tens of thousands of items ahead of the reader: too slow under Miri"
)]
fn dropping_the_iterator_cancels_the_unread_rest() {
    within(LIMIT, "auto drop", || {
        let pool = ThreadPoolExecutor::new(1);
        let pulled = Arc::new(AtomicUsize::new(0));
        let ran = Arc::new(AtomicUsize::new(0));
        let (p, r) = (pulled.clone(), ran.clone());
        let total = 10_000_000u64;
        let input = (0..total).inspect(move |_| {
            p.fetch_add(1, Ordering::Relaxed);
        });
        let mut it = pool
            .map(
                move |x: u64| {
                    r.fetch_add(1, Ordering::Relaxed);
                    x
                },
                input,
                MapOptions::new(),
            )
            .unwrap();
        let read = n(20_000, 100);
        for i in 0..read as u64 {
            assert_eq!(it.next().unwrap().unwrap(), i);
        }
        // Read-ahead is bounded in items, whatever the chunk size became.
        let ahead = pulled.load(Ordering::Relaxed) - read;
        assert!(ahead <= 64 * 1024, "read {ahead} items ahead");
        drop(it);
        pool.shutdown(true, false).unwrap();
        let ran = ran.load(Ordering::Relaxed);
        assert!(ran <= pulled.load(Ordering::Relaxed));
        assert!(ran < read + 64 * 1024, "{ran} items ran after the drop");
    });
}

/// Resident memory of this process in bytes (Linux).
#[cfg(target_os = "linux")]
fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("statm's resident field");
    // The page size is 4 KiB on the machines this runs on; a larger one only makes
    // the measured growth larger (a stricter test), never smaller.
    pages * 4096
}

#[test]
#[cfg(target_os = "linux")]
#[cfg_attr(miri, ignore = "ten million items: far too slow under Miri")]
fn streaming_ten_million_items_keeps_memory_bounded() {
    within(Duration::from_secs(120), "auto rss", || {
        let pool = ThreadPoolExecutor::new(2);
        // Warm up the pool and the allocator's arenas first.
        let warm: u64 = pool
            .map(|x: u64| x, 0..100_000u64, MapOptions::new())
            .unwrap()
            .map(Result::unwrap)
            .sum();
        assert_eq!(warm, 99_999 * 100_000 / 2);
        let before = rss_bytes();
        let mut most = before;
        let mut sum = 0u64;
        for (i, r) in pool
            .map(|x: u64| x ^ 1, 0..10_000_000u64, MapOptions::new())
            .unwrap()
            .enumerate()
        {
            sum = sum.wrapping_add(r.unwrap());
            if i % 65_536 == 0 {
                most = most.max(rss_bytes());
            }
        }
        assert_eq!(sum, (0..10_000_000u64).map(|x| x ^ 1).sum::<u64>());
        let grew = most.saturating_sub(before);
        assert!(grew <= 16 << 20, "RSS grew by {} KiB", grew >> 10);
    });
}

#[test]
fn map_slice_finishes_on_a_pool_whose_workers_are_all_busy() {
    within(LIMIT, "map_slice busy pool", || {
        let pool = concur_core::futures::ThreadPool::new(1);
        let gate = Event::new();
        let g = gate.clone();
        // The only worker is held until the gate opens (or 10 s pass).
        let blocker = pool
            .apply_async(move || {
                g.wait_timeout(Duration::from_secs(10));
            })
            .unwrap();
        let xs: Vec<u64> = (0..n(10_000, 100) as u64).collect();
        let out = pool.map_slice(|x| x * 3, &xs).unwrap();
        assert_eq!(out, xs.iter().map(|x| x * 3).collect::<Vec<_>>());
        // The calling thread did the work itself: the worker is still held.
        assert!(!blocker.ready(), "map_slice waited for the busy worker");
        gate.set();
        blocker.get().unwrap();
    });
}
