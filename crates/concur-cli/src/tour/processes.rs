//! `processes` and `shared-counter`: the process tier (`concur::process`).
//!
//! - `processes` — seed: the CPU-bound `append_to_list` of Python's multiprocessing
//!   tutorials. Two jobs each build a list of pseudo-random floats (a few rounds of
//!   mixing per number, so the work is CPU-bound), once one after the other in this
//!   process and once in 2 child processes (`Process::spawn`, whose `join` returns the
//!   job's length and checksum). The results must agree; the speed-up is reported,
//!   never checked (on a loaded or single-core machine it can be anything).
//! - `shared-counter` — seed: Python's `v.value += 1` on a `multiprocessing.Value` from
//!   several processes. 4 processes increment one `Value<u64>` as a separate `get` and
//!   `set` (each copy takes the value's lock, but nothing holds it between them), then
//!   holding the lock across both (`with v.get_lock(): v.value += 1`). The locked total
//!   must be exactly 4 × N; the racy total is reported and only checked to be ≤ 4 × N
//!   (how many updates are lost depends on the moment; it can be none).

use super::{Ctx, Figure, LoadProbe, Step, StepOutcome, group};
use concur::process::{Event, Process, Value};
use std::time::{Duration, Instant};

/// The `processes` step.
pub(super) struct Processes;

/// Jobs, and child processes in the parallel run.
const JOBS: u64 = 2;

impl Step for Processes {
    fn name(&self) -> &'static str {
        "processes"
    }

    fn shows(&self) -> &'static str {
        "Python's CPU-bound append_to_list, sequentially then in 2 child processes \
         (Process::spawn; join returns each job's result): the checksums agree."
    }

    fn run(&self, ctx: &Ctx) -> StepOutcome {
        let size: u64 = ctx.size(4_000_000, 200_000);
        let bar = ctx.bar(2 * JOBS, "processes");

        let start = Instant::now();
        let mut sequential = Vec::new();
        for id in 0..JOBS {
            sequential.push(append_to_list((size, id)));
            bar.inc(1);
        }
        let seq_time = start.elapsed();

        let probe = LoadProbe::start();
        let start = Instant::now();
        let parallel = (0..JOBS)
            .map(|id| Process::spawn(append_to_list, (size, id)))
            .collect::<Result<Vec<_>, _>>()
            .and_then(|jobs| {
                jobs.iter()
                    .map(|j| {
                        let r = j.join();
                        bar.inc(1);
                        r
                    })
                    .collect::<Result<Vec<_>, _>>()
            });
        let par_time = start.elapsed();
        let others = probe.others();
        bar.finish_and_clear();
        let parallel = match parallel {
            Ok(p) => p,
            Err(e) => return StepOutcome::new(vec![], "error", false, e.to_string()),
        };

        let speedup = seq_time.as_secs_f64() / par_time.as_secs_f64().max(1e-9);
        let checksum = |r: &[(u64, u64)]| r.iter().fold(0u64, |a, &(_, c)| a ^ c);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let figures = vec![
            Figure::int("jobs", JOBS, ""),
            Figure::int("numbers per job", size, ""),
            Figure::int("cores available", cores as u64, ""),
            Figure::float("sequential", ms(seq_time), "ms"),
            Figure::float("2 processes", ms(par_time), "ms"),
            Figure::float("speed-up", speedup, "x"),
            Figure::text("checksum", format!("{:#018x}", checksum(&sequential))),
            Figure::text(
                "checksum (processes)",
                format!("{:#018x}", checksum(&parallel)),
            ),
        ];
        let passed = sequential == parallel && parallel.iter().all(|&(len, _)| len == size);
        let verdict = if passed {
            format!("results agree; speed-up {speedup:.2}x with 2 processes")
        } else {
            format!("results differ: {sequential:x?} sequentially vs {parallel:x?} in processes")
        };
        StepOutcome::new(figures, format!("speed-up {speedup:.2}x"), passed, verdict).claim_speedup(
            ctx,
            speedup,
            1.4,
            JOBS as usize,
            others,
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Appends `count` pseudo-random floats in `[0, 1)` seeded by `id` to a fresh list
/// (the seed's `out_list.append(random.random())` loop); returns the list's length and
/// a checksum of its contents.
fn append_to_list((count, id): (u64, u64)) -> (u64, u64) {
    let mut out_list = Vec::new();
    let mut state = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    for _ in 0..count {
        for _ in 0..8 {
            state = splitmix64(state);
        }
        out_list.push((state >> 11) as f64 / (1u64 << 53) as f64);
    }
    let checksum = out_list
        .iter()
        .fold(0u64, |acc, x| acc.rotate_left(5) ^ x.to_bits());
    (out_list.len() as u64, checksum)
}

/// One step of SplitMix64 (Steele, Lea & Flood, 2014).
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The `shared-counter` step.
pub(super) struct SharedCounter;

/// How long a child waits for the others to be started (bounded: never a hang).
const GO_LIMIT: Duration = Duration::from_secs(60);

/// Processes incrementing the counter.
const PROCS: u64 = 4;

impl Step for SharedCounter {
    fn name(&self) -> &'static str {
        "shared-counter"
    }

    fn shows(&self) -> &'static str {
        "4 processes increment one shared Value<u64>: as a separate get and set (Python's \
         v.value += 1) updates are lost; holding its lock across both, the total is exact."
    }

    fn run(&self, ctx: &Ctx) -> StepOutcome {
        let n: u64 = ctx.size(100_000, 20_000);
        let expected = PROCS * n;
        let bar = ctx.bar(2 * PROCS, "shared-counter");
        let racy = run_all(add, n, &bar);
        let locked = run_all(add_locked, n, &bar);
        bar.finish_and_clear();
        let ((racy_total, racy_time), (locked_total, locked_time)) = match (racy, locked) {
            (Ok(r), Ok(l)) => (r, l),
            (Err(e), _) | (_, Err(e)) => return StepOutcome::new(vec![], "error", false, e),
        };
        let lost = expected.saturating_sub(racy_total);
        let figures = vec![
            Figure::int("processes", PROCS, ""),
            Figure::int("increments per process", n, ""),
            Figure::int("racy: final value", racy_total, ""),
            Figure::int("racy: lost updates", lost, ""),
            Figure::float("racy: time", ms(racy_time), "ms"),
            Figure::int("locked: final value", locked_total, ""),
            Figure::int("locked: expected", expected, ""),
            Figure::float("locked: time", ms(locked_time), "ms"),
        ];
        let passed = locked_total == expected && racy_total <= expected;
        let verdict = if passed {
            format!(
                "exactly {} with the lock ({} lost without it)",
                group(expected),
                group(lost)
            )
        } else if locked_total != expected {
            format!("the locked counter ended at {locked_total}, not {expected}")
        } else {
            format!("the racy counter ended above {expected}: {racy_total}")
        };
        let key = format!("total {} (racy: {} lost)", group(locked_total), group(lost));
        StepOutcome::new(figures, key, passed, verdict)
    }
}

