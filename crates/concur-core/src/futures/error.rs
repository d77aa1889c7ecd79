//! [`TaskError`]: why a future has no value.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// What kind of failure a [`TaskError`] is (kept private so kinds can be added).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Panic,
    Cancelled,
    Timeout,
    BrokenExecutor,
    Shutdown,
    SelfWait,
    Full,
    Taken,
    User,
    WorkerDied,
    InvalidState,
    DeadlineExceeded,
    DeadLettered,
    BuildMismatch,
    BadEntry,
}

#[derive(Clone)]
struct Inner {
    kind: Kind,
    message: String,
    location: Option<String>,
    exit_status: Option<i32>,
    signal: Option<i32>,
    out_of_memory: bool,
    /// Which attempt at the task this was (executors that retry).
    attempt: Option<u32>,
    /// The last failure of a dead-lettered task.
    cause: Option<TaskError>,
    source: Option<Arc<dyn Error + Send + Sync>>,
}

/// Why a [`Future`](super::Future) (or an executor call) produced no value: Python's
/// `CancelledError`, `TimeoutError`, `BrokenExecutor`, the `RuntimeError` of a submit
/// after shutdown, or the exception a task raised (here: its panic).
///
/// Opaque on purpose: ask it with the predicates. It is cheap to clone (every holder of
/// a shared future sees the same error).
///
/// A task's return value is never inspected: a closure returning `Result<U, E>` makes a
/// `Future<Result<U, E>>` whose *value* is that `Result`. Only panics, cancellation,
/// timeouts and executor failures become a `TaskError`; [`TaskError::user`] exists for
/// completers (a [`Promise`](super::Promise)) that want to report their own error.
///
/// ```
/// use concur::futures::{Executor, ThreadPoolExecutor};
///
/// let pool = ThreadPoolExecutor::new(1);
/// let f = pool.submit(|| -> u8 { panic!("boom") }).unwrap();
/// let e = f.result().unwrap_err();
/// assert!(e.is_panic());
/// assert_eq!(e.panic_message(), Some("boom"));
/// ```
#[derive(Clone)]
pub struct TaskError(Box<Inner>);

impl TaskError {
    pub(crate) fn new(kind: Kind, message: impl Into<String>) -> Self {
        TaskError(Box::new(Inner {
            kind,
            message: message.into(),
            location: None,
            exit_status: None,
            signal: None,
            out_of_memory: false,
            attempt: None,
            cause: None,
            source: None,
        }))
    }

    /// A panic with its message and `file:line:column`, for executors that run tasks
    /// elsewhere (a worker process) and bring the panic back as text.
    ///
    /// ```
    /// use concur::futures::TaskError;
    /// let e = TaskError::panic("boom".into(), Some("src/main.rs:1:1".into()));
    /// assert_eq!((e.panic_message(), e.panic_location()), (Some("boom"), Some("src/main.rs:1:1")));
    /// ```
    pub fn panic(message: String, location: Option<String>) -> Self {
        let mut e = Self::new(Kind::Panic, message);
        e.0.location = location;
        e
    }

