//! [`Future`] and [`Promise`]: the shared completion cell, its waiting protocol, and the
//! worker context that lets a pool task wait on its own pool without deadlocking.
//!
//! # The protocol
//!
//! Each future's state lives in a [`WaitQueue`] (a `RawLock` plus a FIFO of one-shot
//! parkers, see `sync/waiters.rs`). Every transition (pending → running, → finished,
//! → cancelled) happens under that lock, so "exactly one outcome" is a plain check of
//! the status. The completer takes the callbacks, the multi-future watchers
//! (`as_completed` / `wait`) and the async wakers out under the lock, notifies every
//! blocked waiter, unlocks, and only then runs callbacks and pokes watchers: user code
//! never runs with the lock held. A blocked waiter re-checks the status under the lock
//! after every wake-up (`wait_until`), so a completion that lands between its check and
//! its sleep is not lost. Modelled in `tests/loom_futures.rs`.
//!
//! A cancellation is *acknowledged* once the side that runs the work knows of it
//! (CPython's `CANCELLED_AND_NOTIFIED` state): at once when the work is taken back
//! where it waits (a pool's queued job, a cancel guard that took it back, an executor's
//! own cancel), else when the completing side calls [`Promise::set_running`] (Python's
//! `set_running_or_notify_cancel`), sets an outcome, or drops the promise. The
//! multi-future waiters (`wait`, `as_completed`) count a cancelled future as done only
//! once acknowledged, as CPython's do; everything else (`done`, `cancelled`,
//! `result`, callbacks, `.await`) sees the cancellation at once.
//!
//! CPython's design (`Lib/concurrent/futures/_base.py`: a `Condition` per future plus
//! waiter objects installed on every future for `as_completed`/`wait`) is the source.

use super::error::TaskError;
use super::progress::Progress;
use crate::shim::Arc;
use crate::sync::waiters::WaitQueue;
use std::cell::RefCell;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

// Ids and the unobserved-failure counter are plain statistics, not part of any wait/wake
// protocol, so they use std's atomics (loom's cannot live in a `static`).
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
static UNOBSERVED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

pub(crate) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// How many failed futures this process dropped without anyone reading their error
/// (with `result`, `exception`, `into_result` or `.await`); a cancellation is not a
/// failure. Each is also reported once, to the
/// [unobserved-failure hook](set_unobserved_failure_hook). Never blocks.
///
/// ```
/// use concur::futures::{Promise, TaskError, unobserved_failures};
/// let before = unobserved_failures();
/// let p = Promise::<u8>::new();
/// assert!(p.set_error(TaskError::user("nobody reads this")));
/// drop(p); // the last handle: the error was never read
/// assert!(unobserved_failures() > before);
/// ```
pub fn unobserved_failures() -> usize {
    UNOBSERVED.load(std::sync::atomic::Ordering::Relaxed)
}

type FailureHook = std::sync::Arc<dyn Fn(&TaskError) + Send + Sync>;

static FAILURE_HOOK: std::sync::RwLock<Option<FailureHook>> = std::sync::RwLock::new(None);

/// Sets the function called with the error of every failed future dropped unread
/// (CWE-392: no error is lost silently), on the thread that drops the last handle,
/// instead of the default report (one `tracing::error!` event). It should be quick and
/// must not block on futures. A hook that panics is reported through `tracing` and
/// changes nothing else. Process-wide, like [`thread::set_excepthook`](crate::thread::set_excepthook).
///
/// ```
/// use concur::futures::{reset_unobserved_failure_hook, set_unobserved_failure_hook, Promise, TaskError};
/// use std::sync::{Arc, Mutex};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let s = seen.clone();
/// set_unobserved_failure_hook(move |e| s.lock().unwrap().push(e.to_string()));
/// let p = Promise::<u8>::new();
/// assert!(p.set_error(TaskError::user("lost")));
/// drop(p);
/// reset_unobserved_failure_hook();
/// assert!(seen.lock().unwrap().iter().any(|m| m.contains("lost")));
/// ```
pub fn set_unobserved_failure_hook(hook: impl Fn(&TaskError) + Send + Sync + 'static) {
    *FAILURE_HOOK.write().unwrap_or_else(|p| p.into_inner()) = Some(std::sync::Arc::new(hook));
}

/// Restores the default report of failed futures dropped unread (a `tracing::error!`
/// event).
///
/// ```
/// concur::futures::reset_unobserved_failure_hook();
/// ```
pub fn reset_unobserved_failure_hook() {
    *FAILURE_HOOK.write().unwrap_or_else(|p| p.into_inner()) = None;
}

/// Reports one failed future dropped unread: counts it, then calls the hook (or the
/// default report).
fn report_unobserved(e: &TaskError) {
    UNOBSERVED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let hook = FAILURE_HOOK
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    match hook {
        Some(h) => {
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| h(e))) {
                let p = TaskError::from_payload(p);
                tracing::error!(error = %p, "the unobserved-failure hook panicked");
            }
        }
        None => {
            tracing::error!(error = %e, "a failed future was dropped without anyone reading its error");
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Status {
    Pending,
    Running,
    Finished,
    Cancelled,
}

type Callback<T> = Box<dyn FnOnce(&Future<T>) + Send>;
type Job<T> = Box<dyn FnOnce() -> T + Send>;
type CancelGuard = Box<dyn FnMut() -> bool + Send>;

struct State<T> {
    status: Status,
    /// `Some` once finished or cancelled, until a handle takes the value.
    outcome: Option<Result<T, TaskError>>,
    taken: bool,
    observed: bool,
    /// For a cancelled future: the cancellation was acknowledged (module docs); until
    /// then `watchers` are kept, not told.
    acknowledged: bool,
    /// The work itself, for futures made by a pool (run by a worker or inline).
    job: Option<Job<T>>,
    /// Asked by `cancel` while pending (see `Promise::set_cancel_guard`).
    cancel_guard: Option<CancelGuard>,
    callbacks: Vec<Callback<T>>,
    watchers: Vec<(Arc<Watch>, usize)>,
    wakers: Vec<Waker>,
    /// The last progress the task reported, and who wants to hear of the next.
    progress: Option<Progress>,
    progress_hooks: Vec<ProgressHook>,
}

/// A progress callback of a future.
type ProgressHook = std::sync::Arc<dyn Fn(Progress) + Send + Sync>;

pub(crate) struct Shared<T> {
    id: u64,
    /// The pool whose queue holds `job` (0: none).
    pool_id: u64,
    state: WaitQueue<State<T>>,
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        let g = self.state.lock();
        let unread = match &g.outcome {
            Some(Err(e)) if !g.observed && !e.is_cancelled() => Some(e.clone()),
            _ => None,
        };
        drop(g);
        if let Some(e) = unread {
            report_unobserved(&e);
        }
    }
}

