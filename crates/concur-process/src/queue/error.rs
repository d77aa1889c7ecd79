//! The process queue errors. Those that stand for a put that did not happen hand the
//! item back (`into_inner`); none requires `T: Debug` to be printed.
//!
//! The errors named as the thread tier's are the thread tier's types ([`TryPutError`],
//! [`PutTimeoutError`], [`TryGetError`], [`GetTimeoutError`], [`TaskDoneError`]), with
//! the process queue's reasons ([`Rejected`], [`DecodeError`]) as their last
//! parameter; only [`PutError`] and [`GetError`] (the blocking `put` and `get`, which
//! on a thread queue can only fail by a shutdown) are this tier's own.

use std::error::Error;
use std::fmt;

/// Why an item can never go through a process queue, however long one waits.
///
/// ```
/// use concur::process::queue::Rejected;
/// let r = Rejected::TooLarge { size: 10, max: 8 };
/// assert_eq!(
///     r.to_string(),
///     "the item takes at least 10 bytes encoded, more than the queue's limit of 8"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejected {
    /// Encoded, the item is larger than the ring can ever hold (see
    /// [`Queue::max_item_size`](super::Queue::max_item_size)). The put found out
    /// without encoding the whole item: its encoding stops as soon as it passes `max`.
    TooLarge {
        /// How many encoded bytes the item was seen to take before its encoding was
        /// stopped: more than `max`, at most the item's full encoded size.
        size: usize,
        /// The largest encoded size the queue accepts.
        max: usize,
    },
    /// The item holds file descriptors (a `Connection`, `SharedMemory`, a lock, a
    /// queue...), which cannot travel through shared memory: send those over a
    /// [`Connection`](crate::Connection) or as a process argument instead.
    FileDescriptors,
    /// The item's `Serialize` implementation failed (the message says why).
    Encode(String),
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejected::TooLarge { size, max } => write!(
                f,
                "the item takes at least {size} bytes encoded, more than the queue's limit of {max}"
            ),
            Rejected::FileDescriptors => f.write_str(
                "the item holds file descriptors, which a process queue cannot carry \
                 (send it over a Connection instead)",
            ),
            Rejected::Encode(m) => write!(f, "the item could not be encoded: {m}"),
        }
    }
}

impl Error for Rejected {}

/// A record taken from the queue could not be decoded into an item (a `Deserialize`
/// failure, or a block corrupted by a process writing it outside the queue). The
/// record is consumed; the queue stays usable.
///
/// ```
/// use concur::process::queue::{GetError, Queue};
/// use serde::{Deserialize, Deserializer, Serialize, de::Error};
///
/// /// Serializes any value but refuses to decode zero.
/// #[derive(Serialize)]
/// struct NonZero(u8);
/// impl<'de> Deserialize<'de> for NonZero {
///     fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
///         match u8::deserialize(d)? {
///             0 => Err(D::Error::custom("zero refused")),
///             v => Ok(NonZero(v)),
///         }
///     }
/// }
///
/// let q = Queue::new(0)?;
/// q.put(NonZero(0)).unwrap();
/// q.put(NonZero(7)).unwrap();
/// match q.get() {
///     Err(GetError::Decode(e)) => assert!(e.to_string().starts_with("a queued item could not be decoded")),
///     _ => panic!("expected a decode error"),
/// }
/// assert_eq!(q.get().unwrap().0, 7); // the queue carries on
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    pub(super) message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a queued item could not be decoded: {}", self.message)
    }
}

impl Error for DecodeError {}

/// Why [`put`](super::Queue::put) did not queue its item; the item is handed back.
///
/// ```
/// use concur::process::queue::{PutError, Queue};
///
/// let q = Queue::<u8>::new(0)?;
/// q.shutdown(false);
/// let e: PutError<u8> = q.put(1).unwrap_err();
/// assert_eq!(e.into_inner(), 1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub enum PutError<T> {
    /// The queue was shut down (Python's `queue.ShutDown`).
    ShutDown(T),
    /// The item can never be queued (too large, holds descriptors, failed to encode).
    Rejected(T, Rejected),
}

impl<T> PutError<T> {
    /// The item that was not put.
    ///
    /// ```
    /// assert_eq!(concur::process::queue::PutError::ShutDown(3).into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            Self::ShutDown(t) | Self::Rejected(t, _) => t,
        }
    }

    /// True for `ShutDown`.
    ///
    /// ```
    /// assert!(concur::process::queue::PutError::ShutDown(()).is_shutdown());
    /// ```
    pub fn is_shutdown(&self) -> bool {
        matches!(self, Self::ShutDown(_))
    }

    /// Why the item was rejected, for `Rejected`.
    ///
    /// ```
    /// use concur::process::queue::{PutError, Rejected};
    /// let e = PutError::Rejected((), Rejected::FileDescriptors);
    /// assert_eq!(e.rejected(), Some(&Rejected::FileDescriptors));
    /// ```
    pub fn rejected(&self) -> Option<&Rejected> {
        match self {
            Self::Rejected(_, r) => Some(r),
            Self::ShutDown(_) => None,
        }
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ShutDown(_) => f.write_str("ShutDown(..)"),
            Self::Rejected(_, r) => write!(f, "Rejected(.., {r:?})"),
        }
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ShutDown(_) => f.write_str("the queue is shut down"),
            Self::Rejected(_, r) => r.fmt(f),
        }
    }
}

