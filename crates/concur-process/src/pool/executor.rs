//! [`ProcessPoolExecutor`]: Python's `concurrent.futures.ProcessPoolExecutor`, behind
//! the same [`Executor`] trait and [`Future`] as the thread pools.

use std::fmt;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use concur_core::futures::exec::{Call, Chunk, ChunkProgress, MapChunk, Runs};
use concur_core::futures::{Executor, Future, Promise, TaskError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::engine::Shared;
use super::task::{CancelGuard, Completion, Config, Task};
use super::wire::{self, Init, InitFds, TaskTrampoline};
use crate::capped::{self, CapError};
use crate::connection::{FRAME_HEADER, frame_header};
use crate::error::ProcessError;
use crate::fds;
use crate::process::StartMethod;
use crate::process::protocol::Report;
use crate::sys::socket::MAX_FDS;
use crate::why;

/// Configures a [`ProcessPoolExecutor`] (Python's constructor arguments, and the limits
/// Python lacks).
///
/// ```
/// use concur::process::{ProcessPoolExecutor, StartMethod};
/// use std::time::Duration;
///
/// fn setup(level: u8) { assert!(level < 10) }
/// let pool = ProcessPoolExecutor::builder()
///     .max_workers(2)
///     .start_method(StartMethod::ForkServer)
///     .initializer(setup, 3)
///     .max_tasks_per_child(100)
///     .task_timeout(Duration::from_secs(60))
///     .memory_limit(1 << 30)
///     .build();
/// assert_eq!(pool.max_workers(), 2);
/// ```
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `build`"]
pub struct ProcessPoolBuilder {
    cfg: Config,
    init_error: Option<String>,
}

impl Default for ProcessPoolBuilder {
    fn default() -> Self {
        ProcessPoolBuilder {
            cfg: Config {
                max_workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
                method: StartMethod::ForkServer,
                name: "concur-pool".to_owned(),
                init: None,
                max_tasks_per_child: None,
                task_timeout: None,
                memory_limit: None,
                recycle_above: None,
                memory_check: Duration::from_millis(20),
            },
            init_error: None,
        }
    }
}

impl ProcessPoolBuilder {
    /// The defaults: one worker per CPU, [`StartMethod::ForkServer`], no initializer,
    /// no limits.
    ///
    /// ```
    /// let pool = concur::process::ProcessPoolBuilder::new().build();
    /// assert!(pool.max_workers() >= 1);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// At most this many worker processes (at least 1). Workers start when there is
    /// work for them, as in Python 3.9+.
    ///
    /// ```
    /// let pool = concur::process::ProcessPoolExecutor::builder().max_workers(0).build();
    /// assert_eq!(pool.max_workers(), 1);
    /// ```
    pub fn max_workers(mut self, n: usize) -> Self {
        self.cfg.max_workers = n.max(1);
        self
    }

    /// How workers are made (see [`StartMethod`]); [`StartMethod::ForkServer`] by
    /// default: as safe as `Spawn` whatever threads this process runs, and fast to
    /// replace a worker.
    ///
    /// ```
    /// use concur::process::{ProcessPoolExecutor, StartMethod};
    /// let _ = ProcessPoolExecutor::builder().start_method(StartMethod::Spawn).build();
    /// ```
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.cfg.method = method;
        self
    }

    /// The prefix of the workers' names (`<prefix>-<n>`, as `ps` shows them) and of the
    /// dispatcher thread's.
    ///
    /// ```
    /// let _ = concur::process::ProcessPoolExecutor::builder().name("resizer").build();
    /// ```
    pub fn name(mut self, prefix: impl Into<String>) -> Self {
        self.cfg.name = prefix.into();
        self
    }

    /// Runs `f(args)` in each worker when it starts (Python's `initializer` and
    /// `initargs`). `f` captures nothing, as a [`Process`](crate::Process)'s function.
    /// `args` may carry descriptors, as a process argument may: a shared
    /// [`Value`](crate::Value), a process-shared [`Lock`](crate::Lock), a
    /// [`Queue`](crate::Queue) reach every worker usable (each worker gets its own
    /// duplicates). If `f` panics, the pool is broken: every pending and later task
    /// fails with [`is_broken_executor`](TaskError::is_broken_executor) (Python's
    /// `BrokenProcessPool`). An `args` that cannot be serialized is reported when the
    /// pool is built ([`try_build`](Self::try_build)).
    ///
    /// ```
    /// use concur::futures::Executor;
    /// fn init(_: ()) { panic!("no config") }
    /// fn id(x: u8) -> u8 { x }
    /// let pool = concur::process::ProcessPoolExecutor::builder().initializer(init, ()).build();
    /// let e = pool.call(id, 1).unwrap().result().unwrap_err();
    /// assert!(e.is_broken_executor());
    /// ```
    pub fn initializer<F, A>(mut self, f: F, args: A) -> Self
    where
        F: Fn(A) + Copy + 'static,
        A: Serialize + DeserializeOwned,
    {
        let () = crate::process::child::NoCaptures::<F>::CHECK;
        let _ = f;
        let (encoded, fds) =
            fds::collect_fds(|| postcard::to_stdvec(&args).map_err(|e| why::explain(&e, &args)));
        // The worker's start also carries its connection and its task page.
        let room = MAX_FDS - 2;
        match encoded {
            Ok(_) if fds.len() > room => {
                self.init_error = Some(format!(
                    "the initializer's argument holds {} descriptors, more than the {room} \
                     a worker's start can carry",
                    fds.len()
                ));
            }
            Ok(bytes) => {
                self.cfg.init = Some(Init {
                    offset: wire::offset_of_init(wire::init_trampoline::<F, A>),
                    args: bytes,
                    fds: InitFds(Arc::new(fds)),
                });
                self.init_error = None;
            }
            Err(e) => {
                self.init_error = Some(format!(
                    "the initializer's argument could not be serialized: {e}"
                ));
            }
        }
        self
    }

    /// Retires a worker after it ran `n` tasks (at least 1) and starts a new one
    /// (Python's `max_tasks_per_child` / `maxtasksperchild`).
    ///
    /// ```
    /// let _ = concur::process::ProcessPoolExecutor::builder().max_tasks_per_child(3).build();
    /// ```
    pub fn max_tasks_per_child(mut self, n: usize) -> Self {
        self.cfg.max_tasks_per_child = Some(n.max(1));
        self
    }

    /// The time limit of every task, counted from when its worker starts it: a task
    /// still running after it has its worker killed (and replaced) and fails with
    /// [`is_timeout`](TaskError::is_timeout). Per task, see
    /// [`ProcessPoolExecutor::submit_with_timeout`].
    ///
    /// ```
    /// let _ = concur::process::ProcessPoolExecutor::builder()
    ///     .task_timeout(std::time::Duration::from_secs(30))
    ///     .build();
    /// ```
    pub fn task_timeout(mut self, timeout: Duration) -> Self {
        self.cfg.task_timeout = Some(timeout);
        self
    }

    /// Kills a worker whose resident memory exceeds `bytes` (checked every 20 ms by
    /// default, see [`memory_check_interval`](Self::memory_check_interval)); its task
    /// fails with [`is_out_of_memory`](TaskError::is_out_of_memory) and the worker is
    /// replaced. The check samples `/proc/<pid>/statm`, so a task that allocates very
    /// fast can overshoot the limit by what it allocates in one interval.
    ///
    /// ```
    /// let _ = concur::process::ProcessPoolExecutor::builder().memory_limit(512 << 20).build();
    /// ```
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.cfg.memory_limit = Some(bytes);
        self
    }

    /// Retires a worker (after its current task) whose resident memory has grown past
    /// `bytes`, and starts a fresh one: for tasks that leak or fragment memory.
    ///
    /// ```
    /// let _ = concur::process::ProcessPoolExecutor::builder().recycle_above(256 << 20).build();
    /// ```
    pub fn recycle_above(mut self, bytes: u64) -> Self {
        self.cfg.recycle_above = Some(bytes);
        self
    }

    /// How often the [memory limit](Self::memory_limit) is checked (20 ms by default;
    /// at least 1 ms).
    ///
    /// ```
    /// let _ = concur::process::ProcessPoolExecutor::builder()
    ///     .memory_check_interval(std::time::Duration::from_millis(5))
    ///     .build();
    /// ```
    pub fn memory_check_interval(mut self, every: Duration) -> Self {
        self.cfg.memory_check = every.max(Duration::from_millis(1));
        self
    }

    /// Makes the executor. Never blocks and starts nothing: the dispatcher thread and
    /// the workers start with the first task.
    ///
    /// # Panics
    /// If the [initializer](Self::initializer)'s argument could not be serialized
    /// (the message says why); [`try_build`](Self::try_build) returns that as an error.
    ///
    /// ```
    /// use concur::futures::Executor;
    /// let pool = concur::process::ProcessPoolExecutor::builder().max_workers(1).build();
    /// assert_eq!(pool.call(|x: u32| x * 3, 14).unwrap().result().unwrap(), 42);
    /// ```
    #[track_caller]
    pub fn build(self) -> ProcessPoolExecutor {
        match self.try_build() {
            Ok(pool) => pool,
            Err(e) => panic!("{e}"),
        }
    }

    /// Makes the executor, or says why its settings cannot work. Never blocks and
    /// starts nothing.
    ///
    /// # Errors
    /// [`is_serialization`](ProcessError::is_serialization) if the
    /// [initializer](Self::initializer)'s argument could not be serialized, with the
    /// cause in the message.
    ///
    /// ```
    /// use concur::futures::Executor;
    /// let pool = concur::process::ProcessPoolExecutor::builder().max_workers(1).try_build().unwrap();
    /// assert_eq!(pool.call(|x: u32| x + 1, 1).unwrap().result().unwrap(), 2);
    /// ```
    pub fn try_build(self) -> Result<ProcessPoolExecutor, ProcessError> {
        if let Some(e) = self.init_error {
            return Err(ProcessError::serialization(e));
        }
        let shared = Shared::new();
        Ok(ProcessPoolExecutor {
            inner: Arc::new(Inner {
                shared,
                cfg: self.cfg,
            }),
        })
    }
}

