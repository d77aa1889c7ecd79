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

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use concur_core::futures::{
    AsyncResult, Chunk, Executor, Future, Map, MapChunk, MapOptions, Promise, Runs, StarArgs,
    TaskError, ThreadPool,
};
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
        let cs = chunksize_for(&options, n, self.processes());
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
        let cs = chunksize_for(&options, n, self.processes());
        let collector = Collector::new(n);
        let feed = AsyncFeed {
            exec: &self.exec,
            collector: collector.clone(),
            chunksize: cs,
            len: n,
            next_start: Cell::new(0),
            submitted: RefCell::new(Vec::with_capacity(n.div_ceil(cs))),
        };
        // Every chunk is queued by `map` itself (its read-ahead covers them all); the
        // iterator, which only holds finished stand-ins, is then dropped.
        let opts = options.chunksize(cs).buffersize(n.div_ceil(cs).max(1));
        match feed.map(f, items, opts) {
            Ok(_) => Ok(AsyncResult::from(collector.future())),
            Err(e) => {
                for fut in feed.submitted.borrow().iter() {
                    fut.cancel();
                }
                Err(e)
            }
        }
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
        let pulled = Arc::new(AtomicUsize::new(0));
        let sink = Arc::new(Sink::<T> {
            exec: self.exec.clone(),
            pulled: pulled.clone(),
            slots: Arc::new(Mutex::new(VecDeque::new())),
            own: Mutex::new(Own {
                submitted: 0,
                running: Vec::new(),
            }),
        });
        let input = Counting {
            inner: items.into_iter(),
            pulled,
        };
        let map = {
            let _current = Current::enter(sink.clone());
            UNORDERED.map(f, input, options)
        };
        match map {
            Ok(map) => Ok(IMapUnordered {
                map,
                sink,
                _pool: PhantomData,
            }),
            Err(e) => {
                sink.cancel_all();
                Err(e)
            }
        }
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

/// The error of `join` on a running pool. `TaskError`'s `invalid_state` constructor is
/// private to `concur-core`, so it is obtained from the thread pool's own `join`, which
/// fails the same way for the same reason (a lazy `ThreadPool` starts no thread, so
/// making and dropping one costs no more than two allocations).
fn still_running_error() -> TaskError {
    match ThreadPool::new(1).join() {
        Err(e) => e,
        Ok(()) => {
            TaskError::user("the pool is still running: call close() or terminate() before join()")
        }
    }
}

/// The exact length of an iterator, if its size hint tells it.
fn exact_len(it: &impl Iterator) -> Option<usize> {
    match it.size_hint() {
        (lo, Some(hi)) if lo == hi => Some(lo),
        _ => None,
    }
}

/// The chunk size of a `map` of `len` items: the one the options name, or Python's
/// default `ceil(len / (4 × workers))` (at least 1), as `MapOptions::chunksize_for` in
/// `concur-core` computes it.
fn chunksize_for(options: &MapOptions, len: usize, workers: usize) -> usize {
    explicit_chunksize(options).unwrap_or_else(|| len.div_ceil(4 * workers.max(1)).max(1))
}

/// The chunk size `options` names, or `None` if it names none. `MapOptions` only shows
/// it publicly through `get_chunksize`, which reads an unset size as 1; whether one was
/// set is visible in its `Debug` form (`chunksize: None`), which a unit test below pins.
fn explicit_chunksize(options: &MapOptions) -> Option<usize> {
    if format!("{options:?}").contains("chunksize: None") {
        None
    } else {
        Some(options.get_chunksize())
    }
}

/// `f` taking one tuple instead of its parameters: zero-sized when `f` is, so it can be
/// sent to a worker like `f`.
fn spread<F, S, T>(f: F) -> impl Fn(S) -> T + Copy + 'static
where
    F: Copy + 'static,
    S: StarArgs<F, Output = T> + 'static,
    T: 'static,
{
    move |args: S| args.call(&f)
}

/// The outcome of a chunk whose future finished: its items' results, or the chunk's
/// error (cancelled, broken pool, worker died) for each of its `n` items.
fn chunk_outcome<T>(fut: &Future<Chunk<T>>, n: usize) -> Chunk<T> {
    match fut.clone().into_result() {
        Ok(v) => v,
        Err(e) => (0..n).map(|_| Err(e.clone())).collect(),
    }
}

