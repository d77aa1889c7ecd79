//! Deadlock detection in warn mode, end to end through `Lock`: lock-order inversions
//! (two and three locks), no false positives, wait-for cycles closed by timed
//! acquisitions, reports and the hook. This whole process runs in warn mode; every
//! test uses its own lock names and picks out its own reports, since tests run in
//! parallel. Panic mode and off mode have their own files (the mode is per process).

mod common;

use common::{LIMIT, within};
use concur_core::deadlock::{self, Config, Mode, Report, ReportKind};
use concur_core::sync::Lock;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

static HOOK_CALLS: AtomicU64 = AtomicU64::new(0);

fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        Config::new()
            .mode(Mode::Warn)
            .report_hook(|_r: &Report| {
                HOOK_CALLS.fetch_add(1, Ordering::Relaxed);
            })
            .install();
    });
}

fn named(name: &str) -> Lock {
    Lock::<()>::builder().name(name).build()
}

/// The retained reports that mention lock `name`.
fn reports_about(name: &str) -> Vec<Report> {
    deadlock::reports()
        .into_iter()
        .filter(|r| r.locks().iter().any(|l| l == name))
        .collect()
}

/// Runs `f` on a thread called `name` and waits for it (bounded by the caller's
/// `within`).
fn on_thread(name: &str, f: impl FnOnce() + Send + 'static) {
    thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

fn take_in_order(first: &Lock, second: &Lock, thread_name: &str) {
    let (a, b) = (first.clone(), second.clone());
    on_thread(thread_name, move || {
        let _g1 = a.acquire();
        let _g2 = b.acquire();
    });
}

#[test]
fn inversion_between_two_threads_is_reported_once() {
    setup();
    within(LIMIT, "inversion, warn mode", || {
        let hook_before = HOOK_CALLS.load(Ordering::Relaxed);
        let (a, b) = (named("inv-A"), named("inv-B"));
        take_in_order(&a, &b, "inv-t1");
        assert!(reports_about("inv-A").is_empty(), "one order alone is fine");
        take_in_order(&b, &a, "inv-t2");
        let r = reports_about("inv-A");
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].kind(), ReportKind::LockOrderInversion);
        assert_eq!(
            r[0].to_string(),
            "lock order inversion: inv-A -> inv-B in thread inv-t1, inv-B -> inv-A in thread inv-t2"
        );
        assert_eq!(r[0].threads(), ["inv-t1", "inv-t2"]);
        assert_eq!(r[0].locks(), ["inv-A", "inv-B"]);
        assert!(
            HOOK_CALLS.load(Ordering::Relaxed) > hook_before,
            "the hook saw it"
        );
        // The same scenario again, both orders: not reported twice.
        take_in_order(&a, &b, "inv-t1");
        take_in_order(&b, &a, "inv-t2");
        assert_eq!(reports_about("inv-A").len(), 1);
    });
}

#[test]
fn three_lock_cycle_across_three_threads() {
    setup();
    within(LIMIT, "three-lock cycle", || {
        let (a, b, c) = (named("tri-A"), named("tri-B"), named("tri-C"));
        take_in_order(&a, &b, "tri-t1");
        take_in_order(&b, &c, "tri-t2");
        assert!(reports_about("tri-B").is_empty());
        take_in_order(&c, &a, "tri-t3");
        let r = reports_about("tri-A");
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].kind(), ReportKind::LockOrderInversion);
        assert_eq!(
            r[0].message(),
            "lock order inversion: tri-A -> tri-B in thread tri-t1, tri-B -> tri-C in thread \
             tri-t2, tri-C -> tri-A in thread tri-t3"
        );
        assert_eq!(r[0].threads(), ["tri-t1", "tri-t2", "tri-t3"]);
    });
}

#[test]
fn unnamed_locks_are_named_by_creation_site() {
    setup();
    within(LIMIT, "unnamed locks", || {
        let a = Lock::new();
        let b = Lock::new();
        take_in_order(&a, &b, "site-t1");
        take_in_order(&b, &a, "site-t2");
        let r: Vec<_> = deadlock::reports()
            .into_iter()
            .filter(|r| r.threads().iter().any(|t| t == "site-t2"))
            .collect();
        assert_eq!(r.len(), 1, "{r:?}");
        let msg = r[0].to_string();
        assert!(msg.starts_with("lock order inversion: Lock@"), "{msg}");
        assert!(msg.contains("deadlock.rs:"), "{msg}");
        assert!(r[0].locks().iter().all(|l| l.starts_with("Lock@")));
    });
}

