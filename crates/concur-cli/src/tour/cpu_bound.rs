//! `cpu-bound`: CPU-bound work really runs in parallel (no GIL).
//!
//! Seed: the note in Python's `threading` docs that, because of the GIL, only one
//! thread executes Python bytecode at a time, so CPU-bound work split over threads is
//! no faster (often slower). The same work here — a hash chain over N items, summed —
//! runs once sequentially and once split across 2 threads; the results must agree and
//! the speed-up is reported. The speed-up itself is never checked: on a shared or
//! single-core machine it can be anything.

use super::{Ctx, Figure, Step, StepOutcome};
use concur::thread;
use indicatif::ProgressBar;
use std::time::{Duration, Instant};

/// The `cpu-bound` step.
pub(super) struct CpuBound;

/// Rounds of the hash chain per item.
const ROUNDS: u32 = 64;
/// Items per progress tick (and unit of work splitting).
const CHUNK: u64 = 1 << 16;
const THREADS: u64 = 2;

impl Step for CpuBound {
    fn name(&self) -> &'static str {
        "cpu-bound"
    }

    fn shows(&self) -> &'static str {
        "A CPU-bound hash chain runs sequentially, then split across 2 threads: with no \
         GIL the threads run in parallel (Python's GIL keeps this speed-up at or below 1x)."
    }

    fn run(&self, ctx: &Ctx) -> StepOutcome {
        // About 1 s sequentially in a release build on a ~3 GHz core.
        let chunks: u64 = ctx.size(64, 8);
        let items = chunks * CHUNK;
        let bar = ctx.bar(2 * chunks, "cpu-bound");

        let start = Instant::now();
        let sequential = sum_range(0, items, &bar);
        let seq_time = start.elapsed();

        let start = Instant::now();
        let per_thread = items / THREADS;
        // concur threads: named OS threads whose join returns the value (or the panic).
        let workers: Result<Vec<_>, String> = (0..THREADS)
            .map(|t| {
                let bar = bar.clone();
                thread::Builder::new()
                    .name(format!("cpu-{t}"))
                    .spawn(move || sum_range(t * per_thread, (t + 1) * per_thread, &bar))
                    .map_err(|e| e.to_string())
            })
            .collect();
        let parallel = workers.and_then(|ws| {
            ws.into_iter().try_fold(0u64, |total, w| {
                w.join()
                    .map(|part| total.wrapping_add(part))
                    .map_err(|e| e.to_string())
            })
        });
        let par_time = start.elapsed();
        bar.finish_and_clear();

        let parallel = match parallel {
            Ok(p) => p,
            Err(e) => return StepOutcome::new(vec![], "error", false, e),
        };
        let speedup = seconds(seq_time) / seconds(par_time).max(1e-9);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let figures = vec![
            Figure::int("items", items, ""),
            Figure::int("hash rounds per item", ROUNDS, ""),
            Figure::int("cores available", cores as u64, ""),
            Figure::float("sequential", seconds(seq_time) * 1e3, "ms"),
            Figure::float("2 threads", seconds(par_time) * 1e3, "ms"),
            Figure::float("speed-up", speedup, "x"),
            Figure::text("checksum", format!("{sequential:#018x}")),
        ];
        let passed = sequential == parallel;
        let verdict = if passed {
            format!("results agree; speed-up {speedup:.2}x (GIL: <= 1x)")
        } else {
            format!("results differ: {sequential:#x} sequential vs {parallel:#x} in 2 threads")
        };
        StepOutcome::new(figures, format!("speed-up {speedup:.2}x"), passed, verdict)
    }
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Sum over `lo..hi` of the item's hash chain, ticking `bar` once per `CHUNK` items.
fn sum_range(lo: u64, hi: u64, bar: &ProgressBar) -> u64 {
    let mut total = 0u64;
    let mut i = lo;
    while i < hi {
        let end = (i + CHUNK).min(hi);
        for item in i..end {
            total = total.wrapping_add(chain(std::hint::black_box(item)));
        }
        bar.inc(1);
        i = end;
    }
    total
}

/// `ROUNDS` applications of the SplitMix64 finaliser (Steele, Lea & Flood, 2014).
pub(super) fn chain(mut x: u64) -> u64 {
    for _ in 0..ROUNDS {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 31;
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_sum_equals_whole_sum() {
        let bar = ProgressBar::hidden();
        let whole = sum_range(0, 3 * CHUNK, &bar);
        let halves =
            sum_range(0, CHUNK + 5, &bar).wrapping_add(sum_range(CHUNK + 5, 3 * CHUNK, &bar));
        assert_eq!(whole, halves);
    }
}
