//! What is particular to `ProcessPoolExecutor` (the contract it shares with the thread
//! pool is in `executor_contract.rs`).
//!
//! Ported from CPython 3.13's `Lib/test/test_concurrent_futures/`:
//! - `test_process_pool.py`: `test_killed_child` (here the pool survives it),
//!   `test_max_tasks_per_child`, `test_saturation` / `test_idle_process_reuse_*`
//!   (workers are started for queued work);
//! - `test_deadlock.py`: `test_crash_during_func_exec_on_worker` and
//!   `test_exit_during_func_exec_on_worker` (the crash test; the other ports are in
//!   `process_pool_deadlock.rs`): a crash fails its task with a typed error instead of
//!   a deadlock, and unlike Python's `BrokenProcessPool` the pool keeps serving;
//! - `test_shutdown.py`: `test_processes_terminate`.
//!
//! Beyond Python (issue 6): crash and chaos tests, per-task timeouts, memory limits and
//! recycling, `terminate`, every start method, threads inside a task, descriptors in a
//! task's argument, and a done-callback that waits for its own pool.
//!
//! Tests here take one lock so they do not overlap: they count processes and zombies
//! under this test process, and the machine is small.

mod common;
mod pool_common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use common::{eventually, within};
use concur_core::futures::{Executor, MapOptions, TaskError, ThreadPoolExecutor};
use concur_process::{Connection, Pipe, ProcessPoolExecutor, StartMethod};
use pool_common::{assert_gone, assert_no_zombies};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

const BOUND: Duration = Duration::from_secs(120);

// ---- task functions (they capture nothing) ----

fn pid_of(_: ()) -> u32 {
    std::process::id()
}

fn square(x: u64) -> u64 {
    x * x
}

/// Sleeps `ms`, then says which process it ran in.
fn nap_pid(ms: u64) -> u32 {
    std::thread::sleep(Duration::from_millis(ms));
    std::process::id()
}

fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn spin_forever(_: ()) -> u32 {
    loop {
        std::hint::spin_loop();
    }
}

/// Item `i` segfaults if `i % 10 == 1`, aborts if `2`, calls `exit(3)` if `3`, else
/// returns `2 i + 1`.
fn crashy(i: u32) -> u32 {
    match i % 10 {
        1 => {
            let page_zero = std::ptr::without_provenance_mut::<u32>(16);
            // SAFETY: deliberately not safe: this writes through a pointer into page
            // zero, which is never mapped (`vm.mmap_min_addr` is at least 4096), to
            // make this worker process die of SIGSEGV, as the crash test wants. (Not
            // the null pointer itself: debug builds check `write_volatile`'s pointer
            // for null and would abort instead.)
            unsafe { std::ptr::write_volatile(page_zero, 0xdead) };
            0
        }
        2 => std::process::abort(),
        3 => std::process::exit(3),
        _ => 2 * i + 1,
    }
}

fn exit_with(code: i32) -> u32 {
    std::process::exit(code)
}

/// Allocates and touches `mib` MiB a little at a time (so a sampling memory limit sees
/// it grow), then returns the pid.
fn hog(mib: usize) -> u32 {
    let mut blocks = Vec::new();
    for _ in 0..mib / 8 {
        blocks.push(vec![1u8; 8 << 20]);
        std::thread::sleep(Duration::from_millis(2));
    }
    std::hint::black_box(&blocks);
    std::process::id()
}

/// Leaks `mib` MiB of touched memory, then returns the pid.
fn leak(mib: usize) -> u32 {
    let v = vec![1u8; mib << 20];
    std::mem::forget(std::hint::black_box(v));
    std::process::id()
}

/// Uses a thread pool and a plain thread inside the worker.
fn threaded_sum(n: u64) -> u64 {
    let pool = ThreadPoolExecutor::new(4);
    let squares: u64 = pool
        .map(square, 0..n, MapOptions::new().chunksize(3))
        .unwrap()
        .map(|r| r.unwrap())
        .sum();
    let extra = std::thread::spawn(move || n).join().unwrap();
    squares + extra
}

/// Receives a number on `c`, answers it plus one, returns it.
fn echo_plus_one(c: Connection) -> u32 {
    let x: u32 = c.recv().unwrap();
    c.send(&(x + 1)).unwrap();
    x
}

