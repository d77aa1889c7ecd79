//! `SimpleQueue`: Python's `queue.SimpleQueue`, unbounded FIFO without task tracking.

use super::chan::{Chan, Wait};
use super::flavors::{FifoFlavor, List};
use super::iter::TryIter;
use crate::shim::Arc;
use crate::time::deadline_after;
use std::fmt;
use std::time::{Duration, Instant};

/// An unbounded first-in, first-out queue with no task tracking and no shutdown:
/// Python's `queue.SimpleQueue`, as a cheaply cloneable handle.
///
/// `put` never blocks and never fails; `get` blocks while the queue is empty.
///
/// # Examples
///
/// ```
/// use concur::queue::SimpleQueue;
///
/// let q = SimpleQueue::new();
/// let t = std::thread::spawn({
///     let q = q.clone();
///     move || q.get() * 2
/// });
/// q.put(21);
/// assert_eq!(t.join().unwrap(), 42);
/// ```
pub struct SimpleQueue<T> {
    chan: Arc<Chan<T, FifoFlavor<T>>>,
}

impl<T> SimpleQueue<T> {
    /// Creates an empty queue (Python's `SimpleQueue()`).
    ///
    /// ```
    /// let q = concur::queue::SimpleQueue::<u8>::new();
    /// assert!(q.empty());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        SimpleQueue {
            chan: Arc::new(Chan::new(FifoFlavor::List(List::new()))),
        }
    }

    /// Puts `item`; never blocks (Python's `put` and `put_nowait`). Wakes one blocked
    /// getter, if any.
    ///
    /// ```
    /// let q = concur::queue::SimpleQueue::new();
    /// q.put(1);
    /// assert_eq!(q.qsize(), 1);
    /// ```
    pub fn put(&self, item: T) {
        if self.chan.put(item, Wait::Never).is_err() {
            // An unbounded queue that is never shut down always has room.
            unreachable!("SimpleQueue refused an item");
        }
    }

    /// Takes the oldest item, blocking while the queue is empty (Python's `get()`).
    ///
    /// ```
    /// let q = concur::queue::SimpleQueue::new();
    /// q.put("a");
    /// assert_eq!(q.get(), "a");
    /// ```
    pub fn get(&self) -> T {
        match self.chan.get(Wait::Until(None)) {
            Ok(v) => v,
            // Only a shutdown ends an unbounded wait, and a SimpleQueue has none.
            Err(_) => unreachable!("SimpleQueue get failed"),
        }
    }

    /// Takes the oldest item if there is one, never blocking (Python's `get_nowait`;
    /// `None` where Python raises `Empty`).
    ///
    /// ```
    /// let q = concur::queue::SimpleQueue::<u8>::new();
    /// assert_eq!(q.try_get(), None);
    /// ```
    pub fn try_get(&self) -> Option<T> {
        self.chan.get(Wait::Never).ok()
    }

    /// Takes the oldest item, blocking at most `timeout` (Python's
    /// `get(timeout=t)`; `None` where Python raises `Empty`). A timeout too large to
    /// represent waits forever.
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = concur::queue::SimpleQueue::<u8>::new();
    /// assert_eq!(q.get_timeout(Duration::from_millis(5)), None);
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Option<T> {
        self.chan.get(Wait::Until(deadline_after(timeout))).ok()
    }

    /// Takes the oldest item, blocking until `deadline` at most.
    ///
    /// ```
    /// use std::time::Instant;
    /// let q = concur::queue::SimpleQueue::new();
    /// q.put(1);
    /// assert_eq!(q.get_deadline(Instant::now()), Some(1));
    /// ```
    pub fn get_deadline(&self, deadline: Instant) -> Option<T> {
        self.chan.get(Wait::Until(Some(deadline))).ok()
    }

    /// The number of items queued right now (Python's `qsize()`). Never blocks.
    ///
    /// ```
    /// let q = concur::queue::SimpleQueue::new();
    /// q.put(());
    /// assert_eq!(q.qsize(), 1);
    /// ```
    pub fn qsize(&self) -> usize {
        self.chan.len()
    }

    /// True if no item is queued right now (Python's `empty()`). Never blocks.
    ///
    /// ```
    /// assert!(concur::queue::SimpleQueue::<u8>::new().empty());
    /// ```
    pub fn empty(&self) -> bool {
        self.chan.is_empty()
    }

    /// A non-blocking iterator of [`try_get`](Self::try_get)s that ends when the queue
    /// is empty.
    ///
    /// ```
    /// let q = concur::queue::SimpleQueue::new();
    /// q.put(1);
    /// q.put(2);
    /// assert_eq!(q.try_iter().collect::<Vec<_>>(), [1, 2]);
    /// ```
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { src: &*self.chan }
    }
}

impl<T> Default for SimpleQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for SimpleQueue<T> {
    /// Another handle to the same queue.
    fn clone(&self) -> Self {
        SimpleQueue {
            chan: self.chan.clone(),
        }
    }
}

impl<T> fmt::Debug for SimpleQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimpleQueue")
            .field("qsize", &self.qsize())
            .finish()
    }
}
