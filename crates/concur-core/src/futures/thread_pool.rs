//! [`ThreadPoolExecutor`]: CPython's `Lib/concurrent/futures/thread.py` (lazy workers
//! reused through an idle count, a shared work queue, an initializer that breaks the
//! pool when it fails), plus the nested-wait rules of [`Future::result`].

use super::error::TaskError;
use super::executor::{Call, Chunk, Executor, MapChunk, Runs};
use super::future::{self, Future, PoolHooks, Runnable, TaskPtr, WorkerCtx};
use crate::queue::{Queue, TryPutError};
use crate::shim::Arc;
use crate::shim::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::sync::waiters::{QueueGuard, WaitQueue};
use crate::thread::{self, JoinHandle};
use std::fmt;
use std::rc::Rc;

/// What the work queue carries.
enum Item {
    Job(TaskPtr<dyn Runnable>),
    /// Sent when a blocked worker resumes: one surplus worker (if still surplus) exits.
    Retire,
}

type Initializer = std::sync::Arc<dyn Fn() + Send + Sync>;

/// The pool's bookkeeping, under `PoolInner::state`'s lock. `threads - blocked` and
/// "shut down or broken" are mirrored into `PoolInner::active` and `PoolInner::closed`
/// on every change (under the lock), so that `submit` and the worker loop can read them
/// without locking; whoever acts on them takes the lock and re-checks.
struct PoolState {
    /// Worker threads alive (or about to start).
    threads: usize,
    /// Workers blocked in a wait on a future of this pool.
    blocked: usize,
    shutdown: bool,
    broken: Option<String>,
    handles: Vec<JoinHandle<()>>,
    spawned: usize,
}

struct PoolInner {
    id: u64,
    max_workers: usize,
    prefix: String,
    initializer: Option<Initializer>,
    keep_locals: bool,
    queue: Queue<Item>,
    state: WaitQueue<PoolState>,
    /// Workers waiting for work right now (incremented before a worker's `get`,
    /// decremented after it returns; no lock).
    idle: AtomicUsize,
    /// `threads - blocked` of the state (the workers that count against
    /// `max_workers`), written under the state lock.
    active: AtomicUsize,
    /// The state is shut down or broken, written under the state lock.
    closed: AtomicBool,
}

impl PoolInner {
    /// Mirrors the state's counts and flags into the lock-free fields (state lock held).
    fn publish(&self, s: &PoolState) {
        self.active.store(s.threads - s.blocked, Ordering::SeqCst);
        self.closed
            .store(s.shutdown || s.broken.is_some(), Ordering::SeqCst);
    }
}

/// The user-facing owner: dropping the last handle shuts the pool down and waits.
struct Handle {
    inner: Arc<PoolInner>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = shutdown(&self.inner, true, false);
    }
}

/// A pool of worker threads running submitted closures: Python's
/// `concurrent.futures.ThreadPoolExecutor`.
///
/// Workers start lazily (one per submit while none is idle, up to `max_workers`) and
/// are reused. Cloning gives another handle to the same pool; when the last handle is
/// dropped, the pool shuts down and waits for its tasks (Python's `with` block).
///
/// Beyond Python: a task may wait on futures of its own pool, whatever the pool size,
/// without deadlocking (see [`Future::result`]); waiting on its own future or calling
/// `shutdown(wait = true)` on its own pool is an immediate
/// [`is_self_wait`](TaskError::is_self_wait) error. Each task starts with fresh
/// [`thread::Local`](crate::thread::Local) values (values set by the `initializer`
/// included) unless built with `keep_thread_locals(true)`.
///
/// ```
/// use concur::futures::{Executor, ThreadPoolExecutor};
///
/// let pool = ThreadPoolExecutor::builder().max_workers(2).thread_name_prefix("calc").build();
/// let f = pool.submit(|| concur::thread::current_thread().name()).unwrap();
/// assert!(f.result().unwrap().starts_with("calc_"));
/// ```
#[derive(Clone)]
pub struct ThreadPoolExecutor {
    h: std::sync::Arc<Handle>,
}

