//! `PriorityQueue`: Python's `queue.PriorityQueue`, smallest first.

use super::chan::{Chan, GetFail, PutFail, Wait};
use super::common::joinable_queue;
use super::flavors::{Heap, Locked};
use super::iter::{Iter, TryIter};
use super::{GetTimeoutError, PutTimeoutError, ShutDown, TaskDoneError, TryGetError, TryPutError};
use crate::shim::Arc;
use crate::time::deadline_after;
use std::time::{Duration, Instant};

/// A priority queue (smallest item first; equal items in the order they were put) with
/// task tracking and shutdown: Python's `queue.PriorityQueue`, as a cheaply cloneable
/// handle.
///
/// Put `(priority, data)` tuples, as in Python, or any `Ord` type. Unlike Python's
/// `heapq`, equal items come out first-in, first-out. Storage is a binary heap behind
/// a lock; blocking, shutdown and task accounting are the same as
/// [`Queue`](super::Queue)'s.
///
/// # Examples
///
/// ```
/// let q = concur::queue::PriorityQueue::unbounded();
/// q.put((2, "b")).unwrap();
/// q.put((1, "z")).unwrap();
/// q.put((2, "a")).unwrap();
/// assert_eq!(q.try_iter().collect::<Vec<_>>(), [(1, "z"), (2, "a"), (2, "b")]);
/// ```
pub struct PriorityQueue<T: Ord> {
    chan: Arc<Chan<T, Locked<Heap<T>>>>,
}

impl<T: Ord> PriorityQueue<T> {
    fn from_cap(cap: Option<usize>) -> Self {
        PriorityQueue {
            chan: Arc::new(Chan::new(Locked::new(cap))),
        }
    }
}

joinable_queue!(PriorityQueue, [: Ord]);