    pub(crate) fn from_payload(p: Box<dyn std::any::Any + Send>) -> Self {
        let msg = if let Some(s) = p.downcast_ref::<&'static str>() {
            (*s).to_owned()
        } else if let Some(s) = p.downcast_ref::<String>() {
            s.clone()
        } else {
            "Box<dyn Any>".to_owned()
        };
        Self::panic(msg, None)
    }

    /// Runs `f`, turning a panic into an [`is_panic`](Self::is_panic) error with its
    /// message and `file:line:column` (recorded by the panic hook instead of printed:
    /// the panic is a value now, delivered to whoever holds the future).
    pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, TaskError> {
        crate::thread::install_panic_hook();
        crate::thread::capture(f).map_err(|(p, c)| match c {
            Some(c) => Self::panic(c.message, c.location),
            None => Self::from_payload(p),
        })
    }

    /// A call made in a state that does not allow it (Python's `ValueError` of
    /// `Pool.join` before `close`, for instance).
    ///
    /// ```
    /// let e = concur::futures::TaskError::invalid_state("join before close");
    /// assert!(e.is_invalid_state());
    /// ```
    pub fn invalid_state(message: impl Into<String>) -> Self {
        Self::new(Kind::InvalidState, message)
    }

    /// The error of a cancelled task.
    ///
    /// ```
    /// assert!(concur::futures::TaskError::cancelled().is_cancelled());
    /// ```
    pub fn cancelled() -> Self {
        Self::new(Kind::Cancelled, "the future was cancelled")
    }

    /// A timeout with `message` (a wait that ran out, or a task that overran its time
    /// limit and was stopped).
    ///
    /// ```
    /// assert!(concur::futures::TaskError::timeout("late").is_timeout());
    /// ```
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(Kind::Timeout, message)
    }

    /// A broken-executor error with `message` (used by executors whose workers cannot
    /// run tasks any more, such as a pool whose initializer failed).
    ///
    /// ```
    /// let e = concur::futures::TaskError::broken_executor("initializer failed");
    /// assert!(e.is_broken_executor());
    /// assert!(e.to_string().contains("initializer failed"));
    /// ```
    pub fn broken_executor(message: impl Into<String>) -> Self {
        Self::new(Kind::BrokenExecutor, message)
    }

    /// The error of a submit after shutdown.
    ///
    /// ```
    /// assert!(concur::futures::TaskError::shutdown().is_shutdown());
    /// ```
    pub fn shutdown() -> Self {
        Self::new(Kind::Shutdown, "cannot schedule new futures after shutdown")
    }

    /// The error of a wait that would wait for itself (a pool shut down from its own
    /// task or callback).
    ///
    /// ```
    /// assert!(concur::futures::TaskError::self_wait("from its own task").is_self_wait());
    /// ```
    pub fn self_wait(message: impl Into<String>) -> Self {
        Self::new(Kind::SelfWait, message)
    }

    pub(crate) fn full() -> Self {
        Self::new(Kind::Full, "the executor's submission queue is full")
    }

    pub(crate) fn taken() -> Self {
        Self::new(
            Kind::Taken,
            "the future's value was already taken by another handle",
        )
    }

    /// A user error, for completers that fail a future with their own error.
    ///
    /// ```
    /// use concur::futures::{Promise, TaskError};
    ///
    /// let p = Promise::<u8>::new();
    /// let f = p.future();
    /// assert!(p.set_error(TaskError::user(std::io::Error::other("disk"))));
    /// let e = f.result().unwrap_err();
    /// assert!(e.is_user());
    /// assert_eq!(e.to_string(), "disk");
    /// ```
    pub fn user(err: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        let err: Box<dyn Error + Send + Sync> = err.into();
        let mut e = Self::new(Kind::User, err.to_string());
        e.0.source = Some(Arc::from(err));
        e
    }

    /// True if the task's worker died for lack of memory (the kernel's OOM killer or
    /// a pool's memory limit killed it).
    ///
    /// ```
    /// assert!(!concur::futures::exec::worker_died(None, Some(9)).is_out_of_memory());
    /// ```
    pub fn is_out_of_memory(&self) -> bool {
        self.0.out_of_memory
    }

    /// True if the task panicked (Python: the task raised).
    ///
    /// ```
    /// let p = concur::futures::Promise::<u8>::new();
    /// let f = p.future();
    /// drop(p); // a dropped promise breaks its future, it is not a panic
    /// assert!(!f.result().unwrap_err().is_panic());
    /// ```
    pub fn is_panic(&self) -> bool {
        self.0.kind == Kind::Panic
    }

    /// The panic message, if this is a panic.
    ///
    /// ```
    /// use concur::futures::{Executor, ThreadPoolExecutor};
    /// let pool = ThreadPoolExecutor::new(1);
    /// let e = pool.submit(|| -> () { panic!("x = {}", 1) }).unwrap().result().unwrap_err();
    /// assert_eq!(e.panic_message(), Some("x = 1"));
    /// ```
    pub fn panic_message(&self) -> Option<&str> {
        self.is_panic().then_some(self.0.message.as_str())
    }

    /// Where the task panicked (`file:line:column`), when it is known: always for a
    /// task run by a pool of this crate (the panic hook records it instead of printing
    /// it); the process tier fills it in from the worker's report.
    ///
    /// ```
    /// use concur::futures::{Executor, ThreadPoolExecutor};
    /// let pool = ThreadPoolExecutor::new(1);
    /// let e = pool.submit(|| -> () { panic!("x") }).unwrap().result().unwrap_err();
    /// assert!(e.panic_location().unwrap().contains(".rs:"));
    /// ```
    pub fn panic_location(&self) -> Option<&str> {
        self.0.location.as_deref()
    }

    /// True if the future was cancelled (Python's `CancelledError`).
    ///
    /// ```
    /// let p = concur::futures::Promise::<u8>::new();
    /// let f = p.future();
    /// assert!(f.cancel());
    /// assert!(f.result().unwrap_err().is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.0.kind == Kind::Cancelled
    }

    /// True if a wait ran out of time, or a task overran its time limit or its
    /// deadline (Python's `TimeoutError`); [`is_deadline_exceeded`](Self::is_deadline_exceeded)
    /// tells the last case apart.
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = concur::futures::Promise::<u8>::new();
    /// let e = p.future().result_timeout(Duration::from_millis(1)).unwrap_err();
    /// assert!(e.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self.0.kind, Kind::Timeout | Kind::DeadlineExceeded)
    }

    /// True if the task's deadline passed before it could finish: it was not started,
    /// or it was stopped where it ran (executors that carry a deadline with each task,
    /// such as the cluster tier). Also [`is_timeout`](Self::is_timeout).
    ///
    /// ```
    /// let e = concur::futures::exec::deadline_exceeded("expired in the queue");
    /// assert!(e.is_deadline_exceeded() && e.is_timeout());
    /// assert!(!concur::futures::TaskError::timeout("late").is_deadline_exceeded());
    /// ```
    pub fn is_deadline_exceeded(&self) -> bool {
        self.0.kind == Kind::DeadlineExceeded
    }

    /// True if the task was given up after its executor's last attempt (a
    /// dead-letter); [`last_cause`](Self::last_cause) is the last attempt's failure and
    /// [`attempt`](Self::attempt) how many attempts were made.
    ///
    /// ```
    /// use concur::futures::exec;
    /// let e = exec::dead_lettered(3, exec::worker_lost(3, Some(9)));
    /// assert!(e.is_dead_lettered());
    /// assert_eq!(e.attempt(), Some(3));
    /// assert_eq!(e.last_cause().unwrap().signal(), Some(9));
    /// ```
    pub fn is_dead_lettered(&self) -> bool {
        self.0.kind == Kind::DeadLettered
    }

    /// The failure of the last attempt of a [dead-lettered](Self::is_dead_lettered)
    /// task.
    ///
    /// ```
    /// assert!(concur::futures::TaskError::cancelled().last_cause().is_none());
    /// ```
    pub fn last_cause(&self) -> Option<&TaskError> {
        self.0.cause.as_ref()
    }

    /// Which attempt at the task failed (1 for the first), for executors that retry
    /// a task whose worker was lost.
    ///
    /// ```
    /// assert_eq!(concur::futures::exec::worker_lost(2, None).attempt(), Some(2));
    /// ```
    pub fn attempt(&self) -> Option<u32> {
        self.0.attempt
    }

    /// True if the worker that took the task runs different code (another build of
    /// the program) and refused to run it rather than run the wrong function.
    ///
    /// ```
    /// let e = concur::futures::exec::build_mismatch("worker build 1a2b");
    /// assert!(e.is_build_mismatch());
    /// ```
    pub fn is_build_mismatch(&self) -> bool {
        self.0.kind == Kind::BuildMismatch
    }

    /// True if the task's message was malformed, oversized or undecodable where it was
    /// received, and was set aside instead of run.
    ///
    /// ```
    /// assert!(concur::futures::exec::bad_entry("no payload field").is_bad_entry());
    /// ```
    pub fn is_bad_entry(&self) -> bool {
        self.0.kind == Kind::BadEntry
    }

    /// True if the executor broke (Python's `BrokenExecutor`, e.g. a failed
    /// initializer), or the completer dropped its promise without an outcome.
    ///
    /// ```
    /// let p = concur::futures::Promise::<u8>::new();
    /// let f = p.future();
    /// drop(p);
    /// assert!(f.result().unwrap_err().is_broken_executor());
    /// ```
    pub fn is_broken_executor(&self) -> bool {
        self.0.kind == Kind::BrokenExecutor
    }

    /// True if the executor was shut down (a `submit` after `shutdown`).
    ///
    /// ```
    /// use concur::futures::{Executor, ThreadPoolExecutor};
    /// let pool = ThreadPoolExecutor::new(1);
    /// pool.shutdown(true, false).unwrap();
    /// assert!(pool.submit(|| 1).unwrap_err().is_shutdown());
    /// ```
    pub fn is_shutdown(&self) -> bool {
        self.0.kind == Kind::Shutdown
    }

    /// True if a task waited on its own future, or called `shutdown(wait = true)` on its
    /// own pool: both would deadlock, so they fail at once instead.
    ///
    /// ```
    /// use concur::futures::{Executor, Future, ThreadPoolExecutor};
    /// use concur::sync::Lock;
    ///
    /// let pool = ThreadPoolExecutor::new(1);
    /// let me: Lock<Option<Future<bool>>> = Lock::with_value(None);
    /// let gate = concur::sync::Event::new();
    /// let (m, g) = (me.clone(), gate.clone());
    /// let f = pool
    ///     .submit(move || {
    ///         g.wait();
    ///         let own = m.acquire().clone().unwrap();
    ///         own.done() || own.result().unwrap_err().is_self_wait()
    ///     })
    ///     .unwrap();
    /// *me.acquire() = Some(f.clone());
    /// gate.set();
    /// assert!(f.result().unwrap());
    /// ```
    pub fn is_self_wait(&self) -> bool {
        self.0.kind == Kind::SelfWait
    }

    /// True if `try_submit` found the bounded submission queue full.
    ///
    /// ```
    /// use concur::futures::ThreadPoolExecutor;
    /// let pool = ThreadPoolExecutor::builder().max_workers(1).queue_size(1).build();
    /// let gate = concur::sync::Event::new();
    /// let g = gate.clone();
    /// let mut errs = 0;
    /// for _ in 0..4 {
    ///     let g = g.clone();
    ///     if let Err(e) = pool.try_submit(move || { g.wait(); }) {
    ///         assert!(e.is_full());
    ///         errs += 1;
    ///     }
    /// }
    /// gate.set();
    /// assert!(errs >= 2);
    /// ```
    pub fn is_full(&self) -> bool {
        self.0.kind == Kind::Full
    }

    /// True if the future's value was already moved out through another handle
    /// ([`Future::into_result`](super::Future::into_result) or `.await`).
    ///
    /// ```
    /// let p = concur::futures::Promise::<String>::new();
    /// let (a, b) = (p.future(), p.future());
    /// assert!(p.set_result("x".to_owned()));
    /// assert_eq!(a.into_result().unwrap(), "x");
    /// assert!(b.result().unwrap_err().is_taken());
    /// ```
    pub fn is_taken(&self) -> bool {
        self.0.kind == Kind::Taken
    }

    /// True for an error made by [`TaskError::user`].
    ///
    /// ```
    /// let e = concur::futures::TaskError::user("bad input");
    /// assert!(e.is_user() && !e.is_panic());
    /// ```
    pub fn is_user(&self) -> bool {
        self.0.kind == Kind::User
    }

    /// True if the call does not fit the object's state, such as `join` on a pool that
    /// is still running (Python's `ValueError` there).
    ///
    /// ```
    /// let pool = concur::futures::ThreadPool::new(1);
    /// assert!(pool.join().unwrap_err().is_invalid_state());
    /// ```
    pub fn is_invalid_state(&self) -> bool {
        self.0.kind == Kind::InvalidState
    }

    /// True if the worker running the task died (a worker process of the process
    /// tier) or was lost (a cluster worker that stopped renewing its lease).
    ///
    /// ```
    /// assert!(!concur::futures::TaskError::user("x").is_worker_died());
    /// assert!(concur::futures::exec::worker_lost(1, None).is_worker_died());
    /// ```
    pub fn is_worker_died(&self) -> bool {
        self.0.kind == Kind::WorkerDied
    }

    /// The exit status of a dead worker process (process tier), if known.
    ///
    /// ```
    /// let e = concur::futures::exec::worker_died(Some(3), None);
    /// assert_eq!(e.exit_status(), Some(3));
    /// ```
    pub fn exit_status(&self) -> Option<i32> {
        self.0.exit_status
    }

    /// The signal that killed a worker process (process tier), if known.
    ///
    /// ```
    /// let e = concur::futures::exec::worker_died(None, Some(15));
    /// assert_eq!(e.signal(), Some(15));
    /// ```
    pub fn signal(&self) -> Option<i32> {
        self.0.signal
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.kind {
            Kind::Panic => {
                write!(f, "task panicked: {}", self.0.message)?;
                if let Some(l) = &self.0.location {
                    write!(f, " at {l}")?;
                }
                Ok(())
            }
            Kind::BrokenExecutor => write!(f, "broken executor: {}", self.0.message),
            Kind::WorkerDied => {
                f.write_str(&self.0.message)?;
                if let Some(s) = self.0.exit_status {
                    write!(f, " (exit status {s})")?;
                }
                if let Some(s) = self.0.signal {
                    write!(f, " (signal {s})")?;
                }
                if let Some(a) = self.0.attempt {
                    write!(f, " (attempt {a})")?;
                }
                Ok(())
            }
            Kind::DeadLettered => {
                f.write_str(&self.0.message)?;
                if let Some(c) = &self.0.cause {
                    write!(f, "; last cause: {c}")?;
                }
                Ok(())
            }
            Kind::BuildMismatch => write!(f, "build mismatch: {}", self.0.message),
            Kind::BadEntry => write!(f, "bad task entry: {}", self.0.message),
            _ => f.write_str(&self.0.message),
        }
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskError")
            .field("kind", &self.0.kind)
            .field("message", &self.0.message)
            .finish()
    }
}

