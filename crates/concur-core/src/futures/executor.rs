//! The [`Executor`] trait and its lazy, bounded [`Map`] iterator.

use super::error::TaskError;
use super::future::Future;
use crate::shim::Arc;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How far a map has got, as told to a [progress hook](MapOptions::progress).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Items whose function has returned (or panicked) so far.
    pub done: usize,
    /// All items, when the input's length is known up front (an exact `size_hint`).
    pub total: Option<usize>,
}

/// A progress hook shared by the workers of one map.
type ProgressHook = std::sync::Arc<dyn Fn(Progress) + Send + Sync>;

/// Options of [`Executor::map`] (Python's `timeout`, `chunksize` and 3.14's
/// `buffersize`, plus an optional progress hook).
///
/// ```
/// use concur_core::futures::MapOptions;
/// use std::time::Duration;
/// let o = MapOptions::new().chunksize(4).buffersize(8).timeout(Duration::from_secs(5));
/// assert_eq!(o.get_chunksize(), 4);
/// ```
#[derive(Clone)]
pub struct MapOptions {
    timeout: Option<Duration>,
    chunksize: Option<usize>,
    buffersize: usize,
    progress: Option<ProgressHook>,
}

impl Default for MapOptions {
    fn default() -> Self {
        MapOptions {
            timeout: None,
            chunksize: None,
            buffersize: 64,
            progress: None,
        }
    }
}

impl std::fmt::Debug for MapOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapOptions")
            .field("timeout", &self.timeout)
            .field("chunksize", &self.chunksize)
            .field("buffersize", &self.buffersize)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl MapOptions {
    /// No timeout, `chunksize` 1 (for [`ThreadPool::map`](super::ThreadPool::map):
    /// Python's `len / (4 × workers)`), at most 64 chunks submitted ahead, no progress
    /// hook.
    ///
    /// ```
    /// assert_eq!(concur_core::futures::MapOptions::new().get_chunksize(), 1);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Total time for the whole map, counted from the `map` call.
    ///
    /// ```
    /// let _ = concur_core::futures::MapOptions::new().timeout(std::time::Duration::from_secs(1));
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Items per submitted task (at least 1).
    ///
    /// ```
    /// assert_eq!(concur_core::futures::MapOptions::new().chunksize(0).get_chunksize(), 1);
    /// ```
    pub fn chunksize(mut self, n: usize) -> Self {
        self.chunksize = Some(n.max(1));
        self
    }

    /// Calls `hook` each time an item's function has returned (or panicked), from the
    /// worker that ran it: [`Progress::done`] counts items so far and
    /// [`Progress::total`] is the input's length when known. Calls from several workers
    /// may overlap and arrive slightly out of order (each `done` value is seen once;
    /// the last item's call carries `done == total`). A hook that panics is reported
    /// through `tracing` and does not affect the items.
    ///
    /// ```
    /// use concur_core::futures::{Executor, MapOptions, ThreadPoolExecutor};
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let most = Arc::new(AtomicUsize::new(0));
    /// let m = most.clone();
    /// let opts = MapOptions::new().progress(move |p| {
    ///     assert_eq!(p.total, Some(10));
    ///     m.fetch_max(p.done, Ordering::SeqCst);
    /// });
    /// let pool = ThreadPoolExecutor::new(2);
    /// let n = pool.map(|x: u32| x, 0..10, opts).unwrap().count();
    /// assert_eq!((n, most.load(Ordering::SeqCst)), (10, 10));
    /// ```
    pub fn progress(mut self, hook: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(std::sync::Arc::new(hook));
        self
    }

    /// The read-ahead bound: at most this many chunks are submitted and not yet
    /// consumed (at least 1), so an endless input never piles up tasks.
    ///
    /// ```
    /// let _ = concur_core::futures::MapOptions::new().buffersize(2);
    /// ```
    pub fn buffersize(mut self, n: usize) -> Self {
        self.buffersize = n.max(1);
        self
    }

    /// The chunk size in effect.
    ///
    /// ```
    /// assert_eq!(concur_core::futures::MapOptions::new().chunksize(3).get_chunksize(), 3);
    /// ```
    pub fn get_chunksize(&self) -> usize {
        self.chunksize.unwrap_or(1)
    }

    /// The chunk size set, if any.
    pub(crate) fn get_chunksize_opt(&self) -> Option<usize> {
        self.chunksize
    }

    /// The chunk size in effect for an input of `len` items on `workers` workers: the
    /// one set, or else Python `Pool.map`'s `ceil(len / (4 × workers))`.
    pub(crate) fn chunksize_for(&self, len: Option<usize>, workers: usize) -> usize {
        self.chunksize
            .or_else(|| len.map(|n| n.div_ceil(4 * workers.max(1)).max(1)))
            .unwrap_or(1)
    }

    /// The read-ahead bound in chunks.
    pub(crate) fn buffer_size(&self) -> usize {
        self.buffersize
    }

    /// The timeout, if any.
    pub(crate) fn get_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The progress reporter of one map over `total` items (`None` without a hook).
    pub(crate) fn reporter(&self, total: Option<usize>) -> Option<Reporter> {
        self.progress.as_ref().map(|hook| Reporter {
            hook: hook.clone(),
            done: std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            total,
        })
    }
}

