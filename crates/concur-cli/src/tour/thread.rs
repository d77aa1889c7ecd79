//! `self-join`: the seed's `noncompliant01.py` (CWE-833), a thread joining itself.

use super::{Ctx, Figure, Step, StepOutcome};
use concur::thread;
use std::time::{Duration, Instant};

/// Joining the current thread is an immediate, typed error.
pub(super) struct SelfJoin;

impl Step for SelfJoin {
    fn name(&self) -> &'static str {
        "self-join"
    }

    fn shows(&self) -> &'static str {
        "A thread that joins itself would wait forever; concur refuses at once with a typed \
         error (in a spawned thread and in the main thread alike)."
    }

    fn run(&self, _ctx: &Ctx) -> StepOutcome {
        let spawned = thread::Builder::new().name("worker").spawn(|| {
            let start = Instant::now();
            let r = thread::current_thread().join();
            (
                r.map_err(|e| (e.is_self_join(), e.to_string())),
                start.elapsed(),
            )
        });
        let (in_worker, took) = match spawned.map(|mut h| h.join_timeout(Duration::from_secs(10))) {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => return StepOutcome::new(vec![], "failed", false, e.to_string()),
            Err(e) => return StepOutcome::new(vec![], "failed", false, e.to_string()),
        };
        let in_main = thread::current_thread().join();
        let caught_worker = matches!(&in_worker, Err((true, _)));
        let caught_main = in_main.as_ref().is_err_and(|e| e.is_self_join());
        let message = match &in_worker {
            Err((_, m)) => m.clone(),
            Ok(()) => "joined itself?!".to_owned(),
        };
        let passed = caught_worker && caught_main;
        StepOutcome::new(
            vec![
                Figure::text("error", message),
                Figure::float("time to error", took.as_secs_f64() * 1e6, "µs"),
                Figure::int(
                    "self-joins caught",
                    i64::from(caught_worker) + i64::from(caught_main),
                    "",
                ),
            ],
            format!("caught 2 self-joins in {:.0} µs", took.as_secs_f64() * 1e6),
            passed,
            if passed {
                "no hang: immediate error"
            } else {
                "a self-join was not refused"
            },
        )
    }
}
