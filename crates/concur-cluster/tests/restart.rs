//! A `redis-server` restarted (append-only file on) in the middle of 5,000 tasks: no
//! task is lost, and workers and callers recover by themselves.

mod support;

use std::time::Duration;

use concur_cluster::RedisExecutor;
use concur_core::futures::Executor;
use support::{WorkerSpec, pool, pool_stat, raw, redis_aof, within};

fn double(x: u64) -> u64 {
    // Slow enough that the restart falls in the middle of the run.
    std::thread::sleep(Duration::from_micros(200));
    x * 2
}

#[test]
fn a_redis_restart_in_the_middle_of_5000_tasks_loses_none() {
    within(Duration::from_secs(300), "restart", || {
        const TASKS: u64 = 5_000;
        let mut redis = redis_aof();
        let (url, pool) = (redis.url(), pool("restart"));
        let workers: Vec<_> = (0..2)
            .map(|_| WorkerSpec::new(&url, &pool).slots(2).lease_ms(2000).spawn())
            .collect();
        let ex = RedisExecutor::builder(&url, &pool)
            .retry_backoff(Duration::ZERO)
            .max_attempts(10)
            .connect()
            .unwrap();
        let fs: Vec<_> = (0..TASKS).map(|i| ex.call(double, i).unwrap()).collect();
        // Restart once about a fifth of the tasks are done.
        support::eventually(
            Duration::from_secs(120),
            "a fifth of the tasks done",
            || fs.iter().filter(|f| f.done()).count() as u64 >= TASKS / 5,
        );
        let done_before = fs.iter().filter(|f| f.done()).count();
        redis.restart().unwrap();
        for (i, f) in fs.iter().enumerate() {
            let v = f
                .result_timeout(Duration::from_secs(120))
                .unwrap_or_else(|e| panic!("task {i} after the restart: {e}"));
            assert_eq!(v, 2 * i as u64);
        }
        let mut con = raw(&url);
        eprintln!(
            "restart after {done_before} of {TASKS} tasks: all done; {} retried, {} late, {} duplicates",
            pool_stat(&mut con, &pool, "retried"),
            pool_stat(&mut con, &pool, "late"),
            pool_stat(&mut con, &pool, "duplicates"),
        );
        assert!(
            done_before < TASKS as usize,
            "the restart came after the last task"
        );
        // The pool still serves.
        assert_eq!(
            ex.call(double, 21)
                .unwrap()
                .result_timeout(Duration::from_secs(60))
                .unwrap(),
            42
        );
        for w in workers {
            w.stop();
        }
    });
}

#[test]
fn after_a_restart_that_lost_everything_the_group_is_made_again_and_work_goes_on() {
    within(
        Duration::from_secs(180),
        "restart without persistence",
        || {
            let mut redis = support::redis();
            let (url, pool) = (redis.url(), pool("amnesia"));
            let w = WorkerSpec::new(&url, &pool).slots(1).spawn();
            let ex = RedisExecutor::connect(&url, &pool).unwrap();
            assert_eq!(ex.call(double, 1).unwrap().result().unwrap(), 2);
            // No AOF: the stream, its group and the worker's registration are gone.
            redis.restart().unwrap();
            let f = ex.call(double, 2).unwrap();
            assert_eq!(f.result_timeout(Duration::from_secs(120)).unwrap(), 4);
            let s = w.stop();
            assert!(s.completed >= 2, "{s:?}");
        },
    );
}
