//! The [`Executor`] trait and its lazy, bounded [`Map`] iterator.

use super::error::TaskError;
use super::future::Future;
use crate::shim::Arc;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use super::progress::Progress;

/// A progress hook shared by the workers of one map.
type ProgressHook = std::sync::Arc<dyn Fn(Progress) + Send + Sync>;

/// Options of [`Executor::map`] (Python's `timeout`, `chunksize` and 3.14's
/// `buffersize`, plus an optional progress hook).
///
/// ```
/// use concur::futures::MapOptions;
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
    /// No timeout, the chunk size chosen automatically (see
    /// [`chunksize`](Self::chunksize); for [`ThreadPool::map`](super::ThreadPool::map):
    /// Python's `len / (4 × workers)`), at most 64 chunks submitted ahead, no progress
    /// hook.
    ///
    /// ```
    /// assert_eq!(concur::futures::MapOptions::new().get_chunksize(), 1);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Total time for the whole map, counted from the `map` call. Without a
    /// [`chunksize`](Self::chunksize), a map with a timeout runs one item per task, so
    /// the timeout falls on the first item really late.
    ///
    /// ```
    /// let _ = concur::futures::MapOptions::new().timeout(std::time::Duration::from_secs(1));
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Items per submitted task (at least 1), fixed for the whole map.
    ///
    /// Unset (the default), [`Executor::map`] chooses it and adapts it to the measured
    /// cost of an item: the first chunk holds one item, and each later chunk is sized
    /// to take about 100 µs at the cost measured so far (growing at most fourfold from
    /// one chunk to the next, at most 8,192 items, and smaller near the end of an
    /// input of known length so the last chunks spread over the workers). Slow items
    /// thus stay one per task, while cheap items travel in chunks large enough that
    /// the cost of a task is paid once per thousands of them. An automatically chunked
    /// map also reads at most 32,768 items ahead, besides
    /// [`buffersize`](Self::buffersize) chunks, so its memory stays bounded.
    ///
    /// `chunksize(1)` is Python's `Executor.map` default, one task per item: the form
    /// for items whose cost varies a lot, or when each item should start as soon as a
    /// worker is free. It is also what a map with a [`timeout`](Self::timeout) and no
    /// chunk size uses: a chunk hands its results back when its last item is done, so
    /// chunking would let a cheap item wait behind slow ones and take their timeout.
    ///
    /// ```
    /// assert_eq!(concur::futures::MapOptions::new().chunksize(0).get_chunksize(), 1);
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
    /// use concur::futures::{Executor, MapOptions, ThreadPoolExecutor};
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
    /// let _ = concur::futures::MapOptions::new().buffersize(2);
    /// ```
    pub fn buffersize(mut self, n: usize) -> Self {
        self.buffersize = n.max(1);
        self
    }

    /// The chunk size set, or 1 (where automatic chunking starts from) when unset.
    ///
    /// ```
    /// assert_eq!(concur::futures::MapOptions::new().chunksize(3).get_chunksize(), 3);
    /// ```
    pub fn get_chunksize(&self) -> usize {
        self.chunksize.unwrap_or(1)
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

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::MapOptions {}
}

/// What a pool that chunks a map itself reads off the map's [`MapOptions`] (an
/// executor implementor's trait, see [`exec`](super::exec); sealed).
pub trait MapOptionsExt: sealed::Sealed {
    /// The chunk size set, if any (`None`: the caller's default).
    ///
    /// ```
    /// use concur::futures::{exec::MapOptionsExt, MapOptions};
    /// assert_eq!(MapOptions::new().get_chunksize_opt(), None);
    /// assert_eq!(MapOptions::new().chunksize(8).get_chunksize_opt(), Some(8));
    /// ```
    fn get_chunksize_opt(&self) -> Option<usize>;

    /// The chunk size in effect for an input of `len` items on `workers` workers: the
    /// one set, or else Python `Pool.map`'s `ceil(len / (4 × workers))` (1 when the
    /// length is unknown).
    ///
    /// ```
    /// use concur::futures::{exec::MapOptionsExt, MapOptions};
    /// assert_eq!(MapOptions::new().chunksize_for(Some(100), 2), 13);
    /// assert_eq!(MapOptions::new().chunksize(5).chunksize_for(Some(100), 2), 5);
    /// ```
    fn chunksize_for(&self, len: Option<usize>, workers: usize) -> usize;

