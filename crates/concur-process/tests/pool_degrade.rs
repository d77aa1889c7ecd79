//! A process pool that cannot start all its workers serves on those it could start
//! (issue 14, finding 6: with the descriptor limit at 40, every task of an 8-worker
//! pool failed as "broken executor … Too many open files").
//!
//! The only test of its own binary: it lowers this process's own `RLIMIT_NOFILE`
//! (a per-process limit, inherited by the workers), which would disturb any other
//! test running beside it. The limit is put back before the test returns.

use std::time::{Duration, Instant};

use concur_core::futures::Executor;
use concur_process::ProcessPoolExecutor;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// The descriptor limit that leaves exactly `free` descriptor numbers free below it
/// (new descriptors take the lowest free numbers; open ones above it stay open).
fn limit_leaving(free: usize) -> usize {
    let open: std::collections::BTreeSet<usize> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<usize>().ok())
        .collect();
    let mut left = free;
    let mut n = 0;
    loop {
        if !open.contains(&n) {
            if left == 0 {
                return n;
            }
            left -= 1;
        }
        n += 1;
    }
}

fn nofile() -> libc::rlimit {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` writes the struct it is given.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) }, 0);
    r
}

fn set_nofile(r: &libc::rlimit) {
    // SAFETY: `setrlimit` reads the struct it is given.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, r) };
    assert_eq!(rc, 0, "setrlimit: {}", std::io::Error::last_os_error());
}

/// Puts the descriptor limit back however the test ends.
struct Restore(libc::rlimit);

impl Drop for Restore {
    fn drop(&mut self) {
        set_nofile(&self.0);
    }
}

fn slow_square(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(5));
    x * x
}

/// Runs `n` tasks on `pool`, each result checked, within a bound.
fn run_all(pool: &ProcessPoolExecutor, n: u64) {
    let futs: Vec<_> = (0..n).map(|i| pool.call(slow_square, i).unwrap()).collect();
    for (i, f) in futs.into_iter().enumerate() {
        let v = f
            .result_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("task {i} failed: {e}"));
        assert_eq!(v, (i as u64) * (i as u64));
    }
}

#[test]
fn a_pool_of_8_under_a_descriptor_limit_for_3_workers_completes_every_task() {
    // What one worker costs in the parent's descriptors, measured on a pool of 2 (the
    // first worker also pays for the pool's own descriptors).
    let calib = ProcessPoolExecutor::new(2);
    let before = open_fds();
    run_all(&calib, 1);
    let one = open_fds();
    run_all(&calib, 16);
    let two = open_fds();
    assert_eq!(calib.workers_alive(), 2);
    calib.shutdown(true, false).unwrap();
    drop(calib);
    let per_worker = two.saturating_sub(one).max(1);
    let pool_base = one.saturating_sub(before).saturating_sub(per_worker);

    // Room for the pool and three workers, with a little slack for the descriptors a
    // start holds only while it runs — far from eight.
    let old = nofile();
    let _restore = Restore(old);
    let free = pool_base + 3 * per_worker + per_worker / 2 + 2;
    let limit = limit_leaving(free);
    eprintln!(
        "{per_worker} descriptors per worker, {pool_base} for the pool: RLIMIT_NOFILE soft \
         limit set to {limit}, leaving {free} descriptors free"
    );
    set_nofile(&libc::rlimit {
        rlim_cur: limit as libc::rlim_t,
        rlim_max: old.rlim_max,
    });

    let pool = ProcessPoolExecutor::new(8);
    let start = Instant::now();
    run_all(&pool, 200);
    let alive = pool.workers_alive();
    let err = pool.last_start_error();
    eprintln!(
        "200 tasks done in {:?} on {alive} workers; last start error: {err:?}",
        start.elapsed()
    );
    assert!(
        (1..8).contains(&alive),
        "{alive} workers alive under a limit meant for about 3"
    );
    let err = err.expect("a start must have failed under the limit");
    assert!(
        err.contains("open files") || err.contains("EMFILE") || err.contains("descriptor"),
        "the start error names the cause: {err}"
    );
    // Still serving after more failed retries.
    run_all(&pool, 20);
    pool.shutdown(true, false).unwrap();
    drop(pool);

    // With no worker at all, the tasks fail, each with the cause.
    let pool = ProcessPoolExecutor::new(8);
    set_nofile(&libc::rlimit {
        rlim_cur: limit_leaving(pool_base) as libc::rlim_t,
        rlim_max: old.rlim_max,
    });
    let futs: Vec<_> = (0..4).map(|i| pool.call(slow_square, i)).collect();
    for f in futs {
        let e = match f {
            Ok(f) => f.result_timeout(Duration::from_secs(60)).unwrap_err(),
            Err(e) => e,
        };
        assert!(e.is_broken_executor(), "{e}");
        assert!(e.to_string().contains("open files"), "{e}");
    }
    set_nofile(&old);
    pool.shutdown(true, false).unwrap();
}
