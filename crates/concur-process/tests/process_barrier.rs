//! Process-shared barriers across forked processes.
//!
//! Ported from CPython 3.13 `Lib/test/_test_multiprocessing.py`: `_TestBarrier`, in its
//! `processes` flavour: `run_threads` runs the body in `N - 1` forked children and the
//! test itself, and Python's result lists become counters in shared memory. Timing
//! checks are lower bounds only. `test_action` is not ported (no barrier action: a
//! closure cannot travel between processes); `test_thousand` counts in shared memory
//! instead of sending through a pipe.

mod common;

use common::{Exit, LIMIT, fork};
use concur_process::shm::{Array, Value};
use concur_process::sync::{Barrier, BrokenKind};
use std::thread;
use std::time::{Duration, Instant};

fn bump(v: &Value<u32>) {
    v.with_lock(|x| *x += 1).unwrap();
}

// ---------------------------------------------------------------- _TestBarrier

const N: usize = 5;

/// CPython's `run_threads`: `f` runs in `N - 1` forked children and here.
fn run_parties(f: impl Fn() + Sync) {
    let children: Vec<_> = (1..N).map(|_| fork(&f)).collect();
    f();
    for c in children {
        c.expect_success(LIMIT, "barrier party");
    }
}

fn barrier() -> Barrier {
    Barrier::builder(N)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn multipass(passes: u32) {
    let b = barrier();
    let (r0, r1) = (Value::new(0u32).unwrap(), Value::new(0u32).unwrap());
    let m = b.parties() as u32;
    run_parties(|| {
        for i in 0..passes {
            bump(&r0);
            assert_eq!(r1.get(), i * m);
            b.wait().unwrap();
            bump(&r1);
            assert_eq!(r0.get(), (i + 1) * m);
            b.wait().unwrap();
        }
        assert!(!b.broken());
    });
    assert_eq!(b.n_waiting(), 0);
}

#[test]
fn test_barrier() {
    multipass(1);
}

#[test]
fn test_barrier_10() {
    multipass(10);
}

#[test]
fn test_wait_return() {
    let b = barrier();
    let zeros = Value::new(0u32).unwrap();
    let total = Value::new(0u32).unwrap();
    run_parties(|| {
        let i = b.wait().unwrap();
        assert!(i < N);
        if i == 0 {
            bump(&zeros);
        }
        bump(&total);
    });
    assert_eq!((zeros.get(), total.get()), (1, N as u32));
}

#[test]
fn test_abort() {
    let b = barrier();
    let (results1, results2) = (Value::new(0u32).unwrap(), Value::new(0u32).unwrap());
    run_parties(|| match b.wait() {
        Ok(i) if i == N / 2 => b.abort(),
        Ok(_) => match b.wait() {
            Ok(_) => bump(&results1),
            Err(_) => bump(&results2),
        },
        Err(_) => bump(&results2),
    });
    assert_eq!(results1.get(), 0);
    assert_eq!(results2.get(), N as u32 - 1);
    assert!(b.broken());
}

#[test]
fn test_reset() {
    let b = barrier();
    let r = [(); 3].map(|()| Value::new(0u32).unwrap());
    run_parties(|| {
        let i = b.wait().unwrap();
        if i == N / 2 {
            // Wait until the other parties are all in the barrier.
            let start = Instant::now();
            while b.n_waiting() < N - 1 {
                assert!(start.elapsed() < LIMIT, "parties never arrived");
                thread::sleep(Duration::from_millis(1));
            }
            b.reset();
        } else {
            match b.wait() {
                Ok(_) => bump(&r[0]),
                Err(e) => {
                    assert_eq!(e.kind(), BrokenKind::Reset);
                    bump(&r[1]);
                }
            }
        }
        // Now, pass the barrier again.
        b.wait().unwrap();
        bump(&r[2]);
    });
    assert_eq!(r.each_ref().map(|v| v.get()), [0, N as u32 - 1, N as u32]);
}

#[test]
fn test_abort_and_reset() {
    let b = barrier();
    let b2 = Barrier::new(N).unwrap();
    let r = [(); 3].map(|()| Value::new(0u32).unwrap());
    run_parties(|| {
        match b.wait() {
            Ok(i) if i == N / 2 => b.abort(),
            Ok(_) => match b.wait() {
                Ok(_) => bump(&r[0]),
                Err(_) => bump(&r[1]),
            },
            Err(_) => bump(&r[1]),
        }
        // Synchronize and reset the barrier: everyone has left it when we reset, and
        // no one enters it before the reset.
        if b2.wait_timeout(LIMIT).unwrap() == N / 2 {
            b.reset();
        }
        b2.wait_timeout(LIMIT).unwrap();
        b.wait().unwrap();
        bump(&r[2]);
    });
    assert_eq!(r.each_ref().map(|v| v.get()), [0, N as u32 - 1, N as u32]);
}

#[test]
fn test_barrier_timeout() {
    let b = barrier();
    let results = Value::new(0u32).unwrap();
    run_parties(|| {
        let i = b.wait().unwrap();
        if i == N / 2 {
            thread::sleep(Duration::from_secs(1)); // one party is late
        }
        if b.wait_timeout(Duration::from_millis(300)).is_err() {
            bump(&results);
        }
    });
    assert_eq!(results.get(), N as u32);
}

#[test]
fn test_default_timeout() {
    let b = Barrier::builder(N)
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let results = Value::new(0u32).unwrap();
    run_parties(|| {
        let i = b.wait_timeout(Duration::from_secs(30)).unwrap();
        if i == N / 2 {
            thread::sleep(Duration::from_secs(1)); // later than the default timeout
        }
        if let Err(e) = b.wait() {
            assert!(e.kind() == BrokenKind::Timeout || b.broken());
            bump(&results);
        }
    });
    assert_eq!(results.get(), N as u32);
}

#[test]
fn test_single_thread() {
    let b = Barrier::new(1).unwrap();
    assert_eq!(b.wait(), Ok(0));
    assert_eq!(b.wait(), Ok(0));
}

#[test]
fn test_thousand() {
    // CPython sends each pass number through a pipe under a lock; here each party
    // counts its passes in shared memory, and checks lockstep as it goes.
    let b = barrier();
    let passes = 1000usize;
    let counts = Array::<u32>::zeroed(passes).unwrap();
    run_parties(|| {
        for i in 0..passes {
            b.wait().unwrap();
            if i > 0 {
                // Everyone counted pass i - 1 before arriving at this barrier.
                assert_eq!(counts.get(i - 1), Some(N as u32));
            }
            counts.with_lock(|c| c[i] += 1).unwrap();
        }
    });
    assert!(counts.to_vec().iter().all(|&c| c == N as u32));
}

#[test]
fn a_party_killed_while_waiting_counts_as_arrived_and_does_not_wedge_the_barrier() {
    let b = Barrier::new(3).unwrap();
    let child = fork(|| {
        let _ = b.wait_timeout(LIMIT);
        unreachable!("released without the others");
    });
    let start = Instant::now();
    while b.n_waiting() < 1 {
        assert!(start.elapsed() < LIMIT, "child never arrived");
        thread::sleep(Duration::from_millis(1));
    }
    child.signal(libc::SIGKILL);
    assert_eq!(
        child.wait(LIMIT, "killed party"),
        Exit::Signal(libc::SIGKILL)
    );
    // Two live parties complete the cycle the dead one started...
    let b2 = b.clone();
    let t = thread::spawn(move || b2.wait_timeout(LIMIT));
    assert!(b.wait_timeout(LIMIT).is_ok());
    assert!(t.join().unwrap().is_ok());
    // ...and the next cycle works normally.
    let ts: Vec<_> = (0..2)
        .map(|_| {
            let b = b.clone();
            thread::spawn(move || b.wait_timeout(LIMIT))
        })
        .collect();
    assert!(b.wait_timeout(LIMIT).is_ok());
    for t in ts {
        assert!(t.join().unwrap().is_ok());
    }
}
