//! The `multiprocessing.Pool` layer that the thread pool ([`ThreadPool`](super::ThreadPool))
//! and the process tier's `ProcessPool` share, written once over any executor that
//! [`Runs`] map chunks: [`PoolCore`] (the running / closed / terminated state, `apply`,
//! `map`, `map_async`, `imap`, `imap_unordered`, `join`, the wait on drop), its
//! [`UnorderedMap`] iterator, the [`MapCollector`] behind `map_async`, and
//! [`StarArgs`] for `starmap`. The shapes follow CPython's
//! `Lib/multiprocessing/pool.py` (`ApplyResult`, `MapResult`, `IMapIterator`, the
//! `len / (4 × workers)` default chunk size); the input of the lazy forms is read
//! ahead a bounded number of chunks instead of all at once.
//!
//! Each pool is a thin type over a `PoolCore` of its executor: it states its own
//! bounds (any `Send` closure on threads; a function that captures nothing and serde
//! values on processes) and forwards.

use super::async_result::AsyncResult;
use super::error::TaskError;
use super::executor::{
    Chunk, ChunkProgress, Executor, Map, MapChunk, MapOptions, MapOptionsExt, Runs, exact_len,
};
use super::future::{Future, Promise, blocking_on};
use crate::queue::SimpleQueue;
use crate::shim::Arc;
use crate::sync::Lock;
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

const RUNNING: u8 = 0;
const CLOSED: u8 = 1;
const TERMINATED: u8 = 2;

/// Python's `multiprocessing.Pool` over the executor `E`: what the thread pool and the
/// process pool have in common (an executor implementor's type, see
/// [`exec`](super::exec)).
///
/// It keeps the pool's state (running, then closed or terminated: a pool that is not
/// running takes no new work, as Python's) and runs the `Pool` forms over `E`'s map
/// chunks. Dropping it closes the pool and waits for the work queued (Python's `with`
/// block terminates instead: here nothing submitted is lost).
///
/// ```
/// use concur::futures::exec::PoolCore;
/// use concur::futures::{MapOptions, ThreadPoolExecutor};
///
/// let pool = PoolCore::new(ThreadPoolExecutor::new(2), 2);
/// assert_eq!(pool.map_with(|x: u32| x * 2, 0..4, MapOptions::new()).unwrap(), [0, 2, 4, 6]);
/// pool.close();
/// assert!(pool.apply_async(|| 1).unwrap_err().is_shutdown());
/// pool.join().unwrap();
/// ```
pub struct PoolCore<E: Executor> {
    exec: E,
    workers: usize,
    state: AtomicU8,
}

impl<E: Executor> fmt::Debug for PoolCore<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolCore")
            .field("processes", &self.workers)
            .field("state", &self.state_name())
            .finish_non_exhaustive()
    }
}

impl<E: Executor> PoolCore<E> {
    /// A running pool over `exec`, which has `workers` workers (what the default chunk
    /// size of `map` divides by). The pool owns the executor's lifetime from now on.
    ///
    /// ```
    /// let p = concur::futures::exec::PoolCore::new(concur::futures::ThreadPoolExecutor::new(3), 3);
    /// assert_eq!(p.workers(), 3);
    /// ```
    pub fn new(exec: E, workers: usize) -> Self {
        PoolCore {
            exec,
            workers: workers.max(1),
            state: AtomicU8::new(RUNNING),
        }
    }

    /// The executor underneath.
    ///
    /// ```
    /// use concur::futures::{exec::PoolCore, ThreadPoolExecutor};
    /// assert_eq!(PoolCore::new(ThreadPoolExecutor::new(2), 2).executor().max_workers(), 2);
    /// ```
    pub fn executor(&self) -> &E {
        &self.exec
    }

