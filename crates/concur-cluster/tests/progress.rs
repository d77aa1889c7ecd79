//! Progress from inside a task, seen on its `Future` on every tier: the same task on a
//! `ThreadPoolExecutor`, a `ProcessPoolExecutor` and a `RedisExecutor` (a worker on a
//! process pool, and one on a thread pool) reports `progress(i, Some(N))` as it goes;
//! the caller's progress callback sees the reports in order, and `Future::progress`
//! the last one.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use concur_cluster::RedisExecutor;
use concur_core::futures::{Executor, Future, Progress, ThreadPoolExecutor, progress};
use concur_process::ProcessPoolExecutor;
use support::{WorkerSpec, pool, redis, within};

const STEPS: usize = 5;

/// Counts to `STEPS`, reporting each step, `ms` apart.
fn steps(ms: u64) -> usize {
    for i in 1..=STEPS {
        std::thread::sleep(Duration::from_millis(ms));
        assert!(progress(i, Some(STEPS)), "not inside a task");
    }
    STEPS
}

/// Checks what the future of `steps(150)` saw.
fn check(f: Future<usize>, tier: &str) {
    let seen = Arc::new(Mutex::new(Vec::<Progress>::new()));
    let s = seen.clone();
    f.add_progress_callback(move |p| s.lock().unwrap().push(p));
    assert_eq!(f.result().unwrap(), STEPS, "{tier}");
    let seen = seen.lock().unwrap().clone();
    assert!(!seen.is_empty(), "{tier}: no progress reached the future");
    assert!(
        seen.windows(2).all(|w| w[0].done <= w[1].done),
        "{tier}: progress out of order: {seen:?}"
    );
    assert!(
        seen.iter()
            .all(|p| p.total == Some(STEPS) && p.done >= 1 && p.done <= STEPS)
    );
    assert!(
        seen.len() >= 3,
        "{tier}: only {seen:?} of {STEPS} steps 150 ms apart arrived"
    );
    let last = f.progress().expect("the last progress stays readable");
    assert_eq!(last.total, Some(STEPS), "{tier}");
}

#[test]
fn progress_reaches_the_future_on_every_tier() {
    within(Duration::from_secs(180), "progress", || {
        check(
            ThreadPoolExecutor::new(1).call(steps, 150).unwrap(),
            "threads",
        );
        check(
            ProcessPoolExecutor::new(1).call(steps, 150).unwrap(),
            "processes",
        );
        let redis = redis();
        for threads in [false, true] {
            let p = pool("progress");
            let mut spec = WorkerSpec::new(&redis.url(), &p).slots(1);
            spec.threads = threads;
            let w = spec.spawn();
            let ex = RedisExecutor::connect(&redis.url(), &p).unwrap();
            let tier = if threads {
                "cluster (thread pool worker)"
            } else {
                "cluster"
            };
            check(ex.call(steps, 150).unwrap(), tier);
            w.stop();
        }
        // Outside a task, progress goes nowhere.
        assert!(!progress(1, None));
    });
}
