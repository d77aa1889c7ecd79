//! [`ThreadPool`]: Python's `multiprocessing.pool.ThreadPool` (the `Pool` API, on
//! threads), layered over a [`ThreadPoolExecutor`] so it shares its workers, nested-wait
//! rules, fresh thread-locals per task and error delivery. The shapes follow CPython's
//! `Lib/multiprocessing/pool.py` (`ApplyResult`, `MapResult`, `IMapIterator`, the
//! `len / (4 × workers)` default chunk size); the input is read ahead a bounded number
//! of chunks instead of all at once.

use super::error::TaskError;
use super::executor::{Executor, Map, MapOptions, MapOptionsExt, Reporter, exact_len, run_chunk};
use super::future::{Future, Promise, blocking_on};
use super::thread_pool::ThreadPoolExecutor;
use crate::queue::SimpleQueue;
use crate::sync::Lock;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

const RUNNING: u8 = 0;
const CLOSED: u8 = 1;
const TERMINATED: u8 = 2;

/// A pool of worker threads with the `multiprocessing.pool` API: `apply`, `map`,
/// `imap`, `imap_unordered`, `starmap` and their `_async` forms, `close`, `terminate`,
/// `join` — Python's `multiprocessing.pool.ThreadPool`.
///
/// Errors are values: `map` returns the error of the first failing item (by position),
/// `imap` yields each item's `Result`, and a panic in a task carries its message and
/// location. A task may use the pool it runs on (nested `apply`/`map` never deadlock
/// it, whatever its size).
///
/// Unlike Python's `with Pool(..)`, which *terminates* the pool on exit and drops the
/// work still queued, dropping a `ThreadPool` closes it and waits for that work: nothing
/// submitted is lost. Call [`terminate`](Self::terminate) to cancel queued work.
///
/// ```
/// use concur_core::futures::ThreadPool;
///
/// let pool = ThreadPool::new(4);
/// assert_eq!(pool.map(|x: u64| x * x, 0..10).unwrap(), [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
/// assert_eq!(pool.apply(|| "hi").unwrap(), "hi");
/// let mut firsts: Vec<u64> = pool.imap_unordered(|x: u64| x + 1, 0..3).unwrap().map(Result::unwrap).collect();
/// firsts.sort();
/// assert_eq!(firsts, [1, 2, 3]);
/// pool.close();
/// pool.join().unwrap();
/// ```
pub struct ThreadPool {
    exec: ThreadPoolExecutor,
    state: AtomicU8,
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state.load(Ordering::Acquire) {
            RUNNING => "running",
            CLOSED => "closed",
            _ => "terminated",
        };
        f.debug_struct("ThreadPool")
            .field("processes", &self.exec.max_workers())
            .field("state", &state)
            .finish()
    }
}

impl Default for ThreadPool {
    /// A pool of one thread per CPU (Python's `ThreadPool()`).
    fn default() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

impl ThreadPool {
    /// A pool of `processes` worker threads (at least 1), started lazily.
    ///
    /// ```
    /// let pool = concur_core::futures::ThreadPool::new(2);
    /// assert_eq!(pool.processes(), 2);
    /// ```
    pub fn new(processes: usize) -> Self {
        Self::with_executor(ThreadPoolExecutor::new(processes))
    }

    /// A pool over an executor configured with [`ThreadPoolExecutor::builder`] (for an
    /// `initializer`, a thread name prefix, a bounded submission queue, ...). The pool
    /// owns that executor's lifetime from now on: `close`/`join`/`terminate` shut it
    /// down, for every clone.
    ///
    /// ```
    /// use concur_core::futures::{ThreadPool, ThreadPoolExecutor};
    /// let exec = ThreadPoolExecutor::builder().max_workers(2).thread_name_prefix("pool").build();
    /// let pool = ThreadPool::with_executor(exec);
    /// assert!(pool.apply(|| concur_core::thread::current_thread().name()).unwrap().starts_with("pool_"));
    /// ```
    pub fn with_executor(exec: ThreadPoolExecutor) -> Self {
        ThreadPool {
            exec,
            state: AtomicU8::new(RUNNING),
        }
    }

    /// The number of worker threads (Python's `pool._processes`).
    ///
    /// ```
    /// assert_eq!(concur_core::futures::ThreadPool::new(3).processes(), 3);
    /// ```
    pub fn processes(&self) -> usize {
        self.exec.max_workers()
    }

