//! The scaling suite: cost against work size, so a reader sees where concur sits
//! against its anchors at every size rather than at one.
//!
//! Three curves, every pool with 2 workers unless the curve is over workers:
//!
//! - `map-1eK` (K = 4…7): `x + 1` over `0..N` through a pool's `map` with default
//!   options, collected in order and checked; ns per item. Subjects: concur
//!   `ThreadPool::map` and `ProcessPool::map`, rayon `into_par_iter().map().collect()`
//!   in a 2-thread pool, sequential `map().collect()`, and Python's
//!   `multiprocessing.Pool(2).map` (a `python3` child timing itself, pool start
//!   excluded as concur's is).
//! - `io-Ww` (W = 1…64 workers): [`IO_TASKS`] tasks that each sleep [`IO_TASK_MS`] ms
//!   (I/O-bound work) through a pool of W workers: concur `ThreadPoolExecutor` (submit
//!   every task, then read every result) and `ProcessPool::map` with chunk size 1
//!   (workers started before the clock); ns per task, beside the ideal
//!   `N × t / W` (written as a note and drawn in the chart; it is arithmetic, not a
//!   measurement).
//! - `start-rss-S` (S = 10 MiB … 1 GiB): start + join of a child running nothing, from
//!   this process grown to a resident size S (an allocation whose every page is
//!   written) with 8 extra threads parked: concur `Process` by `Spawn`, forced `Fork`
//!   and `ForkServer`, and a bare `std::process::Command` exec of this binary (which
//!   std runs through `posix_spawn`); ns per child. Measured first, while the process
//!   is small; the children of the four subjects are interleaved one by one and each
//!   run's figure is the median of its children (see [`start_curve`]).
//!
//! With `--charts DIR` an SVG per curve is written to `DIR` (`map.svg`, `io.svg`,
//! `start.svg`; log-log axes, one line per subject).

use super::adapters::{Family, Origin};
use super::process::{
    PythonScript, Subject, bare_exec, per_op, python_ns, run_subjects, start_join,
};
use super::{Measurement, Stats};
use concur::futures::{Executor, MapOptions, ThreadPool, ThreadPoolExecutor};
use concur::process::{ProcessPool, StartMethod};
use indicatif::ProgressBar;
use rayon::prelude::*;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

/// What the operations are, for the JSON document.
pub(super) const OPERATION: &str = "map-*: one item (x + 1) of a default-options map over N \
     items, collected in order (ns per item); io-*: one task sleeping 1 ms on a pool of W \
     workers (ns per task; ideal = 1 ms / W); start-rss-*: one start + join of a child \
     running nothing from a parent of the given resident size with 8 extra threads (ns per \
     child)";

/// Workers of the map pools.
const WORKERS: usize = 2;
/// Tasks of one `io` run.
const IO_TASKS: u64 = 128;
/// How long each `io` task sleeps.
const IO_TASK_MS: u64 = 1;
/// Extra threads parked while the `start-rss` cases run.
const PARKED_THREADS: usize = 8;

/// The map sizes and their case names.
const MAP_CASES: [(u64, &str); 4] = [
    (10_000, "map-1e4"),
    (100_000, "map-1e5"),
    (1_000_000, "map-1e6"),
    (10_000_000, "map-1e7"),
];
/// The worker counts of the `io` curve and their case names.
const IO_CASES: [(usize, &str); 7] = [
    (1, "io-1w"),
    (2, "io-2w"),
    (4, "io-4w"),
    (8, "io-8w"),
    (16, "io-16w"),
    (32, "io-32w"),
    (64, "io-64w"),
];
/// The parent sizes of the `start-rss` curve (MiB) and their case names.
const RSS_CASES: [(u64, &str); 4] = [
    (10, "start-rss-10MiB"),
    (100, "start-rss-100MiB"),
    (300, "start-rss-300MiB"),
    (1024, "start-rss-1GiB"),
];