struct Inner {
    shared: std::io::Result<Arc<Shared>>,
    cfg: Config,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(s) = &self.shared {
            let _ = s.shutdown(true, false);
        }
    }
}

/// A pool of worker processes that runs tasks and hands back [`Future`]s: Python's
/// `concurrent.futures.ProcessPoolExecutor`, through the same [`Executor`] trait as
/// [`ThreadPoolExecutor`](concur_core::futures::ThreadPoolExecutor): `submit` (a
/// closure that captures nothing), `call(f, args)`, `map`, `shutdown`.
///
/// Functions and arguments are as for [`Process`](crate::Process): `f` captures
/// nothing (a capturing closure does not compile), arguments and results are serde
/// types (they may carry descriptors, such as a [`Connection`](crate::Connection)).
///
/// Beyond Python, every task has exactly one outcome and a dead worker never breaks
/// the pool:
/// - a worker that crashes (segfault, abort, `exit`, a `SIGKILL` from outside, the
///   kernel's OOM killer) fails only the task it was running, with the cause in the
///   error ([`is_worker_died`](TaskError::is_worker_died), [`signal`](TaskError::signal),
///   [`exit_status`](TaskError::exit_status),
///   [`is_out_of_memory`](TaskError::is_out_of_memory)); the tasks it had been handed
///   but not started go to other workers, and a new worker replaces it;
/// - a task over its time limit ([`submit_with_timeout`](Self::submit_with_timeout) or
///   [`task_timeout`](ProcessPoolBuilder::task_timeout)) has its worker killed and
///   replaced, and fails with [`is_timeout`](TaskError::is_timeout);
/// - workers can be recycled after `max_tasks_per_child` tasks or above a memory
///   threshold, and killed above a memory limit;
/// - shutdown, [`terminate`](Self::terminate) and drop leave no worker or zombie
///   behind; dropping the executor waits for the queued tasks, like Python's `with`.
///
/// Futures complete on the pool's dispatcher thread, which also runs their done-callbacks:
/// a callback should be quick and must not wait for another future of the same pool.
///
/// ```
/// use concur::futures::{Executor, MapOptions};
/// use concur::process::ProcessPoolExecutor;
///
/// fn square(x: u64) -> u64 { x * x }
/// let pool = ProcessPoolExecutor::new(2);
/// assert_eq!(pool.call(square, 7).unwrap().result().unwrap(), 49);
/// assert_eq!(pool.submit(|| std::process::id() != 0).unwrap().result().unwrap(), true);
/// let squares: Vec<u64> = pool
///     .map(square, 1..=4, MapOptions::new())
///     .unwrap()
///     .collect::<Result<_, _>>()
///     .unwrap();
/// assert_eq!(squares, [1, 4, 9, 16]);
/// ```
#[derive(Clone)]
pub struct ProcessPoolExecutor {
    inner: Arc<Inner>,
}