impl fmt::Debug for ThreadPoolExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPoolExecutor")
            .field("max_workers", &self.h.inner.max_workers)
            .field("prefix", &self.h.inner.prefix)
            .finish()
    }
}

/// Configures a [`ThreadPoolExecutor`].
///
/// ```
/// use concur::futures::ThreadPoolExecutor;
/// let pool = ThreadPoolExecutor::builder().max_workers(3).build();
/// assert_eq!(pool.max_workers(), 3);
/// ```
#[derive(Default)]
pub struct ThreadPoolBuilder {
    max_workers: Option<usize>,
    prefix: Option<String>,
    initializer: Option<Initializer>,
    keep_locals: bool,
    queue_size: usize,
}

impl fmt::Debug for ThreadPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPoolBuilder")
            .field("max_workers", &self.max_workers)
            .field("prefix", &self.prefix)
            .field("queue_size", &self.queue_size)
            .finish()
    }
}

impl ThreadPoolBuilder {
    /// The most worker threads (default: Python's `min(32, cpus + 4)`; at least 1).
    ///
    /// ```
    /// let p = concur::futures::ThreadPoolExecutor::builder().max_workers(0).build();
    /// assert_eq!(p.max_workers(), 1);
    /// ```
    pub fn max_workers(mut self, n: usize) -> Self {
        self.max_workers = Some(n.max(1));
        self
    }

    /// Workers are named `{prefix}_{n}` (default prefix `ThreadPoolExecutor-{k}`).
    ///
    /// ```
    /// let _ = concur::futures::ThreadPoolExecutor::builder().thread_name_prefix("io");
    /// ```
    pub fn thread_name_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Runs `f` once at the start of every worker. If it panics, the pool is broken:
    /// every pending future fails with an
    /// [`is_broken_executor`](TaskError::is_broken_executor) error, and so does every
    /// later `submit`.
    ///
    /// ```
    /// use concur::futures::{Executor, ThreadPoolExecutor};
    /// let pool = ThreadPoolExecutor::builder().initializer(|| panic!("no db")).build();
    /// let e = pool.submit(|| 1).unwrap().result().unwrap_err();
    /// assert!(e.is_broken_executor());
    /// ```
    pub fn initializer(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.initializer = Some(std::sync::Arc::new(f));
        self
    }

    /// Keep `thread::Local` values from task to task on a worker (default: every task
    /// starts fresh).
    ///
    /// ```
    /// let _ = concur::futures::ThreadPoolExecutor::builder().keep_thread_locals(true);
    /// ```
    pub fn keep_thread_locals(mut self, keep: bool) -> Self {
        self.keep_locals = keep;
        self
    }

    /// Bounds the submission queue to `n` waiting tasks (0, the default: unbounded).
    /// `submit` then blocks while it is full and `try_submit` fails fast. Tasks that
    /// submit to their own pool should use `try_submit` with a bounded queue: a blocking
    /// `submit` from every worker at once would wait for room that only they can make.
    ///
    /// ```
    /// let _ = concur::futures::ThreadPoolExecutor::builder().queue_size(16).build();
    /// ```
    pub fn queue_size(mut self, n: usize) -> Self {
        self.queue_size = n;
        self
    }

    /// Builds the pool (no thread starts before the first submit).
    ///
    /// ```
    /// let p = concur::futures::ThreadPoolExecutor::builder().build();
    /// assert_eq!(p.num_threads(), 0);
    /// ```
    pub fn build(self) -> ThreadPoolExecutor {
        let id = future::next_id();
        let max_workers = self.max_workers.unwrap_or_else(|| {
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            (cpus + 4).min(32)
        });
        let queue = if self.queue_size == 0 {
            Queue::unbounded()
        } else {
            Queue::bounded(self.queue_size)
        };
        let inner = Arc::new(PoolInner {
            id,
            max_workers,
            prefix: self
                .prefix
                .unwrap_or_else(|| format!("ThreadPoolExecutor-{id}")),
            initializer: self.initializer,
            keep_locals: self.keep_locals,
            queue,
            state: WaitQueue::new(PoolState {
                threads: 0,
                blocked: 0,
                shutdown: false,
                broken: None,
                handles: Vec::new(),
                spawned: 0,
            }),
            idle: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        });
        ThreadPoolExecutor {
            h: std::sync::Arc::new(Handle { inner }),
        }
    }
}

