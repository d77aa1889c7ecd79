//! Delivery under faults: every future settles exactly once, whatever happens to the
//! workers. A worker SIGKILLed mid-task, one SIGSTOPped past its lease and resumed, a
//! task three times longer than the lease on a healthy worker, and chaos (workers
//! killed and restarted every 500 ms under 10,000 tasks).
//!
//! Each test runs its own `redis-server` and its own worker processes (children of
//! this test binary), and reaps them.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use concur_cluster::RedisExecutor;
use concur_core::futures::{Executor, Future};
use support::{WorkerSpec, eventually, pool, pool_stat, raw, redis, within};

const BOUND: Duration = Duration::from_secs(240);
const LEASE_MS: u64 = 1000;

/// Counts its runs in Redis (`INCR key`), then sleeps `ms`: the count it returns says
/// how many times the task started.
fn count_runs((url, key, ms): (String, String, u64)) -> u64 {
    let mut con = raw(&url);
    let n: u64 = redis::cmd("INCR").arg(&key).query(&mut con).unwrap();
    std::thread::sleep(Duration::from_millis(ms));
    n
}

fn double(x: u64) -> u64 {
    x * 2
}

fn runs(url: &str, key: &str) -> u64 {
    redis::cmd("GET")
        .arg(key)
        .query::<Option<u64>>(&mut raw(url))
        .unwrap()
        .unwrap_or(0)
}

/// Counts how many outcomes a future gets.
fn settle_count<T: Send + 'static>(f: &Future<T>) -> Arc<AtomicU32> {
    let n = Arc::new(AtomicU32::new(0));
    let m = n.clone();
    f.add_done_callback(move |_| {
        m.fetch_add(1, Ordering::SeqCst);
    });
    n
}

#[test]
fn a_worker_killed_mid_task_loses_nothing() {
    within(BOUND, "SIGKILL mid-task", || {
        let redis = redis();
        let (url, pool) = (redis.url(), pool("kill"));
        let a = WorkerSpec::new(&url, &pool)
            .slots(1)
            .lease_ms(LEASE_MS)
            .spawn();
        let ex = RedisExecutor::builder(&url, &pool)
            .retry_backoff(Duration::ZERO)
            .connect()
            .unwrap();
        let f = ex
            .call(count_runs, (url.clone(), "runs".to_owned(), 1500))
            .unwrap();
        let settled = settle_count(&f);
        eventually(
            Duration::from_secs(60),
            "the task starts on worker A",
            || runs(&url, "runs") == 1,
        );
        let b = WorkerSpec::new(&url, &pool)
            .slots(1)
            .lease_ms(LEASE_MS)
            .spawn();
        let killed = Instant::now();
        a.kill();
        let n = f.result_timeout(Duration::from_secs(120)).unwrap();
        let took = killed.elapsed();
        assert_eq!(n, 2, "the task ran again on worker B, after A died with it");
        // Taken back only once A's lease had lapsed (A renewed it a beat before dying).
        assert!(
            took >= Duration::from_millis(LEASE_MS * 3 / 4),
            "reclaimed before the lease lapsed: {took:?}"
        );
        eprintln!(
            "completed on worker B {took:?} after worker A was killed (lease {LEASE_MS} ms, task 1.5 s)"
        );
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(settled.load(Ordering::SeqCst), 1, "one outcome");
        assert_eq!(ex.late_results(), 0);
        let stats = b.stop();
        assert_eq!(stats.retried, 1, "{stats:?}");
    });
}

