//! `JoinableQueue<T>`: Python's `multiprocessing.JoinableQueue`.

use super::DEFAULT_CAPACITY;
use super::error::TaskDoneError;
use super::fifo::Queue;
use crate::block::SharedMemory;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::io;
use std::ops::Deref;
use std::time::{Duration, Instant};

/// A [`Queue`] that also counts unfinished tasks across processes: Python's
/// `multiprocessing.JoinableQueue`.
///
/// Every item put counts as a task; a consumer calls
/// [`task_done`](JoinableQueue::task_done) when it has processed one; and
/// [`join`](JoinableQueue::join) blocks until every task put so far, by any process,
/// is done. All of [`Queue`]'s methods are available through `Deref` (a
/// `JoinableQueue` *is* a queue, as in Python).
///
/// If a consumer dies between taking an item and calling `task_done`, that task is
/// never done and `join` waits for it forever (use `join_timeout`), as in Python.
///
/// # Examples
///
/// ```
/// use concur::process::{JoinableQueue, Process};
///
/// let q = JoinableQueue::<u32>::new(0)?;
/// let worker = Process::spawn(|q: JoinableQueue<u32>| {
///     let mut sum = 0;
///     while let Ok(x) = q.get() {
///         sum += x;
///         q.task_done().unwrap();
///     }
///     sum
/// }, q.clone()).unwrap();
/// for x in 1..=4 {
///     q.put(x).unwrap();
/// }
/// assert!(q.join_timeout(std::time::Duration::from_secs(60)));
/// q.shutdown(false); // the worker's loop ends
/// assert_eq!(worker.join().unwrap(), 10);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct JoinableQueue<T> {
    inner: Queue<T>,
}

impl<T> Clone for JoinableQueue<T> {
    fn clone(&self) -> Self {
        JoinableQueue {
            inner: self.inner.clone(),
        }
    }
}

impl<T> fmt::Debug for JoinableQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("JoinableQueue").field(&self.inner).finish()
    }
}

impl<T> Deref for JoinableQueue<T> {
    type Target = Queue<T>;
    fn deref(&self) -> &Queue<T> {
        &self.inner
    }
}

impl<T: Serialize + DeserializeOwned> JoinableQueue<T> {
    /// Creates a queue holding at most `maxsize` items (0: the default), as
    /// [`Queue::new`]. Never blocks.
    ///
    /// # Errors
    /// The OS error if the shared memory cannot be created or mapped.
    ///
    /// ```
    /// let q = concur::process::JoinableQueue::<u8>::new(3)?;
    /// assert_eq!(q.maxsize(), 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(maxsize: usize) -> io::Result<Self> {
        Self::with_capacity(maxsize, DEFAULT_CAPACITY)
    }

    /// Creates a queue of at most `maxsize` items (0: the default) in a ring of
    /// `bytes` bytes, as [`Queue::with_capacity`].
    ///
    /// # Errors
    /// As for [`Queue::with_capacity`].
    ///
    /// ```
    /// let q = concur::process::JoinableQueue::<u8>::with_capacity(0, 1024)?;
    /// assert_eq!(q.capacity_bytes(), 1024);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_capacity(maxsize: usize, bytes: usize) -> io::Result<Self> {
        Queue::create(maxsize, bytes, true).map(|inner| JoinableQueue { inner })
    }
}

impl<T> JoinableQueue<T> {
    /// Marks one task taken from the queue as done. Never blocks.
    ///
    /// # Errors
    /// [`TaskDoneError`] if every task put so far is already done.
    ///
    /// ```
    /// let q = concur::process::JoinableQueue::new(0)?;
    /// q.put(1u8).unwrap();
    /// q.get().unwrap();
    /// assert!(q.task_done().is_ok());
    /// assert!(q.task_done().is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        if self.inner.ring.task_done() {
            Ok(())
        } else {
            Err(TaskDoneError::new())
        }
    }

    /// Blocks until every task put so far is done (Python's `join()`).
    ///
    /// ```
    /// let q = concur::process::JoinableQueue::<u8>::new(0)?;
    /// q.join(); // nothing put: returns at once
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn join(&self) {
        self.inner.ring.join(None);
    }

    /// Blocks at most `timeout` for every task to be done; true if they are. A
    /// timeout too large to represent waits forever.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let q = concur::process::JoinableQueue::new(0)?;
    /// q.put(1u8).unwrap();
    /// let start = Instant::now();
    /// assert!(!q.join_timeout(Duration::from_millis(20)));
    /// assert!(start.elapsed() >= Duration::from_millis(20));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.inner
            .ring
            .join(concur_core::time::deadline_after(timeout))
    }

    /// Blocks until `deadline` at the latest for every task to be done; true if
    /// they are.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let q = concur::process::JoinableQueue::new(0)?;
    /// q.put(1u8).unwrap();
    /// q.get().unwrap();
    /// q.task_done().unwrap();
    /// assert!(q.join_deadline(Instant::now() + Duration::from_secs(1)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn join_deadline(&self, deadline: Instant) -> bool {
        self.inner.ring.join(Some(deadline))
    }
}

impl<T> Serialize for JoinableQueue<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.inner.serialize(s)
    }
}

impl<'de, T: Serialize + DeserializeOwned> Deserialize<'de> for JoinableQueue<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mem = SharedMemory::deserialize(d)?;
        Queue::from_mem(mem, true)
            .map(|inner| JoinableQueue { inner })
            .map_err(serde::de::Error::custom)
    }
}