/// Counts finished items of one map and calls its progress hook.
#[derive(Clone)]
pub(crate) struct Reporter {
    hook: ProgressHook,
    done: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    total: Option<usize>,
}

impl Reporter {
    /// One more item finished.
    pub(crate) fn item_done(&self) {
        let done = self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let p = Progress {
            done,
            total: self.total,
        };
        if let Err(e) = TaskError::catch(|| (self.hook)(p)) {
            tracing::error!(error = %e, "exception in a map progress hook");
        }
    }
}

/// The exact length of an iterator, when its `size_hint` tells it.
pub(crate) fn exact_len(it: &impl Iterator) -> Option<usize> {
    match it.size_hint() {
        (lo, Some(hi)) if lo == hi => Some(lo),
        _ => None,
    }
}

/// Something that runs closures and hands back [`Future`]s: Python's
/// `concurrent.futures.Executor`. [`ThreadPoolExecutor`](super::ThreadPoolExecutor)
/// implements it; later tiers (process pools, remote clusters) implement it too.
///
/// ```
/// use concur_core::futures::{Executor, MapOptions, ThreadPoolExecutor};
///
/// fn total(e: &impl Executor) -> i32 {
///     e.map(|x: i32| x * x, 1..=3, MapOptions::new()).unwrap().map(|r| r.unwrap()).sum()
/// }
/// assert_eq!(total(&ThreadPoolExecutor::new(2)), 14);
/// ```
pub trait Executor {
    /// Schedules `f` and returns its future. Never waits for `f`; may block while a
    /// bounded submission queue is full.
    ///
    /// The future's value is whatever `f` returns (a `Result` stays a value); a panic
    /// becomes an [`is_panic`](TaskError::is_panic) error.
    ///
    /// # Errors
    /// [`is_shutdown`](TaskError::is_shutdown) after `shutdown`;
    /// [`is_broken_executor`](TaskError::is_broken_executor) if the executor broke.
    ///
    /// ```
    /// use concur_core::futures::{Executor, ThreadPoolExecutor};
    /// let pool = ThreadPoolExecutor::new(1);
    /// assert_eq!(pool.submit(|| "ok").unwrap().result().unwrap(), "ok");
    /// ```
    fn submit<F, T>(&self, f: F) -> Result<Future<T>, TaskError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static;

    /// Stops accepting work; with `cancel_futures`, cancels every task not yet started;
    /// with `wait`, blocks until all started (and, without `cancel_futures`, queued)
    /// tasks finished and the workers exited. Calling it again is harmless.
    ///
    /// # Errors
    /// [`is_self_wait`](TaskError::is_self_wait) if `wait` is true and this is called
    /// from one of the executor's own tasks (it is then shut down but not waited for).
    ///
    /// ```
    /// use concur_core::futures::{Executor, ThreadPoolExecutor};
    /// let pool = ThreadPoolExecutor::new(1);
    /// let f = pool.submit(|| 1).unwrap();
    /// pool.shutdown(true, false).unwrap();
    /// assert!(f.done());
    /// ```
    fn shutdown(&self, wait: bool, cancel_futures: bool) -> Result<(), TaskError>;

    /// Applies `f` to every item on the executor and yields the results in input
    /// order: Python's `Executor.map`, lazy and bounded. Up to `buffersize` chunks are
    /// submitted at this call; each `next` submits more as results are consumed, so the
    /// input is read only `buffersize` chunks ahead. Each item yields `Ok(value)` or
    /// the error of that item (its panic), and the iteration goes on after an error.
    /// Once the timeout (counted from this call) passes, one
    /// [`is_timeout`](TaskError::is_timeout) error is yielded and the rest cancelled.
    /// Dropping the iterator cancels the tasks not yet started.
    ///
    /// # Errors
    /// As [`submit`](Self::submit), for the first chunk; later submit errors are
    /// yielded in place of their items.
    ///
    /// ```
    /// use concur_core::futures::{Executor, MapOptions, ThreadPoolExecutor};
    /// let pool = ThreadPoolExecutor::new(2);
    /// let out: Vec<_> = pool
    ///     .map(|x: u64| x + 1, 0..5, MapOptions::new().chunksize(2))
    ///     .unwrap()
    ///     .collect::<Result<_, _>>()
    ///     .unwrap();
    /// assert_eq!(out, vec![1, 2, 3, 4, 5]);
    /// ```
    fn map<I, F, T>(
        &self,
        f: F,
        items: I,
        options: MapOptions,
    ) -> Result<Map<'_, Self, I::IntoIter, F, T>, TaskError>
    where
        Self: Sized,
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        let input = items.into_iter();
        let total = exact_len(&input);
        let mut m = Map {
            exec: self,
            f: Arc::new(f),
            reporter: options.reporter(total),
            chunksize: options.get_chunksize(),
            input,
            opts: options.clone(),
            deadline: options.timeout.and_then(crate::time::deadline_after),
            inflight: VecDeque::new(),
            current: VecDeque::new(),
            input_done: false,
            finished: false,
        };
        if let Some(e) = m.fill() {
            return Err(e);
        }
        Ok(m)
    }
}

