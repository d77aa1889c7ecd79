//! Watching a pool: `PoolAdmin::status` sees the workers and the counters, and a task
//! whose worker was lost at its last attempt shows up among the dead letters with its
//! cause, and can be requeued.

mod support;

use std::time::Duration;

use concur_cluster::{PoolAdmin, RedisExecutor};
use concur_core::futures::Executor;
use support::{WorkerSpec, eventually, pool, raw, redis, within};

fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[test]
fn status_shows_the_workers_and_dead_letters_can_be_listed_and_requeued() {
    within(Duration::from_secs(180), "admin", || {
        let redis = redis();
        let (url, pool) = (redis.url(), pool("admin"));
        let admin = PoolAdmin::connect(&url, &pool).unwrap();
        let a = WorkerSpec::new(&url, &pool).slots(1).lease_ms(1000).spawn();
        let pid = a.pid();
        let s = admin.status().unwrap();
        let w = s
            .workers
            .iter()
            .find(|w| w.pid == pid)
            .expect("the worker is listed");
        assert_eq!(w.slots, 1);
        assert!(w.last_beat_ms_ago.is_some(), "{w:?}");
        assert_eq!(s.lease_ms, 1000);

        // One attempt only: the worker killed mid-task → dead-lettered.
        let ex = RedisExecutor::builder(&url, &pool)
            .max_attempts(1)
            .connect()
            .unwrap();
        let f = ex.call(nap, 2000).unwrap();
        eventually(Duration::from_secs(30), "the task is taken", || {
            admin.status().unwrap().in_flight == 1
        });
        a.kill();
        let b = WorkerSpec::new(&url, &pool).slots(1).lease_ms(1000).spawn();
        let e = f.result().unwrap_err();
        assert!(
            e.is_dead_lettered() && e.last_cause().unwrap().is_worker_died(),
            "{e}"
        );
        let dead = admin.dead_letters(10).unwrap();
        assert_eq!(dead.len(), 1, "{dead:?}");
        assert_eq!(dead[0].cause, "lost");
        assert!(
            dead[0].message.contains("attempt 1 of 1"),
            "{}",
            dead[0].message
        );
        let s = admin.status().unwrap();
        assert_eq!(
            (s.dead_letters, s.counters.get("dead").copied()),
            (1, Some(1))
        );
        // The killed worker is listed as gone once its liveness key lapsed.
        eventually(
            Duration::from_secs(30),
            "the dead worker shows as gone",
            || {
                admin
                    .status()
                    .unwrap()
                    .workers
                    .iter()
                    .any(|w| w.pid == pid && w.last_beat_ms_ago.is_none())
            },
        );

        // Requeued: it runs again (its caller already gave up; the result is dropped).
        admin.requeue(&dead[0].id).unwrap();
        assert!(admin.dead_letters(10).unwrap().is_empty());
        eventually(Duration::from_secs(30), "the requeued task ran", || {
            support::all_settled(&mut raw(&url), &pool) && admin.status().unwrap().in_flight == 0
        });
        let sb = b.stop();
        assert_eq!(sb.completed, 1, "{sb:?}");
        assert!(admin.requeue("0-1").unwrap_err().is_invalid());
    });
}
