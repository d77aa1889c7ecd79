//! What is particular to the `ForkServer` start method, ported from CPython's
//! `Lib/test/_test_multiprocessing.py` as run under the "forkserver" start method
//! (`_TestProcess`: `test_many_processes`, `test_recursion`, join timeouts, `is_alive`),
//! plus what concur adds: the server is shared and replaced when it dies, it needs no
//! single-threaded parent, and no child or server outlives a SIGKILLed parent or stays
//! a zombie. What holds for every start method alike (attributes, exit codes, signals,
//! panics, connections, large values) runs for ForkServer in `tests/process.rs`.

mod common;

use std::time::{Duration, Instant};

use common::{LIMIT, eventually, gone_or_dead, proc_state, within};
use concur_process::{Connection, Pipe, Process, ProcessBuilder, StartMethod};

const SERVED: StartMethod = StartMethod::ForkServer;

fn served() -> ProcessBuilder {
    Process::builder().start_method(SERVED)
}

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

fn exit_with(code: i32) {
    std::process::exit(code)
}

/// The parent pid of `pid`, from `/proc/<pid>/stat`.
fn ppid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn children_are_forked_by_one_shared_server() {
    within(LIMIT, "shared server", || {
        let a = served().spawn(sleep_ms, 60_000).unwrap();
        let b = served().spawn(sleep_ms, 60_000).unwrap();
        let (sa, sb) = (ppid(a.pid().unwrap()), ppid(b.pid().unwrap()));
        a.kill().unwrap();
        b.kill().unwrap();
        assert_eq!(a.join().unwrap_err().signal(), Some(9));
        assert_eq!(b.join().unwrap_err().signal(), Some(9));
        let server = sa.expect("the child's parent");
        assert_eq!(sa, sb, "both children come from the same server");
        assert_ne!(
            server,
            std::process::id(),
            "the server forks, not the parent"
        );
        assert_eq!(ppid(server), Some(std::process::id()), "the server is ours");
        let comm = std::fs::read_to_string(format!("/proc/{server}/comm")).unwrap();
        assert_eq!(comm.trim_end(), "concur-forksrv");
    });
}

#[test]
fn join_timeout_on_a_sleeping_child() {
    within(LIMIT, "join_timeout", || {
        let p = served().spawn(sleep_ms, 60_000).unwrap();
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
        let e = p.join_timeout(Duration::from_secs(30)).unwrap_err();
        assert_eq!(e.signal(), Some(9));
        let p = served()
            .spawn(
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
        let p = served()
            .spawn(|c: Connection| c.recv::<u8>().unwrap(), b)
            .unwrap();
        assert!(p.is_alive());
        sleep_ms(50);
        assert!(p.is_alive(), "still waiting for its message");
        a.send(&4u8).unwrap();
        assert!(eventually(Duration::from_secs(30), || !p.is_alive()));
        // Exited: the server reaped it and sent the status, before any join.
        assert_eq!(p.exitcode(), Some(0));
        assert_eq!(proc_state(p.pid().unwrap()), None, "reaped by the server");
        assert_eq!(p.join().unwrap(), 4);
        assert_eq!(p.exitcode(), Some(0));
    });
}

#[test]
fn many_children_at_once_from_many_threads() {
    within(LIMIT, "many processes", || {
        // 20 running at the same time from one thread...
        let ps: Vec<Process<u64>> = (0..20u64)
            .map(|i| {
                served()
                    .spawn(
                        |x: u64| {
                            sleep_ms(100);
                            x * x
                        },
                        i,
                    )
                    .unwrap()
            })
            .collect();
        assert!(ps.iter().all(|p| p.pid().is_some()));
        let total: u64 = ps.iter().map(|p| p.join().unwrap()).sum();
        assert_eq!(total, (0..20u64).map(|i| i * i).sum());
        // ...and from four threads at once.
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                std::thread::spawn(move || {
                    let ps: Vec<Process<u64>> = (0..6u64)
                        .map(|i| served().spawn(|x: u64| x + 1, t * 10 + i).unwrap())
                        .collect();
                    ps.iter().map(|p| p.join().unwrap()).sum::<u64>()
                })
            })
            .collect();
        let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        let expect: u64 = (0..4u64)
            .flat_map(|t| (0..6).map(move |i| t * 10 + i + 1))
            .sum();
        assert_eq!(total, expect);
    });
}

