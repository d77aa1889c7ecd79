//! The vocabulary the parts of a process pool share: an encoded [`Task`] waiting for a
//! worker, the [`Completion`] through which its future learns its outcome, and the
//! pool's [`Config`]. Below the executor (which makes tasks), the dispatcher (which
//! moves them) and the workers (which hold them).

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use concur_core::futures::TaskError;

use super::wire::Init;
use crate::process::StartMethod;

/// A cancel guard: true if it took the task back before it started.
pub(crate) type CancelGuard = Box<dyn FnMut() -> bool + Send>;

/// How a task's future learns its outcome (implemented per result type).
pub(crate) trait Completion: Send {
    /// The task was handed to a worker: from now on a cancel asks `guard`. False if
    /// the future was cancelled meanwhile (the task must not run).
    fn handed(&mut self, guard: CancelGuard) -> bool;
    /// The task is back in the queue: a cancel needs to ask nobody.
    fn queued(&mut self);
    /// The task is (about to be) running in its worker.
    fn running(&mut self);
    /// Completes the future from the worker's report (body and descriptors) or error.
    fn complete(self: Box<Self>, outcome: Result<(&[u8], Vec<OwnedFd>), TaskError>);
    /// Cancels the future of a task that will not run.
    fn cancel(self: Box<Self>);
    /// Cancels the future if its task has not started (through the guard).
    fn try_cancel(&self);
    /// The running task reported progress.
    fn progress(&self, _p: concur_core::futures::Progress) {}
}

/// An encoded task waiting for a worker.
pub(crate) struct Task {
    /// The whole frame: header, trampoline offset, argument.
    pub(crate) frame: Vec<u8>,
    pub(crate) fds: Vec<OwnedFd>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) done: Box<dyn Completion>,
    /// Set by the task's `AbortHandle` once the task runs and is to be stopped: the
    /// dispatcher then kills the worker running it (`None`: the task has no handle).
    pub(crate) abort: Option<Arc<AtomicBool>>,
}

/// The pool's settings, fixed at construction.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) max_workers: usize,
    pub(crate) method: StartMethod,
    pub(crate) name: String,
    pub(crate) init: Option<Init>,
    pub(crate) max_tasks_per_child: Option<usize>,
    pub(crate) task_timeout: Option<Duration>,
    pub(crate) memory_limit: Option<u64>,
    pub(crate) recycle_above: Option<u64>,
    pub(crate) memory_check: Duration,
}
