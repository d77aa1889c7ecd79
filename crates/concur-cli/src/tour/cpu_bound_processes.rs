//! `cpu-bound-processes`: the seed's CPU-bound experiment on a process pool.
//!
//! Seed: the experiment of Python's multiprocessing tutorials that times a CPU-bound
//! function called twice one after the other, then the same two calls on a pool of 2
//! processes (`Pool(2).map(f, [n, n])`), which sidesteps the GIL. Here the function
//! counts the primes below N by trial division; the two calls run sequentially in this
//! process, then through `ProcessPool::new(2).map`, timed from the pool's creation to
//! its `join` (its workers start lazily, so their start is counted in, as in Python).
//! The counts must agree; the speed-up must reach 1.3x where 2 cores are idle (on a
//! loaded or single-core machine the step says it is inconclusive).

use super::{Ctx, Figure, LoadProbe, Step, StepOutcome, group};
use concur::process::ProcessPool;
use std::time::{Duration, Instant};

/// The `cpu-bound-processes` step.
pub(super) struct CpuBoundProcesses;

/// Calls of the CPU-bound function, and processes in the pool.
const CALLS: usize = 2;

impl Step for CpuBoundProcesses {
    fn name(&self) -> &'static str {
        "cpu-bound-processes"
    }

    fn shows(&self) -> &'static str {
        "A CPU-bound prime count called twice sequentially, then on a ProcessPool of 2 \
         processes (Pool(2).map(f, [n, n])): the counts agree, each call in its own process."
    }

    fn run(&self, ctx: &Ctx) -> StepOutcome {
        // About 0.7 s per call in a release build on a ~3 GHz core.
        let below: u64 = ctx.size(4_000_000, 300_000);
        let bar = ctx.bar(2 * CALLS as u64, "cpu-bound-processes");

        let start = Instant::now();
        let mut sequential = Vec::with_capacity(CALLS);
        for _ in 0..CALLS {
            sequential.push(count_primes(below));
            bar.inc(1);
        }
        let seq_time = start.elapsed();

        let probe = LoadProbe::start();
        let start = Instant::now();
        let pool = ProcessPool::new(CALLS);
        let parallel = pool.map(count_primes, vec![below; CALLS]);
        pool.close();
        let joined = pool.join();
        let par_time = start.elapsed();
        let others = probe.others();
        bar.inc(CALLS as u64);
        bar.finish_and_clear();
        let parallel = match parallel.and_then(|v| joined.map(|()| v)) {
            Ok(v) => v,
            Err(e) => return StepOutcome::new(vec![], "error", false, e.to_string()),
        };

        let speedup = seconds(seq_time) / seconds(par_time).max(1e-9);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let figures = vec![
            Figure::int("calls", CALLS as u64, ""),
            Figure::int("primes below", below, ""),
            Figure::int("primes found per call", sequential[0], ""),
            Figure::int("cores available", cores as u64, ""),
            Figure::float("sequential", seconds(seq_time) * 1e3, "ms"),
            Figure::float("pool of 2 processes", seconds(par_time) * 1e3, "ms"),
            Figure::float("speed-up", speedup, "x"),
        ];
        let passed = sequential == parallel;
        let verdict = if passed {
            format!(
                "{} primes below {} in every call; speed-up {speedup:.2}x with 2 processes",
                group(sequential[0]),
                group(below)
            )
        } else {
            format!("counts differ: {sequential:?} sequentially vs {parallel:?} on the pool")
        };
        StepOutcome::new(figures, format!("speed-up {speedup:.2}x"), passed, verdict)
            .claim_speedup(ctx, speedup, 1.3, CALLS, others)
            .with_chart(serde_json::json!({"title": "speed-up over sequential (same work)", "unit": "x", "bars": [
                {"label": "sequential", "value": 1.0},
                {"label": "concur ProcessPool(2)", "value": speedup},
            ]}))
    }
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// How many primes are below `n`, by trial division (deliberately CPU-bound: no sieve).
fn count_primes(n: u64) -> u64 {
    (2..n)
        .filter(|&k| is_prime(std::hint::black_box(k)))
        .count() as u64
}

/// Whether `k` (≥ 2) is prime: no odd divisor up to its square root.
fn is_prime(k: u64) -> bool {
    if k < 4 {
        return k >= 2;
    }
    if k.is_multiple_of(2) {
        return false;
    }
    let mut d = 3;
    while d * d <= k {
        if k.is_multiple_of(d) {
            return false;
        }
        d += 2;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_known_prime_counts() {
        // pi(10) = 4, pi(100) = 25, pi(10^4) = 1229, pi(10^5) = 9592.
        assert_eq!(count_primes(0), 0);
        assert_eq!(count_primes(3), 1);
        assert_eq!(count_primes(10), 4);
        assert_eq!(count_primes(100), 25);
        assert_eq!(count_primes(10_000), 1229);
        assert_eq!(count_primes(100_000), 9592);
        assert!(!is_prime(1) && is_prime(2) && !is_prime(9) && is_prime(97));
    }
}