    /// The executor underneath, for the `concurrent.futures` API on the same threads.
    ///
    /// ```
    /// use concur_core::futures::{Executor, ThreadPool};
    /// let pool = ThreadPool::new(1);
    /// assert_eq!(pool.executor().submit(|| 7).unwrap().result().unwrap(), 7);
    /// ```
    pub fn executor(&self) -> &ThreadPoolExecutor {
        &self.exec
    }

    pub(super) fn check_running(&self) -> Result<(), TaskError> {
        if self.state.load(Ordering::Acquire) == RUNNING {
            Ok(())
        } else {
            Err(TaskError::shutdown())
        }
    }

    /// Runs `f` on the pool and blocks for its value (Python's `apply`).
    ///
    /// # Errors
    /// `f`'s panic ([`is_panic`](TaskError::is_panic)); [`is_shutdown`](TaskError::is_shutdown)
    /// once the pool is closed or terminated; a broken pool.
    ///
    /// ```
    /// let pool = concur_core::futures::ThreadPool::new(1);
    /// assert_eq!(pool.apply(|| 6 * 7).unwrap(), 42);
    /// assert!(pool.apply(|| -> u8 { panic!("no") }).unwrap_err().is_panic());
    /// ```
    pub fn apply<F, T>(&self, f: F) -> Result<T, TaskError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.apply_async(f)?.into_result()
    }

