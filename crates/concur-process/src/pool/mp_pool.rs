//! [`ProcessPool`]: Python's `multiprocessing.Pool` (the `Pool` API on worker
//! processes), layered over a [`ProcessPoolExecutor`] so it shares its engine: workers
//! that survive crashes, per-task time limits, recycling, and the same [`Future`] as
//! every other pool.
//!
//! The API and its semantics mirror [`ThreadPool`](concur_core::futures::ThreadPool)
//! (itself shaped after CPython's `Lib/multiprocessing/pool.py`: `ApplyResult`,
//! `MapResult`, `IMapIterator`, the `len / (4 × workers)` default chunk size), with
//! functions and arguments as for [`Process`](crate::Process): the function captures
//! nothing, arguments and results are serde types.
//!
//! How the chunked forms reach the engine: a map chunk (with its progress hook) can
//! only be made by [`Executor::map`], so `map_async` and `imap_unordered` drive an
//! `Executor::map` over a private executor that forwards each chunk to the process pool
//! and hands back a stand-in future of its own: for `map_async` one already done (the
//! real chunk fills the collected list when it completes), for `imap_unordered` one
//! that is completed with *whichever* real chunk completes next, so the in-order
//! iterator yields chunks in completion order while keeping its read-ahead bound,
//! timeout and progress hook.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Instant;

use concur_core::futures::exec::{
    Chunk, ChunkProgress, MapChunk, MapCollector, MapOptionsExt, Runs,
};
use concur_core::futures::{AsyncResult, Executor, Future, Map, MapOptions, StarArgs, TaskError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::executor::ProcessPoolExecutor;

const RUNNING: u8 = 0;
const CLOSED: u8 = 1;
const TERMINATED: u8 = 2;

/// A pool of worker processes with the `multiprocessing.Pool` API: `apply`, `map`,
/// `imap`, `imap_unordered`, `starmap` and their `_async` forms, `close`, `terminate`,
/// `join`.
///
/// Functions are as for [`Process`](crate::Process): `f` captures nothing (a `fn` or a
/// non-capturing closure; a capturing closure does not compile) and takes one argument
/// (a tuple for several; [`starmap`](Self::starmap) spreads tuples over the
/// parameters); arguments and results are serde types.
///
/// Errors are values: `map` returns the error of the first failing item (by position),
/// `imap` yields each item's `Result`, and a panic in a task carries its message and
/// location. Beyond Python, whose pool is broken for good when a worker dies, a worker
/// that crashes fails only the items it held (with the cause: signal, exit status,
/// out of memory) and is replaced (see [`ProcessPoolExecutor`]).
///
/// Unlike Python's `with Pool(..)`, which *terminates* the pool on exit and drops the
/// work still queued, dropping a `ProcessPool` closes it and waits for that work:
/// nothing submitted is lost. Call [`terminate`](Self::terminate) to kill the workers.
///
/// ```
/// use concur_process::ProcessPool;
///
/// fn square(x: u64) -> u64 { x * x }
/// let pool = ProcessPool::new(2);
/// assert_eq!(pool.map(square, 0..5).unwrap(), [0, 1, 4, 9, 16]);
/// assert_eq!(pool.apply(|s: String| s.len(), "four".to_string()).unwrap(), 4);
/// let mut v: Vec<u64> = pool.imap_unordered(square, 1..4).unwrap().map(Result::unwrap).collect();
/// v.sort();
/// assert_eq!(v, [1, 4, 9]);
/// pool.close();
/// pool.join().unwrap();
/// ```
pub struct ProcessPool {
    exec: ProcessPoolExecutor,
    state: AtomicU8,
}

impl fmt::Debug for ProcessPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state.load(Ordering::Acquire) {
            RUNNING => "running",
            CLOSED => "closed",
            _ => "terminated",
        };
        f.debug_struct("ProcessPool")
            .field("processes", &self.exec.max_workers())
            .field("state", &state)
            .finish()
    }
}

impl Default for ProcessPool {
    /// A pool of one process per CPU (Python's `Pool()`).
    fn default() -> Self {
        Self::with_executor(ProcessPoolExecutor::default())
    }
}

impl ProcessPool {
    /// A pool of `processes` worker processes (at least 1), started when there is work
    /// for them. Never blocks.
    ///
    /// ```
    /// let pool = concur_process::ProcessPool::new(2);
    /// assert_eq!(pool.processes(), 2);
    /// ```
    pub fn new(processes: usize) -> Self {
        Self::with_executor(ProcessPoolExecutor::new(processes))
    }

