//! The futures suite: concur's `ThreadPoolExecutor` beside rayon, the `threadpool`
//! crate, `std::thread::spawn`, sequential code and CPython's
//! `concurrent.futures.ThreadPoolExecutor`.
//!
//! The cases, every pool with 2 worker threads:
//!
//! - `submit-result`: submit N trivial tasks (`i * 3 + 1`), then wait for the result of
//!   each in submission order, and check the sum. Every subject does exactly this
//!   shape: concur `submit` + `Future::result`; rayon `ThreadPool::spawn` and the
//!   threadpool crate's `execute`, each sending its value through a
//!   crossbeam-channel `bounded(1)` one-shot; Python `submit` + `result()`.
//!   `std::thread::spawn` + `join` runs fewer tasks (a thread per task is slow and a
//!   thread holds its stack until joined) in windows of [`THREAD_WINDOW`] threads.
//! - `map-collect`: map a trivial function (`x * 2 + 1`) over a `Vec<u64>` of N items
//!   and collect the results in order into a `Vec`, checked against the sequential
//!   result: concur `ThreadPool::map_slice` (the borrowed-slice form, workers writing
//!   into the output, like rayon) and the lazy, ordered `Executor::map` (default
//!   options, and two fixed chunk sizes, see [`map_subjects`]), rayon
//!   `par_iter().map().collect()` inside a 2-thread pool, and plain sequential
//!   `iter().map().collect()`.
//! - `map-hash64-1e4`, `map-hash64-1e6` (issue 15): the lazy ordered map with default
//!   options over an iterator, items of about 100 ns ([`hash64`]), beside rayon and
//!   sequential code (see [`hash_subjects`]).
//! - `map-slice-1e4` … `map-slice-1e6` (issue 15): `ThreadPool::map_slice` beside rayon
//!   at the sizes below `map-collect`'s (see [`slice_subjects`]).
//!
//! Pools are built before the clock starts and dropped after it stops (concur's workers
//! start lazily, on the first submits, inside the timed region; in the issue-15 cases
//! they are started before the clock, as rayon's are). The reference anchor is rayon,
//! and Python for `submit-result`.

use super::adapters::{Family, Origin};
use super::{Measurement, Stats};
use concur::futures::{Executor, MapOptions, ThreadPool, ThreadPoolExecutor};
use indicatif::ProgressBar;
use rayon::prelude::*;
use serde::Serialize;
use std::process::Command;
use std::time::{Duration, Instant};

/// What one measured operation is, for the JSON document.
pub(super) const OPERATION: &str = "submit-result: one trivial task submitted and its result read \
                             (time per task); map-*: one item mapped and collected in \
                             order (time per item)";

/// Worker threads of every pool.
const WORKERS: usize = 2;
/// `std::thread::spawn` runs this many threads at a time before joining them.
pub(super) const THREAD_WINDOW: u64 = 256;
/// The read-ahead bound of concur's map: chunks in flight.
const MAP_BUFFERSIZE: usize = 16;
/// The chunk size of concur's tuned map subject.
pub(super) const MAP_TUNED_CHUNKSIZE: usize = 16_384;

/// One futures case.
#[derive(Debug, Clone, Serialize)]
pub(super) struct FuturesCase {
    /// `submit-result` or `map-collect`.
    pub name: &'static str,
    /// Tasks (submit-result) or items (map-collect) per run, for the pools.
    pub items: u64,
    /// Tasks per run for `std::thread::spawn` (submit-result only).
    pub thread_items: u64,
    /// Tasks per run for Python (submit-result only; 0: not run).
    pub python_items: u64,
}