impl ThreadPoolExecutor {
    /// A pool of at most `max_workers` threads (at least 1), otherwise default.
    ///
    /// ```
    /// assert_eq!(concur::futures::ThreadPoolExecutor::new(4).max_workers(), 4);
    /// ```
    pub fn new(max_workers: usize) -> Self {
        Self::builder().max_workers(max_workers).build()
    }

    /// A [`ThreadPoolBuilder`] with every option at its default.
    ///
    /// ```
    /// let _ = concur::futures::ThreadPoolExecutor::builder();
    /// ```
    pub fn builder() -> ThreadPoolBuilder {
        ThreadPoolBuilder::default()
    }

    /// The configured maximum number of (non-temporary) workers.
    ///
    /// ```
    /// assert_eq!(concur::futures::ThreadPoolExecutor::new(2).max_workers(), 2);
    /// ```
    pub fn max_workers(&self) -> usize {
        self.h.inner.max_workers
    }

    /// How many worker threads are alive now (temporary ones included).
    ///
    /// ```
    /// use concur::futures::{Executor, ThreadPoolExecutor};
    /// let pool = ThreadPoolExecutor::new(4);
    /// pool.submit(|| ()).unwrap().result().unwrap();
    /// assert_eq!(pool.num_threads(), 1);
    /// ```
    pub fn num_threads(&self) -> usize {
        self.h.inner.state.lock().threads
    }

    /// Like [`submit`](Executor::submit), but fails at once with an
    /// [`is_full`](TaskError::is_full) error instead of blocking while a bounded
    /// submission queue is full.
    ///
    /// # Errors
    /// `is_full`, `is_shutdown`, `is_broken_executor`.
    ///
    /// ```
    /// use concur::futures::ThreadPoolExecutor;
    /// let pool = ThreadPoolExecutor::new(1);
    /// assert_eq!(pool.try_submit(|| 5).unwrap().result().unwrap(), 5);
    /// ```
    pub fn try_submit<F, T>(&self, f: F) -> Result<Future<T>, TaskError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        submit(&self.h.inner, f, false)
    }
}

/// Any `Send` closure: `pool.submit(move || ..)`.
impl<F, T> Runs<F> for ThreadPoolExecutor
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    type Output = T;

    fn submit_job(&self, f: F) -> Result<Future<T>, TaskError> {
        submit(&self.h.inner, f, true)
    }
}

/// `f(args)`: `pool.call(f, args)`.
impl<F, A, T> Runs<Call<F, A>> for ThreadPoolExecutor
where
    F: FnOnce(A) -> T + Send + 'static,
    A: Send + 'static,
    T: Send + 'static,
{
    type Output = T;

    fn submit_job(&self, call: Call<F, A>) -> Result<Future<T>, TaskError> {
        let (f, args) = call.into_parts();
        submit(&self.h.inner, move || f(args), true)
    }
}

/// The chunks of [`Executor::map`].
impl<F, A, T> Runs<MapChunk<F, A>> for ThreadPoolExecutor
where
    F: Fn(A) -> T + Send + Sync + 'static,
    A: Send + 'static,
    T: Send + 'static,
{
    type Output = Chunk<T>;

    fn submit_job(&self, chunk: MapChunk<F, A>) -> Result<Future<Chunk<T>>, TaskError> {
        submit(&self.h.inner, move || chunk.run(), true)
    }
}

impl Executor for ThreadPoolExecutor {
    fn shutdown(&self, wait: bool, cancel_futures: bool) -> Result<(), TaskError> {
        shutdown(&self.h.inner, wait, cancel_futures)
    }
}