    /// A pool over an executor configured with [`ProcessPoolExecutor::builder`]: for
    /// Python's `initializer`/`initargs` and `maxtasksperchild`, the start method, task
    /// time limits and memory limits. The pool owns that executor's lifetime from now
    /// on: `close`/`join`/`terminate` shut it down, for every clone. Never blocks.
    ///
    /// ```
    /// use concur_process::{ProcessPool, ProcessPoolExecutor};
    /// fn pid(_: ()) -> u32 { std::process::id() }
    /// let exec = ProcessPoolExecutor::builder().max_workers(1).max_tasks_per_child(1).build();
    /// let pool = ProcessPool::with_executor(exec);
    /// let (a, b) = (pool.apply(pid, ()).unwrap(), pool.apply(pid, ()).unwrap());
    /// assert_ne!(a, b); // a fresh worker for every task
    /// ```
    pub fn with_executor(exec: ProcessPoolExecutor) -> Self {
        ProcessPool {
            exec,
            state: AtomicU8::new(RUNNING),
        }
    }

    /// The number of worker processes (Python's `pool._processes`).
    ///
    /// ```
    /// assert_eq!(concur_process::ProcessPool::new(3).processes(), 3);
    /// ```
    pub fn processes(&self) -> usize {
        self.exec.max_workers()
    }

    /// The executor underneath, for the `concurrent.futures` API on the same workers
    /// (and its [`worker_pids`](ProcessPoolExecutor::worker_pids)).
    ///
    /// ```
    /// use concur_core::futures::Executor;
    /// let pool = concur_process::ProcessPool::new(1);
    /// assert_eq!(pool.executor().call(|x: u8| x + 1, 6).unwrap().result().unwrap(), 7);
    /// ```
    pub fn executor(&self) -> &ProcessPoolExecutor {
        &self.exec
    }

    fn check_running(&self) -> Result<(), TaskError> {
        if self.state.load(Ordering::Acquire) == RUNNING {
            Ok(())
        } else {
            Err(TaskError::shutdown())
        }
    }