    /// The read-ahead bound in chunks.
    ///
    /// ```
    /// use concur::futures::exec::MapOptionsExt;
    /// assert_eq!(concur::futures::MapOptions::new().buffersize(3).buffer_size(), 3);
    /// ```
    fn buffer_size(&self) -> usize;

    /// The timeout, if any.
    ///
    /// ```
    /// use std::time::Duration;
    /// use concur::futures::exec::MapOptionsExt;
    /// let o = concur::futures::MapOptions::new().timeout(Duration::from_secs(2));
    /// assert_eq!(o.get_timeout(), Some(Duration::from_secs(2)));
    /// ```
    fn get_timeout(&self) -> Option<Duration>;

    /// The progress counter of one map over `total` items (when known), to hand to
    /// the [`MapChunk`]s of pools that chunk a map themselves.
    ///
    /// ```
    /// use concur::futures::{exec::MapOptionsExt, MapOptions};
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// let seen = Arc::new(AtomicUsize::new(0));
    /// let s = seen.clone();
    /// let p = MapOptions::new().progress(move |p| { s.store(p.done, Ordering::SeqCst); }).chunk_progress(Some(4));
    /// p.items_done(3);
    /// assert_eq!(seen.load(Ordering::SeqCst), 3);
    /// ```
    fn chunk_progress(&self, total: Option<usize>) -> ChunkProgress;
}

impl MapOptionsExt for MapOptions {
    fn get_chunksize_opt(&self) -> Option<usize> {
        self.chunksize
    }

    fn chunksize_for(&self, len: Option<usize>, workers: usize) -> usize {
        self.chunksize
            .or_else(|| len.map(|n| n.div_ceil(4 * workers.max(1)).max(1)))
            .unwrap_or(1)
    }

    fn buffer_size(&self) -> usize {
        self.buffersize
    }

    fn get_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    fn chunk_progress(&self, total: Option<usize>) -> ChunkProgress {
        ChunkProgress {
            reporter: self.reporter(total),
            timer: None,
        }
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

/// How an executor runs one form of task `J`, and what the task yields.
///
/// Each executor implements it for the task forms it can run, which is how one
/// [`Executor`] trait covers threads and processes: a
/// [`ThreadPoolExecutor`](super::ThreadPoolExecutor) runs any `Send` closure, a
/// [`Call`] and a [`MapChunk`]; a process pool runs the same forms when the function
/// captures nothing and the arguments and results are serializable. Call it through
/// [`Executor::submit`], [`Executor::call`] and [`Executor::map`].
///
/// ```
/// use concur::futures::exec::{Call, Runs};
/// use concur::futures::ThreadPoolExecutor;
///
/// // Generic over any executor that can run `double(x)`:
/// fn double_on<E: Runs<Call<fn(u32) -> u32, u32>, Output = u32>>(e: &E) -> u32 {
///     fn double(x: u32) -> u32 { x * 2 }
///     e.submit_job(Call::new(double as fn(u32) -> u32, 21)).unwrap().result().unwrap()
/// }
/// assert_eq!(double_on(&ThreadPoolExecutor::new(1)), 42);
/// ```
pub trait Runs<J> {
    /// The value the task produces.
    type Output;

    /// Schedules `job` and returns its future (what [`Executor::submit`] calls).
    ///
    /// # Errors
    /// As [`Executor::submit`].
    fn submit_job(&self, job: J) -> Result<Future<Self::Output>, TaskError>;
}

/// A function with its argument, as one task: Python's `submit(fn, *args)`.
/// [`Executor::call`] makes one. On a process pool the function must capture nothing
/// and `A` must be serializable; on threads any `FnOnce(A) -> T` will do.
///
/// ```
/// use concur::futures::exec::Call;
/// let c = Call::new(|x: u8| x + 1, 1u8);
/// let (f, a) = c.into_parts();
/// assert_eq!(f(a), 2);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Call<F, A> {
    f: F,
    args: A,
}

impl<F, A> Call<F, A> {
    /// The task `f(args)`.
    ///
    /// ```
    /// let _ = concur::futures::exec::Call::new(|s: String| s.len(), String::from("ab"));
    /// ```
    pub fn new(f: F, args: A) -> Self {
        Call { f, args }
    }

