//! The queue errors. Each one that stands for a put that did not happen hands the item
//! back (`into_inner`); none requires `T: Debug` to be printed.
//!
//! One vocabulary for both tiers: the process tier's queues return these very types,
//! with their last parameter saying why an item can never go through (`Rejected`) or
//! a record did not decode (`Decode`); for a thread queue that parameter is
//! `Infallible`, so those variants cannot occur and need no match arm.

use std::convert::Infallible;
use std::error::Error;
use std::fmt;

/// The queue was shut down: Python's `queue.ShutDown`.
///
/// Returned by [`put`](super::Queue::put) with the item that was not queued (`T`), and
/// by [`get`](super::Queue::get) once a shut-down queue is drained (`T = ()`).
///
/// ```
/// use concur::queue::{Queue, ShutDown};
///
/// let q = Queue::unbounded();
/// q.shutdown(false);
/// let err: ShutDown<&str> = q.put("late").unwrap_err();
/// assert_eq!(err.into_inner(), "late");
/// assert_eq!(q.get(), Err(ShutDown(())));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ShutDown<T = ()>(pub T);

impl<T> ShutDown<T> {
    /// The item that was not put.
    ///
    /// ```
    /// let e = concur::queue::ShutDown(7);
    /// assert_eq!(e.into_inner(), 7);
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for ShutDown<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShutDown(..)")
    }
}

impl<T> fmt::Display for ShutDown<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the queue is shut down")
    }
}

impl<T> Error for ShutDown<T> {}

macro_rules! put_error {
    ($(#[$m:meta])* $name:ident, $full_msg:literal) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq)]
        pub enum $name<T, R = Infallible> {
            /// The queue had no room (Python's `queue.Full`); the item is handed back.
            Full(T),
            /// The queue was shut down (Python's `queue.ShutDown`); the item is handed back.
            ShutDown(T),
            /// The item can never go through this queue, however long one waits (`R`
            /// says why; only a process queue has such items: too large, holding
            /// descriptors, failing to encode). A thread queue's `R` is
            /// [`Infallible`]: the variant cannot occur and needs no match arm.
            Rejected(T, R),
        }

        impl<T, R> $name<T, R> {
            /// The item that was not put.
            ///
            /// ```
            #[doc = concat!("use concur::queue::", stringify!($name), ";")]
            #[doc = concat!("assert_eq!(", stringify!($name), "::<_>::Full(3).into_inner(), 3);")]
            /// ```
            pub fn into_inner(self) -> T {
                match self {
                    Self::Full(t) | Self::ShutDown(t) | Self::Rejected(t, _) => t,
                }
            }

            /// True for `Full`.
            ///
            /// ```
            #[doc = concat!("use concur::queue::", stringify!($name), ";")]
            #[doc = concat!("assert!(", stringify!($name), "::<_>::Full(()).is_full());")]
            /// ```
            pub fn is_full(&self) -> bool {
                matches!(self, Self::Full(_))
            }

            /// True for `ShutDown`.
            ///
            /// ```
            #[doc = concat!("use concur::queue::", stringify!($name), ";")]
            #[doc = concat!("assert!(", stringify!($name), "::<_>::ShutDown(()).is_shutdown());")]
            /// ```
            pub fn is_shutdown(&self) -> bool {
                matches!(self, Self::ShutDown(_))
            }

            /// Why the item was rejected, for `Rejected` (never, on a thread queue).
            ///
            /// ```
            #[doc = concat!("use concur::queue::", stringify!($name), ";")]
            #[doc = concat!("assert!(", stringify!($name), "::<_>::Full(1).rejected().is_none());")]
            /// ```
            pub fn rejected(&self) -> Option<&R> {
                match self {
                    Self::Rejected(_, r) => Some(r),
                    _ => None,
                }
            }
        }

        impl<T, R: fmt::Debug> fmt::Debug for $name<T, R> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    Self::Full(_) => f.write_str("Full(..)"),
                    Self::ShutDown(_) => f.write_str("ShutDown(..)"),
                    Self::Rejected(_, r) => write!(f, "Rejected(.., {r:?})"),
                }
            }
        }

        impl<T, R: fmt::Display> fmt::Display for $name<T, R> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    Self::Full(_) => f.write_str($full_msg),
                    Self::ShutDown(_) => f.write_str("the queue is shut down"),
                    Self::Rejected(_, r) => r.fmt(f),
                }
            }
        }

        impl<T, R: fmt::Debug + fmt::Display> Error for $name<T, R> {}

        impl<T, R> From<ShutDown<T>> for $name<T, R> {
            fn from(e: ShutDown<T>) -> Self {
                Self::ShutDown(e.0)
            }
        }
    };
}

put_error!(
    /// Why [`try_put`](super::Queue::try_put) did not queue its item. The process
    /// tier's queues return the same type (with `R` saying why an item was rejected).
    ///
    /// ```
    /// use concur::queue::{Queue, TryPutError};
    ///
    /// let q = Queue::bounded(1);
    /// q.try_put(1).unwrap();
    /// assert_eq!(q.try_put(2), Err(TryPutError::Full(2)));
    /// match q.try_put(3).unwrap_err() {
    ///     TryPutError::Full(item) | TryPutError::ShutDown(item) => assert_eq!(item, 3),
    ///     // no `Rejected` arm: a thread queue never rejects an item
    /// }
    /// ```
    TryPutError,
    "the queue is full"
);