    /// Runs `f(args)` in a worker and blocks for its value (Python's `apply`).
    ///
    /// # Errors
    /// `f`'s panic ([`is_panic`](TaskError::is_panic)); the worker's death
    /// ([`is_worker_died`](TaskError::is_worker_died)); a time limit; a value that cannot
    /// be (de)serialized; [`is_shutdown`](TaskError::is_shutdown) once the pool is closed
    /// or terminated; [`is_broken_executor`](TaskError::is_broken_executor) if the
    /// initializer failed.
    ///
    /// ```
    /// fn sqr(x: i64) -> i64 { x * x }
    /// let pool = concur_process::ProcessPool::new(1);
    /// assert_eq!(pool.apply(sqr, 5).unwrap(), 25);
    /// assert!(pool.apply(|_: ()| -> u8 { panic!("no") }, ()).unwrap_err().is_panic());
    /// ```
    pub fn apply<F, A, T>(&self, f: F, args: A) -> Result<T, TaskError>
    where
        F: Fn(A) -> T + Copy + 'static,
        A: Serialize + DeserializeOwned,
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        self.apply_async(f, args)?.into_result()
    }

    /// Schedules `f(args)` and returns at once with its [`AsyncResult`] (Python's
    /// `apply_async`; for its `callback`/`error_callback`, use
    /// [`AsyncResult::add_done_callback`]). Never blocks.
    ///
    /// # Errors
    /// [`is_shutdown`](TaskError::is_shutdown) once the pool is closed or terminated; a
    /// broken pool; an argument that cannot be serialized.
    ///
    /// ```
    /// use std::time::Duration;
    /// fn sqr(x: u32) -> u32 { x * x }
    /// let pool = concur_process::ProcessPool::new(2);
    /// let r = pool.apply_async(sqr, 7).unwrap();
    /// assert_eq!(r.get_timeout(Duration::from_secs(30)).unwrap(), 49);
    /// assert_eq!(r.successful(), Some(true));
    /// ```
    pub fn apply_async<F, A, T>(&self, f: F, args: A) -> Result<AsyncResult<T>, TaskError>
    where
        F: Fn(A) -> T + Copy + 'static,
        A: Serialize + DeserializeOwned,
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        self.check_running()?;
        self.exec.call(f, args).map(AsyncResult::from)
    }

    /// Applies `f` to every item and returns the values in input order (Python's
    /// `map`). Items go to the workers in chunks of `len / (4 × workers)` (rounded up),
    /// as in Python; an input whose length is not known up front is read to its end
    /// first to learn it (as Python does). Blocks until every item is done or one
    /// fails.
    ///
    /// # Errors
    /// The error of the first failing item by position (the chunks not started are
    /// then cancelled); as [`apply_async`](Self::apply_async).
    ///
    /// ```
    /// fn check(x: i32) -> i32 { if x < 0 { panic!("negative: {x}") } else { x } }
    /// let pool = concur_process::ProcessPool::new(2);
    /// assert_eq!(pool.map(check, [1, 2, 3]).unwrap(), [1, 2, 3]);
    /// let e = pool.map(check, [1, -1, 2, -2]).unwrap_err();
    /// assert_eq!(e.panic_message(), Some("negative: -1"));
    /// ```
    pub fn map<I, F, T>(&self, f: F, items: I) -> Result<Vec<T>, TaskError>
    where
        I: IntoIterator,
        I::Item: Serialize + DeserializeOwned,
        F: Fn(I::Item) -> T + Copy + 'static,
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        self.map_with(f, items, MapOptions::new())
    }

    /// [`map`](Self::map) with a chunk size, timeout (counted from this call),
    /// read-ahead bound or progress hook ([`MapOptions`]). Blocks as `map`.
    ///
    /// # Errors
    /// As `map`, plus an [`is_timeout`](TaskError::is_timeout) error once the timeout
    /// passes.
    ///
    /// ```
    /// use concur_core::futures::MapOptions;
    /// let pool = concur_process::ProcessPool::new(2);
    /// let v = pool.map_with(|x: u32| x + 1, 0..100, MapOptions::new().chunksize(20)).unwrap();
    /// assert_eq!(v, (1..101).collect::<Vec<_>>());
    /// ```
    pub fn map_with<I, F, T>(
        &self,
        f: F,
        items: I,
        options: MapOptions,
    ) -> Result<Vec<T>, TaskError>
    where
        I: IntoIterator,
        I::Item: Serialize + DeserializeOwned,
        F: Fn(I::Item) -> T + Copy + 'static,
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        let items = items.into_iter();
        match exact_len(&items) {
            Some(n) => self.collect_map(f, items, n, options),
            None => {
                let all: Vec<I::Item> = items.collect();
                let n = all.len();
                self.collect_map(f, all.into_iter(), n, options)
            }
        }
    }

    fn collect_map<I, F, T>(
        &self,
        f: F,
        items: I,
        n: usize,
        options: MapOptions,
    ) -> Result<Vec<T>, TaskError>
    where
        I: Iterator,
        I::Item: Serialize + DeserializeOwned,
        F: Fn(I::Item) -> T + Copy + 'static,
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        let cs = options.chunksize_for(Some(n), self.processes());
        let mut out = Vec::with_capacity(n);
        for r in self.imap_with(f, items, options.chunksize(cs))? {
            out.push(r?);
        }
        Ok(out)
    }

    /// Calls `f` with each item's fields as its arguments (Python's `starmap`): the
    /// items are tuples, `(a, b)` → `f(a, b)`, up to eight fields. Blocks as
    /// [`map`](Self::map).
    ///
    /// # Errors
    /// As [`map`](Self::map).
    ///
    /// ```
    /// fn mul(a: i32, b: i32) -> i32 { a * b }
    /// let pool = concur_process::ProcessPool::new(2);
    /// assert_eq!(pool.starmap(mul, [(1, 2), (3, 4)]).unwrap(), [2, 12]);
    /// ```
    pub fn starmap<I, F, T>(&self, f: F, items: I) -> Result<Vec<T>, TaskError>
    where
        I: IntoIterator,
        I::Item: StarArgs<F, Output = T> + Serialize + DeserializeOwned + 'static,
        F: Copy + 'static,
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        self.map(spread(f), items)
    }

    /// Like [`map`](Self::map), but returns at once with an [`AsyncResult`] of the whole
    /// list (Python's `map_async`). The input is read to its end now and every chunk
    /// queued, as Python does; the result is complete when every chunk is.
    ///
    /// # Errors
    /// As [`apply_async`](Self::apply_async); the items' errors arrive through the
    /// result (the first by position).
    ///
    /// ```
    /// fn sqr(x: u64) -> u64 { x * x }
    /// let pool = concur_process::ProcessPool::new(2);
    /// let r = pool.map_async(sqr, vec![1, 2, 3]).unwrap();
    /// assert_eq!(r.get().unwrap(), [1, 4, 9]);
    /// ```
    pub fn map_async<I, F, T>(&self, f: F, items: I) -> Result<AsyncResult<Vec<T>>, TaskError>
    where
        I: IntoIterator,
        I::Item: Serialize + DeserializeOwned,
        F: Fn(I::Item) -> T + Copy + 'static,
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        self.map_async_with(f, items, MapOptions::new())
    }

    /// [`map_async`](Self::map_async) with [`MapOptions`] (its chunk size and progress
    /// hook; the timeout and read-ahead bound do not apply: wait with
    /// [`AsyncResult::get_timeout`]). Never blocks on the workers.
    ///
    /// # Errors
    /// As `map_async`. If a submission fails part-way, the chunks already queued are
    /// cancelled.
    ///
    /// ```
    /// use concur_core::futures::MapOptions;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// let pool = concur_process::ProcessPool::new(2);
    /// let seen = Arc::new(AtomicUsize::new(0));
    /// let s = seen.clone();
    /// let opts = MapOptions::new().chunksize(3).progress(move |p| { s.fetch_max(p.done, Ordering::SeqCst); });
    /// let r = pool.map_async_with(|x: u8| x, vec![5; 10], opts).unwrap();
    /// assert_eq!(r.get().unwrap(), vec![5; 10]);
    /// assert_eq!(seen.load(Ordering::SeqCst), 10);
    /// ```
    pub fn map_async_with<I, F, T>(
        &self,
        f: F,
        items: I,
        options: MapOptions,
    ) -> Result<AsyncResult<Vec<T>>, TaskError>
    where
        I: IntoIterator,
        I::Item: Serialize + DeserializeOwned,
        F: Fn(I::Item) -> T + Copy + 'static,
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        self.check_running()?;
        let items: Vec<I::Item> = items.into_iter().collect();
        let n = items.len();
        let cs = options.chunksize_for(Some(n), self.processes());
        let collector = MapCollector::new(n);
        let progress = options.chunk_progress(Some(n));
        let f = Arc::new(f);
        let mut submitted: Vec<Future<Chunk<T>>> = Vec::with_capacity(n.div_ceil(cs));
        let mut items = items.into_iter();
        let mut start = 0;
        while start < n {
            let chunk: Vec<I::Item> = items.by_ref().take(cs).collect();
            let len = chunk.len();
            let job = MapChunk::new(f.clone(), chunk, progress.clone());
            match self.exec.submit_job(job) {
                Ok(fut) => {
                    let c = collector.clone();
                    fut.add_done_callback(move |f| c.fill(start, chunk_outcome(f, len)));
                    submitted.push(fut);
                }
                Err(e) => {
                    for fut in &submitted {
                        fut.cancel();
                    }
                    return Err(e);
                }
            }
            start += len;
        }
        Ok(AsyncResult::from(collector.future()))
    }

    /// [`starmap`](Self::starmap), returning at once (Python's `starmap_async`).
    ///
    /// # Errors
    /// As [`map_async`](Self::map_async).
    ///
    /// ```
    /// fn add(a: u8, b: u8) -> u8 { a + b }
    /// let pool = concur_process::ProcessPool::new(2);
    /// let r = pool.starmap_async(add, vec![(1, 2), (3, 4)]).unwrap();
    /// assert_eq!(r.get().unwrap(), [3, 7]);
    /// ```
    pub fn starmap_async<I, F, T>(&self, f: F, items: I) -> Result<AsyncResult<Vec<T>>, TaskError>
    where
        I: IntoIterator,
        I::Item: StarArgs<F, Output = T> + Serialize + DeserializeOwned + 'static,
        F: Copy + 'static,
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        self.map_async(spread(f), items)
    }

    /// A lazy iterator of each item's result, in input order (Python's `imap`, with
    /// `chunksize` 1): the input is read a bounded number of chunks ahead of the
    /// consumer, so an endless input is fine. Each element is `Ok(value)` or that item's
    /// error, and the iteration goes on after an error. `next` blocks until the next
    /// item in order is done.
    ///
    /// Consume it before [`join`](Self::join): after `close` the iterator keeps
    /// submitting its remaining items, after `join` or `terminate` they fail with
    /// [`is_shutdown`](TaskError::is_shutdown) errors. Dropping it cancels the chunks not
    /// yet started.
    ///
    /// # Errors
    /// As [`apply_async`](Self::apply_async), for the first chunks.
    ///
    /// ```
    /// fn times10(x: u64) -> u64 { x * 10 }
    /// let pool = concur_process::ProcessPool::new(2);
    /// let firsts: Vec<u64> = pool.imap(times10, 1..).unwrap().take(3).map(Result::unwrap).collect();
    /// assert_eq!(firsts, [10, 20, 30]);
    /// ```
    pub fn imap<I, F, T>(
        &self,
        f: F,
        items: I,
    ) -> Result<Map<'_, ProcessPoolExecutor, I::IntoIter, F, T>, TaskError>
    where
        I: IntoIterator,
        I::Item: Serialize + DeserializeOwned,
        F: Fn(I::Item) -> T + Copy + 'static,
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        self.imap_with(f, items, MapOptions::new())
    }

    /// [`imap`](Self::imap) with [`MapOptions`] (chunk size, timeout from this call,
    /// read-ahead bound in chunks, progress hook).
    ///
    /// # Errors
    /// As `imap`.
    ///
    /// ```
    /// use concur_core::futures::MapOptions;
    /// let pool = concur_process::ProcessPool::new(2);
    /// let opts = MapOptions::new().chunksize(8).buffersize(2);
    /// let v: Vec<u8> = pool.imap_with(|x: u8| x, 0..50, opts).unwrap().map(Result::unwrap).collect();
    /// assert_eq!(v, (0..50).collect::<Vec<_>>());
    /// ```
    pub fn imap_with<I, F, T>(
        &self,
        f: F,
        items: I,
        options: MapOptions,
    ) -> Result<Map<'_, ProcessPoolExecutor, I::IntoIter, F, T>, TaskError>
    where
        I: IntoIterator,
        I::Item: Serialize + DeserializeOwned,
        F: Fn(I::Item) -> T + Copy + 'static,
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        self.check_running()?;
        self.exec.map(f, items, options)
    }

    /// Like [`imap`](Self::imap), but yields results as they complete (Python's
    /// `imap_unordered`); every item's result is yielded exactly once. `next` blocks
    /// until some submitted item is done.
    ///
    /// # Errors
    /// As [`imap`](Self::imap).
    ///
    /// ```
    /// let pool = concur_process::ProcessPool::new(2);
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
        I::Item: Serialize + DeserializeOwned,
        F: Fn(I::Item) -> T + Copy + 'static,
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        self.imap_unordered_with(f, items, MapOptions::new())
    }

    /// [`imap_unordered`](Self::imap_unordered) with [`MapOptions`] (chunk size,
    /// timeout from this call, read-ahead bound in chunks, progress hook).
    ///
    /// # Errors
    /// As `imap`.
    ///
    /// ```
    /// use concur_core::futures::MapOptions;
    /// let pool = concur_process::ProcessPool::new(2);
    /// let opts = MapOptions::new().chunksize(4).buffersize(3);
    /// let mut v: Vec<u8> = pool.imap_unordered_with(|x: u8| x, 0..40, opts).unwrap().map(Result::unwrap).collect();
    /// v.sort();
    /// assert_eq!(v, (0..40).collect::<Vec<_>>());
    /// ```
    pub fn imap_unordered_with<I, F, T>(
        &self,
        f: F,
        items: I,
        options: MapOptions,
    ) -> Result<IMapUnordered<'_, I::IntoIter, F, T>, TaskError>
    where
        I: IntoIterator,
        I::Item: Serialize + DeserializeOwned,
        F: Fn(I::Item) -> T + Copy + 'static,
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        self.check_running()?;
        let input = items.into_iter();
        let total = exact_len(&input);
        let (tx, rx) = mpsc::channel();
        let mut it = IMapUnordered {
            pool: self,
            f: Arc::new(f),
            input,
            chunksize: options.get_chunksize(),
            ahead: options.buffer_size(),
            progress: options.chunk_progress(total),
            deadline: options
                .get_timeout()
                .and_then(concur_core::time::deadline_after),
            tx,
            rx,
            running: Vec::new(),
            in_flight: 0,
            current: VecDeque::new(),
            input_done: false,
            finished: false,
        };
        if let Some(e) = it.fill() {
            it.cancel_all();
            return Err(e);
        }
        Ok(it)
    }

    /// Stops taking work; what is queued still runs (Python's `close`). Then
    /// [`join`](Self::join) waits for it. Never blocks.
    ///
    /// ```
    /// let pool = concur_process::ProcessPool::new(1);
    /// pool.close();
    /// assert!(pool.apply(|x: u8| x, 1).unwrap_err().is_shutdown());
    /// ```
    pub fn close(&self) {
        let _ = self
            .state
            .compare_exchange(RUNNING, CLOSED, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Kills the workers at once (Python's `terminate`): tasks queued fail with
    /// [`is_cancelled`](TaskError::is_cancelled) errors (where Python leaves them
    /// pending forever), tasks running fail too. Blocks until the workers are reaped:
    /// none is left behind, running or zombie.
    ///
    /// # Errors
    /// [`is_self_wait`](TaskError::is_self_wait) from a done-callback of this pool's
    /// results (the pool is terminated, not waited for).
    ///
    /// ```
    /// fn nap(ms: u64) { std::thread::sleep(std::time::Duration::from_millis(ms)) }
    /// let pool = concur_process::ProcessPool::new(1);
    /// let r = pool.apply_async(nap, 60_000).unwrap();
    /// pool.terminate().unwrap();
    /// assert!(r.get().is_err());
    /// pool.join().unwrap();
    /// ```
    pub fn terminate(&self) -> Result<(), TaskError> {
        self.state.store(TERMINATED, Ordering::Release);
        self.exec.terminate()
    }

    /// Waits for the workers to finish all queued work and exit (Python's `join`).
    ///
    /// # Errors
    /// [`is_invalid_state`](TaskError::is_invalid_state) if the pool is still running
    /// (call [`close`](Self::close) or [`terminate`](Self::terminate) first, as in
    /// Python); [`is_self_wait`](TaskError::is_self_wait) from a done-callback of this
    /// pool's results.
    ///
    /// ```
    /// let pool = concur_process::ProcessPool::new(1);
    /// assert!(pool.join().unwrap_err().is_invalid_state());
    /// let r = pool.apply_async(|x: u8| x, 5).unwrap();
    /// pool.close();
    /// pool.join().unwrap();
    /// assert!(r.ready());
    /// ```
    pub fn join(&self) -> Result<(), TaskError> {
        if self.state.load(Ordering::Acquire) == RUNNING {
            return Err(still_running_error());
        }
        self.exec.shutdown(true, false)
    }
}

impl Drop for ProcessPool {
    fn drop(&mut self) {
        self.close();
        if self.exec.shutdown(true, false).is_err() {
            // From a done-callback the pool cannot wait for itself: it then shuts down
            // without waiting, and the queued work still runs.
            let _ = self.exec.shutdown(false, false);
        }
    }
}

fn still_running_error() -> TaskError {
    TaskError::invalid_state("the pool is still running: call close() or terminate() before join()")
}

fn exact_len(it: &impl Iterator) -> Option<usize> {
    match it.size_hint() {
        (lo, Some(hi)) if lo == hi => Some(lo),
        _ => None,
    }
}

/// Makes `f(a, b, ..)` a function of the tuple `(a, b, ..)`; zero-sized like `f`.
fn spread<F, S, T>(f: F) -> impl Fn(S) -> T + Copy + 'static
where
    F: Copy + 'static,
    S: StarArgs<F, Output = T> + 'static,
    T: 'static,
{
    move |args: S| args.call(&f)
}

/// A finished chunk's results, or its error repeated for each of its `n` items.
fn chunk_outcome<T>(fut: &Future<Chunk<T>>, n: usize) -> Chunk<T> {
    match fut.clone().into_result() {
        Ok(v) => v,
        Err(e) => (0..n).map(|_| Err(e.clone())).collect(),
    }
}

// ---- imap_unordered ---------------------------------------------------------------------

/// The iterator of [`ProcessPool::imap_unordered`]: results in completion order (a
/// chunk's items together), the input read a bounded number of chunks ahead. Each
/// element is `Ok(value)` or that item's error; every item's result comes exactly
/// once. `next` blocks until some submitted chunk is done (or the timeout of its
/// [`MapOptions`] passes: it then yields one [`is_timeout`](TaskError::is_timeout)
/// error and ends). Dropping it cancels the chunks not yet started.
///
/// ```
/// let pool = concur_process::ProcessPool::new(2);
/// let it = pool.imap_unordered(|x: u8| x, [1, 2]).unwrap();
/// assert_eq!(it.map(Result::unwrap).map(u32::from).sum::<u32>(), 3);
/// ```
pub struct IMapUnordered<'a, I, F, T> {
    pool: &'a ProcessPool,
    f: Arc<F>,
    input: I,
    chunksize: usize,
    ahead: usize,
    progress: ChunkProgress,
    deadline: Option<Instant>,
    /// Finished chunks arrive here, from their futures' done-callbacks.
    tx: mpsc::Sender<Chunk<T>>,
    rx: mpsc::Receiver<Chunk<T>>,
    running: Vec<Future<Chunk<T>>>,
    in_flight: usize,
    current: VecDeque<Result<T, TaskError>>,
    input_done: bool,
    finished: bool,
}

impl<I, F, T> fmt::Debug for IMapUnordered<'_, I, F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IMapUnordered")
            .field("chunks_in_flight", &self.in_flight)
            .field("buffered", &self.current.len())
            .finish_non_exhaustive()
    }
}