/// Everything taken out of a state at completion, run after unlocking.
struct Fired<T> {
    callbacks: Vec<Callback<T>>,
    /// Dropped after unlocking (a hook may hold anything).
    #[allow(dead_code)]
    progress_hooks: Vec<ProgressHook>,
    watchers: Vec<(Arc<Watch>, usize)>,
    wakers: Vec<Waker>,
    job: Option<Job<T>>,
}

impl<T> Shared<T> {
    fn new(pool_id: u64, job: Option<Job<T>>) -> Arc<Self> {
        Arc::new(Shared {
            id: next_id(),
            pool_id,
            state: WaitQueue::new(State {
                status: Status::Pending,
                outcome: None,
                taken: false,
                observed: false,
                acknowledged: false,
                job,
                cancel_guard: None,
                callbacks: Vec::new(),
                watchers: Vec::new(),
                wakers: Vec::new(),
                progress: None,
                progress_hooks: Vec::new(),
            }),
        })
    }

    /// Records progress `p` and tells the progress callbacks (outside the lock); a
    /// future already done ignores it.
    fn report(&self, p: Progress) {
        let hooks = {
            let mut g = self.state.lock();
            if matches!(g.status, Status::Finished | Status::Cancelled) {
                return;
            }
            g.progress = Some(p);
            g.progress_hooks.clone()
        };
        for h in hooks {
            if let Err(e) = TaskError::catch(|| h(p)) {
                tracing::error!(error = %e, "exception in a progress callback of a future");
            }
        }
    }

    /// Moves to `status` with `outcome` unless already done; notifies under the lock and
    /// returns what must run after unlocking. A cancellation not `acknowledged` keeps
    /// the multi-future watchers for [`acknowledge`](Self::acknowledge).
    fn finish(
        &self,
        status: Status,
        outcome: Result<T, TaskError>,
        acknowledged: bool,
    ) -> Option<Fired<T>> {
        let mut g = self.state.lock();
        if matches!(g.status, Status::Finished | Status::Cancelled) {
            return None;
        }
        g.status = status;
        g.outcome = Some(outcome);
        g.cancel_guard = None;
        let tell_watchers = status == Status::Finished || acknowledged;
        g.acknowledged = tell_watchers;
        let fired = Fired {
            callbacks: std::mem::take(&mut g.callbacks),
            // No progress after the outcome: its hooks are done with.
            progress_hooks: std::mem::take(&mut g.progress_hooks),
            watchers: if tell_watchers {
                std::mem::take(&mut g.watchers)
            } else {
                Vec::new()
            },
            wakers: std::mem::take(&mut g.wakers),
            job: g.job.take(),
        };
        g.notify(usize::MAX);
        Some(fired)
    }

    /// Acknowledges a cancellation (module docs): tells the multi-future watchers kept
    /// until now. Nothing for a future that is not cancelled or already acknowledged.
    fn acknowledge(&self) {
        let watchers = {
            let mut g = self.state.lock();
            if g.status != Status::Cancelled || g.acknowledged {
                return;
            }
            g.acknowledged = true;
            std::mem::take(&mut g.watchers)
        };
        for (w, i) in watchers {
            w.push(i);
        }
    }
}

fn fire<T>(this: &Arc<Shared<T>>, fired: Fired<T>) {
    drop(fired.job);
    for (w, i) in fired.watchers {
        w.push(i);
    }
    for wk in fired.wakers {
        wk.wake();
    }
    if !fired.callbacks.is_empty() {
        let fut = Future {
            shared: this.clone(),
        };
        for cb in fired.callbacks {
            run_callback(cb, &fut);
        }
    }
}

fn run_callback<T>(cb: Callback<T>, fut: &Future<T>) {
    if let Err(p) = catch_unwind(AssertUnwindSafe(|| cb(fut))) {
        let e = TaskError::from_payload(p);
        tracing::error!(error = %e, "exception calling callback for future");
    }
}

/// Completes `shared` from a job's return (or panic).
/// Completes `shared` from a job's return (or panic); false if it was done already (a
/// cancellation the completing side thereby learns of is acknowledged).
fn complete<T>(shared: &Arc<Shared<T>>, r: Result<T, TaskError>) -> bool {
    match shared.finish(Status::Finished, r, true) {
        Some(f) => {
            fire(shared, f);
            true
        }
        None => {
            shared.acknowledge();
            false
        }
    }
}

/// Runs the pool job of `shared` on this thread if it is still pending; true if it ran.
pub(crate) fn run_job<T>(shared: &Arc<Shared<T>>) -> bool {
    let job = {
        let mut g = shared.state.lock();
        if g.status != Status::Pending {
            return false;
        }
        match g.job.take() {
            Some(j) => {
                g.status = Status::Running;
                j
            }
            None => return false,
        }
    };
    TASKS.with(|t| t.borrow_mut().push(shared.id));
    let sink: &Shared<T> = shared;
    let r = with_progress_sink(sink, || TaskError::catch(job));
    TASKS.with(|t| t.borrow_mut().pop());
    complete(shared, r);
    true
}