    /// Schedules `f` and returns at once with its [`AsyncResult`] (Python's
    /// `apply_async`; for its `callback`/`error_callback`, use
    /// [`AsyncResult::add_done_callback`]).
    ///
    /// # Errors
    /// [`is_shutdown`](TaskError::is_shutdown) once the pool is closed or terminated; a
    /// broken pool.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = concur_core::futures::ThreadPool::new(2);
    /// let r = pool.apply_async(|| "done").unwrap();
    /// assert_eq!(r.get_timeout(Duration::from_secs(5)).unwrap(), "done");
    /// assert!(r.ready() && r.successful() == Some(true));
    /// ```
    pub fn apply_async<F, T>(&self, f: F) -> Result<AsyncResult<T>, TaskError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.check_running()?;
        self.exec.submit(f).map(AsyncResult)
    }

    /// Applies `f` to every item and returns the values in input order (Python's
    /// `map`). Items go to the workers in chunks of `len / (4 × workers)` (rounded up)
    /// when the input's length is known, else one by one; see [`map_with`](Self::map_with)
    /// to choose.
    ///
    /// # Errors
    /// The error of the first failing item by position (the rest are then cancelled
    /// if not started); as [`apply_async`](Self::apply_async).
    ///
    /// ```
    /// let pool = concur_core::futures::ThreadPool::new(2);
    /// assert_eq!(pool.map(|s: &str| s.len(), ["a", "bb"]).unwrap(), [1, 2]);
    /// let e = pool.map(|x: i32| if x < 0 { panic!("negative: {x}") } else { x }, [1, -1, 2]).unwrap_err();
    /// assert_eq!(e.panic_message(), Some("negative: -1"));
    /// ```
    pub fn map<I, F, T>(&self, f: F, items: I) -> Result<Vec<T>, TaskError>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        self.map_with(f, items, MapOptions::new())
    }

    /// [`map`](Self::map) with a chunk size, timeout, read-ahead bound or progress hook
    /// ([`MapOptions`]).
    ///
    /// # Errors
    /// As `map`, plus an [`is_timeout`](TaskError::is_timeout) error once the timeout
    /// (counted from this call) passes.
    ///
    /// ```
    /// use concur_core::futures::{MapOptions, ThreadPool};
    /// let pool = ThreadPool::new(2);
    /// let v = pool.map_with(|x: u32| x + 1, 0..100, MapOptions::new().chunksize(7)).unwrap();
    /// assert_eq!(v.len(), 100);
    /// ```
    pub fn map_with<I, F, T>(
        &self,
        f: F,
        items: I,
        options: MapOptions,
    ) -> Result<Vec<T>, TaskError>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        let items = items.into_iter();
        let cs = options.chunksize_for(exact_len(&items), self.processes());
        let mut out = Vec::with_capacity(items.size_hint().0);
        for r in self.imap_with(f, items, options.chunksize(cs))? {
            out.push(r?);
        }
        Ok(out)
    }

    /// Calls `f` with each item's fields as its arguments (Python's `starmap`): the
    /// items are tuples, `(a, b)` → `f(a, b)`, up to eight fields.
    ///
    /// # Errors
    /// As [`map`](Self::map).
    ///
    /// ```
    /// let pool = concur_core::futures::ThreadPool::new(2);
    /// let v = pool.starmap(|a: i32, b: i32| a * b, [(1, 2), (3, 4)]).unwrap();
    /// assert_eq!(v, [2, 12]);
    /// ```
    pub fn starmap<I, F, T>(&self, f: F, items: I) -> Result<Vec<T>, TaskError>
    where
        I: IntoIterator,
        I::Item: StarArgs<F, Output = T> + Send + 'static,
        F: Send + Sync + 'static,
        T: Send + 'static,
    {
        self.map(move |args: I::Item| args.call(&f), items)
    }

    /// Like [`map`](Self::map), but returns at once with an [`AsyncResult`] of the whole
    /// list (Python's `map_async`). The input is read to its end now and every chunk
    /// queued, as Python does.
    ///
    /// # Errors
    /// As [`apply_async`](Self::apply_async); the items' errors arrive through the
    /// result (the first by position).
    ///
    /// ```
    /// let pool = concur_core::futures::ThreadPool::new(2);
    /// let r = pool.map_async(|x: u8| x * 2, vec![1, 2, 3]).unwrap();
    /// assert_eq!(r.get().unwrap(), [2, 4, 6]);
    /// ```
    pub fn map_async<I, F, T>(&self, f: F, items: I) -> Result<AsyncResult<Vec<T>>, TaskError>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        self.map_async_with(f, items, MapOptions::new())
    }

    /// [`map_async`](Self::map_async) with [`MapOptions`] (its chunk size and progress
    /// hook; the timeout and read-ahead bound do not apply: wait with
    /// [`AsyncResult::get_timeout`]).
    ///
    /// # Errors
    /// As `map_async`. If a submission fails part-way, the chunks already queued are
    /// cancelled.
    ///
    /// ```
    /// use concur_core::futures::{MapOptions, ThreadPool};
    /// let pool = ThreadPool::new(2);
    /// let r = pool.map_async_with(|x: u8| x, vec![5; 10], MapOptions::new().chunksize(3)).unwrap();
    /// assert_eq!(r.get().unwrap(), vec![5; 10]);
    /// ```
    pub fn map_async_with<I, F, T>(
        &self,
        f: F,
        items: I,
        options: MapOptions,
    ) -> Result<AsyncResult<Vec<T>>, TaskError>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        self.check_running()?;
        let items: Vec<I::Item> = items.into_iter().collect();
        let n = items.len();
        let cs = options.chunksize_for(Some(n), self.processes());
        let reporter = options.reporter(Some(n));
        let collect = MapCollector::new(n);
        let f = Arc::new(f);
        let mut items = items.into_iter();
        let mut futures = Vec::with_capacity(n.div_ceil(cs));
        let mut start = 0;
        while start < n {
            let chunk: Vec<I::Item> = items.by_ref().take(cs).collect();
            let len = chunk.len();
            let (f, rep, c) = (f.clone(), reporter.clone(), collect.clone());
            let job = move || c.fill(start, run_chunk(&*f, chunk, rep.as_ref()));
            match self.exec.submit(job) {
                Ok(fut) => {
                    let c = collect.clone();
                    fut.add_done_callback(move |fut| {
                        // The job fills its slots itself; a chunk that never ran
                        // (cancelled, broken pool) fails its slots here.
                        if let Some(e) = chunk_failure(fut) {
                            c.fill(start, (0..len).map(|_| Err(e.clone())).collect());
                        }
                    });
                    futures.push(fut);
                }
                Err(e) => {
                    for fut in &futures {
                        fut.cancel();
                    }
                    return Err(e);
                }
            }
            start += len;
        }
        Ok(AsyncResult(collect.future()))
    }

    /// [`starmap`](Self::starmap), returning at once (Python's `starmap_async`).
    ///
    /// # Errors
    /// As [`map_async`](Self::map_async).
    ///
    /// ```
    /// let pool = concur_core::futures::ThreadPool::new(2);
    /// let r = pool.starmap_async(|a: u8, b: u8| a + b, vec![(1, 2), (3, 4)]).unwrap();
    /// assert_eq!(r.get().unwrap(), [3, 7]);
    /// ```
    pub fn starmap_async<I, F, T>(&self, f: F, items: I) -> Result<AsyncResult<Vec<T>>, TaskError>
    where
        I: IntoIterator,
        I::Item: StarArgs<F, Output = T> + Send + 'static,
        F: Send + Sync + 'static,
        T: Send + 'static,
    {
        self.map_async(move |args: I::Item| args.call(&f), items)
    }

    /// A lazy iterator of each item's result, in input order (Python's `imap`, with
    /// `chunksize` 1): the input is read a bounded number of chunks ahead of the
    /// consumer, so an endless input is fine. Each element is `Ok(value)` or that item's
    /// error, and the iteration goes on after an error.
    ///
    /// Consume it before [`join`](Self::join): after `close` the iterator keeps
    /// submitting its remaining items, after `join` or `terminate` they fail with
    /// [`is_shutdown`](TaskError::is_shutdown) errors.
    ///
    /// # Errors
    /// As [`apply_async`](Self::apply_async), for the first chunk.
    ///
    /// ```
    /// let pool = concur_core::futures::ThreadPool::new(2);
    /// let firsts: Vec<u64> = pool.imap(|x: u64| x * 10, 1..).unwrap().take(3).map(Result::unwrap).collect();
    /// assert_eq!(firsts, [10, 20, 30]);
    /// ```
    pub fn imap<I, F, T>(
        &self,
        f: F,
        items: I,
    ) -> Result<Map<'_, ThreadPoolExecutor, I::IntoIter, F, T>, TaskError>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        self.imap_with(f, items, MapOptions::new())
    }

    /// [`imap`](Self::imap) with [`MapOptions`] (chunk size, timeout from this call,
    /// read-ahead bound, progress hook).
    ///
    /// # Errors
    /// As `imap`.
    ///
    /// ```
    /// use concur_core::futures::{MapOptions, ThreadPool};
    /// let pool = ThreadPool::new(2);
    /// let n = pool.imap_with(|x: u8| x, 0..50, MapOptions::new().chunksize(8).buffersize(2)).unwrap().count();
    /// assert_eq!(n, 50);
    /// ```
    pub fn imap_with<I, F, T>(
        &self,
        f: F,
        items: I,
        options: MapOptions,
    ) -> Result<Map<'_, ThreadPoolExecutor, I::IntoIter, F, T>, TaskError>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        self.check_running()?;
        self.exec.map(f, items, options)
    }

    /// Like [`imap`](Self::imap), but yields results as they complete (Python's
    /// `imap_unordered`); every item's result is yielded exactly once.
    ///
    /// # Errors
    /// As [`imap`](Self::imap).
    ///
    /// ```
    /// let pool = concur_core::futures::ThreadPool::new(2);
    /// let mut v: Vec<i32> = pool.imap_unordered(|x: i32| -x, 0..5).unwrap().map(Result::unwrap).collect();
    /// v.sort();
    /// assert_eq!(v, [-4, -3, -2, -1, 0]);
    /// ```
    pub fn imap_unordered<I, F, T>(
        &self,
        f: F,
        items: I,
    ) -> Result<IMapUnordered<'_, I::IntoIter, F, T>, TaskError>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        self.imap_unordered_with(f, items, MapOptions::new())
    }

    /// [`imap_unordered`](Self::imap_unordered) with [`MapOptions`].
    ///
    /// # Errors
    /// As `imap`.
    ///
    /// ```
    /// use concur_core::futures::{MapOptions, ThreadPool};
    /// let pool = ThreadPool::new(2);
    /// let n = pool.imap_unordered_with(|x: u8| x, 0..40, MapOptions::new().chunksize(4)).unwrap().count();
    /// assert_eq!(n, 40);
    /// ```
    pub fn imap_unordered_with<I, F, T>(
        &self,
        f: F,
        items: I,
        options: MapOptions,
    ) -> Result<IMapUnordered<'_, I::IntoIter, F, T>, TaskError>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        self.check_running()?;
        let input = items.into_iter();
        let mut it = IMapUnordered {
            pool: self,
            f: Arc::new(f),
            reporter: options.reporter(exact_len(&input)),
            chunksize: options.get_chunksize(),
            ahead: options.buffer_size(),
            deadline: options.get_timeout().and_then(crate::time::deadline_after),
            input,
            results: SimpleQueue::new(),
            inflight: VecDeque::new(),
            pending: 0,
            input_done: false,
            finished: false,
        };
        if let Some(e) = it.fill() {
            return Err(e);
        }
        Ok(it)
    }

    /// Stops taking work; what is queued still runs (Python's `close`). Then
    /// [`join`](Self::join) waits for it.
    ///
    /// ```
    /// let pool = concur_core::futures::ThreadPool::new(1);
    /// pool.close();
    /// assert!(pool.apply(|| 1).unwrap_err().is_shutdown());
    /// ```
    pub fn close(&self) {
        let _ = self
            .state
            .compare_exchange(RUNNING, CLOSED, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Stops taking work and cancels every task not yet started: their results fail
    /// with [`is_cancelled`](TaskError::is_cancelled) errors (Python's `terminate`,
    /// which leaves them pending forever). Threads cannot be killed, so tasks already
    /// running finish; this waits for them, unless called from one of the pool's own
    /// tasks.
    ///
    /// # Errors
    /// [`is_self_wait`](TaskError::is_self_wait) when called from a task of this pool
    /// (the pool is then terminated but not waited for).
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = concur_core::futures::ThreadPool::new(1);
    /// let slow = pool.apply_async(|| std::thread::sleep(Duration::from_millis(50))).unwrap();
    /// let queued = pool.apply_async(|| 1).unwrap();
    /// pool.terminate().unwrap();
    /// assert!(slow.get().is_ok() || slow.get().unwrap_err().is_cancelled());
    /// assert!(queued.get().unwrap_err().is_cancelled());
    /// ```
    pub fn terminate(&self) -> Result<(), TaskError> {
        self.state.store(TERMINATED, Ordering::Release);
        self.exec.shutdown(true, true)
    }

    /// Waits for the workers to finish all queued work and exit (Python's `join`).
    ///
    /// # Errors
    /// [`is_invalid_state`](TaskError::is_invalid_state) if the pool is still running
    /// (call [`close`](Self::close) or [`terminate`](Self::terminate) first, as in
    /// Python); [`is_self_wait`](TaskError::is_self_wait) from a task of this pool.
    ///
    /// ```
    /// let pool = concur_core::futures::ThreadPool::new(1);
    /// assert!(pool.join().unwrap_err().is_invalid_state());
    /// let r = pool.apply_async(|| 5).unwrap();
    /// pool.close();
    /// pool.join().unwrap();
    /// assert!(r.ready());
    /// ```
    pub fn join(&self) -> Result<(), TaskError> {
        if self.state.load(Ordering::Acquire) == RUNNING {
            return Err(TaskError::invalid_state(
                "the pool is still running: call close() or terminate() before join()",
            ));
        }
        self.exec.shutdown(true, false)
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.close();
        // From inside one of its own tasks the pool cannot wait for itself: it then
        // shuts down without waiting, and the queued work still runs.
        if self.exec.shutdown(true, false).is_err() {
            let _ = self.exec.shutdown(false, false);
        }
    }
}

/// The error of a chunk future that failed as a whole (it never ran: cancelled or a
/// broken pool).
fn chunk_failure<T>(fut: &Future<T>) -> Option<TaskError> {
    match fut.exception(Some(Duration::ZERO)) {
        Ok(e) => e,
        Err(e) => Some(e),
    }
}

// ---- map_async ------------------------------------------------------------------------

struct Collect<T> {
    slots: Vec<Option<T>>,
    first_error: Option<(usize, TaskError)>,
    left: usize,
}

/// Gathers the chunks of one `map_async` into their places and completes its future
/// when the last item arrives: CPython's `MapResult`, keeping the first error by
/// position rather than by time. Public for pools built on other executors (the
/// process pool's `map_async` uses it).
///
/// ```
/// use concur_core::futures::exec::MapCollector;
/// let c = MapCollector::new(3);
/// let f = c.future();
/// c.fill(2, vec![Ok(30)]);
/// c.fill(0, vec![Ok(10), Ok(20)]);
/// assert_eq!(f.result().unwrap(), [10, 20, 30]);
/// ```
pub struct MapCollector<T> {
    state: Lock<Collect<T>>,
    promise: Promise<Vec<T>>,
}

impl<T> fmt::Debug for MapCollector<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapCollector").finish_non_exhaustive()
    }
}