put_error!(
    /// Why [`put_timeout`](super::Queue::put_timeout) or
    /// [`put_deadline`](super::Queue::put_deadline) did not queue its item: still full
    /// when the time ran out (Python raises `Full`), or shut down. The process tier's
    /// queues return the same type.
    ///
    /// ```
    /// use concur::queue::{PutTimeoutError, Queue};
    /// use std::time::Duration;
    ///
    /// let q = Queue::bounded(1);
    /// q.put(1).unwrap();
    /// let e: PutTimeoutError<i32> = q.put_timeout(2, Duration::from_millis(1)).unwrap_err();
    /// assert!(e.is_full());
    /// assert_eq!(e.into_inner(), 2);
    /// ```
    PutTimeoutError,
    "the queue stayed full until the timeout"
);

macro_rules! get_error {
    ($(#[$m:meta])* $name:ident, $empty_msg:literal) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name<D = Infallible> {
            /// No item was available (Python's `queue.Empty`).
            Empty,
            /// The queue is shut down and drained (Python's `queue.ShutDown`).
            ShutDown,
            /// The record taken could not be decoded into an item; it is gone (`D` says
            /// why; only a process queue decodes). A thread queue's `D` is
            /// [`Infallible`]: the variant cannot occur and needs no match arm.
            Decode(D),
        }

        impl<D> $name<D> {
            /// True for `Empty`.
            ///
            /// ```
            #[doc = concat!("let e: concur::queue::", stringify!($name), " = concur::queue::", stringify!($name), "::Empty;")]
            /// assert!(e.is_empty());
            /// ```
            pub fn is_empty(&self) -> bool {
                matches!(self, Self::Empty)
            }

            /// True for `ShutDown`.
            ///
            /// ```
            #[doc = concat!("let e: concur::queue::", stringify!($name), " = concur::queue::", stringify!($name), "::ShutDown;")]
            /// assert!(e.is_shutdown());
            /// ```
            pub fn is_shutdown(&self) -> bool {
                matches!(self, Self::ShutDown)
            }

            /// Why the record could not be decoded, for `Decode` (never, on a thread
            /// queue).
            ///
            /// ```
            #[doc = concat!("let e: concur::queue::", stringify!($name), " = concur::queue::", stringify!($name), "::Empty;")]
            /// assert!(e.decode_error().is_none());
            /// ```
            pub fn decode_error(&self) -> Option<&D> {
                match self {
                    Self::Decode(d) => Some(d),
                    _ => None,
                }
            }
        }

        impl<D: fmt::Display> fmt::Display for $name<D> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    Self::Empty => f.write_str($empty_msg),
                    Self::ShutDown => f.write_str("the queue is shut down"),
                    Self::Decode(d) => d.fmt(f),
                }
            }
        }

        impl<D: fmt::Debug + fmt::Display> Error for $name<D> {}

        impl<D> From<ShutDown> for $name<D> {
            fn from(_: ShutDown) -> Self {
                Self::ShutDown
            }
        }
    };
}

get_error!(
    /// Why [`try_get`](super::Queue::try_get) returned no item. The process tier's
    /// queues return the same type (with `D` saying why a record did not decode).
    ///
    /// ```
    /// use concur::queue::{Queue, TryGetError};
    ///
    /// let q = Queue::<u8>::unbounded();
    /// assert_eq!(q.try_get(), Err(TryGetError::Empty));
    /// ```
    TryGetError,
    "the queue is empty"
);

get_error!(
    /// Why [`get_timeout`](super::Queue::get_timeout) or
    /// [`get_deadline`](super::Queue::get_deadline) returned no item: still empty when
    /// the time ran out (Python raises `Empty`), or shut down and drained. The process
    /// tier's queues return the same type.
    ///
    /// ```
    /// use concur::queue::{GetTimeoutError, Queue};
    /// use std::time::Duration;
    ///
    /// let q = Queue::<u8>::unbounded();
    /// assert_eq!(q.get_timeout(Duration::from_millis(1)), Err(GetTimeoutError::Empty));
    /// ```
    GetTimeoutError,
    "the queue stayed empty until the timeout"
);

/// [`task_done`](super::Queue::task_done) was called more times than items were put
/// (Python raises `ValueError('task_done() called too many times')`).
///
/// ```
/// use concur::queue::Queue;
///
/// let q = Queue::<u8>::unbounded();
/// let e = q.task_done().unwrap_err();
/// assert_eq!(e.to_string(), "task_done() called too many times");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TaskDoneError {
    pub(super) _priv: (),
}

impl TaskDoneError {
    /// The error of a `task_done` called too many times: for queues built outside
    /// this crate (the process tier's `JoinableQueue` reports with this very type).
    ///
    /// ```
    /// let e = concur::queue::TaskDoneError::new();
    /// assert_eq!(e.to_string(), "task_done() called too many times");
    /// ```
    #[allow(clippy::new_without_default)] // an error made where it happens, not a default
    pub fn new() -> Self {
        TaskDoneError { _priv: () }
    }
}

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task_done() called too many times")
    }
}

impl Error for TaskDoneError {}
