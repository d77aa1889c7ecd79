//! Process behaviour, ported from CPython's `Lib/test/_test_multiprocessing.py`
//! (`_TestProcess`: `test_process`, `test_terminate`, `test_kill`, `test_sys_exit`,
//! `test_many_processes`, `test_recursion`, `test_parent_process`; `_TestConnection`'s
//! passing of a connection to a child), plus what concur adds: values and panics come
//! back from `join`, `Fork` is refused while threads run, and no child outlives its
//! parent or stays a zombie. Each test starts real children by re-running this binary.

mod common;

use std::time::{Duration, Instant};

use common::{LIMIT, eventually, gone_or_dead, proc_state, within};
use concur_process::{Connection, Pipe, Process, ProcessError, StartMethod};

const FORKED: StartMethod = StartMethod::Fork { force: true };

/// Every start method: the tests that loop over it hold for all three alike
/// (`tests/forkserver.rs` keeps what is particular to the fork server).
fn every_method() -> [StartMethod; 3] {
    [StartMethod::Spawn, FORKED, StartMethod::ForkServer]
}

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

fn exit_with(code: i32) {
    std::process::exit(code)
}

fn fails(n: u32) -> u32 {
    if n > 2 {
        panic!("n is too big: {n}");
    }
    n
}

#[test]
fn test_process_attributes_and_value() {
    within(LIMIT, "test_process", || {
        for method in every_method() {
            let p = Process::builder()
                .name("worker")
                .daemon(true)
                .start_method(method)
                .build(
                    |(a, b): (u32, String)| format!("{b}{a}"),
                    (7, "x".to_owned()),
                );
            assert_eq!(p.name(), "worker");
            assert!(p.daemon());
            assert_eq!(p.exitcode(), None);
            assert!(!p.is_alive());
            assert_eq!(p.pid(), None);
            p.start().unwrap();
            assert!(p.pid().is_some_and(|pid| pid != std::process::id()));
            assert_eq!(p.join().unwrap(), "x7");
            assert!(!p.is_alive());
            assert_eq!(p.exitcode(), Some(0));
            assert!(p.join().unwrap_err().is_already_joined());
        }
    });
}

#[test]
fn default_names_are_numbered() {
    let a = Process::new(|x: u8| x, 0);
    let b = Process::new(|x: u8| x, 0);
    assert!(a.name().starts_with("Process-") && b.name().starts_with("Process-"));
    assert_ne!(a.name(), b.name());
}

#[test]
fn exit_codes_like_test_sys_exit() {
    within(LIMIT, "exit codes", || {
        for method in every_method() {
            for code in [0, 1, 8, 255] {
                let p = Process::builder()
                    .start_method(method)
                    .spawn(exit_with, code)
                    .unwrap();
                let e = p.join().unwrap_err();
                assert!(e.is_exited(), "{e}");
                assert_eq!(e.exit_status(), Some(code));
                assert_eq!(p.exitcode(), Some(code));
            }
        }
    });
}

#[test]
fn terminate_and_kill_give_minus_the_signal() {
    within(LIMIT, "terminate/kill", || {
        for method in every_method() {
            let p = Process::builder()
                .start_method(method)
                .spawn(sleep_ms, 60_000)
                .unwrap();
            assert!(p.is_alive());
            p.terminate().unwrap();
            let e = p.join().unwrap_err();
            assert!(e.is_signaled() && e.signal() == Some(15), "{e}");
            assert_eq!(p.exitcode(), Some(-15));
            // Signalling an exited (and reaped) child is not an error.
            p.terminate().unwrap();
            p.kill().unwrap();

            let p = Process::builder()
                .start_method(method)
                .spawn(sleep_ms, 60_000)
                .unwrap();
            p.kill().unwrap();
            assert_eq!(p.join().unwrap_err().signal(), Some(9));
            assert_eq!(p.exitcode(), Some(-9));
        }
        let p = Process::new(sleep_ms, 1);
        assert!(p.terminate().unwrap_err().is_not_started());
    });
}