    /// The function and the argument.
    ///
    /// ```
    /// let (f, a) = concur::futures::exec::Call::new(|x: i32| -x, 3).into_parts();
    /// assert_eq!(f(a), -3);
    /// ```
    pub fn into_parts(self) -> (F, A) {
        (self.f, self.args)
    }
}

/// One chunk of an [`Executor::map`]: the function, a run of consecutive items, and
/// the map's progress counter. Executors run it with [`run`](MapChunk::run) (in this
/// process) or take it apart with [`into_parts`](MapChunk::into_parts) (to run the
/// items elsewhere and report with [`ChunkProgress::items_done`]).
///
/// ```
/// use concur::futures::{Executor, MapOptions, ThreadPoolExecutor};
/// // `map` makes the chunks; a chunk is only seen by executors.
/// let pool = ThreadPoolExecutor::new(1);
/// assert_eq!(pool.map(|x: u8| x, [1, 2], MapOptions::new()).unwrap().count(), 2);
/// ```
pub struct MapChunk<F, A> {
    f: Arc<F>,
    items: Vec<A>,
    progress: ChunkProgress,
}

impl<F, A> std::fmt::Debug for MapChunk<F, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapChunk")
            .field("items", &self.items.len())
            .finish_non_exhaustive()
    }
}

/// The progress counter of a map, handed to whoever runs one of its chunks; for a
/// map whose chunk size is chosen automatically, also where the time each chunk took
/// is reported ([`record_run`](Self::record_run)).
#[derive(Clone, Default)]
pub struct ChunkProgress {
    reporter: Option<Reporter>,
    timer: Option<Arc<ChunkTimer>>,
}

impl std::fmt::Debug for ChunkProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkProgress")
            .field("hook", &self.reporter.is_some())
            .field("timed", &self.timer.is_some())
            .finish()
    }
}

/// What the workers of one automatically chunked map measured: the time spent in the
/// function and the items it covered, summed over the chunks run so far.
#[derive(Default)]
pub(crate) struct ChunkTimer {
    nanos: AtomicU64,
    items: AtomicU64,
}

impl ChunkTimer {
    fn record(&self, items: usize, took: Duration) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        // Relaxed: the two sums are an estimate read by the map's caller; a reader
        // that sees one addition without the other is off by one chunk, no more.
        self.nanos.fetch_add(ns, Ordering::Relaxed);
        self.items.fetch_add(items as u64, Ordering::Relaxed);
    }

    /// `(nanoseconds, items)` so far.
    fn load(&self) -> (u64, u64) {
        (
            self.nanos.load(Ordering::Relaxed),
            self.items.load(Ordering::Relaxed),
        )
    }
}

impl ChunkProgress {
    /// Reports `n` more items of the map done (calls its progress hook once per item;
    /// nothing without a hook).
    ///
    /// ```
    /// concur::futures::exec::ChunkProgress::default().items_done(3);
    /// ```
    pub fn items_done(&self, n: usize) {
        if let Some(r) = &self.reporter {
            for _ in 0..n {
                r.item_done();
            }
        }
    }

    /// Reports that a chunk of `items` items took `took` to run, for a map that sizes
    /// its chunks from the measured cost of an item (its default, see
    /// [`MapOptions::chunksize`]). [`MapChunk::run`] reports by itself; an executor
    /// that runs the items elsewhere may report what it measured there. Without such
    /// reports the map estimates the cost from the pace at which results come back.
    /// Nothing happens for a map with a fixed chunk size.
    ///
    /// ```
    /// use std::time::Duration;
    /// concur::futures::exec::ChunkProgress::default().record_run(16, Duration::from_micros(5));
    /// ```
    pub fn record_run(&self, items: usize, took: Duration) {
        if let Some(t) = &self.timer {
            t.record(items, took);
        }
    }
}

