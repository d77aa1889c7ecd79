//! Seed: `Pool().map(square, mylist)` and `ProcessPoolExecutor` — a CPU-bound function
//! mapped over a pool of worker processes, then the same function through the futures
//! API with `as_completed`.
//!
//! Python:
//! ```python
//! from multiprocessing import Pool
//! from concurrent.futures import ProcessPoolExecutor, as_completed
//!
//! def count_primes(segment):                 # CPU-bound
//!     lo, hi = segment
//!     return sum(1 for n in range(lo, hi) if all(n % d for d in range(2, int(n**.5) + 1)))
//!
//! if __name__ == "__main__":
//!     with Pool(4) as pool:
//!         counts = pool.map(count_primes, segments)          # in input order
//!     with ProcessPoolExecutor(4) as ex:
//!         futs = {ex.submit(count_primes, s): s for s in segments}
//!         for f in as_completed(futs):                       # in the order they finish
//!             print(futs[f], f.result())
//! ```
//! concur (`concur::process`): the function is a plain `fn` (or a closure that captures
//! nothing), its argument and result serde values; `pool.map` returns the values in
//! input order or the error of the first failing item, and `ex.call(f, arg)` returns the
//! same `Future` as the thread pools, so `as_completed` works unchanged. Beyond Python, a
//! worker that crashes fails only its own task, and the pool serves on.
//! ```rust,ignore
//! let pool = ProcessPool::new(4);
//! let counts: Vec<u64> = pool.map(count_primes, segments)?;
//! let ex = ProcessPoolExecutor::new(4);
//! let futures: Vec<_> = segments.iter().map(|&s| ex.call(count_primes, s)).collect::<Result<_, _>>()?;
//! for f in as_completed(&futures, None) { let n = f?.result()?; }
//! ```
//!
//! Run: `cargo run --release -p concur --example process_pool`

use concur::futures::{Executor, as_completed};
use concur::process::{ProcessPool, ProcessPoolExecutor};
use std::time::Instant;

/// The number of primes in `lo..hi` (`lo` ≥ 2), by trial division: CPU work and
/// nothing else.
fn count_primes((lo, hi): (u64, u64)) -> u64 {
    (lo..hi)
        .filter(|&n| (2..).take_while(|d| d * d <= n).all(|d| n % d != 0))
        .count() as u64
}

/// Segments of equal width far enough from 0 that each costs about the same.
const FIRST: u64 = 1_000_000;
const WIDTH: u64 = 100_000;
const SEGMENTS: u64 = 16;

/// A task that crashes its worker process.
fn crash(_: ()) -> u64 {
    std::process::abort()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(4);
    let segments: Vec<(u64, u64)> = (0..SEGMENTS)
        .map(|i| (FIRST + i * WIDTH, FIRST + (i + 1) * WIDTH))
        .collect();

    let start = Instant::now();
    let sequential: Vec<u64> = segments.iter().map(|&s| count_primes(s)).collect();
    let seq_time = start.elapsed();

    // multiprocessing.Pool: map in input order.
    let pool = ProcessPool::new(workers);
    // Workers start when there is work for them: warm them up outside the timing.
    pool.map(count_primes, vec![(2, 1_000); 4 * workers])?;
    let start = Instant::now();
    let counts: Vec<u64> = pool.map(count_primes, segments.clone())?;
    let pool_time = start.elapsed();
    assert_eq!(counts, sequential, "the pool computed what the loop did");
    // As the Python above counts them in [1,000,000, 2,600,000).
    assert_eq!(counts.iter().sum::<u64>(), 111_382);
    println!(
        "count_primes over {SEGMENTS} segments of {WIDTH} numbers from {FIRST}, {workers} worker processes"
    );
    println!("  sequential, in this process: {seq_time:?}");
    println!("  ProcessPool::map:            {pool_time:?}");
    println!(
        "  speed-up {:.2}x with {} worker(s) started (the machine's other load counts too)",
        seq_time.as_secs_f64() / pool_time.as_secs_f64(),
        pool.executor().workers_started()
    );

    // A worker that crashes fails only its task; the pool serves on (Python's pool
    // would be broken for good).
    let e = pool.apply(crash, ()).expect_err("the worker aborted");
    assert!(e.is_worker_died(), "{e}");
    println!("  a crashing task: {e}");
    assert_eq!(pool.apply(count_primes, (2, 100))?, 25);
    pool.close();
    pool.join()?;

    // concurrent.futures.ProcessPoolExecutor: call + as_completed.
    let ex = ProcessPoolExecutor::new(workers);
    let futures = segments
        .iter()
        .map(|&s| ex.call(count_primes, s))
        .collect::<Result<Vec<_>, _>>()?;
    let mut finished = Vec::new();
    for f in as_completed(&futures, None) {
        let f = f?;
        let i = futures.iter().position(|g| g == f).expect("one of ours");
        let n = f.result()?;
        assert_eq!(n, sequential[i]);
        finished.push(i);
    }
    finished.sort_unstable();
    assert_eq!(
        finished,
        (0..segments.len()).collect::<Vec<_>>(),
        "each future once"
    );
    ex.shutdown(true, false)?;
    println!(
        "  ProcessPoolExecutor + as_completed: {} futures, every count matches",
        futures.len()
    );
    Ok(())
}