impl<T: Send + 'static> MapCollector<T> {
    /// A collector of `n` items (its future is done at once when `n` is 0).
    ///
    /// ```
    /// let c = concur_core::futures::exec::MapCollector::<u8>::new(0);
    /// assert!(c.future().result().unwrap().is_empty());
    /// ```
    pub fn new(n: usize) -> Arc<Self> {
        let c = Arc::new(MapCollector {
            state: Lock::with_value(Collect {
                slots: (0..n).map(|_| None).collect(),
                first_error: None,
                left: n,
            }),
            promise: Promise::new(),
        });
        c.promise.set_running();
        if n == 0 {
            c.promise.set_result(Vec::new());
        }
        c
    }

    /// The future of the whole list: its items in order, or the error of the first
    /// failed item by position.
    ///
    /// ```
    /// use concur_core::futures::{exec::MapCollector, TaskError};
    /// let c = MapCollector::<u8>::new(2);
    /// c.fill(1, vec![Err(TaskError::cancelled())]);
    /// c.fill(0, vec![Ok(1)]);
    /// assert!(c.future().result().unwrap_err().is_cancelled());
    /// ```
    pub fn future(&self) -> Future<Vec<T>> {
        self.promise.future()
    }

    /// The results of the items from `start` on (a finished chunk). Never blocks.
    ///
    /// # Panics
    /// If the results run past the `n` items of [`new`](Self::new).
    ///
    /// ```
    /// let c = concur_core::futures::exec::MapCollector::new(1);
    /// c.fill(0, vec![Ok('x')]);
    /// assert_eq!(c.future().result().unwrap(), ['x']);
    /// ```
    pub fn fill(&self, start: usize, results: Vec<Result<T, TaskError>>) {
        let mut g = self.state.acquire();
        let n = results.len();
        for (i, r) in results.into_iter().enumerate() {
            match r {
                Ok(v) => g.slots[start + i] = Some(v),
                Err(e) => {
                    if g.first_error.as_ref().is_none_or(|(at, _)| start + i < *at) {
                        g.first_error = Some((start + i, e));
                    }
                }
            }
        }
        g.left -= n;
        if g.left > 0 {
            return;
        }
        let outcome = match g.first_error.take() {
            Some((_, e)) => Err(e),
            None => Ok(g
                .slots
                .drain(..)
                .map(|v| v.expect("every slot filled"))
                .collect()),
        };
        drop(g);
        match outcome {
            Ok(v) => self.promise.set_result(v),
            Err(e) => self.promise.set_error(e),
        };
    }
}