#[test]
fn threads_in_the_parent_do_not_matter() {
    within(LIMIT, "threads", || {
        // An unforced Fork is refused here; the fork server does not care.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let busy = std::thread::spawn(move || rx.recv());
        let e = Process::builder()
            .start_method(StartMethod::Fork { force: false })
            .spawn(|x: u8| x, 1)
            .unwrap_err();
        assert!(e.is_fork_refused(), "{e}");
        assert_eq!(served().spawn(|x: u8| x + 1, 1).unwrap().join().unwrap(), 2);
        tx.send(()).unwrap();
        busy.join().unwrap().unwrap();
    });
}

fn nested(depth: u32) -> u32 {
    if depth == 0 {
        return 0;
    }
    let a = served().spawn(nested, depth - 1).unwrap();
    let b = served().spawn(nested, depth - 1).unwrap();
    1 + a.join().unwrap() + b.join().unwrap()
}

#[test]
fn test_recursion() {
    within(LIMIT, "recursion", || {
        // Each served child starts its own server for its own children.
        let p = served().spawn(nested, 3).unwrap();
        assert_eq!(p.join().unwrap(), 7);
        // And from a spawned and a forked child.
        let p = Process::spawn(nested, 2).unwrap();
        assert_eq!(p.join().unwrap(), 3);
        let p = Process::builder()
            .start_method(StartMethod::Fork { force: true })
            .spawn(nested, 2)
            .unwrap();
        assert_eq!(p.join().unwrap(), 3);
    });
}