#[test]
fn a_panic_comes_back_with_its_message_and_location() {
    within(LIMIT, "panic", || {
        for method in every_method() {
            let p = Process::builder()
                .start_method(method)
                .spawn(fails, 2)
                .unwrap();
            assert_eq!(p.join().unwrap(), 2);
            let p = Process::builder()
                .start_method(method)
                .spawn(fails, 5)
                .unwrap();
            let e = p.join().unwrap_err();
            assert!(e.is_panic());
            assert_eq!(e.panic_message(), Some("n is too big: 5"));
            assert!(e.panic_location().unwrap().contains("process.rs"), "{e}");
            assert_eq!(e.exit_status(), Some(1));
            assert_eq!(p.exitcode(), Some(1));
            assert!(e.to_string().contains("n is too big: 5"));
        }
    });
}

#[test]
fn join_timeout_on_a_sleeping_child() {
    within(LIMIT, "join_timeout", || {
        let p = Process::spawn(sleep_ms, 60_000).unwrap();
        let t = Instant::now();
        let e = p.join_timeout(Duration::from_millis(200)).unwrap_err();
        assert!(e.is_timeout(), "{e}");
        assert!(t.elapsed() >= Duration::from_millis(200));
        assert!(p.is_alive());
        assert_eq!(p.exitcode(), None);
        let e = p
            .join_deadline(Instant::now() + Duration::from_millis(50))
            .unwrap_err();
        assert!(e.is_timeout());
        p.kill().unwrap();
        assert_eq!(
            p.join_timeout(Duration::from_secs(30))
                .unwrap_err()
                .signal(),
            Some(9)
        );
        // A short sleeper joins within its timeout with its value.
        let p = Process::spawn(
            |ms: u64| {
                sleep_ms(ms);
                ms
            },
            100,
        )
        .unwrap();
        assert_eq!(p.join_timeout(Duration::from_secs(30)).unwrap(), 100);
    });
}

#[test]
fn is_alive_follows_the_child() {
    within(LIMIT, "is_alive", || {
        let (a, b) = Pipe::duplex().unwrap();
        let p = Process::spawn(|c: Connection| c.recv::<u8>().unwrap(), b).unwrap();
        assert!(p.is_alive());
        sleep_ms(50);
        assert!(p.is_alive(), "still waiting for its message");
        a.send(&4u8).unwrap();
        assert!(eventually(Duration::from_secs(30), || !p.is_alive()));
        // Exited but not yet joined: exitcode is known, the child is not reaped yet.
        assert_eq!(p.exitcode(), Some(0));
        let pid = p.pid().unwrap();
        assert_eq!(proc_state(pid), Some('Z'));
        assert_eq!(p.join().unwrap(), 4);
        assert_eq!(proc_state(pid), None, "reaped by join");
    });
}

#[test]
fn a_connection_passed_to_a_child_works_both_ways() {
    within(LIMIT, "connection to child", || {
        for method in every_method() {
            let (mine, theirs) = Pipe::duplex().unwrap();
            let p = Process::builder()
                .start_method(method)
                .spawn(
                    |c: Connection| {
                        // Zero ends the stream: a forked child also holds a copy of
                        // the parent's end (fork copies every descriptor), so it would
                        // never see end-of-stream (as in Python).
                        let mut total = 0u64;
                        while let Ok(x) = c.recv::<u64>() {
                            if x == 0 {
                                break;
                            }
                            total += x;
                            c.send(&total).unwrap();
                        }
                        total
                    },
                    theirs,
                )
                .unwrap();
            for i in 1..=10u64 {
                mine.send(&i).unwrap();
                assert_eq!(mine.recv::<u64>().unwrap(), i * (i + 1) / 2);
            }
            mine.send(&0u64).unwrap();
            assert_eq!(p.join().unwrap(), 55);
        }
    });
}

