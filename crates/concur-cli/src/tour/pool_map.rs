//! `pool-map`: `multiprocessing.pool.ThreadPool.map` with a live progress bar, and
//! errors kept at their place.
//!
//! Seed: `with ThreadPool(2) as p: p.map(work, items)`, plus the `tqdm` progress bar
//! people wrap around `imap`. Here the pool's progress hook drives the bar from the
//! workers, the results must equal a sequential map, and `imap` over a function that
//! fails on one input yields the values before and after the failure with the error in
//! its place (Python's `map` raises and loses the other results).

use super::cpu_bound::chain;
use super::{Ctx, Figure, LoadProbe, Step, StepOutcome};
use concur::futures::{MapOptions, ThreadPool};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// The `pool-map` step.
pub(super) struct PoolMap;

const WORKERS: usize = 2;

impl Step for PoolMap {
    fn name(&self) -> &'static str {
        "pool-map"
    }

    fn shows(&self) -> &'static str {
        "ThreadPool(2).map over a CPU-bound function with a progress bar fed by the pool's \
         progress hook; results equal the sequential map, and imap keeps a failing item's \
         error at its place between good values."
    }

    fn run(&self, ctx: &Ctx) -> StepOutcome {
        let items: u64 = ctx.size(1 << 21, 1 << 16);
        let bar = ctx.bar(items, "pool-map");
        let pool = ThreadPool::new(WORKERS);

        let start = Instant::now();
        let sequential: Vec<u64> = (0..items).map(chain).collect();
        let seq_time = start.elapsed();

        let most = Arc::new(AtomicUsize::new(0));
        let (b, m) = (bar.clone(), most.clone());
        let opts = MapOptions::new().progress(move |p| {
            // Calls from the two workers may arrive out of order: keep the largest.
            let seen = m.fetch_max(p.done, Ordering::Relaxed).max(p.done);
            if seen % 4096 == 0 || Some(seen) == p.total {
                b.set_position(seen as u64);
            }
        });
        // The speed-up is judged on the plain map; the progress hook (called once per
        // item, from both workers, through one shared count) costs about as much as a
        // ~100 ns item, so the hooked run's figure is shown beside it, not judged.
        let probe = LoadProbe::start();
        let start = Instant::now();
        let plain = pool.map(chain, 0..items);
        let par_time = start.elapsed();
        let others = probe.others();
        let start = Instant::now();
        let parallel = pool.map_with(chain, 0..items, opts);
        let hooked_time = start.elapsed();
        bar.finish_and_clear();
        let parallel = match (plain, parallel) {
            (Ok(a), Ok(b)) if a == b => Ok(b),
            (Ok(_), Ok(_)) => {
                return StepOutcome::new(vec![], "error", false, "the two maps differ");
            }
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        let parallel = match parallel {
            Ok(v) => v,
            Err(e) => return StepOutcome::new(vec![], "error", false, e.to_string()),
        };

        // `sqrt` that fails on negative input, as in the CWE-392 seed.
        let root = |x: i64| {
            if x < 0 {
                panic!("math domain error: {x}");
            }
            (x as f64).sqrt()
        };
        let out: Vec<_> = match pool.imap(root, [4, -1, 9]) {
            Ok(it) => it.collect(),
            Err(e) => return StepOutcome::new(vec![], "error", false, e.to_string()),
        };
        let in_place = matches!(
            out.as_slice(),
            [Ok(a), Err(e), Ok(b)] if *a == 2.0 && *b == 3.0 && e.is_panic()
        );
        let error = out
            .iter()
            .find_map(|r| r.as_ref().err())
            .map_or_else(|| "none".to_owned(), ToString::to_string);

        let reported = most.load(Ordering::Relaxed) as u64;
        let speedup = seq_time.as_secs_f64() / par_time.as_secs_f64().max(1e-9);
        let same = parallel == sequential;
        let passed = same && reported == items && in_place;
        let figures = vec![
            Figure::int("items", items, ""),
            Figure::int("workers", WORKERS as u64, ""),
            Figure::float("sequential map", seq_time.as_secs_f64() * 1e3, "ms"),
            Figure::float("ThreadPool.map", par_time.as_secs_f64() * 1e3, "ms"),
            Figure::float("speed-up", speedup, "x"),
            Figure::float(
                "with a per-item progress hook",
                hooked_time.as_secs_f64() * 1e3,
                "ms",
            ),
            Figure::int("progress reported", reported, "items"),
            Figure::text("imap([4, -1, 9])", format!("2.0, <{error}>, 3.0")),
        ];
        let verdict = if passed {
            format!("same results, progress {reported}/{items}, error kept in place")
        } else {
            format!(
                "results equal: {same}; progress {reported}/{items}; error in place: {in_place}"
            )
        };
        StepOutcome::new(figures, format!("speed-up {speedup:.2}x"), passed, verdict)
            .claim_speedup(ctx, speedup, 1.3, WORKERS, others)
    }
}