impl fmt::Debug for ProcessPoolExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessPoolExecutor")
            .field("max_workers", &self.inner.cfg.max_workers)
            .field("start_method", &self.inner.cfg.method)
            .finish_non_exhaustive()
    }
}

impl Default for ProcessPoolExecutor {
    fn default() -> Self {
        ProcessPoolBuilder::new().build()
    }
}

impl ProcessPoolExecutor {
    /// A pool of at most `max_workers` processes (at least 1) with the defaults of
    /// [`ProcessPoolBuilder`]. Starts nothing until the first task.
    ///
    /// ```
    /// let pool = concur::process::ProcessPoolExecutor::new(3);
    /// assert_eq!(pool.max_workers(), 3);
    /// ```
    pub fn new(max_workers: usize) -> Self {
        ProcessPoolBuilder::new().max_workers(max_workers).build()
    }

    /// A builder for the other settings.
    ///
    /// ```
    /// let pool = concur::process::ProcessPoolExecutor::builder().max_workers(2).build();
    /// assert_eq!(pool.max_workers(), 2);
    /// ```
    pub fn builder() -> ProcessPoolBuilder {
        ProcessPoolBuilder::new()
    }

    /// The most worker processes this pool runs at once.
    ///
    /// ```
    /// assert_eq!(concur::process::ProcessPoolExecutor::new(2).max_workers(), 2);
    /// ```
    pub fn max_workers(&self) -> usize {
        self.inner.cfg.max_workers
    }