// ---- progress from inside a task ---------------------------------------------------------

/// Reports progress of one future's task from any thread (see
/// [`Promise::progress_reporter`]).
#[derive(Clone)]
pub struct ProgressReporter(std::sync::Arc<dyn Fn(Progress) + Send + Sync>);

impl fmt::Debug for ProgressReporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProgressReporter")
    }
}

impl ProgressReporter {
    /// Reports `p` (ignored once the future is done).
    pub fn report(&self, p: Progress) {
        (self.0)(p);
    }
}

/// Where the progress of the task running on a thread goes.
pub(crate) trait ProgressSink {
    fn report(&self, p: Progress);
}

impl<T> ProgressSink for Shared<T> {
    fn report(&self, p: Progress) {
        Shared::report(self, p);
    }
}

/// A closure as a sink (executors that run tasks elsewhere: a worker process, a
/// cluster worker).
struct FnSink<'a>(&'a (dyn Fn(Progress) + 'a));

impl ProgressSink for FnSink<'_> {
    fn report(&self, p: Progress) {
        (self.0)(p);
    }
}

/// A sink with its type erased (a thin pointer and the function that knows its type),
/// so that a thread-local can hold it whatever its lifetime.
#[derive(Clone, Copy)]
struct ErasedSink {
    sink: *const (),
    report: unsafe fn(*const (), Progress),
}

/// # Safety
/// `p` points to a live `S`.
unsafe fn report_erased<S: ProgressSink>(p: *const (), progress: Progress) {
    // SAFETY: by the caller's guarantee `p` is a live `S` (see `with_progress_sink`).
    unsafe { (*p.cast::<S>()).report(progress) }
}

crate::shim::thread_local! {
    /// The sinks of the tasks running on this thread, innermost last (see
    /// `with_progress_sink`).
    static SINKS: RefCell<Vec<ErasedSink>> = RefCell::new(Vec::new());
}

/// Runs `f` with `sink` as the place [`progress`] reports go on this thread.
pub(crate) fn with_progress_sink<S: ProgressSink, R>(sink: &S, f: impl FnOnce() -> R) -> R {
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            SINKS.with(|s| s.borrow_mut().pop());
        }
    }
    // The pointer is only used by `progress`, on this thread, while `f` runs (it is
    // popped below, on unwinding too), and `sink` outlives `f`.
    let e = ErasedSink {
        sink: (sink as *const S).cast(),
        report: report_erased::<S>,
    };
    SINKS.with(|s| s.borrow_mut().push(e));
    let _pop = Pop;
    f()
}

/// Runs `f` with `report` receiving what [`progress`] reports on this thread meanwhile.
pub(crate) fn with_progress_fn<R>(report: &(dyn Fn(Progress) + '_), f: impl FnOnce() -> R) -> R {
    with_progress_sink(&FnSink(report), f)
}

/// Reports the progress of the task running on this thread: `done` units of work of
/// `total` (when known). The task's [`Future`] shows it ([`Future::progress`],
/// [`Future::add_progress_callback`]) on every tier: a thread pool task, a process pool
/// task (sent to the parent) and a cluster task (sent through Redis to its caller).
/// Returns false (and does nothing) outside such a task, or from another thread than
/// the task's own.
///
/// ```
/// use concur::futures::{Executor, ThreadPoolExecutor, progress};
/// use std::sync::{Arc, Mutex};
///
/// let pool = ThreadPoolExecutor::new(1);
/// let gate = concur::sync::Event::new();
/// let g = gate.clone();
/// let f = pool.submit(move || {
///     for i in 1..=4 {
///         progress(i, Some(4));
///     }
///     g.wait();
/// }).unwrap();
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let s = seen.clone();
/// f.add_progress_callback(move |p| s.lock().unwrap().push(p.done));
/// gate.set();
/// f.result().unwrap();
/// assert_eq!(f.progress().map(|p| p.done), Some(4));
/// assert!(!progress(1, None), "not inside a task");
/// ```
pub fn progress(done: usize, total: Option<usize>) -> bool {
    let p = Progress { done, total };
    SINKS.with(|s| {
        let top = s.borrow().last().copied();
        match top {
            Some(e) => {
                // SAFETY: `with_progress_sink` pushed `e` for a sink that lives until
                // it pops it, and we are inside that call, on its thread.
                unsafe { (e.report)(e.sink, p) };
                true
            }
            None => false,
        }
    })
}

// ---- watchers (as_completed / wait) ----------------------------------------------------

/// A multi-future waiter: futures push their index here when they finish.
pub(crate) struct Watch {
    pub(crate) q: WaitQueue<Vec<usize>>,
}

impl Watch {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Watch {
            q: WaitQueue::new(Vec::new()),
        })
    }

    fn push(&self, i: usize) {
        let mut g = self.q.lock();
        g.push(i);
        g.notify(usize::MAX);
    }
}

// ---- worker context ------------------------------------------------------------------------

/// What a pool does when one of its workers blocks on a future of the same pool.
pub(crate) trait PoolHooks {
    /// The worker is about to block: add a temporary worker if needed.
    fn enter_blocked(&self);
    /// The worker stopped blocking.
    fn exit_blocked(&self);
}

#[derive(Clone)]
pub(crate) struct WorkerCtx {
    pub(crate) pool_id: u64,
    pub(crate) hooks: Rc<dyn PoolHooks>,
}