/// Sizes of the suite's cases.
#[derive(Debug, Clone, Serialize)]
pub(super) struct ScalingSizes {
    /// Items of each map case.
    pub map_items: Vec<u64>,
    /// Python's map runs only up to this many items.
    pub python_max_items: u64,
    /// Worker counts of the `io` curve.
    pub io_workers: Vec<usize>,
    /// Tasks per `io` run, each sleeping `io_task_ms`.
    pub io_tasks: u64,
    pub io_task_ms: u64,
    /// Parent resident sizes of the `start-rss` curve, MiB.
    pub start_rss_mib: Vec<u64>,
    /// Extra threads running while the parent is grown.
    pub start_threads: usize,
    /// Children started per run (per subject and size).
    pub starts_per_run: u64,
}

impl ScalingSizes {
    /// Full or `--quick` sizes.
    pub(super) fn new(quick: bool) -> Self {
        if quick {
            ScalingSizes {
                map_items: vec![10_000, 100_000],
                python_max_items: 10_000,
                io_workers: vec![1, 8, 64],
                io_tasks: 64,
                io_task_ms: IO_TASK_MS,
                start_rss_mib: vec![10, 100],
                start_threads: PARKED_THREADS,
                starts_per_run: 3,
            }
        } else {
            ScalingSizes {
                map_items: MAP_CASES.iter().map(|c| c.0).collect(),
                python_max_items: 10_000_000,
                io_workers: IO_CASES.iter().map(|c| c.0).collect(),
                io_tasks: IO_TASKS,
                io_task_ms: IO_TASK_MS,
                start_rss_mib: RSS_CASES.iter().map(|c| c.0).collect(),
                start_threads: PARKED_THREADS,
                starts_per_run: 15,
            }
        }
    }
}

fn increment(x: u64) -> u64 {
    x.wrapping_add(1)
}

