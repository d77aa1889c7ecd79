//! What a caller sees: cancellation, deadlines, crashes, backpressure, size limits,
//! draining on SIGTERM, and cluster futures mixed with thread and process futures.

mod support;

use std::time::{Duration, Instant};

use concur_cluster::RedisExecutor;
use concur_core::futures::{Executor, ReturnWhen, ThreadPoolExecutor, as_completed, wait};
use concur_process::ProcessPoolExecutor;
use support::{WorkerSpec, eventually, pool, raw, redis, within};

const BOUND: Duration = Duration::from_secs(180);

fn incr_after((url, key, ms): (String, String, u64)) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    redis::cmd("INCR").arg(&key).query(&mut raw(&url)).unwrap()
}

/// Records its process id under `key`, then sleeps.
fn pid_then_sleep((url, key, ms): (String, String, u64)) -> u32 {
    let pid = std::process::id();
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(pid)
        .query(&mut raw(&url))
        .unwrap();
    std::thread::sleep(Duration::from_millis(ms));
    pid
}

fn get(url: &str, key: &str) -> Option<u64> {
    redis::cmd("GET").arg(key).query(&mut raw(url)).unwrap()
}

fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

fn double(x: u64) -> u64 {
    x * 2
}

fn segfault(_: ()) -> u8 {
    // SAFETY: deliberately crashes this (pool) process with SIGSEGV.
    unsafe { libc::raise(libc::SIGSEGV) };
    0
}

#[test]
fn a_cancelled_queued_task_never_starts() {
    within(BOUND, "cancel queued", || {
        let redis = redis();
        let (url, pool) = (redis.url(), pool("cancel"));
        let w = WorkerSpec::new(&url, &pool).slots(1).prefetch(0).spawn();
        let ex = RedisExecutor::connect(&url, &pool).unwrap();
        let blocker = ex
            .call(incr_after, (url.clone(), "blocker".into(), 1500))
            .unwrap();
        eventually(Duration::from_secs(30), "the blocker is taken", || {
            support::pending_consumers(&mut raw(&url), &pool)
                .iter()
                .any(|(_, n)| *n == 1)
        });
        let f = ex
            .call(incr_after, (url.clone(), "victim".into(), 0))
            .unwrap();
        assert!(f.cancel(), "a queued cluster task can be cancelled");
        assert!(f.cancelled() && f.result().unwrap_err().is_cancelled());
        assert_eq!(blocker.result().unwrap(), 1);
        // The worker reads the cancelled entry once the blocker is done, and drops it.
        let again = ex.call(double, 5).unwrap();
        assert_eq!(again.result().unwrap(), 10);
        assert_eq!(get(&url, "victim"), None, "the cancelled task ran");
        let s = w.stop();
        assert_eq!(s.cancelled, 1, "{s:?}");
    });
}

#[test]
fn a_cancelled_running_task_is_stopped_on_its_worker() {
    within(BOUND, "cancel running", || {
        let redis = redis();
        let (url, pool) = (redis.url(), pool("cancel-run"));
        let w = WorkerSpec::new(&url, &pool).slots(1).spawn();
        let ex = RedisExecutor::connect(&url, &pool).unwrap();
        let f = ex
            .call(pid_then_sleep, (url.clone(), "pid".into(), 60_000))
            .unwrap();
        eventually(Duration::from_secs(30), "the task runs", || {
            get(&url, "pid").is_some()
        });
        let pid = get(&url, "pid").unwrap() as u32;
        assert!(f.cancel(), "a running cluster task can be cancelled");
        assert!(f.result().unwrap_err().is_cancelled());
        // Stopped where it ran: its process is killed (and replaced).
        eventually(
            Duration::from_secs(30),
            "the task's process is killed",
            || !alive(pid),
        );
        assert_eq!(ex.call(double, 6).unwrap().result().unwrap(), 12);
        let s = w.stop();
        assert_eq!(s.cancelled, 1, "{s:?}");
    });
}

#[test]
fn a_deadline_that_passes_in_the_queue_means_the_task_never_starts() {
    within(BOUND, "deadline in the queue", || {
        let redis = redis();
        let (url, pool) = (redis.url(), pool("deadline-q"));
        let w = WorkerSpec::new(&url, &pool).slots(1).prefetch(0).spawn();
        let ex = RedisExecutor::connect(&url, &pool).unwrap();
        let blocker = ex
            .call(incr_after, (url.clone(), "blocker".into(), 1500))
            .unwrap();
        eventually(Duration::from_secs(30), "the blocker is taken", || {
            support::pending_consumers(&mut raw(&url), &pool)
                .iter()
                .any(|(_, n)| *n == 1)
        });
        let asked = Instant::now();
        let f = ex
            .call_with_timeout(
                incr_after,
                (url.clone(), "late".into(), 0),
                Duration::from_millis(300),
            )
            .unwrap();
        let e = f.result().unwrap_err();
        assert!(e.is_deadline_exceeded() && e.is_timeout(), "{e}");
        assert!(asked.elapsed() >= Duration::from_millis(300));
        assert_eq!(blocker.result().unwrap(), 1);
        assert_eq!(ex.call(double, 1).unwrap().result().unwrap(), 2);
        assert_eq!(get(&url, "late"), None, "a task past its deadline started");
        let s = w.stop();
        assert!(s.deadline_exceeded + s.cancelled >= 1, "{s:?}");
    });
}