impl<I, F, T> IMapUnordered<'_, I, F, T>
where
    I: Iterator,
    I::Item: Serialize + DeserializeOwned,
    F: Fn(I::Item) -> T + Copy + 'static,
    T: Serialize + DeserializeOwned + Send + 'static,
{
    /// Submits chunks until `ahead` are in flight; returns a submit error.
    fn fill(&mut self) -> Option<TaskError> {
        while !self.input_done && self.in_flight < self.ahead {
            let chunk: Vec<I::Item> = self.input.by_ref().take(self.chunksize).collect();
            if chunk.is_empty() {
                self.input_done = true;
                break;
            }
            let n = chunk.len();
            let job = MapChunk::new(self.f.clone(), chunk, self.progress.clone());
            match self.pool.exec.submit_job(job) {
                Ok(fut) => {
                    let tx = self.tx.clone();
                    // A send fails only once the iterator is gone: nothing to do then.
                    fut.add_done_callback(move |f| drop(tx.send(chunk_outcome(f, n))));
                    self.running.retain(|f| !f.done());
                    self.running.push(fut);
                    self.in_flight += 1;
                }
                Err(e) => {
                    self.input_done = true;
                    return Some(e);
                }
            }
        }
        None
    }
}

impl<I, F, T> IMapUnordered<'_, I, F, T> {
    fn cancel_all(&mut self) {
        for f in self.running.drain(..) {
            f.cancel();
        }
    }
}