// ---- crash tests ----

#[test]
fn crash_test_segfault_abort_exit() {
    let _g = serial();
    within(Duration::from_secs(300), "crash test", || {
        let pool = ProcessPoolExecutor::new(2);
        let fs: Vec<_> = (0..200u32).map(|i| pool.call(crashy, i).unwrap()).collect();
        let mut values = 0;
        let mut causes: HashMap<&str, usize> = HashMap::new();
        for (i, f) in (0..200u32).zip(&fs) {
            let r = within(Duration::from_secs(60), "a crash-test result", {
                let f = f.clone();
                move || f.result()
            });
            match (i % 10, r) {
                (1, Err(e)) => {
                    assert!(
                        e.is_worker_died() && e.signal() == Some(11),
                        "item {i}: {e:?}"
                    );
                    *causes.entry("segfault").or_default() += 1;
                }
                (2, Err(e)) => {
                    assert!(
                        e.is_worker_died() && e.signal() == Some(6),
                        "item {i}: {e:?}"
                    );
                    *causes.entry("abort").or_default() += 1;
                }
                (3, Err(e)) => {
                    assert!(
                        e.is_worker_died() && e.exit_status() == Some(3),
                        "item {i}: {e:?}"
                    );
                    *causes.entry("exit").or_default() += 1;
                }
                (_, Ok(v)) => {
                    assert_eq!(v, 2 * i + 1, "item {i}");
                    values += 1;
                }
                (_, r) => panic!("item {i}: unexpected outcome {r:?}"),
            }
        }
        assert_eq!(values, 140);
        assert_eq!(
            (causes["segfault"], causes["abort"], causes["exit"]),
            (20, 20, 20)
        );
        // Still usable: a further batch is all correct.
        let more: Vec<u64> = pool
            .map(square, 0..100, MapOptions::new().chunksize(4))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(more, (0..100).map(|x| x * x).collect::<Vec<_>>());
        assert!(
            pool.workers_started() > 60,
            "crashed workers were not replaced"
        );
        drop(pool);
        assert_no_zombies();
    });
}

#[test]
fn chaos_sigkill_random_workers() {
    let _g = serial();
    within(Duration::from_secs(180), "chaos test", || {
        const N: usize = 10_000;
        let pool = ProcessPoolExecutor::new(2);
        let outcomes: Arc<Vec<AtomicU32>> = Arc::new((0..N).map(|_| AtomicU32::new(0)).collect());
        let stop = Arc::new(AtomicBool::new(false));
        let kills = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let killer = {
            let (pool, stop, kills) = (pool.clone(), stop.clone(), kills.clone());
            std::thread::spawn(move || {
                let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id());
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(50));
                    let pids = pool.worker_pids();
                    if pids.is_empty() {
                        continue;
                    }
                    // xorshift64
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let pid = pids[(x % pids.len() as u64) as usize];
                    // SAFETY: `kill` has no memory-safety preconditions; the pid is a
                    // live worker of this pool a moment ago (a pid reused in between
                    // is practically impossible in that window on a 4M pid space).
                    if unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) } == 0 {
                        kills.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        };
        let fs: Vec<_> = (0..N as u64)
            .map(|i| {
                let f = pool
                    .call(
                        |i: u64| {
                            std::thread::sleep(Duration::from_micros(200));
                            i * 3
                        },
                        i,
                    )
                    .unwrap();
                let o = outcomes.clone();
                f.add_done_callback(move |_| {
                    o[i as usize].fetch_add(1, Ordering::SeqCst);
                });
                f
            })
            .collect();
        let mut ok = 0;
        let mut died = 0;
        for (i, f) in (0..N as u64).zip(&fs) {
            let r = within(Duration::from_secs(120), "a chaos result", {
                let f = f.clone();
                move || f.result()
            });
            match r {
                Ok(v) => {
                    assert_eq!(v, i * 3, "task {i}");
                    ok += 1;
                }
                Err(e) => {
                    assert!(
                        e.is_worker_died() && e.signal() == Some(9),
                        "task {i}: {e:?}"
                    );
                    died += 1;
                }
            }
        }
        stop.store(true, Ordering::SeqCst);
        killer.join().unwrap();
        let elapsed = start.elapsed();
        let all_once = eventually(Duration::from_secs(10), || {
            outcomes.iter().all(|c| c.load(Ordering::SeqCst) >= 1)
        });
        assert!(all_once, "some done-callbacks never fired");
        let counts: Vec<u32> = outcomes.iter().map(|c| c.load(Ordering::SeqCst)).collect();
        let twice: Vec<usize> = (0..N).filter(|&i| counts[i] != 1).collect();
        assert!(
            twice.is_empty(),
            "futures resolved more than once: {twice:?}"
        );
        let k = kills.load(Ordering::SeqCst);
        eprintln!(
            "chaos: {N} tasks in {elapsed:?}, {k} workers killed, {ok} values, {died} failed, {} workers started",
            pool.workers_started()
        );
        assert_eq!(ok + died, N);
        assert!(k > 0, "the chaos thread killed nothing");
        assert!(died <= k, "{died} tasks failed for {k} kills");
        drop(pool);
        assert_no_zombies();
    });
}

