//! Process queues: [`Queue`], [`SimpleQueue`] and [`JoinableQueue`] — Python's
//! `multiprocessing.Queue`, `SimpleQueue` and `JoinableQueue` — for any serde item
//! type, many producer and many consumer processes, with the API of
//! [`concur::queue`](concur_core::queue).
//!
//! ```
//! use concur::process::{Process, Queue};
//!
//! fn produce((q, n): (Queue<u64>, u64)) {
//!     for i in 0..n {
//!         q.put(i).unwrap();
//!     }
//! }
//!
//! let q = Queue::bounded(100)?;
//! let p = Process::spawn(produce, (q.clone(), 1000)).unwrap();
//! let sum: u64 = (0..1000).map(|_| q.get().unwrap()).sum();
//! assert_eq!(sum, 999 * 1000 / 2);
//! p.join().unwrap();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! | Python | here |
//! |---|---|
//! | `Queue(maxsize)`, `SimpleQueue()`, `JoinableQueue(maxsize)` | [`Queue::new`]`(maxsize)` / [`Queue::bounded`] / [`Queue::with_capacity`], [`SimpleQueue::new`], [`JoinableQueue::new`] |
//! | `q.put(x)`, `put_nowait(x)`, `put(x, timeout=t)` | [`Queue::put`], [`Queue::try_put`], [`Queue::put_timeout`] / [`Queue::put_deadline`] |
//! | `q.get()`, `get_nowait()`, `get(timeout=t)` | [`Queue::get`], [`Queue::try_get`], [`Queue::get_timeout`] / [`Queue::get_deadline`] |
//! | `queue.Full`, `queue.Empty` | the `Full` and `Empty` variants ([`TryPutError::Full`] hands the item back) |
//! | `q.qsize()`, `empty()`, `full()` | [`Queue::qsize`], [`Queue::empty`], [`Queue::full`] |
//! | `q.task_done()`, `q.join()` | [`JoinableQueue::task_done`], [`JoinableQueue::join`] (+ `_timeout`, `_deadline`) |
//! | `q.close()` | [`Queue::shutdown`] (Python 3.13's `queue.Queue.shutdown`, for every process) |
//!
//! # How it works
//!
//! Not like Python (a pipe fed by a background thread): a queue is one anonymous
//! shared memory block holding a ring buffer of variable-length postcard-encoded
//! records, with a robust process-shared mutex for the producers and another for the
//! consumers, and futex-based waiting that makes a system call only when a peer
//! sleeps. One producer and one consumer never contend for a lock. Details in the
//! `ring` module's source.
//!
//! A queue is bounded twice: by items ([`Queue::maxsize`]; `0` means
//! [`DEFAULT_MAXSIZE`]) and by bytes ([`Queue::capacity_bytes`], by default
//! [`DEFAULT_CAPACITY`]; each item takes 8 bytes plus its encoding rounded up to 8).
//! It is never unbounded: its memory is one fixed block, whose pages the kernel
//! allocates as the ring first reaches them and frees when the last handle in any
//! process is gone.
//!
//! # Performance
//!
//! One producer process and one consumer process move several million small items
//! per second (`benches/queue.rs`). Large items cost their encoding: serde encodes a
//! `Vec<u8>` element by element, several times slower than copying it; a type that
//! serializes as one byte string (`serialize_bytes`, as the `serde_bytes` crate
//! offers) moves at memory speed. An item larger than 256 bytes encoded is serialized
//! twice: once into a counter that stores nothing and stops past the queue's limit,
//! then into a buffer of exactly its size (no regrowth).
//!
//! # What cannot be queued
//!
//! Puts hand the item back in a `Rejected` error ([`Rejected`]) when it can never go
//! through, however long one waits:
//! - it encodes to more than [`Queue::max_item_size`] bytes (the ring's size less 8;
//!   make a larger ring with [`Queue::with_capacity`]). This is found out while
//!   encoding, as the output passes the limit, without encoding the rest or allocating
//!   for it: a 2 GiB item is refused by the default 8 MiB ring at the cost of 8 MiB of
//!   serialization (`tests/queue_oversize.rs`);
//! - it holds file descriptors — a [`Connection`](crate::Connection),
//!   [`SharedMemory`](crate::SharedMemory), a process-shared lock, another queue:
//!   those need the kernel to pass the descriptor (`SCM_RIGHTS`), which a ring in
//!   shared memory cannot do. Send them over a `Connection` or as a
//!   [`Process`](crate::Process) argument;
//! - its `Serialize` fails.
//!
//! # When a process dies using the queue
//!
//! - Dying while *putting*: a record becomes visible only when complete, so a
//!   half-written item is never delivered; it is lost, and the next putter takes over
//!   the lock (robust mutex) and reuses its space.
//! - Dying while *getting*: before the item is taken, it stays in the queue for the
//!   next getter; after, it is lost with the process (as in Python).
//! - Dying while *waiting*: harmless (later wakers make one needless wake-up call).
//! - Between taking an item and calling [`JoinableQueue::task_done`]: that task is
//!   never done, and [`JoinableQueue::join`] waits for it (use `join_timeout`).
//! - In the few instructions that publish a put or a get, the item counts (`qsize`,
//!   `task_done`'s check) may be off by one until the next putter or getter repairs
//!   them from a mark the dead one left.
//!
//! # Type safety
//!
//! A queue handle received by another process checks that the block holds a queue
//! (and, for `JoinableQueue`, a joinable one) of the same item type, by a
//! fingerprint of the type's name and size; if not, deserializing the handle fails.
//! A record that still fails to decode is consumed and reported as a `Decode` error.

mod error;
mod fifo;
mod joinable;
mod ring;
mod simple;

pub use error::{
    DecodeError, GetError, GetTimeoutError, PutError, PutTimeoutError, Rejected, TaskDoneError,
    TryGetError, TryPutError,
};
pub use fifo::Queue;
pub use joinable::JoinableQueue;
pub use simple::SimpleQueue;

/// The item limit of a queue made with `maxsize == 0` (Python's "infinite", which
/// is its semaphore's limit there too): 2²⁰ items.
///
/// ```
/// assert_eq!(concur::process::queue::DEFAULT_MAXSIZE, 1 << 20);
/// ```
pub const DEFAULT_MAXSIZE: usize = 1 << 20;

/// The size of a queue's ring of encoded records unless chosen with
/// [`Queue::with_capacity`]: 8 MiB. It also limits one item's encoded size.
///
/// ```
/// assert_eq!(concur::process::queue::DEFAULT_CAPACITY, 8 << 20);
/// ```
pub const DEFAULT_CAPACITY: usize = 8 << 20;
