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
//! The `Pool` forms themselves are written once for the thread and the process pool,
//! in `concur::futures::exec::PoolCore`; this type states the process tier's
//! bounds and forwards.

use std::fmt;

use concur_core::futures::exec::{Call, MapOptionsExt, PoolCore};
use concur_core::futures::{AsyncResult, Map, MapOptions, StarArgs, TaskError, UnorderedMap};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::executor::ProcessPoolExecutor;

/// The iterator of [`ProcessPool::imap_unordered`]: the thread tier's
/// [`UnorderedMap`] over a [`ProcessPoolExecutor`] — results in completion order (a
/// chunk's items together), the input read a bounded number of chunks ahead.
///
/// ```
/// let pool = concur::process::ProcessPool::new(2);
/// let it = pool.imap_unordered(|x: u8| x, [1, 2]).unwrap();
/// assert_eq!(it.map(Result::unwrap).map(u32::from).sum::<u32>(), 3);
/// ```
pub type IMapUnordered<'a, I, F, T> = UnorderedMap<'a, ProcessPoolExecutor, I, F, T>;

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
/// use concur::process::ProcessPool;
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
    core: PoolCore<ProcessPoolExecutor>,
}

impl fmt::Debug for ProcessPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessPool")
            .field("processes", &self.processes())
            .field("state", &self.core.state_name())
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
    /// let pool = concur::process::ProcessPool::new(2);
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
    /// use concur::process::{ProcessPool, ProcessPoolExecutor};
    /// fn pid(_: ()) -> u32 { std::process::id() }
    /// let exec = ProcessPoolExecutor::builder().max_workers(1).max_tasks_per_child(1).build();
    /// let pool = ProcessPool::with_executor(exec);
    /// let (a, b) = (pool.apply(pid, ()).unwrap(), pool.apply(pid, ()).unwrap());
    /// assert_ne!(a, b); // a fresh worker for every task
    /// ```
    pub fn with_executor(exec: ProcessPoolExecutor) -> Self {
        let workers = exec.max_workers();
        ProcessPool {
            core: PoolCore::new(exec, workers),
        }
    }

    /// The number of worker processes (Python's `pool._processes`).
    ///
    /// ```
    /// assert_eq!(concur::process::ProcessPool::new(3).processes(), 3);
    /// ```
    pub fn processes(&self) -> usize {
        self.core.workers()
    }

    /// The executor underneath, for the `concurrent.futures` API on the same workers
    /// (and its [`worker_pids`](ProcessPoolExecutor::worker_pids)).
    ///
    /// ```
    /// use concur::futures::Executor;
    /// let pool = concur::process::ProcessPool::new(1);
    /// assert_eq!(pool.executor().call(|x: u8| x + 1, 6).unwrap().result().unwrap(), 7);
    /// ```
    pub fn executor(&self) -> &ProcessPoolExecutor {
        self.core.executor()
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
    /// let pool = concur::process::ProcessPool::new(1);
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
    /// let pool = concur::process::ProcessPool::new(2);
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
        self.core.apply_async(Call::new(f, args))
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
    /// let pool = concur::process::ProcessPool::new(2);
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
    /// use concur::futures::MapOptions;
    /// let pool = concur::process::ProcessPool::new(2);
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
        let (items, options) = self.capped(items, options);
        self.core.map_with(f, items, options)
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
    /// let pool = concur::process::ProcessPool::new(2);
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
    /// let pool = concur::process::ProcessPool::new(2);
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
    /// use concur::futures::MapOptions;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// let pool = concur::process::ProcessPool::new(2);
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
        let (items, options) = self.capped(items, options);
        self.core.map_async_with(f, items, options)
    }

    /// The input and options of a `map`: without a chunk size of the caller's, Python's
    /// `len / (4 × workers)`, at most [`MAX_DEFAULT_CHUNK`] items. Large chunks cost
    /// more than they save: each is a frame encoded, sent, decoded and answered whole,
    /// and buffers beyond the connection's kept size are fresh memory every time (at
    /// 10⁷ items, 1.25 M-item chunks faulted in ~115 bytes per item). Capped, the
    /// buffers are reused from chunk to chunk and the cost per item stays flat with N.
    fn capped<I: IntoIterator>(
        &self,
        items: I,
        options: MapOptions,
    ) -> (KnownLen<I::IntoIter>, MapOptions) {
        let it = items.into_iter();
        if options.get_chunksize_opt().is_some() {
            return (KnownLen::Lazy(it), options);
        }
        let (it, n) = match it.size_hint() {
            (lo, Some(hi)) if lo == hi => (KnownLen::Lazy(it), lo),
            _ => {
                let all: Vec<_> = it.collect();
                let n = all.len();
                (KnownLen::Collected(all.into_iter()), n)
            }
        };
        let cs = options.chunksize_for(Some(n), self.processes());
        (it, options.chunksize(cs.min(MAX_DEFAULT_CHUNK)))
    }

    /// [`starmap`](Self::starmap), returning at once (Python's `starmap_async`).
    ///
    /// # Errors
    /// As [`map_async`](Self::map_async).
    ///
    /// ```
    /// fn add(a: u8, b: u8) -> u8 { a + b }
    /// let pool = concur::process::ProcessPool::new(2);
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
    /// let pool = concur::process::ProcessPool::new(2);
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
    /// use concur::futures::MapOptions;
    /// let pool = concur::process::ProcessPool::new(2);
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
        self.core.imap_with(f, items, options)
    }

    /// Like [`imap`](Self::imap), but yields results as they complete (Python's
    /// `imap_unordered`); every item's result is yielded exactly once. `next` blocks
    /// until some submitted item is done.
    ///
    /// # Errors
    /// As [`imap`](Self::imap).
    ///
    /// ```
    /// let pool = concur::process::ProcessPool::new(2);
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
    /// use concur::futures::MapOptions;
    /// let pool = concur::process::ProcessPool::new(2);
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
        self.core.imap_unordered_with(f, items, options)
    }

    /// Stops taking work; what is queued still runs (Python's `close`). Then
    /// [`join`](Self::join) waits for it. Never blocks.
    ///
    /// ```
    /// let pool = concur::process::ProcessPool::new(1);
    /// pool.close();
    /// assert!(pool.apply(|x: u8| x, 1).unwrap_err().is_shutdown());
    /// ```
    pub fn close(&self) {
        self.core.close();
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
    /// let pool = concur::process::ProcessPool::new(1);
    /// let r = pool.apply_async(nap, 60_000).unwrap();
    /// pool.terminate().unwrap();
    /// assert!(r.get().is_err());
    /// pool.join().unwrap();
    /// ```
    pub fn terminate(&self) -> Result<(), TaskError> {
        self.core.mark_terminated();
        self.core.executor().terminate()
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
    /// let pool = concur::process::ProcessPool::new(1);
    /// assert!(pool.join().unwrap_err().is_invalid_state());
    /// let r = pool.apply_async(|x: u8| x, 5).unwrap();
    /// pool.close();
    /// pool.join().unwrap();
    /// assert!(r.ready());
    /// ```
    pub fn join(&self) -> Result<(), TaskError> {
        self.core.join()
    }
}

/// The most items in a chunk of a `map` without a chunk size of the caller's: frames of
/// small items stay well under the connection's kept buffer (1 MiB), and the
/// dispatcher's cost per chunk (tens of µs) is a few ns per item.
pub(crate) const MAX_DEFAULT_CHUNK: usize = 16_384;

/// A map's input, its length known: the caller's iterator when it is exact-size, or the
/// items collected.
enum KnownLen<I: Iterator> {
    Lazy(I),
    Collected(std::vec::IntoIter<I::Item>),
}

impl<I: Iterator> Iterator for KnownLen<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        match self {
            KnownLen::Lazy(i) => i.next(),
            KnownLen::Collected(i) => i.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            KnownLen::Lazy(i) => i.size_hint(),
            KnownLen::Collected(i) => i.size_hint(),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_map_chunks_are_capped_and_a_given_size_is_kept() {
        let pool = ProcessPool::new(2);
        let chunk = |items: Vec<u64>, o: MapOptions| {
            let (it, o) = pool.capped(items, o);
            (it.count(), o.get_chunksize_opt())
        };
        // Python's len / (4 × workers) below the cap...
        assert_eq!(
            chunk(vec![0; 10_000], MapOptions::new()),
            (10_000, Some(1_250))
        );
        // ...capped above it (10⁷ items would be 1.25 M-item chunks).
        let (it, o) = pool.capped(0..10_000_000u64, MapOptions::new());
        assert_eq!(o.get_chunksize_opt(), Some(MAX_DEFAULT_CHUNK));
        assert_eq!(it.size_hint(), (10_000_000, Some(10_000_000)));
        // An input of unknown length is collected, then chunked the same way.
        let (it, o) = pool.capped((0..1_000_000u64).filter(|_| true), MapOptions::new());
        assert_eq!(o.get_chunksize_opt(), Some(MAX_DEFAULT_CHUNK));
        assert_eq!(it.size_hint(), (1_000_000, Some(1_000_000)));
        // The caller's chunk size stands, however large.
        let given = MapOptions::new().chunksize(1 << 20);
        assert_eq!(chunk(vec![0; 10], given), (10, Some(1 << 20)));
    }

    #[test]
    fn still_running_error_is_invalid_state() {
        // Joining a running pool is refused (nothing starts: no task was given).
        assert!(ProcessPool::new(1).join().unwrap_err().is_invalid_state());
    }
}