fn sleep_task(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn case_name<T: PartialEq + Copy>(table: &[(T, &'static str)], key: T) -> &'static str {
    table.iter().find(|c| c.0 == key).map_or("unknown", |c| c.1)
}

/// Checks `out == (0..n).map(increment)`.
fn check_map(who: &str, out: &[u64], n: u64) -> Result<(), String> {
    if out.len() as u64 != n {
        return Err(format!("{who}: {} items, expected {n}", out.len()));
    }
    match out.iter().zip(0..).position(|(&y, x)| y != increment(x)) {
        None => Ok(()),
        Some(i) => Err(format!("{who}: item {i} is {}, expected {}", out[i], i + 1)),
    }
}

fn thread_map(n: u64) -> Result<f64, String> {
    let pool = ThreadPool::new(WORKERS);
    let warm = pool
        .map(increment, 0..WORKERS as u64)
        .map_err(|e| e.to_string())?;
    check_map("warm-up", &warm, WORKERS as u64)?;
    let begin = Instant::now();
    let out = pool.map(increment, 0..n).map_err(|e| e.to_string())?;
    let elapsed = begin.elapsed();
    check_map("ThreadPool::map", &out, n)?;
    Ok(per_op(elapsed, n))
}

fn process_map(n: u64) -> Result<f64, String> {
    let pool = ProcessPool::new(WORKERS);
    let warm = pool
        .map(increment, 0..WORKERS as u64)
        .map_err(|e| e.to_string())?;
    check_map("warm-up", &warm, WORKERS as u64)?;
    let begin = Instant::now();
    let out = pool.map(increment, 0..n).map_err(|e| e.to_string())?;
    let elapsed = begin.elapsed();
    pool.close();
    pool.join().map_err(|e| e.to_string())?;
    check_map("ProcessPool::map", &out, n)?;
    Ok(per_op(elapsed, n))
}

fn rayon_map(n: u64) -> Result<f64, String> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(WORKERS)
        .build()
        .map_err(|e| format!("rayon pool: {e}"))?;
    let begin = Instant::now();
    let out: Vec<u64> = pool.install(|| (0..n).into_par_iter().map(increment).collect());
    let elapsed = begin.elapsed();
    check_map("rayon", &out, n)?;
    Ok(per_op(elapsed, n))
}

fn sequential_map(n: u64) -> Result<f64, String> {
    let begin = Instant::now();
    let out: Vec<u64> = (0..n).map(increment).collect();
    let elapsed = begin.elapsed();
    check_map("sequential", &out, n)?;
    Ok(per_op(elapsed, n))
}

/// `tasks` sleeps through a `ThreadPoolExecutor` of `workers` threads; ns per task.
fn thread_io(workers: usize, tasks: u64, ms: u64) -> Result<f64, String> {
    let pool = ThreadPoolExecutor::new(workers);
    let begin = Instant::now();
    let futures = (0..tasks)
        .map(|_| pool.submit(move || sleep_task(ms)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let mut total = 0;
    for f in &futures {
        total += f.result().map_err(|e| e.to_string())?;
    }
    let elapsed = begin.elapsed();
    pool.shutdown(true, false).map_err(|e| e.to_string())?;
    if total != tasks * ms {
        return Err(format!(
            "thread io: slept {total} ms in all, expected {}",
            tasks * ms
        ));
    }
    Ok(per_op(elapsed, tasks))
}

/// `tasks` sleeps through a `ProcessPool` of `workers` processes (chunk size 1, the
/// workers started by a warm-up map first); ns per task.
fn process_io(workers: usize, tasks: u64, ms: u64) -> Result<f64, String> {
    let pool = ProcessPool::new(workers);
    let one = MapOptions::new().chunksize(1);
    // Every worker busy for 20 ms at once: all of them start before the clock does.
    let warm = pool
        .map_with(sleep_task, vec![20; workers], one.clone())
        .map_err(|e| e.to_string())?;
    if warm.len() != workers {
        return Err(format!("warm-up returned {} items", warm.len()));
    }
    let begin = Instant::now();
    let out = pool
        .map_with(sleep_task, vec![ms; tasks as usize], one)
        .map_err(|e| e.to_string())?;
    let elapsed = begin.elapsed();
    pool.close();
    pool.join().map_err(|e| e.to_string())?;
    if out.iter().sum::<u64>() != tasks * ms {
        return Err("process io: wrong results".to_owned());
    }
    Ok(per_op(elapsed, tasks))
}

/// The ideal time per task of `tasks` tasks of `ms` each on `workers` workers: rounds
/// of `workers` tasks, `ceil(N / W) × t` in all, per task.
fn ideal_io_ns(tasks: u64, ms: u64, workers: usize) -> f64 {
    let rounds = tasks.div_ceil(workers.max(1) as u64);
    (rounds * ms * 1_000_000) as f64 / tasks.max(1) as f64
}

/// Resident bytes of this process (`/proc/self/statm`).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// This process grown to a resident size, with threads parked; undone on drop.
struct Grown {
    _ballast: Vec<u8>,
    stop: Vec<std::sync::mpsc::Sender<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// The resident size reached.
    rss: u64,
}

impl Grown {
    fn to(mib: u64, threads: usize) -> Result<Grown, String> {
        let want = mib << 20;
        let have = resident_bytes();
        let extra = usize::try_from(want.saturating_sub(have)).map_err(|e| e.to_string())?;
        let mut ballast = Vec::<u8>::with_capacity(extra);
        // Written, not zero-allocated: every page must be resident.
        ballast.resize(extra, 0xA5);
        std::hint::black_box(&ballast);
        let mut stop = Vec::new();
        let mut handles = Vec::new();
        for i in 0..threads {
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let h = std::thread::Builder::new()
                .name(format!("parked-{i}"))
                .spawn(move || {
                    let _ = rx.recv();
                })
                .map_err(|e| e.to_string())?;
            stop.push(tx);
            handles.push(h);
        }
        Ok(Grown {
            _ballast: ballast,
            stop,
            threads: handles,
            rss: resident_bytes(),
        })
    }
}

impl Drop for Grown {
    fn drop(&mut self) {
        self.stop.clear();
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
    }
}

/// Runs the suite into `results`; failures go to `errors`, notes (skipped anchors,
/// the ideal of the I/O curve, the sizes reached) to `notes`.
pub(super) fn run_suite(
    sizes: &ScalingSizes,
    runs: u32,
    bar: &ProgressBar,
    results: &mut Vec<Measurement>,
    errors: &mut Vec<String>,
    notes: &mut Vec<String>,
) {
    // Process start first, while this process is still small (the maps leave tens of
    // MiB of heap behind).
    for &mib in &sizes.start_rss_mib {
        let grown = match Grown::to(mib, sizes.start_threads) {
            Ok(g) => g,
            Err(e) => {
                errors.push(format!("scaling: could not grow to {mib} MiB: {e}"));
                continue;
            }
        };
        notes.push(format!(
            "scaling/{}: parent resident {:.0} MiB with {} extra threads",
            case_name(&RSS_CASES, mib),
            grown.rss as f64 / f64::from(1 << 20),
            sizes.start_threads
        ));
        let case = case_name(&RSS_CASES, mib);
        start_curve(case, sizes.starts_per_run, runs, bar, results, errors);
        drop(grown);
    }
    let python = PythonScript::write("scaling", PYTHON, notes);
    let mut subjects = Vec::new();
    for &n in &sizes.map_items {
        subjects.extend(map_subjects(n, python.as_ref(), sizes.python_max_items));
    }
    for &w in &sizes.io_workers {
        let case = case_name(&IO_CASES, w);
        let (tasks, ms) = (sizes.io_tasks, sizes.io_task_ms);
        subjects.push(Subject {
            case,
            name: "concur ThreadPoolExecutor sleep",
            family: Family::Submit,
            origin: Origin::Concur,
            threads: w,
            ops: tasks,
            run: Box::new(move || thread_io(w, tasks, ms)),
        });
        subjects.push(Subject {
            case,
            name: "concur ProcessPool::map sleep",
            family: Family::Submit,
            origin: Origin::Concur,
            threads: w,
            ops: tasks,
            run: Box::new(move || process_io(w, tasks, ms)),
        });
        notes.push(format!(
            "scaling/{case}: ideal N×t/workers = {:.0} ns per task",
            ideal_io_ns(tasks, ms, w)
        ));
    }
    run_subjects("scaling", &subjects, runs, bar, results, errors);
    if let Some(py) = python {
        py.remove();
    }
}

fn map_subjects(n: u64, python: Option<&PythonScript>, python_max: u64) -> Vec<Subject> {
    let case = case_name(&MAP_CASES, n);
    let mut out = Vec::new();
    let mut add = |name, origin, run: fn(u64) -> Result<f64, String>| {
        out.push(Subject {
            case,
            name,
            family: Family::Map,
            origin,
            threads: WORKERS,
            ops: n,
            run: Box::new(move || run(n)),
        });
    };
    add("concur ThreadPool::map", Origin::Concur, thread_map);
    add("concur ProcessPool::map", Origin::Concur, process_map);
    add("rayon par_iter collect", Origin::Rayon, rayon_map);
    add("sequential collect", Origin::Sequential, sequential_map);
    if let Some(py) = python.filter(|_| n <= python_max) {
        let path = py.path.clone();
        out.push(Subject {
            case,
            name: "python3 mp.Pool.map",
            family: Family::Map,
            origin: Origin::Python,
            threads: WORKERS,
            ops: n,
            run: Box::new(move || python_ns(&path, &["map", &n.to_string()])),
        });
    }
    out
}

/// The start subjects of one parent size, interleaved child by child: each run starts
/// `n` children per subject, one of each subject in turn (the order rotated every
/// round; the forced forks after the others, see below), and a run's figure for a
/// subject is the median of its `n` start + join times, so a burst of load on the
/// shared machine hits every subject alike and one slow child does not move the figure.
fn start_curve(
    case: &'static str,
    n: u64,
    runs: u32,
    bar: &ProgressBar,
    results: &mut Vec<Measurement>,
    errors: &mut Vec<String>,
) {
    type One = Box<dyn Fn() -> Result<f64, String>>;
    let subjects: [(&'static str, Origin, One); 4] = [
        (
            "concur Process Spawn",
            Origin::Concur,
            Box::new(|| start_join(StartMethod::Spawn, 1)),
        ),
        (
            "concur Process Fork (forced)",
            Origin::Concur,
            Box::new(|| start_join(StartMethod::Fork { force: true }, 1)),
        ),
        (
            "concur Process ForkServer",
            Origin::Concur,
            Box::new(|| start_join(StartMethod::ForkServer, 1)),
        ),
        (
            "bare std::process::Command exec",
            Origin::Os,
            Box::new(|| bare_exec(1)),
        ),
    ];
    /// The subjects started in turn, child by child, and the one started apart.
    const INTERLEAVED: [usize; 3] = [0, 2, 3];
    const FORK: usize = 1;
    bar.inc_length(u64::from(runs) * subjects.len() as u64);
    let mut per_run: Vec<Vec<f64>> = vec![Vec::new(); subjects.len()];
    for run in 0..runs {
        bar.set_message(format!("{case} run {}/{runs}", run + 1));
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); subjects.len()];
        let mut sample = |i: usize| match (subjects[i].2)() {
            Ok(ns) => samples[i].push(ns),
            Err(e) => errors.push(format!("scaling/{case}/{}: {e}", subjects[i].0)),
        };
        for round in 0..n as usize {
            for k in 0..INTERLEAVED.len() {
                sample(INTERLEAVED[(k + round) % INTERLEAVED.len()]);
            }
        }
        // The forced forks after the others: a forked copy of a large parent is torn
        // down by the kernel after it exits (its page tables freed, tens of ms at 1 GiB),
        // which would land on whichever start came next.
        for _ in 0..n {
            sample(FORK);
        }
        for (i, s) in samples.iter().enumerate() {
            if let Some(st) = Stats::of(s) {
                per_run[i].push(st.median);
            }
        }
        bar.inc(subjects.len() as u64);
    }
    for ((name, origin, _), runs_ns) in subjects.iter().zip(per_run) {
        if runs_ns.is_empty() {
            continue;
        }
        results.push(Measurement {
            suite: "scaling",
            case,
            subject: name,
            family: Family::ProcessStart,
            origin: *origin,
            threads: 1,
            ops_per_run: n,
            runs_ns_per_op: runs_ns,
            median_ns_per_op: f64::NAN,
            median_ops_per_sec: f64::NAN,
            min_ns_per_op: f64::NAN,
            max_ns_per_op: f64::NAN,
        });
    }
}

/// Python's `multiprocessing.Pool(2).map`, timed inside Python after a warm-up.
const PYTHON: &str = r#"
import multiprocessing as mp, sys, time

def increment(x):
    return x + 1

if __name__ == "__main__":
    n = int(sys.argv[2])
    with mp.Pool(2) as p:
        p.map(increment, range(2))  # warm-up, not timed
        t = time.perf_counter()
        out = p.map(increment, range(n))
        el = time.perf_counter() - t
    assert len(out) == n and out[0] == 1 and out[-1] == n, len(out)
    print(el * 1e9 / n)
"#;

// ---- charts ------------------------------------------------------------------------

/// One curve's chart: its cases in x order with their x values, and what x is.
struct Chart {
    file: &'static str,
    title: &'static str,
    x_label: &'static str,
    y_label: &'static str,
    /// (case, x) in x order.
    xs: Vec<(&'static str, f64)>,
    /// Extra reference lines (name, y per x), e.g. the ideal.
    extra: Vec<(String, Vec<f64>)>,
}

/// Writes `map.svg`, `io.svg` and `start.svg` into `dir` from the suite's results.
pub(super) fn write_charts(
    dir: &Path,
    sizes: &ScalingSizes,
    results: &[Measurement],
) -> std::io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let io_ideal: Vec<f64> = sizes
        .io_workers
        .iter()
        .map(|&w| ideal_io_ns(sizes.io_tasks, sizes.io_task_ms, w))
        .collect();
    let charts = [
        Chart {
            file: "map.svg",
            title: "map over N items (x + 1), 2 workers",
            x_label: "items N",
            y_label: "ns per item",
            xs: sizes
                .map_items
                .iter()
                .map(|&n| (case_name(&MAP_CASES, n), n as f64))
                .collect(),
            extra: Vec::new(),
        },
        Chart {
            file: "io.svg",
            title: "sleep(1 ms) tasks on W workers",
            x_label: "workers W",
            y_label: "ns per task",
            xs: sizes
                .io_workers
                .iter()
                .map(|&w| (case_name(&IO_CASES, w), w as f64))
                .collect(),
            extra: vec![("ideal N×t/W".to_owned(), io_ideal)],
        },
        Chart {
            file: "start.svg",
            title: "start + join of a child, by parent resident size (+8 threads)",
            x_label: "parent RSS, MiB",
            y_label: "ns per child",
            xs: sizes
                .start_rss_mib
                .iter()
                .map(|&m| (case_name(&RSS_CASES, m), m as f64))
                .collect(),
            extra: Vec::new(),
        },
    ];
    let mut written = Vec::new();
    for c in &charts {
        let mut series: Vec<(String, Vec<f64>)> = Vec::new();
        for m in results.iter().filter(|m| m.suite == "scaling") {
            let Some(i) = c.xs.iter().position(|(case, _)| *case == m.case) else {
                continue;
            };
            let s = match series.iter_mut().find(|(n, _)| n == m.subject) {
                Some(s) => s,
                None => {
                    series.push((m.subject.to_owned(), vec![f64::NAN; c.xs.len()]));
                    series.last_mut().expect("just pushed")
                }
            };
            s.1[i] = m.median_ns_per_op;
        }
        series.extend(c.extra.iter().cloned());
        let x: Vec<f64> = c.xs.iter().map(|p| p.1).collect();
        let path = dir.join(c.file);
        std::fs::write(&path, svg(c, &x, &series))?;
        written.push(path);
    }
    Ok(written)
}

const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f",
];

/// A log-log line chart: one polyline per series (NaN points skipped), decade grid,
/// legend at the right.
fn svg(c: &Chart, x: &[f64], series: &[(String, Vec<f64>)]) -> String {
    let (w, h) = (860.0, 460.0);
    let (left, right, top, bottom) = (80.0, 300.0, 40.0, 60.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| s.1.iter().copied())
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{left}" y="24" font-size="15">{}</text>"#,
        escape(c.title)
    );
    let xs_ok: Vec<f64> = x.iter().copied().filter(|v| *v > 0.0).collect();
    if ys.is_empty() || xs_ok.is_empty() {
        let _ = writeln!(out, r#"<text x="{left}" y="80">no data</text></svg>"#);
        return out;
    }
    let decade = |v: f64, up: bool| {
        let l = v.log10();
        if up { l.ceil() } else { l.floor() }
    };
    let (x0, mut x1) = (decade(min(&xs_ok), false), decade(max(&xs_ok), true));
    let (y0, mut y1) = (decade(min(&ys), false), decade(max(&ys), true));
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    let px = |v: f64| left + (v.log10() - x0) / (x1 - x0) * pw;
    let py = |v: f64| top + ph - (v.log10() - y0) / (y1 - y0) * ph;
    // Grid and axis labels, one per decade.
    let mut d = x0;
    while d <= x1 {
        let xv = px(10f64.powf(d));
        let _ = writeln!(
            out,
            r##"<line x1="{xv:.1}" y1="{top}" x2="{xv:.1}" y2="{:.1}" stroke="#ddd"/><text x="{xv:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            top + ph,
            top + ph + 18.0,
            short(10f64.powf(d))
        );
        d += 1.0;
    }
    let mut d = y0;
    while d <= y1 {
        let yv = py(10f64.powf(d));
        let _ = writeln!(
            out,
            r##"<line x1="{left}" y1="{yv:.1}" x2="{:.1}" y2="{yv:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            left + pw,
            left - 6.0,
            yv + 4.0,
            short(10f64.powf(d))
        );
        d += 1.0;
    }
    let _ = writeln!(
        out,
        r##"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>"##
    );
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        left + pw / 2.0,
        h - 18.0,
        escape(c.x_label)
    );
    let _ = writeln!(
        out,
        r#"<text x="18" y="{:.1}" transform="rotate(-90 18 {:.1})" text-anchor="middle">{}</text>"#,
        top + ph / 2.0,
        top + ph / 2.0,
        escape(c.y_label)
    );
    for (i, (name, vals)) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let dash = if name.starts_with("ideal") {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let pts: Vec<(f64, f64)> = x
            .iter()
            .zip(vals)
            .filter(|(xv, yv)| **xv > 0.0 && yv.is_finite() && **yv > 0.0)
            .map(|(&xv, &yv)| (px(xv), py(yv)))
            .collect();
        let line: Vec<String> = pts.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"{dash}/>"#,
            line.join(" ")
        );
        for (a, b) in &pts {
            let _ = writeln!(
                out,
                r#"<circle cx="{a:.1}" cy="{b:.1}" r="3" fill="{color}"/>"#
            );
        }
        let ly = top + 10.0 + i as f64 * 20.0;
        let lx = left + pw + 16.0;
        let _ = writeln!(
            out,
            r#"<line x1="{lx}" y1="{ly}" x2="{:.1}" y2="{ly}" stroke="{color}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 22.0,
            lx + 28.0,
            ly + 4.0,
            escape(name)
        );
    }
    out.push_str("</svg>\n");
    out
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// A power of ten as a short label: 1, 10, 100, 1k … 1G.
fn short(v: f64) -> String {
    let r = v.round();
    for (div, suffix) in [(1e9, "G"), (1e6, "M"), (1e3, "k")] {
        if r >= div {
            return format!("{}{suffix}", r / div);
        }
    }
    if v < 1.0 {
        format!("{v}")
    } else {
        format!("{r}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::bench::within_a_minute as within;

    #[test]
    fn every_map_subject_checks_its_output() {
        within("scaling maps", || {
            for run in [thread_map, process_map, rayon_map, sequential_map] {
                assert!(run(10_000).expect("map") > 0.0);
            }
        });
        assert!(check_map("x", &[1, 2, 4], 3).is_err());
        assert!(check_map("x", &[1, 2], 3).is_err());
    }

    #[test]
    fn io_tasks_take_at_least_their_ideal() {
        within("scaling io", || {
            // Lower bounds only: 8 tasks of 2 ms on 2 workers take ≥ 8 ms in all.
            assert!(thread_io(2, 8, 2).expect("thread io") >= 1e6);
            assert!(process_io(2, 8, 2).expect("process io") >= 1e6);
        });
    }

    #[test]
    fn growing_reaches_the_size_and_parks_threads() {
        // Other tests of this binary allocate and free beside this one, so the
        // process's RSS before and after is no measure; the ballast is: written page by
        // page, all of it is resident.
        let before = resident_bytes();
        let g = Grown::to(before / (1 << 20) + 32, 2).expect("grow");
        let ballast = g._ballast.len() as u64;
        assert!(
            ballast >= 16 << 20,
            "ballast of only {ballast} bytes for 32 MiB more"
        );
        assert!(
            g.rss >= ballast,
            "{ballast} bytes written but RSS {}",
            g.rss
        );
        assert_eq!(g.threads.len(), 2);
        drop(g);
    }

    #[test]
    fn charts_are_svg_with_a_line_per_subject() {
        let sizes = ScalingSizes::new(true);
        let m = |case, subject, ns| Measurement {
            suite: "scaling",
            case,
            subject,
            family: Family::Map,
            origin: Origin::Concur,
            threads: 2,
            ops_per_run: 1,
            runs_ns_per_op: vec![ns],
            median_ns_per_op: ns,
            median_ops_per_sec: 1e9 / ns,
            min_ns_per_op: ns,
            max_ns_per_op: ns,
        };
        let results = vec![
            m("map-1e4", "a", 50.0),
            m("map-1e5", "a", 40.0),
            m("map-1e4", "b", 5.0),
        ];
        let dir = std::env::temp_dir().join(format!("concur-scaling-{}", std::process::id()));
        let files = write_charts(&dir, &sizes, &results).expect("charts");
        assert_eq!(files.len(), 3);
        let map = std::fs::read_to_string(&files[0]).expect("map.svg");
        assert!(map.starts_with("<svg"));
        assert_eq!(map.matches("<polyline").count(), 2);
        let io = std::fs::read_to_string(&files[1]).expect("io.svg");
        assert!(io.contains("ideal"), "{io}");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
