//! Process queues across real child processes.
//!
//! Ported from CPython 3.13 `Lib/test/_test_multiprocessing.py`, `_TestQueue`:
//! `test_put`, `test_get`, `test_fork`, `test_qsize`, `test_task_done`, `test_timeout`,
//! `test_closed_queue_empty_exceptions` and `test_closed_queue_put_get_exceptions`
//! (with `shutdown` for `close`), in their `processes`
//! flavour (children started with `Process`, `Spawn` unless named). Timing checks are
//! lower bounds only. Added: many producer and consumer processes (every item exactly
//! once, each producer's items in order), large items wrapping a small ring, typed
//! rejections (too large, file descriptors), handle type checks, and processes killed
//! while using the queue.

mod common;

use common::{LIMIT, within};
use concur_process::queue::{
    GetError, GetTimeoutError, PutTimeoutError, Rejected, TryGetError, TryPutError,
};
use concur_process::sync::Event;
use concur_process::{JoinableQueue, Pipe, Process, Queue, SharedMemory, SimpleQueue, StartMethod};
use std::time::{Duration, Instant};

/// CPython's `DELTA`, `TIMEOUT1`, `TIMEOUT2`, `TIMEOUT3`.
const DELTA: Duration = Duration::from_millis(100);
const TIMEOUT1: Duration = Duration::from_millis(100);
const TIMEOUT2: Duration = Duration::from_millis(200);
const TIMEOUT3: Duration = Duration::from_millis(100);

/// Asserts a call that must fail at once (the lower bound is trivially 0: just run it).
fn timed<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let start = Instant::now();
    let r = f();
    (r, start.elapsed())
}

// ---------------------------------------------------------------- test_put

fn child_gets_six((q, can_start, can_continue): (Queue<u32>, Event, Event)) {
    assert!(can_start.wait_timeout(LIMIT));
    for _ in 0..6 {
        q.get_timeout(LIMIT).unwrap();
    }
    can_continue.set();
}

#[test]
fn test_put() {
    within(LIMIT, "test_put", || {
        const MAXSIZE: usize = 6;
        let q = Queue::<u32>::new(MAXSIZE).unwrap();
        let (can_start, can_continue) = (Event::new().unwrap(), Event::new().unwrap());
        let p = Process::spawn(
            child_gets_six,
            (q.clone(), can_start.clone(), can_continue.clone()),
        )
        .unwrap();
        assert!(q.empty());
        assert!(!q.full());

        q.put(1).unwrap();
        q.put_timeout(2, LIMIT).unwrap();
        q.put_deadline(3, Instant::now() + LIMIT).unwrap();
        q.try_put(4).unwrap();
        q.try_put(5).unwrap();
        q.put_timeout(6, Duration::ZERO).unwrap();

        assert!(!q.empty());
        assert!(q.full());
        assert_eq!(q.qsize(), 6);

        assert_eq!(q.try_put(7), Err(TryPutError::Full(7)));
        let (r, _) = timed(|| q.put_timeout(7, Duration::ZERO));
        assert_eq!(r, Err(PutTimeoutError::Full(7)));
        let (r, took) = timed(|| q.put_timeout(7, TIMEOUT1));
        assert_eq!(r, Err(PutTimeoutError::Full(7)));
        assert!(took >= TIMEOUT1, "{took:?}");
        let (r, took) = timed(|| q.put_deadline(7, Instant::now() + TIMEOUT3));
        assert!(r.unwrap_err().is_full());
        assert!(took >= TIMEOUT3, "{took:?}");
        let past = Instant::now();
        assert!(q.put_deadline(7, past).unwrap_err().is_full());

        can_start.set();
        assert!(can_continue.wait_timeout(LIMIT));
        assert!(q.empty());
        assert!(!q.full());
        p.join().unwrap();
    });
}

// ---------------------------------------------------------------- test_get

fn child_puts_four((q, can_start, can_continue): (Queue<u32>, Event, Event)) {
    assert!(can_start.wait_timeout(LIMIT));
    for i in 2..=5 {
        q.put(i).unwrap();
    }
    can_continue.set();
}