/// The cases at full or `--quick` sizes.
pub(super) fn cases(quick: bool) -> Vec<FuturesCase> {
    let map = |name, items| FuturesCase {
        name,
        items,
        thread_items: 0,
        python_items: 0,
    };
    let mut cases = vec![
        FuturesCase {
            name: "submit-result",
            items: if quick { 20_000 } else { 200_000 },
            thread_items: if quick { 2_000 } else { 20_000 },
            python_items: if quick { 5_000 } else { 200_000 },
        },
        map("map-collect", if quick { 1_000_000 } else { 10_000_000 }),
        map("map-hash64-1e4", 10_000),
        map("map-hash64-1e6", if quick { 100_000 } else { 1_000_000 }),
    ];
    // `map_slice` at every size below map-collect's (which covers the largest).
    let slices: &[(&'static str, u64)] = if quick {
        &[("map-slice-1e4", 10_000), ("map-slice-1e5", 100_000)]
    } else {
        &[
            ("map-slice-1e4", 10_000),
            ("map-slice-1e5", 100_000),
            ("map-slice-1e6", 1_000_000),
        ]
    };
    cases.extend(slices.iter().map(|&(name, n)| map(name, n)));
    cases
}

/// The trivial task of `submit-result`.
#[inline]
fn task(i: u64) -> u64 {
    i.wrapping_mul(3).wrapping_add(1)
}

/// The trivial function of `map-collect`.
#[inline]
fn double_plus_one(x: u64) -> u64 {
    x.wrapping_mul(2).wrapping_add(1)
}

/// About 100 ns of work: 64 rounds of a multiply-rotate-xor hash (a dependency chain
/// the compiler cannot shorten or vectorise).
#[inline]
fn hash64(x: u64) -> u64 {
    let mut h = x;
    for i in 0..64u64 {
        h = (h ^ i).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
    }
    h
}

/// The sum of `task(i)` for `i` in `0..n`.
fn expected_sum(n: u64) -> u64 {
    (0..n).fold(0u64, |s, i| s.wrapping_add(task(i)))
}

fn check_sum(who: &str, got: u64, n: u64) -> Result<(), String> {
    let want = expected_sum(n);
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "{who} submit-result: wrong sum {got}, expected {want}"
        ))
    }
}

/// A map run's time and output.
type MapRun = Result<(Duration, Vec<u64>), String>;

/// One subject of a case: how to run it once.
struct Subject {
    name: &'static str,
    origin: Origin,
    /// Operations per run.
    ops: u64,
    run: Box<dyn Fn() -> Result<Duration, String>>,
}

// ---- submit-result -----------------------------------------------------------------------