// ---- time limits ----

#[test]
fn a_task_over_its_timeout_has_its_worker_replaced() {
    let _g = serial();
    within(BOUND, "per-task timeout", || {
        let pool = ProcessPoolExecutor::new(1);
        let first = pool.call(pid_of, ()).unwrap().result().unwrap();
        let t0 = Instant::now();
        let f = pool
            .submit_with_timeout(spin_forever, (), Duration::from_millis(500))
            .unwrap();
        let after = pool.call(pid_of, ()).unwrap();
        let e = f.result().unwrap_err();
        assert!(e.is_timeout(), "{e:?}");
        assert!(t0.elapsed() >= Duration::from_millis(500));
        assert_gone(&[first]);
        let second = after.result().unwrap();
        assert_ne!(
            second, first,
            "the task after the late one ran in the killed worker"
        );
        for i in 0..5 {
            assert_eq!(pool.call(square, i).unwrap().result().unwrap(), i * i);
        }
        assert_eq!(pool.workers_started(), 2);
    });
}

#[test]
fn the_pool_default_task_timeout() {
    let _g = serial();
    within(BOUND, "default task timeout", || {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(1)
            .task_timeout(Duration::from_millis(300))
            .build();
        let a = pool.call(square, 3).unwrap();
        let b = pool.call(spin_forever, ()).unwrap();
        let c = pool.call(square, 4).unwrap();
        assert_eq!(a.result().unwrap(), 9);
        assert!(b.result().unwrap_err().is_timeout());
        assert_eq!(c.result().unwrap(), 16);
        // A task within its limit is unaffected by it.
        assert_eq!(pool.call(nap, 50).unwrap().result().unwrap(), 50);
    });
}

// ---- recycling ----

#[test]
fn max_tasks_per_child_three() {
    let _g = serial();
    within(BOUND, "max_tasks_per_child", || {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(1)
            .max_tasks_per_child(3)
            .build();
        // One at a time, as CPython's test_max_tasks_per_child.
        let seq: Vec<u32> = (0..4)
            .map(|_| pool.call(pid_of, ()).unwrap().result().unwrap())
            .collect();
        assert!(seq[0] == seq[1] && seq[1] == seq[2], "{seq:?}");
        assert_ne!(
            seq[3], seq[0],
            "the 4th task ran in the same worker: {seq:?}"
        );
        assert_eq!(pool.workers_started(), 2);
        // All at once, on a fresh pool.
        let pool = ProcessPoolExecutor::builder()
            .max_workers(1)
            .max_tasks_per_child(3)
            .build();
        let fs: Vec<_> = (0..7).map(|_| pool.call(pid_of, ()).unwrap()).collect();
        let p: Vec<u32> = fs.iter().map(|f| f.result().unwrap()).collect();
        assert!(
            p[0] == p[1] && p[1] == p[2] && p[3] == p[4] && p[4] == p[5],
            "{p:?}"
        );
        assert!(p[3] != p[0] && p[6] != p[3] && p[6] != p[0], "{p:?}");
        assert_eq!(pool.workers_started(), 3);
    });
}