    /// How many worker processes this pool has started in its life (replacements
    /// included).
    ///
    /// ```
    /// use concur::futures::Executor;
    /// let pool = concur::process::ProcessPoolExecutor::new(1);
    /// assert_eq!(pool.workers_started(), 0);
    /// pool.call(|x: u8| x, 1).unwrap().result().unwrap();
    /// assert_eq!(pool.workers_started(), 1);
    /// ```
    pub fn workers_started(&self) -> u64 {
        self.shared().map_or(0, |s| {
            s.started_workers.load(std::sync::atomic::Ordering::Relaxed)
        })
    }

    /// The process ids of the pool's live workers (empty before the first task and
    /// after shutdown). A snapshot: workers come and go.
    ///
    /// ```
    /// use concur::futures::Executor;
    /// let pool = concur::process::ProcessPoolExecutor::new(1);
    /// let pid = pool.call(|_: ()| std::process::id(), ()).unwrap().result().unwrap();
    /// assert_eq!(pool.worker_pids(), vec![pid]);
    /// ```
    pub fn worker_pids(&self) -> Vec<u32> {
        self.shared().map_or_else(Vec::new, |s| {
            s.pids
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
        })
    }

    /// How many worker processes the pool has now (started and not yet gone): at most
    /// [`max_workers`](Self::max_workers), fewer before the work needs them or while
    /// the system refuses to start more. A snapshot: workers come and go.
    ///
    /// A pool that cannot start a worker (too many open files or processes, no memory)
    /// keeps serving on the workers it has, logs the cause through `tracing` (a
    /// warning), keeps it for [`last_start_error`](Self::last_start_error), and tries
    /// again after a backoff that doubles up to 2 s; only a pool left with no worker at
    /// all fails its tasks, each with the cause
    /// ([`is_broken_executor`](TaskError::is_broken_executor)).
    ///
    /// ```
    /// use concur::futures::Executor;
    /// let pool = concur::process::ProcessPoolExecutor::new(1);
    /// assert_eq!(pool.workers_alive(), 0);
    /// pool.call(|x: u8| x, 1).unwrap().result().unwrap();
    /// assert_eq!(pool.workers_alive(), 1);
    /// ```
    pub fn workers_alive(&self) -> usize {
        self.shared().map_or(0, |s| {
            s.pids
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .len()
        })
    }

    /// Why the pool's last failed worker start failed (for example "could not start a
    /// worker process: Too many open files"), or `None` if every start so far worked.
    /// It stays after later starts succeed: compare
    /// [`workers_alive`](Self::workers_alive) with [`max_workers`](Self::max_workers)
    /// to know whether the pool is short of workers now.
    ///
    /// ```
    /// use concur::futures::Executor;
    /// let pool = concur::process::ProcessPoolExecutor::new(1);
    /// pool.call(|x: u8| x, 1).unwrap().result().unwrap();
    /// assert_eq!(pool.last_start_error(), None);
    /// ```
    pub fn last_start_error(&self) -> Option<String> {
        self.shared().and_then(|s| {
            s.last_start_error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
        })
    }