impl<F, A> MapChunk<F, A> {
    /// A chunk of `items` for `f` (shared by the chunks of one map), counting on
    /// `progress` (see [`MapOptions::chunk_progress`]): for pools that chunk a map
    /// themselves and submit the chunks with [`Runs::submit_job`].
    ///
    /// ```
    /// use concur::futures::exec::{ChunkProgress, MapChunk};
    /// use std::sync::Arc;
    /// let c = MapChunk::new(Arc::new(|x: u8| x + 1), vec![1, 2], ChunkProgress::default());
    /// assert_eq!(c.run().into_iter().map(Result::unwrap).collect::<Vec<_>>(), [2, 3]);
    /// ```
    pub fn new(f: Arc<F>, items: Vec<A>, progress: ChunkProgress) -> Self {
        MapChunk { f, items, progress }
    }

    /// The function (shared by the map's chunks), the items, and the progress counter.
    ///
    /// ```
    /// use concur::futures::exec::{ChunkProgress, MapChunk};
    /// use std::sync::Arc;
    /// let (f, items, _progress) = MapChunk::new(Arc::new(|x: u8| x * 2), vec![1, 2], ChunkProgress::default()).into_parts();
    /// assert_eq!(items.into_iter().map(|x| f(x)).collect::<Vec<_>>(), [2, 4]);
    /// ```
    pub fn into_parts(self) -> (Arc<F>, Vec<A>, ChunkProgress) {
        (self.f, self.items, self.progress)
    }

    /// Runs the chunk here: applies the function to each item in order, each panic
    /// caught at its item, reporting progress per item.
    ///
    /// ```
    /// use concur::futures::{Executor, MapOptions, ThreadPoolExecutor};
    /// let pool = ThreadPoolExecutor::new(1);
    /// let v: Vec<_> = pool.map(|x: u8| 10 / x, [5, 0, 2], MapOptions::new()).unwrap().collect();
    /// assert!(v[1].as_ref().unwrap_err().is_panic());
    /// ```
    pub fn run<T>(self) -> Vec<Result<T, TaskError>>
    where
        F: Fn(A) -> T,
    {
        let (n, timer) = (self.items.len(), self.progress.timer.as_ref());
        let begin = timer.map(|_| Instant::now());
        let out = run_chunk(&*self.f, self.items, self.progress.reporter.as_ref());
        if let (Some(t), Some(b)) = (timer, begin) {
            t.record(n, b.elapsed());
        }
        out
    }
}

/// Something that runs tasks and hands back [`Future`]s: Python's
/// `concurrent.futures.Executor`. [`ThreadPoolExecutor`](super::ThreadPoolExecutor)
/// implements it, and so do the process pools of `concur-process`: the task forms an
/// executor accepts are given by its [`Runs`] implementations, so switching a program
/// from threads to processes is a change of the executor's type.
///
/// ```
/// use concur::futures::{Executor, MapOptions, ThreadPoolExecutor};
///
/// fn square(x: i32) -> i32 { x * x }
/// let pool = ThreadPoolExecutor::new(2);
/// let total: i32 = pool.map(square, 1..=3, MapOptions::new()).unwrap().map(|r| r.unwrap()).sum();
/// assert_eq!(total, 14);
/// assert_eq!(pool.call(square, 5).unwrap().result().unwrap(), 25);
/// ```
pub trait Executor {
    /// Schedules the task `job` (a closure `|| value` on any executor that
    /// [`Runs`] it) and returns its future. Never waits for the task; may block while a
    /// bounded submission queue is full.
    ///
    /// The future's value is whatever the task returns (a `Result` stays a value); a
    /// panic becomes an [`is_panic`](TaskError::is_panic) error.
    ///
    /// # Errors
    /// [`is_shutdown`](TaskError::is_shutdown) after `shutdown`;
    /// [`is_broken_executor`](TaskError::is_broken_executor) if the executor broke.
    ///
    /// ```
    /// use concur::futures::{Executor, ThreadPoolExecutor};
    /// let pool = ThreadPoolExecutor::new(1);
    /// assert_eq!(pool.submit(|| "ok").unwrap().result().unwrap(), "ok");
    /// ```
    fn submit<J>(&self, job: J) -> Result<Future<<Self as Runs<J>>::Output>, TaskError>
    where
        Self: Runs<J>,
    {
        self.submit_job(job)
    }