// ---- imap_unordered ---------------------------------------------------------------------

/// The iterator of [`ThreadPool::imap_unordered`]: results in completion order, the
/// input read a bounded number of chunks ahead. Dropping it cancels the chunks not yet
/// started.
///
/// ```
/// let pool = concur_core::futures::ThreadPool::new(2);
/// let it = pool.imap_unordered(|x: u8| x, [1, 2]).unwrap();
/// assert_eq!(it.map(Result::unwrap).map(u32::from).sum::<u32>(), 3);
/// ```
pub struct IMapUnordered<'a, I, F, T> {
    pool: &'a ThreadPool,
    f: Arc<F>,
    reporter: Option<Reporter>,
    chunksize: usize,
    ahead: usize,
    deadline: Option<Instant>,
    input: I,
    results: SimpleQueue<Result<T, TaskError>>,
    inflight: VecDeque<Future<()>>,
    /// Items submitted whose results were not yet yielded.
    pending: usize,
    input_done: bool,
    finished: bool,
}

impl<I, F, T> fmt::Debug for IMapUnordered<'_, I, F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IMapUnordered")
            .field("pending", &self.pending)
            .field("input_done", &self.input_done)
            .finish()
    }
}

impl<I, F, T> IMapUnordered<'_, I, F, T>
where
    I: Iterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> T + Send + Sync + 'static,
    T: Send + 'static,
{
    /// Submits chunks while fewer than `ahead` chunks' worth of items are pending.
    fn fill(&mut self) -> Option<TaskError> {
        while !self.input_done && self.pending < self.ahead * self.chunksize {
            let chunk: Vec<I::Item> = self.input.by_ref().take(self.chunksize).collect();
            if chunk.is_empty() {
                self.input_done = true;
                break;
            }
            let n = chunk.len();
            let (f, rep, out) = (self.f.clone(), self.reporter.clone(), self.results.clone());
            let job = move || {
                for r in run_chunk(&*f, chunk, rep.as_ref()) {
                    out.put(r);
                }
            };
            match self.pool.exec.submit(job) {
                Ok(fut) => {
                    let out = self.results.clone();
                    fut.add_done_callback(move |fut| {
                        if let Some(e) = chunk_failure(fut) {
                            (0..n).for_each(|_| out.put(Err(e.clone())));
                        }
                    });
                    self.inflight.retain(|f| !f.done());
                    self.inflight.push_back(fut);
                    self.pending += n;
                }
                Err(e) => {
                    self.input_done = true;
                    return Some(e);
                }
            }
        }
        None
    }

    /// Waits for the next result (in completion order). On a worker of this very pool
    /// the pool lends a temporary worker meanwhile, so a pool of one cannot deadlock.
    fn wait_next(&mut self) -> Result<Result<T, TaskError>, TaskError> {
        let (results, deadline) = (&self.results, self.deadline);
        let got = blocking_on(
            self.inflight.iter().filter(|f| !f.done()),
            || match deadline {
                None => Some(results.get()),
                Some(d) => results.get_deadline(d),
            },
        );
        got.ok_or_else(|| {
            TaskError::timeout(format!(
                "imap_unordered timed out with {} results outstanding",
                self.pending
            ))
        })
    }

    fn cancel_rest(&mut self) {
        for f in self.inflight.drain(..) {
            f.cancel();
        }
    }
}

