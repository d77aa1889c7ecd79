//! The pool suite: concur's process pools beside CPython's and beside procspawn's.
//!
//! Two cases, every pool with 2 worker processes, every pool started (and its workers
//! warmed by one task each) before the clock starts and shut down after it stops:
//!
//! - `submit-result`: submit N tiny tasks (`x + 1` on a `u64`), then read the result of
//!   each in submission order, and check the sum. Subjects: concur
//!   `ProcessPoolExecutor` (ForkServer start method) `call` + `Future::result`;
//!   Python's `concurrent.futures.ProcessPoolExecutor(2)` `submit` + `result()`;
//!   Python's `multiprocessing.Pool(2)` `apply_async` + `get()`; procspawn's `Pool`
//!   (`Pool::spawn` + `JoinHandle::join`).
//! - `map`: M items (`x + 1` over `0..M`) through a pool's `map` with its default
//!   chunking, collected in order into a list and checked. Subjects: concur
//!   `ProcessPool::map` and Python's `multiprocessing.Pool(2).map` (both cut the input
//!   into `len / (4 × workers)` chunks).
//!
//! Python runs from a script in a `python3` child and times itself (interpreter and
//! pool start excluded, as concur's pool start is); without `python3` its subjects are
//! skipped with a note. The reference anchors are Python (every subject) and procspawn.

use super::Measurement;
use super::adapters::{Family, Origin};
use super::process::{PythonScript, Subject, per_op, python_ns, run_with_python};
use concur::futures::{Executor, TaskError};
use concur::process::{ProcessPool, ProcessPoolExecutor, StartMethod};
use indicatif::ProgressBar;
use serde::Serialize;
use std::time::Instant;

/// What the operations are, for the JSON document.
pub(super) const OPERATION: &str = "submit-result: one tiny task (x + 1 on a u64) submitted to a \
     2-process pool and its result read (time per task); map: one item of a pool map with \
     default chunking, collected in order (time per item)";

/// Worker processes of every pool.
const WORKERS: usize = 2;

/// Sizes of the suite's cases.
#[derive(Debug, Clone, Serialize)]
pub(super) struct PoolSizes {
    /// Tasks per run for concur's `ProcessPoolExecutor`.
    pub submits: u64,
    /// Tasks per run for Python's `ProcessPoolExecutor` (about 10 k/s).
    pub python_executor_submits: u64,
    /// Tasks per run for Python's `Pool.apply_async` (about 23 k/s).
    pub python_apply_submits: u64,
    /// Tasks per run for procspawn's pool (lowered to fit the open-files limit, see
    /// [`procspawn_cap`]).
    pub procspawn_submits: u64,
    /// Items per run of the `map` case (every subject).
    pub map_items: u64,
}

impl PoolSizes {
    /// Full or `--quick` sizes.
    pub(super) fn new(quick: bool) -> Self {
        let sizes = if quick {
            PoolSizes {
                submits: 5_000,
                python_executor_submits: 1_000,
                python_apply_submits: 2_000,
                procspawn_submits: 500,
                map_items: 200_000,
            }
        } else {
            PoolSizes {
                submits: 200_000,
                python_executor_submits: 20_000,
                python_apply_submits: 50_000,
                procspawn_submits: 2_000,
                map_items: 2_000_000,
            }
        };
        PoolSizes {
            procspawn_submits: sizes.procspawn_submits.min(procspawn_cap()),
            ..sizes
        }
    }
}

/// The tiny task of both cases.
fn increment(x: u64) -> u64 {
    x.wrapping_add(1)
}

/// The sum of `increment(i)` for `i` in `0..n`.
fn expected_sum(n: u64) -> u64 {
    n.wrapping_mul(n.wrapping_add(1)) / 2
}

fn check_sum(got: u64, n: u64) -> Result<(), String> {
    let want = expected_sum(n);
    if got == want {
        Ok(())
    } else {
        Err(format!("wrong sum {got}, expected {want}"))
    }
}

fn task_err(e: TaskError) -> String {
    e.to_string()
}

/// Runs the suite into `results`; failures go to `errors`, skipped anchors to `notes`.
pub(super) fn run_suite(
    sizes: &PoolSizes,
    runs: u32,
    bar: &ProgressBar,
    results: &mut Vec<Measurement>,
    errors: &mut Vec<String>,
    notes: &mut Vec<String>,
) {
    let make = |py: Option<&PythonScript>| subjects(sizes, py);
    run_with_python("pool", PYTHON, make, runs, bar, (results, errors, notes));
}