    /// Schedules `f(args)` with a time limit of its own (counted from its start): if it
    /// runs longer, its worker is killed and replaced and the task fails with
    /// [`is_timeout`](TaskError::is_timeout).
    ///
    /// # Errors
    /// As [`Executor::submit`].
    ///
    /// ```
    /// use std::time::Duration;
    /// fn spin(_: ()) { loop { std::hint::spin_loop() } }
    /// let pool = concur::process::ProcessPoolExecutor::new(1);
    /// let f = pool.submit_with_timeout(spin, (), Duration::from_millis(200)).unwrap();
    /// assert!(f.result().unwrap_err().is_timeout());
    /// ```
    pub fn submit_with_timeout<F, A, T>(
        &self,
        f: F,
        args: A,
        timeout: Duration,
    ) -> Result<Future<T>, TaskError>
    where
        F: Fn(A) -> T + Copy + 'static,
        A: Serialize + DeserializeOwned,
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        let () = crate::process::child::NoCaptures::<F>::CHECK;
        let _ = f;
        let t: TaskTrampoline = wire::call_trampoline::<F, A, T>;
        self.push(t, &args, Some(timeout), |p| Typed(p))
    }

    /// Schedules `f(args)` (with a time limit of its own, as
    /// [`submit_with_timeout`](Self::submit_with_timeout), or the pool's) and returns
    /// its future with an [`AbortHandle`] that stops it wherever it is: a task still
    /// queued or handed to a worker but not started is cancelled (its future
    /// [`cancelled`](Future::cancelled)); a running one has its worker killed and
    /// replaced, and its future fails with an [`is_cancelled`](TaskError::is_cancelled)
    /// error; a finished one is left as it is. Never blocks.
    ///
    /// # Errors
    /// As [`Executor::submit`].
    ///
    /// ```
    /// fn nap(ms: u64) { std::thread::sleep(std::time::Duration::from_millis(ms)) }
    /// let pool = concur::process::ProcessPoolExecutor::new(1);
    /// let (f, abort) = pool.call_abortable(nap, 60_000, None).unwrap();
    /// abort.abort();
    /// assert!(f.result().unwrap_err().is_cancelled());
    /// ```
    pub fn call_abortable<F, A, T>(
        &self,
        f: F,
        args: A,
        timeout: Option<Duration>,
    ) -> Result<(Future<T>, AbortHandle), TaskError>
    where
        F: Fn(A) -> T + Copy + 'static,
        A: Serialize + DeserializeOwned,
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        let flag = Arc::new(AtomicBool::new(false));
        let fut = self.push_task(
            trampoline_of(f),
            &args,
            timeout,
            |p| Typed(p),
            Some(flag.clone()),
        )?;
        let handle = AbortHandle {
            inner: Arc::new(AbortInner {
                flag,
                future: Box::new(fut.clone()),
                dispatcher: self.shared().map(Arc::downgrade),
            }),
        };
        Ok((fut, handle))
    }

    /// Kills every worker at once: tasks not finished fail (queued ones are
    /// cancelled, running ones end with an [`is_cancelled`](TaskError::is_cancelled)
    /// error) and the pool accepts nothing more. Waits until the workers are reaped.
    ///
    /// # Errors
    /// [`is_self_wait`](TaskError::is_self_wait) from a done-callback of this pool's
    /// futures (it is terminated, not waited for).
    ///
    /// ```
    /// use concur::futures::Executor;
    /// fn nap(ms: u64) { std::thread::sleep(std::time::Duration::from_millis(ms)) }
    /// let pool = concur::process::ProcessPoolExecutor::new(1);
    /// let f = pool.call(nap, 10_000).unwrap();
    /// pool.terminate().unwrap();
    /// assert!(f.result().is_err());
    /// ```
    pub fn terminate(&self) -> Result<(), TaskError> {
        match self.shared() {
            Some(s) => s.terminate(),
            None => Ok(()),
        }
    }

    fn shared(&self) -> Option<&Arc<Shared>> {
        self.inner.shared.as_ref().ok()
    }

    /// Encodes and queues a task.
    fn push<A: Serialize, T, C: Completion + 'static>(
        &self,
        trampoline: TaskTrampoline,
        args: &A,
        timeout: Option<Duration>,
        completion: impl FnOnce(Promise<T>) -> C,
    ) -> Result<Future<T>, TaskError> {
        self.push_task(trampoline, args, timeout, completion, None)
    }

    /// [`push`](Self::push), with the abort flag of an [`AbortHandle`].
    fn push_task<A: Serialize, T, C: Completion + 'static>(
        &self,
        trampoline: TaskTrampoline,
        args: &A,
        timeout: Option<Duration>,
        completion: impl FnOnce(Promise<T>) -> C,
        abort: Option<Arc<AtomicBool>>,
    ) -> Result<Future<T>, TaskError> {
        let shared = match &self.inner.shared {
            Ok(s) => s,
            Err(e) => {
                return Err(TaskError::broken_executor(format!(
                    "the pool could not make its wake-up descriptor: {e}"
                )));
            }
        };
        if let Some(e) = shared.closed_error() {
            return Err(e);
        }
        let (frame, fds) = encode(wire::offset_of_task(trampoline), args)?;
        let promise = Promise::new();
        // Queued: a cancel takes the task back at once (the dispatcher drops it when
        // it gets there), so the pool knows of the cancellation when it happens.
        let queued = promise.set_cancel_guard(|| true);
        debug_assert!(queued);
        let fut = promise.future();
        let task = Task {
            frame,
            fds,
            timeout: timeout.or(self.inner.cfg.task_timeout),
            done: Box::new(completion(promise)),
            abort,
        };
        shared.push(&self.inner.cfg, task)?;
        Ok(fut)
    }
}

/// A serialization failure as a task error (its source is the [`ProcessError`]).
fn serialization_error(message: String) -> TaskError {
    TaskError::user(ProcessError::serialization(message))
}

/// The largest task frame body: what the frame header's 32-bit length can say (and
/// what the workers' connections accept).
const MAX_TASK_BODY: usize = u32::MAX as usize;

/// The frame of a task: header, trampoline offset, serialized argument.
fn encode<A: Serialize>(offset: i64, args: &A) -> Result<(Vec<u8>, Vec<OwnedFd>), TaskError> {
    encode_within(offset, args, MAX_TASK_BODY)
}

