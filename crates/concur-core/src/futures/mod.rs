//! Python's `concurrent.futures` for threads: [`Future`], [`Promise`],
//! [`as_completed`], [`wait`], the [`Executor`] trait, [`ThreadPoolExecutor`] and
//! `multiprocessing.pool.ThreadPool` as [`ThreadPool`].
//!
//! ```
//! use concur::futures::{as_completed, Executor, ThreadPoolExecutor};
//!
//! let pool = ThreadPoolExecutor::new(4);
//! let fs: Vec<_> = (1..=3).map(|i| pool.submit(move || i * i).unwrap()).collect();
//! let mut got: Vec<i32> = as_completed(&fs, None).map(|f| f.unwrap().result().unwrap()).collect();
//! got.sort();
//! assert_eq!(got, vec![1, 4, 9]);
//! ```
//!
//! | Python | here |
//! |---|---|
//! | `ThreadPoolExecutor(max_workers, thread_name_prefix, initializer)` | [`ThreadPoolExecutor::builder`] |
//! | `ex.submit(f)`, `ex.map(f, xs, timeout, chunksize, buffersize)`, `ex.shutdown(wait, cancel_futures=)` | [`Executor::submit`], [`Executor::map`] + [`MapOptions`], [`Executor::shutdown`] |
//! | `fut.result(timeout)`, `exception`, `done`, `running`, `cancelled`, `cancel`, `add_done_callback` | the same names on [`Future`] (`result_timeout`) |
//! | `fut.set_running_or_notify_cancel()`, `set_result`, `set_exception` | [`Promise::set_running`], [`Promise::set_result`], [`Promise::set_error`] |
//! | `as_completed(fs, timeout)`, `wait(fs, timeout, return_when)` | [`as_completed`], [`wait`] + [`ReturnWhen`] |
//! | `asyncio.to_thread(f)` | [`to_thread`] (awaitable in any runtime) |
//! | `CancelledError`, `TimeoutError`, `BrokenExecutor` | [`TaskError`] predicates |
//! | subclassing `Executor` | the implementor's API in [`exec`] ([`exec::Runs`] per task form) |
//! | `multiprocessing.pool.ThreadPool(n)`: `apply`, `apply_async`, `map`, `map_async`, `starmap`, `imap`, `imap_unordered`, `close`, `terminate`, `join` | [`ThreadPool`], [`AsyncResult`] (`get`, `wait`, `ready`, `successful`) |
//! | `tqdm`-style progress over `map`/`imap` | [`MapOptions::progress`] + [`Progress`] |

mod async_result;
mod error;
pub mod exec;
mod executor;
mod future;
mod pool;
mod pool_core;
mod progress;
mod slice_map;
mod thread_pool;
mod wait;

pub use async_result::AsyncResult;
pub use error::TaskError;
pub use executor::{Executor, Map, MapOptions, Progress};
pub use future::{
    Future, ProgressReporter, Promise, progress, reset_unobserved_failure_hook,
    set_unobserved_failure_hook, unobserved_failures,
};
pub use pool::{IMapUnordered, ThreadPool};
pub use pool_core::{StarArgs, UnorderedMap};
pub use thread_pool::{ThreadPoolBuilder, ThreadPoolExecutor};
pub use wait::{AsCompleted, DoneAndNotDone, ReturnWhen, as_completed, wait};

/// Runs blocking `f` on a process-wide default pool (`min(32, cpus + 4)` threads,
/// started lazily) and returns its future, which can be awaited in any async runtime
/// or waited on with [`Future::result`]: Python's `asyncio.to_thread`.
///
/// # Panics
/// Never in practice: the default pool is never shut down.
///
/// ```
/// # // The default pool's threads live as long as the process, which Miri's leak
/// # // check reports at exit: the example runs everywhere else.
/// # #[cfg(not(miri))] {
/// let f = concur::futures::to_thread(|| 40 + 2);
/// assert_eq!(f.into_result().unwrap(), 42);
/// # }
/// ```
pub fn to_thread<T, F>(f: F) -> Future<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    static DEFAULT: std::sync::OnceLock<ThreadPoolExecutor> = std::sync::OnceLock::new();
    DEFAULT
        .get_or_init(|| {
            ThreadPoolExecutor::builder()
                .thread_name_prefix("concur-to-thread")
                .build()
        })
        .submit(f)
        .expect("the default pool is never shut down")
}