#[test]
fn a_connection_comes_back_as_a_result() {
    within(LIMIT, "connection from child", || {
        for method in every_method() {
            let p = Process::builder()
                .start_method(method)
                .spawn(
                    |greeting: String| {
                        let (a, b) = Pipe::duplex().unwrap();
                        a.send(&greeting).unwrap();
                        b
                    },
                    "from the child".to_owned(),
                )
                .unwrap();
            let b: Connection = p.join().unwrap();
            assert_eq!(b.recv::<String>().unwrap(), "from the child");
            assert!(
                b.recv::<String>().unwrap_err().is_eof(),
                "the child is gone"
            );
        }
    });
}

#[test]
fn fork_is_refused_while_threads_run() {
    within(LIMIT, "fork refused", || {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let busy = std::thread::spawn(move || rx.recv());
        let e = Process::builder()
            .start_method(StartMethod::Fork { force: false })
            .spawn(|x: u8| x, 1)
            .unwrap_err();
        assert!(e.is_fork_refused(), "{e}");
        assert!(e.to_string().contains("thread"));
        // Forced, it runs.
        let p = Process::builder()
            .start_method(FORKED)
            .spawn(|x: u8| x + 1, 1)
            .unwrap();
        assert_eq!(p.join().unwrap(), 2);
        tx.send(()).unwrap();
        busy.join().unwrap().unwrap();
    });
}

fn fork_grandchild(x: u32) -> Result<u32, String> {
    // A spawned child runs before `main`, with no thread but this crate's helpers, so
    // an unforced fork is allowed here.
    let p = Process::builder()
        .start_method(StartMethod::Fork { force: false })
        .spawn(|y: u32| y * 3, x)
        .map_err(|e| e.to_string())?;
    p.join().map_err(|e| e.to_string())
}

#[test]
fn fork_is_allowed_in_a_single_threaded_process() {
    within(LIMIT, "unforced fork", || {
        let p = Process::spawn(fork_grandchild, 14).unwrap();
        assert_eq!(p.join().unwrap(), Ok(42));
    });
}

fn nested(depth: u32) -> u32 {
    if depth == 0 {
        return 0;
    }
    let a = Process::spawn(nested, depth - 1).unwrap();
    let b = Process::builder()
        .start_method(StartMethod::Fork { force: false })
        .spawn(nested, depth - 1)
        .unwrap();
    1 + a.join().unwrap() + b.join().unwrap()
}

#[test]
fn test_recursion() {
    within(LIMIT, "recursion", || {
        // 1 + 2 + 4 processes below the top one.
        let p = Process::spawn(nested, 3).unwrap();
        assert_eq!(p.join().unwrap(), 7);
    });
}

#[test]
fn test_many_processes_from_many_threads() {
    within(LIMIT, "many processes", || {
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                std::thread::spawn(move || {
                    let ps: Vec<Process<u64>> = (0..6u64)
                        .map(|i| Process::spawn(|x: u64| x * x, t * 10 + i).unwrap())
                        .collect();
                    ps.iter().map(|p| p.join().unwrap()).sum::<u64>()
                })
            })
            .collect();
        let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        let expect: u64 = (0..4u64)
            .flat_map(|t| (0..6).map(move |i| (t * 10 + i).pow(2)))
            .sum();
        assert_eq!(total, expect);
    });
}

#[test]
fn children_outlive_the_thread_that_started_them() {
    within(LIMIT, "launcher thread", || {
        // The parent-death signal is bound to a thread; children are made by a
        // long-lived launcher thread, so the starting thread may end.
        let p = std::thread::spawn(|| {
            Process::spawn(
                |ms: u64| {
                    sleep_ms(ms);
                    5u8
                },
                300,
            )
            .unwrap()
        })
        .join()
        .unwrap();
        sleep_ms(100);
        assert_eq!(p.join().unwrap(), 5);
    });
}

#[test]
fn terminate_from_another_thread_while_joining() {
    within(LIMIT, "terminate while joining", || {
        let p = std::sync::Arc::new(Process::spawn(sleep_ms, 60_000).unwrap());
        let q = p.clone();
        let killer = std::thread::spawn(move || {
            sleep_ms(100);
            q.terminate().unwrap();
        });
        assert_eq!(p.join().unwrap_err().signal(), Some(15));
        killer.join().unwrap();
    });
}

