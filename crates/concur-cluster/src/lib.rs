//! # concur-cluster: the same `Executor` and `Future` across many machines
//!
//! When one machine is not enough, the work written for
//! [`ThreadPoolExecutor`](concur_core::futures::ThreadPoolExecutor) or
//! [`ProcessPoolExecutor`](concur_process::ProcessPoolExecutor) runs on many by
//! changing one line, the executor, to a [`RedisExecutor`]. Workers on any machine
//! take the tasks and run them on a local process pool. Redis Streams with consumer
//! groups (the engine behind Celery, RQ, Dramatiq and Sidekiq) is the broker:
//! nothing here re-implements one.
//!
//! ## Running a worker: one call in your own binary
//!
//! A worker runs *your* program's functions, so it is your program, started in worker
//! mode on each machine (the same build as the program that submits):
//!
//! ```no_run
//! use concur_cluster::{RedisExecutor, Worker};
//! use concur_core::futures::Executor;
//!
//! fn render(frame: u32) -> Vec<u8> { vec![frame as u8; 4] }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let url = "redis://10.0.0.5:6379/0";
//!     if std::env::args().nth(1).as_deref() == Some("worker") {
//!         // On every machine: `./myprog worker`. Runs until SIGTERM, then drains.
//!         Worker::connect(url, "render")?.run()?;
//!         return Ok(());
//!     }
//!     let ex = RedisExecutor::connect(url, "render")?;
//!     let frames: Vec<_> = (0..100).map(|i| ex.call(render, i)).collect::<Result<_, _>>()?;
//!     for f in frames {
//!         let bytes = f.result()?;     // value, panic, deadline, lost worker: typed
//!         assert_eq!(bytes.len(), 4);
//!     }
//!     Ok(())
//! }
//! ```
//!
//! Copy the binary to the other machines (or build the same commit there: a worker
//! checks the build fingerprint, a hash of its executable, and refuses tasks of
//! another build with [`is_build_mismatch`](concur_core::futures::TaskError::is_build_mismatch)
//! instead of running a function that may have changed). The `concur worker --redis
//! URL` command of the CLI is such a binary for its built-in demo tasks.
//!
//! ## What it promises
//!
//! - **One outcome per future**, typed: the value; the task's panic (message and
//!   location); cancelled; deadline exceeded; the worker process died (signal, exit
//!   status, out of memory); the worker was lost at every attempt (dead-lettered, with
//!   the last cause); another build; a malformed entry.
//! - **Nothing lost, nothing run twice on a healthy worker.** Entries are never
//!   popped: they stay in the consumer group's pending list until settled. A worker's
//!   heartbeat renews the lease of every entry it holds (a task cannot block it), so a
//!   long task on a live worker is never taken over; the entries of a worker that died
//!   or was cut off are taken back by a peer once the lease lapsed, and retried with
//!   backoff up to the task's attempts, then dead-lettered. The first settlement of an
//!   entry (its `XACK`, inside the same script that sends the result) wins; a late one
//!   is dropped and counted.
//! - **Deadlines travel with the task**: expired work is not started, running work
//!   past its deadline is stopped on its worker (its process killed and replaced).
//! - **Backpressure, not trimming**: at most `max_in_flight` tasks per executor; the
//!   task stream is never trimmed with `MAXLEN` (that would drop work).
//! - **Redis restarts** (with AOF): callers and workers reconnect with backoff and
//!   re-create the consumer group if it is missing; results expire after their TTL and
//!   result streams are trimmed by age.
//! - **No jumps**: a task entry names its function; a worker looks the name up in a
//!   table built into its own binary and never calls an address taken from an entry.
//!   Entries that are malformed, oversized or undecodable are dead-lettered with a
//!   cause; they never crash or stall a worker.
//!
//! ## Python → concur
//!
//! | Python (Celery / RQ / Dramatiq) | here |
//! |---|---|
//! | `app = Celery(broker=url)`, `@app.task` | [`RedisExecutor::connect`]`(url, pool)`; any non-capturing `fn` or closure with serde arguments |
//! | `task.delay(x)`, `AsyncResult.get(timeout)` | `ex.call(f, x)?` → [`Future`](concur_core::futures::Future), `result_timeout` |
//! | `celery worker --concurrency=N` | [`Worker::builder`]`(url, pool).slots(N).connect()?.run()` |
//! | `acks_late`, `visibility_timeout` | always: leases renewed by a heartbeat, reclaimed after the lease |
//! | `max_retries`, `retry_backoff` | [`RedisExecutorBuilder::max_attempts`], [`RedisExecutorBuilder::retry_backoff`] |
//! | `expires`, `time_limit` | [`RedisExecutorBuilder::task_timeout`], [`RedisExecutor::call_with_timeout`] |
//! | `result_expires` | [`RedisExecutorBuilder::result_ttl`] |
//! | `AsyncResult.revoke(terminate=True)` | `future.cancel()` |
//!
//! ## Feature flags
//!
//! - `tls`: `rediss://` URLs (rustls with the ring provider).
//!
//! ## Testing
//!
//! [`RedisServer`] starts a private `redis-server` on a free loopback port (Debian's
//! package `redis-server`; `CONCUR_REDIS_SERVER` names another binary) and removes it
//! and its files on drop. Workers can run in child processes of the test binary
//! ([`concur_process::Process`] with a function that calls [`Worker::run`]).

mod conn;
mod envelope;
mod error;
mod executor;
mod keys;
mod objects;
mod scripts;
mod server;
mod task;
mod worker;

pub use error::ClusterError;
pub use executor::{RedisExecutor, RedisExecutorBuilder};
pub use objects::{
    AckError, Barrier, BarrierBuilder, BoundedSemaphore, BoundedSemaphoreBuilder, Dict, Event,
    GetError, Lock, LockBuilder, LockGuard, PutError, Queue, QueueBuilder, Semaphore,
    SemaphoreBuilder, SemaphoreGuard,
};
pub use server::{RedisServer, RedisServerBuilder};
pub use worker::{LocalExecutor, StatsHandle, StopHandle, Worker, WorkerBuilder, WorkerStats};

/// Makes `f` runnable by this binary's workers, as `f(args)` and on map chunks,
/// without submitting it: for a binary that only serves (a worker built from a program
/// that submits `f` elsewhere needs nothing: submitting registers). Returns the name
/// tasks of `f` travel under.
///
/// ```
/// fn resize(px: u32) -> u32 { px / 2 }
/// let name = concur_cluster::register(resize);
/// assert!(name.ends_with("resize"));
/// ```
pub fn register<F, A, T>(f: F) -> String
where
    F: Fn(A) -> T + Copy + 'static,
    A: serde::de::DeserializeOwned + 'static,
    T: serde::Serialize + 'static,
{
    let _ = f;
    task::register::<F, A, T>();
    concur_process::exec::fn_name::<F>()
}

/// This binary's build fingerprint (what its task entries carry, and what its workers
/// accept): a hash of its executable file.
///
/// ```
/// assert_eq!(concur_cluster::build_fingerprint().len(), 32);
/// ```
pub fn build_fingerprint() -> &'static str {
    task::fingerprint()
}

/// The names of the tasks this binary's workers can run (`call …`, `call0 …`,
/// `map …`), sorted.
///
/// ```
/// fn id(x: u8) -> u8 { x }
/// concur_cluster::register(id);
/// assert!(concur_cluster::known_tasks().iter().any(|k| k.ends_with("::id")));
/// ```
pub fn known_tasks() -> Vec<String> {
    task::known()
}
