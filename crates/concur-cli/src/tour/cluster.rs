//! `cluster`: one job on threads, on processes and on a cluster, side by side.
//!
//! The job: count the primes below N, cut into 8 ranges, each range one task
//! (`count_primes_in`). The same `Executor::call` runs it on a `ThreadPoolExecutor(2)`,
//! a `ProcessPoolExecutor(2)` and a `RedisExecutor` served by 2 worker processes of
//! this binary through a private `redis-server` started for the step (on a real
//! cluster they would be `concur worker --redis URL` on other machines). The three
//! counts must agree; the times are reported, never checked. Without `redis-server`
//! the step says how to install it (and fails under `CI=true`).

use super::{Ctx, Figure, Step, StepOutcome, group};
use crate::cluster::{LocalCluster, count_primes_in, count_primes_reporting};
use concur::cluster::RedisExecutor;
use concur::futures::{Executor, Future, TaskError, ThreadPoolExecutor};
use concur::process::ProcessPoolExecutor;
use std::time::Instant;

/// The `cluster` step.
pub(super) struct Cluster;

/// Ranges the job is cut into.
const PARTS: u64 = 8;

impl Step for Cluster {
    fn name(&self) -> &'static str {
        "cluster"
    }

    fn shows(&self) -> &'static str {
        "One prime count cut into 8 tasks, run with the same Executor::call on 2 threads, \
         on 2 processes and on a Redis cluster of 2 workers: one API, three tiers."
    }

    fn run(&self, ctx: &Ctx) -> StepOutcome {
        let below: u64 = ctx.size(3_000_000, 200_000);
        let ranges: Vec<(u64, u64)> = (0..PARTS)
            .map(|i| (below * i / PARTS, below * (i + 1) / PARTS))
            .collect();
        let bar = ctx.bar(3, "cluster");
        let threads = ThreadPoolExecutor::new(2);
        let t = timed(|| total(ranges.iter().map(|&r| threads.call(count_primes_in, r))));
        bar.inc(1);
        let procs = ProcessPoolExecutor::new(2);
        let p = timed(|| total(ranges.iter().map(|&r| procs.call(count_primes_in, r))));
        bar.inc(1);
        let cluster = match LocalCluster::start("tour", 2, 1) {
            Ok(c) => c,
            Err(e) => {
                bar.finish_and_clear();
                let ci = std::env::var_os("CI").is_some();
                return StepOutcome::new(
                    vec![],
                    "needs redis-server",
                    !ci,
                    format!(
                        "the cluster part was not run: {e}. Install Redis with \
                         `sudo apt-get install redis-server` (or set CONCUR_REDIS_SERVER)"
                    ),
                );
            }
        };
        let ex = RedisExecutor::connect(&cluster.redis.url(), &cluster.pool);
        let c = match &ex {
            Ok(ex) => timed(|| total(ranges.iter().map(|&r| ex.call(count_primes_in, r)))),
            Err(e) => (Err(e.to_string()), 0.0),
        };
        bar.inc(1);
        bar.finish_and_clear();
        // One long task on the cluster, its progress (reported from inside it, on a
        // worker process) drawn as a bar here.
        let reports = match &ex {
            Ok(ex) => progress_bar(ctx, ex, below),
            Err(_) => Ok(0),
        };
        drop(ex);
        drop(cluster);
        let (t, tt) = t;
        let (p, pt) = p;
        let (c, ct) = c;
        let (t, p, c, reports) = match (t, p, c, reports) {
            (Ok(t), Ok(p), Ok(c), Ok(r)) => (t, p, c, r),
            (t, p, c, r) => {
                let err = [t.err(), p.err(), c.err(), r.err()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>();
                return StepOutcome::new(vec![], "error", false, err.join("; "));
            }
        };
        let figures = vec![
            Figure::int("primes below", below, ""),
            Figure::int("tasks", PARTS, ""),
            Figure::int("count on threads", t, ""),
            Figure::int("count on processes", p, ""),
            Figure::int("count on the cluster", c, ""),
            Figure::float("2 threads", tt, "ms"),
            Figure::float("2 processes", pt, "ms"),
            Figure::float("cluster of 2 workers", ct, "ms"),
            Figure::int("progress reports from a cluster task", reports, ""),
        ];
        let passed = t == p && p == c && reports > 0;
        let verdict = if passed {
            format!(
                "{} primes on every tier: threads {tt:.0} ms, processes {pt:.0} ms, cluster {ct:.0} ms",
                group(t)
            )
        } else if reports == 0 {
            "no progress report of the cluster task reached its future".to_owned()
        } else {
            format!("counts differ: threads {t}, processes {p}, cluster {c}")
        };
        StepOutcome::new(
            figures,
            format!("{tt:.0} / {pt:.0} / {ct:.0} ms"),
            passed,
            verdict,
        )
    }
}

/// Runs one `count_primes_reporting` on the cluster with a bar fed by its future's
/// progress callback; how many reports arrived.
fn progress_bar(ctx: &Ctx, ex: &RedisExecutor, below: u64) -> Result<u64, String> {
    let bar = ctx.bar(100, "cluster task");
    let f = ex
        .call(count_primes_reporting, below * 2)
        .map_err(|e| e.to_string())?;
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (b, s) = (bar.clone(), seen.clone());
    f.add_progress_callback(move |p| {
        b.set_position(p.done as u64);
        s.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    f.result().map_err(|e| e.to_string())?;
    bar.finish_and_clear();
    Ok(seen.load(std::sync::atomic::Ordering::Relaxed))
}

/// Runs `f`, returning its result and how long it took in ms.
fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = Instant::now();
    let r = f();
    (r, start.elapsed().as_secs_f64() * 1e3)
}

/// The sum of the tasks' values (the first error instead).
fn total(fs: impl Iterator<Item = Result<Future<u64>, TaskError>>) -> Result<u64, String> {
    let fs: Vec<Future<u64>> = fs.collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    fs.iter()
        .map(|f| f.result().map_err(|e| e.to_string()))
        .sum()
}