    /// Schedules `f(args)`: Python's `submit(fn, *args)` (a tuple for several
    /// arguments). The form that runs on every executor, processes included, when `f`
    /// captures nothing.
    ///
    /// # Errors
    /// As [`submit`](Self::submit).
    ///
    /// ```
    /// use concur::futures::{Executor, ThreadPoolExecutor};
    /// fn add((a, b): (u32, u32)) -> u32 { a + b }
    /// let pool = ThreadPoolExecutor::new(1);
    /// assert_eq!(pool.call(add, (2, 3)).unwrap().result().unwrap(), 5);
    /// ```
    fn call<F, A, T>(&self, f: F, args: A) -> Result<Future<T>, TaskError>
    where
        Self: Runs<Call<F, A>, Output = T>,
    {
        self.submit_job(Call::new(f, args))
    }

    /// Stops accepting work; with `cancel_futures`, cancels every task not yet started;
    /// with `wait`, blocks until all started (and, without `cancel_futures`, queued)
    /// tasks finished and the workers exited. Calling it again is harmless.
    ///
    /// # Errors
    /// [`is_self_wait`](TaskError::is_self_wait) if `wait` is true and this is called
    /// from one of the executor's own tasks (it is then shut down but not waited for).
    ///
    /// ```
    /// use concur::futures::{Executor, ThreadPoolExecutor};
    /// let pool = ThreadPoolExecutor::new(1);
    /// let f = pool.submit(|| 1).unwrap();
    /// pool.shutdown(true, false).unwrap();
    /// assert!(f.done());
    /// ```
    fn shutdown(&self, wait: bool, cancel_futures: bool) -> Result<(), TaskError>;

    /// Applies `f` to every item on the executor and yields the results in input
    /// order: Python's `Executor.map`, lazy and bounded. Up to `buffersize` chunks are
    /// submitted at this call; each `next` submits more as results are consumed, so the
    /// input is read only `buffersize` chunks ahead. Unless `options` fix a chunk
    /// size, the chunks are sized from the measured cost of an item (see
    /// [`MapOptions::chunksize`]). Each item yields `Ok(value)` or
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
    /// use concur::futures::{Executor, MapOptions, ThreadPoolExecutor};
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
        Self: Sized + Runs<MapChunk<F, I::Item>, Output = Chunk<T>>,
        I: IntoIterator,
    {
        let input = items.into_iter();
        let total = exact_len(&input);
        let chunking = match options.chunksize {
            Some(n) => Chunking::Fixed(n),
            // A chunk hands back its results when its last item is done, so a cheap
            // item grouped with slow ones would wait for them and could be the one the
            // timeout falls on: under a timeout, one item per task (Python's form).
            None if options.timeout.is_some() => Chunking::Fixed(1),
            None => Chunking::Auto(AutoChunk::new()),
        };
        let mut m = Map {
            exec: self,
            f: Arc::new(f),
            reporter: options.reporter(total),
            chunking,
            inflight_items: 0,
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

/// The results of one [`MapChunk`], item by item.
pub type Chunk<T> = Vec<Result<T, TaskError>>;

/// Applies `f` to each item of a chunk, each panic caught at its item, reporting
/// progress per item.
///
/// One unwind guard covers a whole run of items (a guard per item costs more than a
/// tiny item's work); when an item panics, its error takes its place and a fresh guard
/// covers the rest, so the outcome is the same as guarding each item.
pub(crate) fn run_chunk<A, T>(
    f: &(impl Fn(A) -> T + ?Sized),
    chunk: Vec<A>,
    reporter: Option<&Reporter>,
) -> Chunk<T> {
    let mut out: Chunk<T> = Vec::with_capacity(chunk.len());
    let mut items = chunk.into_iter();
    while items.len() > 0 {
        let run = TaskError::catch(|| match reporter {
            None => out.extend(items.by_ref().map(|x| Ok(f(x)))),
            Some(rep) => {
                for x in items.by_ref() {
                    out.push(Ok(f(x)));
                    rep.item_done();
                }
            }
        });
        if let Err(e) = run {
            // The item that panicked was taken from `items` but never pushed.
            out.push(Err(e));
            if let Some(rep) = reporter {
                rep.item_done();
            }
        }
    }
    out
}

/// The lazy result iterator of [`Executor::map`]: `next` blocks until the next result
/// in input order is ready, submitting more work as it goes. Dropping it cancels the
/// tasks that have not started.
///
/// ```
/// use concur::futures::{Executor, MapOptions, ThreadPoolExecutor};
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
    chunking: Chunking,
    /// Items submitted and not yet taken back (the read-ahead in items).
    inflight_items: usize,
    input: I,
    opts: MapOptions,
    deadline: Option<Instant>,
    inflight: VecDeque<(Future<Chunk<T>>, usize)>,
    current: VecDeque<Result<T, TaskError>>,
    input_done: bool,
    finished: bool,
}

impl<E, I, F, T> std::fmt::Debug for Map<'_, E, I, F, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Map")
            .field("chunks_in_flight", &self.inflight.len())
            .field("items_in_flight", &self.inflight_items)
            .field("buffered", &self.current.len())
            .field("input_done", &self.input_done)
            .finish_non_exhaustive()
    }
}