/// [`encode`] with a frame body of at most `max_body` bytes: the argument's encoding
/// stops (and stops growing the buffer) as soon as it passes the limit, instead of
/// being encoded whole and measured after.
fn encode_within<A: Serialize>(
    offset: i64,
    args: &A,
    max_body: usize,
) -> Result<(Vec<u8>, Vec<OwnedFd>), TaskError> {
    let mut buf = Vec::with_capacity(64);
    buf.extend_from_slice(&[0; FRAME_HEADER]);
    buf.extend_from_slice(&offset.to_le_bytes());
    // The sequence number, filled in when the task is handed to a worker.
    buf.extend_from_slice(&[0; 8]);
    let limit = FRAME_HEADER.saturating_add(max_body);
    let (encoded, fds) = fds::collect_fds(|| capped::extend(args, &mut buf, limit));
    match encoded {
        Ok(()) => {}
        Err(CapError::Over { at_least }) => {
            return Err(serialization_error(format!(
                "the task's argument is too large to send (at least {} bytes, more than \
                 a task frame's {max_body})",
                at_least - FRAME_HEADER
            )));
        }
        Err(CapError::Encode(e)) => {
            let e = why::explain(&e, args);
            return Err(serialization_error(format!(
                "the task's argument could not be serialized: {e}"
            )));
        }
    }
    let len = buf.len() - FRAME_HEADER;
    if fds.len() > MAX_FDS {
        return Err(serialization_error(format!(
            "the task's argument is too large to send ({len} bytes, {} descriptors)",
            fds.len()
        )));
    }
    buf[..FRAME_HEADER].copy_from_slice(&frame_header(len, fds.len()));
    Ok((buf, fds))
}

/// Decodes a worker's report of a `T`.
pub(crate) fn decode_report<T: DeserializeOwned>(
    body: &[u8],
    fds: Vec<OwnedFd>,
) -> Result<T, TaskError> {
    match fds::provide_fds(fds, || postcard::from_bytes::<Report<T>>(body)) {
        Ok(Report::Ok(v)) => Ok(v),
        Ok(Report::Panic { message, location }) => Err(TaskError::panic(message, location)),
        Ok(Report::Failed { message, .. }) => Err(serialization_error(message)),
        Ok(Report::Progress { .. }) => Err(serialization_error(
            "the worker sent progress where the task's result belongs".to_owned(),
        )),
        Err(e) => Err(serialization_error(format!(
            "the task's result could not be decoded: {e}"
        ))),
    }
}

/// Installs the cancel guard of a handed task: true if the task is to run (its
/// future pending, or already marked running by an earlier hand-over).
fn handed<T>(p: &Promise<T>, guard: CancelGuard) -> bool {
    p.set_cancel_guard(guard) || !p.future().done()
}

/// Completes a `Future<T>` from a report of a `T`.
struct Typed<T>(Promise<T>);

impl<T: DeserializeOwned + Send + 'static> Completion for Typed<T> {
    fn handed(&mut self, guard: CancelGuard) -> bool {
        handed(&self.0, guard)
    }

    fn progress(&self, p: concur_core::futures::Progress) {
        self.0.set_progress(p);
    }

    fn queued(&mut self) {
        self.0.set_cancel_guard(|| true);
    }

    fn running(&mut self) {
        // False if a cancel found the task started already (the guard made the future
        // running) or won just before the start: the report decides either way.
        let _pending = self.0.set_running();
    }

    fn try_cancel(&self) {
        self.0.future().cancel();
    }

    fn complete(self: Box<Self>, outcome: Result<(&[u8], Vec<OwnedFd>), TaskError>) {
        // False if the future was cancelled (or failed by the pool) meanwhile: it
        // keeps that first outcome.
        let _first = match outcome.and_then(|(body, fds)| decode_report::<T>(body, fds)) {
            Ok(v) => self.0.set_result(v),
            Err(e) => self.0.set_error(e),
        };
    }

    fn cancel(self: Box<Self>) {
        if !self.0.future().cancel() {
            // Running: it ends cancelled all the same (its worker was stopped).
            let _first = self.0.set_error(TaskError::cancelled());
        }
    }
}

/// Completes a map chunk's future from a report of per-item reports.
struct ChunkDone<T> {
    promise: Promise<Chunk<T>>,
    progress: ChunkProgress,
    items: usize,
}

