//! Seed: the image-download worker pool — a `Queue`, daemon worker threads,
//! `task_done` and `join`.
//!
//! Python:
//! ```python
//! q = queue.Queue()
//! def worker():
//!     while True:
//!         url = q.get()
//!         download(url)
//!         q.task_done()
//! for _ in range(5):
//!     threading.Thread(target=worker, daemon=True).start()
//! for url in urls:
//!     q.put(url)
//! q.join()
//! ```
//! There is no network here, so each "download" sleeps for a moment and yields a size.
//!
//! Run: `cargo run --release -p concur --example image_downloads`

use concur::queue::Queue;
use concur::sync::Lock;
use concur::thread;
use std::time::{Duration, Instant};

/// A simulated download: takes a few milliseconds, returns the image's size.
fn download(url: &str) -> usize {
    std::thread::sleep(Duration::from_millis(5));
    1000 + url.len() * 37
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let urls: Vec<String> = (0..100)
        .map(|i| format!("https://img.example/{i}.png"))
        .collect();
    let q: Queue<String> = Queue::bounded(64); // bounded: a slow pool pushes back on the producer
    let sizes = Lock::with_value(Vec::new());

    let start = Instant::now();
    for i in 0..5 {
        let (q, sizes) = (q.clone(), sizes.clone());
        thread::Builder::new()
            .name(format!("downloader-{i}"))
            .daemon(true) // like Python's: nobody waits for them at exit
            .spawn(move || {
                for url in q.iter() {
                    let size = download(&url);
                    sizes.acquire().push(size);
                    q.task_done().expect("one task_done per get");
                }
            })?;
    }
    for url in &urls {
        q.put(url.clone())?;
    }
    q.join(); // every url taken *and* marked done
    let elapsed = start.elapsed();

    let sizes = sizes.acquire();
    assert_eq!(
        sizes.len(),
        urls.len(),
        "every image downloaded exactly once"
    );
    println!(
        "{} images, {} bytes, in {elapsed:?} with 5 threads (sequentially: ~{:?})",
        sizes.len(),
        sizes.iter().sum::<usize>(),
        Duration::from_millis(5) * urls.len() as u32
    );
    q.shutdown(false); // the workers' loops end
    Ok(())
}