#[test]
fn test_get() {
    within(LIMIT, "test_get", || {
        let q = Queue::<u32>::new(0).unwrap();
        let (can_start, can_continue) = (Event::new().unwrap(), Event::new().unwrap());
        let p = Process::spawn(
            child_puts_four,
            (q.clone(), can_start.clone(), can_continue.clone()),
        )
        .unwrap();
        assert!(q.empty());
        can_start.set();
        assert!(can_continue.wait_timeout(LIMIT));
        assert!(!q.empty());

        assert_eq!(q.get(), Ok(2));
        assert_eq!(q.get_timeout(Duration::from_secs(1)), Ok(3));
        assert_eq!(
            q.get_deadline(Instant::now() + Duration::from_secs(1)),
            Ok(4)
        );
        assert_eq!(q.try_get(), Ok(5));
        assert!(q.empty());

        assert_eq!(q.try_get(), Err(TryGetError::Empty));
        assert_eq!(q.get_timeout(Duration::ZERO), Err(GetTimeoutError::Empty));
        let (r, took) = timed(|| q.get_timeout(TIMEOUT1));
        assert_eq!(r, Err(GetTimeoutError::Empty));
        assert!(took >= TIMEOUT1, "{took:?}");
        let (r, took) = timed(|| q.get_deadline(Instant::now() + TIMEOUT2));
        assert_eq!(r, Err(GetTimeoutError::Empty));
        assert!(took >= TIMEOUT2, "{took:?}");
        p.join().unwrap();
    });
}

// ---------------------------------------------------------------- test_fork

fn put_ten_more(q: Queue<u32>) {
    for i in 10..20 {
        q.put(i).unwrap();
    }
}

#[test]
fn test_fork() {
    within(LIMIT, "test_fork", || {
        let q = Queue::<u32>::new(0).unwrap();
        for i in 0..10 {
            q.put(i).unwrap();
        }
        // A forked child inherits the mapping; a spawned one receives the block.
        for method in [StartMethod::Fork { force: true }, StartMethod::Spawn] {
            let p = Process::builder()
                .start_method(method)
                .spawn(put_ten_more, q.clone())
                .unwrap();
            p.join().unwrap();
        }
        let got: Vec<u32> = std::iter::from_fn(|| q.try_get().ok()).collect();
        let mut want: Vec<u32> = (0..20).collect();
        want.extend(10..20);
        assert_eq!(got, want);
        assert_eq!(q.try_get(), Err(TryGetError::Empty));
    });
}

// ---------------------------------------------------------------- test_qsize

#[test]
fn test_qsize() {
    let q = Queue::<u32>::new(0).unwrap();
    assert_eq!(q.qsize(), 0);
    q.put(1).unwrap();
    assert_eq!(q.qsize(), 1);
    q.put(5).unwrap();
    assert_eq!(q.qsize(), 2);
    q.get().unwrap();
    assert_eq!(q.qsize(), 1);
    q.get().unwrap();
    assert_eq!(q.qsize(), 0);
}

// ---------------------------------------------------------------- test_task_done

fn task_worker(q: JoinableQueue<Option<u32>>) -> u32 {
    let mut n = 0;
    while let Some(_item) = q.get_timeout(LIMIT).unwrap() {
        std::thread::sleep(DELTA / 10);
        n += 1;
        q.task_done().unwrap();
    }
    q.task_done().unwrap(); // the sentinel
    n
}

#[test]
fn test_task_done() {
    within(LIMIT, "test_task_done", || {
        let q = JoinableQueue::<Option<u32>>::new(0).unwrap();
        let workers: Vec<_> = (0..4)
            .map(|_| Process::spawn(task_worker, q.clone()).unwrap())
            .collect();
        for i in 0..10 {
            q.put(Some(i)).unwrap();
        }
        assert!(q.join_timeout(LIMIT), "tasks not done in time");
        assert!(q.empty());
        for _ in &workers {
            q.put(None).unwrap();
        }
        let total: u32 = workers.into_iter().map(|w| w.join().unwrap()).sum();
        assert_eq!(total, 10);
        assert!(q.join_timeout(LIMIT));
        assert!(q.task_done().is_err(), "every task is done");
    });
}

#[test]
fn join_waits_for_the_last_task_done_in_another_process() {
    within(LIMIT, "join across processes", || {
        let q = JoinableQueue::<u32>::new(0).unwrap();
        q.put(1).unwrap();
        q.put(2).unwrap();
        let (r, took) = timed(|| q.join_timeout(TIMEOUT1));
        assert!(!r);
        assert!(took >= TIMEOUT1);
        let p = Process::spawn(
            |q: JoinableQueue<u32>| {
                for _ in 0..2 {
                    q.get_timeout(LIMIT).unwrap();
                    std::thread::sleep(Duration::from_millis(50));
                    q.task_done().unwrap();
                }
            },
            q.clone(),
        )
        .unwrap();
        let start = Instant::now();
        q.join();
        assert!(start.elapsed() >= Duration::from_millis(50));
        p.join().unwrap();
    });
}