fn check_open(s: &PoolState) -> Result<(), TaskError> {
    if let Some(msg) = &s.broken {
        return Err(TaskError::broken_executor(msg.clone()));
    }
    if s.shutdown {
        return Err(TaskError::shutdown());
    }
    Ok(())
}

fn submit<F, T>(pool: &Arc<PoolInner>, f: F, block: bool) -> Result<Future<T>, TaskError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // Shutdown and breakage set `closed` before they shut the queue, so a submit that
    // misses the flag still fails at the `put` below, or is queued before the queue
    // closes (as a submit that won the race for the lock always was).
    if pool.closed.load(Ordering::SeqCst) {
        check_open(&pool.state.lock())?;
    }
    let fut = Future::with_job(pool.id, Box::new(f));
    let item = Item::Job(fut.runnable());
    if block {
        pool.queue.put(item).map_err(|_| closed_error(pool))?;
    } else {
        pool.queue.try_put(item).map_err(|e| match e {
            TryPutError::Full(_) => TaskError::full(),
            TryPutError::ShutDown(_) => closed_error(pool),
        })?;
    }
    if pool.closed.load(Ordering::SeqCst) {
        // The put may have landed after the pool closed (see `fail_stragglers`): with
        // no worker left to take it, fail it here rather than leave it pending.
        let none_left = pool.state.lock().threads == 0;
        if none_left {
            fail_stragglers(pool);
        }
        return Ok(fut);
    }
    adjust_threads(pool);
    Ok(fut)
}

fn closed_error(pool: &PoolInner) -> TaskError {
    check_open(&pool.state.lock())
        .err()
        .unwrap_or_else(TaskError::shutdown)
}

/// Starts a worker if more tasks are queued than workers wait for work and the pool
/// (not counting workers blocked on futures of this pool) is below capacity: Python's
/// `_adjust_thread_count`, with an exact idle count instead of its idle semaphore.
///
/// The common cases (a worker is idle, or the pool is at capacity) are decided without
/// the state lock; a spawn re-checks under it.
fn adjust_threads(pool: &Arc<PoolInner>) {
    let busy = |pool: &PoolInner| pool.queue.qsize() <= pool.idle.load(Ordering::SeqCst);
    if busy(pool) || pool.active.load(Ordering::SeqCst) >= pool.max_workers {
        return;
    }
    let n = {
        let mut s = pool.state.lock();
        if busy(pool) || s.threads - s.blocked >= pool.max_workers || s.broken.is_some() {
            return;
        }
        s.threads += 1;
        s.spawned += 1;
        pool.publish(&s);
        s.handles.retain(|h| h.is_alive());
        s.spawned
    };
    let p = pool.clone();
    let r = thread::Builder::new()
        .name(format!("{}_{}", pool.prefix, n - 1))
        .spawn(move || worker(p));
    let mut s = pool.state.lock();
    match r {
        Ok(h) => s.handles.push(h),
        Err(e) => {
            s.threads -= 1;
            pool.publish(&s);
            s.notify(usize::MAX);
            tracing::error!(error = %e, "could not start a pool worker thread");
        }
    }
}

struct Hooks(Arc<PoolInner>);

impl PoolHooks for Hooks {
    fn enter_blocked(&self) {
        {
            let mut s = self.0.state.lock();
            s.blocked += 1;
            self.0.publish(&s);
        }
        adjust_threads(&self.0);
    }
    fn exit_blocked(&self) {
        let surplus = {
            let mut s = self.0.state.lock();
            s.blocked -= 1;
            self.0.publish(&s);
            s.threads - s.blocked > self.0.max_workers
        };
        if surplus {
            // Best effort: if the queue is full or shut down, the extra idle worker
            // simply stays until shutdown.
            let _ = self.0.queue.try_put(Item::Retire);
        }
    }
}