crate::shim::thread_local! {
    static WORKER: RefCell<Option<WorkerCtx>> = RefCell::new(None);
    /// The pool tasks running on this thread, innermost last (more than one when a
    /// waiting worker runs the awaited task inline).
    static TASKS: RefCell<Vec<u64>> = RefCell::new(Vec::new());
}

/// Marks this thread as a worker of a pool (None: not a worker).
pub(crate) fn set_worker(ctx: Option<WorkerCtx>) {
    WORKER.with(|w| *w.borrow_mut() = ctx);
}

pub(crate) fn current_worker() -> Option<WorkerCtx> {
    WORKER.with(|w| w.borrow().clone())
}

/// Runs `block`, a wait on several futures at once (`as_completed`, `wait`, a map's
/// results), under the pool rules: when this thread is a worker of the pool that owns
/// any future in `pending`, the pool lends a temporary worker while it blocks, so the
/// awaited tasks can run even on a pool of one.
pub(crate) fn blocking_on<'a, T: 'a, R>(
    pending: impl IntoIterator<Item = &'a Future<T>>,
    block: impl FnOnce() -> R,
) -> R {
    let ctx = current_worker()
        .filter(|c| c.pool_id != 0 && pending.into_iter().any(|f| f.shared.pool_id == c.pool_id));
    match ctx {
        Some(ctx) => {
            ctx.hooks.enter_blocked();
            let r = block();
            ctx.hooks.exit_blocked();
            r
        }
        None => block(),
    }
}

/// True if the task `id` is running on this thread (maybe below an inline task).
fn running_here(id: u64) -> bool {
    TASKS.with(|t| t.borrow().contains(&id))
}

// ---- Future --------------------------------------------------------------------------------

/// The eventual result of a task: Python's `concurrent.futures.Future`.
///
/// A `Future<T>` is a cheap, cloneable handle to one shared completion cell, as Python
/// futures are shared objects. Reading the outcome:
///
/// * [`result`](Self::result) (and `_timeout` / `_deadline`) clone the value out, so
///   they need `T: Clone`; every handle can call them any number of times.
/// * [`into_result`](Self::into_result) and `.await` (the [`std::future::Future`]
///   impl) move the value out, for any `T`; after that, other handles get an error
///   with [`is_taken`](TaskError::is_taken).
///
/// A future is *pending*, then *running*, then *finished* (with a value or an error),
/// or *cancelled* (only from pending). Waiting is a parking wait with no polling.
///
/// If a future finishes with an error that nobody ever reads (`result`, `exception`,
/// `into_result`, `.await`), the error is reported once through `tracing::error!` when
/// the last handle is dropped, never lost silently.
///
/// ```
/// use concur::futures::{Executor, ThreadPoolExecutor};
///
/// let pool = ThreadPoolExecutor::new(2);
/// let f = pool.submit(|| 6 * 7).unwrap();
/// assert_eq!(f.result().unwrap(), 42);
/// assert!(f.done() && !f.cancelled());
/// ```
pub struct Future<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for Future<T> {
    fn clone(&self) -> Self {
        Future {
            shared: self.shared.clone(),
        }
    }
}

impl<T> fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.shared.state.lock().status;
        f.debug_struct("Future")
            .field("id", &self.shared.id)
            .field("state", &s)
            .finish()
    }
}

impl<T> PartialEq for Future<T> {
    /// Two handles are equal if they are handles to the same future.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}
impl<T> Eq for Future<T> {}

/// A future hashes by the identity of its task (consistent with `==`: handles to the
/// same future), so futures can key a map, as Python's `{executor.submit(f, url): url}`
/// does for `as_completed`.
///
/// Clippy's `mutable_key_type` lint sees the interior mutability of the shared state
/// and warns about such a map; the hash never depends on it, so list
/// `concur::futures::Future` under `ignore-interior-mutability` in your
/// `clippy.toml` (as this workspace does).
///
/// ```
/// use concur::futures::{as_completed, Executor, ThreadPoolExecutor};
/// use std::collections::HashMap;
///
/// let pool = ThreadPoolExecutor::new(2);
/// let urls = ["a.example", "b.example"];
/// let by_future: HashMap<_, _> = urls
///     .iter()
///     .map(|&u| (pool.submit(move || u.len()).unwrap(), u))
///     .collect();
/// let futures: Vec<_> = by_future.keys().cloned().collect();
/// for f in as_completed(&futures, None) {
///     let f = f.unwrap();
///     assert_eq!(f.result().unwrap(), by_future[&f].len());
/// }
/// ```
impl<T> std::hash::Hash for Future<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.shared.id.hash(state);
    }
}

impl<T: Send + 'static> Future<T> {
    /// A future whose job a pool will run (crate-internal).
    pub(crate) fn with_job(pool_id: u64, job: Job<T>) -> Self {
        Future {
            shared: Shared::new(pool_id, Some(job)),
        }
    }

    /// The type-erased "run me" handle a pool queues: the shared cell itself, so
    /// queueing a task allocates nothing more.
    pub(crate) fn runnable(&self) -> TaskPtr<dyn Runnable> {
        #[cfg(not(concur_loom))]
        {
            let p: TaskPtr<dyn Runnable> = self.shared.clone();
            p
        }
        #[cfg(concur_loom)]
        {
            Box::new(JobRef(self.shared.clone()))
        }
    }
}

/// The owning pointer a pool queues a task through: the future's `Arc` itself (std's
/// `Arc` coerces to `Arc<dyn Runnable>`); loom's `Arc` cannot be unsized, so under
/// loom a box holding a clone of it.
#[cfg(not(concur_loom))]
pub(crate) type TaskPtr<S> = std::sync::Arc<S>;
/// See the non-loom definition.
#[cfg(concur_loom)]
pub(crate) type TaskPtr<S> = Box<S>;

