//! # concur
//!
//! Python's concurrency stack — `threading`, `queue`, `concurrent.futures`,
//! `multiprocessing` — rebuilt in Rust: the names and semantics you know from Python,
//! with Rust's guarantees and none of Python's limits (no GIL, no lost errors, no
//! silent deadlocks).
//!
//! This crate is the umbrella you depend on; it re-exports the tiers:
//!
//! | module | Python | what is in it |
//! |---|---|---|
//! | [`thread`] | `threading.Thread`, `current_thread`, `Timer`, `local`, `excepthook` | threads whose `join` returns the closure's value or its panic |
//! | [`sync`] | `threading.Lock`, `RLock`, `Condition`, `Semaphore`, `BoundedSemaphore`, `Event`, `Barrier` | cloneable handles, four blocking forms |
//! | [`queue`] | `queue.Queue`, `LifoQueue`, `PriorityQueue`, `SimpleQueue` | bounded or unbounded, task tracking (`task_done`/`join`), `shutdown` as in 3.13 |
//! | [`futures`] | `concurrent.futures`: `Future`, `ThreadPoolExecutor`, `as_completed`, `wait`; `multiprocessing.pool.ThreadPool`; `asyncio.to_thread` | one `Future` type (also a `std::future::Future`), the `Executor` trait, nested waits that never deadlock the pool |
//! | [`deadlock`] | — | lock-order inversion and wait-for cycle detection (`CONCUR_DEADLOCK`) |
//! | [`process`] (feature `process`, on by default; Linux) | `multiprocessing`: `Process` (spawn, fork, forkserver), `Pipe`, `Queue`, `SimpleQueue`, `JoinableQueue`, `Value`, `Array`, `shared_memory`, process-shared locks | children bound to their parent's life, robust locks that report a dead owner |
//! | [`process::manager`] (feature `manager`, on by default; needs `process`) | `multiprocessing.Manager`: shared `dict`, `list`, `Namespace`, `Value`, queues and locks in a server process | typed proxies, HMAC-authenticated, a dead client's locks released |
//!
//! | [`process`]: [`ProcessPool`](process::ProcessPool), [`ProcessPoolExecutor`](process::ProcessPoolExecutor) | `multiprocessing.Pool`, `concurrent.futures.ProcessPoolExecutor` | the same `Executor` trait and `Future` as the thread pools; a worker that dies fails its task with the cause and is replaced |
//! | `cluster` (feature `cluster`, off by default) | Celery / RQ / Dramatiq, and `multiprocessing`'s objects across machines | `RedisExecutor` and `Worker` on Redis Streams: the same `Executor` and `Future` across machines; cluster `Lock` (fencing tokens), `Semaphore`, `Event`, `Barrier`, `Queue`, `Dict` |
//!
//! Without the default features, `features = ["process"]` gives the process tier
//! without the manager (and without its HMAC and ordered-map dependencies); `features
//! = ["cluster"]` adds the cluster tier (it brings the `redis` crate). Items that need a
//! feature say so in these docs.
//!
//! ## Hello, threads
//!
//! ```
//! use concur::{sync::Lock, thread};
//!
//! let total = Lock::with_value(0u64);
//! let workers: Vec<_> = (0..4)
//!     .map(|i| {
//!         let total = total.clone(); // every clone is a handle to the same lock
//!         thread::Builder::new()
//!             .name(format!("worker-{i}"))
//!             .spawn(move || *total.acquire() += i)
//!             .expect("spawn")
//!     })
//!     .collect();
//! for w in workers {
//!     w.join().expect("no worker panicked");
//! }
//! assert_eq!(*total.acquire(), 0 + 1 + 2 + 3);
//! ```
//!
//! ## A worker pool fed by a queue
//!
//! ```
//! use concur::{queue::Queue, thread};
//!
//! let q = Queue::bounded(64); // a full queue makes `put` wait: bounded memory
//! let workers: Vec<_> = (0..3)
//!     .map(|_| {
//!         let q = q.clone();
//!         thread::spawn(move || {
//!             let mut n = 0;
//!             for item in &q {          // ends when the queue is shut down
//!                 n += item;
//!                 q.task_done().unwrap();
//!             }
//!             n
//!         })
//!     })
//!     .collect();
//! for i in 1..=100 {
//!     q.put(i).unwrap();
//! }
//! q.join();                            // every item taken and marked done
//! q.shutdown(false);
//! let total: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
//! assert_eq!(total, 5050);
//! ```
//!
//! ## Blocking calls
//!
//! Every blocking operation comes in four forms: `op` (wait as long as it takes),
//! `try_op` (never wait), `op_timeout(Duration)` and `op_deadline(Instant)`. Python's
//! `acquire(blocking=False)` is `try_acquire()`, `acquire(timeout=0.5)` is
//! `acquire_timeout(Duration::from_millis(500))`.
//!
//! ## Errors are values
//!
//! A panic in a thread is caught at the thread's boundary and returned by `join`
//! (message and location), and also reported once through the excepthook
//! ([`thread::set_excepthook`]). Joining the current thread fails at once instead of
//! hanging; releasing an unlocked lock or over-releasing a `BoundedSemaphore` returns a
//! typed [`sync::ReleaseError`].
//!
//! ## Platform support
//!
//! The thread tier is portable Rust (std threads, `parking_lot_core` parking). The
//! process and cluster tiers target Linux (futexes, `memfd`, `pidfd`, `SO_PEERCRED`,
//! robust mutexes); the cluster tier needs a Redis 7 server.

// Examples in the docs are held to the same bar as the code: a warning fails them.
#![doc(test(attr(deny(warnings))))]
// docs.rs (and `RUSTDOCFLAGS="--cfg docsrs" cargo +nightly doc`) marks what needs a
// feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc(inline)]
pub use concur_core::{deadlock, futures, queue, sync, thread, time};

/// The guide: the seed programs in Python beside concur (`crates/concur/src/guide.md`; every Rust
/// block is a doctest).
#[cfg(all(feature = "manager", target_os = "linux"))]
#[doc = include_str!("guide.md")]
pub mod guide {}

// The README's Rust blocks are doctests too (the cluster one needs its feature).
#[cfg(all(doctest, feature = "cluster"))]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

/// The process tier (Python's `multiprocessing`), behind the default feature `process`.
#[cfg(feature = "process")]
#[cfg_attr(docsrs, doc(cfg(feature = "process")))]
#[doc(inline)]
pub use concur_process as process;

/// The cluster tier (`RedisExecutor`, `Worker`: the same `Executor` and `Future` across
/// machines, on Redis Streams), behind the feature `cluster` (off by default).
#[cfg(feature = "cluster")]
#[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
#[doc(inline)]
pub use concur_cluster as cluster;
