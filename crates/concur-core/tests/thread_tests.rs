//! Tests of `concur_core::thread`.
//!
//! Ports of the relevant behaviours of CPython's `Lib/test/test_threading.py`
//! (ThreadTests: ident/native_id, join with timeout, join of self, enumerate and
//! active_count after start and join, the daemon flag, default names; ExceptHookTests:
//! a custom hook gets the name and message; TimerTests: cancel before firing never runs,
//! fires once; ThreadingExceptionTests: joining the current thread, starting twice) and
//! of `Lib/test/test_threading_local.py` (values per thread, a fresh value in a new
//! thread, values dropped when their thread exits), plus concur's own guarantees (join
//! returns the value or the panic, bounded joins, self-join is an immediate error).
//!
//! Tests that change the process-wide excepthook hold `HOOK_LOCK`, so they never see
//! each other's hooks. Every wait is bounded through `common::within` or a timeout API.

mod common;

use common::{LIMIT, within};
use concur_core::thread::{self, Builder, Local, Thread, Timer};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

static HOOK_LOCK: Mutex<()> = Mutex::new(());

fn hook_lock() -> std::sync::MutexGuard<'static, ()> {
    HOOK_LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Scale down long waits under Miri (it is ~100x slower, but its clock is real).
fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---- ThreadTests -----------------------------------------------------------------------

#[test]
fn join_returns_closure_value() {
    within(LIMIT, "join value", || {
        let h = thread::spawn(|| vec![1, 2, 3]);
        assert_eq!(h.join().unwrap(), vec![1, 2, 3]);
    });
}

#[test]
fn ident_and_native_id_match_the_thread() {
    within(LIMIT, "ident", || {
        let h = thread::spawn(|| {
            (
                thread::get_ident(),
                thread::current_thread().ident(),
                thread::current_thread().native_id(),
            )
        });
        let (ident, ident2, native) = (h.ident(), h.native_id(), h.thread().clone());
        let (inside, current, native_inside) = h.join().unwrap();
        assert_ne!(ident, 0);
        assert_eq!(inside, ident);
        assert_eq!(current, ident);
        assert_eq!(native_inside, ident2);
        assert_ne!(ident, thread::get_ident());
        assert_eq!(native.ident(), ident);
        if cfg!(target_os = "linux") {
            assert!(ident2.is_some());
            assert_ne!(ident2, thread::current_thread().native_id());
        }
    });
}

#[test]
fn default_names_are_thread_n_and_std_name_matches() {
    within(LIMIT, "names", || {
        let a = thread::spawn(|| std::thread::current().name().map(str::to_owned));
        let b = thread::spawn(|| ());
        let na: u64 = a.name().strip_prefix("Thread-").unwrap().parse().unwrap();
        let nb: u64 = b.name().strip_prefix("Thread-").unwrap().parse().unwrap();
        assert!(nb > na, "names count up: {na} then {nb}");
        let std_name = a.join().unwrap();
        assert_eq!(std_name.as_deref(), Some(format!("Thread-{na}").as_str()));
        let named = Builder::new()
            .name("A")
            .spawn(thread::current_thread)
            .unwrap();
        assert_eq!(named.join().unwrap().name(), "A");
        b.join().unwrap();
    });
}

#[test]
fn daemon_flag() {
    within(LIMIT, "daemon", || {
        let d = Builder::new()
            .daemon(true)
            .spawn(|| thread::current_thread().daemon())
            .unwrap();
        assert!(d.join().unwrap());
        let n = Builder::new()
            .spawn(|| thread::current_thread().daemon())
            .unwrap();
        assert!(!n.join().unwrap(), "non-daemon by default, like Python");
        assert!(!thread::main_thread().daemon());
    });
}

#[test]
fn enumerate_and_active_count_after_start_and_join() {
    within(LIMIT, "enumerate", || {
        let (tx, rx) = mpsc::channel::<()>();
        let h = thread::spawn(move || {
            let _ = rx.recv();
        });
        let t = h.thread().clone();
        // Python: the started thread is in enumerate() as soon as start() returns.
        assert!(h.is_alive());
        assert!(thread::enumerate().contains(&t));
        assert!(thread::active_count() >= 2);
        drop(tx);
        h.join().unwrap();
        // ...and out of it once join() returned.
        assert!(!t.is_alive());
        assert!(!thread::enumerate().contains(&t));
    });
}

