//! Unit tests of what the public API cannot reach: the binary identity check, the
//! anchor arithmetic, the fork server's greeting and the watcher.

use super::protocol::Identity;
use super::*;

#[test]
fn offsets_from_the_anchor_round_trip() {
    fn of<F: Fn(u8) -> u8 + Copy + 'static>(_: F) -> Trampoline {
        child::trampoline::<F, u8, u8>
    }
    let t = of(|x| x);
    let off = crate::code::FnOffset::of(t);
    // SAFETY: made by `of` from a `Trampoline` in this very process.
    assert_eq!(unsafe { off.resolve() } as usize, t as usize);
}

#[test]
fn identity_is_stable_within_a_process() {
    let a = Identity::current().unwrap();
    assert_eq!(a, Identity::current().unwrap());
    assert_ne!(a, a.clone().corrupted());
    assert_ne!(a, Identity::unknown());
}

#[test]
fn a_child_in_a_different_binary_refuses_to_run_the_function() {
    let mut p = Process::builder().build(|x: u32| x + 1, 1);
    p.corrupt_identity = true;
    p.start().unwrap();
    let e = p.join().unwrap_err();
    assert!(e.is_identity_mismatch(), "{e}");
    assert!(e.to_string().contains("different binary"), "{e}");
    assert_eq!(p.exitcode(), Some(1));
}

#[test]
fn a_fork_server_in_a_different_binary_refuses_to_serve() {
    let mine = Identity::current().unwrap();
    let e = start::greet_for_test(&mine.clone().corrupted()).unwrap_err();
    assert!(e.is_identity_mismatch(), "{e}");
    assert!(e.to_string().contains("fork server"), "{e}");
    start::greet_for_test(&mine).unwrap();
}

#[test]
fn the_same_binary_runs_it() {
    let p = Process::builder().build(|x: u32| x + 1, 1);
    p.start().unwrap();
    assert_eq!(p.join().unwrap(), 2);
}

#[test]
fn a_child_dies_when_its_control_socket_closes() {
    // The parent-death signal is not involved here: the parent lives and only closes
    // its end of the control socket, which the child's watch (`SIGIO`) must notice.
    for method in [
        StartMethod::Spawn,
        StartMethod::Fork { force: true },
        StartMethod::ForkServer,
    ] {
        let p = Process::builder()
            .start_method(method)
            .spawn(
                |ms: u64| std::thread::sleep(Duration::from_millis(ms)),
                60_000,
            )
            .unwrap();
        // Let the child reach its function (and start its watcher).
        std::thread::sleep(Duration::from_millis(100));
        {
            let mut st = p.state.acquire();
            let State::Running(run) = &mut *st else {
                panic!("not running")
            };
            let (dummy, _other) = crate::sys::socket::socketpair().unwrap();
            drop(std::mem::replace(
                &mut run.control,
                Connection::from_fd(dummy),
            ));
        }
        let e = p.join_timeout(Duration::from_secs(20)).unwrap_err();
        assert_eq!(e.signal(), Some(9), "{method:?}: {e}");
    }
}
