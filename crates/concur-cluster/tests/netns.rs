//! Machines that really are apart: a worker in a network namespace of its own (a
//! veth link to this one, private addresses), cut off from Redis by taking its link
//! down in the middle of a task. Its task completes on another worker once the lease
//! lapsed; when the link comes back, the cut-off worker stops what it held and its
//! late result is dropped (and counted).
//!
//! Needs root and iproute2 (`scripts/test.sh` runs as root in CI).

mod support;

use std::time::{Duration, Instant};

use concur_cluster::{RedisExecutor, RedisServer};
use concur_core::futures::Executor;
use support::{Netns, WorkerSpec, eventually, pool, pool_stat, raw, within};

const LEASE_MS: u64 = 1000;

/// Counts its runs in Redis (`INCR key`), then sleeps `ms`.
fn count_runs((url, key, ms): (String, String, u64)) -> u64 {
    let mut con = raw(&url);
    let n: u64 = redis::cmd("INCR").arg(&key).query(&mut con).unwrap();
    std::thread::sleep(Duration::from_millis(ms));
    n
}

#[test]
fn a_worker_cut_off_mid_task_loses_it_to_another_and_its_late_result_is_dropped() {
    within(Duration::from_secs(240), "netns cut", || {
        let ns = Netns::new(1);
        let redis = RedisServer::builder()
            .bind(&ns.host_ip)
            .password("netns-test")
            .start()
            .unwrap();
        let pool = pool("netns");
        let (url, far_url) = (redis.url(), redis.url_at(&ns.host_ip));
        // Worker A in the namespace (it reaches Redis only over the veth link).
        let mut spec = WorkerSpec::new(&far_url, &pool).slots(1).lease_ms(LEASE_MS);
        spec.netns = Some(ns.name.clone());
        let a = spec.spawn();
        let ex = RedisExecutor::builder(&url, &pool)
            .retry_backoff(Duration::ZERO)
            .connect()
            .unwrap();
        // The task counts its runs through the far address: A can reach it.
        let f = ex
            .call(count_runs, (far_url.clone(), "runs".to_owned(), 3000))
            .unwrap();
        let mut con = raw(&url);
        eventually(
            Duration::from_secs(60),
            "the task starts on worker A",
            || {
                redis::cmd("GET")
                    .arg("runs")
                    .query::<Option<u64>>(&mut con)
                    .unwrap()
                    == Some(1)
            },
        );
        // Worker B on this side; then A's link goes down.
        let b = WorkerSpec::new(&url, &pool)
            .slots(1)
            .lease_ms(LEASE_MS)
            .spawn();
        let cut = Instant::now();
        ns.cut();
        let n = f.result_timeout(Duration::from_secs(120)).unwrap();
        let took = cut.elapsed();
        assert_eq!(n, 2, "worker B ran the task after A was cut off");
        assert!(took >= Duration::from_millis(LEASE_MS * 3 / 4), "{took:?}");
        eprintln!("completed elsewhere {took:?} after the cut (lease {LEASE_MS} ms, task 3 s)");
        // The link returns: A learns it lost the lease; its own result is dropped.
        ns.restore();
        eventually(
            Duration::from_secs(90),
            "A's late result is dropped and counted",
            || pool_stat(&mut con, &pool, "late") >= 1,
        );
        assert_eq!(ex.late_results(), 0, "the caller saw one outcome");
        let sa = a.stop();
        assert!(sa.late + sa.leases_lost >= 1, "{sa:?}");
        let sb = b.stop();
        assert_eq!((sb.retried, sb.completed), (1, 1), "{sb:?}");
    });
}
