//! Draining iterators over any queue kind.

use super::chan::{Chan, Wait};
use super::flavors::Flavor;
use std::fmt;

/// What an iterator needs from a queue: object-safe, so one iterator type serves
/// every kind.
pub(crate) trait Source<T> {
    fn next_blocking(&self) -> Option<T>;
    fn next_now(&self) -> Option<T>;
}

impl<T, F: Flavor<T>> Source<T> for Chan<T, F> {
    fn next_blocking(&self) -> Option<T> {
        self.get(Wait::Until(None)).ok()
    }
    fn next_now(&self) -> Option<T> {
        self.get(Wait::Never).ok()
    }
}

/// A blocking, draining iterator: each `next` is a `get`, and iteration ends once the
/// queue is shut down and drained (Python's `while True: item = q.get()` loop ending
/// with `ShutDown`).
///
/// Created by `iter()` on every queue kind, or `for item in &queue`.
///
/// ```
/// use concur::queue::Queue;
///
/// let q = Queue::unbounded();
/// q.put(1).unwrap();
/// q.put(2).unwrap();
/// q.shutdown(false);
/// let got: Vec<i32> = q.iter().collect();
/// assert_eq!(got, [1, 2]);
/// ```
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct Iter<'a, T> {
    pub(crate) src: &'a (dyn Source<T> + 'a),
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.src.next_blocking()
    }
}

impl<T> fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Iter { .. }")
    }
}

/// A non-blocking, draining iterator: each `next` is a `try_get`; it ends as soon as
/// the queue is empty (or shut down and drained).
///
/// ```
/// use concur::queue::Queue;
///
/// let q = Queue::bounded(4);
/// q.put('a').unwrap();
/// q.put('b').unwrap();
/// assert_eq!(q.try_iter().collect::<String>(), "ab");
/// assert!(q.empty());
/// ```
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct TryIter<'a, T> {
    pub(crate) src: &'a (dyn Source<T> + 'a),
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.src.next_now()
    }
}

impl<T> fmt::Debug for TryIter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TryIter { .. }")
    }
}