// ---------------------------------------------------------------- test_timeout

#[test]
fn test_timeout() {
    let q = Queue::<u32>::new(0).unwrap();
    let start = Instant::now();
    assert!(
        q.get_timeout(Duration::from_millis(200))
            .unwrap_err()
            .is_empty()
    );
    assert!(start.elapsed() >= Duration::from_millis(200));
    // A timeout too large to represent waits forever (here: until the item comes).
    q.put(9).unwrap();
    assert_eq!(q.get_timeout(Duration::MAX), Ok(9));
    assert!(q.put_timeout(1, Duration::MAX).is_ok());
}

// ---------------------------------------------------------------- shutdown

#[test]
fn shutdown_drains_then_fails_and_wakes_a_blocked_child() {
    within(LIMIT, "shutdown", || {
        let q = Queue::<u32>::new(0).unwrap();
        let p = Process::spawn(
            |q: Queue<u32>| matches!(q.get_timeout(LIMIT), Err(GetTimeoutError::ShutDown)),
            q.clone(),
        )
        .unwrap();
        std::thread::sleep(DELTA); // let the child block
        q.shutdown(false);
        assert!(p.join().unwrap(), "the blocked getter saw ShutDown");

        let q = Queue::<u32>::new(0).unwrap();
        q.put(1).unwrap();
        q.shutdown(false);
        assert!(q.is_shutdown());
        assert_eq!(q.put(2).unwrap_err().into_inner(), 2);
        assert_eq!(q.try_put(3), Err(TryPutError::ShutDown(3)));
        assert_eq!(q.get(), Ok(1));
        assert_eq!(q.get(), Err(GetError::ShutDown));
        assert_eq!(q.try_get(), Err(TryGetError::ShutDown));
    });
}

/// `test_closed_queue_empty_exceptions` and `test_closed_queue_put_get_exceptions`,
/// with `shutdown` in place of `close`: a closed, unused queue is empty without
/// error; put and get then fail (Python: `ValueError`, here `ShutDown`).
#[test]
fn test_closed_queue_empty_and_put_get_errors() {
    let plain = Queue::<u32>::new(0).unwrap();
    let joinable = JoinableQueue::<u32>::new(0).unwrap();
    for q in [&plain, &*joinable] {
        q.shutdown(false);
        assert!(q.empty());
        assert_eq!(q.qsize(), 0);
        assert!(q.put(1).unwrap_err().is_shutdown());
        assert!(q.try_put(1).unwrap_err().is_shutdown());
        assert!(q.put_timeout(1, TIMEOUT1).unwrap_err().is_shutdown());
        assert_eq!(q.get(), Err(GetError::ShutDown));
        assert_eq!(q.get_timeout(TIMEOUT1), Err(GetTimeoutError::ShutDown));
    }
    let simple = SimpleQueue::<u32>::new().unwrap();
    simple.shutdown(false);
    assert!(simple.empty());
    assert!(simple.put(1).unwrap_err().is_shutdown());
    assert!(simple.get().unwrap_err().is_shutdown());
}

#[test]
fn immediate_shutdown_drops_items_and_counts_them_done() {
    let q = JoinableQueue::<u32>::new(0).unwrap();
    for i in 0..5 {
        q.put(i).unwrap();
    }
    assert_eq!(q.get(), Ok(0));
    q.shutdown(true);
    assert_eq!(q.qsize(), 0);
    assert_eq!(q.get(), Err(GetError::ShutDown));
    assert!(
        !q.join_timeout(Duration::from_millis(10)),
        "one task taken, not done"
    );
    q.task_done().unwrap();
    assert!(q.join_timeout(Duration::ZERO));
}

