//! Python's `queue` module: FIFO, LIFO, priority and simple queues with task tracking
//! and shutdown, for many producers and many consumers.
//!
//! Every queue is a cheaply cloneable handle (clone it into each thread, as a Python
//! queue is passed by reference). [`Queue::bounded`] is a lock-free ring buffer that
//! keeps pace with `crossbeam-channel` while counting tasks for [`Queue::join`].
//!
//! ```
//! use concur::queue::Queue;
//!
//! let q = Queue::bounded(64);
//! let worker = std::thread::spawn({
//!     let q = q.clone();
//!     move || {
//!         let mut seen = 0;
//!         for _url in &q {
//!             seen += 1; // download(&url)
//!             q.task_done().unwrap();
//!         }
//!         seen
//!     }
//! });
//! for url in ["a", "b", "c"] {
//!     q.put(url).unwrap();
//! }
//! q.join(); // all three processed
//! q.shutdown(false); // the worker's loop ends
//! assert_eq!(worker.join().unwrap(), 3);
//! ```
//!
//! # Python → concur
//!
//! | Python | concur |
//! |---|---|
//! | `Queue(maxsize)`, `LifoQueue`, `PriorityQueue`, `SimpleQueue()` | [`Queue::new`]`(maxsize)` (or [`Queue::bounded`] / [`Queue::unbounded`]), [`LifoQueue`], [`PriorityQueue`], [`SimpleQueue::new`] |
//! | `q.put(item)` | [`Queue::put`] (blocks while full) |
//! | `q.put_nowait(item)`, `put(item, block=False)` | [`Queue::try_put`] → [`TryPutError::Full`]`(item)` |
//! | `q.put(item, timeout=t)` | [`Queue::put_timeout`]`(item, t)` / [`Queue::put_deadline`] → [`PutTimeoutError::Full`]`(item)` |
//! | `q.get()` | [`Queue::get`] (blocks while empty) |
//! | `q.get_nowait()`, `get(block=False)` | [`Queue::try_get`] → [`TryGetError::Empty`] |
//! | `q.get(timeout=t)` | [`Queue::get_timeout`]`(t)` / [`Queue::get_deadline`] → [`GetTimeoutError::Empty`] |
//! | `q.qsize()`, `empty()`, `full()`, `maxsize` | [`Queue::qsize`], [`Queue::empty`], [`Queue::full`], [`Queue::maxsize`] |
//! | `q.task_done()` (`ValueError` if too many) | [`Queue::task_done`] → [`TaskDoneError`] |
//! | `q.join()` | [`Queue::join`], [`Queue::join_timeout`], [`Queue::join_deadline`] |
//! | `q.shutdown(immediate=False)`, `q.is_shutdown` | [`Queue::shutdown`]`(immediate)`, [`Queue::is_shutdown`] |
//! | `queue.ShutDown` | [`ShutDown`] (and the `ShutDown` variants, which hand the item back) |
//! | `while True: item = q.get()` | `for item in &q` / [`Queue::iter`] (ends at shutdown), [`Queue::try_iter`] |
//!
//! # Shutdown (Python 3.13)
//!
//! After [`Queue::shutdown`], `put` fails with `ShutDown`; `get` drains what is left,
//! then fails with `ShutDown`; blocked getters and putters wake. `shutdown(true)`
//! (immediate) drops the queued items and counts each as done, while items already
//! taken still need their `task_done` before `join` returns.

mod chan;
mod common;
mod error;
mod fifo;
mod flavors;
mod iter;
mod lifo;
mod priority;
mod simple;

pub use error::{
    GetTimeoutError, PutTimeoutError, ShutDown, TaskDoneError, TryGetError, TryPutError,
};
pub use fifo::Queue;
pub use iter::{Iter, TryIter};
pub use lifo::LifoQueue;
pub use priority::PriorityQueue;
pub use simple::SimpleQueue;
