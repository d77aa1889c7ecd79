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
//! use concur::cluster::{RedisExecutor, Worker};
//! use concur::futures::Executor;
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
//! ## Watching a pool
//!
//! [`PoolAdmin`] shows a pool's workers (host, pid, slots, running tasks, last
//! heartbeat), its queue depth, tasks in flight, counters (retries, late completions
//! dropped, dead letters) and lists the dead letters with their causes; one can be
//! requeued. `concur cluster status --redis URL` and `concur cluster dead-letters` print
//! the same from the command line.
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
//! ## Shared objects
//!
//! The synchronization objects and containers of the thread and process tiers, on the
//! same Redis, shared by every process on every machine that names them: [`Lock`],
//! [`Semaphore`], [`BoundedSemaphore`], [`Event`], [`Barrier`], [`Queue`] and [`Dict`].
//! Code moves from threads to processes to machines by changing the constructor:
//!
//! | threads | processes | machines |
//! |---|---|---|
//! | `concur::sync::Lock::new()` | `concur::process::sync::Lock::new()?` | [`Lock::connect`]`(url, "name")?` |
//! | `Semaphore::new(n)`, `BoundedSemaphore::new(n)` | the same, `?` | [`Semaphore::connect`]`(url, "name", n)?`, [`BoundedSemaphore::connect`] |
//! | `Event::new()`, `Barrier::new(n)` | the same, `?` | [`Event::connect`]`(url, "name")?`, [`Barrier::connect`]`(url, "name", n)?` |
//! | `concur::queue::Queue::new(maxsize)` | `concur::process::queue::JoinableQueue::new(maxsize)?` | [`Queue::connect`]`(url, "name", maxsize)?` |
//! | — | `manager.dict()?` | [`Dict::connect`]`(url, "name")?` |
//!
//! Every blocking call comes in the four forms (`op`, `try_op`, `op_timeout`,
//! `op_deadline`), and every call returns `Result<`*what the thread or process tier
//! returns*`, ClusterError>`: the outer error says Redis failed (after retrying
//! through transient failures for up to 30 s), the inner value is the familiar one
//! (`lock.acquire()?` is the process tier's `AcquireResult`, `barrier.wait()?` is
//! `Result<usize, BrokenBarrierError>`). The queue's put errors hand the item back, as
//! `concur::queue`'s do, with a [`ClusterError`] as their reason. Handles are
//! cheap clones and serialize to their URL and name: pass one to a
//! [`Process`](concur_process::Process) or a cluster task as an argument. Each object's
//! keys live under `concur:obj:<kind>:{<name>}:` (the braces: one Redis Cluster slot
//! per object); names are checked like pool names (no `{`, `}` either). Waiters block
//! on the server (`BLPOP`, `XREAD BLOCK`, `XREADGROUP BLOCK`) and are woken by the
//! change they wait for; they look again after a bounded time only to survive a lost
//! wake-up.
//!
//! Where the anchors are weak, these are strict:
//!
//! - **Leases, renewed, with fencing tokens.** A lock (or a semaphore unit, or a taken
//!   queue item) is held for a lease that a thread of the holder's process renews while
//!   the guard lives (so a long critical section keeps it, whatever it does); a holder
//!   that dies, is stopped or is cut off loses it when the lease lapses, and the next
//!   acquirer of the lock is told ([`OwnerDied`](concur_process::sync::OwnerDied), as
//!   for a process-shared lock). A lease cannot be made safe by itself (Kleppmann,
//!   "How to do distributed locking", 2016): a paused holder does not know it lost the
//!   lock. So every acquisition carries a [fencing token](LockGuard::fencing_token),
//!   strictly increasing per lock (and never below the server's clock in µs, so a
//!   Redis that lost its data does not hand out old numbers again), for the protected
//!   resource to refuse stale writes. The lock is one Redis key set by a script that
//!   saw it free: leases are never overbooked (as Dask's distributed `Lock` documents
//!   its may be), and there is no Redlock quorum to be unsafe without fencing.
//! - **Nothing lost, nothing applied twice.** A queue item stays its consumer's until
//!   `task_done` and goes to another consumer if that one dies; a retried write (after
//!   a connection broke and its reply was lost) is recognised by its lease id, entry
//!   id, arrival id or write session and not applied again.
//!
//! A lock, fenced:
//!
//! ```
//! use concur::cluster::{Lock, RedisServer};
//! use concur::process::sync::OwnerDied;
//!
//! let redis = RedisServer::start()?;
//! let lock = Lock::connect(&redis.url(), "ledger")?;
//! let mut highest_seen = 0; // kept by the protected resource
//! for _ in 0..3 {
//!     let g = lock.acquire()?.unwrap_or_else(OwnerDied::into_inner);
//!     assert!(g.fencing_token() > highest_seen, "a stale holder would be refused");
//!     highest_seen = g.fencing_token();
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Semaphores (a unit held by a guard comes back with it, or with its lease):
//!
//! ```
//! use concur::cluster::{BoundedSemaphore, RedisServer, Semaphore};
//! use concur::sync::ReleaseError;
//!
//! let redis = RedisServer::start()?;
//! let gpus = Semaphore::connect(&redis.url(), "gpus", 2)?;
//! let a = gpus.acquire()?;
//! let _b = gpus.acquire()?;
//! assert!(gpus.try_acquire()?.is_none());
//! drop(a);
//! assert_eq!(gpus.value()?, 1);
//! let one = BoundedSemaphore::connect(&redis.url(), "one", 1)?;
//! assert_eq!(one.release()?, Err(ReleaseError::TooManyReleases));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! An event and a barrier:
//!
//! ```
//! use concur::cluster::{Barrier, Event, RedisServer};
//! use std::time::Duration;
//!
//! let redis = RedisServer::start()?;
//! let go = Event::connect(&redis.url(), "go")?;
//! let start = Barrier::connect(&redis.url(), "start", 2)?;
//! let (go2, start2) = (go.clone(), start.clone());
//! let t = std::thread::spawn(move || {
//!     let i = start2.wait().unwrap().unwrap();
//!     assert!(go2.wait_timeout(Duration::from_secs(10)).unwrap());
//!     i
//! });
//! let mine = start.wait()?.expect("not broken");
//! go.set()?;
//! assert_eq!(mine + t.join().unwrap(), 1); // indices 0 and 1
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A queue (`task_done` acknowledges) and a dict:
//!
//! ```
//! use concur::cluster::{Dict, Queue, RedisServer};
//! use concur::queue::TryPutError;
//!
//! let redis = RedisServer::start()?;
//! let q = Queue::<u32>::connect(&redis.url(), "jobs", 2)?;
//! q.put(1)?;
//! q.put(2)?;
//! assert!(matches!(q.try_put(3), Err(TryPutError::Full(3)))); // the item comes back
//! let totals = Dict::<String, u32>::connect(&redis.url(), "totals")?;
//! while let Ok(job) = q.try_get() {
//!     totals.update("sum".into(), |s| s.unwrap_or(0) + job)?;
//!     q.task_done()?;
//! }
//! q.join()?;
//! assert_eq!(totals.get(&"sum".into())?, Some(3));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
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
//! ([`concur::process::Process`](concur_process::Process) with a function that calls [`Worker::run`]).

mod admin;
mod conn;
mod envelope;
mod error;
mod executor;
#[doc(hidden)]
pub mod fuzzing;
mod keys;
mod objects;
mod scripts;
mod server;
mod task;
mod worker;

pub use admin::{DeadLetter, PoolAdmin, PoolStatus, WorkerInfo};
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
/// let name = concur::cluster::register(resize);
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
/// assert_eq!(concur::cluster::build_fingerprint().len(), 32);
/// ```
pub fn build_fingerprint() -> &'static str {
    task::fingerprint()
}

/// The names of the tasks this binary's workers can run (`call …`, `call0 …`,
/// `map …`), sorted.
///
/// ```
/// fn id(x: u8) -> u8 { x }
/// concur::cluster::register(id);
/// assert!(concur::cluster::known_tasks().iter().any(|k| k.ends_with("::id")));
/// ```
pub fn known_tasks() -> Vec<String> {
    task::known()
}