#[test]
fn is_alive_is_false_once_closure_panicked() {
    within(LIMIT, "is_alive", || {
        let _g = hook_lock();
        thread::set_excepthook(|_| {});
        let h = thread::spawn(|| panic!("quiet"));
        let t = h.thread().clone();
        assert!(h.join().unwrap_err().is_panic());
        assert!(!t.is_alive());
        thread::reset_excepthook();
    });
}

#[test]
fn join_timeout_lower_bound_then_join_succeeds() {
    within(LIMIT, "join_timeout", || {
        let (tx, rx) = mpsc::channel::<()>();
        let mut h = thread::spawn(move || {
            let _ = rx.recv();
            5
        });
        let timeout = ms(50);
        let start = Instant::now();
        let err = h.join_timeout(timeout).unwrap_err();
        assert!(err.is_timeout(), "{err}");
        assert!(start.elapsed() >= timeout);
        assert!(h.is_alive(), "a timed-out join leaves the thread running");
        // Thread::join_timeout times out too, and does not disturb the handle.
        assert!(h.thread().join_timeout(ms(1)).unwrap_err().is_timeout());
        drop(tx);
        assert_eq!(h.join().unwrap(), 5);
    });
}

#[test]
fn join_deadline_in_the_past_times_out_at_once() {
    within(LIMIT, "join_deadline", || {
        let (tx, rx) = mpsc::channel::<()>();
        let mut h = thread::spawn(move || rx.recv().is_err());
        assert!(h.join_deadline(Instant::now()).unwrap_err().is_timeout());
        drop(tx);
        assert!(h.join_deadline(Instant::now() + LIMIT).unwrap());
        assert!(
            h.join_deadline(Instant::now() + LIMIT)
                .unwrap_err()
                .is_already_joined()
        );
    });
}

#[test]
fn thread_join_many_times() {
    within(LIMIT, "Thread::join", || {
        let h = thread::spawn(|| 1);
        let t = h.thread().clone();
        t.join().unwrap();
        t.join().unwrap();
        t.join_timeout(Duration::ZERO).unwrap();
        assert_eq!(h.join().unwrap(), 1);
        t.join().unwrap();
    });
}

// ---- ThreadingExceptionTests: self-join ------------------------------------------------

#[test]
fn current_thread_join_is_immediate_self_join_error() {
    within(LIMIT, "self join", || {
        let err = thread::current_thread().join().unwrap_err();
        assert!(err.is_self_join());
        assert!(!err.is_timeout() && !err.is_panic());
        assert_eq!(err.to_string(), "cannot join current thread");
        // The seed's noncompliant01.py: a thread joining itself through its own handle.
        let (tx, rx) = mpsc::channel::<Thread>();
        let h = thread::spawn(move || rx.recv().unwrap().join_timeout(LIMIT));
        tx.send(h.thread().clone()).unwrap();
        assert!(h.join().unwrap().unwrap_err().is_self_join());
    });
}

#[test]
fn join_handle_moved_into_its_own_thread_is_self_join() {
    within(LIMIT, "self join via handle", || {
        let (htx, hrx) = mpsc::channel::<thread::JoinHandle<()>>();
        let (rtx, rrx) = mpsc::channel();
        let me = thread::spawn(move || {
            let own = hrx.recv().unwrap();
            rtx.send(own.join().unwrap_err().is_self_join()).unwrap();
        });
        let t = me.thread().clone();
        htx.send(me).unwrap();
        assert!(
            rrx.recv_timeout(LIMIT)
                .expect("the self-joining thread answered")
        );
        t.join_timeout(LIMIT).unwrap();
    });
}

// ---- panics --------------------------------------------------------------------------------