/// `n` increments as a separate read and write (Python's bare `v.value += 1`).
fn add((v, n, go): (Value<u64>, u64, Event)) {
    go.wait_timeout(GO_LIMIT);
    for _ in 0..n {
        v.set(v.get() + 1);
    }
}

/// `n` increments, each holding the value's lock across the read and the write.
fn add_locked((v, n, go): (Value<u64>, u64, Event)) {
    go.wait_timeout(GO_LIMIT);
    let lock = v.get_lock().expect("Value::new has a lock");
    for _ in 0..n {
        let _held = lock.acquire().expect("no process died holding the lock");
        v.set(v.get() + 1); // held by this thread: the copies do not lock again
    }
}

/// Runs `PROCS` processes of `f` on a fresh counter; its final value and the time taken.
///
/// (`f` is a type parameter, not a `fn` pointer: a `Process` runs a function that
/// captures nothing, known from its type alone.)
fn run_all<F>(f: F, n: u64, bar: &indicatif::ProgressBar) -> Result<(u64, Duration), String>
where
    F: Fn((Value<u64>, u64, Event)) + Copy + 'static,
{
    let v = Value::new(0u64).map_err(|e| format!("shared memory: {e}"))?;
    let go = Event::new().map_err(|e| format!("shared memory: {e}"))?;
    let ps = (0..PROCS)
        .map(|_| Process::spawn(f, (v.clone(), n, go.clone())))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    // Every child waits for this, so they all count at once (a child started a few
    // milliseconds before the next one could otherwise finish before it begins).
    let start = Instant::now();
    go.set();
    for p in &ps {
        p.join().map_err(|e| e.to_string())?;
        bar.inc(1);
    }
    Ok((v.get(), start.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_to_list_is_deterministic_per_id() {
        assert_eq!(append_to_list((1000, 1)), append_to_list((1000, 1)));
        assert_ne!(append_to_list((1000, 0)).1, append_to_list((1000, 1)).1);
        assert_eq!(append_to_list((7, 0)).0, 7);
    }
}
