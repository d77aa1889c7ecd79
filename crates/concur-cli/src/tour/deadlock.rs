//! `lock-order`: CWE-833, two threads taking two locks in opposite order.

use super::{Ctx, Figure, Step, StepOutcome};
use concur::deadlock::{self, Mode};
use concur::sync::{Barrier, Lock};
use concur::thread;
use std::time::{Duration, Instant};

/// The detector reports an inversion the first time it is seen (warn mode) and breaks a
/// real deadlock instead of hanging (panic mode).
pub(super) struct LockOrder;

/// Thread `name` takes `first`, meets the other thread at `meet` (if any), then `second`.
fn taker(
    name: &str,
    first: &Lock,
    second: &Lock,
    meet: Option<&Barrier>,
) -> std::io::Result<thread::JoinHandle<()>> {
    let (first, second, meet) = (first.clone(), second.clone(), meet.cloned());
    thread::Builder::new().name(name).spawn(move || {
        let _a = first.acquire();
        if let Some(m) = meet {
            // Both hold their first lock now: the next acquisitions would hang forever.
            let _ = m.wait_timeout(Duration::from_secs(10));
        }
        let _b = second.acquire();
    })
}

impl LockOrder {
    /// Warn mode, lucky timing: t1 runs A→B, then t2 runs B→A. Returns the reports.
    fn warn_case() -> std::io::Result<Vec<String>> {
        deadlock::set_mode(Mode::Warn);
        let a = Lock::builder().name("A").build();
        let b = Lock::builder().name("B").build();
        taker("t1", &a, &b, None)?
            .join_timeout(Duration::from_secs(10))
            .ok();
        taker("t2", &b, &a, None)?
            .join_timeout(Duration::from_secs(10))
            .ok();
        Ok(deadlock::take_reports()
            .iter()
            .map(|r| r.to_string())
            .collect())
    }

    /// Panic mode, unlucky timing: both threads hold their first lock, then reach for
    /// the other's. Returns (threads that finished, threads that panicked, message).
    fn panic_case() -> std::io::Result<(usize, usize, String)> {
        deadlock::set_mode(Mode::Panic);
        let c = Lock::builder().name("C").build();
        let d = Lock::builder().name("D").build();
        let meet = Barrier::new(2);
        let hs = [
            taker("t3", &c, &d, Some(&meet))?,
            taker("t4", &d, &c, Some(&meet))?,
        ];
        let (mut finished, mut panicked, mut message) = (0, 0, String::new());
        for mut h in hs {
            match h.join_timeout(Duration::from_secs(20)) {
                Ok(()) => finished += 1,
                Err(e) if e.is_panic() => {
                    panicked += 1;
                    // The first line is the report that stopped it.
                    let m = e.panic_message().unwrap_or_default();
                    message = m.lines().next().unwrap_or_default().to_owned();
                }
                Err(_) => {}
            }
        }
        deadlock::take_reports();
        Ok((finished, panicked, message))
    }
}

impl Step for LockOrder {
    fn name(&self) -> &'static str {
        "lock-order"
    }

    fn shows(&self) -> &'static str {
        "Threads take locks A,B and B,A. In warn mode the inversion is reported the first \
         time it is seen, though the timing was lucky; in panic mode a real deadlock is \
         broken: the thread closing the cycle panics, releases its lock, the other finishes."
    }

    fn run(&self, _ctx: &Ctx) -> StepOutcome {
        // The deliberate panic below is expected: keep it out of the excepthook's report.
        thread::set_excepthook(|_| {});
        // The reports are shown below: keep warn mode's default stderr line out.
        deadlock::set_report_hook(|_| {});
        let start = Instant::now();
        let warn = Self::warn_case();
        let panic = Self::panic_case();
        deadlock::set_mode(Mode::Off);
        thread::reset_excepthook();
        deadlock::clear_report_hook();
        let (reports, (finished, panicked, message)) = match (warn, panic) {
            (Ok(w), Ok(p)) => (w, p),
            (Err(e), _) | (_, Err(e)) => {
                return StepOutcome::new(vec![], "failed", false, e.to_string());
            }
        };
        let passed = reports.len() == 1 && finished == 1 && panicked == 1;
        StepOutcome::new(
            vec![
                Figure::int("inversions reported (warn)", reports.len() as i64, ""),
                Figure::text("report", reports.first().cloned().unwrap_or_default()),
                Figure::int("threads finished (panic)", finished as i64, ""),
                Figure::int("threads stopped by the detector", panicked as i64, ""),
                Figure::text("panic", message),
                Figure::float("elapsed", start.elapsed().as_secs_f64() * 1e3, "ms"),
            ],
            "caught: 1 inversion, 1 deadlock broken",
            passed,
            if passed {
                "reported before it could hang; the deadlock ended instead of hanging"
            } else {
                "the detector missed the inversion or the deadlock"
            },
        )
    }
}
