//! `cpu-bound`: CPU-bound work really runs in parallel (no GIL).
//!
//! Seed: the note in Python's `threading` docs that, because of the GIL, only one
//! thread executes Python bytecode at a time, so CPU-bound work split over threads is
//! no faster (often slower). The same work here — a hash chain over N items, summed —
//! runs sequentially, split across 2 concur threads, and split across a `ProcessPool`
//! of 2; the sums must agree. Where `python3` is present the seed's own Python program
//! (`seeds.py cpu`) runs the same chain sequentially, on 2 threads and on
//! `multiprocessing.Pool(2)`, and its checksum must equal concur's: the GIL's cost is
//! measured beside concur's speed-up, not asserted. The speed-up is judged against what
//! the machine can give: below 1.4x with 2 idle cores is a failure, on a busy or
//! single-core machine it is inconclusive.

use super::{Ctx, Figure, LoadProbe, Step, StepOutcome, python};
use concur::process::ProcessPool;
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
/// The speed-up 2 idle cores must show.
const WANT: f64 = 1.4;

/// One part of the sum, run in a pool process.
fn sum_part((lo, hi): (u64, u64)) -> u64 {
    sum_range(lo, hi, &ProgressBar::hidden())
}

/// The Python seed's figures: speed-ups of 2 threads and 2 processes.
struct PySide {
    version: String,
    items: u64,
    threads: f64,
    processes: f64,
}

/// Runs `seeds.py cpu` over `items`: `Ok(None)` without `python3`.
fn python_side(items: u64) -> Result<Option<PySide>, String> {
    let args = [
        "cpu".to_owned(),
        items.to_string(),
        ROUNDS.to_string(),
        THREADS.to_string(),
    ];
    let Some(v) = python::run(&args, Duration::from_secs(300))? else {
        return Ok(None);
    };
    let want = sum_range(0, items, &ProgressBar::hidden());
    for k in ["checksum", "threads_checksum", "processes_checksum"] {
        if v[k].as_u64() != Some(want) {
            return Err(format!(
                "Python's {k} {} differs from concur's {want}",
                v[k]
            ));
        }
    }
    let seq = python::field(&v, "sequential_s")?;
    Ok(Some(PySide {
        version: v["python"].as_str().unwrap_or("?").to_owned(),
        items,
        threads: seq / python::field(&v, "threads_s")?.max(1e-9),
        processes: seq / python::field(&v, "processes_s")?.max(1e-9),
    }))
}

