//! The `Spawn` start path (`posix_spawn`, no code of ours between clone and exec):
//! the guarantees the old `pre_exec` hook gave, checked directly. The child binds its
//! life to its parent's (its parent-death signal is armed, and a child whose named
//! parent is not its parent kills itself before `main`), it receives exactly the
//! descriptors it is handed (the control socket, the passed ones, `/dev/null` as
//! stdin) and none the parent left inheritable by mistake. The identity check and the
//! death of children with a SIGKILLed parent are covered in `src/process/tests.rs`
//! and `tests/process.rs`.

mod common;

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{LIMIT, within};
use concur_process::{Connection, Pipe, Process, StartMethod};

/// The child's parent-death signal (`PR_GET_PDEATHSIG`).
fn death_signal(_: ()) -> i32 {
    let mut sig: libc::c_int = 0;
    // SAFETY: PR_GET_PDEATHSIG writes one int through the pointer.
    let rc = unsafe { libc::prctl(libc::PR_GET_PDEATHSIG, &raw mut sig) };
    assert_eq!(rc, 0, "prctl failed");
    sig
}

/// Every open descriptor of the child, with what it points at.
fn open_fds(c: Connection) -> (Vec<(i32, String)>, i32) {
    let mut fds = Vec::new();
    for e in std::fs::read_dir("/proc/self/fd").unwrap() {
        let e = e.unwrap();
        let n: i32 = e.file_name().to_str().unwrap().parse().unwrap();
        let Ok(target) = std::fs::read_link(e.path()) else {
            continue;
        };
        let target = target.to_string_lossy().into_owned();
        // The directory being read has a descriptor of its own.
        if !target.starts_with("/proc/") {
            fds.push((n, target));
        }
    }
    (fds, c.as_fd().as_raw_fd())
}

#[test]
fn a_spawned_child_has_its_parent_death_signal_armed() {
    within(LIMIT, "pdeathsig", || {
        for method in [StartMethod::Spawn, StartMethod::ForkServer] {
            let p = Process::builder()
                .start_method(method)
                .spawn(death_signal, ())
                .unwrap();
            assert_eq!(p.join().unwrap(), libc::SIGKILL, "{method:?}");
        }
    });
}

#[test]
fn a_spawned_child_gets_the_handed_descriptors_and_no_others() {
    within(LIMIT, "descriptors", || {
        // A pipe left inheritable (no close-on-exec), as careless code or a library
        // might leave one: it must not reach the child.
        let mut ends = [0; 2];
        // SAFETY: `pipe` writes two descriptors into the array.
        assert_eq!(unsafe { libc::pipe(ends.as_mut_ptr()) }, 0);
        // SAFETY: just made by `pipe`, owned only here.
        let leaky = unsafe { [OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])] };
        let leaked_target = std::fs::read_link(format!("/proc/self/fd/{}", ends[0]))
            .unwrap()
            .to_string_lossy()
            .into_owned();
        for method in [StartMethod::Spawn, StartMethod::ForkServer] {
            let (_mine, theirs) = Pipe::duplex().unwrap();
            let p = Process::builder()
                .start_method(method)
                .spawn(open_fds, theirs)
                .unwrap();
            let (fds, passed) = p.join().unwrap();
            let targets: Vec<&str> = fds.iter().map(|(_, t)| t.as_str()).collect();
            assert!(
                !targets.contains(&leaked_target.as_str()),
                "{method:?}: the inheritable pipe leaked into the child: {fds:?}"
            );
            // The handed connection arrived and is open.
            assert!(fds.iter().any(|(n, _)| *n == passed), "{method:?}: {fds:?}");
            if method == StartMethod::Spawn {
                // stdin is /dev/null; 1 and 2 are the parent's.
                assert!(fds.contains(&(0, "/dev/null".to_owned())), "{fds:?}");
                // Beyond the standard three: the control socket, the passed
                // connection, and at most the child's own plumbing (its watcher's
                // descriptors), all sockets, pipes or anonymous inodes of its own.
                for (n, t) in &fds {
                    assert!(
                        *n <= 2
                            || t.starts_with("socket:")
                            || t.starts_with("anon_inode:")
                            || t.starts_with("pipe:"),
                        "unexpected descriptor {n} -> {t} in {fds:?}"
                    );
                }
            }
        }
        drop(leaky);
    });
}

/// Runs this binary as if it were a spawned child whose environment names `parent`,
/// with stdin our end's peer of a socket pair as the control socket; closes our end at
/// once. Returns how it ended.
fn run_as_child(parent: u32) -> std::process::ExitStatus {
    run_with_env(&format!("1:0:{parent}"))
}

/// Runs this binary with `CONCUR_PROCESS_CHILD=value` and stdin a socket whose peer is
/// closed at once; how it ended.
fn run_with_env(value: &str) -> std::process::ExitStatus {
    let mut pair = [0; 2];
    // SAFETY: `socketpair` writes two descriptors into the array.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            pair.as_mut_ptr(),
        )
    };
    assert_eq!(rc, 0);
    // SAFETY: just made by `socketpair`, owned only here.
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) };
    // The child's control socket is its stdin (fd 0), passed by std's own plumbing.
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("--concur-process-child")
        .env("CONCUR_PROCESS_CHILD", value)
        .stdin(Stdio::from(theirs))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    drop(ours);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child did not end");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_child_whose_named_parent_is_not_its_parent_kills_itself_before_main() {
    within(LIMIT, "parent check", || {
        // Pid 1 is never this test's pid: the child takes its parent for dead (it was
        // reparented before it could arm its parent-death signal) and ends by SIGKILL.
        let status = run_as_child(1);
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
        // Named correctly, it passes the check, finds the control socket closed
        // before any start message and exits 1 (it never runs the test harness).
        let status = run_as_child(std::process::id());
        assert_eq!(status.code(), Some(1), "{status:?}");
    });
}

#[test]
fn a_malformed_child_variable_is_refused_with_a_message_not_a_signal() {
    within(LIMIT, "malformed", || {
        // Without the parent field (or with a stray one) the value names no parent:
        // the child says so and exits 2 instead of running `main` or killing itself.
        for value in ["1:0", "1:0:1:2", "x"] {
            let status = run_with_env(value);
            assert_eq!(status.code(), Some(2), "{value}: {status:?}");
        }
    });
}