impl<I, F, T> Iterator for IMapUnordered<'_, I, F, T>
where
    I: Iterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> T + Send + Sync + 'static,
    T: Send + 'static,
{
    type Item = Result<T, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        if let Some(e) = self.fill() {
            self.finished = self.pending == 0;
            return Some(Err(e));
        }
        if self.pending == 0 {
            self.finished = true;
            return None;
        }
        match self.wait_next() {
            Ok(r) => {
                self.pending -= 1;
                Some(r)
            }
            Err(e) => {
                self.cancel_rest();
                self.finished = true;
                Some(Err(e))
            }
        }
    }
}

impl<I, F, T> Drop for IMapUnordered<'_, I, F, T> {
    fn drop(&mut self) {
        for f in self.inflight.drain(..) {
            f.cancel();
        }
    }
}

// ---- AsyncResult ------------------------------------------------------------------------

/// The pending result of [`ThreadPool::apply_async`] or [`ThreadPool::map_async`]:
/// Python's `AsyncResult` (`get`, `wait`, `ready`, `successful`), a thin view of a
/// [`Future`].
///
/// ```
/// let pool = concur_core::futures::ThreadPool::new(1);
/// let r = pool.apply_async(|| 2 + 2).unwrap();
/// r.wait();
/// assert_eq!(r.successful(), Some(true));
/// assert_eq!(r.get().unwrap(), 4);
/// ```
#[derive(Debug)]
pub struct AsyncResult<T>(Future<T>);

