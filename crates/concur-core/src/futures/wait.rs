//! `as_completed` and `wait` over a slice of futures (CPython `_base.py`: a waiter
//! installed on every future; here a [`Watch`] each future pushes its index into).

use super::error::TaskError;
use super::future::{Future, Watch, blocking_on};
use crate::shim::Arc;
use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

/// Indices of `fs` with duplicates (same future) removed, first occurrence kept.
fn unique<T>(fs: &[Future<T>]) -> Vec<usize> {
    let mut seen = HashSet::new();
    (0..fs.len()).filter(|&i| seen.insert(fs[i].id())).collect()
}

/// The iterator returned by [`as_completed`]; `next` blocks until another future
/// completes. Dropping it unregisters it from the futures.
///
/// ```
/// use concur::futures::{as_completed, Promise};
/// let p = Promise::new();
/// assert!(p.set_result(1));
/// let fs = [p.future()];
/// let mut it = as_completed(&fs, None);
/// assert_eq!(it.next().unwrap().unwrap().result().unwrap(), 1);
/// assert!(it.next().is_none());
/// ```
pub struct AsCompleted<'a, T> {
    fs: &'a [Future<T>],
    watch: Arc<Watch>,
    ready: VecDeque<usize>,
    remaining: usize,
    total: usize,
    deadline: Option<Instant>,
    registered: Vec<usize>,
    failed: bool,
}

/// Yields the futures of `fs` as they complete (finished, or cancelled with the
/// cancellation acknowledged: see [`wait`]), those already done first: Python's
/// `as_completed`. Duplicates are yielded once.
///
/// Blocks in `next` until another future completes. With a `timeout` (counted from
/// this call), the iterator yields one [`is_timeout`](TaskError::is_timeout) error
/// saying "k (of n) futures unfinished" and then ends.
///
/// ```
/// use concur::futures::{as_completed, Executor, ThreadPoolExecutor};
///
/// let pool = ThreadPoolExecutor::new(2);
/// let fs: Vec<_> = (0..4).map(|i| pool.submit(move || i * 10).unwrap()).collect();
/// let mut sum = 0;
/// for f in as_completed(&fs, None) {
///     sum += f.unwrap().result().unwrap();
/// }
/// assert_eq!(sum, 60);
/// ```
pub fn as_completed<T>(fs: &[Future<T>], timeout: Option<Duration>) -> AsCompleted<'_, T> {
    let deadline = timeout.and_then(crate::time::deadline_after);
    let watch = Watch::new();
    let idx = unique(fs);
    let mut ready = VecDeque::new();
    let mut registered = Vec::new();
    for &i in &idx {
        if fs[i].watch(&watch, i) {
            ready.push_back(i);
        } else {
            registered.push(i);
        }
    }
    AsCompleted {
        fs,
        watch,
        ready,
        remaining: idx.len(),
        total: idx.len(),
        deadline,
        registered,
        failed: false,
    }
}

impl<T> std::fmt::Debug for AsCompleted<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsCompleted")
            .field("remaining", &self.remaining)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

impl<'a, T> Iterator for AsCompleted<'a, T> {
    type Item = Result<&'a Future<T>, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 || self.failed {
            return None;
        }
        let i = match self.ready.pop_front() {
            Some(i) => i,
            None => {
                let fs = self.fs;
                let pending = self
                    .registered
                    .iter()
                    .map(|&i| &fs[i])
                    .filter(|f| !f.done());
                let (mut g, ok) = blocking_on(pending, || {
                    self.watch
                        .q
                        .lock()
                        .wait_until(self.deadline, |v| !v.is_empty())
                });
                if !ok {
                    self.failed = true;
                    return Some(Err(TaskError::timeout(format!(
                        "{} (of {}) futures unfinished",
                        self.remaining, self.total
                    ))));
                }
                let i = g.remove(0);
                self.ready.extend(g.drain(..));
                i
            }
        };
        self.remaining -= 1;
        Some(Ok(&self.fs[i]))
    }
}

impl<T> Drop for AsCompleted<'_, T> {
    fn drop(&mut self) {
        for &i in &self.registered {
            self.fs[i].unwatch(&self.watch);
        }
    }
}

/// When [`wait`] returns (Python's `FIRST_COMPLETED`, `FIRST_EXCEPTION`,
/// `ALL_COMPLETED`).
///
/// ```
/// use concur::futures::{wait, Promise, ReturnWhen, TaskError};
/// let (ok, bad, idle) = (Promise::new(), Promise::new(), Promise::<u8>::new());
/// assert!(ok.set_result(1));
/// assert!(bad.set_error(TaskError::user("x")));
/// let fs = [ok.future(), bad.future(), idle.future()];
/// let r = wait(&fs, None, ReturnWhen::FirstException);
/// assert_eq!((r.done.len(), r.not_done.len()), (2, 1));
/// # let _ = fs[1].exception(None);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ReturnWhen {
    /// As soon as any future finishes or is cancelled (an acknowledged cancellation).
    FirstCompleted,
    /// As soon as any future finishes with an error (cancellation does not count), or
    /// when all are done.
    FirstException,
    /// When all futures are done.
    AllCompleted,
}

