//! `SimpleQueue<T>`: Python's `multiprocessing.SimpleQueue`.

use super::DEFAULT_CAPACITY;
use super::error::{GetError, GetTimeoutError, PutError, TryGetError};
use super::fifo::Queue;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::io;
use std::time::{Duration, Instant};

/// A simplified process queue: Python's `multiprocessing.SimpleQueue` (`put`, `get`,
/// `empty`), with the same shared-memory ring as [`Queue`] and no item limit beyond
/// [`DEFAULT_MAXSIZE`](super::DEFAULT_MAXSIZE) and the ring's
/// [`DEFAULT_CAPACITY`](super::DEFAULT_CAPACITY) bytes (`put` waits while they are
/// exhausted).
///
/// Cloneable, serializable (a [`Process`](crate::Process) argument), inherited by
/// forked children. Getting comes in four forms: `get`, `try_get`, `get_timeout`,
/// `get_deadline`.
///
/// # Examples
///
/// ```
/// use concur::process::{Process, SimpleQueue};
///
/// let q = SimpleQueue::<u64>::new()?;
/// let child = Process::spawn(|q: SimpleQueue<u64>| { for i in 0..3 { q.put(i).unwrap(); } }, q.clone()).unwrap();
/// let got: Vec<u64> = (0..3).map(|_| q.get().unwrap()).collect();
/// assert_eq!(got, [0, 1, 2]);
/// child.join().unwrap();
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct SimpleQueue<T> {
    inner: Queue<T>,
}

impl<T> Clone for SimpleQueue<T> {
    fn clone(&self) -> Self {
        SimpleQueue {
            inner: self.inner.clone(),
        }
    }
}

impl<T> fmt::Debug for SimpleQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimpleQueue")
            .field("qsize", &self.inner.qsize())
            .finish()
    }
}

impl<T: Serialize + DeserializeOwned> SimpleQueue<T> {
    /// Creates an empty queue. Never blocks.
    ///
    /// # Errors
    /// The OS error if the shared memory cannot be created or mapped.
    ///
    /// ```
    /// let q = concur::process::SimpleQueue::<u8>::new()?;
    /// assert!(q.empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> io::Result<Self> {
        Queue::create(0, DEFAULT_CAPACITY, false).map(|inner| SimpleQueue { inner })
    }

    /// Puts `item`, blocking while the ring is full.
    ///
    /// # Errors
    /// [`PutError::ShutDown`] after [`shutdown`](SimpleQueue::shutdown);
    /// [`PutError::Rejected`] as for [`Queue::put`].
    ///
    /// ```
    /// let q = concur::process::SimpleQueue::new()?;
    /// q.put("x".to_string()).unwrap();
    /// assert_eq!(q.get().unwrap(), "x");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.inner.put(item)
    }

    /// Takes the oldest item, blocking while the queue is empty.
    ///
    /// # Errors
    /// As for [`Queue::get`].
    ///
    /// ```
    /// let q = concur::process::SimpleQueue::new()?;
    /// q.put(1u8).unwrap();
    /// assert_eq!(q.get().unwrap(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get(&self) -> Result<T, GetError> {
        self.inner.get()
    }

    /// Takes the oldest item if there is one now. Never blocks.
    ///
    /// # Errors
    /// As for [`Queue::try_get`].
    ///
    /// ```
    /// let q = concur::process::SimpleQueue::<u8>::new()?;
    /// assert!(q.try_get().unwrap_err().is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_get(&self) -> Result<T, TryGetError> {
        self.inner.try_get()
    }

    /// Takes the oldest item, blocking at most `timeout`.
    ///
    /// # Errors
    /// As for [`Queue::get_timeout`].
    ///
    /// ```
    /// let q = concur::process::SimpleQueue::<u8>::new()?;
    /// assert!(q.get_timeout(std::time::Duration::from_millis(1)).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        self.inner.get_timeout(timeout)
    }

    /// Takes the oldest item, blocking until `deadline` at the latest.
    ///
    /// # Errors
    /// As for [`Queue::get_deadline`].
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let q = concur::process::SimpleQueue::new()?;
    /// q.put(2u8).unwrap();
    /// assert_eq!(q.get_deadline(Instant::now() + Duration::from_secs(1)).unwrap(), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_deadline(&self, deadline: Instant) -> Result<T, GetTimeoutError> {
        self.inner.get_deadline(deadline)
    }
}

impl<T> SimpleQueue<T> {
    /// Whether the queue holds no item at this instant (Python's `empty()`).
    ///
    /// ```
    /// let q = concur::process::SimpleQueue::<u8>::new()?;
    /// assert!(q.empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn empty(&self) -> bool {
        self.inner.empty()
    }

    /// The number of items in the queue at this instant (approximate while other
    /// processes use it).
    ///
    /// ```
    /// let q = concur::process::SimpleQueue::new()?;
    /// q.put(0u8).unwrap();
    /// assert_eq!(q.qsize(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn qsize(&self) -> usize {
        self.inner.qsize()
    }

    /// Shuts the queue down for every process, as [`Queue::shutdown`] (Python's
    /// `close()` only closes the calling process's end; this ends every consumer's
    /// loop once the queue is drained).
    ///
    /// ```
    /// let q = concur::process::SimpleQueue::<u8>::new()?;
    /// q.shutdown(false);
    /// assert!(q.get().unwrap_err().is_shutdown());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&self, immediate: bool) {
        self.inner.shutdown(immediate);
    }
}

impl<T> Serialize for SimpleQueue<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.inner.serialize(s)
    }
}

impl<'de, T: Serialize + DeserializeOwned> Deserialize<'de> for SimpleQueue<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Queue::deserialize(d).map(|inner| SimpleQueue { inner })
    }
}
