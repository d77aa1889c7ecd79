//! `cluster::Queue` against a private redis-server: `put`/`get` in their four forms,
//! a bounded queue's `Full` handing the item back, blocked putters and getters woken,
//! `task_done`/`join`, `shutdown` (draining and immediate, waking a blocked getter),
//! an undecodable entry moved aside, an item taken by a killed consumer delivered
//! again, and 4 producer × 4 consumer processes moving 100,000 items with one
//! consumer SIGKILLed mid-run: nothing lost, and the only items processed twice are
//! those the killed consumer held without having acknowledged them.

mod objects_common;
mod support;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use concur_cluster::{AckError, GetError, PutError, Queue};
use concur_core::queue::{GetTimeoutError, PutTimeoutError, TryGetError, TryPutError};
use objects_common::{LIMIT, name, spawn};
use support::{eventually, raw, redis, within};

#[test]
fn the_four_forms_of_put_and_get_on_a_bounded_queue() {
    within(LIMIT, "queue forms", || {
        let redis = redis();
        let q = Queue::<u32>::connect(&redis.url(), &name("forms"), 2).unwrap();
        assert_eq!(q.maxsize(), 2);
        assert!(q.empty().unwrap() && !q.full().unwrap());
        q.put(1).unwrap();
        q.try_put(2).unwrap();
        assert!(q.full().unwrap());
        assert!(matches!(q.try_put(3), Err(TryPutError::Full(3))));
        let start = Instant::now();
        match q.put_timeout(4, Duration::from_millis(100)) {
            Err(PutTimeoutError::Full(4)) => {}
            other => panic!("{other:?}"),
        }
        assert!(start.elapsed() >= Duration::from_millis(100));
        let d = Instant::now() + Duration::from_millis(50);
        assert!(matches!(
            q.put_deadline(5, d),
            Err(PutTimeoutError::Full(5))
        ));
        assert_eq!(q.qsize().unwrap(), 2);

        assert_eq!(q.get().unwrap(), 1, "first in, first out");
        assert_eq!(q.try_get().unwrap(), 2);
        assert_eq!(q.qsize().unwrap(), 0, "taken items are not queued");
        assert!(matches!(q.try_get(), Err(TryGetError::Empty)));
        let start = Instant::now();
        assert!(matches!(
            q.get_timeout(Duration::from_millis(100)),
            Err(GetTimeoutError::Empty)
        ));
        assert!(start.elapsed() >= Duration::from_millis(100));
        let d = Instant::now() + Duration::from_millis(50);
        assert!(matches!(q.get_deadline(d), Err(GetTimeoutError::Empty)));
        assert!(Instant::now() >= d);

        q.task_done().unwrap();
        q.task_done().unwrap();
        assert!(matches!(q.task_done(), Err(AckError::TooMany(_))));
        assert!(q.join_timeout(Duration::ZERO).unwrap(), "all done");
        q.put_timeout(6, Duration::from_secs(5)).unwrap();
        q.put_deadline(7, Instant::now() + Duration::from_secs(5))
            .unwrap();
        assert_eq!(q.get_timeout(Duration::from_secs(5)).unwrap(), 6);
        assert_eq!(
            q.get_deadline(Instant::now() + Duration::from_secs(5))
                .unwrap(),
            7
        );
    });
}

