//! Deadlock detection in panic mode (this whole process): the thread whose acquisition
//! would invert a lock order or close a wait-for cycle panics with the report before
//! it blocks, its guards release, and the other threads go on.

mod common;

use common::{LIMIT, within};
use concur_core::deadlock::{self, Config, Mode, ReportKind};
use concur_core::sync::Lock;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        Config::new()
            .mode(Mode::Panic)
            .report_hook(|_| {})
            .install()
    });
}

fn named(name: &str) -> Lock {
    Lock::<()>::builder().name(name).build()
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// The classic: each thread holds its first lock and waits until the other holds its
/// own, then takes the second. Without the detector this hangs forever.
#[test]
fn opposite_order_rendezvous_does_not_hang() {
    setup();
    within(LIMIT, "panic-mode rendezvous", || {
        let (a, b) = (named("pr-A"), named("pr-B"));
        let ready = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
        let hs: Vec<_> = [(a.clone(), b.clone(), 0usize), (b.clone(), a.clone(), 1)]
            .into_iter()
            .map(|(first, second, i)| {
                let ready = ready.clone();
                thread::Builder::new()
                    .name(format!("pr-t{}", i + 1))
                    .spawn(move || {
                        let _g1 = first.acquire();
                        ready[i].store(true, Ordering::SeqCst);
                        while !ready[1 - i].load(Ordering::SeqCst) {
                            thread::sleep(Duration::from_millis(1));
                        }
                        // Panics in the thread that takes its second lock last; the
                        // unwinding drops `_g1`, which lets the other thread through.
                        catch_unwind(AssertUnwindSafe(|| drop(second.acquire())))
                            .map_err(|p| panic_message(&*p))
                    })
                    .unwrap()
            })
            .collect();
        let results: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        let panics: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert_eq!(panics.len(), 1, "exactly one thread panics: {results:?}");
        let msg = panics[0];
        assert!(msg.contains("lock order inversion: "), "{msg}");
        assert!(msg.contains("pr-A") && msg.contains("pr-B"), "{msg}");
        assert!(msg.contains("pr-t1") && msg.contains("pr-t2"), "{msg}");
        // Both locks are free again and the pair was reported once.
        assert!(a.try_acquire().is_some() && b.try_acquire().is_some());
        let inv = deadlock::reports()
            .into_iter()
            .filter(|r| r.kind() == ReportKind::LockOrderInversion)
            .filter(|r| r.locks().iter().any(|l| l == "pr-A"))
            .count();
        assert_eq!(inv, 1);
    });
}

#[test]
fn sequential_inversion_panics_at_the_second_order() {
    setup();
    within(LIMIT, "panic-mode inversion", || {
        let (a, b) = (named("ps-A"), named("ps-B"));
        {
            let _ga = a.acquire();
            let _gb = b.acquire();
        }
        let (a2, b2) = (a.clone(), b.clone());
        let r = thread::Builder::new()
            .name("ps-t2".into())
            .spawn(move || {
                let _gb = b2.acquire();
                let _ga = a2.acquire(); // panics: B -> A inverts A -> B
            })
            .unwrap()
            .join();
        let msg = panic_message(&*r.expect_err("the inverting acquire panics"));
        assert!(
            msg.starts_with("lock order inversion: ps-A -> ps-B in thread"),
            "{msg}"
        );
        assert!(msg.ends_with("ps-B -> ps-A in thread ps-t2"), "{msg}");
        // Nothing was acquired and the guard of B was released by the unwinding.
        assert!(!a.locked() && !b.locked());
    });
}

#[test]
fn self_deadlock_panics_instead_of_hanging() {
    setup();
    within(LIMIT, "panic-mode self deadlock", || {
        let a = named("pself-A");
        let a2 = a.clone();
        let r = thread::Builder::new()
            .name("pself-t".into())
            .spawn(move || {
                let _g = a2.acquire();
                let _again = a2.acquire(); // would hang forever
            })
            .unwrap()
            .join();
        let msg = panic_message(&*r.expect_err("self deadlock panics"));
        assert_eq!(
            msg,
            "deadlock: thread pself-t holds pself-A and waits for pself-A"
        );
        assert!(!a.locked(), "the first guard was released while unwinding");
    });
}

#[test]
fn consistent_order_does_not_panic() {
    setup();
    let iters = if cfg!(miri) { 5 } else { 500 };
    within(LIMIT, "panic-mode consistent order", move || {
        let (a, b) = (named("pok-A"), named("pok-B"));
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let (a, b) = (a.clone(), b.clone());
                thread::spawn(move || {
                    for _ in 0..iters {
                        let _ga = a.acquire();
                        let _gb = b.acquire();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().expect("no panic with one lock order");
        }
    });
}
