//! `Timer`: Python's `threading.Timer`, an action run once after an interval on its own
//! thread unless cancelled first.
//!
//! The wait is a std `Mutex` + `Condvar` (an `Event`): the timer thread waits for
//! `cancelled` until the deadline, then, still holding the mutex, sets `fired` and takes
//! the action. `cancel` sets `cancelled` under the same mutex, so exactly one of the two
//! wins: a cancel that returns before `fired` was set guarantees the action never runs.

use super::error::JoinError;
use super::registry::{PoisonFree, Thread};
use super::spawn::Builder;
use std::io;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

type Action = Box<dyn FnOnce() + Send + 'static>;

#[derive(Default)]
struct State {
    started: bool,
    cancelled: bool,
    fired: bool,
    done: bool,
}

struct Inner {
    interval: Duration,
    state: Mutex<State>,
    cv: Condvar,
    action: Mutex<Option<Action>>,
    thread: Mutex<Option<Thread>>,
}

/// Runs an action once, after an interval, on its own concur thread, unless
/// [`cancel`](Timer::cancel)led first: Python's `threading.Timer`.
///
/// A `Timer` is a cheap cloneable handle. The action's thread is a normal concur thread
/// (named `"Thread-N"`, non-daemon): a panic in the action goes to the excepthook and
/// to [`join`](Timer::join).
///
/// ```
/// use concur::thread::Timer;
/// use std::sync::{Arc, atomic::{AtomicBool, Ordering}};
/// use std::time::Duration;
/// let ran = Arc::new(AtomicBool::new(false));
/// let r = ran.clone();
/// let t = Timer::new(Duration::from_millis(10), move || r.store(true, Ordering::SeqCst));
/// t.start()?;
/// t.join().unwrap();
/// assert!(ran.load(Ordering::SeqCst) && t.has_fired());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Timer {
    inner: Arc<Inner>,
}

impl Timer {
    /// A timer that will run `action` `interval` after [`start`](Timer::start). Nothing
    /// runs, and no thread exists, until then.
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = concur::thread::Timer::new(Duration::from_millis(5), || ());
    /// assert!(t.thread().is_none() && !t.has_fired() && !t.finished());
    /// t.start().unwrap();
    /// t.join_timeout(Duration::from_secs(10)).unwrap();
    /// assert!(t.has_fired() && t.finished());
    /// ```
    pub fn new(interval: Duration, action: impl FnOnce() + Send + 'static) -> Timer {
        Timer {
            inner: Arc::new(Inner {
                interval,
                state: Mutex::new(State::default()),
                cv: Condvar::new(),
                action: Mutex::new(Some(Box::new(action))),
                thread: Mutex::new(None),
            }),
        }
    }

