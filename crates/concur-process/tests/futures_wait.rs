//! `futures::wait`, ported in full from CPython 3.13's
//! `Lib/test/test_concurrent_futures/test_wait.py` (`WaitTests`, and
//! `ThreadPoolWaitTests.test_pending_calls_race`), run as CPython runs them: against the
//! thread pool and against the process pool with each start method. The four
//! ready-made futures of `test_concurrent_futures/util.py` are [`Promise`]s:
//!
//! - `CANCELLED_FUTURE`: cancelled by its user while its promise lives and has not
//!   acknowledged it (Python's `CANCELLED` state);
//! - `CANCELLED_AND_NOTIFIED_FUTURE`: cancelled, then acknowledged by the promise's
//!   `set_running` (Python's `set_running_or_notify_cancel`);
//! - `EXCEPTION_FUTURE`, `SUCCESSFUL_FUTURE`: finished with an error, with 42.
//!
//! The expected sets are CPython's own output: running each scenario on CPython 3.13.0
//! (a script doing exactly what each test below does, with `futures.wait` on a
//! `ThreadPoolExecutor(5)`) prints
//!
//! ```text
//! test_20369: done=['future'] not_done=[]
//! test_first_completed: done=['future1'] not_done=['CANCELLED', 'future2']
//! test_first_completed_some_already_completed: done=['CANCELLED_AND_NOTIFIED', 'SUCCESSFUL'] not_done=['future1']
//! test_first_exception: done=['future1', 'future2'] not_done=['future3']
//! test_first_exception_some_already_complete: done=['CANCELLED_AND_NOTIFIED', 'SUCCESSFUL', 'future1'] not_done=['CANCELLED', 'future2']
//! test_first_exception_one_already_failed: done=['EXCEPTION'] not_done=['future1']
//! test_all_completed: done=['CANCELLED_AND_NOTIFIED', 'EXCEPTION', 'SUCCESSFUL', 'future1', 'future2'] not_done=[]
//! test_timeout: done=['CANCELLED_AND_NOTIFIED', 'EXCEPTION', 'SUCCESSFUL'] not_done=['future']
//! cancelled_alone_FIRST_COMPLETED: done=[] not_done=['CANCELLED']
//! cancelled_and_successful_FIRST_COMPLETED: done=['SUCCESSFUL'] not_done=['CANCELLED']
//! cancelled_then_notified_FIRST_COMPLETED: done=['CANCELLED'] not_done=[]
//! cancelled_alone_FIRST_EXCEPTION: done=[] not_done=['CANCELLED']
//! cancelled_and_successful_FIRST_EXCEPTION: done=['SUCCESSFUL'] not_done=['CANCELLED']
//! cancelled_then_notified_FIRST_EXCEPTION: done=['CANCELLED'] not_done=[]
//! cancelled_alone_ALL_COMPLETED: done=[] not_done=['CANCELLED']
//! cancelled_and_successful_ALL_COMPLETED: done=['SUCCESSFUL'] not_done=['CANCELLED']
//! cancelled_then_notified_ALL_COMPLETED: done=['CANCELLED'] not_done=[]
//! ```
//!
//! (the last nine go beyond the file: a user-cancelled future under every
//! `return_when`, with a 50 ms timeout, alone, beside a finished one, and acknowledged
//! 50 ms into the wait). The tests below assert the same sets. The sleeps are
//! CPython's, scaled by 0.4; only lower bounds on time are asserted.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::within;
use concur_core::futures::{
    Executor, Future, Promise, ReturnWhen, TaskError, ThreadPoolExecutor, wait,
};
use concur_process::{ProcessPoolExecutor, StartMethod};

/// A bound on any one test body.
const BOUND: Duration = Duration::from_secs(120);

/// CPython's sleeps, scaled.
const SHORT: u64 = 600; // 1.5 s
const LONG: u64 = 1200; // 3 s
const TWO: u64 = 800; // 2 s

fn mul((x, y): (i64, i64)) -> i64 {
    x * y
}

fn sleep(ms: u64) -> i64 {
    std::thread::sleep(Duration::from_millis(ms));
    0
}

fn divmod((x, y): (i64, i64)) -> i64 {
    x / y // panics on zero, as divmod raises ZeroDivisionError
}

fn sleep_and_raise(ms: u64) -> i64 {
    std::thread::sleep(Duration::from_millis(ms));
    panic!("this is an exception")
}