impl Step for CpuBound {
    fn name(&self) -> &'static str {
        "cpu-bound"
    }

    fn shows(&self) -> &'static str {
        "A CPU-bound hash chain runs sequentially, then split across 2 threads and across a \
         ProcessPool of 2: with no GIL the threads run in parallel. Beside it, the same \
         chain in Python on 2 threads (the GIL: about 1x) and on multiprocessing.Pool(2)."
    }

    fn run(&self, ctx: &Ctx) -> StepOutcome {
        // About 1 s sequentially in a release build on a ~3 GHz core.
        let chunks: u64 = ctx.size(64, 8);
        let items = chunks * CHUNK;
        let bar = ctx.bar(3 * chunks, "cpu-bound");

        let start = Instant::now();
        let sequential = sum_range(0, items, &bar);
        let seq_time = start.elapsed();

        let probe = LoadProbe::start();
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
        let others = probe.others();

        // The same parts on 2 processes, the pool's start counted in (as in Python).
        let start = Instant::now();
        let pool = ProcessPool::new(THREADS as usize);
        let parts: Vec<(u64, u64)> = (0..THREADS)
            .map(|t| (t * per_thread, (t + 1) * per_thread))
            .collect();
        let in_processes = pool.map(sum_part, parts).and_then(|v| {
            pool.close();
            pool.join()?;
            Ok(v.into_iter().fold(0u64, u64::wrapping_add))
        });
        let proc_time = start.elapsed();
        bar.inc(chunks);
        bar.finish_and_clear();

        let (parallel, in_processes) = match (parallel, in_processes) {
            (Ok(p), Ok(q)) => (p, q),
            (Err(e), _) => return StepOutcome::new(vec![], "error", false, e),
            (_, Err(e)) => return StepOutcome::new(vec![], "error", false, e.to_string()),
        };
        let py = python_side(ctx.size(12_000, 2_000));
        let speedup = seconds(seq_time) / seconds(par_time).max(1e-9);
        let proc_speedup = seconds(seq_time) / seconds(proc_time).max(1e-9);
        let cores = super::cores();
        let mut figures = vec![
            Figure::int("items", items, ""),
            Figure::int("hash rounds per item", ROUNDS, ""),
            Figure::int("cores available", cores as u64, ""),
            Figure::float("sequential", seconds(seq_time) * 1e3, "ms"),
            Figure::float("2 threads", seconds(par_time) * 1e3, "ms"),
            Figure::float("speed-up", speedup, "x"),
            Figure::float("ProcessPool(2)", seconds(proc_time) * 1e3, "ms"),
            Figure::float("speed-up on processes", proc_speedup, "x"),
            Figure::text("checksum", format!("{sequential:#018x}")),
        ];
        if let Some(o) = others {
            figures.push(Figure::float("other programs' CPU (2 threads)", o, "cores"));
        }
        let mut bars = vec![
            serde_json::json!({"label": "sequential", "value": 1.0}),
            serde_json::json!({"label": "concur threads", "value": speedup}),
            serde_json::json!({"label": "concur processes", "value": proc_speedup}),
        ];
        let python_note = match &py {
            Ok(Some(p)) => {
                figures.push(Figure::text("Python", p.version.clone()));
                figures.push(Figure::int("Python items", p.items, ""));
                figures.push(Figure::float("Python 2 threads speed-up", p.threads, "x"));
                figures.push(Figure::float(
                    "Python 2 processes speed-up",
                    p.processes,
                    "x",
                ));
                bars.insert(
                    1,
                    serde_json::json!({"label": "Python threads", "value": p.threads}),
                );
                bars.insert(
                    2,
                    serde_json::json!({"label": "Python processes", "value": p.processes}),
                );
                format!("Python threads {:.2}x", p.threads)
            }
            Ok(None) => {
                figures.push(Figure::text("Python", "python3 not found: not run"));
                "no python3".to_owned()
            }
            Err(e) => {
                figures.push(Figure::text("Python", format!("failed: {e}")));
                "Python failed".to_owned()
            }
        };
        let agree = sequential == parallel && sequential == in_processes;
        let passed = agree && py.is_ok();
        let verdict = if !agree {
            format!(
                "results differ: {sequential:#x} sequential, {parallel:#x} on 2 threads, \
                 {in_processes:#x} on 2 processes"
            )
        } else if let Err(e) = &py {
            format!("the Python seed failed: {e}")
        } else {
            format!("results agree; speed-up {speedup:.2}x on threads ({python_note})")
        };
        StepOutcome::new(
            figures,
            format!("{speedup:.2}x ({python_note})"),
            passed,
            verdict,
        )
        .claim_speedup(ctx, speedup, WANT, THREADS as usize, others)
        .with_chart(serde_json::json!({"title": "speed-up over sequential (same work)", "unit": "x", "bars": bars}))
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
    fn the_seeds_hash_chain_equals_the_tours() {
        // The test machines have Python (Debian's python3); a missing one is a failure
        // here, not a skip.
        let v = python::version().expect("python3 on the PATH");
        let out = python::run(
            &["cpu", "300", "64", "2"].map(String::from),
            Duration::from_secs(60),
        )
        .expect("seeds.py cpu runs")
        .expect("python3 present");
        let want = (0..300).fold(0u64, |t, i| t.wrapping_add(chain(i)));
        for k in ["checksum", "threads_checksum", "processes_checksum"] {
            assert_eq!(out[k].as_u64(), Some(want), "{k} on Python {v}");
        }
    }

    #[test]
    fn split_sum_equals_whole_sum() {
        let bar = ProgressBar::hidden();
        let whole = sum_range(0, 3 * CHUNK, &bar);
        let halves =
            sum_range(0, CHUNK + 5, &bar).wrapping_add(sum_range(CHUNK + 5, 3 * CHUNK, &bar));
        assert_eq!(whole, halves);
    }
}