#[test]
fn memory_limit_kills_the_task_as_out_of_memory() {
    let _g = serial();
    within(BOUND, "memory limit", || {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(1)
            .memory_limit(128 << 20)
            .memory_check_interval(Duration::from_millis(5))
            .build();
        let e = pool.call(hog, 512).unwrap().result().unwrap_err();
        assert!(e.is_out_of_memory() && e.is_worker_died(), "{e:?}");
        // Under the limit is fine, and the pool goes on.
        let pid = pool.call(hog, 32).unwrap().result().unwrap();
        assert_ne!(pid, std::process::id());
    });
}

#[test]
fn recycle_above_replaces_a_grown_worker() {
    let _g = serial();
    within(BOUND, "recycle above", || {
        let pool = ProcessPoolExecutor::builder()
            .max_workers(1)
            .recycle_above(64 << 20)
            .build();
        let p0 = pool.call(pid_of, ()).unwrap().result().unwrap();
        let p1 = pool.call(pid_of, ()).unwrap().result().unwrap();
        assert_eq!(p0, p1, "a small worker was recycled");
        let p2 = pool.call(leak, 100).unwrap().result().unwrap();
        assert_eq!(p2, p1);
        let p3 = pool.call(pid_of, ()).unwrap().result().unwrap();
        assert_ne!(p3, p2, "the worker that leaked 100 MiB was not recycled");
        assert_gone(&[p2]);
    });
}

/// `test_killed_child`, at the worst moment: a worker killed from outside while it
/// starts (before it said it is ready) held no started task, so the queued task goes to
/// its replacement and the pool keeps serving.
#[test]
fn a_worker_killed_while_starting_is_replaced() {
    let _g = serial();
    within(BOUND, "kill during startup", || {
        for round in 0..5 {
            // Spawn re-executes the binary: the start takes long enough to be hit.
            let pool = ProcessPoolExecutor::builder()
                .max_workers(1)
                .start_method(StartMethod::Spawn)
                .build();
            let f = pool.call(square, 7).unwrap();
            // Poll without sleeping, to kill it as soon as it exists.
            while pool.worker_pids().is_empty() && !f.done() {
                std::thread::yield_now();
            }
            let Some(&pid) = pool.worker_pids().first() else {
                continue;
            };
            // SAFETY: `kill` has no memory-safety preconditions; `pid` is this pool's
            // worker, not reaped before the manager reads its end.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            // Killed while starting: the task is requeued and succeeds; killed while
            // running it: it fails as a worker death. Never a broken pool.
            match f.result() {
                Ok(v) => assert_eq!(v, 49),
                Err(e) => assert!(
                    e.is_worker_died() && e.signal() == Some(9),
                    "round {round}: the task of a worker killed during its start: {e:?}"
                ),
            }
            assert!(eventually(Duration::from_secs(30), || {
                !pool.worker_pids().contains(&pid)
            }));
            let r = pool.call(square, 8).map(|f| f.result());
            assert!(
                matches!(r, Ok(Ok(64))),
                "round {round}: the pool after its worker was killed during its start: {r:?}"
            );
        }
        assert_no_zombies();
    });
}

// ---- scheduling ----

#[test]
fn two_tasks_submitted_together_use_two_workers() {
    let _g = serial();
    within(BOUND, "saturation", || {
        let pool = ProcessPoolExecutor::new(2);
        let a = pool.call(nap_pid, 300).unwrap();
        let b = pool.call(nap_pid, 300).unwrap();
        let (pa, pb) = (a.result().unwrap(), b.result().unwrap());
        assert_ne!(
            pa, pb,
            "two tasks submitted together on a 2-worker pool ran one after the other in one worker"
        );
    });
}

// ---- terminate and drop ----

