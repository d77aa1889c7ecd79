//! `Thread` handles and the global registry of alive threads (Python's `_active` and
//! `_DummyThread`, after CPython's `Lib/threading.py`).
//!
//! Every thread concur knows about has one `Inner`: spawned threads (registered by the
//! thread itself before `spawn` returns), the main thread (registered lazily), and
//! "dummy" threads (any other thread that asked for `current_thread()`; removed by a
//! thread-local destructor when it exits).
//!
//! The thread-locals here belong to real OS threads, which this module spawns with
//! `std::thread`, and take part in no wait/wake protocol that a loom model checks, so
//! they are plain `std::thread_local!`s. Joining waits on a std `Mutex` + `Condvar`.

use super::error::JoinError;
use crate::ident::get_ident;
use crate::sys;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// Locks a mutex, ignoring poisoning (no code in this module panics while holding one).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `lock()` as a method.
pub(crate) trait PoisonFree<T> {
    fn lock_ok(&self) -> MutexGuard<'_, T>;
}

impl<T> PoisonFree<T> for Mutex<T> {
    fn lock_ok(&self) -> MutexGuard<'_, T> {
        lock(self)
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Spawned,
    Main,
    Dummy,
}

#[derive(Copy, Clone, Debug)]
pub(crate) struct Ids {
    pub(crate) ident: u64,
    pub(crate) native_id: Option<u64>,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) started: bool,
    pub(crate) finished: bool,
}

pub(crate) struct Inner {
    pub(crate) name: String,
    pub(crate) daemon: bool,
    pub(crate) kind: Kind,
    /// Set by the thread itself, before `spawn` returns (or at creation for main/dummy).
    pub(crate) ids: OnceLock<Ids>,
    pub(crate) state: Mutex<State>,
    pub(crate) cv: Condvar,
}

/// A cheap, cloneable handle to a thread: Python's `threading.Thread` object as seen by
/// `current_thread()`, `enumerate()` or [`JoinHandle::thread`](super::JoinHandle::thread).
///
/// It answers the questions Python's `Thread` answers (name, ident, native id, daemon,
/// alive) and can be joined any number of times, without the thread's value (only the
/// [`JoinHandle`](super::JoinHandle) gets that). Clones compare equal when they refer to
/// the same thread.
///
/// ```
/// use concur::thread;
/// let h = thread::Builder::new().name("worker").spawn(|| 1).unwrap();
/// let t = h.thread().clone();
/// assert_eq!(t.name(), "worker");
/// assert_eq!(h.join().unwrap(), 1);
/// t.join().unwrap();                     // joining a finished thread returns at once
/// assert!(!t.is_alive());
/// ```
#[derive(Clone)]
pub struct Thread {
    pub(crate) inner: Arc<Inner>,
}

impl Thread {
    pub(crate) fn new(name: String, daemon: bool, kind: Kind, ids: Option<Ids>) -> Thread {
        let started = ids.is_some();
        let cell = OnceLock::new();
        if let Some(ids) = ids {
            let _ = cell.set(ids);
        }
        Thread {
            inner: Arc::new(Inner {
                name,
                daemon,
                kind,
                ids: cell,
                state: Mutex::new(State {
                    started,
                    finished: false,
                }),
                cv: Condvar::new(),
            }),
        }
    }

    /// The thread's name: the one given to the [`Builder`](super::Builder), Python's
    /// default `"Thread-N"` otherwise, `"MainThread"` for the main thread and
    /// `"Dummy-N"` for a thread concur did not spawn.
    ///
    /// ```
    /// let h = concur::thread::spawn(|| ());
    /// assert!(h.name().starts_with("Thread-"));
    /// ```
    pub fn name(&self) -> String {
        self.inner.name.clone()
    }

    /// The thread's identifier, equal to [`get_ident()`](super::get_ident) called on
    /// that thread (never reused, unlike Python's).
    ///
    /// ```
    /// use concur::thread;
    /// let h = thread::spawn(thread::get_ident);
    /// let ident = h.ident();
    /// assert_eq!(h.join().unwrap(), ident);
    /// ```
    pub fn ident(&self) -> u64 {
        self.inner.ids.get().map_or(0, |i| i.ident)
    }

    /// The operating system's id for the thread (`gettid()` on Linux), Python's
    /// `native_id`; `None` where concur cannot get it.
    ///
    /// ```
    /// let t = concur::thread::current_thread();
    /// if cfg!(target_os = "linux") {
    ///     assert!(t.native_id().is_some());
    /// }
    /// ```
    pub fn native_id(&self) -> Option<u64> {
        self.inner.ids.get().and_then(|i| i.native_id)
    }

    /// True while the thread runs: false once its closure returned or panicked (before
    /// any join of it returns).
    ///
    /// ```
    /// let h = concur::thread::spawn(|| ());
    /// let t = h.thread().clone();
    /// h.join().unwrap();
    /// assert!(!t.is_alive());
    /// ```
    pub fn is_alive(&self) -> bool {
        let s = lock(&self.inner.state);
        s.started && !s.finished
    }