/// Every subject, in display order.
fn subjects(sizes: &PoolSizes, python: Option<&PythonScript>) -> Vec<Subject> {
    let mut out = Vec::new();
    let n = sizes.submits;
    out.push(Subject {
        case: "submit-result",
        name: "concur ProcessPoolExecutor (ForkServer)",
        family: Family::Submit,
        origin: Origin::Concur,
        threads: WORKERS,
        ops: n,
        run: Box::new(move || concur_submit(n)),
    });
    if let Some(py) = python {
        for (name, mode, n) in [
            (
                "python3 ProcessPoolExecutor",
                "executor",
                sizes.python_executor_submits,
            ),
            (
                "python3 mp.Pool.apply_async",
                "apply",
                sizes.python_apply_submits,
            ),
        ] {
            let path = py.path.clone();
            out.push(Subject {
                case: "submit-result",
                name,
                family: Family::Submit,
                origin: Origin::Python,
                threads: WORKERS,
                ops: n,
                run: Box::new(move || python_ns(&path, &[mode, &n.to_string()])),
            });
        }
    }
    let n = sizes.procspawn_submits;
    out.push(Subject {
        case: "submit-result",
        name: "procspawn Pool spawn+join",
        family: Family::Submit,
        origin: Origin::Procspawn,
        threads: WORKERS,
        ops: n,
        run: Box::new(move || procspawn_submit(n)),
    });

    let m = sizes.map_items;
    out.push(Subject {
        case: "map",
        name: "concur ProcessPool::map",
        family: Family::Map,
        origin: Origin::Concur,
        threads: WORKERS,
        ops: m,
        run: Box::new(move || concur_map(m)),
    });
    if let Some(py) = python {
        let path = py.path.clone();
        out.push(Subject {
            case: "map",
            name: "python3 mp.Pool.map",
            family: Family::Map,
            origin: Origin::Python,
            threads: WORKERS,
            ops: m,
            run: Box::new(move || python_ns(&path, &["map", &m.to_string()])),
        });
    }
    out
}

/// `n` tiny tasks through a warmed 2-process `ProcessPoolExecutor`: all submitted,
/// then every result read in order; ns per task.
fn concur_submit(n: u64) -> Result<f64, String> {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(WORKERS)
        .start_method(StartMethod::ForkServer)
        .build();
    // Warm-up, not timed: one task per worker, submitted together so both start.
    let warm = (0..WORKERS as u64)
        .map(|i| pool.call(increment, i))
        .collect::<Result<Vec<_>, _>>()
        .map_err(task_err)?;
    for f in &warm {
        f.result().map_err(task_err)?;
    }
    let begin = Instant::now();
    let futures = (0..n)
        .map(|i| pool.call(increment, i))
        .collect::<Result<Vec<_>, _>>()
        .map_err(task_err)?;
    let mut sum = 0u64;
    for f in &futures {
        sum = sum.wrapping_add(f.result().map_err(task_err)?);
    }
    let elapsed = begin.elapsed();
    drop(futures);
    pool.shutdown(true, false).map_err(task_err)?;
    check_sum(sum, n)?;
    Ok(per_op(elapsed, n))
}

/// `m` items through a warmed 2-process `ProcessPool::map` (default chunking);
/// ns per item.
fn concur_map(m: u64) -> Result<f64, String> {
    let pool = ProcessPool::new(WORKERS);
    // Warm-up, not timed: a map of two items (one chunk each) starts both workers.
    let warm: Vec<u64> = pool.map(increment, 0..WORKERS as u64).map_err(task_err)?;
    if warm.len() != WORKERS {
        return Err(format!("warm-up map returned {} items", warm.len()));
    }
    let begin = Instant::now();
    let out: Vec<u64> = pool.map(increment, 0..m).map_err(task_err)?;
    let elapsed = begin.elapsed();
    pool.close();
    pool.join().map_err(task_err)?;
    let wrong = out.iter().zip(0..).position(|(&y, x)| y != increment(x));
    match (out.len() as u64 == m, wrong) {
        (true, None) => Ok(per_op(elapsed, m)),
        (false, _) => Err(format!("map returned {} items, expected {m}", out.len())),
        (true, Some(i)) => Err(format!("map item {i} is {}, expected {}", out[i], i + 1)),
    }
}

