//! Seed: a counter in shared memory, incremented by 4 processes — first without holding
//! its lock (updates are lost), then under it (exact).
//!
//! Python:
//! ```python
//! from multiprocessing import Process, Value
//! def add(v, n):
//!     for _ in range(n):
//!         v.value += 1            # a read, then a write: another process can slip in between
//! def add_locked(v, n):
//!     for _ in range(n):
//!         with v.get_lock():      # the read-modify-write under the Value's own lock
//!             v.value += 1
//! if __name__ == "__main__":
//!     v = Value("Q", 0)
//!     ps = [Process(target=add, args=(v, N)) for _ in range(4)]
//!     for p in ps: p.start()
//!     for p in ps: p.join()
//!     print(v.value)              # usually less than 4 * N
//! ```
//! Rust: `Value<u64>` lives in shared memory and travels to the children as an argument
//! (its memory's descriptor is passed along, so all of them see the same counter).
//! As in Python, `get` and `set` each take the value's lock for the copy, but
//! `v.set(v.get() + 1)` does not hold it *between* them: that is the race. Holding the
//! guard from `get_lock()` across both (or calling `with_lock`) makes the increment
//! atomic:
//! ```rust,ignore
//! let _g = v.get_lock().unwrap().acquire()?;   // Python's `with v.get_lock():`
//! v.set(v.get() + 1);                          // no second locking while held
//! ```
//! How many updates the racy phase loses depends on the machine and the moment (it can
//! be none on a quiet run): it is printed, and only checked to be no more than 4 × N.
//!
//! Run: `cargo run --release -p concur --example shared_counter`

use concur::process::{Event, Process, Value};
use std::time::{Duration, Instant};

/// Processes incrementing the counter.
const PROCS: usize = 4;
/// Increments per process.
const N: u64 = 100_000;
/// How long a child waits for the others to be started (bounded: never a hang).
const GO_LIMIT: Duration = Duration::from_secs(60);

/// `n` increments as a separate read and write (Python's bare `v.value += 1`).
fn add((v, n, go): (Value<u64>, u64, Event)) {
    go.wait_timeout(GO_LIMIT);
    for _ in 0..n {
        v.set(v.get() + 1);
    }
}

/// `n` increments, each under the value's lock (Python's `with v.get_lock(): ...`).
fn add_locked((v, n, go): (Value<u64>, u64, Event)) {
    go.wait_timeout(GO_LIMIT);
    let lock = v
        .get_lock()
        .expect("Value::new makes a value with its own lock");
    for _ in 0..n {
        let _guard = lock.acquire().expect("no process died holding the lock");
        v.set(v.get() + 1); // the calling thread holds the lock: the copies do not lock again
    }
}

/// Starts `PROCS` processes running `f` on the counter, lets them go together, and
/// joins them all.
/// (`f` is a generic parameter, not a `fn` pointer: a `Process` runs a function that
/// captures nothing, known from its type alone.)
fn run_all<F>(f: F, v: &Value<u64>) -> Result<Duration, Box<dyn std::error::Error>>
where
    F: Fn((Value<u64>, u64, Event)) + Copy + 'static,
{
    let go = Event::new()?;
    let ps: Vec<Process<()>> = (0..PROCS)
        .map(|_| Process::spawn(f, (v.clone(), N, go.clone())))
        .collect::<Result<_, _>>()?;
    // Every child waits for this, so they all count at once (a child started a few
    // milliseconds before the next one could otherwise finish before it begins).
    let start = Instant::now();
    go.set();
    for p in &ps {
        p.join()?;
    }
    Ok(start.elapsed())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let expected = PROCS as u64 * N;

    let racy = Value::new(0u64)?;
    let racy_time = run_all(add, &racy)?;
    let racy_total = racy.get();
    assert!(
        racy_total <= expected,
        "no increment can be counted twice: {racy_total} > {expected}"
    );

    let locked = Value::new(0u64)?;
    let locked_time = run_all(add_locked, &locked)?;
    let locked_total = locked.get();
    assert_eq!(locked_total, expected, "under the lock, no update is lost");

    println!("{PROCS} processes x {N} increments of one Value<u64> (expected {expected})");
    println!(
        "  without holding the lock: {racy_total} ({} updates lost) in {racy_time:?}",
        expected - racy_total
    );
    println!("  holding the lock:         {locked_total} (exact) in {locked_time:?}");
    Ok(())
}