    /// The number of workers given to [`new`](Self::new).
    ///
    /// ```
    /// use concur::futures::{exec::PoolCore, ThreadPoolExecutor};
    /// assert_eq!(PoolCore::new(ThreadPoolExecutor::new(1), 0).workers(), 1);
    /// ```
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// `"running"`, `"closed"` or `"terminated"` (for a pool's `Debug`).
    ///
    /// ```
    /// use concur::futures::{exec::PoolCore, ThreadPoolExecutor};
    /// let p = PoolCore::new(ThreadPoolExecutor::new(1), 1);
    /// assert_eq!(p.state_name(), "running");
    /// p.close();
    /// assert_eq!(p.state_name(), "closed");
    /// ```
    pub fn state_name(&self) -> &'static str {
        match self.state.load(Ordering::Acquire) {
            RUNNING => "running",
            CLOSED => "closed",
            _ => "terminated",
        }
    }

    /// `Ok` while the pool takes work, else an [`is_shutdown`](TaskError::is_shutdown)
    /// error.
    ///
    /// # Errors
    /// As said.
    ///
    /// ```
    /// use concur::futures::{exec::PoolCore, ThreadPoolExecutor};
    /// let p = PoolCore::new(ThreadPoolExecutor::new(1), 1);
    /// assert!(p.check_running().is_ok());
    /// p.close();
    /// assert!(p.check_running().unwrap_err().is_shutdown());
    /// ```
    pub fn check_running(&self) -> Result<(), TaskError> {
        if self.state.load(Ordering::Acquire) == RUNNING {
            Ok(())
        } else {
            Err(TaskError::shutdown())
        }
    }

    /// Stops taking work; what is queued still runs (Python's `close`). Never blocks.
    ///
    /// ```
    /// use concur::futures::{exec::PoolCore, ThreadPoolExecutor};
    /// let p = PoolCore::new(ThreadPoolExecutor::new(1), 1);
    /// p.close();
    /// p.join().unwrap();
    /// ```
    pub fn close(&self) {
        let _ = self
            .state
            .compare_exchange(RUNNING, CLOSED, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Marks the pool terminated (it takes no more work); the pool then stops its
    /// executor its own way (cancel the queue, kill the workers). Never blocks.
    ///
    /// ```
    /// use concur::futures::{exec::PoolCore, ThreadPoolExecutor};
    /// let p = PoolCore::new(ThreadPoolExecutor::new(1), 1);
    /// p.mark_terminated();
    /// assert_eq!(p.state_name(), "terminated");
    /// ```
    pub fn mark_terminated(&self) {
        self.state.store(TERMINATED, Ordering::Release);
    }

    /// Waits for the workers to finish all queued work and exit (Python's `join`).
    ///
    /// # Errors
    /// [`is_invalid_state`](TaskError::is_invalid_state) while the pool is running
    /// (close or terminate it first, as in Python); the executor's `shutdown` errors
    /// ([`is_self_wait`](TaskError::is_self_wait) from one of its own tasks).
    ///
    /// ```
    /// use concur::futures::{exec::PoolCore, ThreadPoolExecutor};
    /// let p = PoolCore::new(ThreadPoolExecutor::new(1), 1);
    /// assert!(p.join().unwrap_err().is_invalid_state());
    /// ```
    pub fn join(&self) -> Result<(), TaskError> {
        if self.state.load(Ordering::Acquire) == RUNNING {
            return Err(TaskError::invalid_state(
                "the pool is still running: call close() or terminate() before join()",
            ));
        }
        self.exec.shutdown(true, false)
    }

    /// Schedules `job` and returns at once with its [`AsyncResult`] (Python's
    /// `apply_async`).
    ///
    /// # Errors
    /// [`is_shutdown`](TaskError::is_shutdown) once the pool is closed or terminated;
    /// the executor's submit errors.
    ///
    /// ```
    /// use concur::futures::{exec::PoolCore, ThreadPoolExecutor};
    /// let p = PoolCore::new(ThreadPoolExecutor::new(1), 1);
    /// assert_eq!(p.apply_async(|| 5).unwrap().get().unwrap(), 5);
    /// ```
    pub fn apply_async<J>(&self, job: J) -> Result<AsyncResult<E::Output>, TaskError>
    where
        E: Runs<J>,
    {
        self.check_running()?;
        self.exec.submit_job(job).map(AsyncResult::from)
    }

    /// `f` over every item, the values in input order (Python's `map`): chunks of
    /// `ceil(len / (4 × workers))` unless `options` set a chunk size; an input whose
    /// length is not known up front is read to its end first to learn it (as Python
    /// does). Blocks until every item is done or one fails.
    ///
    /// # Errors
    /// The error of the first failing item by position (the chunks not started are
    /// then cancelled); the timeout of `options`; as [`apply_async`](Self::apply_async).
    ///
    /// ```
    /// use concur::futures::{exec::PoolCore, MapOptions, ThreadPoolExecutor};
    /// let p = PoolCore::new(ThreadPoolExecutor::new(2), 2);
    /// let odd = (0..10u32).filter(|x| x % 2 == 1); // length unknown up front
    /// assert_eq!(p.map_with(|x: u32| x + 1, odd, MapOptions::new()).unwrap(), [2, 4, 6, 8, 10]);
    /// ```
    pub fn map_with<I, F, T>(
        &self,
        f: F,
        items: I,
        options: MapOptions,
    ) -> Result<Vec<T>, TaskError>
    where
        I: IntoIterator,
        E: Runs<MapChunk<F, I::Item>, Output = Chunk<T>>,
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
        E: Runs<MapChunk<F, I::Item>, Output = Chunk<T>>,
    {
        let cs = options.chunksize_for(Some(n), self.workers);
        let mut out = Vec::with_capacity(n);
        for r in self.imap_with(f, items, options.chunksize(cs))? {
            out.push(r?);
        }
        Ok(out)
    }

    /// Like [`map_with`](Self::map_with), but returns at once with an [`AsyncResult`]
    /// of the whole list (Python's `map_async`): the input is read to its end now and
    /// every chunk queued, as Python does. The timeout and read-ahead bound of
    /// `options` do not apply (wait with [`AsyncResult::get_timeout`]).
    ///
    /// # Errors
    /// As [`apply_async`](Self::apply_async); if a submission fails part-way, the
    /// chunks already queued are cancelled. The items' errors arrive through the
    /// result (the first by position).
    ///
    /// ```
    /// use concur::futures::{exec::PoolCore, MapOptions, ThreadPoolExecutor};
    /// let p = PoolCore::new(ThreadPoolExecutor::new(2), 2);
    /// let r = p.map_async_with(|x: u8| x * 3, vec![1, 2, 3], MapOptions::new().chunksize(2)).unwrap();
    /// assert_eq!(r.get().unwrap(), [3, 6, 9]);
    /// ```
    pub fn map_async_with<I, F, T>(
        &self,
        f: F,
        items: I,
        options: MapOptions,
    ) -> Result<AsyncResult<Vec<T>>, TaskError>
    where
        I: IntoIterator,
        E: Runs<MapChunk<F, I::Item>, Output = Chunk<T>>,
        T: Send + 'static,
    {
        self.check_running()?;
        let items: Vec<I::Item> = items.into_iter().collect();
        let n = items.len();
        let cs = options.chunksize_for(Some(n), self.workers);
        let collector = MapCollector::new(n);
        let progress = options.chunk_progress(Some(n));
        let f = Arc::new(f);
        let mut submitted: Vec<Future<Chunk<T>>> = Vec::with_capacity(n.div_ceil(cs));
        let mut items = items.into_iter();
        let mut start = 0;
        while start < n {
            let chunk: Vec<I::Item> = items.by_ref().take(cs).collect();
            let len = chunk.len();
            match self
                .exec
                .submit_job(MapChunk::new(f.clone(), chunk, progress.clone()))
            {
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

    /// A lazy iterator of each item's result in input order (Python's `imap`): the
    /// executor's [`Executor::map`], refused once the pool is not running.
    ///
    /// # Errors
    /// As [`apply_async`](Self::apply_async), for the first chunks.
    ///
    /// ```
    /// use concur::futures::{exec::PoolCore, MapOptions, ThreadPoolExecutor};
    /// let p = PoolCore::new(ThreadPoolExecutor::new(2), 2);
    /// let v: Vec<u8> = p.imap_with(|x: u8| x, 0..3, MapOptions::new()).unwrap().map(Result::unwrap).collect();
    /// assert_eq!(v, [0, 1, 2]);
    /// ```
    pub fn imap_with<I, F, T>(
        &self,
        f: F,
        items: I,
        options: MapOptions,
    ) -> Result<Map<'_, E, I::IntoIter, F, T>, TaskError>
    where
        I: IntoIterator,
        E: Sized + Runs<MapChunk<F, I::Item>, Output = Chunk<T>>,
    {
        self.check_running()?;
        self.exec.map(f, items, options)
    }

    /// Like [`imap_with`](Self::imap_with), but yields results as their chunks
    /// complete (Python's `imap_unordered`); every item's result comes exactly once.
    ///
    /// # Errors
    /// As [`imap_with`](Self::imap_with).
    ///
    /// ```
    /// use concur::futures::{exec::PoolCore, MapOptions, ThreadPoolExecutor};
    /// let p = PoolCore::new(ThreadPoolExecutor::new(2), 2);
    /// let mut v: Vec<u8> = p.imap_unordered_with(|x: u8| x, 0..5, MapOptions::new()).unwrap().map(Result::unwrap).collect();
    /// v.sort();
    /// assert_eq!(v, [0, 1, 2, 3, 4]);
    /// ```
    pub fn imap_unordered_with<I, F, T>(
        &self,
        f: F,
        items: I,
        options: MapOptions,
    ) -> Result<UnorderedMap<'_, E, I::IntoIter, F, T>, TaskError>
    where
        I: IntoIterator,
        E: Runs<MapChunk<F, I::Item>, Output = Chunk<T>>,
        T: Send + 'static,
    {
        self.check_running()?;
        let input = items.into_iter();
        let total = exact_len(&input);
        let mut it = UnorderedMap {
            exec: &self.exec,
            f: Arc::new(f),
            input,
            chunksize: options.get_chunksize(),
            ahead: options.buffer_size(),
            progress: options.chunk_progress(total),
            deadline: options.get_timeout().and_then(crate::time::deadline_after),
            done: SimpleQueue::new(),
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
}

impl<E: Executor> Drop for PoolCore<E> {
    fn drop(&mut self) {
        self.close();
        // From one of its own tasks (or a done-callback) the pool cannot wait for
        // itself: it then shuts down without waiting, and the queued work still runs.
        if self.exec.shutdown(true, false).is_err() {
            let _ = self.exec.shutdown(false, false);
        }
    }
}

/// A finished chunk's results, or its error (it never ran: cancelled, a broken
/// pool, a dead worker) repeated for each of its `n` items.
fn chunk_outcome<T>(fut: &Future<Chunk<T>>, n: usize) -> Chunk<T> {
    match fut.clone().into_result() {
        Ok(v) => v,
        Err(e) => (0..n).map(|_| Err(e.clone())).collect(),
    }
}

// ---- imap_unordered ---------------------------------------------------------------------

/// The iterator of a pool's `imap_unordered` ([`PoolCore::imap_unordered_with`]):
/// results in completion order (a chunk's items together), the input read a bounded
/// number of chunks ahead. Each element is `Ok(value)` or that item's error; every
/// item's result comes exactly once. `next` blocks until some submitted chunk is done
/// (or the timeout of its [`MapOptions`] passes: it then yields one
/// [`is_timeout`](TaskError::is_timeout) error and ends); on a worker of the very pool
/// it waits on, the pool lends a temporary worker meanwhile, so even a pool of one
/// cannot deadlock. Dropping it cancels the chunks not yet started.
///
/// ```
/// let pool = concur::futures::ThreadPool::new(2);
/// let it = pool.imap_unordered(|x: u8| x, [1, 2]).unwrap();
/// assert_eq!(it.map(Result::unwrap).map(u32::from).sum::<u32>(), 3);
/// ```
pub struct UnorderedMap<'a, E, I, F, T> {
    exec: &'a E,
    f: Arc<F>,
    input: I,
    chunksize: usize,
    ahead: usize,
    progress: ChunkProgress,
    deadline: Option<Instant>,
    /// Finished chunks arrive here, from their futures' done-callbacks.
    done: SimpleQueue<Chunk<T>>,
    running: Vec<Future<Chunk<T>>>,
    in_flight: usize,
    current: VecDeque<Result<T, TaskError>>,
    input_done: bool,
    finished: bool,
}

impl<E, I, F, T> fmt::Debug for UnorderedMap<'_, E, I, F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnorderedMap")
            .field("chunks_in_flight", &self.in_flight)
            .field("buffered", &self.current.len())
            .finish_non_exhaustive()
    }
}

impl<E, I, F, T> UnorderedMap<'_, E, I, F, T>
where
    I: Iterator,
    E: Runs<MapChunk<F, I::Item>, Output = Chunk<T>>,
    T: Send + 'static,
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
            match self.exec.submit_job(job) {
                Ok(fut) => {
                    let done = self.done.clone();
                    fut.add_done_callback(move |f| done.put(chunk_outcome(f, n)));
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

    /// Waits for the next finished chunk, under the pool rules of a nested wait.
    fn wait_chunk(&mut self) -> Option<Chunk<T>> {
        let (done, deadline) = (&self.done, self.deadline);
        blocking_on(
            self.running.iter().filter(|f| !f.done()),
            || match deadline {
                None => Some(done.get()),
                Some(d) => done.get_deadline(d),
            },
        )
    }
}

impl<E, I, F, T> UnorderedMap<'_, E, I, F, T> {
    fn cancel_all(&mut self) {
        for f in self.running.drain(..) {
            f.cancel();
        }
    }
}

impl<E, I, F, T> Iterator for UnorderedMap<'_, E, I, F, T>
where
    I: Iterator,
    E: Runs<MapChunk<F, I::Item>, Output = Chunk<T>>,
    T: Send + 'static,
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
            match self.wait_chunk() {
                Some(chunk) => {
                    self.in_flight -= 1;
                    self.current.extend(chunk);
                }
                None => {
                    self.cancel_all();
                    self.finished = true;
                    return Some(Err(TaskError::timeout(format!(
                        "imap_unordered timed out with {} chunks outstanding",
                        self.in_flight
                    ))));
                }
            }
        }
    }
}

