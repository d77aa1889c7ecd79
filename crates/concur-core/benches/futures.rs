//! Criterion throughput benchmarks: concur's `ThreadPoolExecutor` beside rayon, the
//! `threadpool` crate, `std::thread::spawn` and sequential code, in one run.
//!
//! Groups (every pool has 2 worker threads, built once per benchmark and reused by its
//! iterations, so these are steady-state figures; `concur bench` builds a fresh pool
//! per run instead):
//!
//! - `futures/submit-result`: one iteration submits [`TASKS`] trivial tasks, then reads
//!   the result of each in order. concur: `submit` + `Future::result`; rayon:
//!   `ThreadPool::spawn` and threadpool: `execute`, each sending its value through a
//!   crossbeam-channel `bounded(1)` one-shot; `std::thread::spawn` + `join` does
//!   [`THREAD_TASKS`] tasks (a thread per task), in windows of 256 threads.
//! - `futures/map-collect`: one iteration maps `x * 2 + 1` over a `Vec<u64>` of
//!   [`ITEMS`] items and collects the results in order into a `Vec`. concur:
//!   `Executor::map` with Python's `Pool.map` chunk size (`len / 8` for 2 workers) and
//!   with 16,384-item chunks; rayon: `par_iter().map().collect()` in its 2-thread pool;
//!   sequential: `iter().map().collect()`.
//!
//! Measurement times are short so the whole file runs in about a minute; CI only
//! smoke-runs it with `cargo bench -p concur-core --bench futures -- --test`.

// `criterion_group!` generates an undocumented `pub fn benches`.
#![allow(missing_docs)]

use concur_core::futures::{Executor, MapOptions, ThreadPool, ThreadPoolExecutor};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rayon::prelude::*;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Tasks per iteration of `submit-result` (pools).
const TASKS: u64 = 10_000;
/// Tasks per iteration of `submit-result` for `std::thread::spawn`.
const THREAD_TASKS: u64 = 1_000;
/// Items per iteration of `map-collect`.
const ITEMS: u64 = 1_000_000;
/// Worker threads of every pool.
const WORKERS: usize = 2;

#[inline]
fn task(i: u64) -> u64 {
    i.wrapping_mul(3).wrapping_add(1)
}

#[inline]
fn double_plus_one(x: u64) -> u64 {
    x.wrapping_mul(2).wrapping_add(1)
}

fn expected(n: u64) -> u64 {
    (0..n).fold(0u64, |s, i| s.wrapping_add(task(i)))
}

fn concur_submit(pool: &ThreadPoolExecutor, n: u64) -> u64 {
    let futures: Vec<_> = (0..n)
        .map(|i| pool.submit(move || task(i)).unwrap())
        .collect();
    futures
        .iter()
        .fold(0u64, |s, f| s.wrapping_add(f.result().unwrap()))
}

fn rayon_submit(pool: &rayon::ThreadPool, n: u64) -> u64 {
    let receivers: Vec<_> = (0..n)
        .map(|i| {
            let (tx, rx) = crossbeam_channel::bounded(1);
            pool.spawn(move || {
                let _ = tx.send(task(i));
            });
            rx
        })
        .collect();
    receivers
        .iter()
        .fold(0u64, |s, rx| s.wrapping_add(rx.recv().unwrap()))
}

fn threadpool_submit(pool: &threadpool::ThreadPool, n: u64) -> u64 {
    let receivers: Vec<_> = (0..n)
        .map(|i| {
            let (tx, rx) = crossbeam_channel::bounded(1);
            pool.execute(move || {
                let _ = tx.send(task(i));
            });
            rx
        })
        .collect();
    receivers
        .iter()
        .fold(0u64, |s, rx| s.wrapping_add(rx.recv().unwrap()))
}

fn thread_submit(n: u64) -> u64 {
    let mut sum = 0u64;
    let mut start = 0;
    while start < n {
        let end = (start + 256).min(n);
        let hs: Vec<_> = (start..end)
            .map(|i| std::thread::spawn(move || task(i)))
            .collect();
        for h in hs {
            sum = sum.wrapping_add(h.join().unwrap());
        }
        start = end;
    }
    sum
}

