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
use crate::cluster::{LocalCluster, count_primes_in};
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
        let c = match RedisExecutor::connect(&cluster.redis.url(), &cluster.pool) {
            Ok(ex) => timed(|| total(ranges.iter().map(|&r| ex.call(count_primes_in, r)))),
            Err(e) => (Err(e.to_string()), 0.0),
        };
        bar.inc(1);
        bar.finish_and_clear();
        drop(cluster);
        let (t, tt) = t;
        let (p, pt) = p;
        let (c, ct) = c;
        let (t, p, c) = match (t, p, c) {
            (Ok(t), Ok(p), Ok(c)) => (t, p, c),
            (t, p, c) => {
                let err = [t.err(), p.err(), c.err()]
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
        ];
        let passed = t == p && p == c;
        let verdict = if passed {
            format!(
                "{} primes on every tier: threads {tt:.0} ms, processes {pt:.0} ms, cluster {ct:.0} ms",
                group(t)
            )
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