/// A queued pool task.
pub(crate) trait Runnable: Send + Sync {
    /// Runs the job if still pending; true if it ran.
    fn run(self: TaskPtr<Self>) -> bool;
    /// Cancels the task if still pending.
    fn cancel(self: TaskPtr<Self>) -> bool;
    /// Fails the task (if not done) with `e`.
    fn fail(self: TaskPtr<Self>, e: TaskError);
}

#[cfg(not(concur_loom))]
impl<T: Send + 'static> Runnable for Shared<T> {
    fn run(self: TaskPtr<Self>) -> bool {
        run_job(&self)
    }
    fn cancel(self: TaskPtr<Self>) -> bool {
        Future { shared: self }.cancel()
    }
    fn fail(self: TaskPtr<Self>, e: TaskError) {
        complete(&self, Err(e));
    }
}

#[cfg(concur_loom)]
struct JobRef<T>(Arc<Shared<T>>);

#[cfg(concur_loom)]
impl<T: Send + 'static> Runnable for JobRef<T> {
    fn run(self: TaskPtr<Self>) -> bool {
        run_job(&self.0)
    }
    fn cancel(self: TaskPtr<Self>) -> bool {
        Future { shared: self.0 }.cancel()
    }
    fn fail(self: TaskPtr<Self>, e: TaskError) {
        complete(&self.0, Err(e));
    }
}

impl<T> Future<T> {
    fn status(&self) -> Status {
        self.shared.state.lock().status
    }

    pub(crate) fn id(&self) -> u64 {
        self.shared.id
    }

    /// True if the future finished or was cancelled. Never blocks (beyond a short
    /// internal lock).
    ///
    /// ```
    /// let p = concur::futures::Promise::new();
    /// let f = p.future();
    /// assert!(!f.done());
    /// assert!(p.set_result(1));
    /// assert!(f.done());
    /// ```
    pub fn done(&self) -> bool {
        matches!(self.status(), Status::Finished | Status::Cancelled)
    }

    /// True while the task runs. Never blocks.
    ///
    /// ```
    /// let p = concur::futures::Promise::<u8>::new();
    /// let f = p.future();
    /// assert!(p.set_running());
    /// assert!(f.running());
    /// ```
    pub fn running(&self) -> bool {
        self.status() == Status::Running
    }

    /// True if the future was cancelled. Never blocks.
    ///
    /// ```
    /// let p = concur::futures::Promise::<u8>::new();
    /// let f = p.future();
    /// assert!(f.cancel() && f.cancelled());
    /// ```
    pub fn cancelled(&self) -> bool {
        self.status() == Status::Cancelled
    }

    /// Cancels the future if it has not started: true if it is (now or already)
    /// cancelled, false if it is running or finished (as Python). Callbacks run and
    /// waiters wake. Never blocks.
    ///
    /// ```
    /// let p = concur::futures::Promise::<u8>::new();
    /// let f = p.future();
    /// assert!(p.set_running());
    /// assert!(!f.cancel());
    /// ```
    pub fn cancel(&self) -> bool {
        let acknowledged = {
            let mut g = self.shared.state.lock();
            match g.status {
                Status::Cancelled => return true,
                Status::Running | Status::Finished => return false,
                Status::Pending => {}
            }
            match g.cancel_guard.as_mut().map(|guard| guard()) {
                // The work has started elsewhere: the future is running.
                Some(false) => {
                    g.status = Status::Running;
                    g.cancel_guard = None;
                    return false;
                }
                // Taken back where it waited: the executor knows.
                Some(true) => true,
                // A pool's queued job is dropped right here: the pool knows too. Any
                // other completing side learns of it later (`Promise::set_running`).
                None => g.job.is_some(),
            }
        };
        match self
            .shared
            .finish(Status::Cancelled, Err(TaskError::cancelled()), acknowledged)
        {
            Some(f) => {
                fire(&self.shared, f);
                true
            }
            None => self.cancelled(),
        }
    }

    /// Calls `f` with this future once it is done: at once (on this thread) if it is
    /// already done, otherwise on the thread that completes or cancels it. A callback
    /// that panics is reported through `tracing::error!` and never propagates.
    ///
    /// ```
    /// use std::sync::{Arc, atomic::{AtomicBool, Ordering}};
    ///
    /// let p = concur::futures::Promise::new();
    /// let seen = Arc::new(AtomicBool::new(false));
    /// let s = seen.clone();
    /// p.future().add_done_callback(move |f| s.store(f.result().unwrap() == 5, Ordering::SeqCst));
    /// assert!(p.set_result(5));
    /// assert!(seen.load(Ordering::SeqCst));
    /// ```
    pub fn add_done_callback(&self, f: impl FnOnce(&Future<T>) + Send + 'static) {
        {
            let mut g = self.shared.state.lock();
            if !matches!(g.status, Status::Finished | Status::Cancelled) {
                g.callbacks.push(Box::new(f));
                return;
            }
        }
        run_callback(Box::new(f), self);
    }

    /// The last progress its task reported (with [`progress`] from inside it), if any.
    /// Never blocks.
    ///
    /// ```
    /// let p = concur::futures::Promise::<u8>::new();
    /// assert!(p.future().progress().is_none());
    /// p.set_progress(concur::futures::Progress { done: 3, total: Some(10) });
    /// assert_eq!(p.future().progress().unwrap().done, 3);
    /// ```
    pub fn progress(&self) -> Option<Progress> {
        self.shared.state.lock().progress
    }