/// Times `iters` calls of `f`, checking each against `want`.
fn timed(iters: u64, want: u64, mut f: impl FnMut() -> u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        assert_eq!(black_box(f()), want);
    }
    start.elapsed()
}

fn submit_result(c: &mut Criterion) {
    let mut g = c.benchmark_group("futures/submit-result");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1500))
        .throughput(Throughput::Elements(TASKS));
    let want = expected(TASKS);
    let concur = ThreadPoolExecutor::new(WORKERS);
    g.bench_function("concur ThreadPoolExecutor", |b| {
        b.iter_custom(|iters| timed(iters, want, || concur_submit(&concur, TASKS)));
    });
    let rayon = rayon::ThreadPoolBuilder::new()
        .num_threads(WORKERS)
        .build()
        .unwrap();
    g.bench_function("rayon spawn+oneshot", |b| {
        b.iter_custom(|iters| timed(iters, want, || rayon_submit(&rayon, TASKS)));
    });
    let tp = threadpool::ThreadPool::new(WORKERS);
    g.bench_function("threadpool execute+oneshot", |b| {
        b.iter_custom(|iters| timed(iters, want, || threadpool_submit(&tp, TASKS)));
    });
    let want_threads = expected(THREAD_TASKS);
    g.throughput(Throughput::Elements(THREAD_TASKS));
    g.bench_function("std::thread::spawn+join", |b| {
        b.iter_custom(|iters| timed(iters, want_threads, || thread_submit(THREAD_TASKS)));
    });
    g.finish();
}

/// Times `iters` calls of `f` (the output's check and drop are not timed).
fn timed_map(iters: u64, want: &[u64], mut f: impl FnMut() -> Vec<u64>) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        let out = black_box(f());
        total += start.elapsed();
        assert!(out == want, "wrong map output");
    }
    total
}

fn map_collect(c: &mut Criterion) {
    let mut g = c.benchmark_group("futures/map-collect");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1500))
        .throughput(Throughput::Elements(ITEMS));
    let input: Vec<u64> = (0..ITEMS).collect();
    let want: Vec<u64> = input.iter().map(|&x| double_plus_one(x)).collect();
    let concur = ThreadPoolExecutor::new(WORKERS);
    let heuristic = input.len().div_ceil(4 * WORKERS);
    for (name, chunksize) in [
        ("concur map (chunk len/8)", heuristic),
        ("concur map (chunk 16384)", 16_384),
    ] {
        let opts = MapOptions::new().chunksize(chunksize).buffersize(16);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                timed_map(iters, &want, || {
                    concur
                        .map(double_plus_one, input.iter().copied(), opts.clone())
                        .unwrap()
                        .collect::<Result<_, _>>()
                        .unwrap()
                })
            });
        });
    }
    let slices = ThreadPool::new(WORKERS);
    g.bench_function("concur ThreadPool::map_slice", |b| {
        b.iter_custom(|iters| {
            timed_map(iters, &want, || {
                slices.map_slice(|&x| double_plus_one(x), &input).unwrap()
            })
        });
    });
    let rayon = rayon::ThreadPoolBuilder::new()
        .num_threads(WORKERS)
        .build()
        .unwrap();
    g.bench_function("rayon par_iter collect", |b| {
        b.iter_custom(|iters| {
            timed_map(iters, &want, || {
                rayon.install(|| input.par_iter().map(|&x| double_plus_one(x)).collect())
            })
        });
    });
    g.bench_function("sequential iter collect", |b| {
        b.iter_custom(|iters| {
            timed_map(iters, &want, || {
                black_box(&input)
                    .iter()
                    .map(|&x| double_plus_one(x))
                    .collect()
            })
        });
    });
    g.finish();
}

criterion_group!(benches, submit_result, map_collect);
criterion_main!(benches);