#[test]
fn terminate_from_another_thread_while_joining() {
    within(LIMIT, "terminate while joining", || {
        let p = std::sync::Arc::new(served().spawn(sleep_ms, 60_000).unwrap());
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
fn no_zombies_after_join_or_drop() {
    within(LIMIT, "zombies", || {
        // Joined.
        let p = served().spawn(|x: u8| x, 1).unwrap();
        let pid = p.pid().unwrap();
        p.join().unwrap();
        assert_eq!(proc_state(pid), None);
        // Exited, never joined: the server reaped it already.
        let p = served().spawn(|x: u8| x, 1).unwrap();
        let pid = p.pid().unwrap();
        assert!(eventually(Duration::from_secs(30), || !p.is_alive()));
        assert_eq!(proc_state(pid), None);
        drop(p);
        // Still running when dropped (not a daemon): it finishes, then is reaped.
        let p = served().spawn(sleep_ms, 200).unwrap();
        let pid = p.pid().unwrap();
        drop(p);
        assert!(proc_state(pid).is_some_and(|s| s != 'Z'), "keeps running");
        assert!(eventually(Duration::from_secs(30), || proc_state(pid).is_none()));
        // A daemon dropped while running is killed and reaped.
        let p = served().daemon(true).spawn(sleep_ms, 60_000).unwrap();
        let pid = p.pid().unwrap();
        drop(p);
        assert!(eventually(Duration::from_secs(10), || proc_state(pid).is_none()));
    });
}

/// Starts three served children, reports their pids and their server's, sleeps.
fn middle(report: Connection) {
    let kids: Vec<Process<()>> = (0..3)
        .map(|_| served().spawn(sleep_ms, 60_000).unwrap())
        .collect();
    let pids: Vec<u32> = kids.iter().map(|k| k.pid().unwrap()).collect();
    let server = ppid(pids[0]).unwrap();
    report.send(&(pids, server)).unwrap();
    sleep_ms(60_000);
}

#[test]
fn a_sigkilled_parent_leaves_no_children_and_no_server_running() {
    within(LIMIT, "orphans", || {
        let (mine, theirs) = Pipe::duplex().unwrap();
        let parent = Process::spawn(middle, theirs).unwrap();
        let (pids, server): (Vec<u32>, u32) = mine.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(pids.len(), 3);
        assert_eq!(ppid(server), parent.pid(), "the middle process's server");
        for &pid in pids.iter().chain([&server]) {
            assert!(proc_state(pid).is_some_and(|s| s != 'Z'), "{pid} runs");
        }
        parent.kill().unwrap();
        let killed = Instant::now();
        assert_eq!(parent.join().unwrap_err().signal(), Some(9));
        let all = || pids.iter().copied().chain([server]);
        let all_gone = eventually(Duration::from_secs(2), || all().all(gone_or_dead));
        assert!(
            all_gone,
            "still running {:?} after {:?}",
            all().map(|p| (p, proc_state(p))).collect::<Vec<_>>(),
            killed.elapsed()
        );
    });
}

/// Kills this process's fork server under a running child, then starts another one.
fn server_dies(_: ()) -> (Option<i32>, i32, u32, u32, bool) {
    let p = served().spawn(sleep_ms, 60_000).unwrap();
    let old = ppid(p.pid().unwrap()).unwrap();
    // SAFETY: `old` is our own child (the fork server), not yet reaped.
    unsafe { libc::kill(old as i32, libc::SIGKILL) };
    // The child dies with its server; with no status from the server it is reported
    // killed.
    let code = p
        .join_timeout(Duration::from_secs(20))
        .unwrap_err()
        .signal();
    // The next start replaces the server.
    let q = served().spawn(|x: i32| x * 2, 21).unwrap();
    let new = ppid(q.pid().unwrap()).unwrap();
    // Replacing it reaped the dead one.
    let reaped = proc_state(old).is_none();
    (code, q.join().unwrap(), old, new, reaped)
}

#[test]
fn a_dead_server_is_replaced() {
    within(LIMIT, "server replaced", || {
        // In a child of its own, so that killing its server touches no other test.
        let p = Process::spawn(server_dies, ()).unwrap();
        let (code, value, old, new, reaped) = p.join().unwrap();
        assert_eq!(code, Some(9));
        assert_eq!(value, 42);
        assert_ne!(old, new);
        assert!(reaped, "the dead server was reaped");
    });
}

#[test]
fn a_long_name_is_fine_and_names_the_child() {
    within(LIMIT, "long name", || {
        let name = format!("wörker-{}", "x".repeat(100_000));
        let p = served()
            .name(name.clone())
            .spawn(
                |_: ()| std::fs::read_to_string("/proc/self/comm").unwrap(),
                (),
            )
            .unwrap();
        assert_eq!(p.name(), name);
        // The OS keeps the first 15 bytes.
        assert_eq!(p.join().unwrap().trim_end(), "wörker-xxxxxxx");
    });
}

/// Ignores SIGCHLD (which `exec` passes on to the fork server), then reports how a
/// served child exited.
fn with_sigchld_ignored(code: i32) -> Option<i32> {
    // SAFETY: sets a disposition, no handler; this process runs no other threads that
    // care about SIGCHLD.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    let p = served().spawn(exit_with, code).unwrap();
    let _ = p.join();
    p.exitcode()
}

#[test]
fn an_ignored_sigchld_does_not_lose_exit_statuses() {
    within(LIMIT, "SIGCHLD ignored", || {
        let p = Process::spawn(with_sigchld_ignored, 7).unwrap();
        assert_eq!(p.join().unwrap(), Some(7));
    });
}

fn open_fds(_: ()) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_served_child_inherits_none_of_the_parents_descriptors() {
    within(LIMIT, "descriptors", || {
        let pipes: Vec<_> = (0..40).map(|_| Pipe::duplex().unwrap()).collect();
        let fds = served().spawn(open_fds, ()).unwrap().join().unwrap();
        // Standard input, output and error, the control socket, and the directory
        // being listed: nothing of the parent's 80 pipe ends, nor of the server's.
        assert!(fds.len() <= 5, "{fds:?}");
        // A forked child, for contrast, has them all.
        let forked = Process::builder()
            .start_method(StartMethod::Fork { force: true })
            .spawn(open_fds, ())
            .unwrap()
            .join()
            .unwrap();
        assert!(forked.len() >= 80, "{forked:?}");
        drop(pipes);
    });
}