#[test]
fn join_of_panicking_thread_gives_message_and_location() {
    within(LIMIT, "panic", || {
        let _g = hook_lock();
        thread::set_excepthook(|_| {});
        #[rustfmt::skip]
        let (h, line) = (Builder::new().name("A").spawn(|| -> u8 { panic!("boom {}", 42) }).unwrap(), line!());
        let err = h.join().unwrap_err();
        thread::reset_excepthook();
        assert!(err.is_panic());
        assert_eq!(err.panic_message(), Some("boom 42"));
        assert_eq!(err.thread_name(), Some("A"));
        let loc = err.panic_location().unwrap();
        assert!(
            loc.contains("thread_tests.rs") && loc.contains(&format!(":{line}:")),
            "{loc}"
        );
        assert_eq!(
            err.to_string(),
            format!("thread 'A' panicked at {loc}: boom 42")
        );
        let payload = err.into_panic().unwrap();
        // The payload is a `String`, or a `&str` when rustc folded the format string.
        let text = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied());
        assert_eq!(text, Some("boom 42"));
    });
}

// ---- ExceptHookTests -------------------------------------------------------------------------

#[test]
fn custom_excepthook_gets_name_message_location_once() {
    within(LIMIT, "excepthook", || {
        let _g = hook_lock();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        thread::set_excepthook(move |a| {
            s.lock().unwrap().push((
                a.thread_name().to_owned(),
                a.message().to_owned(),
                a.location().map(str::to_owned),
                a.thread_ident(),
            ));
        });
        let h = Builder::new()
            .name("excepthook_thread")
            .spawn(|| panic!("bug"))
            .unwrap();
        let ident = h.ident();
        let err = h.join().unwrap_err();
        thread::reset_excepthook();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "called exactly once: {seen:?}");
        let (name, msg, loc, id) = &seen[0];
        assert_eq!(name, "excepthook_thread");
        assert_eq!(msg, "bug");
        assert_eq!(loc.as_deref(), err.panic_location());
        assert_eq!(*id, ident);
        assert!(err.is_panic(), "the panic still reaches join");
    });
}

#[test]
fn panicking_excepthook_does_not_lose_the_error() {
    within(LIMIT, "excepthook panics", || {
        let _g = hook_lock();
        thread::set_excepthook(|_| panic!("hook is broken"));
        let h = Builder::new()
            .name("B")
            .spawn(|| panic!("original"))
            .unwrap();
        let err = h.join().unwrap_err();
        thread::reset_excepthook();
        assert_eq!(err.panic_message(), Some("original"));
        // The process carries on and threads still work.
        assert_eq!(thread::spawn(|| 3).join().unwrap(), 3);
    });
}

#[test]
fn excepthook_not_called_without_panic() {
    within(LIMIT, "no panic no hook", || {
        let _g = hook_lock();
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        thread::set_excepthook(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
        });
        thread::spawn(|| ()).join().unwrap();
        thread::reset_excepthook();
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    });
}

// ---- current / main / dummy ---------------------------------------------------------------

#[test]
fn main_thread_from_spawned_thread() {
    within(LIMIT, "main_thread", || {
        let main = thread::spawn(thread::main_thread).join().unwrap();
        assert_eq!(main.name(), "MainThread");
        assert_eq!(main, thread::main_thread());
        // In `cargo test`, test bodies run on other threads: the main thread is the harness's.
        assert_ne!(main.ident(), thread::get_ident());
        assert!(main.is_alive());
        assert!(thread::enumerate().contains(&main));
        #[cfg(target_os = "linux")]
        assert_eq!(main.native_id(), Some(u64::from(std::process::id())));
        assert!(main.join_timeout(ms(1)).unwrap_err().is_timeout());
    });
}

#[test]
fn dummy_thread_registered_and_removed_at_exit() {
    within(LIMIT, "dummy", || {
        let (tx, rx) = mpsc::channel::<()>();
        let (ttx, trx) = mpsc::channel::<Thread>();
        let std_h = std::thread::spawn(move || {
            let me = thread::current_thread();
            assert!(me.name().starts_with("Dummy-"));
            assert!(me.daemon());
            assert_eq!(me.ident(), thread::get_ident());
            assert_eq!(me, thread::current_thread(), "registered once");
            ttx.send(me).unwrap();
            let _ = rx.recv();
        });
        let dummy = trx.recv().unwrap();
        assert!(dummy.is_alive());
        assert!(thread::enumerate().contains(&dummy));
        drop(tx);
        std_h.join().unwrap();
        // The thread-local destructor ran when the std thread exited.
        dummy.join_timeout(LIMIT).unwrap();
        assert!(!dummy.is_alive());
        assert!(!thread::enumerate().contains(&dummy));
    });
}