    /// Calls `hook` with each progress report of its task from now on (on the thread
    /// that delivers it: the task's, or the executor's), and once at once with the
    /// last one if there was one. Reports stop when the future is done. A hook that
    /// panics is reported through `tracing` and does not affect the task.
    ///
    /// ```
    /// use concur::futures::{Progress, Promise};
    /// use std::sync::{Arc, atomic::{AtomicUsize, Ordering}};
    /// let p = Promise::<u8>::new();
    /// let most = Arc::new(AtomicUsize::new(0));
    /// let m = most.clone();
    /// p.future().add_progress_callback(move |pr| { m.fetch_max(pr.done, Ordering::SeqCst); });
    /// p.set_progress(Progress { done: 7, total: None });
    /// assert_eq!(most.load(Ordering::SeqCst), 7);
    /// ```
    pub fn add_progress_callback(&self, hook: impl Fn(Progress) + Send + Sync + 'static) {
        let hook: ProgressHook = std::sync::Arc::new(hook);
        let last = {
            let mut g = self.shared.state.lock();
            if !matches!(g.status, Status::Finished | Status::Cancelled) {
                g.progress_hooks.push(hook.clone());
            }
            g.progress
        };
        if let Some(p) = last
            && let Err(e) = TaskError::catch(|| hook(p))
        {
            tracing::error!(error = %e, "exception in a progress callback of a future");
        }
    }

    /// Blocks until done or `deadline`, applying the pool rules (self-wait error,
    /// inline run of a queued task of the same pool, temporary worker).
    pub(crate) fn wait_done(&self, deadline: Option<Instant>) -> Result<(), TaskError> {
        if self.done() {
            return Ok(());
        }
        if running_here(self.shared.id) {
            // Its own future, or one whose task this thread suspended to run the
            // awaited task inline: either way it can never finish while we wait.
            return Err(TaskError::self_wait(
                "a task cannot wait on its own future (it would deadlock)",
            ));
        }
        let ctx = current_worker().filter(|c| c.pool_id != 0 && c.pool_id == self.shared.pool_id);
        if let Some(ctx) = ctx {
            run_job(&self.shared);
            if self.done() {
                return Ok(());
            }
            ctx.hooks.enter_blocked();
            let r = self.block(deadline);
            ctx.hooks.exit_blocked();
            return r;
        }
        self.block(deadline)
    }

    fn block(&self, deadline: Option<Instant>) -> Result<(), TaskError> {
        let g = self.shared.state.lock();
        let (_g, ok) = g.wait_until(deadline, |s| {
            matches!(s.status, Status::Finished | Status::Cancelled)
        });
        if ok {
            Ok(())
        } else {
            Err(TaskError::timeout("timed out waiting for the future"))
        }
    }

    /// Waits (at most until `deadline`, `None`: forever) and moves the value out.
    pub(crate) fn take_deadline(&self, deadline: Option<Instant>) -> Result<T, TaskError> {
        let mut g = self.shared.state.lock();
        if !matches!(g.status, Status::Finished | Status::Cancelled) {
            drop(g);
            self.wait_done(deadline)?;
            g = self.shared.state.lock();
        }
        g.observed = true;
        take_outcome(&mut g)
    }

    /// Blocks until done and moves the value out (for any `T`). Other handles then get
    /// an [`is_taken`](TaskError::is_taken) error from `result`.
    ///
    /// # Errors
    /// The task's panic, cancellation, a broken executor, or
    /// [`is_self_wait`](TaskError::is_self_wait) when a task waits on itself.
    ///
    /// ```
    /// use concur::futures::{Executor, ThreadPoolExecutor};
    /// let pool = ThreadPoolExecutor::new(1);
    /// let f = pool.submit(|| vec![1, 2]).unwrap();
    /// assert_eq!(f.into_result().unwrap(), vec![1, 2]);
    /// ```
    pub fn into_result(self) -> Result<T, TaskError> {
        self.take_deadline(None)
    }

    /// Blocks until done (or `timeout`) and returns the task's error, if any: `Ok(None)`
    /// for a value, `Ok(Some(e))` for a failure (Python's `exception()`).
    ///
    /// # Errors
    /// [`is_cancelled`](TaskError::is_cancelled) if cancelled,
    /// [`is_timeout`](TaskError::is_timeout) if `timeout` passed, `is_self_wait`.
    ///
    /// ```
    /// let p = concur::futures::Promise::<u8>::new();
    /// let f = p.future();
    /// assert!(p.set_error(concur::futures::TaskError::user("bad")));
    /// assert!(f.exception(None).unwrap().unwrap().is_user());
    /// ```
    pub fn exception(&self, timeout: Option<Duration>) -> Result<Option<TaskError>, TaskError> {
        self.wait_done(timeout.and_then(crate::time::deadline_after))?;
        let mut g = self.shared.state.lock();
        g.observed = true;
        match &g.outcome {
            Some(Err(e)) if e.is_cancelled() => Err(e.clone()),
            Some(Err(e)) => Ok(Some(e.clone())),
            _ => Ok(None),
        }
    }

    /// True if finished with an error that is not a cancellation.
    pub(crate) fn failed(&self) -> bool {
        let g = self.shared.state.lock();
        g.status == Status::Finished && matches!(g.outcome, Some(Err(_)))
    }

    /// True if finished, or cancelled and the cancellation acknowledged: done for the
    /// multi-future waiters (module docs; CPython's `FINISHED` or
    /// `CANCELLED_AND_NOTIFIED`).
    pub(crate) fn settled(&self) -> bool {
        let g = self.shared.state.lock();
        g.status == Status::Finished || (g.status == Status::Cancelled && g.acknowledged)
    }

    /// Registers `w` to hear index `i` once [`settled`](Self::settled); true if settled
    /// already.
    pub(crate) fn watch(&self, w: &Arc<Watch>, i: usize) -> bool {
        let mut g = self.shared.state.lock();
        if g.status == Status::Finished || (g.status == Status::Cancelled && g.acknowledged) {
            return true;
        }
        g.watchers.push((w.clone(), i));
        false
    }