impl<T: DeserializeOwned + Send + 'static> Completion for ChunkDone<T> {
    fn handed(&mut self, guard: CancelGuard) -> bool {
        handed(&self.promise, guard)
    }

    fn progress(&self, p: concur_core::futures::Progress) {
        self.promise.set_progress(p);
    }

    fn queued(&mut self) {
        self.promise.set_cancel_guard(|| true);
    }

    fn running(&mut self) {
        // As `Typed::running`.
        let _pending = self.promise.set_running();
    }

    fn try_cancel(&self) {
        self.promise.future().cancel();
    }

    fn complete(self: Box<Self>, outcome: Result<(&[u8], Vec<OwnedFd>), TaskError>) {
        let r = outcome.and_then(|(body, fds)| decode_report::<ChunkResults<T>>(body, fds));
        // Items of a chunk that never ran (cancelled) are not progress.
        if !matches!(&r, Err(e) if e.is_cancelled()) {
            self.progress.items_done(self.items);
        }
        match r {
            Ok(ChunkResults(out)) => {
                // As in `Typed::complete`: a cancel or failure that came first stays.
                let _first = self.promise.set_result(out);
            }
            Err(e) => {
                let _first = self.promise.set_error(e);
            }
        }
    }

    fn cancel(self: Box<Self>) {
        if !self.promise.future().cancel() {
            // As `Typed::cancel`.
            let _first = self.promise.set_error(TaskError::cancelled());
        }
    }
}

/// A chunk's results decoded from the worker's sequence of per-item `Report<T>`s
/// straight into the chunk's `Vec` (one allocation per chunk, none per item, no
/// intermediate `Vec<Report<T>>`).
struct ChunkResults<T>(Chunk<T>);

impl<'de, T: DeserializeOwned> serde::Deserialize<'de> for ChunkResults<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Items<T>(std::marker::PhantomData<T>);
        impl<'de, T: DeserializeOwned> serde::de::Visitor<'de> for Items<T> {
            type Value = Chunk<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a sequence of per-item reports")
            }
            fn visit_seq<S: serde::de::SeqAccess<'de>>(
                self,
                mut seq: S,
            ) -> Result<Chunk<T>, S::Error> {
                // The length comes from the peer: trust it only as far as a bound.
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
                while let Some(r) = seq.next_element::<Report<T>>()? {
                    out.push(match r {
                        Report::Ok(v) => Ok(v),
                        Report::Panic { message, location } => {
                            Err(TaskError::panic(message, location))
                        }
                        Report::Failed { message, .. } => Err(serialization_error(message)),
                        Report::Progress { .. } => Err(serialization_error(
                            "progress in place of an item's result".to_owned(),
                        )),
                    });
                }
                Ok(out)
            }
        }
        d.deserialize_seq(Items(std::marker::PhantomData))
            .map(ChunkResults)
    }
}

/// Makes a zero-argument closure a one-argument function of `()` (still zero-sized).
fn unit_arg<F: Fn() -> T + Copy, T>(f: F) -> impl Fn(()) -> T + Copy {
    move |()| f()
}

/// A closure that captures nothing: `pool.submit(|| ..)`.
impl<F, T> Runs<F> for ProcessPoolExecutor
where
    F: Fn() -> T + Copy + 'static,
    T: Serialize + DeserializeOwned + Send + 'static,
{
    type Output = T;

    fn submit_job(&self, f: F) -> Result<Future<T>, TaskError> {
        self.push(trampoline_of(unit_arg(f)), &(), None, |p| Typed(p))
    }
}

/// The trampoline of `f`'s type (`f` itself is zero-sized and not needed).
fn trampoline_of<F, A, T>(f: F) -> TaskTrampoline
where
    F: Fn(A) -> T + Copy + 'static,
    A: DeserializeOwned,
    T: Serialize,
{
    let () = crate::process::child::NoCaptures::<F>::CHECK;
    let _ = f;
    wire::call_trampoline::<F, A, T>
}

/// `f(args)`: `pool.call(f, args)`.
impl<F, A, T> Runs<Call<F, A>> for ProcessPoolExecutor
where
    F: Fn(A) -> T + Copy + 'static,
    A: Serialize + DeserializeOwned,
    T: Serialize + DeserializeOwned + Send + 'static,
{
    type Output = T;

    fn submit_job(&self, call: Call<F, A>) -> Result<Future<T>, TaskError> {
        let (f, args) = call.into_parts();
        self.push(trampoline_of(f), &args, None, |p| Typed(p))
    }
}

/// The chunks of [`Executor::map`]: a chunk runs in one worker, each item's panic
/// caught at its item; progress is reported when the chunk's results arrive.
impl<F, A, T> Runs<MapChunk<F, A>> for ProcessPoolExecutor
where
    F: Fn(A) -> T + Copy + 'static,
    A: Serialize + DeserializeOwned,
    T: Serialize + DeserializeOwned + Send + 'static,
{
    type Output = Chunk<T>;

    fn submit_job(&self, chunk: MapChunk<F, A>) -> Result<Future<Chunk<T>>, TaskError> {
        let (_f, items, progress) = chunk.into_parts();
        let () = crate::process::child::NoCaptures::<F>::CHECK;
        let t: TaskTrampoline = wire::chunk_trampoline::<F, A, T>;
        let n = items.len();
        self.push(t, &items, None, |promise| ChunkDone {
            promise,
            progress,
            items: n,
        })
    }
}

