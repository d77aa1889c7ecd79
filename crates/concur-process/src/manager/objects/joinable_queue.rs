//! [`JoinableQueue`]: a shared queue whose consumers mark items done and whose
//! producers can wait for that (Python's `Manager().JoinableQueue(maxsize)`).

use std::fmt;
use std::ops::Deref;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::queue::{Queue, QueueOp, Wait};
use crate::manager::Manager;
use crate::manager::client::Handle;
use crate::manager::error::ManagerError;
use crate::manager::protocol::ObjKind;

/// A [`Queue`] held by a [`Manager`]'s server that also counts unfinished items:
/// Python's `Manager().JoinableQueue(maxsize)`. Every `put` adds one; a consumer
/// calls [`task_done`](Self::task_done) once per item it got, when it has finished
/// with it; [`join`](Self::join) waits, on the server, until the count is back to
/// zero. Every [`Queue`] method is available through `Deref`.
///
/// ```
/// use concur::process::Manager;
///
/// let m = Manager::start().unwrap();
/// let q = m.joinable_queue::<u32>(0).unwrap();
/// q.put(1).unwrap();
/// assert_eq!(q.get().unwrap(), 1);
/// q.task_done().unwrap();
/// q.join().unwrap(); // all done: returns at once
/// assert!(q.task_done().unwrap_err().is_invalid_state());
/// ```
pub struct JoinableQueue<T> {
    q: Queue<T>,
}

impl<T> Clone for JoinableQueue<T> {
    fn clone(&self) -> Self {
        JoinableQueue { q: self.q.clone() }
    }
}

impl<T> fmt::Debug for JoinableQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.q.fmt(f)
    }
}

impl<T> Serialize for JoinableQueue<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.q.serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for JoinableQueue<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(JoinableQueue {
            q: Queue::deserialize(d)?,
        })
    }
}

impl<T> Deref for JoinableQueue<T> {
    type Target = Queue<T>;

    fn deref(&self) -> &Queue<T> {
        &self.q
    }
}

impl<T> JoinableQueue<T>
where
    T: Serialize + DeserializeOwned,
{
    /// The type tag of a `JoinableQueue<T>`.
    pub(crate) fn tag() -> String {
        super::tag("joinable_queue", &[std::any::type_name::<T>()])
    }

    pub(crate) fn from_handle(h: Handle) -> Self {
        JoinableQueue {
            q: Queue::from_handle(h),
        }
    }

    /// Marks one item got from the queue as finished (Python's `q.task_done()`).
    ///
    /// # Errors
    /// [`is_invalid_state`](ManagerError::is_invalid_state) if it is called more
    /// times than items were put (Python's `ValueError`);
    /// [`is_shutdown`](ManagerError::is_shutdown) if the manager is gone; an I/O
    /// error.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let q = m.joinable_queue::<u8>(0).unwrap();
    /// q.put(1).unwrap();
    /// q.get().unwrap();
    /// q.task_done().unwrap();
    /// assert!(q.task_done().unwrap_err().is_invalid_state());
    /// ```
    pub fn task_done(&self) -> Result<(), ManagerError> {
        self.q.handle().call(&QueueOp::TaskDone)
    }

    fn join_wait(&self, wait: Wait) -> Result<(), ManagerError> {
        self.q.handle().call(&QueueOp::Join(wait))
    }

    /// Waits, on the server, until every item put has been marked done (Python's
    /// `q.join()`).
    ///
    /// # Errors
    /// [`is_shutdown`](ManagerError::is_shutdown) if the manager is gone or shuts
    /// down while this waits; an I/O error.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let q = m.joinable_queue::<u8>(0).unwrap();
    /// q.join().unwrap(); // nothing unfinished
    /// ```
    pub fn join(&self) -> Result<(), ManagerError> {
        self.join_wait(Wait::Forever)
    }

    /// As [`join`](Self::join), waiting at most `timeout` (through
    /// [`join_deadline`](Self::join_deadline); a timeout too large for the clock
    /// waits as long as it takes).
    ///
    /// # Errors
    /// [`is_timeout`](ManagerError::is_timeout) if items were still unfinished;
    /// otherwise as [`join`](Self::join).
    ///
    /// ```
    /// use std::time::Duration;
    /// let m = concur::process::Manager::start().unwrap();
    /// let q = m.joinable_queue::<u8>(0).unwrap();
    /// q.put(1).unwrap();
    /// assert!(q.join_timeout(Duration::from_millis(20)).unwrap_err().is_timeout());
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), ManagerError> {
        match concur_core::time::deadline_after(timeout) {
            Some(d) => self.join_deadline(d),
            None => self.join(),
        }
    }

    /// As [`join`](Self::join), waiting until `deadline` at most.
    ///
    /// # Errors
    /// As [`join_timeout`](Self::join_timeout).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let m = concur::process::Manager::start().unwrap();
    /// let q = m.joinable_queue::<u8>(0).unwrap();
    /// q.put(1).unwrap();
    /// q.get().unwrap();
    /// q.task_done().unwrap();
    /// q.join_deadline(Instant::now() + Duration::from_secs(5)).unwrap();
    /// ```
    pub fn join_deadline(&self, deadline: Instant) -> Result<(), ManagerError> {
        self.join_wait(Wait::until(Some(deadline)))
    }
}

impl Manager {
    /// A new shared joinable queue holding at most `maxsize` items, 0 for unbounded
    /// (Python's `m.JoinableQueue(maxsize)`).
    ///
    /// # Errors
    /// [`is_shutdown`](ManagerError::is_shutdown) if the manager is gone.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let q = m.joinable_queue::<String>(4).unwrap();
    /// assert_eq!(q.maxsize().unwrap(), 4);
    /// ```
    pub fn joinable_queue<T>(&self, maxsize: usize) -> Result<JoinableQueue<T>, ManagerError>
    where
        T: Serialize + DeserializeOwned,
    {
        Ok(JoinableQueue::from_handle(self.create(
            ObjKind::JoinableQueue { maxsize },
            JoinableQueue::<T>::tag(),
            Vec::new(),
        )?))
    }

    /// A proxy to the existing joinable queue `id` of this manager (made by any
    /// client).
    ///
    /// # Errors
    /// [`is_missing`](ManagerError::is_missing) if there is no such object;
    /// [`is_wrong_type`](ManagerError::is_wrong_type) if it is not a
    /// `JoinableQueue<T>`.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let q = m.joinable_queue::<u8>(0).unwrap();
    /// assert!(m.joinable_queue_by_id::<u8>(q.id()).is_ok());
    /// assert!(m.queue_by_id::<u8>(q.id()).unwrap_err().is_wrong_type());
    /// ```
    pub fn joinable_queue_by_id<T>(&self, id: u64) -> Result<JoinableQueue<T>, ManagerError>
    where
        T: Serialize + DeserializeOwned,
    {
        Ok(JoinableQueue::from_handle(
            self.attach(id, JoinableQueue::<T>::tag())?,
        ))
    }
}