#[test]
fn a_second_joiner_times_out_on_the_first() {
    within(LIMIT, "two joiners", || {
        let p = std::sync::Arc::new(Process::spawn(sleep_ms, 60_000).unwrap());
        let q = p.clone();
        let first = std::thread::spawn(move || q.join());
        sleep_ms(50);
        assert!(
            p.join_timeout(Duration::from_millis(50))
                .unwrap_err()
                .is_timeout()
        );
        p.kill().unwrap();
        assert_eq!(first.join().unwrap().unwrap_err().signal(), Some(9));
    });
}

#[test]
fn start_errors() {
    use serde::{Deserialize, Serialize, Serializer};
    #[derive(Deserialize)]
    struct Refuses;
    impl Serialize for Refuses {
        fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("refused"))
        }
    }
    let p = Process::new(|_: Refuses| 0u8, Refuses);
    let e = p.start().unwrap_err();
    assert!(
        e.is_serialization() && e.to_string().contains("arguments"),
        "{e}"
    );
    assert!(p.start().unwrap_err().is_already_started());
    assert!(p.join().unwrap_err().is_not_started());
    let p = Process::new(|x: u8| x, 1);
    assert!(p.join().unwrap_err().is_not_started());
}

#[test]
fn a_result_that_cannot_be_serialized_is_a_typed_error() {
    use serde::{Deserialize, Serialize, Serializer};
    #[derive(Deserialize)]
    struct Refuses;
    impl Serialize for Refuses {
        fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("result refused"))
        }
    }
    within(LIMIT, "bad result", || {
        let p = Process::spawn(|_: ()| Refuses, ()).unwrap();
        let e: ProcessError = p.join().map(|_| ()).unwrap_err();
        assert!(
            e.is_serialization() && e.to_string().contains("result"),
            "{e}"
        );
        assert_eq!(p.exitcode(), Some(1));
    });
}

#[test]
fn no_zombies_after_join_or_drop() {
    within(LIMIT, "zombies", || {
        // A served child is reaped by its server: never a zombie to see (tests/forkserver.rs).
        for method in [StartMethod::Spawn, FORKED] {
            // Joined.
            let p = Process::builder()
                .start_method(method)
                .spawn(|x: u8| x, 1)
                .unwrap();
            let pid = p.pid().unwrap();
            p.join().unwrap();
            assert_eq!(proc_state(pid), None);
            // Exited, never joined, dropped.
            let p = Process::builder()
                .start_method(method)
                .spawn(|x: u8| x, 1)
                .unwrap();
            let pid = p.pid().unwrap();
            assert!(eventually(Duration::from_secs(30), || !p.is_alive()));
            assert_eq!(proc_state(pid), Some('Z'));
            drop(p);
            assert_eq!(proc_state(pid), None);
            // Still running when dropped (not a daemon): it finishes, then is reaped.
            let p = Process::builder()
                .start_method(method)
                .spawn(sleep_ms, 200)
                .unwrap();
            let pid = p.pid().unwrap();
            drop(p);
            assert!(proc_state(pid).is_some_and(|s| s != 'Z'), "keeps running");
            assert!(eventually(Duration::from_secs(30), || proc_state(pid).is_none()));
            // A daemon dropped while running is killed and reaped.
            let p = Process::builder()
                .daemon(true)
                .start_method(method)
                .spawn(sleep_ms, 60_000)
                .unwrap();
            let pid = p.pid().unwrap();
            drop(p);
            assert!(eventually(Duration::from_secs(10), || proc_state(pid).is_none()));
        }
    });
}

/// The intermediate parent: starts three sleeping children, reports their pids, sleeps.
fn middle((report, method): (Connection, StartMethod)) {
    let kids: Vec<Process<()>> = (0..3)
        .map(|_| {
            Process::builder()
                .start_method(method)
                .spawn(sleep_ms, 60_000)
                .unwrap()
        })
        .collect();
    let pids: Vec<u32> = kids.iter().map(|k| k.pid().unwrap()).collect();
    report.send(&pids).unwrap();
    sleep_ms(60_000);
}