#[test]
fn terminate_kills_everything_promptly() {
    let _g = serial();
    within(BOUND, "terminate", || {
        let pool = ProcessPoolExecutor::new(2);
        let fs: Vec<_> = (0..200).map(|_| pool.call(nap, 30_000).unwrap()).collect();
        assert!(eventually(Duration::from_secs(30), || pool
            .worker_pids()
            .len()
            == 2));
        let pids = pool.worker_pids();
        let t0 = Instant::now();
        within(Duration::from_secs(30), "terminate()", {
            let pool = pool.clone();
            move || pool.terminate().unwrap()
        });
        eprintln!("terminate with 2 busy workers took {:?}", t0.elapsed());
        let mut cancelled = 0;
        for f in &fs {
            assert!(f.done(), "a future left pending by terminate");
            let e = f.result().unwrap_err();
            assert!(e.is_cancelled(), "{e:?}");
            cancelled += usize::from(f.cancelled());
        }
        assert!(cancelled >= 1, "no queued future was cancelled");
        assert!(pool.worker_pids().is_empty());
        assert_gone(&pids);
        assert_no_zombies();
        assert!(pool.call(square, 1).unwrap_err().is_shutdown());
        pool.terminate().unwrap();
    });
}

#[test]
fn drop_leaves_no_worker() {
    let _g = serial();
    within(BOUND, "drop", || {
        let pool = ProcessPoolExecutor::new(2);
        let fs: Vec<_> = (0..4).map(|_| pool.call(nap, 200).unwrap()).collect();
        assert!(eventually(Duration::from_secs(30), || !pool
            .worker_pids()
            .is_empty()));
        let pids = pool.worker_pids();
        drop(pool);
        for f in &fs {
            assert_eq!(f.result().unwrap(), 200);
        }
        assert_gone(&pids);
        assert_no_zombies();
    });
}

// ---- start methods and what travels ----

#[test]
fn every_start_method() {
    let _g = serial();
    for method in [
        StartMethod::Spawn,
        StartMethod::ForkServer,
        StartMethod::Fork { force: true },
    ] {
        within(BOUND, &format!("start method {method:?}"), move || {
            let pool = ProcessPoolExecutor::builder()
                .max_workers(2)
                .start_method(method)
                .build();
            let out: Vec<u64> = pool
                .map(square, 0..50, MapOptions::new().chunksize(5))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(
                out,
                (0..50).map(|x| x * x).collect::<Vec<_>>(),
                "{method:?}"
            );
            let pid = pool.call(pid_of, ()).unwrap().result().unwrap();
            assert_ne!(pid, std::process::id(), "{method:?}");
            let e = pool.call(exit_with, 3).unwrap().result().unwrap_err();
            assert_eq!(e.exit_status(), Some(3), "{method:?}: {e:?}");
            assert_eq!(
                pool.call(square, 5).unwrap().result().unwrap(),
                25,
                "{method:?}"
            );
            drop(pool);
            assert_no_zombies();
        });
    }
}

#[test]
fn a_task_may_use_threads() {
    let _g = serial();
    within(BOUND, "threads in a task", || {
        let pool = ProcessPoolExecutor::new(2);
        let fs: Vec<_> = [10u64, 100, 1000]
            .iter()
            .map(|&n| pool.call(threaded_sum, n).unwrap())
            .collect();
        for (n, f) in [10u64, 100, 1000].iter().zip(&fs) {
            let want: u64 = (0..*n).map(|x| x * x).sum::<u64>() + n;
            assert_eq!(f.result().unwrap(), want);
        }
    });
}

#[test]
fn a_connection_travels_as_an_argument() {
    let _g = serial();
    within(BOUND, "connection argument", || {
        let pool = ProcessPoolExecutor::new(1);
        for x in [41u32, 7] {
            let (mine, theirs) = Pipe::duplex().unwrap();
            let f = pool.call(echo_plus_one, theirs).unwrap();
            mine.send(&x).unwrap();
            let back: u32 = mine.recv_timeout(Duration::from_secs(30)).unwrap();
            assert_eq!(back, x + 1);
            assert_eq!(f.result().unwrap(), x);
        }
    });
}

#[test]
fn a_done_callback_waiting_for_its_pool_gets_self_wait() {
    let _g = serial();
    within(BOUND, "self wait from a callback", || {
        let pool = ProcessPoolExecutor::new(1);
        let f = pool.call(nap, 1000).unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<Result<(), TaskError>>();
        let p = pool.clone();
        let here = std::thread::current().id();
        f.add_done_callback(move |_| {
            assert_ne!(
                std::thread::current().id(),
                here,
                "the task ended before the callback was added"
            );
            let _ = tx.send(p.shutdown(true, false));
        });
        let r = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the callback never ran (or hung in shutdown)");
        let e = r.unwrap_err();
        assert!(e.is_self_wait(), "{e:?}");
        assert_eq!(f.result().unwrap(), 1000);
        // It is shut down, and a wait from outside finishes.
        assert!(pool.call(square, 1).unwrap_err().is_shutdown());
        pool.shutdown(true, false).unwrap();
        assert!(pool.worker_pids().is_empty());
    });
}