impl Executor for ProcessPoolExecutor {
    fn shutdown(&self, wait: bool, cancel_futures: bool) -> Result<(), TaskError> {
        match self.shared() {
            Some(s) => s.shutdown(wait, cancel_futures),
            None => Ok(()),
        }
    }
}

// ---- aborting one task -------------------------------------------------------------------

/// Stops one task of a [`ProcessPoolExecutor`] wherever it is (see
/// [`ProcessPoolExecutor::call_abortable`]). Clones stop the same task; the handle
/// keeps neither the pool nor its workers alive.
///
/// ```
/// let pool = concur::process::ProcessPoolExecutor::new(1);
/// let (f, abort) = pool.call_abortable(|x: u32| x + 1, 1, None).unwrap();
/// assert_eq!(f.result().unwrap(), 2);
/// abort.abort(); // finished: nothing to stop
/// assert_eq!(f.result().unwrap(), 2);
/// ```
#[derive(Clone)]
pub struct AbortHandle {
    inner: Arc<AbortInner>,
}

struct AbortInner {
    /// Read by the dispatcher, which kills the worker whose running task has it set.
    flag: Arc<AtomicBool>,
    future: Box<dyn AbortTarget>,
    /// To wake the dispatcher (it checks the flags at every round).
    dispatcher: Option<std::sync::Weak<Shared>>,
}

/// The task's future, whatever its value type.
trait AbortTarget: Send + Sync {
    /// Cancels it if it has not started: true if it is cancelled.
    fn cancel(&self) -> bool;
    /// True once it has an outcome.
    fn done(&self) -> bool;
}

impl<T: Send> AbortTarget for Future<T> {
    fn cancel(&self) -> bool {
        Future::cancel(self)
    }
    fn done(&self) -> bool {
        Future::done(self)
    }
}

impl AbortHandle {
    /// Stops the task: cancels it if it has not started (at once); if it runs, asks
    /// the pool to kill its worker (the future then fails with an
    /// [`is_cancelled`](TaskError::is_cancelled) error, and a new worker takes the
    /// killed one's place); nothing once it has finished. Never blocks; calling it
    /// again is harmless.
    ///
    /// ```
    /// fn nap(ms: u64) { std::thread::sleep(std::time::Duration::from_millis(ms)) }
    /// let pool = concur::process::ProcessPoolExecutor::new(1);
    /// let (busy, _) = pool.call_abortable(nap, 200, None).unwrap();
    /// let (queued, abort) = pool.call_abortable(nap, 0, None).unwrap();
    /// abort.abort();
    /// assert!(queued.cancelled());
    /// busy.result().unwrap();
    /// ```
    pub fn abort(&self) {
        let a = &self.inner;
        if a.future.done() || a.future.cancel() {
            return;
        }
        // It runs (or finished just now: the dispatcher then finds no task to stop).
        a.flag.store(true, Ordering::SeqCst);
        if let Some(shared) = a.dispatcher.as_ref().and_then(std::sync::Weak::upgrade) {
            shared.poke();
        }
    }
}

impl fmt::Debug for AbortHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbortHandle")
            .field("done", &self.inner.future.done())
            .field("abort_requested", &self.inner.flag.load(Ordering::Relaxed))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::ser::SerializeSeq;
    use std::time::Instant;

    /// `len` bytes made one by one as they are serialized, held nowhere.
    struct Lazy(u64);

    impl Serialize for Lazy {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(self.0 as usize))?;
            for i in 0..self.0 {
                seq.serialize_element(&(i as u8))?;
            }
            seq.end()
        }
    }

    #[test]
    fn an_oversize_task_argument_stops_encoding_at_the_frame_limit() {
        let start = Instant::now();
        let e = encode_within(0, &Lazy(2 << 30), 1 << 20).unwrap_err();
        let took = start.elapsed();
        assert!(
            e.to_string().contains("too large to send"),
            "unexpected error: {e}"
        );
        // Encoding all 2 GiB takes tens of seconds; stopping at 1 MiB, milliseconds.
        assert!(took.as_secs() < 5, "took {took:?}");

        let (frame, fds) = encode_within(7, &Lazy(1000), 1 << 20).unwrap();
        assert!(fds.is_empty());
        let body = &frame[FRAME_HEADER..];
        assert_eq!(&body[..8], &7i64.to_le_bytes());
        let v: Vec<u8> = postcard::from_bytes(&body[16..]).unwrap();
        assert_eq!(v.len(), 1000);
        // Exactly the limit fits, one byte less does not.
        let exact = frame.len() - FRAME_HEADER;
        assert!(encode_within(7, &Lazy(1000), exact).is_ok());
        assert!(encode_within(7, &Lazy(1000), exact - 1).is_err());
    }
}