/// How many procspawn tasks may be pending at once: each holds about 3 descriptors
/// (ipc-channel's argument and return channels) until it is joined, and running out
/// makes `Pool::spawn` panic (whose unwinding then hangs in the pool's drop). A quarter
/// of the soft open-files limit, less a margin; 10,000 if the limit cannot be read.
fn procspawn_cap() -> u64 {
    let limit = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|soft| soft.parse::<u64>().ok())
        });
    limit.map_or(10_000, |l| l.saturating_sub(256) / 4).max(16)
}

/// Allows procspawn to run functions by address, once per process.
fn allow_procspawn() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: procspawn asks that no spawned function live in a shared library
        // (it sends a function's offset from its own `init`, valid only within one
        // object). The only function this suite spawns, `increment`, is in this binary.
        unsafe { procspawn::assert_spawn_is_safe() };
    });
}

/// `n` tiny tasks through a warmed 2-process procspawn `Pool`: all spawned, then every
/// handle joined in order; ns per task.
fn procspawn_submit(n: u64) -> Result<f64, String> {
    allow_procspawn();
    let pool = procspawn::Pool::new(WORKERS).map_err(|e| format!("procspawn pool: {e}"))?;
    let run = || -> Result<f64, String> {
        let err = |e: procspawn::SpawnError| format!("procspawn: {e}");
        let warm: Vec<_> = (0..WORKERS as u64)
            .map(|i| pool.spawn(i, increment))
            .collect();
        for h in warm {
            h.join().map_err(err)?;
        }
        let begin = Instant::now();
        let handles: Vec<_> = (0..n).map(|i| pool.spawn(i, increment)).collect();
        let mut sum = 0u64;
        for h in handles {
            sum = sum.wrapping_add(h.join().map_err(err)?);
        }
        let elapsed = begin.elapsed();
        check_sum(sum, n)?;
        Ok(per_op(elapsed, n))
    };
    let result = run();
    pool.shutdown();
    result
}

/// CPython's side, timed inside Python after a warm-up task per worker. The start
/// method is Linux's default (fork, on Python 3.11).
const PYTHON: &str = r#"
import concurrent.futures as cf, multiprocessing as mp, sys, time

def increment(x):
    return x + 1

if __name__ == "__main__":
    mode, n = sys.argv[1], int(sys.argv[2])
    if mode == "executor":
        with cf.ProcessPoolExecutor(2) as ex:
            for f in [ex.submit(increment, i) for i in range(2)]:
                f.result()  # warm-up, not timed
            t = time.perf_counter()
            fs = [ex.submit(increment, i) for i in range(n)]
            s = 0
            for f in fs:
                s += f.result()
            el = time.perf_counter() - t
        assert s == n * (n + 1) // 2, s
    elif mode == "apply":
        with mp.Pool(2) as p:
            for r in [p.apply_async(increment, (i,)) for i in range(2)]:
                r.get()  # warm-up, not timed
            t = time.perf_counter()
            rs = [p.apply_async(increment, (i,)) for i in range(n)]
            s = 0
            for r in rs:
                s += r.get()
            el = time.perf_counter() - t
        assert s == n * (n + 1) // 2, s
    else:
        with mp.Pool(2) as p:
            p.map(increment, range(2))  # warm-up, not timed
            t = time.perf_counter()
            out = p.map(increment, range(n))
            el = time.perf_counter() - t
        assert len(out) == n and out[0] == 1 and out[-1] == n, len(out)
    print(el * 1e9 / n)
"#;

#[cfg(test)]
mod tests {
    use super::*;

    use crate::bench::within_a_minute as within;

    #[test]
    fn concur_submit_checks_every_result() {
        let ns = within("concur_submit", || concur_submit(200)).expect("submit-result");
        assert!(ns > 0.0);
    }

    #[test]
    fn concur_map_checks_every_item() {
        let ns = within("concur_map", || concur_map(10_000)).expect("map");
        assert!(ns > 0.0);
    }

    #[test]
    fn expected_sum_is_the_sum_of_increments() {
        for n in [0u64, 1, 2, 10, 1001] {
            assert_eq!(
                expected_sum(n),
                (0..n).map(increment).fold(0u64, u64::wrapping_add)
            );
        }
        assert!(check_sum(expected_sum(7) + 1, 7).is_err());
    }
}