#[test]
fn a_full_putter_in_a_child_is_woken_by_a_get() {
    within(LIMIT, "blocked putter", || {
        let q = Queue::<u32>::bounded(1).unwrap();
        q.put(0).unwrap();
        let p = Process::spawn(
            |q: Queue<u32>| {
                let start = Instant::now();
                q.put_timeout(1, LIMIT).unwrap();
                start.elapsed()
            },
            q.clone(),
        )
        .unwrap();
        std::thread::sleep(DELTA);
        assert_eq!(q.get(), Ok(0));
        assert_eq!(q.get_timeout(LIMIT), Ok(1));
        assert!(p.join().unwrap() >= DELTA / 2);
    });
}

// ---------------------------------------------------------------- many processes

fn producer((q, id, n): (Queue<u64>, u64, u64)) {
    for i in 0..n {
        q.put(id << 32 | i).unwrap();
    }
}

fn consumer(q: Queue<u64>) -> Vec<u64> {
    let mut got = Vec::new();
    loop {
        match q.get_timeout(LIMIT) {
            Ok(x) => got.push(x),
            Err(GetTimeoutError::ShutDown) => return got,
            Err(e) => panic!("consumer: {e}"),
        }
    }
}

#[test]
fn many_producers_and_consumers_every_item_exactly_once() {
    within(LIMIT * 2, "4 producers x 10,000 items, 2 consumers", || {
        const N: u64 = 10_000;
        // A small ring, so producers wait for room and records wrap many times.
        let q = Queue::<u64>::with_capacity(64, 4096).unwrap();
        let consumers: Vec<_> = (0..2)
            .map(|_| Process::spawn(consumer, q.clone()).unwrap())
            .collect();
        let producers: Vec<_> = (0..4)
            .map(|id| Process::spawn(producer, (q.clone(), id, N)).unwrap())
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        q.shutdown(false); // consumers drain, then stop
        let mut all = Vec::new();
        for c in consumers {
            let got = c.join().unwrap();
            // Each producer's items arrive in order at each consumer.
            for id in 0..4 {
                let mine: Vec<u64> = got.iter().copied().filter(|x| x >> 32 == id).collect();
                assert!(
                    mine.windows(2).all(|w| w[0] < w[1]),
                    "producer {id} reordered"
                );
            }
            all.extend(got);
        }
        all.sort_unstable();
        let want: Vec<u64> = (0..4)
            .flat_map(|id| (0..N).map(move |i| id << 32 | i))
            .collect();
        assert_eq!(all.len(), want.len(), "items lost or duplicated");
        assert!(all == want, "items lost or duplicated");
    });
}

#[test]
fn large_items_wrap_a_small_ring_across_processes() {
    within(LIMIT, "1 KiB items through a 4 KiB ring", || {
        let q = SimpleQueue::<Vec<u8>>::new().unwrap();
        let small = Queue::<Vec<u8>>::with_capacity(0, 4096).unwrap();
        let p = Process::spawn(
            |q: Queue<Vec<u8>>| {
                for i in 0..500u32 {
                    let len = 1000 + (i as usize * 37) % 900;
                    q.put(vec![(i % 251) as u8; len]).unwrap();
                }
            },
            small.clone(),
        )
        .unwrap();
        for i in 0..500u32 {
            let v = small.get_timeout(LIMIT).unwrap();
            assert_eq!(v.len(), 1000 + (i as usize * 37) % 900);
            assert!(v.iter().all(|&b| b == (i % 251) as u8), "item {i} damaged");
        }
        p.join().unwrap();
        // SimpleQueue round trip in a child, both ways.
        let back = Process::spawn(
            |q: SimpleQueue<Vec<u8>>| {
                let v = q.get_timeout(LIMIT).unwrap();
                q.put(v.iter().rev().copied().collect()).unwrap();
            },
            q.clone(),
        )
        .unwrap();
        q.put(vec![1, 2, 3]).unwrap();
        back.join().unwrap();
        assert_eq!(q.get_timeout(LIMIT), Ok(vec![3, 2, 1]));
    });
}

#[test]
fn threads_of_one_process_and_a_child_share_a_queue() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Queue<String>>();
    assert_send_sync::<SimpleQueue<String>>();
    assert_send_sync::<JoinableQueue<String>>();
    within(LIMIT, "threads and a child consumer", || {
        let q = Queue::<u64>::bounded(8).unwrap();
        let child = Process::spawn(
            |q: Queue<u64>| {
                (0..4000)
                    .map(|_| q.get_timeout(LIMIT).unwrap())
                    .sum::<u64>()
            },
            q.clone(),
        )
        .unwrap();
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let q = &q; // one handle, shared by reference
                s.spawn(move || {
                    for i in 0..1000 {
                        q.put(t * 1000 + i).unwrap();
                    }
                });
            }
        });
        assert_eq!(child.join().unwrap(), (0..4000).sum::<u64>());
        assert!(q.empty());
    });
}