impl<E, I, F, T> Drop for UnorderedMap<'_, E, I, F, T> {
    fn drop(&mut self) {
        self.cancel_all();
    }
}

// ---- map_async --------------------------------------------------------------------------

struct Collect<T> {
    slots: Vec<Option<T>>,
    first_error: Option<(usize, TaskError)>,
    left: usize,
}

/// Gathers the chunks of one `map_async` into their places and completes its future
/// when the last item arrives: CPython's `MapResult`, keeping the first error by
/// position rather than by time. [`PoolCore::map_async_with`] uses it; public for
/// executors that gather chunks their own way.
///
/// ```
/// use concur::futures::exec::MapCollector;
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
    /// let c = concur::futures::exec::MapCollector::<u8>::new(0);
    /// assert!(c.future().result().unwrap().is_empty());
    /// ```
    pub fn new(n: usize) -> std::sync::Arc<Self> {
        let c = std::sync::Arc::new(MapCollector {
            state: Lock::with_value(Collect {
                slots: (0..n).map(|_| None).collect(),
                first_error: None,
                left: n,
            }),
            promise: Promise::new(),
        });
        // A fresh promise: it is pending, and then running.
        let running = c.promise.set_running();
        debug_assert!(running);
        if n == 0 {
            let set = c.promise.set_result(Vec::new());
            debug_assert!(set);
        }
        c
    }

    /// The future of the whole list: its items in order, or the error of the first
    /// failed item by position.
    ///
    /// ```
    /// use concur::futures::{exec::MapCollector, TaskError};
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
    /// let c = concur::futures::exec::MapCollector::new(1);
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
        // False only if the list's future was cancelled meanwhile: it keeps that.
        let _first = match outcome {
            Ok(v) => self.promise.set_result(v),
            Err(e) => self.promise.set_error(e),
        };
    }
}

// ---- starmap ----------------------------------------------------------------------------

/// A tuple of arguments that a pool's `starmap` ([`ThreadPool::starmap`](super::ThreadPool::starmap))
/// spreads over a call: `(a, b)`
/// calls `f(a, b)`. Implemented for tuples of one to eight fields.
///
/// ```
/// use concur::futures::StarArgs;
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
