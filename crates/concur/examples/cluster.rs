//! Seed: Celery's `task.delay(x)` + `AsyncResult.get()`, the page-download program's
//! `as_completed`, and `Pool.map` — now with the work done by worker processes
//! anywhere, through one Redis.
//!
//! Python (Celery):
//! ```python
//! app = Celery("primes", broker=URL, backend=URL)
//!
//! @app.task
//! def count_primes(segment): ...
//!
//! results = [count_primes.delay(s) for s in segments]   # workers: `celery worker`
//! print(sum(r.get() for r in results))
//! ```
//! concur (`concur::cluster`, feature `cluster`): the same `Executor` trait and `Future`
//! as the thread and process pools, so the program is the process-pool example with
//! another executor; the workers are this very binary in worker mode. Here a private
//! `redis-server` and two worker processes are started by the example itself; on real
//! machines each would run `./cluster worker redis://10.0.0.5:6379/0` (or your own
//! binary calling `Worker::connect(url, pool)?.run()`).
//! ```rust,ignore
//! let ex = RedisExecutor::connect(url, "primes")?;
//! let futures: Vec<_> = segments.iter().map(|&s| ex.call(count_primes, s)).collect::<Result<_, _>>()?;
//! for f in as_completed(&futures, None) { let n = f?.result()?; }
//! ```
//!
//! Run: `cargo run --release -p concur --features cluster --example cluster`
//! (needs `redis-server`: `sudo apt-get install redis-server`).

use concur::cluster::{RedisExecutor, RedisServer, Worker};
use concur::futures::{Executor, MapOptions, as_completed};
use concur::process::{Process, StartMethod};
use std::time::{Duration, Instant};

/// How many primes are in `lo..hi` (trial division: CPU-bound on purpose).
fn count_primes((lo, hi): (u64, u64)) -> u64 {
    (lo.max(2)..hi)
        .filter(|&n| (2..).take_while(|d| d * d <= n).all(|d| n % d != 0))
        .count() as u64
}

fn slow_square(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(200));
    x * x
}

/// A worker: takes the pool's tasks and runs them on a local process pool until it
/// is told to stop (SIGTERM), then drains.
fn serve((url, pool): (String, String)) -> u64 {
    let w = Worker::builder(&url, &pool)
        .slots(1)
        .connect()
        .expect("connect");
    w.run().expect("serve").completed
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("worker") {
        // `./cluster worker redis://host:port/0` on another machine.
        let url = args.next().ok_or("usage: cluster worker REDIS_URL")?;
        let stats = Worker::connect(&url, "primes")?.run()?;
        println!("worker stopped after {} tasks", stats.completed);
        return Ok(());
    }

    let redis = RedisServer::start()?;
    let url = redis.url();
    let workers: Vec<Process<u64>> = (0..2)
        .map(|_| {
            Process::builder()
                .start_method(StartMethod::Spawn)
                .spawn(serve, (url.clone(), "primes".to_owned()))
        })
        .collect::<Result<_, _>>()?;
    let ex = RedisExecutor::connect(&url, "primes")?;

    // `delay` + `get`, as in Celery: in completion order through `as_completed`.
    let segments: Vec<(u64, u64)> = (0..8).map(|i| (i * 250_000, (i + 1) * 250_000)).collect();
    let start = Instant::now();
    let futures = segments
        .iter()
        .map(|&s| ex.call(count_primes, s))
        .collect::<Result<Vec<_>, _>>()?;
    let mut total = 0;
    for f in as_completed(&futures, Some(Duration::from_secs(120))) {
        total += f?.result()?;
    }
    println!(
        "{total} primes below 2,000,000 on 2 cluster workers in {:?}",
        start.elapsed()
    );
    assert_eq!(total, 148_933);

    // `Pool.map`, lazily, in chunks: one task entry per chunk.
    let squares: u64 = ex
        .map(
            |x: u64| x * x,
            0..100_000u64,
            MapOptions::new().chunksize(5_000),
        )?
        .sum::<Result<u64, _>>()?;
    println!("sum of 100,000 squares through the cluster: {squares}");

    // A deadline travels with the task: past it, the task is stopped on its worker.
    let late = ex.call_with_timeout(slow_square, 3, Duration::from_millis(50))?;
    let e = late.result().unwrap_err();
    println!(
        "a task past its deadline: {e} (deadline exceeded: {})",
        e.is_deadline_exceeded()
    );
    assert!(e.is_deadline_exceeded());

    // A panic comes back as a value, with its message and location.
    let e = ex
        .call(|x: u64| -> u64 { panic!("refused {x}") }, 7)?
        .result()
        .unwrap_err();
    println!("a task that panicked: {e}");
    assert_eq!(e.panic_message(), Some("refused 7"));

    ex.shutdown(true, false)?;
    for w in &workers {
        w.terminate()?; // SIGTERM: each worker drains and returns how much it did
    }
    let done: u64 = workers.iter().map(|w| w.join().unwrap_or(0)).sum();
    println!("the 2 workers ran {done} tasks between them");
    Ok(())
}
