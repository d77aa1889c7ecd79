//! `LifoQueue`: Python's `queue.LifoQueue`, last in, first out.

use super::chan::{Chan, GetFail, PutFail, Wait};
use super::common::joinable_queue;
use super::flavors::{Lifo, Locked};
use super::iter::{Iter, TryIter};
use super::{GetTimeoutError, PutTimeoutError, ShutDown, TaskDoneError, TryGetError, TryPutError};
use crate::shim::Arc;
use crate::time::deadline_after;
use std::time::{Duration, Instant};

/// A last-in, first-out queue (a stack) with task tracking and shutdown: Python's
/// `queue.LifoQueue`, as a cheaply cloneable handle.
///
/// Storage is a `Vec` behind a lock; blocking, shutdown and task accounting are the
/// same as [`Queue`](super::Queue)'s.
///
/// # Examples
///
/// ```
/// let q = concur::queue::LifoQueue::bounded(3);
/// for i in [1, 2, 3] {
///     q.put(i).unwrap();
/// }
/// assert_eq!(q.try_iter().collect::<Vec<_>>(), [3, 2, 1]);
/// ```
pub struct LifoQueue<T> {
    chan: Arc<Chan<T, Locked<Lifo<T>>>>,
}

impl<T> LifoQueue<T> {
    fn from_cap(cap: Option<usize>) -> Self {
        LifoQueue {
            chan: Arc::new(Chan::new(Locked::new(cap))),
        }
    }
}

joinable_queue!(LifoQueue, []);
