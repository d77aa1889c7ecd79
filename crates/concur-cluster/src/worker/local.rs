//! The executor a worker runs its tasks on: a process pool (the default: a task that
//! crashes takes only its own process down) or a thread pool.

use std::time::Duration;

use std::sync::Arc;

use concur_core::futures::{Executor, Future, TaskError, ThreadPoolExecutor};
use concur_process::{ProcessPoolBuilder, ProcessPoolExecutor, StartMethod};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::task::{self, Run};

/// Where a worker runs the tasks it takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LocalExecutor {
    /// A [`ProcessPoolExecutor`] of one process per slot (fork-server start): a task
    /// that segfaults, aborts or runs out of memory fails alone with its cause, its
    /// process is replaced, and a task can be stopped (at its deadline, or when
    /// cancelled) by killing its process.
    #[default]
    Processes,
    /// A [`ThreadPoolExecutor`] of one thread per slot: cheaper per task, but a task
    /// that crashes takes the worker down (its tasks are then retried elsewhere), and a
    /// running task cannot be stopped: past its deadline or when cancelled, its
    /// result is dropped when it ends.
    Threads,
}

/// A task started on the local executor.
pub(crate) struct Started {
    /// `None` if the binary had no such task.
    pub(crate) future: Future<Option<Run>>,
    /// Stops it (process pools only).
    pub(crate) abort: Option<Abort>,
}

/// Stops one running task.
pub(crate) type Abort = Box<dyn Fn() + Send + Sync>;

/// A worker's initializer, for either kind of local executor.
#[derive(Clone)]
pub(crate) struct Init {
    threads: Arc<dyn Fn() + Send + Sync>,
    processes: Arc<dyn Fn(ProcessPoolBuilder) -> ProcessPoolBuilder + Send + Sync>,
}

impl std::fmt::Debug for Init {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Init")
    }
}

impl Init {
    pub(crate) fn new<F, A>(f: F, args: A) -> Init
    where
        F: Fn(A) + Copy + Send + Sync + 'static,
        A: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let a = args.clone();
        Init {
            threads: Arc::new(move || f(a.clone())),
            processes: Arc::new(move |b| b.initializer(f, args.clone())),
        }
    }
}

pub(crate) enum Local {
    Processes(ProcessPoolExecutor),
    Threads(ThreadPoolExecutor),
}

impl Local {
    pub(crate) fn new(kind: LocalExecutor, slots: usize, name: &str, init: Option<&Init>) -> Local {
        match kind {
            LocalExecutor::Processes => {
                let mut b = ProcessPoolExecutor::builder()
                    .max_workers(slots)
                    .start_method(StartMethod::ForkServer)
                    .name(name);
                if let Some(i) = init {
                    b = (i.processes)(b);
                }
                Local::Processes(b.build())
            }
            LocalExecutor::Threads => {
                let mut b = ThreadPoolExecutor::builder()
                    .max_workers(slots)
                    .thread_name_prefix(name);
                if let Some(i) = init {
                    let f = i.threads.clone();
                    b = b.initializer(move || f());
                }
                Local::Threads(b.build())
            }
        }
    }

    /// Starts the task `key` on `args`; on a process pool, stopped at `timeout`.
    pub(crate) fn start(
        &self,
        key: String,
        args: Vec<u8>,
        timeout: Option<Duration>,
    ) -> Result<Started, TaskError> {
        match self {
            Local::Processes(p) => {
                let (future, abort) = p.call_abortable(task::run_here, (key, args), timeout)?;
                Ok(Started {
                    future,
                    abort: Some(Box::new(move || abort.abort())),
                })
            }
            Local::Threads(t) => Ok(Started {
                future: t.submit(move || task::run_here((key, args)))?,
                abort: None,
            }),
        }
    }

    /// Stops taking tasks; with `wait`, waits for the ones running.
    pub(crate) fn shutdown(&self, wait: bool) {
        let _ = match self {
            Local::Processes(p) => p.shutdown(wait, true),
            Local::Threads(t) => t.shutdown(wait, true),
        };
    }
}
