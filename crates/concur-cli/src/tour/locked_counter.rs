//! `locked-counter`: a shared counter under a `Lock` loses nothing; without one it does.
//!
//! Seed: CWE-362 / CWE-667 and the classic "unsynchronised `x += 1`" example that
//! Python's GIL does not protect either. Two threads apply `+100` and `-100` many times
//! to one `Lock::with_value(0i64)`: the result must be exactly 0.
//!
//! Beside it, the same updates done as an unlocked read-modify-write: a separate atomic
//! `load` then `store` (a data race in the logical sense, but no undefined behaviour).
//! To *count* the updates lost, the racy cell packs a version number next to the value:
//! each update stores `version + 1` of the version it read, so the final version is the
//! number of updates that survived, and `2 × N − version` is exactly how many were
//! overwritten. That number is nondeterministic (it can even be 0 on a quiet machine),
//! so it is reported, never checked.

use super::{Ctx, Figure, Step, StepOutcome, group};
use concur::sync::Lock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The `locked-counter` step.
pub(super) struct LockedCounter;

const DELTAS: [i64; 2] = [100, -100];
const TICK: u64 = 8192;

impl Step for LockedCounter {
    fn name(&self) -> &'static str {
        "locked-counter"
    }

    fn shows(&self) -> &'static str {
        "Two threads apply +100/-100 to a counter under a Lock: the total is exactly 0. \
         The same updates as an unlocked load-then-store lose some (CWE-362)."
    }

    fn run(&self, ctx: &Ctx) -> StepOutcome {
        let n: u64 = ctx.size(1_000_000, 100_000);
        let bar = ctx.bar(4 * n, "locked-counter");

        // Locked: must end at exactly 0.
        let counter = Lock::with_value(0i64);
        let start = Instant::now();
        // TODO(integrator): concur::thread (scoped spawn) once it exists.
        let locked_ok = std::thread::scope(|s| {
            let workers: Vec<_> = DELTAS
                .iter()
                .map(|&delta| {
                    let (counter, bar) = (&counter, &bar);
                    s.spawn(move || {
                        for i in 0..n {
                            *counter.acquire() += delta;
                            if i % TICK == TICK - 1 {
                                bar.inc(TICK);
                            }
                        }
                    })
                })
                .collect();
            workers.into_iter().all(|w| w.join().is_ok())
        });
        let locked_elapsed = start.elapsed();
        let locked_total = *counter.acquire();

        // Racy: separate load and store, with a version to count what was lost.
        let cell = AtomicU64::new(pack(0, 0));
        let racy_ok = std::thread::scope(|s| {
            let workers: Vec<_> = DELTAS
                .iter()
                .map(|&delta| {
                    let (cell, bar) = (&cell, &bar);
                    s.spawn(move || {
                        for i in 0..n {
                            let (value, version) = unpack(cell.load(Ordering::Relaxed));
                            std::hint::spin_loop(); // the window a `x += 1` leaves open
                            cell.store(pack(value + delta, version + 1), Ordering::Relaxed);
                            if i % TICK == TICK - 1 {
                                bar.inc(TICK);
                            }
                        }
                    })
                })
                .collect();
            workers.into_iter().all(|w| w.join().is_ok())
        });
        bar.finish_and_clear();
        let (racy_total, survived) = unpack(cell.load(Ordering::Relaxed));
        let lost = 2 * n - u64::from(survived);

        if !(locked_ok && racy_ok) {
            return StepOutcome::new(vec![], "panicked", false, "a worker thread panicked");
        }
        let updates = 2 * n;
        let ns_per_update = locked_elapsed.as_secs_f64() * 1e9 / updates as f64;
        let figures = vec![
            Figure::int("updates per run", updates, ""),
            Figure::int("locked: final value", locked_total, "(expected 0)"),
            Figure::float("locked: time per update", ns_per_update, "ns"),
            Figure::int("racy: final value", racy_total, "(expected 0)"),
            Figure::int("racy: lost updates", lost, ""),
            Figure::float(
                "racy: lost share",
                100.0 * lost as f64 / updates as f64,
                "%",
            ),
        ];
        let passed = locked_total == 0;
        let verdict = if passed {
            format!(
                "0 lost updates with the Lock ({} lost without it)",
                group(lost)
            )
        } else {
            format!("the locked counter ended at {locked_total}, not 0")
        };
        let key = format!("total {locked_total} (racy: {} lost)", group(lost));
        StepOutcome::new(figures, key, passed, verdict)
    }
}

/// Packs a signed 32-bit value (high half) and a version (low half) into one word.
fn pack(value: i64, version: u32) -> u64 {
    let value = i32::try_from(value).expect("racy counter stays within ±2^31 by construction");
    (u64::from(value as u32) << 32) | u64::from(version)
}

fn unpack(word: u64) -> (i64, u32) {
    (i64::from((word >> 32) as u32 as i32), word as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trips() {
        for (v, ver) in [(0, 0), (100, 1), (-100, 7), (-200_000_000, 2_000_000)] {
            assert_eq!(unpack(pack(v, ver)), (v, ver));
        }
    }
}