    /// True for a daemon thread: one that [`wait_non_daemon`](super::wait_non_daemon)
    /// does not wait for (see the [module docs](super)). Threads concur did not spawn
    /// count as daemons, the main thread does not.
    ///
    /// ```
    /// let h = concur::thread::Builder::new().daemon(true).spawn(|| ()).unwrap();
    /// assert!(h.thread().daemon());
    /// ```
    pub fn daemon(&self) -> bool {
        self.inner.daemon
    }

    /// Blocks until the thread has finished; returns at once if it already has.
    ///
    /// # Errors
    /// [`JoinError::is_self_join`] if this is the current thread (instead of hanging).
    ///
    /// # Panics
    /// In deadlock-detection panic mode, if the join would close a wait-for cycle.
    ///
    /// ```
    /// let h = concur::thread::spawn(|| ());
    /// h.thread().join().unwrap();
    /// h.thread().join().unwrap();            // any number of times, like Python
    /// ```
    pub fn join(&self) -> Result<(), JoinError> {
        self.join_until(None)
    }

    /// Blocks for at most `timeout` for the thread to finish (a timeout too large to
    /// represent waits forever).
    ///
    /// # Errors
    /// [`JoinError::is_timeout`] if the thread still runs at the deadline;
    /// [`JoinError::is_self_join`] if this is the current thread.
    ///
    /// # Panics
    /// In deadlock-detection panic mode, if the join would close a wait-for cycle.
    ///
    /// ```
    /// use std::time::Duration;
    /// let main = concur::thread::main_thread();
    /// if main.ident() != concur::thread::get_ident() {
    ///     assert!(main.join_timeout(Duration::from_millis(1)).unwrap_err().is_timeout());
    /// }
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), JoinError> {
        self.join_until(crate::time::deadline_after(timeout))
    }

    /// Blocks until `deadline` at the latest for the thread to finish.
    ///
    /// # Errors
    /// As [`join_timeout`](Thread::join_timeout).
    ///
    /// # Panics
    /// In deadlock-detection panic mode, if the join would close a wait-for cycle.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let h = concur::thread::spawn(|| ());
    /// h.thread().join_deadline(Instant::now() + Duration::from_secs(10)).unwrap();
    /// ```
    pub fn join_deadline(&self, deadline: Instant) -> Result<(), JoinError> {
        self.join_until(Some(deadline))
    }

    pub(crate) fn join_until(&self, deadline: Option<Instant>) -> Result<(), JoinError> {
        let target = self.ident();
        if target == get_ident() {
            return Err(JoinError::self_join());
        }
        if lock(&self.inner.state).finished {
            return Ok(());
        }
        let detect = crate::deadlock::enabled();
        if detect {
            crate::deadlock::before_join(target);
        }
        let r = self.wait_finished(deadline);
        if detect {
            crate::deadlock::after_join(target);
        }
        r
    }

    fn wait_finished(&self, deadline: Option<Instant>) -> Result<(), JoinError> {
        let mut s = lock(&self.inner.state);
        while !s.finished {
            match deadline {
                None => {
                    s = self
                        .inner
                        .cv
                        .wait(s)
                        .unwrap_or_else(PoisonError::into_inner)
                }
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(JoinError::timeout());
                    }
                    s = self
                        .inner
                        .cv
                        .wait_timeout(s, d - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
        }
        Ok(())
    }

    /// Marks the thread started (its ids are set) and wakes `spawn`.
    pub(crate) fn mark_started(&self) {
        lock(&self.inner.state).started = true;
        self.inner.cv.notify_all();
    }

    /// Blocks until the thread reported its ids.
    pub(crate) fn wait_started(&self) {
        let mut s = lock(&self.inner.state);
        while !s.started {
            s = self
                .inner
                .cv
                .wait(s)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Removes the thread from the registry and wakes every joiner.
    pub(crate) fn mark_finished(&self) {
        unregister(self.ident());
        lock(&self.inner.state).finished = true;
        self.inner.cv.notify_all();
    }

    pub(crate) fn kind(&self) -> Kind {
        self.inner.kind
    }
}

impl PartialEq for Thread {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}
impl Eq for Thread {}

impl fmt::Debug for Thread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.is_alive() {
            "started"
        } else {
            "stopped"
        };
        let daemon = if self.daemon() { " daemon" } else { "" };
        write!(
            f,
            "<Thread({}, {state}{daemon} {})>",
            self.inner.name,
            self.ident()
        )
    }
}

// ---- names -----------------------------------------------------------------------

static COUNTER: AtomicU64 = AtomicU64::new(1);