    /// Starts the timer's thread; the interval counts from now. Blocks only until the
    /// thread has started.
    ///
    /// # Errors
    /// [`io::ErrorKind::AlreadyExists`] if the timer was already started (Python: "threads
    /// can only be started once"); the OS error if the thread could not be created.
    ///
    /// ```
    /// let t = concur::thread::Timer::new(std::time::Duration::from_secs(60), || ());
    /// t.start().unwrap();
    /// assert!(t.start().is_err());
    /// t.cancel();
    /// ```
    pub fn start(&self) -> io::Result<()> {
        {
            let mut s = self.inner.state.lock_ok();
            if s.started {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "timer already started",
                ));
            }
            s.started = true;
        }
        let deadline = crate::time::deadline_after(self.inner.interval);
        let inner = self.inner.clone();
        let spawned = Builder::new().spawn(move || inner.run(deadline));
        match spawned {
            Ok(h) => {
                *self.inner.thread.lock_ok() = Some(h.thread().clone());
                Ok(())
            }
            Err(e) => {
                self.inner.state.lock_ok().started = false;
                Err(e)
            }
        }
    }

    /// Stops the timer if its action has not started yet: then the action never runs.
    /// A no-op once it fired. Never blocks for long.
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = concur::thread::Timer::new(Duration::from_secs(60), || unreachable!());
    /// t.start().unwrap();
    /// t.cancel();
    /// t.join_timeout(Duration::from_secs(10)).unwrap();
    /// assert!(t.is_cancelled() && !t.has_fired());
    /// ```
    pub fn cancel(&self) {
        let mut s = self.inner.state.lock_ok();
        let mut unused = None;
        if !s.fired {
            s.cancelled = true;
            s.done = true;
            // Nothing will ever run it: drop the action (after unlocking; its drop is user code).
            unused = self.inner.action.lock_ok().take();
        }
        drop(s);
        self.inner.cv.notify_all();
        drop(unused);
    }

    /// True once the action has started running.
    ///
    /// ```
    /// use concur::{sync::Event, thread::Timer};
    /// use std::time::Duration;
    /// let (started, release) = (Event::new(), Event::new());
    /// let (s, r) = (started.clone(), release.clone());
    /// let t = Timer::new(Duration::ZERO, move || {
    ///     s.set();
    ///     r.wait_timeout(Duration::from_secs(10));
    /// });
    /// assert!(!t.has_fired());
    /// t.start().unwrap();
    /// assert!(started.wait_timeout(Duration::from_secs(10)));
    /// assert!(t.has_fired() && !t.finished()); // fired, action still running
    /// release.set();
    /// t.join_timeout(Duration::from_secs(10)).unwrap();
    /// ```
    pub fn has_fired(&self) -> bool {
        self.inner.state.lock_ok().fired
    }

    /// True if [`cancel`](Timer::cancel) stopped the timer before it fired (a cancel
    /// after that is a no-op and leaves this false).
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = concur::thread::Timer::new(Duration::ZERO, || ());
    /// t.start().unwrap();
    /// t.join_timeout(Duration::from_secs(10)).unwrap();
    /// t.cancel(); // too late: it fired
    /// assert!(!t.is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.inner.state.lock_ok().cancelled
    }

    /// True once the timer is over: cancelled, or its action returned (or panicked).
    /// Python's `Timer.finished.is_set()`.
    ///
    /// ```
    /// let t = concur::thread::Timer::new(std::time::Duration::from_secs(60), || ());
    /// assert!(!t.finished());
    /// t.cancel(); // even before `start`
    /// assert!(t.finished() && t.is_cancelled());
    /// ```
    pub fn finished(&self) -> bool {
        self.inner.state.lock_ok().done
    }

    /// True while the timer's thread runs (waiting or running the action); false before
    /// [`start`](Timer::start).
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = concur::thread::Timer::new(Duration::from_secs(60), || ());
    /// assert!(!t.is_alive());
    /// t.start().unwrap();
    /// assert!(t.is_alive());
    /// t.cancel();
    /// t.join_timeout(Duration::from_secs(10)).unwrap();
    /// assert!(!t.is_alive());
    /// ```
    pub fn is_alive(&self) -> bool {
        self.thread().is_some_and(|t| t.is_alive())
    }

    /// The timer's thread, once started.
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = concur::thread::Timer::new(Duration::from_secs(60), || ());
    /// assert!(t.thread().is_none());
    /// t.start().unwrap();
    /// let th = t.thread().expect("started");
    /// assert!(th.name().starts_with("Thread-") && !th.daemon());
    /// t.cancel();
    /// th.join_timeout(Duration::from_secs(10)).unwrap();
    /// ```
    pub fn thread(&self) -> Option<Thread> {
        self.inner.thread.lock_ok().clone()
    }

    /// Blocks until the timer's thread has finished (after the action ran, or soon after
    /// a cancel).
    ///
    /// # Errors
    /// [`JoinError::is_not_started`] before [`start`](Timer::start); otherwise as
    /// [`Thread::join`] (a panic in the action is reported through the excepthook, and
    /// the value is not kept).
    ///
    /// # Panics
    /// In deadlock-detection panic mode, if the join would close a wait-for cycle.
    ///
    /// ```
    /// let t = concur::thread::Timer::new(std::time::Duration::ZERO, || ());
    /// assert!(t.join().unwrap_err().is_not_started());
    /// ```
    pub fn join(&self) -> Result<(), JoinError> {
        self.join_until(None)
    }

    /// Blocks for at most `timeout` for the timer's thread to finish.
    ///
    /// # Errors
    /// [`JoinError::is_timeout`] if it still runs at the deadline; otherwise as
    /// [`join`](Timer::join).
    ///
    /// # Panics
    /// In deadlock-detection panic mode, if the join would close a wait-for cycle.
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = concur::thread::Timer::new(Duration::from_secs(60), || ());
    /// t.start().unwrap();
    /// assert!(t.join_timeout(Duration::from_millis(10)).unwrap_err().is_timeout());
    /// t.cancel();
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), JoinError> {
        self.join_until(crate::time::deadline_after(timeout))
    }

    fn join_until(&self, deadline: Option<Instant>) -> Result<(), JoinError> {
        match self.thread() {
            Some(t) => t.join_until(deadline),
            None => Err(JoinError::not_started()),
        }
    }
}

impl Inner {
    /// The timer thread: wait for a cancel until `deadline`, then fire unless cancelled.
    fn run(&self, deadline: Option<Instant>) {
        let mut s = self.state.lock_ok();
        while !s.cancelled {
            s = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(t) if !t.is_zero() => {
                        self.cv
                            .wait_timeout(s, t)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0
                    }
                    _ => break,
                },
                None => self.cv.wait(s).unwrap_or_else(PoisonError::into_inner),
            };
        }
        if s.cancelled {
            return;
        }
        s.fired = true;
        let action = self.action.lock_ok().take();
        drop(s);
        struct Done<'a>(&'a Inner);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.state.lock_ok().done = true;
            }
        }
        let _done = Done(self);
        if let Some(action) = action {
            action();
        }
    }
}

impl std::fmt::Debug for Timer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.inner.state.lock_ok();
        f.debug_struct("Timer")
            .field("interval", &self.inner.interval)
            .field("started", &s.started)
            .field("cancelled", &s.cancelled)
            .field("fired", &s.fired)
            .finish()
    }
}
