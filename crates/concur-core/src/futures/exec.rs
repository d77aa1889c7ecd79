//! The executor implementor's API: what a crate needs to write its own
//! [`Executor`](super::Executor), and nothing a user of an executor needs.
//!
//! Users of executors call [`Executor::submit`](super::Executor::submit),
//! [`call`](super::Executor::call) and [`map`](super::Executor::map), and read
//! [`Future`](super::Future)s and [`TaskError`]s. An executor *implementor* (the
//! thread pools of this crate, the process pools of `concur-process`, the Redis
//! executor of `concur-cluster`) works one level down, and everything it needs lives
//! here, behind its own door (the habit of `lock_api`'s `RawMutex`):
//!
//! - [`Runs<J>`]: "this executor runs tasks of form `J`". An executor implements it
//!   once per task form it accepts, and the [`Executor`](super::Executor) trait's
//!   methods are written over it. The forms are a closure `|| value`, a [`Call`]
//!   (`f(args)`, Python's `submit(fn, *args)`) and a [`MapChunk`] (one run of the
//!   items of a `map`, whose results come back as a [`Chunk`]).
//! - [`ChunkProgress`] and [`MapOptionsExt`]: how a pool that chunks a map itself
//!   reads the map's options and reports items done to the map's progress hook.
//! - [`MapCollector`]: gathers the chunks of one `map_async` into one future.
//! - [`catch`]: runs a task so that its panic becomes a [`TaskError`] with its
//!   message and location; [`with_progress`]: collects what a task reports through
//!   [`progress`](super::progress).
//! - The constructors of failures only an executor can observe: a worker that
//!   [died](worker_died) or was [lost](worker_lost), one killed [out of
//!   memory](out_of_memory), a task [dead-lettered](dead_lettered) after its last
//!   attempt, one whose [deadline passed](deadline_exceeded), a worker of [another
//!   build](build_mismatch), a [malformed task message](bad_entry), a task
//!   [aborted] while it ran.
//!
//! Completing futures is done with a [`Promise`](super::Promise) (public: it is
//! also Python's `Future` "set" side), including
//! [`Promise::set_cancel_guard`](super::Promise::set_cancel_guard) for work handed
//! ahead to a place that decides on its own when it starts.
//!
//! ```
//! use concur::futures::exec::{Call, Runs};
//! use concur::futures::{Future, Promise, TaskError};
//!
//! /// An executor that runs every call at once, on the caller's thread.
//! struct Inline;
//!
//! impl<F: FnOnce(A) -> T, A, T> Runs<Call<F, A>> for Inline {
//!     type Output = T;
//!     fn submit_job(&self, job: Call<F, A>) -> Result<Future<T>, TaskError> {
//!         let (f, args) = job.into_parts();
//!         let p = Promise::new();
//!         assert!(p.set_running());
//!         assert!(p.set_result(f(args)));
//!         Ok(p.future())
//!     }
//! }
//!
//! let f = Inline.submit_job(Call::new(|x: u32| x + 1, 41)).unwrap();
//! assert_eq!(f.result().unwrap(), 42);
//! ```

pub use super::executor::{Call, Chunk, ChunkProgress, MapChunk, MapOptionsExt, Runs};
pub use super::pool_core::{MapCollector, PoolCore};

use super::error::{Kind, TaskError};

/// Runs `f`, turning a panic into an [`is_panic`](TaskError::is_panic) error with its
/// message and `file:line:column` (recorded by concur's panic hook instead of
/// printed): how an executor runs a task so that its panic becomes a value.
///
/// ```
/// let e = concur::futures::exec::catch(|| -> u8 { panic!("boom") }).unwrap_err();
/// assert_eq!(e.panic_message(), Some("boom"));
/// assert!(e.panic_location().unwrap().contains(".rs:"));
/// assert_eq!(concur::futures::exec::catch(|| 7).unwrap(), 7);
/// ```
pub fn catch<R>(f: impl FnOnce() -> R) -> Result<R, TaskError> {
    TaskError::catch(f)
}

