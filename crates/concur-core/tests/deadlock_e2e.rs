//! Deadlock detection across the whole thread tier, in warn mode: `RLock` re-entry and
//! inversions, mixed `Lock`/`RLock` cycles, a `Condition` wait (the lock is tracked
//! again after the wait), and joins that close a wait-for cycle with a lock. The mode
//! is per process, hence this file of its own.

mod common;

use common::{LIMIT, within};
use concur_core::deadlock::{self, Config, Mode, Report, ReportKind};
use concur_core::sync::{Condition, Lock, RLock};
use concur_core::thread;
use std::sync::Once;
use std::time::Duration;

fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        Config::new()
            .mode(Mode::Warn)
            .report_hook(|_r: &Report| {})
            .install();
    });
}

fn reports_about(name: &str) -> Vec<Report> {
    deadlock::reports()
        .into_iter()
        .filter(|r| r.locks().iter().any(|l| l == name))
        .collect()
}

fn run_named(name: &str, f: impl FnOnce() + Send + 'static) {
    thread::Builder::new()
        .name(name)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn rlock_reentry_is_not_an_inversion() {
    setup();
    within(LIMIT, "rlock re-entry", || {
        let r = RLock::named("R-reentry");
        let other = Lock::builder().name("L-reentry").build();
        for _ in 0..3 {
            let _a = r.acquire();
            let _b = other.acquire();
            let _c = r.acquire(); // re-entry while holding `other`: not R after L
        }
        assert!(reports_about("R-reentry").is_empty());
    });
}

#[test]
fn rlock_inversion_between_threads_is_reported() {
    setup();
    within(LIMIT, "rlock inversion", || {
        let r = RLock::named("R-inv");
        let l = Lock::builder().name("L-inv").build();
        let (r1, l1) = (r.clone(), l.clone());
        run_named("ra", move || {
            let _a = r1.acquire();
            let _b = l1.acquire();
        });
        let (r2, l2) = (r.clone(), l.clone());
        run_named("rb", move || {
            let _b = l2.acquire();
            let _a = r2.acquire();
        });
        let reports = reports_about("R-inv");
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert_eq!(reports[0].kind(), ReportKind::LockOrderInversion);
        let text = reports[0].to_string();
        assert!(text.contains("ra") && text.contains("rb"), "{text}");
    });
}

#[test]
fn condition_wait_keeps_the_lock_tracked() {
    setup();
    within(LIMIT, "condition wait", || {
        let outer = Lock::builder().name("Outer-cv").build();
        let inner = Lock::builder().name("Inner-cv").build();
        let cv = Condition::with_lock(inner.clone());
        {
            let _o = outer.acquire();
            let mut g = cv.acquire();
            assert!(!g.wait_timeout(Duration::from_millis(5)));
        }
        // Consistent order afterwards: Outer then Inner again, never reported.
        {
            let _o = outer.acquire();
            let _i = inner.acquire();
        }
        assert!(reports_about("Outer-cv").is_empty());
        assert!(reports_about("Inner-cv").is_empty());
    });
}

#[test]
fn join_on_a_thread_waiting_for_my_lock_is_a_cycle() {
    setup();
    within(LIMIT, "join cycle", || {
        let a = Lock::builder().name("A-join").build();
        let held = a.acquire();
        let a2 = a.clone();
        let mut y = thread::Builder::new()
            .name("Y-join")
            .spawn(move || {
                // Waits for A, which the joiner holds: with the join below, a cycle.
                // The timeout lets the test end either way.
                a2.acquire_timeout(Duration::from_millis(500)).is_some()
            })
            .unwrap();
        // Give Y time to block on A before we join it.
        std::thread::sleep(Duration::from_millis(100));
        let got = y.join_timeout(Duration::from_secs(10)).unwrap();
        drop(held);
        assert!(!got, "Y cannot get A while the joiner holds it");
        let reports = reports_about("A-join");
        assert!(
            reports.iter().any(|r| r.kind() == ReportKind::WaitForCycle),
            "expected a wait-for cycle report, got {reports:?}"
        );
    });
}

#[test]
fn joining_a_finished_thread_is_not_reported() {
    setup();
    within(LIMIT, "join finished", || {
        let a = Lock::builder().name("A-done").build();
        let h = thread::spawn(|| 1);
        std::thread::sleep(Duration::from_millis(20));
        let _g = a.acquire();
        assert_eq!(h.join().unwrap(), 1);
        assert!(reports_about("A-done").is_empty());
    });
}
