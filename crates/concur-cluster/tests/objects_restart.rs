//! The shared objects across a Redis restart (with an append-only file): handles made
//! before it go on working after it (their connections are made again, with
//! backoff), what was written survives, and a waiter blocked on the server through
//! the restart waits on and is woken after it.

mod objects_common;
mod support;

use std::time::Duration;

use concur_cluster::{Dict, Event, Lock, Queue};
use objects_common::LIMIT;
use support::{redis_aof, within};

#[test]
fn handles_made_before_a_restart_work_after_it() {
    within(LIMIT, "objects across a restart", || {
        let mut redis = redis_aof();
        let url = redis.url();
        let lock = Lock::connect(&url, "l").unwrap();
        let q = Queue::<u32>::connect(&url, "q", 0).unwrap();
        let d = Dict::<u8, u8>::connect(&url, "d").unwrap();
        let e = Event::connect(&url, "e").unwrap();
        let w = Event::connect(&url, "w").unwrap();
        for i in 0..3 {
            q.put(i).unwrap();
        }
        d.insert(1, 2).unwrap();
        e.set().unwrap();
        let g = lock.acquire().unwrap().unwrap();
        let t1 = g.fencing_token();
        let waiter = std::thread::spawn({
            let w = w.clone();
            move || w.wait_timeout(Duration::from_secs(120)).unwrap()
        });
        std::thread::sleep(Duration::from_millis(300));

        redis.restart().unwrap();

        assert!(e.is_set().unwrap());
        assert_eq!(d.get(&1).unwrap(), Some(2));
        assert_eq!(
            (0..3).map(|_| q.get().unwrap()).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        for _ in 0..3 {
            q.task_done().unwrap();
        }
        q.join().unwrap();
        assert!(g.release().unwrap(), "the lease survived the restart");
        let g = lock.acquire().unwrap().unwrap();
        assert!(g.fencing_token() > t1);
        w.set().unwrap();
        assert!(
            waiter.join().unwrap(),
            "the waiter was woken after the restart"
        );
    });
}