/// `util.py`'s futures. The promises are kept: a cancelled future's cancellation stays
/// unacknowledged while its promise lives and says nothing.
struct Ready {
    cancelled: Future<i64>,
    cancelled_and_notified: Future<i64>,
    exception: Future<i64>,
    successful: Future<i64>,
    _promises: Vec<Promise<i64>>,
}

fn ready() -> Ready {
    let (c, cn, e, s) = (
        Promise::new(),
        Promise::new(),
        Promise::new(),
        Promise::new(),
    );
    assert!(c.future().cancel());
    assert!(cn.future().cancel());
    assert!(
        !cn.set_running(),
        "notify: the promise acknowledges the cancellation"
    );
    assert!(e.set_error(TaskError::user("OSError")));
    assert!(s.set_result(42));
    Ready {
        cancelled: c.future(),
        cancelled_and_notified: cn.future(),
        exception: e.future(),
        successful: s.future(),
        _promises: vec![c, cn, e, s],
    }
}

/// The names of `set` (futures of `fs`, named by `names` in the same order).
fn named(set: &[&Future<i64>], fs: &[Future<i64>], names: &[&str]) -> BTreeSet<String> {
    set.iter()
        .map(|f| {
            let i = fs
                .iter()
                .position(|g| g == *f)
                .expect("a future of the input");
            names[i].to_owned()
        })
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

macro_rules! wait_tests {
    ($name:ident, $new:expr) => {
        mod $name {
            use super::*;

            #[test]
            fn test_20369() {
                within(BOUND, "bpo-20369", || {
                    let ex = ($new)();
                    let future = ex.call(sleep, SHORT).unwrap();
                    let fs = vec![future.clone(), future];
                    let r = wait(&fs, None, ReturnWhen::AllCompleted);
                    assert_eq!(r.done.len(), 1, "one future, given twice");
                    assert!(r.not_done.is_empty());
                });
            }

            #[test]
            fn test_first_completed() {
                within(BOUND, "first completed", || {
                    let ex = ($new)();
                    let r0 = ready();
                    let future1 = ex.call(mul, (21, 2)).unwrap();
                    let future2 = ex.call(sleep, SHORT).unwrap();
                    let fs = vec![r0.cancelled.clone(), future1, future2];
                    let names = ["CANCELLED", "future1", "future2"];
                    let r = wait(&fs, None, ReturnWhen::FirstCompleted);
                    assert_eq!(named(&r.done, &fs, &names), set(&["future1"]));
                    assert_eq!(
                        named(&r.not_done, &fs, &names),
                        set(&["CANCELLED", "future2"])
                    );
                });
            }

            #[test]
            fn test_first_completed_some_already_completed() {
                within(BOUND, "first completed, some done", || {
                    let ex = ($new)();
                    let r0 = ready();
                    let future1 = ex.call(sleep, SHORT).unwrap();
                    let fs = vec![
                        r0.cancelled_and_notified.clone(),
                        r0.successful.clone(),
                        future1,
                    ];
                    let names = ["CANCELLED_AND_NOTIFIED", "SUCCESSFUL", "future1"];
                    let r = wait(&fs, None, ReturnWhen::FirstCompleted);
                    assert_eq!(
                        named(&r.done, &fs, &names),
                        set(&["CANCELLED_AND_NOTIFIED", "SUCCESSFUL"])
                    );
                    assert_eq!(named(&r.not_done, &fs, &names), set(&["future1"]));
                });
            }

            #[test]
            fn test_first_exception() {
                within(BOUND, "first exception", || {
                    let ex = ($new)();
                    let future1 = ex.call(mul, (2, 21)).unwrap();
                    let future2 = ex.call(sleep_and_raise, SHORT).unwrap();
                    let future3 = ex.call(sleep, LONG).unwrap();
                    let fs = vec![future1, future2, future3];
                    let names = ["future1", "future2", "future3"];
                    let t = Instant::now();
                    let r = wait(&fs, None, ReturnWhen::FirstException);
                    assert!(t.elapsed() >= Duration::from_millis(SHORT / 2));
                    assert_eq!(named(&r.done, &fs, &names), set(&["future1", "future2"]));
                    assert_eq!(named(&r.not_done, &fs, &names), set(&["future3"]));
                    assert!(fs[1].exception(None).unwrap().unwrap().is_panic());
                });
            }

            #[test]
            fn test_first_exception_some_already_complete() {
                within(BOUND, "first exception, some done", || {
                    let ex = ($new)();
                    let r0 = ready();
                    let future1 = ex.call(divmod, (21, 0)).unwrap();
                    let future2 = ex.call(sleep, SHORT).unwrap();
                    let fs = vec![
                        r0.successful.clone(),
                        r0.cancelled.clone(),
                        r0.cancelled_and_notified.clone(),
                        future1,
                        future2,
                    ];
                    let names = [
                        "SUCCESSFUL",
                        "CANCELLED",
                        "CANCELLED_AND_NOTIFIED",
                        "future1",
                        "future2",
                    ];
                    let r = wait(&fs, None, ReturnWhen::FirstException);
                    assert_eq!(
                        named(&r.done, &fs, &names),
                        set(&["SUCCESSFUL", "CANCELLED_AND_NOTIFIED", "future1"])
                    );
                    assert_eq!(
                        named(&r.not_done, &fs, &names),
                        set(&["CANCELLED", "future2"])
                    );
                    let _ = fs[3].exception(None);
                });
            }

            #[test]
            fn test_first_exception_one_already_failed() {
                within(BOUND, "first exception, one failed", || {
                    let ex = ($new)();
                    let r0 = ready();
                    let future1 = ex.call(sleep, TWO).unwrap();
                    let fs = vec![r0.exception.clone(), future1];
                    let names = ["EXCEPTION", "future1"];
                    let r = wait(&fs, None, ReturnWhen::FirstException);
                    assert_eq!(named(&r.done, &fs, &names), set(&["EXCEPTION"]));
                    assert_eq!(named(&r.not_done, &fs, &names), set(&["future1"]));
                    let _ = fs[0].exception(None);
                });
            }

            #[test]
            fn test_all_completed() {
                within(BOUND, "all completed", || {
                    let ex = ($new)();
                    let r0 = ready();
                    let future1 = ex.call(divmod, (2, 0)).unwrap();
                    let future2 = ex.call(mul, (2, 21)).unwrap();
                    let fs = vec![
                        r0.successful.clone(),
                        r0.cancelled_and_notified.clone(),
                        r0.exception.clone(),
                        future1,
                        future2,
                    ];
                    let names = [
                        "SUCCESSFUL",
                        "CANCELLED_AND_NOTIFIED",
                        "EXCEPTION",
                        "future1",
                        "future2",
                    ];
                    let r = wait(&fs, None, ReturnWhen::AllCompleted);
                    assert_eq!(
                        named(&r.done, &fs, &names),
                        set(&[
                            "SUCCESSFUL",
                            "CANCELLED_AND_NOTIFIED",
                            "EXCEPTION",
                            "future1",
                            "future2"
                        ])
                    );
                    assert!(r.not_done.is_empty());
                    let _ = (fs[2].exception(None), fs[3].exception(None));
                });
            }

            #[test]
            fn test_timeout() {
                within(BOUND, "timeout", || {
                    let ex = ($new)();
                    let r0 = ready();
                    let short = Duration::from_millis(50);
                    let future = ex.call(sleep, 500).unwrap();
                    let fs = vec![
                        r0.cancelled_and_notified.clone(),
                        r0.exception.clone(),
                        r0.successful.clone(),
                        future,
                    ];
                    let names = [
                        "CANCELLED_AND_NOTIFIED",
                        "EXCEPTION",
                        "SUCCESSFUL",
                        "future",
                    ];
                    let t = Instant::now();
                    let r = wait(&fs, Some(short), ReturnWhen::AllCompleted);
                    assert!(t.elapsed() >= short);
                    assert_eq!(
                        named(&r.done, &fs, &names),
                        set(&["CANCELLED_AND_NOTIFIED", "EXCEPTION", "SUCCESSFUL"])
                    );
                    assert_eq!(named(&r.not_done, &fs, &names), set(&["future"]));
                    let _ = fs[1].exception(None);
                });
            }

            #[test]
            fn test_pending_calls_race() {
                // bpo-14406: many futures finishing while `wait` installs its waiter.
                within(BOUND, "pending calls race", || {
                    let ex = ($new)();
                    let fs: Vec<Future<i64>> =
                        (0..100).map(|i| ex.call(mul, (i, 1)).unwrap()).collect();
                    let r = wait(&fs, None, ReturnWhen::AllCompleted);
                    assert_eq!(r.done.len(), 100);
                });
            }
        }
    };
}

wait_tests!(threads, || ThreadPoolExecutor::new(5));
wait_tests!(process_forkserver, || ProcessPoolExecutor::builder()
    .max_workers(5)
    .start_method(StartMethod::ForkServer)
    .build());
wait_tests!(process_spawn, || ProcessPoolExecutor::builder()
    .max_workers(5)
    .start_method(StartMethod::Spawn)
    .build());

// ---- beyond the file: a user-cancelled future under every `return_when` -------------

const WHENS: [ReturnWhen; 3] = [
    ReturnWhen::FirstCompleted,
    ReturnWhen::FirstException,
    ReturnWhen::AllCompleted,
];

#[test]
fn an_unacknowledged_cancellation_is_not_done_for_any_return_when() {
    for when in WHENS {
        let p = Promise::<i64>::new();
        assert!(p.future().cancel());
        let fs = vec![p.future()];
        let t = Instant::now();
        let r = wait(&fs, Some(Duration::from_millis(50)), when);
        assert!(t.elapsed() >= Duration::from_millis(50), "{when:?}");
        assert!(r.done.is_empty(), "{when:?}");
        assert_eq!(r.not_done.len(), 1, "{when:?}");
        // Everything else sees the cancellation at once.
        assert!(fs[0].done() && fs[0].cancelled());
        assert!(fs[0].result().unwrap_err().is_cancelled());
        drop(p);
    }
}

#[test]
fn an_unacknowledged_cancellation_beside_a_finished_future() {
    for when in WHENS {
        let (c, s) = (Promise::<i64>::new(), Promise::<i64>::new());
        assert!(c.future().cancel());
        assert!(s.set_result(1));
        let fs = vec![c.future(), s.future()];
        let names = ["CANCELLED", "SUCCESSFUL"];
        let r = wait(&fs, Some(Duration::from_millis(50)), when);
        assert_eq!(
            named(&r.done, &fs, &names),
            set(&["SUCCESSFUL"]),
            "{when:?}"
        );
        assert_eq!(
            named(&r.not_done, &fs, &names),
            set(&["CANCELLED"]),
            "{when:?}"
        );
        drop(c);
    }
}

#[test]
fn a_cancellation_acknowledged_during_the_wait_ends_it() {
    for when in WHENS {
        within(BOUND, "acknowledged during the wait", move || {
            let c = Promise::<i64>::new();
            assert!(c.future().cancel());
            let fs = vec![c.future()];
            let t = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                assert!(!c.set_running(), "set_running_or_notify_cancel");
            });
            let r = wait(&fs, Some(Duration::from_secs(30)), when);
            assert_eq!(r.done.len(), 1, "{when:?}");
            assert!(r.not_done.is_empty(), "{when:?}");
            t.join().unwrap();
        });
    }
}