fn concur_submit(n: u64) -> Result<Duration, String> {
    let pool = ThreadPoolExecutor::new(WORKERS);
    let err = |e: concur::futures::TaskError| format!("concur submit-result: {e}");
    let begin = Instant::now();
    let futures = (0..n)
        .map(|i| pool.submit(move || task(i)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    let mut sum = 0u64;
    for f in &futures {
        sum = sum.wrapping_add(f.result().map_err(err)?);
    }
    let elapsed = begin.elapsed();
    drop(futures);
    drop(pool);
    check_sum("concur", sum, n)?;
    Ok(elapsed)
}

fn rayon_submit(n: u64) -> Result<Duration, String> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(WORKERS)
        .build()
        .map_err(|e| format!("rayon pool: {e}"))?;
    let begin = Instant::now();
    let receivers: Vec<_> = (0..n)
        .map(|i| {
            let (tx, rx) = crossbeam_channel::bounded(1);
            pool.spawn(move || {
                let _ = tx.send(task(i));
            });
            rx
        })
        .collect();
    let mut sum = 0u64;
    for rx in &receivers {
        sum = sum.wrapping_add(rx.recv().map_err(|e| format!("rayon submit-result: {e}"))?);
    }
    let elapsed = begin.elapsed();
    drop(pool);
    check_sum("rayon", sum, n)?;
    Ok(elapsed)
}

fn threadpool_submit(n: u64) -> Result<Duration, String> {
    let pool = threadpool::ThreadPool::new(WORKERS);
    let begin = Instant::now();
    let receivers: Vec<_> = (0..n)
        .map(|i| {
            let (tx, rx) = crossbeam_channel::bounded(1);
            pool.execute(move || {
                let _ = tx.send(task(i));
            });
            rx
        })
        .collect();
    let mut sum = 0u64;
    for rx in &receivers {
        sum = sum.wrapping_add(
            rx.recv()
                .map_err(|e| format!("threadpool submit-result: {e}"))?,
        );
    }
    let elapsed = begin.elapsed();
    pool.join();
    check_sum("threadpool", sum, n)?;
    Ok(elapsed)
}

fn thread_spawn(n: u64) -> Result<Duration, String> {
    let begin = Instant::now();
    let mut sum = 0u64;
    let mut start = 0;
    while start < n {
        let end = (start + THREAD_WINDOW).min(n);
        let handles = (start..end)
            .map(|i| std::thread::Builder::new().spawn(move || task(i)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("std::thread::spawn: {e}"))?;
        for h in handles {
            let v = h
                .join()
                .map_err(|_| "std::thread::spawn: a task panicked".to_owned())?;
            sum = sum.wrapping_add(v);
        }
        start = end;
    }
    let elapsed = begin.elapsed();
    check_sum("std::thread::spawn", sum, n)?;
    Ok(elapsed)
}

/// CPython's `ThreadPoolExecutor(2)`: submit all, then `result()` of each, timed inside
/// Python; prints ns per task.
const PYTHON_SUBMIT: &str = r#"
import sys, time
from concurrent.futures import ThreadPoolExecutor
n = int(sys.argv[1])
def task(i):
    return i * 3 + 1
with ThreadPoolExecutor(2) as ex:
    t = time.perf_counter()
    fs = [ex.submit(task, i) for i in range(n)]
    s = 0
    for f in fs:
        s += f.result()
    el = time.perf_counter() - t
if s != sum(i * 3 + 1 for i in range(n)):
    sys.exit("wrong sum")
print(el * 1e9 / n)
"#;

/// One Python run in ns per task; `Err` (a note) if python3 is missing or failed.
fn python_submit(n: u64) -> Result<f64, String> {
    let out = match Command::new("python3")
        .args(["-c", PYTHON_SUBMIT, &n.to_string()])
        .output()
    {
        Ok(o) => o,
        Err(e) => return Err(format!("python3 not available, Python anchor skipped: {e}")),
    };
    if !out.status.success() {
        return Err(format!(
            "python3 failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse::<f64>()
        .map_err(|e| format!("python3 printed no timing: {e}"))
}

fn submit_subjects(case: &FuturesCase) -> Vec<Subject> {
    let n = case.items;
    let t = case.thread_items;
    vec![
        Subject {
            name: "concur ThreadPoolExecutor",
            origin: Origin::Concur,
            ops: n,
            run: Box::new(move || concur_submit(n)),
        },
        Subject {
            name: "rayon spawn+oneshot",
            origin: Origin::Rayon,
            ops: n,
            run: Box::new(move || rayon_submit(n)),
        },
        Subject {
            name: "threadpool execute+oneshot",
            origin: Origin::Threadpool,
            ops: n,
            run: Box::new(move || threadpool_submit(n)),
        },
        Subject {
            name: "std::thread::spawn+join",
            origin: Origin::Std,
            ops: t,
            run: Box::new(move || thread_spawn(t)),
        },
    ]
}

// ---- map-collect -------------------------------------------------------------------------

/// Python's `Pool.map` default chunk size: `ceil(len / (4 * workers))`.
pub(super) fn python_chunksize(len: usize) -> usize {
    len.div_ceil(4 * WORKERS).max(1)
}

fn concur_map(input: &[u64], chunksize: usize) -> MapRun {
    concur_map_with(
        input,
        double_plus_one,
        MapOptions::new()
            .chunksize(chunksize)
            .buffersize(MAP_BUFFERSIZE),
    )
}

/// Starts every worker of `pool` (concur's start lazily), so that a subject compared
/// with rayon, whose pool starts its threads when built, is timed with its threads up
/// too: `WORKERS` tasks that each wait (1 s at most) until all of them run at once.
fn start_workers(pool: &ThreadPoolExecutor) {
    let running = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = (0..WORKERS)
        .filter_map(|_| {
            let running = running.clone();
            pool.submit(move || {
                running.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let until = Instant::now() + Duration::from_secs(1);
                while running.load(std::sync::atomic::Ordering::SeqCst) < WORKERS
                    && Instant::now() < until
                {
                    std::thread::yield_now();
                }
            })
            .ok()
        })
        .collect();
    for t in tasks {
        let _ = t.result();
    }
}

/// The lazy ordered `Executor::map` of `f` over an iterator of the input, with `opts`,
/// its workers started before the clock.
fn concur_map_warm(input: &[u64], f: fn(u64) -> u64, opts: MapOptions) -> MapRun {
    let pool = ThreadPoolExecutor::new(WORKERS);
    start_workers(&pool);
    let begin = Instant::now();
    let out = pool
        .map(f, input.iter().copied(), opts)
        .and_then(|m| m.collect::<Result<Vec<u64>, _>>())
        .map_err(|e| format!("concur map: {e}"))?;
    let elapsed = begin.elapsed();
    drop(pool);
    Ok((elapsed, out))
}

/// `ThreadPool::map_slice` with its workers started before the clock.
fn concur_map_slice_warm(input: &[u64]) -> MapRun {
    let pool = ThreadPool::new(WORKERS);
    start_workers(pool.executor());
    let begin = Instant::now();
    let out = pool
        .map_slice(|&x| double_plus_one(x), input)
        .map_err(|e| format!("concur map_slice: {e}"))?;
    let elapsed = begin.elapsed();
    drop(pool);
    Ok((elapsed, out))
}

/// The lazy ordered `Executor::map` of `f` over an iterator of the input, with `opts`.
fn concur_map_with(input: &[u64], f: fn(u64) -> u64, opts: MapOptions) -> MapRun {
    let pool = ThreadPoolExecutor::new(WORKERS);
    let begin = Instant::now();
    let out = pool
        .map(f, input.iter().copied(), opts)
        .and_then(|m| m.collect::<Result<Vec<u64>, _>>())
        .map_err(|e| format!("concur map-collect: {e}"))?;
    let elapsed = begin.elapsed();
    drop(pool);
    Ok((elapsed, out))
}

/// `ThreadPool::map_slice`: the borrowed-slice form, workers writing into the output.
fn concur_map_slice(input: &[u64]) -> MapRun {
    let pool = ThreadPool::new(WORKERS);
    let begin = Instant::now();
    let out = pool
        .map_slice(|&x| double_plus_one(x), input)
        .map_err(|e| format!("concur map_slice: {e}"))?;
    let elapsed = begin.elapsed();
    drop(pool);
    Ok((elapsed, out))
}

fn rayon_map(input: &[u64]) -> MapRun {
    rayon_map_with(input, double_plus_one)
}

fn rayon_map_with(input: &[u64], f: fn(u64) -> u64) -> MapRun {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(WORKERS)
        .build()
        .map_err(|e| format!("rayon pool: {e}"))?;
    let begin = Instant::now();
    let out: Vec<u64> = pool.install(|| input.par_iter().map(|&x| f(x)).collect());
    Ok((begin.elapsed(), out))
}

fn sequential_map(input: &[u64]) -> MapRun {
    sequential_map_with(input, double_plus_one)
}

fn sequential_map_with(input: &[u64], f: fn(u64) -> u64) -> MapRun {
    let begin = Instant::now();
    let out: Vec<u64> = input.iter().map(|&x| f(x)).collect();
    Ok((begin.elapsed(), out))
}

/// Checks a map's output against the expected one and returns the time.
fn checked(who: &str, r: MapRun, want: &[u64]) -> Result<Duration, String> {
    let (t, out) = r?;
    if out.as_slice() == want {
        Ok(t)
    } else {
        Err(format!(
            "{who} map-collect: wrong output ({} items, expected {})",
            out.len(),
            want.len()
        ))
    }
}

/// concur with Python's `Pool.map` chunk size heuristic and with the tuned chunk size
/// ([`MAP_TUNED_CHUNKSIZE`], the fastest in a sweep of powers of two on the reference
/// machine); rayon; sequential.
fn map_subjects(case: &FuturesCase) -> Vec<Subject> {
    let n = case.items;
    let input: std::rc::Rc<Vec<u64>> = std::rc::Rc::new((0..n).collect());
    let want: std::rc::Rc<Vec<u64>> =
        std::rc::Rc::new(input.iter().map(|&x| double_plus_one(x)).collect());
    let heuristic = python_chunksize(input.len());
    let subject = |name, origin, run: fn(&[u64]) -> MapRun| {
        let (input, want) = (input.clone(), want.clone());
        Subject {
            name,
            origin,
            ops: n,
            run: Box::new(move || checked(name, run(&input), &want)),
        }
    };
    let concur_subject = |name, chunksize: usize| {
        let (input, want) = (input.clone(), want.clone());
        Subject {
            name,
            origin: Origin::Concur,
            ops: n,
            run: Box::new(move || checked(name, concur_map(&input, chunksize), &want)),
        }
    };
    vec![
        subject(
            "concur ThreadPool::map_slice",
            Origin::Concur,
            concur_map_slice,
        ),
        subject("concur map (default)", Origin::Concur, |input| {
            concur_map_with(input, double_plus_one, MapOptions::new())
        }),
        concur_subject("concur map (chunk len/8)", heuristic),
        concur_subject("concur map (chunk 16384)", MAP_TUNED_CHUNKSIZE),
        subject("rayon par_iter collect", Origin::Rayon, rayon_map),
        subject(
            "sequential iter collect",
            Origin::Sequential,
            sequential_map,
        ),
    ]
}

/// `map-hash64-*`: the lazy ordered map with default options over an iterator, items
/// of about 100 ns ([`hash64`]), beside rayon and sequential code. concur's workers are
/// started before the clock, as rayon's are (so are `map-slice-*`'s).
fn hash_subjects(case: &FuturesCase) -> Vec<Subject> {
    let n = case.items;
    let input: std::rc::Rc<Vec<u64>> = std::rc::Rc::new((0..n).collect());
    let want: std::rc::Rc<Vec<u64>> = std::rc::Rc::new(input.iter().map(|&x| hash64(x)).collect());
    let subject = |name, origin, run: fn(&[u64]) -> MapRun| {
        let (input, want) = (input.clone(), want.clone());
        Subject {
            name,
            origin,
            ops: n,
            run: Box::new(move || checked(name, run(&input), &want)),
        }
    };
    vec![
        subject("concur map (default)", Origin::Concur, |input| {
            concur_map_warm(input, hash64, MapOptions::new())
        }),
        subject("rayon par_iter collect", Origin::Rayon, |input| {
            rayon_map_with(input, hash64)
        }),
        subject("sequential iter collect", Origin::Sequential, |input| {
            sequential_map_with(input, hash64)
        }),
    ]
}

/// `map-slice-*`: `ThreadPool::map_slice` of the trivial function beside rayon.
fn slice_subjects(case: &FuturesCase) -> Vec<Subject> {
    let n = case.items;
    let input: std::rc::Rc<Vec<u64>> = std::rc::Rc::new((0..n).collect());
    let want: std::rc::Rc<Vec<u64>> =
        std::rc::Rc::new(input.iter().map(|&x| double_plus_one(x)).collect());
    let subject = |name, origin, run: fn(&[u64]) -> MapRun| {
        let (input, want) = (input.clone(), want.clone());
        Subject {
            name,
            origin,
            ops: n,
            run: Box::new(move || checked(name, run(&input), &want)),
        }
    };
    vec![
        subject(
            "concur ThreadPool::map_slice",
            Origin::Concur,
            concur_map_slice_warm,
        ),
        subject("rayon par_iter collect", Origin::Rayon, rayon_map),
    ]
}

/// The subjects of a case, by its name.
fn subjects(case: &FuturesCase) -> Vec<Subject> {
    match case.name {
        "map-collect" => map_subjects(case),
        name if name.starts_with("map-hash64") => hash_subjects(case),
        name if name.starts_with("map-slice") => slice_subjects(case),
        _ => submit_subjects(case),
    }
}

// ---- the suite ---------------------------------------------------------------------------

fn family(case: &FuturesCase) -> Family {
    if case.name.starts_with("map-") {
        Family::Map
    } else {
        Family::Submit
    }
}

fn measurement(case: &FuturesCase, subject: &'static str, origin: Origin, ops: u64) -> Measurement {
    Measurement {
        suite: "futures",
        case: case.name,
        subject,
        family: family(case),
        origin,
        threads: WORKERS,
        ops_per_run: ops,
        runs_ns_per_op: Vec::new(),
        median_ns_per_op: f64::NAN,
        median_ops_per_sec: f64::NAN,
        min_ns_per_op: f64::NAN,
        max_ns_per_op: f64::NAN,
    }
}

/// How many measurements one run of the suite makes (for the progress bar).
pub(super) fn measurement_count(cases: &[FuturesCase]) -> usize {
    cases
        .iter()
        .map(|c| match (c.name, c.python_items) {
            ("map-collect", _) => 6,
            (name, _) if name.starts_with("map-hash64") => 3,
            (name, _) if name.starts_with("map-slice") => 2,
            (_, 0) => 4,
            _ => 5,
        })
        .sum()
}

/// Runs every (case, subject) pair `runs` times, interleaved, into `results`; Python's
/// executor joins the `submit-result` runs when `python3` is installed.
pub(super) fn run_suite(
    cases: &[FuturesCase],
    runs: u32,
    bar: &ProgressBar,
    results: &mut Vec<Measurement>,
    errors: &mut Vec<String>,
    notes: &mut Vec<String>,
) {
    for case in cases {
        bar.set_message(format!("{} preparing", case.name));
        let subjects = subjects(case);
        let first = results.len();
        for s in &subjects {
            results.push(measurement(case, s.name, s.origin, s.ops));
        }
        let mut python = (case.python_items > 0).then(|| {
            measurement(
                case,
                "python3 ThreadPoolExecutor",
                Origin::Python,
                case.python_items,
            )
        });
        for run in 0..runs {
            for (i, s) in subjects.iter().enumerate() {
                bar.set_message(format!("{} {} run {}/{runs}", case.name, s.name, run + 1));
                match (s.run)() {
                    Ok(t) => results[first + i]
                        .runs_ns_per_op
                        .push(t.as_secs_f64() * 1e9 / s.ops as f64),
                    Err(e) => errors.push(e),
                }
                bar.inc(1);
            }
            if let Some(m) = &mut python {
                bar.set_message(format!("{} python3 run {}/{runs}", case.name, run + 1));
                match python_submit(case.python_items) {
                    Ok(ns) => m.runs_ns_per_op.push(ns),
                    Err(e) => {
                        notes.push(e);
                        python = None;
                    }
                }
                bar.inc(1);
            }
        }
        if let Some(m) = python
            && Stats::of(&m.runs_ns_per_op).is_some()
        {
            results.push(m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_heuristic_matches_pool_map() {
        // multiprocessing.Pool: chunksize, extra = divmod(len, 4 * workers); +1 if extra.
        assert_eq!(python_chunksize(10_000_000), 1_250_000);
        assert_eq!(python_chunksize(9), 2);
        assert_eq!(python_chunksize(0), 1);
    }

    #[test]
    fn every_submit_subject_counts_correctly() {
        let case = FuturesCase {
            name: "submit-result",
            items: 500,
            thread_items: 50,
            python_items: 0,
        };
        for s in submit_subjects(&case) {
            (s.run)().unwrap_or_else(|e| panic!("{}: {e}", s.name));
        }
    }

    #[test]
    fn every_map_subject_collects_in_order() {
        let case = FuturesCase {
            name: "map-collect",
            items: 40_000,
            thread_items: 0,
            python_items: 0,
        };
        for s in map_subjects(&case) {
            (s.run)().unwrap_or_else(|e| panic!("{}: {e}", s.name));
        }
    }

    #[test]
    fn every_case_has_as_many_measurements_as_subjects() {
        for quick in [true, false] {
            for case in cases(quick) {
                let python = usize::from(case.python_items > 0);
                assert_eq!(
                    measurement_count(std::slice::from_ref(&case)),
                    subjects(&case).len() + python,
                    "{}",
                    case.name
                );
            }
        }
    }

    #[test]
    fn hash_and_slice_subjects_compute_the_sequential_result() {
        for name in ["map-hash64-1e4", "map-slice-1e4"] {
            let case = FuturesCase {
                name,
                items: 20_000,
                thread_items: 0,
                python_items: 0,
            };
            for s in subjects(&case) {
                (s.run)().unwrap_or_else(|e| panic!("{name} {}: {e}", s.name));
            }
        }
    }
}