fn worker(pool: Arc<PoolInner>) {
    future::set_worker(Some(WorkerCtx {
        pool_id: pool.id,
        hooks: Rc::new(Hooks(pool.clone())),
    }));
    let ok = match &pool.initializer {
        Some(init) => match TaskError::catch(|| init()) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "exception in initializer");
                broken(&pool, format!("a thread initializer failed: {e}"));
                false
            }
        },
        None => true,
    };
    let mut counted = true;
    if ok {
        loop {
            if pool.active.load(Ordering::SeqCst) > pool.max_workers {
                let mut s = pool.state.lock();
                if s.threads - s.blocked > pool.max_workers {
                    // Leave the count in the same critical section as the decision: a
                    // worker that blocks right after must see this one gone (and start
                    // a replacement), not count on a worker that is already leaving.
                    counted = false;
                    if leave(&pool, &mut s) {
                        drop(s);
                        fail_stragglers(&pool);
                    }
                    break;
                }
            }
            pool.idle.fetch_add(1, Ordering::SeqCst);
            let got = pool.queue.get();
            pool.idle.fetch_sub(1, Ordering::SeqCst);
            match got {
                Ok(Item::Job(job)) => {
                    if !pool.keep_locals {
                        crate::thread::reset_thread_locals();
                    }
                    job.run();
                }
                Ok(Item::Retire) => {} // the loop head exits if this worker is surplus
                Err(_) => break,
            }
        }
    }
    future::set_worker(None);
    if counted {
        let mut s = pool.state.lock();
        if leave(&pool, &mut s) {
            drop(s);
            fail_stragglers(&pool);
        }
    }
}

/// Takes a worker off the count (state lock held); true if it was the last one of a
/// closed pool, which must then fail any straggler left in the queue.
fn leave(pool: &PoolInner, s: &mut QueueGuard<'_, PoolState>) -> bool {
    s.threads -= 1;
    pool.publish(s);
    s.notify(usize::MAX);
    s.threads == 0 && (s.shutdown || s.broken.is_some())
}

/// Fails what is still queued in a closed pool with no worker left: tasks whose `put`
/// raced the shutdown (the queue lets such a put land; module docs of `queue::chan`)
/// after the last worker's final `get`. Whoever comes last — that worker, or the
/// submitter that sees no worker after its `put` — runs this, so no future is left
/// pending forever.
fn fail_stragglers(pool: &PoolInner) {
    let e = closed_error(pool);
    while let Ok(item) = pool.queue.try_get() {
        if let Item::Job(job) = item {
            job.fail(e.clone());
        }
    }
}

/// Marks the pool broken and fails everything queued (Python's `_initializer_failed`).
fn broken(pool: &PoolInner, msg: String) {
    {
        let mut s = pool.state.lock();
        if s.broken.is_none() {
            s.broken = Some(msg.clone());
        }
        pool.publish(&s);
    }
    pool.queue.shutdown(false);
    while let Ok(item) = pool.queue.try_get() {
        if let Item::Job(job) = item {
            job.fail(TaskError::broken_executor(msg.clone()));
        }
    }
}

fn shutdown(pool: &Arc<PoolInner>, wait: bool, cancel_futures: bool) -> Result<(), TaskError> {
    {
        let mut s = pool.state.lock();
        s.shutdown = true;
        pool.publish(&s);
    }
    if cancel_futures {
        while let Ok(item) = pool.queue.try_get() {
            if let Item::Job(job) = item {
                job.cancel();
            }
        }
    }
    pool.queue.shutdown(false);
    if !wait {
        return Ok(());
    }
    if future::current_worker().is_some_and(|c| c.pool_id == pool.id) {
        return Err(TaskError::self_wait(
            "a task cannot wait for the shutdown of its own pool (it would deadlock)",
        ));
    }
    loop {
        let hs = std::mem::take(&mut pool.state.lock().handles);
        if hs.is_empty() {
            break;
        }
        for h in hs {
            let _ = h.join();
        }
    }
    let g = pool.state.lock();
    let _ = g.wait_until(None, |s| s.threads == 0);
    Ok(())
}