#[test]
fn a_dropped_promise_acknowledges_its_cancelled_future() {
    let c = Promise::<i64>::new();
    assert!(c.future().cancel());
    let fs = vec![c.future()];
    drop(c);
    let r = wait(&fs, None, ReturnWhen::AllCompleted);
    assert_eq!(r.done.len(), 1);
}

#[test]
fn futures_cancelled_in_a_pool_queue_are_done_at_once() {
    // The pool takes a cancelled task out of its queue at once (it knows), so `wait`
    // does not wait for a worker to reach it.
    within(BOUND, "cancelled in a queue", || {
        let pool = ThreadPoolExecutor::new(1);
        let busy = pool.call(sleep, 300).unwrap();
        let queued = pool.call(sleep, 0).unwrap();
        assert!(queued.cancel());
        let fs = vec![queued];
        // A zero timeout: what `wait` finds done without waiting at all.
        let r = wait(&fs, Some(Duration::ZERO), ReturnWhen::AllCompleted);
        assert_eq!(r.done.len(), 1);
        let _ = busy.result();
        let procs = ProcessPoolExecutor::new(1);
        let busy = procs.call(sleep, 300).unwrap();
        let queued = procs.call(sleep, 0).unwrap();
        assert!(queued.cancel());
        let fs = vec![queued];
        let r = wait(&fs, Some(Duration::ZERO), ReturnWhen::AllCompleted);
        assert_eq!(r.done.len(), 1);
        let _ = busy.result();
    });
}