#[test]
fn wait_non_daemon_waits_for_non_daemon_only() {
    within(LIMIT, "wait_non_daemon", || {
        let (tx, rx) = mpsc::channel::<()>();
        let daemon = Builder::new()
            .daemon(true)
            .spawn(move || {
                let _ = rx.recv();
            })
            .unwrap();
        let worker = thread::spawn(|| std::thread::sleep(ms(20)));
        let t = worker.thread().clone();
        drop(worker);
        // Other tests' threads may be running too; all are bounded, so this ends.
        assert!(thread::wait_non_daemon_timeout(LIMIT));
        assert!(!t.is_alive());
        assert!(daemon.is_alive(), "daemons are not waited for");
        drop(tx);
        daemon.join().unwrap();
    });
}

// ---- TimerTests -------------------------------------------------------------------------------

#[test]
fn timer_fires_once() {
    within(LIMIT, "timer fires", || {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let start = Instant::now();
        let t = Timer::new(ms(30), move || {
            c.fetch_add(1, Ordering::SeqCst);
        });
        assert!(!t.is_alive() && !t.finished());
        t.start().unwrap();
        t.join_timeout(LIMIT).unwrap();
        assert!(start.elapsed() >= ms(30));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(t.has_fired() && t.finished() && !t.is_cancelled() && !t.is_alive());
        t.cancel(); // after firing: a no-op
        assert!(!t.is_cancelled());
        assert_eq!(
            t.start().unwrap_err().kind(),
            std::io::ErrorKind::AlreadyExists
        );
    });
}

#[test]
fn timer_cancel_before_fire_never_runs() {
    within(LIMIT, "timer cancel", || {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let t = Timer::new(Duration::from_secs(3600), move || {
            c.fetch_add(1, Ordering::SeqCst);
        });
        t.start().unwrap();
        assert!(t.is_alive());
        t.cancel();
        assert!(t.finished() && t.is_cancelled());
        t.join_timeout(LIMIT).unwrap();
        assert!(!t.has_fired());
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    });
}

#[test]
#[cfg_attr(miri, ignore)] // many real-time races: too slow under Miri
fn timer_cancel_racing_fire_runs_at_most_once_and_never_after_cancel() {
    within(LIMIT, "timer race", || {
        for i in 0..50u64 {
            let calls = Arc::new(AtomicUsize::new(0));
            let c = calls.clone();
            let t = Timer::new(Duration::from_micros(i * 20), move || {
                c.fetch_add(1, Ordering::SeqCst);
            });
            t.start().unwrap();
            std::thread::sleep(Duration::from_micros(500));
            t.cancel();
            let fired = t.has_fired();
            t.join_timeout(LIMIT).unwrap();
            assert_eq!(calls.load(Ordering::SeqCst), usize::from(fired));
        }
    });
}

#[test]
fn timer_join_before_start_is_an_error() {
    let t = Timer::new(Duration::ZERO, || ());
    assert!(t.join().unwrap_err().is_not_started());
}

// ---- test_threading_local ------------------------------------------------------------------

struct Counted(Arc<AtomicUsize>);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn local_values_are_per_thread() {
    within(LIMIT, "local per thread", || {
        let local = Local::new(|| 0usize);
        let n = if cfg!(miri) { 3 } else { 10 };
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let local = local.clone();
                thread::spawn(move || {
                    local.set(i);
                    std::thread::yield_now();
                    local.get()
                })
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(h.join().unwrap(), i);
        }
        assert_eq!(local.get(), 0, "the main thread's value is untouched");
    });
}

#[test]
fn local_fresh_value_in_new_thread() {
    within(LIMIT, "local fresh", || {
        let inits = Arc::new(AtomicUsize::new(0));
        let i = inits.clone();
        let local = Local::new(move || {
            i.fetch_add(1, Ordering::SeqCst);
            String::from("init")
        });
        local.with_mut(|s| s.push_str("-changed"));
        let l2 = local.clone();
        let other = thread::spawn(move || l2.get()).join().unwrap();
        assert_eq!(other, "init");
        assert_eq!(local.get(), "init-changed");
        assert_eq!(
            inits.load(Ordering::SeqCst),
            2,
            "init runs once per thread, lazily"
        );
    });
}