#[test]
fn bad_input_is_a_typed_error_and_a_bad_entry_is_moved_aside() {
    within(LIMIT, "queue bad input", || {
        let redis = redis();
        let url = redis.url();
        let n = name("typed");
        let q = Queue::<u32>::connect(&url, &n, 0).unwrap();
        let e = Queue::<String>::connect(&url, &n, 0).unwrap_err();
        assert!(e.is_invalid(), "another item type: {e}");
        let e = Queue::<u32>::connect(&url, &n, 5).unwrap_err();
        assert!(e.is_invalid(), "another maxsize: {e}");
        assert!(Queue::<u32>::connect(&url, "", 0).unwrap_err().is_invalid());
        // An item that does not encode comes back with the reason.
        let big = Queue::<Vec<u8>>::connect(&url, &name("big"), 0).unwrap();
        match big.put(vec![0; (64 << 20) + 1]) {
            Err(PutError::Rejected(item, e)) => {
                assert!(e.is_invalid());
                assert_eq!(item.len(), (64 << 20) + 1);
            }
            other => panic!("{other:?}"),
        }
        // Entries written by something else: moved to the dead letters, told, and
        // the queue goes on.
        let items = format!("concur:obj:queue:{{{n}}}:items");
        let mut con = raw(&url);
        redis::cmd("XADD")
            .arg(&items)
            .arg("*")
            .arg("d")
            .arg(vec![0xffu8; 9])
            .query::<String>(&mut con)
            .unwrap();
        redis::cmd("XADD")
            .arg(&items)
            .arg("*")
            .arg("other")
            .arg("x")
            .query::<String>(&mut con)
            .unwrap();
        q.put(7).unwrap();
        for _ in 0..2 {
            match q.get() {
                Err(GetError::Decode(e)) => assert!(e.is_invalid(), "{e}"),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(q.get().unwrap(), 7);
        q.task_done().unwrap();
        assert!(q.join_timeout(Duration::from_secs(5)).unwrap());
        let dead: u64 = redis::cmd("XLEN")
            .arg(format!("concur:obj:queue:{{{n}}}:dead"))
            .query(&mut con)
            .unwrap();
        assert_eq!(dead, 2);
    });
}

#[test]
fn blocked_putters_and_getters_are_woken() {
    within(LIMIT, "queue wake-ups", || {
        let redis = redis();
        let q = Queue::<u32>::connect(&redis.url(), &name("wake"), 1).unwrap();
        let getter = std::thread::spawn({
            let q = q.clone();
            move || q.get().unwrap()
        });
        std::thread::sleep(Duration::from_millis(200));
        q.put(1).unwrap();
        assert_eq!(getter.join().unwrap(), 1);
        q.put(2).unwrap(); // full now
        let putter = std::thread::spawn({
            let q = q.clone();
            move || q.put(3).map_err(|e| e.to_string())
        });
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(q.get().unwrap(), 2);
        putter.join().unwrap().unwrap();
        assert_eq!(q.get().unwrap(), 3);
    });
}

#[test]
fn join_waits_for_every_task_done() {
    within(LIMIT, "queue join", || {
        let redis = redis();
        let q = Queue::<u32>::connect(&redis.url(), &name("join"), 0).unwrap();
        for i in 0..3 {
            q.put(i).unwrap();
        }
        assert!(!q.join_timeout(Duration::from_millis(50)).unwrap());
        let worker = std::thread::spawn({
            let q = q.clone();
            move || {
                for _ in 0..3 {
                    q.get().unwrap();
                    std::thread::sleep(Duration::from_millis(50));
                    q.task_done().unwrap();
                }
            }
        });
        let start = Instant::now();
        q.join().unwrap();
        assert!(start.elapsed() >= Duration::from_millis(150));
        worker.join().unwrap();
    });
}

#[test]
fn shutdown_drains_then_refuses_and_wakes_a_blocked_getter() {
    within(LIMIT, "queue shutdown", || {
        let redis = redis();
        let url = redis.url();
        let q = Queue::<u32>::connect(&url, &name("drain"), 0).unwrap();
        q.put(1).unwrap();
        q.put(2).unwrap();
        assert!(!q.is_shutdown().unwrap());
        q.shutdown(false).unwrap();
        assert!(q.is_shutdown().unwrap());
        match q.put(3) {
            Err(PutError::ShutDown(3)) => {}
            other => panic!("{other:?}"),
        }
        assert!(matches!(q.try_put(4), Err(TryPutError::ShutDown(4))));
        assert_eq!(q.get().unwrap(), 1, "what was queued is drained");
        assert_eq!(q.get().unwrap(), 2);
        assert!(matches!(q.get(), Err(GetError::ShutDown)));
        assert!(matches!(q.try_get(), Err(TryGetError::ShutDown)));

        // A getter blocked on the server (long lease: its own re-check is 30 s away)
        // is unblocked by the shutdown.
        let w = Queue::<u32>::builder(&url, &name("blocked"), 0)
            .lease(Duration::from_secs(600))
            .connect()
            .unwrap();
        let getter = std::thread::spawn({
            let w = w.clone();
            move || w.get()
        });
        std::thread::sleep(Duration::from_millis(300));
        w.shutdown(false).unwrap();
        assert!(matches!(getter.join().unwrap(), Err(GetError::ShutDown)));
    });
}

#[test]
fn an_immediate_shutdown_drops_what_is_queued() {
    within(LIMIT, "queue shutdown(immediate)", || {
        let redis = redis();
        let q = Queue::<u32>::connect(&redis.url(), &name("now"), 0).unwrap();
        for i in 0..3 {
            q.put(i).unwrap();
        }
        assert_eq!(q.get().unwrap(), 0);
        q.shutdown(true).unwrap();
        assert!(matches!(q.get(), Err(GetError::ShutDown)), "at once");
        assert!(
            !q.join_timeout(Duration::from_millis(50)).unwrap(),
            "the item taken still needs its task_done"
        );
        q.task_done().unwrap();
        q.join().unwrap();
    });
}

/// Takes one item, says which, and sleeps until killed.
fn take_and_hang((q, url): (Queue<u32>, String)) {
    let v = q.get().unwrap();
    redis::cmd("SET")
        .arg("taken")
        .arg(v)
        .query::<()>(&mut raw(&url))
        .unwrap();
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn an_item_taken_by_a_killed_consumer_is_delivered_again() {
    within(LIMIT, "redelivery", || {
        let redis = redis();
        let url = redis.url();
        let q = Queue::<u32>::builder(&url, &name("redeliver"), 0)
            .lease(Duration::from_secs(1))
            .connect()
            .unwrap();
        q.put(42).unwrap();
        let child = spawn(take_and_hang, (q.clone(), url.clone()));
        eventually(Duration::from_secs(60), "the child takes the item", || {
            redis::cmd("GET")
                .arg("taken")
                .query::<Option<u32>>(&mut raw(&url))
                .unwrap()
                .is_some()
        });
        assert!(
            matches!(q.try_get(), Err(TryGetError::Empty)),
            "the child holds it"
        );
        assert!(!q.join_timeout(Duration::ZERO).unwrap());
        child.kill();
        assert_eq!(q.get_timeout(Duration::from_secs(60)).unwrap(), 42);
        q.task_done().unwrap();
        q.join().unwrap();
    });
}

// ---- 4 producers x 4 consumers, one consumer killed ------------------------------------

const PER_PRODUCER: u64 = 25_000;
const PRODUCERS: u64 = 4;
const CONSUMERS: usize = 4;

fn produce((q, base): (Queue<u64>, u64)) -> u64 {
    for i in 0..PER_PRODUCER {
        q.put(base + i).unwrap();
    }
    PER_PRODUCER
}

/// Takes items until the queue is shut down; records each item in the `seen` hash
/// (before acknowledging it) and counts its own progress.
fn consume((q, url, who): (Queue<u64>, String, usize)) -> u64 {
    let mut con = raw(&url);
    redis::cmd("SET")
        .arg(format!("consumer:{who}"))
        .arg(q.consumer())
        .query::<()>(&mut con)
        .unwrap();
    let mut n = 0;
    loop {
        match q.get() {
            Ok(v) => {
                redis::pipe()
                    .cmd("HINCRBY")
                    .arg("seen")
                    .arg(v)
                    .arg(1)
                    .ignore()
                    .cmd("INCR")
                    .arg(format!("progress:{who}"))
                    .ignore()
                    .query::<()>(&mut con)
                    .unwrap();
                q.task_done().unwrap();
                n += 1;
            }
            Err(GetError::ShutDown) => return n,
            Err(e) => panic!("consumer {who}: {e}"),
        }
    }
}

fn progress(url: &str, who: usize) -> u64 {
    redis::cmd("GET")
        .arg(format!("progress:{who}"))
        .query::<Option<u64>>(&mut raw(url))
        .unwrap()
        .unwrap_or(0)
}

/// The items of the entries the consumer `consumer` holds (delivered, not
/// acknowledged), read straight from the stream.
fn held_items(url: &str, queue: &str, consumer: &str) -> HashSet<u64> {
    let mut con = raw(url);
    let items = format!("concur:obj:queue:{{{queue}}}:items");
    let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(&items)
        .arg("consumers")
        .arg("-")
        .arg("+")
        .arg(10_000)
        .arg(consumer)
        .query(&mut con)
        .unwrap();
    let mut out = HashSet::new();
    for (id, ..) in pending {
        let r: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(&items)
            .arg(&id)
            .arg(&id)
            .query(&mut con)
            .unwrap();
        for e in r.ids {
            if let Some(redis::Value::BulkString(b)) = e.map.get("d") {
                out.insert(postcard::from_bytes::<u64>(b).unwrap());
            }
        }
    }
    out
}

#[test]
fn four_producers_and_four_consumers_lose_nothing_when_a_consumer_is_killed() {
    within(
        Duration::from_secs(900),
        "4 x 4 x 25,000 with a consumer killed",
        || {
            let redis = redis();
            let url = redis.url();
            let qname = name("mpmc");
            // A lease a loaded machine cannot starve a live consumer's renewer of.
            let q = Queue::<u64>::builder(&url, &qname, 0)
                .lease(Duration::from_secs(5))
                .prefetch(8)
                .connect()
                .unwrap();
            let mut consumers: Vec<_> = (0..CONSUMERS)
                .map(|who| Some(spawn(consume, (q.clone(), url.clone(), who))))
                .collect();
            let producers: Vec<_> = (0..PRODUCERS)
                .map(|p| spawn(produce, (q.clone(), p * PER_PRODUCER)))
                .collect();
            // Mid-run: the victim has done real work, and much is still to come.
            let total = PRODUCERS * PER_PRODUCER;
            eventually(Duration::from_secs(600), "the run is under way", || {
                progress(&url, 0) >= 1_000
                    && (0..CONSUMERS).map(|w| progress(&url, w)).sum::<u64>() >= total / 5
            });
            let victim: String = redis::cmd("GET")
                .arg("consumer:0")
                .query(&mut raw(&url))
                .unwrap();
            consumers[0].take().unwrap().kill();
            let held = held_items(&url, &qname, &victim);
            let done_by_victim = progress(&url, 0);
            assert!(
                done_by_victim < total,
                "the victim was killed mid-run ({done_by_victim})"
            );

            let produced: u64 = producers.into_iter().map(|p| p.join()).sum();
            assert_eq!(produced, total);
            q.join().unwrap(); // every item done, the victim's taken over and done
            q.shutdown(false).unwrap();
            let survivors: u64 = consumers.into_iter().flatten().map(|c| c.join()).sum();

            let seen: HashMap<u64, u64> = redis::cmd("HGETALL")
                .arg("seen")
                .query(&mut raw(&url))
                .unwrap();
            let lost: Vec<u64> = (0..total).filter(|i| !seen.contains_key(i)).collect();
            assert!(
                lost.is_empty(),
                "{} items lost: {:?}",
                lost.len(),
                &lost[..lost.len().min(10)]
            );
            let twice: HashSet<u64> = seen
                .iter()
                .filter(|(_, n)| **n > 1)
                .map(|(i, _)| *i)
                .collect();
            assert!(
                twice.is_subset(&held),
                "items processed twice that the killed consumer did not hold: {:?}",
                twice.difference(&held).take(10).collect::<Vec<_>>()
            );
            assert!(seen.values().all(|n| *n <= 2));
            // The survivors processed the rest, the victim's held items included.
            assert!(survivors + done_by_victim >= total);
            eprintln!(
                "killed consumer held {} items ({} of them processed twice); survivors did {survivors}",
                held.len(),
                twice.len()
            );
        },
    );
}