/// A future already finished with `value`.
fn ready<T>(value: T) -> Future<T> {
    let p = Promise::new();
    p.set_result(value);
    p.future()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---- map_async ------------------------------------------------------------------------

struct Collect<T> {
    slots: Vec<Option<T>>,
    first_error: Option<(usize, TaskError)>,
    left: usize,
}

/// Gathers the chunks of one `map_async` into their places and completes its promise
/// when the last item arrives (CPython's `MapResult`, keeping the first error by
/// position, as `ThreadPool` does).
struct Collector<T> {
    state: Mutex<Collect<T>>,
    promise: Promise<Vec<T>>,
}

impl<T: Send + 'static> Collector<T> {
    fn new(n: usize) -> Arc<Self> {
        let c = Arc::new(Collector {
            state: Mutex::new(Collect {
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

    fn future(&self) -> Future<Vec<T>> {
        self.promise.future()
    }

    fn fill(&self, start: usize, results: Chunk<T>) {
        let mut g = lock(&self.state);
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
            None => Ok(g.slots.drain(..).flatten().collect()),
        };
        drop(g);
        match outcome {
            Ok(v) => self.promise.set_result(v),
            Err(e) => self.promise.set_error(e),
        };
    }
}

/// The executor `map_async` drives `Executor::map` over: forwards each chunk to the
/// process pool, where the chunk fills its places in the collector when it completes.
struct AsyncFeed<'p, T> {
    exec: &'p ProcessPoolExecutor,
    collector: Arc<Collector<T>>,
    chunksize: usize,
    len: usize,
    next_start: Cell<usize>,
    submitted: RefCell<Vec<Future<Chunk<T>>>>,
}

impl<F, A, T> Runs<MapChunk<F, A>> for AsyncFeed<'_, T>
where
    F: Fn(A) -> T + Copy + 'static,
    A: Serialize + DeserializeOwned,
    T: Serialize + DeserializeOwned + Send + 'static,
{
    type Output = Chunk<T>;

    fn submit_job(&self, chunk: MapChunk<F, A>) -> Result<Future<Chunk<T>>, TaskError> {
        // Chunks are cut in order from a list of known length.
        let start = self.next_start.get();
        let n = self.chunksize.min(self.len - start);
        let fut = self.exec.submit(chunk)?;
        self.next_start.set(start + n);
        let c = self.collector.clone();
        fut.add_done_callback(move |f| c.fill(start, chunk_outcome(f, n)));
        self.submitted.borrow_mut().push(fut);
        Ok(ready(Vec::new()))
    }
}

impl<T> Executor for AsyncFeed<'_, T> {
    fn shutdown(&self, _wait: bool, _cancel_futures: bool) -> Result<(), TaskError> {
        Ok(())
    }
}

// ---- imap_unordered ---------------------------------------------------------------------

/// The state of one `imap_unordered`.
struct Sink<T> {
    exec: ProcessPoolExecutor,
    /// Items read from the input so far (the size of each chunk follows from it).
    pulled: Arc<AtomicUsize>,
    /// The stand-in futures handed to the ordered iterator and not completed yet, in
    /// the order it waits for them: each chunk that completes fills the first one.
    slots: Arc<Mutex<VecDeque<Promise<Chunk<T>>>>>,
    own: Mutex<Own<T>>,
}

struct Own<T> {
    /// Items submitted so far.
    submitted: usize,
    /// The real chunks not yet finished (to cancel them when the iterator goes).
    running: Vec<Future<Chunk<T>>>,
}

impl<T> Sink<T> {
    fn cancel_all(&self) {
        for f in lock(&self.own).running.drain(..) {
            f.cancel();
        }
    }
}

thread_local! {
    /// The `Sink` of the `imap_unordered` whose ordered iterator this thread is driving:
    /// that iterator submits chunks only from within its `next` (and its creation), on
    /// the consumer's thread, where `IMapUnordered` sets this.
    static CURRENT: RefCell<Option<Arc<dyn Any + Send + Sync>>> = const { RefCell::new(None) };
}

/// Sets [`CURRENT`] for a scope, restoring what was there (nested maps) on drop.
struct Current(Option<Arc<dyn Any + Send + Sync>>);

impl Current {
    fn enter(sink: Arc<dyn Any + Send + Sync>) -> Current {
        Current(CURRENT.with(|c| c.replace(Some(sink))))
    }
}

impl Drop for Current {
    fn drop(&mut self) {
        let prev = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = prev);
    }
}

/// The executor `imap_unordered` drives `Executor::map` over (zero-sized: its state is
/// the thread's [`CURRENT`] sink).
struct Unordered;

static UNORDERED: Unordered = Unordered;

impl<F, A, T> Runs<MapChunk<F, A>> for Unordered
where
    F: Fn(A) -> T + Copy + 'static,
    A: Serialize + DeserializeOwned,
    T: Serialize + DeserializeOwned + Send + 'static,
{
    type Output = Chunk<T>;

    fn submit_job(&self, chunk: MapChunk<F, A>) -> Result<Future<Chunk<T>>, TaskError> {
        let sink = CURRENT
            .with(|c| c.borrow().clone())
            .and_then(|s| s.downcast::<Sink<T>>().ok())
            .ok_or_else(|| {
                TaskError::broken_executor("imap_unordered: chunk submitted outside its iterator")
            })?;
        let mut own = lock(&sink.own);
        let pulled = sink.pulled.load(Ordering::Relaxed);
        let n = pulled - own.submitted;
        let slot = Promise::new();
        let stand_in = slot.future();
        // The slot is queued before the chunk can complete, so a completion always
        // finds one.
        lock(&sink.slots).push_back(slot);
        let fut = match sink.exec.submit(chunk) {
            Ok(f) => f,
            Err(e) => {
                lock(&sink.slots).pop_back();
                return Err(e);
            }
        };
        own.submitted = pulled;
        own.running.retain(|f| !f.done());
        own.running.push(fut.clone());
        drop(own);
        let slots = sink.slots.clone();
        fut.add_done_callback(move |f| {
            let results = chunk_outcome(f, n);
            let first = lock(&slots).pop_front();
            if let Some(slot) = first {
                // False if the iterator went away (cancelled its stand-ins): the
                // results are then dropped.
                slot.set_result(results);
            }
        });
        Ok(stand_in)
    }
}

impl Executor for Unordered {
    fn shutdown(&self, _wait: bool, _cancel_futures: bool) -> Result<(), TaskError> {
        Ok(())
    }
}

/// An input that counts the items read from it.
struct Counting<I> {
    inner: I,
    pulled: Arc<AtomicUsize>,
}

impl<I: Iterator> Iterator for Counting<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let x = self.inner.next()?;
        self.pulled.fetch_add(1, Ordering::Relaxed);
        Some(x)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

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
    map: Map<'static, Unordered, Counting<I>, F, T>,
    sink: Arc<Sink<T>>,
    _pool: PhantomData<&'a ProcessPool>,
}

