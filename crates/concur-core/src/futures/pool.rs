//! [`ThreadPool`]: Python's `multiprocessing.pool.ThreadPool` (the `Pool` API, on
//! threads), layered over a [`ThreadPoolExecutor`] so it shares its workers, nested-wait
//! rules, fresh thread-locals per task and error delivery. The `Pool` forms themselves
//! are written once for the thread and the process pool, in `pool_core`
//! ([`PoolCore`]); this type states the thread tier's bounds (any `Send` closure) and
//! forwards.

use super::async_result::AsyncResult;
use super::error::TaskError;
use super::executor::{Executor, Map, MapOptions};
use super::pool_core::{PoolCore, StarArgs, UnorderedMap};
use super::thread_pool::ThreadPoolExecutor;
use std::fmt;

/// The iterator of [`ThreadPool::imap_unordered`]: the shared [`UnorderedMap`] over a
/// [`ThreadPoolExecutor`].
pub type IMapUnordered<'a, I, F, T> = UnorderedMap<'a, ThreadPoolExecutor, I, F, T>;

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
/// use concur::futures::ThreadPool;
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
    core: PoolCore<ThreadPoolExecutor>,
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("processes", &self.processes())
            .field("state", &self.core.state_name())
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
    /// let pool = concur::futures::ThreadPool::new(2);
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
    /// use concur::futures::{ThreadPool, ThreadPoolExecutor};
    /// let exec = ThreadPoolExecutor::builder().max_workers(2).thread_name_prefix("pool").build();
    /// let pool = ThreadPool::with_executor(exec);
    /// assert!(pool.apply(|| concur::thread::current_thread().name()).unwrap().starts_with("pool_"));
    /// ```
    pub fn with_executor(exec: ThreadPoolExecutor) -> Self {
        let workers = exec.max_workers();
        ThreadPool {
            core: PoolCore::new(exec, workers),
        }
    }

    /// The number of worker threads (Python's `pool._processes`).
    ///
    /// ```
    /// assert_eq!(concur::futures::ThreadPool::new(3).processes(), 3);
    /// ```
    pub fn processes(&self) -> usize {
        self.core.workers()
    }

    /// The executor underneath, for the `concurrent.futures` API on the same threads.
    ///
    /// ```
    /// use concur::futures::{Executor, ThreadPool};
    /// let pool = ThreadPool::new(1);
    /// assert_eq!(pool.executor().submit(|| 7).unwrap().result().unwrap(), 7);
    /// ```
    pub fn executor(&self) -> &ThreadPoolExecutor {
        self.core.executor()
    }

    pub(super) fn check_running(&self) -> Result<(), TaskError> {
        self.core.check_running()
    }

    /// Runs `f` on the pool and blocks for its value (Python's `apply`).
    ///
    /// # Errors
    /// `f`'s panic ([`is_panic`](TaskError::is_panic)); [`is_shutdown`](TaskError::is_shutdown)
    /// once the pool is closed or terminated; a broken pool.
    ///
    /// ```
    /// let pool = concur::futures::ThreadPool::new(1);
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
    /// let pool = concur::futures::ThreadPool::new(2);
    /// let r = pool.apply_async(|| "done").unwrap();
    /// assert_eq!(r.get_timeout(Duration::from_secs(5)).unwrap(), "done");
    /// assert!(r.ready() && r.successful() == Some(true));
    /// ```
    pub fn apply_async<F, T>(&self, f: F) -> Result<AsyncResult<T>, TaskError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.core.apply_async(f)
    }

    /// Applies `f` to every item and returns the values in input order (Python's
    /// `map`). Items go to the workers in chunks of `len / (4 × workers)` (rounded up),
    /// as in Python; an input whose length is not known up front is read to its end
    /// first to learn it (as Python does); see [`map_with`](Self::map_with) to choose
    /// the chunk size.
    ///
    /// # Errors
    /// The error of the first failing item by position (the rest are then cancelled
    /// if not started); as [`apply_async`](Self::apply_async).
    ///
    /// ```
    /// let pool = concur::futures::ThreadPool::new(2);
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
    /// use concur::futures::{MapOptions, ThreadPool};
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
        self.core.map_with(f, items, options)
    }

    /// Calls `f` with each item's fields as its arguments (Python's `starmap`): the
    /// items are tuples, `(a, b)` → `f(a, b)`, up to eight fields.
    ///
    /// # Errors
    /// As [`map`](Self::map).
    ///
    /// ```
    /// let pool = concur::futures::ThreadPool::new(2);
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
    /// let pool = concur::futures::ThreadPool::new(2);
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
    /// use concur::futures::{MapOptions, ThreadPool};
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
        self.core.map_async_with(f, items, options)
    }

    /// [`starmap`](Self::starmap), returning at once (Python's `starmap_async`).
    ///
    /// # Errors
    /// As [`map_async`](Self::map_async).
    ///
    /// ```
    /// let pool = concur::futures::ThreadPool::new(2);
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

    /// A lazy iterator of each item's result, in input order (Python's `imap`; the
    /// chunk size is chosen from the measured cost of an item, see
    /// [`MapOptions::chunksize`], where Python's is 1): the input is read a bounded
    /// number of chunks ahead of the
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
    /// let pool = concur::futures::ThreadPool::new(2);
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
    /// use concur::futures::{MapOptions, ThreadPool};
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
        self.core.imap_with(f, items, options)
    }

    /// Like [`imap`](Self::imap), but yields results as they complete (Python's
    /// `imap_unordered`); every item's result is yielded exactly once.
    ///
    /// # Errors
    /// As [`imap`](Self::imap).
    ///
    /// ```
    /// let pool = concur::futures::ThreadPool::new(2);
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
    /// use concur::futures::{MapOptions, ThreadPool};
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
        self.core.imap_unordered_with(f, items, options)
    }

    /// Stops taking work; what is queued still runs (Python's `close`). Then
    /// [`join`](Self::join) waits for it.
    ///
    /// ```
    /// let pool = concur::futures::ThreadPool::new(1);
    /// pool.close();
    /// assert!(pool.apply(|| 1).unwrap_err().is_shutdown());
    /// ```
    pub fn close(&self) {
        self.core.close();
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
    /// use concur::sync::Event;
    /// use std::time::Duration;
    /// let limit = Duration::from_secs(60);
    /// let pool = concur::futures::ThreadPool::new(1);
    /// let (started, release) = (Event::new(), Event::new());
    /// let (s, r) = (started.clone(), release.clone());
    /// // The one worker runs this until the queued task below is cancelled.
    /// let running = pool.apply_async(move || { s.set(); r.wait_timeout(limit) }).unwrap();
    /// assert!(started.wait_timeout(limit));
    /// let queued = pool.apply_async(|| 1).unwrap().into_future();
    /// let watch = queued.clone();
    /// let t = std::thread::spawn(move || { let _ = watch.exception(Some(limit)); release.set() });
    /// pool.terminate().unwrap(); // cancels `queued`, then waits for `running`
    /// assert!(running.get().unwrap());
    /// assert!(queued.result().unwrap_err().is_cancelled());
    /// t.join().unwrap();
    /// ```
    pub fn terminate(&self) -> Result<(), TaskError> {
        self.core.mark_terminated();
        self.core.executor().shutdown(true, true)
    }

    /// Waits for the workers to finish all queued work and exit (Python's `join`).
    ///
    /// # Errors
    /// [`is_invalid_state`](TaskError::is_invalid_state) if the pool is still running
    /// (call [`close`](Self::close) or [`terminate`](Self::terminate) first, as in
    /// Python); [`is_self_wait`](TaskError::is_self_wait) from a task of this pool.
    ///
    /// ```
    /// let pool = concur::futures::ThreadPool::new(1);
    /// assert!(pool.join().unwrap_err().is_invalid_state());
    /// let r = pool.apply_async(|| 5).unwrap();
    /// pool.close();
    /// pool.join().unwrap();
    /// assert!(r.ready());
    /// ```
    pub fn join(&self) -> Result<(), TaskError> {
        self.core.join()
    }
}