/// Wraps a future as an `AsyncResult` (for pools built on other executors, such as
/// the process pools).
///
/// ```
/// use concur_core::futures::{AsyncResult, Promise};
/// let p = Promise::new();
/// let r = AsyncResult::from(p.future());
/// p.set_result(7);
/// assert_eq!(r.get().unwrap(), 7);
/// ```
impl<T> From<Future<T>> for AsyncResult<T> {
    fn from(f: Future<T>) -> Self {
        AsyncResult(f)
    }
}

impl<T> AsyncResult<T> {
    /// True once the task finished, failed or was cancelled (Python's `ready`).
    ///
    /// ```
    /// let pool = concur_core::futures::ThreadPool::new(1);
    /// let r = pool.apply_async(|| ()).unwrap();
    /// r.wait();
    /// assert!(r.ready());
    /// ```
    pub fn ready(&self) -> bool {
        self.0.done()
    }

    /// `Some(true)` if it finished with a value, `Some(false)` if it failed, `None`
    /// while not ready (where Python raises `ValueError`).
    ///
    /// ```
    /// let pool = concur_core::futures::ThreadPool::new(1);
    /// let r = pool.apply_async(|| -> u8 { panic!("x") }).unwrap();
    /// r.wait();
    /// assert_eq!(r.successful(), Some(false));
    /// ```
    pub fn successful(&self) -> Option<bool> {
        if !self.0.done() {
            return None;
        }
        Some(matches!(self.0.exception(Some(Duration::ZERO)), Ok(None)))
    }

    /// Blocks until ready (Python's `wait()`); never fails.
    ///
    /// ```
    /// let pool = concur_core::futures::ThreadPool::new(1);
    /// let r = pool.apply_async(|| 1).unwrap();
    /// r.wait();
    /// assert!(r.ready());
    /// ```
    pub fn wait(&self) {
        let _ = self.0.wait_done(None);
    }