impl Error for TaskError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        if let Some(c) = &self.0.cause {
            return Some(c);
        }
        self.0
            .source
            .as_deref()
            .map(|e| e as &(dyn Error + 'static))
    }
}

// ---- constructors for executor implementors (published in `exec`) ----------------------

impl TaskError {
    pub(crate) fn worker_died(exit_status: Option<i32>, signal: Option<i32>) -> Self {
        let mut e = Self::new(Kind::WorkerDied, "the worker running the task died");
        e.0.exit_status = exit_status;
        e.0.signal = signal;
        e
    }

    pub(crate) fn out_of_memory(signal: Option<i32>, detail: impl Into<String>) -> Self {
        let mut e = Self::new(
            Kind::WorkerDied,
            format!(
                "the worker running the task died: out of memory ({})",
                detail.into()
            ),
        );
        e.0.signal = signal;
        e.0.out_of_memory = true;
        e
    }

    pub(crate) fn worker_lost(attempt: u32, signal: Option<i32>) -> Self {
        let mut e = Self::new(
            Kind::WorkerDied,
            "the worker running the task was lost (its lease lapsed)",
        );
        e.0.signal = signal;
        e.0.attempt = Some(attempt);
        e
    }

    pub(crate) fn with_attempt(mut self, attempt: u32) -> Self {
        self.0.attempt = Some(attempt);
        self
    }

    pub(crate) fn dead_lettered(attempts: u32, last_cause: TaskError) -> Self {
        let mut e = Self::new(
            Kind::DeadLettered,
            format!("the task was dead-lettered after {attempts} attempt(s)"),
        );
        e.0.attempt = Some(attempts);
        e.0.cause = Some(last_cause);
        e
    }
}