#[test]
fn a_worker_stopped_past_its_lease_is_taken_over_and_its_late_result_dropped() {
    within(BOUND, "SIGSTOP past the lease", || {
        let redis = redis();
        let (url, pool) = (redis.url(), pool("stop"));
        let a = WorkerSpec::new(&url, &pool)
            .slots(1)
            .lease_ms(LEASE_MS)
            .spawn();
        let ex = RedisExecutor::builder(&url, &pool)
            .retry_backoff(Duration::ZERO)
            .connect()
            .unwrap();
        let f = ex
            .call(count_runs, (url.clone(), "runs".to_owned(), 2500))
            .unwrap();
        let settled = settle_count(&f);
        eventually(
            Duration::from_secs(60),
            "the task starts on worker A",
            || runs(&url, "runs") == 1,
        );
        a.signal(libc::SIGSTOP);
        let b = WorkerSpec::new(&url, &pool)
            .slots(1)
            .lease_ms(LEASE_MS)
            .spawn();
        let n = f.result_timeout(Duration::from_secs(120)).unwrap();
        assert_eq!(n, 2, "worker B took the task over and ran it");
        a.signal(libc::SIGCONT);
        // A's own run (its pool process was not stopped) ends; its completion is late.
        let mut con = raw(&url);
        eventually(
            Duration::from_secs(60),
            "A's late completion is counted",
            || pool_stat(&mut con, &pool, "late") >= 1,
        );
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            settled.load(Ordering::SeqCst),
            1,
            "the caller saw one outcome"
        );
        assert_eq!(ex.late_results(), 0, "no second result reached the caller");
        let sa = a.stop();
        assert!(sa.late + sa.leases_lost >= 1, "{sa:?}");
        let sb = b.stop();
        assert_eq!((sb.retried, sb.completed), (1, 1), "{sb:?}");
    });
}

#[test]
fn a_task_three_times_longer_than_the_lease_runs_once_on_a_healthy_worker() {
    within(BOUND, "long task", || {
        let redis = redis();
        let (url, pool) = (redis.url(), pool("long"));
        let workers: Vec<_> = (0..2)
            .map(|_| {
                WorkerSpec::new(&url, &pool)
                    .slots(1)
                    .lease_ms(LEASE_MS)
                    .spawn()
            })
            .collect();
        let ex = RedisExecutor::connect(&url, &pool).unwrap();
        let f = ex
            .call(
                count_runs,
                (url.clone(), "runs".to_owned(), 3 * LEASE_MS + 500),
            )
            .unwrap();
        assert_eq!(f.result_timeout(Duration::from_secs(120)).unwrap(), 1);
        // Nobody took it over meanwhile, nor after.
        std::thread::sleep(Duration::from_millis(2 * LEASE_MS));
        assert_eq!(runs(&url, "runs"), 1, "the task started twice");
        let mut con = raw(&url);
        assert_eq!(pool_stat(&mut con, &pool, "retried"), 0);
        for w in workers {
            let s = w.stop();
            assert_eq!(s.leases_lost, 0, "{s:?}");
        }
    });
}

#[test]
fn chaos_workers_killed_and_restarted_every_500_ms() {
    within(BOUND, "chaos", || {
        const TASKS: u64 = 10_000;
        let redis = redis();
        let (url, pool) = (redis.url(), pool("chaos"));
        let spec = WorkerSpec::new(&url, &pool).slots(2).lease_ms(LEASE_MS);
        let mut workers: Vec<_> = (0..3).map(|_| spec.spawn()).collect();
        let ex = RedisExecutor::builder(&url, &pool)
            .max_attempts(100)
            .retry_backoff(Duration::ZERO)
            .connect()
            .unwrap();
        let fs: Vec<_> = (0..TASKS).map(|i| ex.call(double, i).unwrap()).collect();
        let counts: Vec<_> = fs.iter().map(settle_count).collect();
        let mut kills = 0;
        let mut next = 0;
        while fs.iter().any(|f| !f.done()) {
            std::thread::sleep(Duration::from_millis(500));
            let w = std::mem::replace(&mut workers[next], spec.spawn());
            w.kill();
            kills += 1;
            next = (next + 1) % workers.len();
            assert!(kills < 400, "the tasks do not finish under chaos");
        }
        for (i, f) in fs.iter().enumerate() {
            assert_eq!(f.result().unwrap(), 2 * i as u64, "task {i}");
        }
        std::thread::sleep(Duration::from_millis(300));
        for (i, c) in counts.iter().enumerate() {
            assert_eq!(
                c.load(Ordering::SeqCst),
                1,
                "task {i} settled more than once"
            );
        }
        let mut con = raw(&url);
        eprintln!(
            "chaos: {kills} kills, {} retried, {} late completions dropped, {} duplicates",
            pool_stat(&mut con, &pool, "retried"),
            pool_stat(&mut con, &pool, "late"),
            pool_stat(&mut con, &pool, "duplicates"),
        );
        for w in workers {
            w.kill();
        }
    });
}
