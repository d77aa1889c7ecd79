//! The queue errors. Each one that stands for a put that did not happen hands the item
//! back (`into_inner`); none requires `T: Debug` to be printed.

use std::error::Error;
use std::fmt;

/// The queue was shut down: Python's `queue.ShutDown`.
///
/// Returned by [`put`](super::Queue::put) with the item that was not queued (`T`), and
/// by [`get`](super::Queue::get) once a shut-down queue is drained (`T = ()`).
///
/// ```
/// use concur_core::queue::{Queue, ShutDown};
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
    /// let e = concur_core::queue::ShutDown(7);
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
        pub enum $name<T> {
            /// The queue had no room (Python's `queue.Full`); the item is handed back.
            Full(T),
            /// The queue was shut down (Python's `queue.ShutDown`); the item is handed back.
            ShutDown(T),
        }

        impl<T> $name<T> {
            /// The item that was not put.
            ///
            /// ```
            #[doc = concat!("use concur_core::queue::", stringify!($name), ";")]
            #[doc = concat!("assert_eq!(", stringify!($name), "::Full(3).into_inner(), 3);")]
            /// ```
            pub fn into_inner(self) -> T {
                match self {
                    Self::Full(t) | Self::ShutDown(t) => t,
                }
            }

            /// True for `Full`.
            ///
            /// ```
            #[doc = concat!("use concur_core::queue::", stringify!($name), ";")]
            #[doc = concat!("assert!(", stringify!($name), "::Full(()).is_full());")]
            /// ```
            pub fn is_full(&self) -> bool {
                matches!(self, Self::Full(_))
            }

            /// True for `ShutDown`.
            ///
            /// ```
            #[doc = concat!("use concur_core::queue::", stringify!($name), ";")]
            #[doc = concat!("assert!(", stringify!($name), "::ShutDown(()).is_shutdown());")]
            /// ```
            pub fn is_shutdown(&self) -> bool {
                matches!(self, Self::ShutDown(_))
            }
        }

        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    Self::Full(_) => f.write_str("Full(..)"),
                    Self::ShutDown(_) => f.write_str("ShutDown(..)"),
                }
            }
        }

        impl<T> fmt::Display for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    Self::Full(_) => f.write_str($full_msg),
                    Self::ShutDown(_) => f.write_str("the queue is shut down"),
                }
            }
        }

        impl<T> Error for $name<T> {}

        impl<T> From<ShutDown<T>> for $name<T> {
            fn from(e: ShutDown<T>) -> Self {
                Self::ShutDown(e.0)
            }
        }
    };
}

put_error!(
    /// Why [`try_put`](super::Queue::try_put) did not queue its item.
    ///
    /// ```
    /// use concur_core::queue::{Queue, TryPutError};
    ///
    /// let q = Queue::bounded(1);
    /// q.try_put(1).unwrap();
    /// assert_eq!(q.try_put(2), Err(TryPutError::Full(2)));
    /// ```
    TryPutError,
    "the queue is full"
);

put_error!(
    /// Why [`put_timeout`](super::Queue::put_timeout) or
    /// [`put_deadline`](super::Queue::put_deadline) did not queue its item: still full
    /// when the time ran out (Python raises `Full`), or shut down.
    ///
    /// ```
    /// use concur_core::queue::{PutTimeoutError, Queue};
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
        pub enum $name {
            /// No item was available (Python's `queue.Empty`).
            Empty,
            /// The queue is shut down and drained (Python's `queue.ShutDown`).
            ShutDown,
        }

        impl $name {
            /// True for `Empty`.
            ///
            /// ```
            #[doc = concat!("assert!(concur_core::queue::", stringify!($name), "::Empty.is_empty());")]
            /// ```
            pub fn is_empty(&self) -> bool {
                matches!(self, Self::Empty)
            }

            /// True for `ShutDown`.
            ///
            /// ```
            #[doc = concat!("assert!(concur_core::queue::", stringify!($name), "::ShutDown.is_shutdown());")]
            /// ```
            pub fn is_shutdown(&self) -> bool {
                matches!(self, Self::ShutDown)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    Self::Empty => f.write_str($empty_msg),
                    Self::ShutDown => f.write_str("the queue is shut down"),
                }
            }
        }

        impl Error for $name {}

        impl From<ShutDown> for $name {
            fn from(_: ShutDown) -> Self {
                Self::ShutDown
            }
        }
    };
}

get_error!(
    /// Why [`try_get`](super::Queue::try_get) returned no item.
    ///
    /// ```
    /// use concur_core::queue::{Queue, TryGetError};
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
    /// the time ran out (Python raises `Empty`), or shut down and drained.
    ///
    /// ```
    /// use concur_core::queue::{GetTimeoutError, Queue};
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
/// use concur_core::queue::Queue;
///
/// let q = Queue::<u8>::unbounded();
/// let e = q.task_done().unwrap_err();
/// assert_eq!(e.to_string(), "task_done() called too many times");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TaskDoneError {
    pub(super) _priv: (),
}

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task_done() called too many times")
    }
}

impl Error for TaskDoneError {}