    /// Blocks until ready or `timeout` passes; true if ready (Python's
    /// `wait(timeout)`, which tells through `ready()`).
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = concur_core::futures::ThreadPool::new(1);
    /// let r = pool.apply_async(|| std::thread::sleep(Duration::from_millis(20))).unwrap();
    /// assert!(r.wait_timeout(Duration::from_secs(5)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(crate::time::deadline_after(timeout))
    }

    /// Blocks until ready or `deadline`; true if ready.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let pool = concur_core::futures::ThreadPool::new(1);
    /// let r = pool.apply_async(|| ()).unwrap();
    /// assert!(r.wait_deadline(Instant::now() + Duration::from_secs(5)));
    /// ```
    pub fn wait_deadline(&self, deadline: Instant) -> bool {
        self.wait_until(Some(deadline))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        let _ = self.0.wait_done(deadline);
        self.0.done()
    }

    /// Blocks until ready and moves the value out, for any `T`.
    ///
    /// # Errors
    /// The task's error (panic, cancellation, broken pool) or a self-wait.
    ///
    /// ```
    /// let pool = concur_core::futures::ThreadPool::new(1);
    /// let r = pool.apply_async(|| String::from("owned")).unwrap();
    /// assert_eq!(r.into_result().unwrap(), "owned");
    /// ```
    pub fn into_result(self) -> Result<T, TaskError> {
        self.0.into_result()
    }

    /// Calls `f` with the result once ready (at once if it is): Python's `callback` and
    /// `error_callback` in one; see [`Future::add_done_callback`].
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// let pool = concur_core::futures::ThreadPool::new(1);
    /// let seen = Arc::new(AtomicBool::new(false));
    /// let s = seen.clone();
    /// let r = pool.apply_async(|| 3).unwrap();
    /// r.add_done_callback(move |f| s.store(f.result().unwrap() == 3, Ordering::SeqCst));
    /// pool.close();
    /// pool.join().unwrap();
    /// assert!(seen.load(Ordering::SeqCst));
    /// ```
    pub fn add_done_callback(&self, f: impl FnOnce(&Future<T>) + Send + 'static) {
        self.0.add_done_callback(f);
    }

    /// The underlying future (for `as_completed`, `wait`, `.await`).
    ///
    /// ```
    /// let pool = concur_core::futures::ThreadPool::new(1);
    /// let f = pool.apply_async(|| 1).unwrap().into_future();
    /// assert_eq!(f.result().unwrap(), 1);
    /// ```
    pub fn into_future(self) -> Future<T> {
        self.0
    }
}

impl<T: Clone> AsyncResult<T> {
    /// Blocks until ready and returns (a clone of) the value (Python's `get()`).
    ///
    /// # Errors
    /// The task's error: its panic, cancellation (after `terminate`), a broken pool, or
    /// the first failing item of a `map_async`.
    ///
    /// ```
    /// let pool = concur_core::futures::ThreadPool::new(1);
    /// assert_eq!(pool.apply_async(|| 1).unwrap().get().unwrap(), 1);
    /// ```
    pub fn get(&self) -> Result<T, TaskError> {
        self.0.result()
    }

    /// [`get`](Self::get), giving up after `timeout` with an
    /// [`is_timeout`](TaskError::is_timeout) error (Python's `get(timeout)`).
    ///
    /// # Errors
    /// As `get`, plus the timeout.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = concur_core::futures::ThreadPool::new(1);
    /// let r = pool.apply_async(|| std::thread::sleep(Duration::from_millis(200))).unwrap();
    /// assert!(r.get_timeout(Duration::from_millis(1)).unwrap_err().is_timeout());
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, TaskError> {
        self.0.result_timeout(timeout)
    }

    /// [`get`](Self::get), giving up at `deadline`.
    ///
    /// # Errors
    /// As `get_timeout`.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let pool = concur_core::futures::ThreadPool::new(1);
    /// let deadline = Instant::now() + Duration::from_secs(30);
    /// assert_eq!(pool.apply_async(|| 'x').unwrap().get_deadline(deadline).unwrap(), 'x');
    /// ```
    pub fn get_deadline(&self, deadline: Instant) -> Result<T, TaskError> {
        self.0.result_deadline(deadline)
    }
}

// ---- starmap ----------------------------------------------------------------------------

/// A tuple of arguments that [`ThreadPool::starmap`] spreads over a call: `(a, b)`
/// calls `f(a, b)`. Implemented for tuples of one to eight fields.
///
/// ```
/// use concur_core::futures::StarArgs;
/// assert_eq!((2, 3).call(&|a: i32, b: i32| a + b), 5);
/// ```
pub trait StarArgs<F> {
    /// What `f` returns.
    type Output;
    /// Calls `f` with the fields as arguments.
    fn call(self, f: &F) -> Self::Output;
}

macro_rules! star_args {
    ($($t:ident $i:tt),+) => {
        impl<Func, Out, $($t),+> StarArgs<Func> for ($($t,)+)
        where
            Func: Fn($($t),+) -> Out,
        {
            type Output = Out;
            fn call(self, f: &Func) -> Out {
                f($(self.$i),+)
            }
        }
    };
}

star_args!(A 0);
star_args!(A 0, B 1);
star_args!(A 0, B 1, C 2);
star_args!(A 0, B 1, C 2, D 3);
star_args!(A 0, B 1, C 2, D 3, E 4);
star_args!(A 0, B 1, C 2, D 3, E 4, G 5);
star_args!(A 0, B 1, C 2, D 3, E 4, G 5, H 6);
star_args!(A 0, B 1, C 2, D 3, E 4, G 5, H 6, J 7);