#[test]
fn local_values_dropped_when_thread_exits() {
    within(LIMIT, "local drop at exit", || {
        let drops = Arc::new(AtomicUsize::new(0));
        let d = drops.clone();
        let local = Local::new(move || Counted(d.clone()));
        let n = if cfg!(miri) { 2 } else { 10 };
        for _ in 0..n {
            let l = local.clone();
            thread::spawn(move || l.with(|_| ())).join().unwrap();
        }
        // join waits for the thread's exit, thread-local destructors included.
        assert_eq!(drops.load(Ordering::SeqCst), n);
        local.with(|_| ());
        drop(local);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            n + 1,
            "the last handle drops this thread's value"
        );
    });
}

#[test]
fn local_take_and_set() {
    let local = Local::new(|| 1);
    assert_eq!(local.take(), None);
    local.set(4);
    assert_eq!(local.get(), 4);
    assert_eq!(local.take(), Some(4));
    assert_eq!(local.get(), 1);
}

#[test]
#[should_panic(expected = "borrow")]
fn local_with_mut_inside_with_panics() {
    let local = Local::new(|| 1);
    local.with(|_| local.with_mut(|v| *v = 2));
}

#[test]
fn stack_size_is_honoured_enough_to_run() {
    within(LIMIT, "stack size", || {
        let h = Builder::new()
            .stack_size(64 * 1024)
            .spawn(|| 1 + 1)
            .unwrap();
        assert_eq!(h.join().unwrap(), 2);
    });
}

// ---- the default report, seen from outside the process -------------------------------------

/// Re-runs this test binary on the one test below, in "child" mode, and checks its stderr:
/// the default excepthook reports a concur thread's panic exactly once, Rust's own panic
/// message for that thread is suppressed, and other threads' panics still reach Rust's
/// default hook (the panic hook chains).
#[test]
#[cfg_attr(miri, ignore)] // spawns a process
fn default_hook_reports_once_and_chains_for_other_threads() {
    if std::env::var_os("CONCUR_THREAD_TEST_CHILD").is_some() {
        let err = Builder::new()
            .name("Reporter")
            .spawn(|| panic!("reported once"))
            .unwrap()
            .join()
            .unwrap_err();
        assert!(err.is_panic());
        let plain = std::thread::Builder::new()
            .name("plain".into())
            .spawn(|| panic!("plain panic"))
            .unwrap();
        assert!(plain.join().is_err());
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = within(LIMIT, "child test process", move || {
        std::process::Command::new(exe)
            .args([
                "--exact",
                "default_hook_reports_once_and_chains_for_other_threads",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("CONCUR_THREAD_TEST_CHILD", "1")
            .env_remove("RUST_BACKTRACE")
            .output()
            .unwrap()
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {stderr}");
    assert_eq!(
        stderr.matches("Exception in thread Reporter:").count(),
        1,
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("reported once").count(),
        1,
        "reported exactly once: {stderr}"
    );
    assert!(
        stderr.contains("panicked at ") && stderr.contains("thread_tests.rs"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("thread 'Reporter' panicked"),
        "Rust's own message suppressed: {stderr}"
    );
    assert!(
        stderr.contains("thread 'plain'") && stderr.contains("plain panic"),
        "chained to the previous hook: {stderr}"
    );
}

#[test]
fn many_threads_join_one_thread_concurrently() {
    within(LIMIT, "concurrent Thread::join", || {
        let (tx, rx) = mpsc::channel::<()>();
        let target = thread::spawn(move || {
            let _ = rx.recv();
            9
        });
        let t = target.thread().clone();
        let joiners: Vec<_> = (0..3)
            .map(|_| {
                let t = t.clone();
                thread::spawn(move || t.join_timeout(LIMIT).is_ok())
            })
            .collect();
        drop(tx);
        for j in joiners {
            assert!(j.join().unwrap());
        }
        assert_eq!(target.join().unwrap(), 9);
    });
}

#[test]
fn join_error_converts_into_boxed_error() {
    fn run() -> Result<u8, Box<dyn std::error::Error + Send + Sync>> {
        Ok(thread::spawn(|| 4u8).join()?)
    }
    assert_eq!(within(LIMIT, "? on JoinError", || run().unwrap()), 4);
}