impl<I, F, T> fmt::Debug for IMapUnordered<'_, I, F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let own = lock(&self.sink.own);
        f.debug_struct("IMapUnordered")
            .field("submitted", &own.submitted)
            .field("running_chunks", &own.running.len())
            .finish()
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
        let _current = Current::enter(self.sink.clone());
        self.map.next()
    }
}

impl<I, F, T> Drop for IMapUnordered<'_, I, F, T> {
    fn drop(&mut self) {
        self.sink.cancel_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_chunksize_tells_unset_from_one() {
        assert_eq!(explicit_chunksize(&MapOptions::new()), None);
        assert_eq!(explicit_chunksize(&MapOptions::new().chunksize(1)), Some(1));
        assert_eq!(explicit_chunksize(&MapOptions::new().chunksize(7)), Some(7));
        let with_hook = MapOptions::new().progress(|_| {}).chunksize(3);
        assert_eq!(explicit_chunksize(&with_hook), Some(3));
    }

    #[test]
    fn default_chunksize_is_pythons() {
        // CPython: chunksize, extra = divmod(len, 4 * workers); if extra: chunksize += 1
        assert_eq!(chunksize_for(&MapOptions::new(), 0, 4), 1);
        assert_eq!(chunksize_for(&MapOptions::new(), 100, 4), 7);
        assert_eq!(chunksize_for(&MapOptions::new(), 16, 4), 1);
        assert_eq!(chunksize_for(&MapOptions::new(), 17, 4), 2);
        assert_eq!(chunksize_for(&MapOptions::new().chunksize(5), 100, 4), 5);
    }

    #[test]
    fn still_running_error_is_invalid_state() {
        assert!(still_running_error().is_invalid_state());
    }
}
