//! `nested`: CWE-410/833, pool tasks that submit tasks to their own pool and wait on them.

use super::{Ctx, Figure, Step, StepOutcome};
use concur::futures::{Executor, Future, TaskError, ThreadPoolExecutor};
use concur::thread::get_ident;
use std::time::{Duration, Instant};

/// In Python each of these programs is a thread-starvation deadlock (every worker waits on
/// a task queued behind it); in concur a waiting worker runs the awaited task itself.
pub(super) struct NestedWaits;

/// Bound on every wait, so a regression fails the step instead of hanging the tour.
const LIMIT: Duration = Duration::from_secs(20);

/// Waits (bounded) for a pool task whose own value is a `Result`. On a timeout the pool
/// is leaked: its workers are stuck, and dropping it would wait for them forever.
fn settle<T: Clone>(
    pool: ThreadPoolExecutor,
    f: &Future<Result<T, TaskError>>,
) -> Result<T, String> {
    match f.result_timeout(LIMIT) {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => {
            if e.is_timeout() {
                std::mem::forget(pool);
            }
            Err(format!("{e} (probable deadlock)"))
        }
    }
}

/// Pool of 1: one task submits a subtask and waits on it. Returns (value, whether the
/// subtask ran on the waiting worker, time).
fn pool_of_one() -> Result<(u32, bool, Duration), String> {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(1)
        .thread_name_prefix("tour-solo")
        .build();
    let p = pool.clone();
    let start = Instant::now();
    let outer = pool
        .submit(move || {
            let me = get_ident();
            let (v, on) = p.submit(move || (6 * 7, get_ident()))?.result()?;
            Ok::<_, TaskError>((v, on == me))
        })
        .map_err(|e| e.to_string())?;
    let (v, inline) = settle(pool, &outer)?;
    Ok((v, inline, start.elapsed()))
}

/// Pool of 2, 10 outer tasks, each submitting `i * i` and waiting on it. Returns (the
/// results, worker threads alive at the end, time).
fn pool_of_two() -> Result<(Vec<u64>, usize, Duration), String> {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(2)
        .thread_name_prefix("tour-pair")
        .build();
    let start = Instant::now();
    let outer = (0..10u64)
        .map(|i| {
            let p = pool.clone();
            pool.submit(move || p.submit(move || i * i)?.result())
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let mut squares = Vec::with_capacity(outer.len());
    for f in &outer {
        squares.push(settle(pool.clone(), f)?);
    }
    Ok((squares, pool.num_threads(), start.elapsed()))
}

/// A task tree `depth` levels deep, 5 children per task, every parent waiting on its
/// children: returns the number of leaves.
fn tree(pool: &ThreadPoolExecutor, depth: u32) -> Result<usize, TaskError> {
    if depth == 0 {
        return Ok(1);
    }
    let children = (0..5)
        .map(|_| {
            let p = pool.clone();
            pool.submit(move || tree(&p, depth - 1))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut leaves = 0;
    for c in &children {
        leaves += c.result()??;
    }
    Ok(leaves)
}

/// The tree on a pool of one worker. Returns (leaves, time).
fn tree_on_one(depth: u32) -> Result<(usize, Duration), String> {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(1)
        .thread_name_prefix("tour-tree")
        .build();
    let p = pool.clone();
    let start = Instant::now();
    let root = pool
        .submit(move || tree(&p, depth))
        .map_err(|e| e.to_string())?;
    let leaves = settle(pool, &root)?;
    Ok((leaves, start.elapsed()))
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

impl Step for NestedWaits {
    fn name(&self) -> &'static str {
        "nested"
    }

    fn shows(&self) -> &'static str {
        "Tasks that wait on tasks of their own pool (CWE-410/833): a pool of 1 whose task \
         waits on a subtask, a pool of 2 running 10 outer tasks that each wait on an inner \
         one, and a task tree on a pool of 1. Python's ThreadPoolExecutor hangs on all \
         three; concur's waiting worker runs the awaited task itself, so all complete."
    }

    fn run(&self, ctx: &Ctx) -> StepOutcome {
        let depth: u32 = ctx.size(3, 2);
        let (one, two, tree) = (pool_of_one(), pool_of_two(), tree_on_one(depth));
        let ((v, inline, t1), (squares, threads, t2), (leaves, t3)) = match (one, two, tree) {
            (Ok(a), Ok(b), Ok(c)) => (a, b, c),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                return StepOutcome::new(vec![], "failed", false, e);
            }
        };
        let want: Vec<u64> = (0..10).map(|i| i * i).collect();
        let tasks: usize = (0..=depth).map(|d| 5usize.pow(d)).sum();
        let passed = v == 42 && squares == want && leaves == 5usize.pow(depth);
        StepOutcome::new(
            vec![
                Figure::int("pool of 1: nested result", v, ""),
                Figure::text(
                    "pool of 1: subtask ran on",
                    if inline {
                        "the waiting worker"
                    } else {
                        "another thread"
                    },
                ),
                Figure::float("pool of 1: time", micros(t1), "µs"),
                Figure::text("pool of 2: 10 outer x inner", format!("{squares:?}")),
                Figure::int("pool of 2: worker threads", threads as i64, ""),
                Figure::float("pool of 2: time", micros(t2), "µs"),
                Figure::int("tree on pool of 1: tasks", tasks as i64, ""),
                Figure::int("tree on pool of 1: leaves", leaves as i64, ""),
                Figure::float("tree on pool of 1: time", micros(t3), "µs"),
            ],
            format!(
                "3 nested programs done in {:.2} ms",
                (t1 + t2 + t3).as_secs_f64() * 1e3
            ),
            passed,
            if passed {
                "no deadlock: every nested wait completed with the right values".to_owned()
            } else {
                format!("wrong values: {v}, {squares:?}, {leaves} leaves")
            },
        )
    }
}