#[test]
fn a_task_running_past_its_deadline_is_killed_on_its_worker() {
    within(BOUND, "deadline while running", || {
        let redis = redis();
        let (url, pool) = (redis.url(), pool("deadline-run"));
        let w = WorkerSpec::new(&url, &pool).slots(1).spawn();
        let ex = RedisExecutor::connect(&url, &pool).unwrap();
        let f = ex
            .call_with_timeout(
                pid_then_sleep,
                (url.clone(), "pid".into(), 60_000),
                Duration::from_secs(2),
            )
            .unwrap();
        let e = f.result().unwrap_err();
        assert!(e.is_deadline_exceeded(), "{e}");
        let pid = get(&url, "pid").expect("the task started") as u32;
        eventually(
            Duration::from_secs(30),
            "the task's process is killed",
            || !alive(pid),
        );
        // The worker replaced it and keeps serving.
        assert_eq!(ex.call(double, 4).unwrap().result().unwrap(), 8);
        w.stop();
    });
}

#[test]
fn a_task_that_segfaults_fails_alone_with_its_signal() {
    within(BOUND, "segfault", || {
        let redis = redis();
        let (url, pool) = (redis.url(), pool("segv"));
        let w = WorkerSpec::new(&url, &pool).slots(2).spawn();
        let ex = RedisExecutor::connect(&url, &pool).unwrap();
        let crash = ex.call(segfault, ()).unwrap();
        let fine: Vec<_> = (0..20).map(|i| ex.call(double, i).unwrap()).collect();
        let e = crash.result().unwrap_err();
        assert!(e.is_worker_died(), "{e}");
        assert_eq!(e.signal(), Some(libc::SIGSEGV));
        for (i, f) in fine.iter().enumerate() {
            assert_eq!(f.result().unwrap(), 2 * i as u64);
        }
        let s = w.stop();
        assert_eq!((s.failed, s.completed), (1, 20), "{s:?}");
    });
}

#[test]
fn the_in_flight_bound_blocks_submit_and_fails_try_call() {
    within(BOUND, "backpressure", || {
        let redis = redis();
        let (url, pool) = (redis.url(), pool("bound"));
        let ex = RedisExecutor::builder(&url, &pool)
            .max_in_flight(4)
            .connect()
            .unwrap();
        let fs: Vec<_> = (0..4).map(|i| ex.call(double, i).unwrap()).collect();
        assert!(ex.try_call(double, 9).unwrap_err().is_full());
        let ex2 = ex.clone();
        let blocked = std::thread::spawn(move || {
            let t = Instant::now();
            let f = ex2.call(double, 10).unwrap();
            (t.elapsed(), f.result().unwrap())
        });
        std::thread::sleep(Duration::from_millis(300));
        assert!(!blocked.is_finished(), "submit did not wait for room");
        let w = WorkerSpec::new(&url, &pool).spawn();
        let (waited, v) = blocked.join().unwrap();
        assert_eq!(v, 20);
        assert!(waited >= Duration::from_millis(300));
        for (i, f) in fs.iter().enumerate() {
            assert_eq!(f.result().unwrap(), 2 * i as u64);
        }
        // The task stream was never trimmed: nothing was dropped to make room.
        w.stop();
    });
}

#[test]
fn an_argument_over_the_payload_limit_is_refused_before_it_is_sent() {
    within(BOUND, "payload limit", || {
        let redis = redis();
        let (url, pool) = (redis.url(), pool("payload"));
        let ex = RedisExecutor::builder(&url, &pool)
            .max_payload(100)
            .connect()
            .unwrap();
        let e = ex.call(|v: Vec<u8>| v.len(), vec![7u8; 1000]).unwrap_err();
        assert!(e.to_string().contains("payload limit"), "{e}");
        assert_eq!(ex.in_flight(), 0);
        let n: u64 = redis::cmd("XLEN")
            .arg(format!("concur:{pool}:tasks"))
            .query(&mut raw(&url))
            .unwrap();
        assert_eq!(n, 0, "nothing reached Redis");
    });
}

/// An argument that would encode to 2 GiB, produced lazily: refused at the limit
/// without encoding (or allocating) the rest.
struct Huge;

impl serde::Serialize for Huge {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let n = 2usize << 30;
        let mut seq = s.serialize_seq(Some(n))?;
        for _ in 0..n {
            seq.serialize_element(&0xabu8)?;
        }
        seq.end()
    }
}