impl<T> Error for PutError<T> {}

/// Why [`try_put`](super::Queue::try_put) did not queue its item: the thread tier's
/// [`concur::queue::TryPutError`](concur_core::queue::TryPutError) (the same type and variants), whose `Rejected`
/// variant says why an item can never go through a process queue.
///
/// ```
/// use concur::process::queue::{Queue, Rejected, TryPutError};
///
/// let q = Queue::bounded(1)?;
/// q.try_put(1).unwrap();
/// assert_eq!(q.try_put(2), Err(TryPutError::Full(2)));
/// let e = TryPutError::Rejected((), Rejected::FileDescriptors);
/// assert_eq!(e.rejected(), Some(&Rejected::FileDescriptors));
/// # Ok::<(), std::io::Error>(())
/// ```
pub type TryPutError<T> = concur_core::queue::TryPutError<T, Rejected>;

/// Why [`put_timeout`](super::Queue::put_timeout) or
/// [`put_deadline`](super::Queue::put_deadline) did not queue its item: still full when
/// the time ran out (Python raises `Full`), shut down, or rejected. The thread tier's
/// [`concur::queue::PutTimeoutError`](concur_core::queue::PutTimeoutError), as [`TryPutError`] is.
///
/// ```
/// use concur::process::queue::Queue;
/// use std::time::Duration;
///
/// let q = Queue::bounded(1)?;
/// q.put(1).unwrap();
/// let e = q.put_timeout(2, Duration::from_millis(1)).unwrap_err();
/// assert!(e.is_full());
/// assert_eq!(e.into_inner(), 2);
/// # Ok::<(), std::io::Error>(())
/// ```
pub type PutTimeoutError<T> = concur_core::queue::PutTimeoutError<T, Rejected>;

impl<T> From<PutError<T>> for TryPutError<T> {
    fn from(e: PutError<T>) -> Self {
        match e {
            PutError::ShutDown(t) => Self::ShutDown(t),
            PutError::Rejected(t, r) => Self::Rejected(t, r),
        }
    }
}

impl<T> From<PutError<T>> for PutTimeoutError<T> {
    fn from(e: PutError<T>) -> Self {
        match e {
            PutError::ShutDown(t) => Self::ShutDown(t),
            PutError::Rejected(t, r) => Self::Rejected(t, r),
        }
    }
}

/// Why [`get`](super::Queue::get) returned no item.
///
/// ```
/// use concur::process::queue::{GetError, Queue};
/// let q = Queue::<u8>::new(0)?;
/// q.shutdown(false);
/// assert_eq!(q.get(), Err(GetError::ShutDown));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GetError {
    /// The queue is shut down and drained (Python's `queue.ShutDown`).
    ShutDown,
    /// The record taken could not be decoded; it is gone.
    Decode(DecodeError),
}

impl GetError {
    /// True for `ShutDown`.
    ///
    /// ```
    /// assert!(concur::process::queue::GetError::ShutDown.is_shutdown());
    /// ```
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

/// Why [`try_get`](super::Queue::try_get) returned no item: the thread tier's
/// [`concur::queue::TryGetError`](concur_core::queue::TryGetError) (the same type and variants), whose `Decode`
/// variant says a record taken could not be decoded.
///
/// ```
/// use concur::process::queue::{Queue, TryGetError};
///
/// let q = Queue::<u8>::new(0)?;
/// assert_eq!(q.try_get(), Err(TryGetError::Empty));
/// # Ok::<(), std::io::Error>(())
/// ```
pub type TryGetError = concur_core::queue::TryGetError<DecodeError>;

/// Why [`get_timeout`](super::Queue::get_timeout) or
/// [`get_deadline`](super::Queue::get_deadline) returned no item: still empty when the
/// time ran out (Python raises `Empty`), shut down and drained, or the record could
/// not be decoded. The thread tier's [`concur::queue::GetTimeoutError`](concur_core::queue::GetTimeoutError).
///
/// ```
/// use concur::process::queue::{GetTimeoutError, Queue};
/// use std::time::Duration;
///
/// let q = Queue::<u8>::new(0)?;
/// assert_eq!(q.get_timeout(Duration::from_millis(1)), Err(GetTimeoutError::Empty));
/// # Ok::<(), std::io::Error>(())
/// ```
pub type GetTimeoutError = concur_core::queue::GetTimeoutError<DecodeError>;

impl From<GetError> for TryGetError {
    fn from(e: GetError) -> Self {
        match e {
            GetError::ShutDown => Self::ShutDown,
            GetError::Decode(d) => Self::Decode(d),
        }
    }
}

impl From<GetError> for GetTimeoutError {
    fn from(e: GetError) -> Self {
        match e {
            GetError::ShutDown => Self::ShutDown,
            GetError::Decode(d) => Self::Decode(d),
        }
    }
}

/// [`task_done`](super::JoinableQueue::task_done) was called more times than items
/// were put (Python raises `ValueError('task_done() called too many times')`): the
/// thread tier's very type.
pub use concur_core::queue::TaskDoneError;