/// What [`wait`] returns: Python's `DoneAndNotDoneFutures` (each future once, in the
/// order of the input slice).
///
/// ```
/// use concur::futures::{wait, Promise, ReturnWhen};
/// use std::time::Duration;
/// let p = Promise::<u8>::new();
/// let fs = [p.future()];
/// let r = wait(&fs, Some(Duration::from_millis(1)), ReturnWhen::AllCompleted);
/// assert!(r.done.is_empty() && r.not_done[0] == &fs[0]);
/// ```
#[derive(Debug)]
pub struct DoneAndNotDone<'a, T> {
    /// The futures that completed (finished, or cancelled and acknowledged).
    pub done: Vec<&'a Future<T>>,
    /// The others.
    pub not_done: Vec<&'a Future<T>>,
}

/// Blocks until `return_when` holds for `fs` or `timeout` passes, and returns the done
/// and not-done futures: Python's `concurrent.futures.wait`. A timeout is not an error:
/// the sets simply say what finished.
///
/// As in CPython, a cancelled future counts as done once its cancellation is
/// acknowledged by the side that completes it (Python's `CANCELLED_AND_NOTIFIED`): at
/// once for a pool's queued task (the pool takes it back), else when its
/// [`Promise`](super::Promise) calls `set_running`, sets an outcome or is dropped. A
/// future its user cancelled while its promise still says nothing is not done yet
/// (Python's `CANCELLED`), though [`Future::done`] and [`Future::cancelled`] are true.
///
/// ```
/// use concur::futures::{wait, Promise, ReturnWhen};
/// use std::time::Duration;
/// let p = Promise::<u8>::new();
/// assert!(p.future().cancel());
/// let fs = [p.future()];
/// let r = wait(&fs, Some(Duration::from_millis(1)), ReturnWhen::AllCompleted);
/// assert_eq!(r.not_done.len(), 1); // nobody acknowledged the cancel
/// assert!(!p.set_running()); // Python's set_running_or_notify_cancel
/// assert_eq!(wait(&fs, None, ReturnWhen::AllCompleted).done.len(), 1);
/// ```
///
/// ```
/// use concur::futures::{wait, Executor, ReturnWhen, ThreadPoolExecutor};
///
/// let pool = ThreadPoolExecutor::new(2);
/// let fs: Vec<_> = (0..3).map(|i| pool.submit(move || i).unwrap()).collect();
/// let r = wait(&fs, None, ReturnWhen::AllCompleted);
/// assert_eq!((r.done.len(), r.not_done.len()), (3, 0));
/// ```
pub fn wait<T>(
    fs: &[Future<T>],
    timeout: Option<Duration>,
    return_when: ReturnWhen,
) -> DoneAndNotDone<'_, T> {
    let deadline = timeout.and_then(crate::time::deadline_after);
    let idx = unique(fs);
    // Done as CPython's `wait` counts it: finished, or cancelled and acknowledged (a
    // future cancelled while its completing side has not yet heard of it is not done).
    let mut done: HashSet<usize> = idx.iter().copied().filter(|&i| fs[i].settled()).collect();
    let satisfied = |done: &HashSet<usize>| match return_when {
        ReturnWhen::FirstCompleted => !done.is_empty(),
        ReturnWhen::FirstException => {
            done.len() == idx.len() || done.iter().any(|&i| fs[i].failed())
        }
        ReturnWhen::AllCompleted => done.len() == idx.len(),
    };
    if !satisfied(&done) {
        let watch = Watch::new();
        let mut registered = Vec::new();
        for &i in &idx {
            if done.contains(&i) {
                continue;
            }
            if fs[i].watch(&watch, i) {
                done.insert(i);
            } else {
                registered.push(i);
            }
        }
        loop {
            if satisfied(&done) {
                break;
            }
            let pending = registered
                .iter()
                .filter(|i| !done.contains(i))
                .map(|&i| &fs[i]);
            let (mut g, ok) = blocking_on(pending, || {
                watch.q.lock().wait_until(deadline, |v| !v.is_empty())
            });
            done.extend(g.drain(..));
            drop(g);
            if !ok {
                break;
            }
        }
        for i in registered {
            fs[i].unwatch(&watch);
        }
    }
    let mut r = DoneAndNotDone {
        done: Vec::new(),
        not_done: Vec::new(),
    };
    for i in idx {
        if done.contains(&i) {
            r.done.push(&fs[i]);
        } else {
            r.not_done.push(&fs[i]);
        }
    }
    r
}