/// Python's `_newname`: "Thread-1", "Thread-2", ... (one counter shared with "Dummy-N").
pub(crate) fn new_name(template: &str) -> String {
    format!("{template}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

// ---- the registry ------------------------------------------------------------------

static REGISTRY: Mutex<BTreeMap<u64, Thread>> = Mutex::new(BTreeMap::new());

pub(crate) fn register(t: &Thread) {
    lock(&REGISTRY).insert(t.ident(), t.clone());
}

fn unregister(ident: u64) {
    lock(&REGISTRY).remove(&ident);
}

/// Every alive thread concur knows about (spawned threads, the main thread, and threads
/// that called [`current_thread`]), in creation order: Python's `threading.enumerate()`.
///
/// Never blocks for long (it copies the registry under a short lock).
///
/// ```
/// use concur::thread;
/// let (tx, rx) = std::sync::mpsc::channel::<()>();
/// let h = thread::spawn(move || { let _ = rx.recv(); });
/// assert!(thread::enumerate().contains(h.thread()));
/// drop(tx);
/// let t = h.thread().clone();
/// h.join().unwrap();
/// assert!(!thread::enumerate().contains(&t));
/// ```
pub fn enumerate() -> Vec<Thread> {
    let _ = main_thread();
    lock(&REGISTRY).values().cloned().collect()
}

/// How many threads [`enumerate`] would list: Python's `threading.active_count()`.
///
/// ```
/// assert!(concur::thread::active_count() >= 1); // at least the main thread
/// ```
pub fn active_count() -> usize {
    let _ = main_thread();
    lock(&REGISTRY).len()
}

// ---- current thread ------------------------------------------------------------------

/// The current thread's entry; for a dummy, dropping it (at thread exit) unregisters it.
struct Current(Thread);

impl Drop for Current {
    fn drop(&mut self) {
        if self.0.kind() == Kind::Dummy {
            self.0.mark_finished();
        }
    }
}

std::thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

/// Records `t` as the current thread's entry (called first thing by spawned threads).
pub(crate) fn set_current(t: &Thread) {
    let _ = CURRENT.try_with(|c| *c.borrow_mut() = Some(Current(t.clone())));
}

/// The [`Thread`] for the calling thread: Python's `threading.current_thread()`.
///
/// Works on any thread. A thread concur did not spawn gets a "dummy" entry named
/// `"Dummy-N"` (daemon, registered in [`enumerate`] until the thread exits), except the
/// process's main thread, which is `"MainThread"`. Never blocks for long.
///
/// ```
/// use concur::thread;
/// let name = thread::Builder::new()
///     .name("A")
///     .spawn(|| thread::current_thread().name())
///     .unwrap()
///     .join()
///     .unwrap();
/// assert_eq!(name, "A");
/// assert_eq!(thread::current_thread().ident(), thread::get_ident());
/// ```
pub fn current_thread() -> Thread {
    let found = CURRENT.try_with(|c| c.borrow().as_ref().map(|c| c.0.clone()));
    match found {
        Ok(Some(t)) => t,
        Ok(None) => {
            let t = if is_main() { main_thread() } else { dummy() };
            set_current(&t);
            t
        }
        // The thread-local is being destroyed: hand out an unregistered entry.
        Err(_) => Thread::new(new_name("Dummy"), true, Kind::Dummy, Some(own_ids())),
    }
}

fn own_ids() -> Ids {
    Ids {
        ident: get_ident(),
        native_id: sys::native_id(),
    }
}

fn dummy() -> Thread {
    let t = Thread::new(new_name("Dummy"), true, Kind::Dummy, Some(own_ids()));
    register(&t);
    t
}

// ---- main thread -----------------------------------------------------------------------

static MAIN: OnceLock<Thread> = OnceLock::new();

/// True if the calling thread is the process's main thread.
fn is_main() -> bool {
    match crate::ident::main_ident() {
        Some(ident) => ident == get_ident(),
        // No way to recognise it: the first thread that asks is taken as main.
        None => MAIN.get().is_none_or(|m| m.ident() == get_ident()),
    }
}

/// The process's main thread ("MainThread"), from any thread: Python's
/// `threading.main_thread()`.
///
/// On Linux this is the thread whose OS id equals the process id, even if it never
/// called into concur (its ident is recorded by a load-time constructor on that thread).
/// Elsewhere, the first thread that asks concur about threads is taken as the main one.
/// Inside `cargo test`, test bodies run on other threads, so this is the harness's
/// thread. Never blocks for long.
///
/// ```
/// use concur::thread;
/// let main = thread::main_thread();
/// assert_eq!(main.name(), "MainThread");
/// assert!(!main.daemon());
/// ```
pub fn main_thread() -> Thread {
    MAIN.get_or_init(|| {
        let ids = match crate::ident::main_ident() {
            Some(ident) => Ids {
                ident,
                native_id: sys::main_native_id(),
            },
            None => own_ids(),
        };
        let t = Thread::new("MainThread".to_owned(), false, Kind::Main, Some(ids));
        register(&t);
        t
    })
    .clone()
}