    pub(crate) fn unwatch(&self, w: &Arc<Watch>) {
        let mut g = self.shared.state.lock();
        g.watchers.retain(|(x, _)| !Arc::ptr_eq(x, w));
    }
}

fn take_outcome<T>(s: &mut State<T>) -> Result<T, TaskError> {
    match s.outcome.take() {
        Some(Ok(v)) => {
            s.taken = true;
            Ok(v)
        }
        Some(Err(e)) => {
            s.outcome = Some(Err(e.clone()));
            Err(e)
        }
        None => Err(TaskError::taken()),
    }
}

impl<T: Clone> Future<T> {
    /// Blocks until the future is done and returns a clone of its value (Python's
    /// `result()`).
    ///
    /// On a worker of a pool, waiting on a future of the *same* pool never deadlocks:
    /// if that task has not started, this thread runs it inline (only that task); if it
    /// is running elsewhere, the pool adds a temporary worker while this one blocks.
    /// (A task run inline shares the waiting task's `thread::Local` values.) Waiting on
    /// the task's own future, or on a task this thread suspended to run another inline,
    /// fails at once instead of deadlocking.
    ///
    /// # Errors
    /// The task's panic ([`is_panic`](TaskError::is_panic)), cancellation, a broken
    /// executor, [`is_self_wait`](TaskError::is_self_wait) when a task waits on its own
    /// future, [`is_taken`](TaskError::is_taken) after `into_result` on another handle.
    ///
    /// ```
    /// let p = concur::futures::Promise::new();
    /// let f = p.future();
    /// let t = concur::thread::spawn(move || p.set_result("hi"));
    /// assert_eq!(f.result().unwrap(), "hi");
    /// t.join().unwrap();
    /// ```
    pub fn result(&self) -> Result<T, TaskError> {
        self.result_until(None)
    }

    /// [`result`](Self::result), giving up after `timeout` (an
    /// [`is_timeout`](TaskError::is_timeout) error; the future keeps running).
    ///
    /// # Errors
    /// As `result`, plus the timeout.
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = concur::futures::Promise::<u8>::new();
    /// assert!(p.future().result_timeout(Duration::from_millis(5)).unwrap_err().is_timeout());
    /// ```
    pub fn result_timeout(&self, timeout: Duration) -> Result<T, TaskError> {
        self.result_until(crate::time::deadline_after(timeout))
    }

    /// [`result`](Self::result), giving up at `deadline`.
    ///
    /// # Errors
    /// As `result_timeout`.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let p = concur::futures::Promise::new();
    /// assert!(p.set_result(3));
    /// let f = p.future();
    /// assert_eq!(f.result_deadline(Instant::now() + Duration::from_secs(1)).unwrap(), 3);
    /// ```
    pub fn result_deadline(&self, deadline: Instant) -> Result<T, TaskError> {
        self.result_until(Some(deadline))
    }

    /// [`result`](Self::result), giving up at `deadline` if there is one.
    pub(crate) fn result_until(&self, deadline: Option<Instant>) -> Result<T, TaskError> {
        // Already done (the common case when results are read after submitting many
        // tasks): one lock, no waiting logic.
        let mut g = self.shared.state.lock();
        if !matches!(g.status, Status::Finished | Status::Cancelled) {
            drop(g);
            self.wait_done(deadline)?;
            g = self.shared.state.lock();
        }
        g.observed = true;
        match &g.outcome {
            Some(Ok(v)) => Ok(v.clone()),
            Some(Err(e)) => Err(e.clone()),
            None => Err(TaskError::taken()),
        }
    }
}

/// Awaiting a `Future` moves its value out (see [`Future::into_result`]); it works
/// under any async runtime: the completer wakes the stored `Waker`.
///
/// ```
/// use concur::futures::Promise;
/// let p = Promise::new();
/// let f = p.future();
/// assert!(p.set_result(9));
/// # // a tiny executor: the future is ready, so one poll suffices
/// let waker = std::task::Waker::noop();
/// let mut cx = std::task::Context::from_waker(&waker);
/// let mut f = std::pin::pin!(f);
/// assert!(matches!(std::future::Future::poll(f.as_mut(), &mut cx), std::task::Poll::Ready(Ok(9))));
/// ```
impl<T> std::future::Future for Future<T> {
    type Output = Result<T, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut g = self.shared.state.lock();
        if matches!(g.status, Status::Finished | Status::Cancelled) {
            g.observed = true;
            return Poll::Ready(take_outcome(&mut g));
        }
        if !g.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            g.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

// ---- Promise -------------------------------------------------------------------------------

/// The completing side of a [`Future`]: what an executor (a thread pool here, a process
/// pool or a remote worker elsewhere) uses to report the outcome, from any thread.
///
/// Exactly one outcome per future: the first of `set_result` / `set_error` / a
/// `cancel` on the future wins. A promise dropped without an outcome fails its future
/// with a broken-executor error, so no holder waits forever.
///
/// ```
/// use concur::futures::Promise;
///
/// let p = Promise::new();
/// let f = p.future();
/// assert!(p.set_running());
/// assert!(p.set_result(10));
/// assert_eq!(f.result().unwrap(), 10);
/// ```
pub struct Promise<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Default for Promise<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for Promise<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Promise")
            .field("id", &self.shared.id)
            .finish()
    }
}

impl<T> Promise<T> {
    /// Reports progress of the task (what [`progress`] does from inside a task of this
    /// crate's pools; for executors that run tasks elsewhere): the future's
    /// [`progress`](Future::progress) and progress callbacks see it. Ignored once the
    /// future is done.
    ///
    /// ```
    /// use concur::futures::{Progress, Promise};
    /// let p = Promise::<()>::new();
    /// p.set_progress(Progress { done: 1, total: Some(2) });
    /// assert_eq!(p.future().progress(), Some(Progress { done: 1, total: Some(2) }));
    /// ```
    pub fn set_progress(&self, progress: Progress) {
        self.shared.report(progress);
    }