impl<'de> serde::Deserialize<'de> for Huge {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Huge, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| Huge)
    }
}

#[test]
fn a_2_gib_argument_is_refused_at_the_limit_without_being_encoded() {
    within(BOUND, "huge payload", || {
        let redis = redis();
        let (url, pool) = (redis.url(), pool("huge"));
        let ex = RedisExecutor::builder(&url, &pool)
            .max_payload(1 << 20)
            .connect()
            .unwrap();
        let e = ex.call(|_: Huge| 0u8, Huge).unwrap_err();
        assert!(e.to_string().contains("payload limit"), "{e}");
        assert_eq!(ex.in_flight(), 0);
    });
}

#[test]
fn sigterm_drains_a_worker_and_another_finishes_the_rest() {
    within(BOUND, "drain", || {
        let redis = redis();
        let (url, pool) = (redis.url(), pool("drain"));
        let a = WorkerSpec::new(&url, &pool).slots(1).prefetch(4).spawn();
        let ex = RedisExecutor::connect(&url, &pool).unwrap();
        // Short tasks first: a worker prefetches only once it has seen tasks are short.
        for i in 0..20 {
            assert_eq!(ex.call(double, i).unwrap().result().unwrap(), 2 * i);
        }
        let long = ex
            .call(pid_then_sleep, (url.clone(), "long".into(), 1000))
            .unwrap();
        let queued: Vec<_> = (0..4).map(|i| ex.call(double, i).unwrap()).collect();
        eventually(
            Duration::from_secs(60),
            "the long task runs on worker A",
            || get(&url, "long").is_some(),
        );
        eventually(
            Duration::from_secs(30),
            "worker A holds the queued ones too",
            || {
                support::pending_consumers(&mut raw(&url), &pool)
                    .iter()
                    .any(|(_, n)| *n == 5)
            },
        );
        let sa = a.stop();
        // The running task finished during the drain (its result was sent before A
        // exited); the four behind it were handed back.
        assert!(
            long.result_timeout(Duration::from_secs(30)).is_ok(),
            "{sa:?}"
        );
        assert_eq!((sa.completed, sa.handed_back), (21, 4), "{sa:?}");
        let b = WorkerSpec::new(&url, &pool).spawn();
        for (i, f) in queued.iter().enumerate() {
            assert_eq!(f.result().unwrap(), 2 * i as u64);
        }
        let sb = b.stop();
        assert_eq!(sb.completed, 4, "{sb:?}");
    });
}

#[test]
fn shutdown_with_cancel_futures_cancels_everything_queued() {
    within(BOUND, "shutdown cancel", || {
        let redis = redis();
        let (url, pool) = (redis.url(), pool("shutdown"));
        let ex = RedisExecutor::connect(&url, &pool).unwrap();
        let fs: Vec<_> = (0..10)
            .map(|i| {
                ex.call(incr_after, (url.clone(), format!("k{i}"), 0))
                    .unwrap()
            })
            .collect();
        ex.shutdown(false, true).unwrap();
        assert!(fs.iter().all(|f| f.cancelled()));
        assert!(ex.call(double, 1).unwrap_err().is_shutdown());
        let w = WorkerSpec::new(&url, &pool).spawn();
        eventually(
            Duration::from_secs(30),
            "the worker settles the cancelled entries",
            || support::all_settled(&mut raw(&url), &pool),
        );
        let s = w.stop();
        assert_eq!(s.cancelled, 10, "{s:?}");
        assert!((0..10).all(|i| get(&url, &format!("k{i}")).is_none()));
    });
}

#[test]
fn cluster_futures_mix_with_thread_and_process_futures() {
    within(BOUND, "mixed futures", || {
        let redis = redis();
        let (url, pool) = (redis.url(), pool("mixed"));
        let w = WorkerSpec::new(&url, &pool).spawn();
        let cluster = RedisExecutor::connect(&url, &pool).unwrap();
        let threads = ThreadPoolExecutor::new(2);
        let procs = ProcessPoolExecutor::new(2);
        let fs = vec![
            threads.call(double, 1).unwrap(),
            procs.call(double, 2).unwrap(),
            cluster.call(double, 3).unwrap(),
        ];
        let done = wait(&fs, Some(Duration::from_secs(60)), ReturnWhen::AllCompleted);
        assert_eq!(done.done.len(), 3);
        let mut got: Vec<u64> = as_completed(&fs, None)
            .map(|f| f.unwrap().result().unwrap())
            .collect();
        got.sort();
        assert_eq!(got, [2, 4, 6]);
        // `.await` works on a cluster future like on any other.
        let f = cluster.call(double, 21).unwrap();
        assert_eq!(futures::executor::block_on(f).unwrap(), 42);
        w.stop();
    });
}