// ---------------------------------------------------------------- rejections

#[test]
fn items_too_large_or_holding_descriptors_are_rejected_and_handed_back() {
    let q = Queue::<Vec<u8>>::with_capacity(0, 256).unwrap();
    let e = q.put(vec![7; 300]).unwrap_err();
    // The encoding stops as soon as it passes the limit: the size seen is over 248
    // and at most the full 302.
    match e.rejected() {
        Some(&Rejected::TooLarge { size, max: 248 }) => {
            assert!((249..=302).contains(&size), "size {size}")
        }
        other => panic!("expected TooLarge with max 248, got {other:?}"),
    }
    assert_eq!(e.into_inner().len(), 300);
    // Exactly the limit fits (a 2-byte length prefix + 246 bytes).
    q.put(vec![1; 246]).unwrap();
    assert_eq!(q.get().unwrap().len(), 246);

    let shm = Queue::<SharedMemory>::new(0).unwrap();
    let block = SharedMemory::new(16).unwrap();
    let e = shm.try_put(block).unwrap_err();
    assert_eq!(e.rejected(), Some(&Rejected::FileDescriptors));
    assert_eq!(e.into_inner().len(), 16);
    assert!(shm.empty());
}

#[test]
fn a_handle_of_another_item_type_is_refused() {
    let q = Queue::<u64>::new(0).unwrap();
    let (a, b) = Pipe::duplex().unwrap();
    a.send(&q).unwrap();
    let wrong: Result<Queue<String>, _> = b.recv();
    assert!(wrong.is_err());
    a.send(&q).unwrap();
    let not_joinable: Result<JoinableQueue<u64>, _> = b.recv();
    assert!(not_joinable.is_err());
    a.send(&q).unwrap();
    let right: Queue<u64> = b.recv().unwrap();
    right.put(5).unwrap();
    assert_eq!(q.get(), Ok(5));
}

// ---------------------------------------------------------------- dying processes

fn put_forever(q: Queue<Vec<u64>>) {
    let mut i = 0u64;
    loop {
        // Records of varying size, so a death can fall anywhere in a copy.
        let len = (i % 50) as usize + 1;
        let _ = q.put_timeout(vec![i; len], Duration::from_millis(50));
        i += 1;
    }
}

#[test]
fn a_producer_killed_mid_put_never_delivers_a_torn_item_or_wedges_the_queue() {
    within(LIMIT, "kill producers at random points", || {
        let q = Queue::<Vec<u64>>::with_capacity(0, 8192).unwrap();
        for round in 0..6u64 {
            let p = Process::spawn(put_forever, q.clone()).unwrap();
            // Let it fill and cycle the ring for a while, consuming some.
            let until = Instant::now() + Duration::from_millis(30 + round * 7);
            while Instant::now() < until {
                if let Ok(v) = q.get_timeout(Duration::from_millis(5)) {
                    assert!(!v.is_empty() && v.iter().all(|&x| x == v[0]), "torn item");
                }
            }
            p.kill().unwrap();
            assert!(p.join().is_err(), "killed");
        }
        // Drain: every remaining item is whole; the queue still works both ways.
        while let Ok(v) = q.try_get() {
            assert!(!v.is_empty() && v.iter().all(|&x| x == v[0]), "torn item");
        }
        q.put_timeout(vec![42], LIMIT).unwrap();
        assert_eq!(q.get_timeout(LIMIT), Ok(vec![42]));
    });
}

#[test]
fn a_consumer_killed_while_waiting_leaves_the_queue_usable() {
    within(LIMIT, "kill a waiting consumer", || {
        let q = Queue::<u32>::new(0).unwrap();
        let p = Process::spawn(|q: Queue<u32>| q.get_timeout(LIMIT).ok(), q.clone()).unwrap();
        std::thread::sleep(DELTA);
        p.kill().unwrap();
        assert!(p.join().is_err());
        q.put(1).unwrap();
        let p = Process::spawn(|q: Queue<u32>| q.get_timeout(LIMIT).ok(), q.clone()).unwrap();
        assert_eq!(p.join().unwrap(), Some(1));
    });
}