    /// A cloneable handle that reports progress of this promise's task (as
    /// [`set_progress`](Self::set_progress)), for an executor that hears of progress on
    /// another thread than the one holding the promise.
    ///
    /// ```
    /// use concur::futures::{Progress, Promise};
    /// let p = Promise::<u8>::new();
    /// let r = p.progress_reporter();
    /// std::thread::spawn(move || r.report(Progress { done: 2, total: None })).join().unwrap();
    /// assert_eq!(p.future().progress().unwrap().done, 2);
    /// ```
    pub fn progress_reporter(&self) -> ProgressReporter
    where
        T: Send + 'static,
    {
        let s = self.shared.clone();
        ProgressReporter(std::sync::Arc::new(move |p| s.report(p)))
    }

    /// A new pending future's completing side. Never blocks.
    ///
    /// ```
    /// let p = concur::futures::Promise::<u8>::new();
    /// assert!(!p.future().done());
    /// ```
    pub fn new() -> Self {
        Promise {
            shared: Shared::new(0, None),
        }
    }

    /// A handle to the future this promise completes.
    ///
    /// ```
    /// let p = concur::futures::Promise::new();
    /// let f = p.future();
    /// assert!(p.set_result(()));
    /// assert!(f.done());
    /// ```
    pub fn future(&self) -> Future<T> {
        Future {
            shared: self.shared.clone(),
        }
    }

    /// Marks the future running: true if it was pending, false if it was cancelled (the
    /// work must then be skipped; the cancellation is now acknowledged, so `wait` and
    /// `as_completed` count the future as done) or already running/done (Python's
    /// `set_running_or_notify_cancel`, which raises there). After `true`, `cancel`
    /// fails.
    ///
    /// ```
    /// let p = concur::futures::Promise::<u8>::new();
    /// p.future().cancel();
    /// assert!(!p.set_running());
    /// ```
    #[must_use = "false means the future was cancelled (or is already running or done): the work must not run"]
    pub fn set_running(&self) -> bool {
        let mut g = self.shared.state.lock();
        if g.status == Status::Pending {
            g.status = Status::Running;
            g.cancel_guard = None;
            true
        } else {
            drop(g);
            self.shared.acknowledge();
            false
        }
    }

    /// Makes `cancel` ask `guard` first while the future is pending: for executors
    /// that hand work ahead of time to a place (another process) that decides on its
    /// own when the work starts. `guard` returns true if it stopped the work from
    /// starting (the cancel goes on) and false if the work has started (the future
    /// becomes running and the cancel fails). It runs under the future's lock: it must
    /// be quick and must not touch the future. Returns false, and sets nothing, if the
    /// future is no longer pending (a cancelled future's work must then not start).
    /// A later call replaces the guard (work handed elsewhere again).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    ///
    /// let p = concur::futures::Promise::<u8>::new();
    /// let started = Arc::new(AtomicBool::new(true));
    /// let s = started.clone();
    /// assert!(p.set_cancel_guard(move || !s.load(Ordering::SeqCst)));
    /// let f = p.future();
    /// assert!(!f.cancel()); // the work had started
    /// assert!(f.running());
    /// ```
    pub fn set_cancel_guard(&self, guard: impl FnMut() -> bool + Send + 'static) -> bool {
        let mut g = self.shared.state.lock();
        if g.status != Status::Pending {
            return false;
        }
        g.cancel_guard = Some(Box::new(guard));
        true
    }

    /// Finishes the future with `value`; true if this was its outcome (false if it was
    /// already done or cancelled; `value` is then dropped). Wakes every waiter, then
    /// runs callbacks on this thread.
    ///
    /// ```
    /// let p = concur::futures::Promise::new();
    /// assert!(p.set_result(1));
    /// assert!(!p.set_result(2));
    /// assert_eq!(p.future().result().unwrap(), 1);
    /// ```
    ///
    /// A second outcome is a bug Python reports (`InvalidStateError`): here the answer
    /// must be looked at, so ignoring it does not compile without a warning.
    ///
    /// ```compile_fail
    /// #![deny(unused_must_use)]
    /// let p = concur::futures::Promise::new();
    /// p.set_result(1);
    /// ```
    #[must_use = "false means the future already had an outcome (Python raises InvalidStateError): the value was dropped"]
    pub fn set_result(&self, value: T) -> bool {
        complete(&self.shared, Ok(value))
    }

    /// Finishes the future with `error`; true if this was its outcome.
    ///
    /// ```
    /// use concur::futures::{Promise, TaskError};
    /// let p = Promise::<u8>::new();
    /// assert!(p.set_error(TaskError::broken_executor("gone")));
    /// assert!(p.future().result().unwrap_err().is_broken_executor());
    /// ```
    #[must_use = "false means the future already had an outcome (Python raises InvalidStateError): the error was dropped"]
    pub fn set_error(&self, error: TaskError) -> bool {
        complete(&self.shared, Err(error))
    }
}

impl<T> Drop for Promise<T> {
    fn drop(&mut self) {
        let done = {
            let g = self.shared.state.lock();
            matches!(g.status, Status::Finished | Status::Cancelled)
        };
        if !done {
            let e = TaskError::broken_executor("the promise was dropped without an outcome");
            if let Some(f) = self.shared.finish(Status::Finished, Err(e), true) {
                // Nobody may be listening; a dropped promise is not a task failure to
                // report on drop.
                self.shared.state.lock().observed = true;
                fire(&self.shared, f);
            }
        }
        // The completing side is gone: it knows of any cancellation it will ever know.
        self.shared.acknowledge();
    }
}