impl<E, I, F, T> Map<'_, E, I, F, T>
where
    E: Runs<MapChunk<F, I::Item>, Output = Chunk<T>>,
    I: Iterator,
{
    /// Submits chunks until `buffersize` are in flight (and, chunking automatically,
    /// [`AUTO_MAX_AHEAD`] items); returns a submit error.
    fn fill(&mut self) -> Option<TaskError> {
        while !self.input_done
            && self.inflight.len() < self.opts.buffersize
            && self.chunking.room(self.inflight_items)
        {
            let size = self.chunking.next_size(exact_len(&self.input));
            let chunk: Vec<I::Item> = self.input.by_ref().take(size).collect();
            if chunk.is_empty() {
                self.input_done = true;
                break;
            }
            let n = chunk.len();
            let job = MapChunk {
                f: self.f.clone(),
                items: chunk,
                progress: ChunkProgress {
                    reporter: self.reporter.clone(),
                    timer: self.chunking.timer(),
                },
            };
            match self.exec.submit_job(job) {
                Ok(fut) => {
                    self.inflight.push_back((fut, n));
                    self.inflight_items += n;
                }
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
            self.inflight_items -= n;
            self.chunking.taken_back(n);
            // The map's own timeout is the wait running out; a chunk that *failed*
            // with a timeout (a task over its time limit or deadline) is that chunk's
            // outcome and the map goes on.
            match fut.wait_done(self.deadline) {
                Err(e) if e.is_timeout() && !fut.done() => {
                    fut.cancel();
                    self.cancel_rest();
                    self.finished = true;
                    return Some(Err(e));
                }
                Err(e) => {
                    self.current.extend((0..n).map(|_| Err(e.clone())));
                    continue;
                }
                Ok(()) => {}
            }
            match fut.take_deadline(None) {
                // An empty `current` takes the chunk's buffer as is (no copy).
                Ok(v) if self.current.is_empty() => self.current = VecDeque::from(v),
                Ok(v) => self.current.extend(v),
                Err(e) => self.current.extend((0..n).map(|_| Err(e.clone()))),
            }
        }
    }
}

/// The time one automatically sized chunk aims to take: long enough that a chunk's
/// fixed cost (a submit, a wake-up, a future) is a few per cent of it, short enough
/// that the chunks spread evenly over the workers.
pub(crate) const AUTO_TARGET: Duration = Duration::from_micros(100);
/// The largest automatically sized chunk, so that an item costing almost nothing does
/// not make one chunk hold a whole input (buffers stay small and are reused by the
/// allocator rather than faulted in afresh).
pub(crate) const AUTO_MAX_CHUNK: usize = 8192;
/// The read-ahead bound in items of an automatically chunked map (beside `buffersize`
/// in chunks): what bounds its memory when items are tiny and chunks large.
pub(crate) const AUTO_MAX_AHEAD: usize = 4 * AUTO_MAX_CHUNK;
/// How much one chunk may grow over the one before.
const AUTO_GROWTH: usize = 4;

/// How a [`Map`] cuts its input.
enum Chunking {
    /// The chunk size the caller set.
    Fixed(usize),
    /// Sized from the measured cost of an item.
    Auto(AutoChunk),
}

/// Automatic chunking: the first chunk holds one item; each later one is sized so that
/// it takes about [`AUTO_TARGET`] at the cost per item measured so far, growing at
/// most [`AUTO_GROWTH`]-fold from one chunk to the next and never above
/// [`AUTO_MAX_CHUNK`]. The cost is what the workers measured (through the chunks'
/// [`ChunkProgress::record_run`]), or, while nothing was measured (an executor that
/// does not report), the wall-clock time per result taken back, times the CPUs.
/// Near the end of an input of known length, chunks shrink so the last ones spread
/// over the workers.
struct AutoChunk {
    size: usize,
    timer: Arc<ChunkTimer>,
    started: Instant,
    taken: u64,
    cpus: usize,
}

impl AutoChunk {
    fn new() -> Self {
        AutoChunk {
            size: 1,
            timer: Arc::new(ChunkTimer::default()),
            started: Instant::now(),
            taken: 0,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    /// The cost of an item as `(nanoseconds, items)`, if anything tells it yet.
    fn cost(&self) -> Option<(u128, u128)> {
        match self.timer.load() {
            (ns, items) if items > 0 => Some((u128::from(ns), u128::from(items))),
            _ if self.taken > 0 => Some((
                self.started.elapsed().as_nanos() * self.cpus as u128,
                u128::from(self.taken),
            )),
            _ => None,
        }
    }

    fn next_size(&mut self, remaining: Option<usize>) -> usize {
        if let Some((ns, items)) = self.cost() {
            let want = AUTO_TARGET.as_nanos() * items / ns.max(1);
            let want = usize::try_from(want).unwrap_or(usize::MAX);
            self.size = want
                .min(self.size.saturating_mul(AUTO_GROWTH))
                .clamp(1, AUTO_MAX_CHUNK);
        }
        match remaining {
            // At most half of what is left per worker: the tail spreads.
            Some(r) => self.size.min(r.div_ceil(2 * self.cpus)).max(1),
            None => self.size,
        }
    }
}

impl Chunking {
    fn next_size(&mut self, remaining: Option<usize>) -> usize {
        match self {
            Chunking::Fixed(n) => *n,
            Chunking::Auto(a) => a.next_size(remaining),
        }
    }

    /// Whether another chunk may be read ahead with `inflight` items out.
    fn room(&self, inflight: usize) -> bool {
        match self {
            Chunking::Fixed(_) => true,
            Chunking::Auto(_) => inflight < AUTO_MAX_AHEAD,
        }
    }

    fn timer(&self) -> Option<Arc<ChunkTimer>> {
        match self {
            Chunking::Fixed(_) => None,
            Chunking::Auto(a) => Some(a.timer.clone()),
        }
    }

    /// A chunk of `n` items came back.
    fn taken_back(&mut self, n: usize) {
        if let Chunking::Auto(a) = self {
            a.taken += n as u64;
        }
    }
}

impl<E, I, F, T> Iterator for Map<'_, E, I, F, T>
where
    E: Runs<MapChunk<F, I::Item>, Output = Chunk<T>>,
    I: Iterator,
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
    /// The size of the last chunk submitted: the one set with
    /// [`MapOptions::chunksize`], or what automatic chunking chose from the cost of an
    /// item measured so far (1 before anything was measured).
    ///
    /// ```
    /// use concur::futures::{Executor, MapOptions, ThreadPoolExecutor};
    /// let pool = ThreadPoolExecutor::new(2);
    /// let m = pool.map(|x: u8| x, 0..10, MapOptions::new().chunksize(4)).unwrap();
    /// assert_eq!(m.chunksize(), 4);
    /// ```
    pub fn chunksize(&self) -> usize {
        match &self.chunking {
            Chunking::Fixed(n) => *n,
            Chunking::Auto(a) => a.size,
        }
    }

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