type Chunk<T> = Vec<Result<T, TaskError>>;

/// Applies `f` to each item of a chunk, each panic caught at its item, reporting
/// progress per item.
pub(crate) fn run_chunk<A, T>(
    f: &(impl Fn(A) -> T + ?Sized),
    chunk: Vec<A>,
    reporter: Option<&Reporter>,
) -> Chunk<T> {
    chunk
        .into_iter()
        .map(|x| {
            let r = TaskError::catch(|| f(x));
            if let Some(rep) = reporter {
                rep.item_done();
            }
            r
        })
        .collect()
}

/// The lazy result iterator of [`Executor::map`]: `next` blocks until the next result
/// in input order is ready, submitting more work as it goes. Dropping it cancels the
/// tasks that have not started.
///
/// ```
/// use concur_core::futures::{Executor, MapOptions, ThreadPoolExecutor};
/// let pool = ThreadPoolExecutor::new(2);
/// let mut m = pool.map(|s: &str| s.len(), ["a", "bcd"], MapOptions::new()).unwrap();
/// assert_eq!(m.next().unwrap().unwrap(), 1);
/// assert_eq!(m.next().unwrap().unwrap(), 3);
/// assert!(m.next().is_none());
/// ```
pub struct Map<'a, E, I, F, T> {
    exec: &'a E,
    f: Arc<F>,
    reporter: Option<Reporter>,
    chunksize: usize,
    input: I,
    opts: MapOptions,
    deadline: Option<Instant>,
    inflight: VecDeque<(Future<Chunk<T>>, usize)>,
    current: VecDeque<Result<T, TaskError>>,
    input_done: bool,
    finished: bool,
}

impl<E, I, F, T> Map<'_, E, I, F, T>
where
    E: Executor,
    I: Iterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> T + Send + Sync + 'static,
    T: Send + 'static,
{
    /// Submits chunks until `buffersize` are in flight; returns a submit error.
    fn fill(&mut self) -> Option<TaskError> {
        while !self.input_done && self.inflight.len() < self.opts.buffersize {
            let chunk: Vec<I::Item> = self.input.by_ref().take(self.chunksize).collect();
            if chunk.is_empty() {
                self.input_done = true;
                break;
            }
            let n = chunk.len();
            let f = self.f.clone();
            let reporter = self.reporter.clone();
            let job = move || run_chunk(&*f, chunk, reporter.as_ref());
            match self.exec.submit(job) {
                Ok(fut) => self.inflight.push_back((fut, n)),
                Err(e) => {
                    self.input_done = true;
                    return Some(e);
                }
            }
        }
        None
    }

    /// `next` once `current` is empty: submits more chunks, waits for the oldest one
    /// in flight and yields its first result (or `None` at the end).
    #[inline(never)]
    fn next_chunk(&mut self) -> Option<Result<T, TaskError>> {
        loop {
            if let Some(r) = self.current.pop_front() {
                return Some(r);
            }
            if self.finished {
                return None;
            }
            if let Some(e) = self.fill() {
                self.current.push_back(Err(e));
            }
            let Some((fut, n)) = self.inflight.pop_front() else {
                if self.current.is_empty() {
                    self.finished = true;
                }
                continue;
            };
            match fut.take_deadline(self.deadline) {
                // An empty `current` takes the chunk's buffer as is (no copy).
                Ok(v) if self.current.is_empty() => self.current = VecDeque::from(v),
                Ok(v) => self.current.extend(v),
                Err(e) if e.is_timeout() => {
                    fut.cancel();
                    self.cancel_rest();
                    self.finished = true;
                    return Some(Err(e));
                }
                Err(e) => self.current.extend((0..n).map(|_| Err(e.clone()))),
            }
        }
    }
}

impl<E, I, F, T> Iterator for Map<'_, E, I, F, T>
where
    E: Executor,
    I: Iterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> T + Send + Sync + 'static,
    T: Send + 'static,
{
    type Item = Result<T, TaskError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        // The per-item path is one `pop_front`, small enough to inline into the caller's
        // loop; waiting for and unpacking the next chunk is out of line.
        match self.current.pop_front() {
            Some(r) => Some(r),
            None => self.next_chunk(),
        }
    }
}

impl<E, I, F, T> Map<'_, E, I, F, T> {
    fn cancel_rest(&mut self) {
        for (f, _) in self.inflight.drain(..) {
            f.cancel();
        }
    }
}

impl<E, I, F, T> Drop for Map<'_, E, I, F, T> {
    fn drop(&mut self) {
        self.cancel_rest();
    }
}
