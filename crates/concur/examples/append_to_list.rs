//! Seed: the CPU-bound `append_to_list` of Python's multiprocessing tutorials — the same
//! work done sequentially, then split over 2 processes.
//!
//! Python:
//! ```python
//! import multiprocessing, random
//! def list_append(count, id, out_list):
//!     for i in range(count):
//!         out_list.append(random.random())
//! if __name__ == "__main__":
//!     size, procs = 10_000_000, 2
//!     jobs = [multiprocessing.Process(target=list_append, args=(size, i, []))
//!             for i in range(procs)]
//!     for j in jobs: j.start()
//!     for j in jobs: j.join()
//! ```
//! Rust (`concur::process`): the function runs in a child process, and — unlike Python's
//! `Process`, which returns nothing — `join` hands back its value, so each child reports
//! how many numbers it appended and a checksum of them, and the parent checks both
//! against the same work done sequentially:
//! ```rust,ignore
//! let jobs: Vec<_> = (0..2).map(|id| Process::spawn(append_to_list, (SIZE, id))).collect::<Result<_, _>>()?;
//! for j in jobs { let (len, checksum) = j.join()?; }
//! ```
//! There is no GIL in Rust, so threads would do as well here; processes are what you
//! reach for when the work must be isolated (a crash, a leak, a C library that is not
//! thread-safe), and this shows what they cost and that the work really runs in parallel.
//!
//! Run: `cargo run --release -p concur --example append_to_list`

use concur::process::Process;
use std::time::Instant;

/// Numbers each job appends (Python's `size`, scaled down to run in about a second).
const SIZE: u64 = 4_000_000;
/// Jobs (Python's `procs`).
const PROCS: u64 = 2;

/// Appends `count` pseudo-random numbers in `[0, 1)` (seeded by `id`) to a fresh list,
/// the way the seed's `random.random()` loop does, and returns the list's length and a
/// checksum of its contents. Each number costs a few rounds of mixing, to keep it
/// CPU-bound rather than memory-bound.
fn append_to_list((count, id): (u64, u64)) -> (usize, u64) {
    let mut out_list = Vec::new();
    let mut state = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    for _ in 0..count {
        for _ in 0..8 {
            state = splitmix64(state);
        }
        // The top 53 bits as a float in [0, 1), as `random.random()` makes them.
        out_list.push((state >> 11) as f64 / (1u64 << 53) as f64);
    }
    let checksum = out_list
        .iter()
        .fold(0u64, |acc, x| acc.rotate_left(5) ^ x.to_bits());
    (out_list.len(), checksum)
}

/// One step of SplitMix64 (Steele, Lea & Flood, 2014).
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let sequential: Vec<(usize, u64)> = (0..PROCS).map(|id| append_to_list((SIZE, id))).collect();
    let seq_time = start.elapsed();

    let start = Instant::now();
    let jobs: Vec<Process<(usize, u64)>> = (0..PROCS)
        .map(|id| Process::spawn(append_to_list, (SIZE, id)))
        .collect::<Result<_, _>>()?;
    let pids: Vec<Option<u32>> = jobs.iter().map(Process::pid).collect();
    let mut parallel = Vec::new();
    for job in &jobs {
        parallel.push(job.join()?);
    }
    let par_time = start.elapsed();

    assert_eq!(
        parallel, sequential,
        "each child built the same list as the sequential run"
    );
    assert!(parallel.iter().all(|&(len, _)| len as u64 == SIZE));
    for job in &jobs {
        assert_eq!(job.exitcode(), Some(0), "{} exited cleanly", job.name());
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("{PROCS} jobs of {SIZE} numbers each ({cores} cores available)");
    println!("  sequential, in this process: {seq_time:?}");
    println!("  {PROCS} processes {pids:?}: {par_time:?}");
    println!(
        "  speed-up {:.2}x; every list has {SIZE} numbers and the same checksum both ways",
        seq_time.as_secs_f64() / par_time.as_secs_f64()
    );
    Ok(())
}