// ---- aborting one task (`call_abortable`) -----------------------------------------------

/// Says it started (sets `started`), then sleeps `ms`.
fn signal_then_nap((started, ms): (concur_process::Event, u64)) -> u64 {
    started.set();
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn double(x: u64) -> u64 {
    x * 2
}

#[test]
fn abort_of_a_task_not_started_cancels_it() {
    let _s = serial();
    within(BOUND, "abort queued", || {
        let pool = ProcessPoolExecutor::new(1);
        let started = concur_process::Event::new().unwrap();
        let (busy, _) = pool
            .call_abortable(signal_then_nap, (started.clone(), 300), None)
            .unwrap();
        // Handed to the one worker behind the busy task (or still queued): not started.
        let (waiting, abort) = pool.call_abortable(double, 21, None).unwrap();
        abort.abort();
        assert!(waiting.cancelled(), "{waiting:?}");
        assert!(waiting.result().unwrap_err().is_cancelled());
        assert_eq!(busy.result().unwrap(), 300, "the other task ran on");
        let again = abort.clone();
        again.abort(); // harmless
        assert_eq!(pool.call(double, 4).unwrap().result().unwrap(), 8);
        pool.shutdown(true, false).unwrap();
    });
}

#[test]
fn abort_of_a_running_task_replaces_its_worker() {
    let _s = serial();
    within(BOUND, "abort running", || {
        let pool = ProcessPoolExecutor::new(1);
        assert_eq!(pool.call(double, 1).unwrap().result().unwrap(), 2);
        let before = pool.worker_pids();
        assert_eq!(before.len(), 1);
        let started = concur_process::Event::new().unwrap();
        let (f, abort) = pool
            .call_abortable(signal_then_nap, (started.clone(), 60_000), None)
            .unwrap();
        assert!(started.wait_timeout(BOUND), "the task never started");
        abort.abort();
        let e = f.result().unwrap_err();
        assert!(e.is_cancelled(), "{e}");
        assert!(!e.is_worker_died(), "an abort, not a crash: {e}");
        // The pool keeps serving, on a new worker.
        assert_eq!(pool.call(double, 21).unwrap().result().unwrap(), 42);
        let after = pool.worker_pids();
        assert_eq!(after.len(), 1);
        assert_ne!(before, after, "the worker was replaced");
        assert_gone(&before);
        pool.shutdown(true, false).unwrap();
        assert_no_zombies();
    });
}

#[test]
fn abort_after_completion_does_nothing() {
    let _s = serial();
    within(BOUND, "abort done", || {
        let pool = ProcessPoolExecutor::new(1);
        let (f, abort) = pool.call_abortable(double, 5, None).unwrap();
        assert_eq!(f.result().unwrap(), 10);
        let pids = pool.worker_pids();
        abort.abort();
        assert_eq!(f.result().unwrap(), 10);
        assert!(!f.cancelled());
        assert_eq!(pool.call(double, 6).unwrap().result().unwrap(), 12);
        assert_eq!(pool.worker_pids(), pids, "no worker was killed");
        assert!(format!("{abort:?}").contains("AbortHandle"));
        pool.shutdown(true, false).unwrap();
    });
}

#[test]
fn abort_honours_the_time_limit_given() {
    let _s = serial();
    within(BOUND, "abortable with a time limit", || {
        let pool = ProcessPoolExecutor::new(1);
        let started = concur_process::Event::new().unwrap();
        let (f, _abort) = pool
            .call_abortable(
                signal_then_nap,
                (started, 60_000),
                Some(Duration::from_millis(200)),
            )
            .unwrap();
        let e = f.result().unwrap_err();
        assert!(e.is_timeout(), "{e}");
        pool.shutdown(true, false).unwrap();
    });
}
