//! Seed: a CPU-bound loop split across 2 threads.
//!
//! In CPython the GIL serialises the two threads, so the split takes as long as the
//! sequential loop (or longer). concur threads are OS threads with no global lock: on a
//! machine with 2 free cores the split is close to 2× faster.
//!
//! Run: `cargo run --release -p concur --example cpu_bound_threads [N]`

use concur::thread;
use std::hint::black_box;
use std::time::Instant;

/// Counts the primes in `lo..hi` by trial division: pure CPU work.
fn count_primes(lo: u64, hi: u64) -> u64 {
    (lo..hi)
        .filter(|&n| n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0))
        .count() as u64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);

    let t = Instant::now();
    let sequential = count_primes(black_box(0), black_box(n));
    let seq_time = t.elapsed();

    // Split by interleaving blocks so both halves have the same amount of work.
    let t = Instant::now();
    let halves: Vec<_> = (0..2u64)
        .map(|part| {
            thread::Builder::new()
                .name(format!("half-{part}"))
                .spawn(move || {
                    let block = 10_000;
                    (0..n.div_ceil(block))
                        .filter(|b| b % 2 == part)
                        .map(|b| count_primes(b * block, ((b + 1) * block).min(n)))
                        .sum::<u64>()
                })
        })
        .collect::<Result<_, _>>()?;
    let mut split = 0;
    for h in halves {
        split += h.join()?;
    }
    let par_time = t.elapsed();

    assert_eq!(sequential, split, "both ways must count the same primes");
    println!("primes below {n}: {sequential}");
    println!("sequential:   {seq_time:?}");
    println!("2 threads:    {par_time:?}");
    println!(
        "speed-up:     {:.2}x (CPython's GIL keeps this at or below 1x)",
        seq_time.as_secs_f64() / par_time.as_secs_f64()
    );
    Ok(())
}