/// Runs `f` (a task) with `report` receiving what the task reports through
/// [`progress`](super::progress) on this thread meanwhile: how an executor that runs
/// tasks elsewhere (a worker process, a cluster worker) collects their progress to send
/// it to the task's [`Promise`](super::Promise) ([`Promise::set_progress`](super::Promise::set_progress)).
///
/// ```
/// use concur::futures::{exec, progress};
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// let last = AtomicUsize::new(0);
/// let v = exec::with_progress(&|p| last.store(p.done, Ordering::SeqCst), || {
///     progress(5, Some(9));
///     42
/// });
/// assert_eq!((v, last.load(Ordering::SeqCst)), (42, 5));
/// ```
pub fn with_progress<R>(report: &(dyn Fn(super::Progress) + '_), f: impl FnOnce() -> R) -> R {
    super::future::with_progress_fn(report, f)
}

/// A worker process died before finishing the task: its exit status and/or the
/// signal that killed it, when known.
///
/// ```
/// let e = concur::futures::exec::worker_died(None, Some(9));
/// assert!(e.is_worker_died());
/// assert_eq!((e.signal(), e.exit_status()), (Some(9), None));
/// ```
pub fn worker_died(exit_status: Option<i32>, signal: Option<i32>) -> TaskError {
    TaskError::worker_died(exit_status, signal)
}

/// A worker process that the kernel's OOM killer or a memory limit killed while it
/// ran the task; `detail` says which.
///
/// ```
/// let e = concur::futures::exec::out_of_memory(Some(9), "over the pool's 64 MiB memory limit");
/// assert!(e.is_worker_died() && e.is_out_of_memory());
/// assert!(e.to_string().contains("out of memory"));
/// ```
pub fn out_of_memory(signal: Option<i32>, detail: impl Into<String>) -> TaskError {
    TaskError::out_of_memory(signal, detail)
}

/// The worker that held the task at attempt `attempt` (1 for the first) was lost:
/// it died, or stopped renewing its lease, and the task was taken back.
/// [`is_worker_died`](TaskError::is_worker_died) is true; `signal` is the signal that
/// killed it, when known.
///
/// ```
/// let e = concur::futures::exec::worker_lost(2, Some(9));
/// assert!(e.is_worker_died());
/// assert_eq!((e.attempt(), e.signal()), (Some(2), Some(9)));
/// ```
pub fn worker_lost(attempt: u32, signal: Option<i32>) -> TaskError {
    TaskError::worker_lost(attempt, signal)
}

/// `error`, marked as the failure of attempt `attempt` of its task.
///
/// ```
/// use concur::futures::exec;
/// let e = exec::at_attempt(exec::worker_died(None, Some(11)), 3);
/// assert_eq!(e.attempt(), Some(3));
/// ```
pub fn at_attempt(error: TaskError, attempt: u32) -> TaskError {
    error.with_attempt(attempt)
}

/// The task was given up after `attempts` attempts; `last_cause` is how the last
/// one failed.
///
/// ```
/// use concur::futures::exec;
/// let e = exec::dead_lettered(3, exec::worker_lost(3, None));
/// assert!(e.is_dead_lettered() && e.last_cause().unwrap().is_worker_died());
/// ```
pub fn dead_lettered(attempts: u32, last_cause: TaskError) -> TaskError {
    TaskError::dead_lettered(attempts, last_cause)
}

/// The task was stopped while it ran, at its submitter's request (an abort: the
/// process pool kills the worker running it). [`is_cancelled`](TaskError::is_cancelled)
/// is true, as for a cancel before the start; `message` says how it was stopped.
///
/// ```
/// let e = concur::futures::exec::aborted("its worker was killed");
/// assert!(e.is_cancelled() && e.to_string().contains("worker was killed"));
/// ```
pub fn aborted(message: impl Into<String>) -> TaskError {
    TaskError::new(Kind::Cancelled, message)
}

/// The task's deadline passed: it was not started, or was stopped where it ran.
///
/// ```
/// let e = concur::futures::exec::deadline_exceeded("stopped on its worker");
/// assert!(e.is_deadline_exceeded() && e.is_timeout());
/// ```
pub fn deadline_exceeded(message: impl Into<String>) -> TaskError {
    TaskError::new(Kind::DeadlineExceeded, message)
}

/// The executor's bound on queued or in-flight tasks is reached (a `try_submit` that
/// would have to wait).
///
/// ```
/// assert!(concur::futures::exec::full("64 tasks in flight").is_full());
/// ```
pub fn full(message: impl Into<String>) -> TaskError {
    TaskError::new(Kind::Full, message)
}

/// The worker runs another build of the program and refused the task.
///
/// ```
/// let e = concur::futures::exec::build_mismatch("the worker's build is 1a2b");
/// assert!(e.is_build_mismatch() && e.to_string().contains("1a2b"));
/// ```
pub fn build_mismatch(message: impl Into<String>) -> TaskError {
    TaskError::new(Kind::BuildMismatch, message)
}

/// The task's message was malformed, oversized or undecodable where it arrived.
///
/// ```
/// let e = concur::futures::exec::bad_entry("payload over the 1 MiB limit");
/// assert!(e.is_bad_entry());
/// ```
pub fn bad_entry(message: impl Into<String>) -> TaskError {
    TaskError::new(Kind::BadEntry, message)
}
