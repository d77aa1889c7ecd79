//! Seed: page downloads with a thread pool — `submit`, `as_completed`, then `map`.
//!
//! Python:
//! ```python
//! with ThreadPoolExecutor(max_workers=5) as pool:
//!     url_of = {pool.submit(fetch, url): url for url in URLS}
//!     for fut in as_completed(url_of):          # in the order they finish
//!         url = url_of[fut]
//!         try:
//!             page = fut.result()
//!         except Exception as exc:
//!             print(f"{url} failed: {exc}")
//!         else:
//!             print(f"{url}: {len(page)} bytes")
//!     sizes = list(pool.map(lambda u: len(fetch(u)), GOOD_URLS))   # in input order
//! ```
//! concur: `pool.submit(..)` returns a `Future`; `as_completed(&futures, timeout)` yields
//! them as they finish; `f.result()` is `Ok(value)` or the `TaskError` that says why there
//! is none (a panic in `fetch` would arrive there, with its message). `fetch` returns a
//! `Result` of its own, so a failed download is a value at its place: never lost.
//!
//! There is no network here: each "download" sleeps for its own time and returns a page,
//! and one host does not exist. The five downloads overlap, so the whole batch takes about
//! as long as the slowest one, not the sum.
//!
//! Run: `cargo run --release -p concur --example page_downloads`

use concur::futures::{Executor, MapOptions, ThreadPoolExecutor, as_completed};
use std::fmt;
use std::time::{Duration, Instant};

/// The pages, and how long each simulated download takes.
const PAGES: [(&str, u64); 5] = [
    ("https://news.example/", 240),
    ("https://weather.example/today", 90),
    ("https://no-such-host.example/", 40),
    ("https://docs.example/guide", 320),
    ("https://shop.example/cart", 150),
];
const MISSING: &str = "https://no-such-host.example/";

/// Why a download failed (Python's `URLError`). `Clone`, so every holder of the
/// future can read it with `result()`.
#[derive(Clone, Debug, PartialEq)]
struct FetchError {
    url: String,
    reason: &'static str,
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot fetch {}: {}", self.url, self.reason)
    }
}

impl std::error::Error for FetchError {}

/// The size of the page at `url` (made up, but fixed, so it can be checked).
fn page_size(url: &str) -> usize {
    4096 + url.len() * 97
}

/// A simulated download: sleeps for the page's delay, then returns its bytes.
fn fetch(url: &str) -> Result<Vec<u8>, FetchError> {
    let delay = PAGES
        .iter()
        .find(|(u, _)| *u == url)
        .map_or(10, |&(_, ms)| ms);
    std::thread::sleep(Duration::from_millis(delay));
    if url == MISSING {
        return Err(FetchError {
            url: url.to_owned(),
            reason: "name does not resolve",
        });
    }
    Ok(vec![b'x'; page_size(url)])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(5)
        .thread_name_prefix("fetch")
        .build();

    let start = Instant::now();
    let futures = PAGES
        .iter()
        .map(|&(url, _)| pool.submit(move || fetch(url)))
        .collect::<Result<Vec<_>, _>>()?;

    // (index into PAGES, byte count or the download's error), in completion order.
    let mut finished = Vec::new();
    // A bound on the whole wait: if something went wrong, the iterator yields a
    // "k (of n) futures unfinished" timeout error and `?` fails loudly; it never hangs.
    for done in as_completed(&futures, Some(Duration::from_secs(10))) {
        let f = done?;
        // Python's `url_of[fut]`: handles compare equal when they are the same future.
        let i = futures
            .iter()
            .position(|g| g == f)
            .expect("as_completed yields the futures it was given");
        let url = PAGES[i].0;
        let at = start.elapsed().as_millis();
        match f.result() {
            Ok(Ok(page)) => {
                println!("{at:>4} ms  {url:<32} {:>6} bytes", page.len());
                finished.push((i, Ok(page.len())));
            }
            Ok(Err(e)) => {
                println!("{at:>4} ms  {url:<32} failed: {e}");
                finished.push((i, Err(e)));
            }
            // The task itself failed (it panicked, or was cancelled): say so, never drop it.
            Err(e) => return Err(format!("the task for {url} failed: {e}").into()),
        }
    }
    let elapsed = start.elapsed();

    // Every page reported exactly once; the missing host's error is at its own place.
    let mut indices: Vec<usize> = finished.iter().map(|(i, _)| *i).collect();
    indices.sort_unstable();
    assert_eq!(indices, (0..PAGES.len()).collect::<Vec<_>>());
    for (i, outcome) in &finished {
        let url = PAGES[*i].0;
        if url == MISSING {
            let e = outcome
                .as_ref()
                .expect_err("the missing host cannot be fetched");
            assert_eq!(e.url, MISSING, "the error names its own url");
        } else {
            assert_eq!(outcome.as_ref().ok(), Some(&page_size(url)), "{url}");
        }
    }

    let slowest = PAGES.iter().map(|p| p.1).max().unwrap_or(0);
    let sum: u64 = PAGES.iter().map(|p| p.1).sum();
    println!(
        "{} downloads in {} ms: about the slowest alone ({slowest} ms), not the sum ({sum} ms)",
        PAGES.len(),
        elapsed.as_millis()
    );

    // `map` is the ordered form: results come back in input order, whatever finishes first.
    let good: Vec<&'static str> = PAGES
        .iter()
        .map(|p| p.0)
        .filter(|u| *u != MISSING)
        .collect();
    let sizes: Vec<usize> = pool
        .map(
            |u: &'static str| fetch(u).map(|page| page.len()),
            good.clone(),
            MapOptions::new().timeout(Duration::from_secs(10)),
        )?
        .collect::<Result<Vec<_>, _>>()? // a task that failed (panic, timeout)
        .into_iter()
        .collect::<Result<_, _>>()?; // a download that failed
    println!("map, in input order: {sizes:?}");
    assert_eq!(sizes, good.iter().map(|u| page_size(u)).collect::<Vec<_>>());

    Ok(()) // dropping the pool shuts it down and waits, like leaving Python's `with`
}
