//! `Queue`: Python's `queue.Queue`, first in, first out.

use super::chan::{Chan, GetFail, PutFail, Wait};
use super::common::joinable_queue;
use super::flavors::{Array, FifoFlavor, List};
use super::iter::{Iter, TryIter};
use super::{GetTimeoutError, PutTimeoutError, ShutDown, TaskDoneError, TryGetError, TryPutError};
use crate::shim::Arc;
use crate::time::deadline_after;
use std::time::{Duration, Instant};

/// A first-in, first-out queue with task tracking and shutdown: Python's `queue.Queue`,
/// as a cheaply cloneable handle for many producers and many consumers.
///
/// [`Queue::bounded`] is a lock-free ring (Vyukov's bounded MPMC queue): `put` and
/// `get` touch no lock and, when nobody waits, no parking table; it keeps pace with
/// `crossbeam-channel` with [`task_done`](Queue::task_done) accounting on.
/// [`Queue::unbounded`] (or `Queue::new(0)`) is a lock-free linked list of blocks
/// (crossbeam-channel's unbounded design) with the same blocking protocol.
///
/// Blocking calls come in four forms (`put`, `try_put`, `put_timeout`,
/// `put_deadline`; the same for `get`). Every error that stands for an item not
/// queued hands it back. Items still queued when the last handle is dropped are
/// dropped with it.
///
/// # Examples
///
/// A worker pool, as in Python's documentation:
///
/// ```
/// use concur::queue::Queue;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
///
/// let q = Queue::bounded(16);
/// let total = Arc::new(AtomicU64::new(0));
/// let workers: Vec<_> = (0..3)
///     .map(|_| {
///         let (q, total) = (q.clone(), total.clone());
///         std::thread::spawn(move || {
///             for n in &q {
///                 total.fetch_add(n, Ordering::Relaxed);
///                 q.task_done().unwrap();
///             }
///         })
///     })
///     .collect();
/// for n in 1..=100u64 {
///     q.put(n).unwrap();
/// }
/// q.join(); // every item processed
/// assert_eq!(total.load(Ordering::Relaxed), 5050);
/// q.shutdown(false); // workers' loops end
/// for w in workers {
///     w.join().unwrap();
/// }
/// ```
///
/// Order is first in, first out:
///
/// ```
/// let q = concur::queue::Queue::bounded(3);
/// for i in [1, 2, 3] {
///     q.put(i).unwrap();
/// }
/// assert_eq!(q.try_iter().collect::<Vec<_>>(), [1, 2, 3]);
/// ```
pub struct Queue<T> {
    chan: Arc<Chan<T, FifoFlavor<T>>>,
}

impl<T> Queue<T> {
    fn from_cap(cap: Option<usize>) -> Self {
        let flavor = match cap {
            Some(n) => FifoFlavor::Array(Array::new(n)),
            None => FifoFlavor::List(List::new()),
        };
        Queue {
            chan: Arc::new(Chan::new(flavor)),
        }
    }
}

joinable_queue!(Queue, []);