impl<I, F, T> Iterator for IMapUnordered<'_, I, F, T>
where
    I: Iterator,
    I::Item: Serialize + DeserializeOwned,
    F: Fn(I::Item) -> T + Copy + 'static,
    T: Serialize + DeserializeOwned + Send + 'static,
{
    type Item = Result<T, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(r) = self.current.pop_front() {
                return Some(r);
            }
            if self.finished {
                return None;
            }
            if let Some(e) = self.fill() {
                self.current.push_back(Err(e));
                continue;
            }
            if self.in_flight == 0 {
                self.finished = true;
                continue;
            }
            let got = match self.deadline {
                None => self
                    .rx
                    .recv()
                    .map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                Some(d) => self
                    .rx
                    .recv_timeout(d.saturating_duration_since(Instant::now())),
            };
            match got {
                Ok(chunk) => {
                    self.in_flight -= 1;
                    self.current.extend(chunk);
                }
                Err(_) => {
                    // The timeout passed (the sender side never disconnects: this
                    // iterator holds a sender).
                    self.cancel_all();
                    self.finished = true;
                    return Some(Err(TaskError::timeout(
                        "imap_unordered: the timeout passed before every item was done",
                    )));
                }
            }
        }
    }
}

impl<I, F, T> Drop for IMapUnordered<'_, I, F, T> {
    fn drop(&mut self) {
        self.cancel_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn still_running_error_is_invalid_state() {
        assert!(still_running_error().is_invalid_state());
    }
}
