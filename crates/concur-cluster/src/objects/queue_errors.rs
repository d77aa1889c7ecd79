//! The errors of a cluster [`Queue`](super::Queue) that the thread tier has no type
//! for: its blocking `put` and `get` (which on a thread queue can only fail by a
//! shutdown), and `task_done` (which can also find its item taken over). The other
//! forms return the thread tier's own types, `TryPutError<T, ClusterError>` and so on.

use std::error::Error;
use std::fmt;

use concur_core::queue::TaskDoneError;

use crate::error::ClusterError;

/// Why [`Queue::put`](super::Queue::put) did not queue its item; the item is handed
/// back.
///
/// ```
/// use concur::cluster::{PutError, Queue, RedisServer};
/// let redis = RedisServer::start()?;
/// let q = Queue::<u8>::connect(&redis.url(), "closed", 0)?;
/// q.shutdown(false)?;
/// let e: PutError<u8> = q.put(1).unwrap_err();
/// assert!(e.is_shutdown());
/// assert_eq!(e.into_inner(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub enum PutError<T> {
    /// The queue was shut down (Python's `queue.ShutDown`).
    ShutDown(T),
    /// The item was not queued: it does not encode, is too large
    /// ([`is_invalid`](ClusterError::is_invalid)), or Redis failed.
    Rejected(T, ClusterError),
}

impl<T> PutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            Self::ShutDown(t) | Self::Rejected(t, _) => t,
        }
    }

    /// True for `ShutDown`.
    pub fn is_shutdown(&self) -> bool {
        matches!(self, Self::ShutDown(_))
    }

    /// Why the item was rejected, for `Rejected`.
    pub fn rejected(&self) -> Option<&ClusterError> {
        match self {
            Self::Rejected(_, e) => Some(e),
            Self::ShutDown(_) => None,
        }
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ShutDown(_) => f.write_str("ShutDown(..)"),
            Self::Rejected(_, e) => write!(f, "Rejected(.., {e:?})"),
        }
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ShutDown(_) => f.write_str("the queue is shut down"),
            Self::Rejected(_, e) => e.fmt(f),
        }
    }
}

impl<T> Error for PutError<T> {}

/// Why [`Queue::get`](super::Queue::get) returned no item.
///
/// ```
/// use concur::cluster::{GetError, Queue, RedisServer};
/// let redis = RedisServer::start()?;
/// let q = Queue::<u8>::connect(&redis.url(), "drained", 0)?;
/// q.shutdown(false)?;
/// assert!(matches!(q.get(), Err(GetError::ShutDown)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub enum GetError {
    /// The queue is shut down and drained (Python's `queue.ShutDown`).
    ShutDown,
    /// No item could be taken: Redis failed; or the item taken did not decode
    /// ([`is_invalid`](ClusterError::is_invalid); it was moved to the queue's dead
    /// letters and counts as done). The name is the thread tier's.
    Decode(ClusterError),
}

impl GetError {
    /// True for `ShutDown`.
    pub fn is_shutdown(&self) -> bool {
        matches!(self, Self::ShutDown)
    }
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ShutDown => f.write_str("the queue is shut down"),
            Self::Decode(e) => e.fmt(f),
        }
    }
}

impl Error for GetError {}

/// Why [`Queue::task_done`](super::Queue::task_done) did not acknowledge an item.
///
/// ```
/// use concur::cluster::{AckError, Queue, RedisServer};
/// let redis = RedisServer::start()?;
/// let q = Queue::<u8>::connect(&redis.url(), "acks", 0)?;
/// assert!(matches!(q.task_done(), Err(AckError::TooMany(_))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub enum AckError {
    /// This handle holds no item taken and not yet done (Python's `ValueError:
    /// task_done() called too many times`).
    TooMany(TaskDoneError),
    /// The item's lease lapsed (this consumer was stopped or cut off for longer than
    /// the lease) and another consumer took it over: it is, or was, processed there
    /// too, and that consumer's `task_done` counts it.
    LeaseLost,
    /// Redis failed; the item is still held (call again).
    Failed(ClusterError),
}

impl fmt::Display for AckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooMany(e) => e.fmt(f),
            Self::LeaseLost => f.write_str(
                "the item's lease lapsed and another consumer took it over before task_done",
            ),
            Self::Failed(e) => e.fmt(f),
        }
    }
}

impl Error for AckError {}