#[test]
fn a_sigkilled_parent_leaves_no_children_running() {
    within(LIMIT, "orphans", || {
        for method in [StartMethod::Spawn, StartMethod::Fork { force: false }] {
            let (mine, theirs) = Pipe::duplex().unwrap();
            let parent = Process::spawn(middle, (theirs, method)).unwrap();
            let pids: Vec<u32> = mine.recv_timeout(Duration::from_secs(30)).unwrap();
            assert_eq!(pids.len(), 3);
            for &pid in &pids {
                assert!(
                    proc_state(pid).is_some_and(|s| s != 'Z'),
                    "child {pid} runs"
                );
            }
            parent.kill().unwrap();
            let killed = Instant::now();
            assert_eq!(parent.join().unwrap_err().signal(), Some(9));
            let all_gone = eventually(Duration::from_secs(2), || {
                pids.iter().all(|&p| gone_or_dead(p))
            });
            assert!(
                all_gone,
                "{method:?}: children still running {:?} after {:?}",
                pids.iter().map(|&p| (p, proc_state(p))).collect::<Vec<_>>(),
                killed.elapsed()
            );
        }
    });
}

#[test]
fn large_arguments_and_results_pass_whole() {
    within(LIMIT, "large args", || {
        for method in every_method() {
            // Far larger than a socket buffer, so both sides must stream.
            let v: Vec<u64> = (0..1 << 20).collect();
            let p = Process::builder()
                .start_method(method)
                .spawn(
                    |v: Vec<u64>| v.iter().map(|x| x * 2).collect::<Vec<u64>>(),
                    v,
                )
                .unwrap();
            let out = p.join().unwrap();
            assert_eq!(out.len(), 1 << 20);
            assert!(out.iter().enumerate().all(|(i, &x)| x == 2 * i as u64));
        }
    });
}

fn panics_on_purpose(x: u32) -> u32 {
    panic!("intentional child panic {x}");
}

/// Run by `a_child_panic_is_returned_not_printed` in a fresh copy of this test binary
/// (so that its stderr can be read whole); not a test by itself.
#[test]
#[ignore = "helper: run by a_child_panic_is_returned_not_printed"]
fn helper_child_panics_for_the_output_check() {
    for method in every_method() {
        let p = Process::builder()
            .start_method(method)
            .build(panics_on_purpose, 7);
        p.start().expect("start");
        let e = p.join_timeout(LIMIT).unwrap_err();
        assert!(e.is_panic(), "{e}");
        println!("JOINED-WITH: {e}");
    }
}

#[test]
fn a_child_panic_is_returned_not_printed() {
    let run = |print: bool| {
        let mut cmd = std::process::Command::new(std::env::current_exe().expect("test binary"));
        cmd.args([
            "--exact",
            "helper_child_panics_for_the_output_check",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ]);
        if print {
            cmd.env("CONCUR_CHILD_PANICS", "print");
        } else {
            cmd.env_remove("CONCUR_CHILD_PANICS");
        }
        let out = within(LIMIT, "the helper binary", move || {
            cmd.output().expect("run the helper")
        });
        assert!(out.status.success(), "helper failed: {out:?}");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (stdout, stderr) = run(false);
    // Every start method's child panic reached the parent, message included...
    assert_eq!(
        stdout.matches("JOINED-WITH: ").count(),
        3,
        "stdout:\n{stdout}"
    );
    assert_eq!(stdout.matches("intentional child panic 7").count(), 3);
    // ...and nobody printed it on the way.
    assert!(
        !stderr.contains("intentional child panic"),
        "a child printed its panic:\n{stderr}"
    );
    // Asked to, the children print it as well.
    let (_, stderr) = run(true);
    assert!(
        stderr.matches("intentional child panic 7").count() >= 3,
        "CONCUR_CHILD_PANICS=print printed nothing:\n{stderr}"
    );
}