#[test]
fn consistent_order_is_never_reported() {
    setup();
    let iters = if cfg!(miri) { 5 } else { 200 };
    within(LIMIT, "consistent order", move || {
        let (a, b) = (named("ok-A"), named("ok-B"));
        let hs: Vec<_> = (0..3)
            .map(|i| {
                let (a, b) = (a.clone(), b.clone());
                thread::Builder::new()
                    .name(format!("ok-t{i}"))
                    .spawn(move || {
                        for _ in 0..iters {
                            let _ga = a.acquire();
                            let _gb = b.acquire();
                            // Recursive attempts through try_acquire: they cannot block,
                            // so they are no order (and fail: a Lock is not reentrant).
                            assert!(a.try_acquire().is_none());
                            assert!(b.try_acquire().is_none());
                        }
                    })
                    .unwrap()
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        // B held, then A taken with try_acquire: not an inversion either.
        on_thread("ok-try", move || {
            let _gb = b.acquire();
            let ga = a.try_acquire();
            assert!(ga.is_some());
        });
        assert!(
            reports_about("ok-A").is_empty(),
            "{:?}",
            reports_about("ok-A")
        );
    });
}

#[test]
fn cross_thread_release_is_no_false_positive() {
    setup();
    within(LIMIT, "cross-thread release", || {
        let (a, b) = (named("xr-A"), named("xr-B"));
        a.acquire().leak();
        let (a2, b2) = (a.clone(), b.clone());
        on_thread("xr-t2", move || {
            a2.release().unwrap(); // Python style: released by another thread
            let _gb = b2.acquire();
            let _ga = a2.acquire(); // B -> A; A's old owner no longer holds it
        });
        assert!(
            reports_about("xr-A").is_empty(),
            "{:?}",
            reports_about("xr-A")
        );
        let _ga = a.acquire();
        assert!(b.try_acquire().is_some());
    });
}

#[test]
fn self_deadlock_is_a_wait_for_cycle() {
    setup();
    within(LIMIT, "self deadlock", || {
        on_thread("self-t", || {
            let a = named("self-A");
            let _g = a.acquire();
            // Would hang forever with `acquire`; the timeout lets the test go on.
            assert!(a.acquire_timeout(Duration::from_millis(20)).is_none());
        });
        let r = reports_about("self-A");
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].kind(), ReportKind::WaitForCycle);
        assert_eq!(
            r[0].message(),
            "deadlock: thread self-t holds self-A and waits for self-A"
        );
    });
}

/// Two threads each hold one lock and then wait for the other's, with timeouts so the
/// real deadlock resolves itself. The cycle is closed by whichever thread starts
/// waiting second; if the scheduler delays one thread past the other's timeout there
/// is no cycle, so the scenario is retried with fresh locks a few times.
#[test]
fn wait_for_cycle_between_two_threads() {
    setup();
    within(Duration::from_secs(60), "wait-for cycle", || {
        for attempt in 0..5 {
            let (na, nb) = (format!("wf{attempt}-A"), format!("wf{attempt}-B"));
            let (a, b) = (named(&na), named(&nb));
            let ready = [AtomicBool::new(false), AtomicBool::new(false)];
            let ready = std::sync::Arc::new(ready);
            let hs: Vec<_> = [(a.clone(), b.clone(), 0usize), (b, a, 1)]
                .into_iter()
                .map(|(first, second, i)| {
                    let ready = ready.clone();
                    thread::Builder::new()
                        .name(format!("wf-t{}", i + 1))
                        .spawn(move || {
                            let _g1 = first.acquire();
                            ready[i].store(true, Ordering::SeqCst);
                            while !ready[1 - i].load(Ordering::SeqCst) {
                                thread::sleep(Duration::from_millis(1));
                            }
                            // Thread 2 gives up first, so thread 1 then gets its lock.
                            let t = if i == 0 { 2000 } else { 300 };
                            second.acquire_timeout(Duration::from_millis(t)).is_some()
                        })
                        .unwrap()
                })
                .collect();
            let got: Vec<bool> = hs.into_iter().map(|h| h.join().unwrap()).collect();
            assert!(got[0], "thread 1 gets B once thread 2 gives up");
            let cycles: Vec<_> = reports_about(&na)
                .into_iter()
                .filter(|r| r.kind() == ReportKind::WaitForCycle)
                .collect();
            if cycles.is_empty() {
                continue; // the threads never waited at the same time: retry
            }
            assert_eq!(cycles.len(), 1, "{cycles:?}");
            let msg = cycles[0].to_string();
            let t1 = format!("thread wf-t1 holds {na} and waits for {nb}");
            let t2 = format!("thread wf-t2 holds {nb} and waits for {na}");
            assert!(
                msg == format!("deadlock: {t1}; {t2}") || msg == format!("deadlock: {t2}; {t1}"),
                "{msg}"
            );
            let mut threads = cycles[0].threads().to_vec();
            threads.sort();
            assert_eq!(threads, ["wf-t1", "wf-t2"]);
            // The inversion was reported too (once).
            let inv = reports_about(&na)
                .into_iter()
                .filter(|r| r.kind() == ReportKind::LockOrderInversion)
                .count();
            assert_eq!(inv, 1);
            return;
        }
        panic!("no wait-for cycle seen in 5 attempts");
    });
}

/// A locked loop in warn mode stays fast (the detector is O(held locks) per acquire).
#[test]
#[cfg_attr(miri, ignore = "wall-clock workload")]
fn locked_loop_in_warn_mode_is_reasonable() {
    setup();
    within(Duration::from_secs(120), "warn-mode loop", || {
        let (outer, inner) = (named("loop-A"), named("loop-B"));
        let n = 100_000;
        let mut count = 0u64;
        for _ in 0..n {
            let _go = outer.acquire();
            let _gi = inner.acquire();
            count += 1;
        }
        assert_eq!(count, n);
        assert!(reports_about("loop-A").is_empty());
    });
}
