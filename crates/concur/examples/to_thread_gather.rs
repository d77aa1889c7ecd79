//! `asyncio.to_thread` + `gather`: blocking calls moved off the async code, awaited together.
//!
//! Python:
//! ```python
//! def blocking_read(name):
//!     time.sleep(DELAY[name])                 # a slow disk, a C library, a sync client
//!     return f"contents of {name}"
//! async def main():
//!     texts = await asyncio.gather(*(asyncio.to_thread(blocking_read, n) for n in NAMES))
//!     size, text = await asyncio.gather(
//!         asyncio.to_thread(lambda: len(blocking_read("a.txt"))),
//!         asyncio.to_thread(blocking_read, "b.txt"))
//! asyncio.run(main())
//! ```
//! concur: `concur::futures::to_thread(f)` runs `f` on a process-wide default pool and
//! returns a `Future`, which is also a `std::future::Future`: any runtime can await it.
//! Here the `futures` crate's `join_all` / `join!` play `gather`, and its small
//! `block_on` plays `asyncio.run`; no async runtime is needed for the threads themselves.
//! Awaiting yields `Result<T, TaskError>`: a call that panicked is an `Err` at its place.
//!
//! Run: `cargo run --release -p concur --example to_thread_gather`

use concur::futures::to_thread;
use futures::executor::block_on;
use futures::future::join_all;
use std::time::{Duration, Instant};

/// The files, and how long each blocking read takes.
const FILES: [(&str, u64); 4] = [
    ("a.txt", 200),
    ("b.txt", 120),
    ("c.txt", 300),
    ("d.txt", 60),
];

/// A blocking read: sleeps for the file's delay, then returns its "contents".
fn blocking_read(name: &'static str) -> String {
    let ms = FILES.iter().find(|(n, _)| *n == name).map_or(10, |f| f.1);
    std::thread::sleep(Duration::from_millis(ms));
    format!("contents of {name}")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // gather(*(to_thread(...) for ...)): a list of calls, results in input order.
    let start = Instant::now();
    let texts = block_on(join_all(
        FILES
            .iter()
            .map(|&(name, _)| to_thread(move || blocking_read(name))),
    ))
    .into_iter()
    .collect::<Result<Vec<String>, _>>()?;
    let elapsed = start.elapsed();
    for t in &texts {
        println!("{t}");
    }
    let slowest = FILES.iter().map(|f| f.1).max().unwrap_or(0);
    let sum: u64 = FILES.iter().map(|f| f.1).sum();
    println!(
        "{} blocking reads in {} ms: they overlapped (slowest alone {slowest} ms, one after \
         another {sum} ms)",
        texts.len(),
        elapsed.as_millis()
    );
    let want: Vec<String> = FILES
        .iter()
        .map(|f| format!("contents of {}", f.0))
        .collect();
    assert_eq!(texts, want, "gather keeps input order");

    // gather(a, b) of two different types: `join!` inside an async block.
    let (size, text) = block_on(async {
        let size = to_thread(|| blocking_read("a.txt").len());
        let text = to_thread(|| blocking_read("b.txt"));
        futures::join!(size, text)
    });
    let (size, text) = (size?, text?);
    println!("join!: a.txt is {size} bytes, b.txt says {text:?}");
    assert_eq!(
        (size, text.as_str()),
        ("contents of a.txt".len(), "contents of b.txt")
    );
    Ok(())
}
