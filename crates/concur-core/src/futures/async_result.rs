//! [`AsyncResult`]: Python's `multiprocessing.pool.AsyncResult`, the pending result of
//! a pool's `apply_async` or `map_async`, for the thread pool and the process pool
//! alike (a thin view of a [`Future`]).

use super::error::TaskError;
use super::future::Future;
use std::time::{Duration, Instant};

/// The pending result of a pool's `apply_async` or `map_async` (the
/// [`ThreadPool`](super::ThreadPool)'s, the process tier's `ProcessPool`'s): Python's
/// `AsyncResult` (`get`, `wait`, `ready`, `successful`), a thin view of a [`Future`].
///
/// ```
/// let pool = concur::futures::ThreadPool::new(1);
/// let r = pool.apply_async(|| 2 + 2).unwrap();
/// r.wait();
/// assert_eq!(r.successful(), Some(true));
/// assert_eq!(r.get().unwrap(), 4);
/// ```
#[derive(Debug)]
pub struct AsyncResult<T>(Future<T>);

/// Wraps a future as an `AsyncResult` (for pools built on other executors, such as
/// the process pools).
///
/// ```
/// use concur::futures::{AsyncResult, Promise};
/// let p = Promise::new();
/// let r = AsyncResult::from(p.future());
/// assert!(p.set_result(7));
/// assert_eq!(r.get().unwrap(), 7);
/// ```
impl<T> From<Future<T>> for AsyncResult<T> {
    fn from(f: Future<T>) -> Self {
        AsyncResult(f)
    }
}

impl<T> AsyncResult<T> {
    /// True once the task finished, failed or was cancelled (Python's `ready`).
    ///
    /// ```
    /// let pool = concur::futures::ThreadPool::new(1);
    /// let r = pool.apply_async(|| ()).unwrap();
    /// r.wait();
    /// assert!(r.ready());
    /// ```
    pub fn ready(&self) -> bool {
        self.0.done()
    }

    /// `Some(true)` if it finished with a value, `Some(false)` if it failed, `None`
    /// while not ready (where Python raises `ValueError`).
    ///
    /// ```
    /// let pool = concur::futures::ThreadPool::new(1);
    /// let r = pool.apply_async(|| -> u8 { panic!("x") }).unwrap();
    /// r.wait();
    /// assert_eq!(r.successful(), Some(false));
    /// ```
    pub fn successful(&self) -> Option<bool> {
        if !self.0.done() {
            return None;
        }
        Some(matches!(self.0.exception(Some(Duration::ZERO)), Ok(None)))
    }

    /// Blocks until ready (Python's `wait()`); never fails.
    ///
    /// ```
    /// let pool = concur::futures::ThreadPool::new(1);
    /// let r = pool.apply_async(|| 1).unwrap();
    /// r.wait();
    /// assert!(r.ready());
    /// ```
    pub fn wait(&self) {
        let _ = self.0.wait_done(None);
    }

    /// Blocks until ready or `timeout` passes; true if ready (Python's
    /// `wait(timeout)`, which tells through `ready()`).
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = concur::futures::ThreadPool::new(1);
    /// let r = pool.apply_async(|| std::thread::sleep(Duration::from_millis(20))).unwrap();
    /// assert!(r.wait_timeout(Duration::from_secs(5)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(crate::time::deadline_after(timeout))
    }

    /// Blocks until ready or `deadline`; true if ready.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let pool = concur::futures::ThreadPool::new(1);
    /// let r = pool.apply_async(|| ()).unwrap();
    /// assert!(r.wait_deadline(Instant::now() + Duration::from_secs(5)));
    /// ```
    pub fn wait_deadline(&self, deadline: Instant) -> bool {
        self.wait_until(Some(deadline))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        let _ = self.0.wait_done(deadline);
        self.0.done()
    }

    /// Blocks until ready and moves the value out, for any `T`.
    ///
    /// # Errors
    /// The task's error (panic, cancellation, broken pool) or a self-wait.
    ///
    /// ```
    /// let pool = concur::futures::ThreadPool::new(1);
    /// let r = pool.apply_async(|| String::from("owned")).unwrap();
    /// assert_eq!(r.into_result().unwrap(), "owned");
    /// ```
    pub fn into_result(self) -> Result<T, TaskError> {
        self.0.into_result()
    }

    /// Calls `f` with the result once ready (at once if it is): Python's `callback` and
    /// `error_callback` in one; see [`Future::add_done_callback`].
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// let pool = concur::futures::ThreadPool::new(1);
    /// let seen = Arc::new(AtomicBool::new(false));
    /// let s = seen.clone();
    /// let r = pool.apply_async(|| 3).unwrap();
    /// r.add_done_callback(move |f| s.store(f.result().unwrap() == 3, Ordering::SeqCst));
    /// pool.close();
    /// pool.join().unwrap();
    /// assert!(seen.load(Ordering::SeqCst));
    /// ```
    pub fn add_done_callback(&self, f: impl FnOnce(&Future<T>) + Send + 'static) {
        self.0.add_done_callback(f);
    }

    /// The underlying future (for `as_completed`, `wait`, `.await`).
    ///
    /// ```
    /// let pool = concur::futures::ThreadPool::new(1);
    /// let f = pool.apply_async(|| 1).unwrap().into_future();
    /// assert_eq!(f.result().unwrap(), 1);
    /// ```
    pub fn into_future(self) -> Future<T> {
        self.0
    }
}

impl<T: Clone> AsyncResult<T> {
    /// Blocks until ready and returns (a clone of) the value (Python's `get()`).
    ///
    /// # Errors
    /// The task's error: its panic, cancellation (after `terminate`), a broken pool, or
    /// the first failing item of a `map_async`.
    ///
    /// ```
    /// let pool = concur::futures::ThreadPool::new(1);
    /// assert_eq!(pool.apply_async(|| 1).unwrap().get().unwrap(), 1);
    /// ```
    pub fn get(&self) -> Result<T, TaskError> {
        self.0.result()
    }

    /// [`get`](Self::get), giving up after `timeout` with an
    /// [`is_timeout`](TaskError::is_timeout) error (Python's `get(timeout)`).
    ///
    /// # Errors
    /// As `get`, plus the timeout.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = concur::futures::ThreadPool::new(1);
    /// let r = pool.apply_async(|| std::thread::sleep(Duration::from_millis(200))).unwrap();
    /// assert!(r.get_timeout(Duration::from_millis(1)).unwrap_err().is_timeout());
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, TaskError> {
        self.0.result_timeout(timeout)
    }

    /// [`get`](Self::get), giving up at `deadline`.
    ///
    /// # Errors
    /// As `get_timeout`.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let pool = concur::futures::ThreadPool::new(1);
    /// let deadline = Instant::now() + Duration::from_secs(30);
    /// assert_eq!(pool.apply_async(|| 'x').unwrap().get_deadline(deadline).unwrap(), 'x');
    /// ```
    pub fn get_deadline(&self, deadline: Instant) -> Result<T, TaskError> {
        self.0.result_deadline(deadline)
    }
}
