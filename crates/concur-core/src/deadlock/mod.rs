//! Deadlock detection (CWE-833) for concur's locks and thread joins.
//!
//! Off by default. Switch it on with the `CONCUR_DEADLOCK` environment variable
//! (`off`, `warn` or `panic`, read the first time a lock is used), with [`set_mode`], or
//! with the builder [`Config`] (mode and report hook in one go).
//!
//! # What is detected
//!
//! * **Lock-order inversions** (after Linux's lockdep): every thread's held locks are
//!   tracked, and each blocking acquisition of `L` while holding `H` records the order
//!   `H -> L` in a process-wide graph (with the thread that first did it). If the graph
//!   already has a path `L -> ... -> H`, two parts of the program take the same locks
//!   in opposite orders and *can* deadlock, even if this run did not hang: that is
//!   reported once per pair of locks, e.g.
//!   `lock order inversion: A -> B in thread t1, B -> A in thread t2`. Cycles through
//!   any number of locks (A -> B, B -> C, C -> A) are found.
//! * **Wait-for cycles**: while a thread blocks on a lock or a join, the detector
//!   follows "waits for lock -> owned by thread -> waits for ..." and reports a cycle
//!   back to the waiting thread, an actual deadlock, naming every thread and lock:
//!   `deadlock: thread t1 holds A and waits for B; thread t2 holds B and waits for A`.
//!   A join on a thread that waits (directly or through locks) for the joiner counts.
//!
//! Locks are named by [`LockBuilder::name`](crate::sync::LockBuilder::name), or by kind
//! and creation site (`Lock@src/main.rs:12:9`) when unnamed; threads by their name, or
//! `Thread-<ident>`.
//!
//! # What is not detected
//!
//! * Semaphores, `Condition` notifications, events, barriers, queues and futures are
//!   not tracked (they have no owner), so a cycle through them goes unseen: a thread
//!   waiting for an event that only a blocked thread would set is not reported.
//! * Non-blocking acquisitions (`try_acquire`) add no lock-order edge (they cannot
//!   deadlock), though the lock then counts as held for later acquisitions.
//! * A plain `Lock` released by another thread than the one that acquired it is
//!   handled (its owner is cleared), but orders involving such hand-over protocols may
//!   be reported although the protocol makes them safe.
//! * Locks acquired while detection was off are unknown to it.
//! * Only concur's own locks and joins: `std::sync::Mutex`, channels and I/O are
//!   invisible.
//!
//! # Modes
//!
//! * [`Mode::Off`]: nothing is checked; each lock operation costs one relaxed atomic
//!   load more than without the detector.
//! * [`Mode::Warn`]: each problem becomes a [`Report`]: retained for [`take_reports`],
//!   emitted as a `tracing` warning (target `concur::deadlock`), passed to the hook set
//!   by [`set_report_hook`] or, without a hook, written as one line to stderr. Then the
//!   program goes on (and, for a wait-for cycle, really deadlocks).
//! * [`Mode::Panic`]: reported the same way (except the stderr line), then the thread
//!   whose acquisition or join would close the cycle or invert the order panics with
//!   the report as message, *before* it blocks: its guards unwind and release their
//!   locks, so the other threads go on.
//!
//! # Cost
//!
//! Off: the hooks are not even called. On: every lock operation takes one global
//! `std::sync::Mutex` briefly and does a few hash-map operations; a blocking
//! acquisition also costs O(locks held) plus, for the first acquisition of a new pair
//! of locks, a search of the lock-order graph, and O(length of the wait-for chain).
//! It is a debugging aid: fine for tests and staging, too slow for hot production
//! loops. Memory: one node per live lock that was used while on (freed when the lock
//! is dropped) and one per thread that currently holds or waits for something.
//!
//! # Examples
//!
//! ```
//! use concur::deadlock::{self, Mode, ReportKind};
//! use concur::sync::Lock;
//! use std::thread;
//!
//! deadlock::Config::new().mode(Mode::Warn).install();
//! let a = Lock::<()>::builder().name("A").build();
//! let b = Lock::<()>::builder().name("B").build();
//! let take = |first: Lock, second: Lock, name: &str| {
//!     thread::Builder::new()
//!         .name(name.into())
//!         .spawn(move || {
//!             let _g1 = first.acquire();
//!             let _g2 = second.acquire();
//!         })
//!         .unwrap()
//!         .join()
//!         .unwrap();
//! };
//! take(a.clone(), b.clone(), "t1"); // A then B
//! take(b.clone(), a.clone(), "t2"); // B then A: could deadlock against t1
//! let reports = deadlock::take_reports();
//! assert_eq!(reports.len(), 1);
//! assert_eq!(reports[0].kind(), ReportKind::LockOrderInversion);
//! assert_eq!(
//!     reports[0].to_string(),
//!     "lock order inversion: A -> B in thread t1, B -> A in thread t2"
//! );
//! ```

// Under loom the detector is always off (`enabled()` is false): it compiles but is
// never called.
#![cfg_attr(concur_loom, allow(dead_code, unused_imports))]

mod graph;
mod report;

pub use report::{
    RETAINED_REPORTS, Report, ReportKind, clear_report_hook, report_count, reports,
    set_report_hook, take_reports,
};

use crate::shim::atomic::{AtomicU8, AtomicU64, Ordering};
use graph::{Me, State};
use std::fmt;
use std::panic::Location;
use std::str::FromStr;
// The detector's own state is plain data behind a std mutex, never part of a wait/wake
// protocol (and never used under loom, where `enabled()` is always false), so it uses
// std's `Arc` and `Mutex` rather than the shim's.
use std::sync::{Arc, Mutex, PoisonError};

/// What the detector does when it finds a lock-order inversion or a wait-for cycle.
///
/// Parsed from `off`, `warn` or `panic` (any case) by [`FromStr`], as in the
/// `CONCUR_DEADLOCK` environment variable.
///
/// ```
/// use concur::deadlock::Mode;
/// assert_eq!("warn".parse::<Mode>(), Ok(Mode::Warn));
/// assert!("loud".parse::<Mode>().is_err());
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// No checks at all (the default): one relaxed atomic load per lock operation.
    Off,
    /// Report through `tracing` and the report hook, then carry on.
    Warn,
    /// Report, then panic in the thread that closed the cycle.
    Panic,
}

/// The error of parsing a [`Mode`] from a string other than `off`, `warn` or `panic`.
///
/// ```
/// let err = "loud".parse::<concur::deadlock::Mode>().unwrap_err();
/// assert!(err.to_string().contains("expected off, warn or panic"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseModeError(String);

impl fmt::Display for ParseModeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid deadlock mode {:?}: expected off, warn or panic",
            self.0
        )
    }
}

impl std::error::Error for ParseModeError {}

impl FromStr for Mode {
    type Err = ParseModeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" => Ok(Mode::Off),
            "warn" => Ok(Mode::Warn),
            "panic" => Ok(Mode::Panic),
            _ => Err(ParseModeError(s.to_owned())),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Off => "off",
            Mode::Warn => "warn",
            Mode::Panic => "panic",
        })
    }
}

// MODE's states: UNINIT until the first `mode()`/`enabled()`/`set_mode` (then the
// environment decides), else OFF, WARN or PANIC. Relaxed is enough: the mode only
// selects whether hooks run; the hooks synchronise through the state mutex.
const UNINIT: u8 = u8::MAX;
const OFF: u8 = 0;
const WARN: u8 = 1;
const PANIC: u8 = 2;

#[cfg(not(concur_loom))]
static MODE: AtomicU8 = AtomicU8::new(UNINIT);

/// Sets the detection mode for the whole process (overriding `CONCUR_DEADLOCK`).
///
/// Best set once, before threads start taking locks. Switching on after a period off
/// forgets which locks are held (their acquisitions were not seen); the lock-order
/// graph built earlier is kept.
///
/// ```
/// use concur::deadlock::{self, Mode};
/// deadlock::set_mode(Mode::Warn);
/// assert_eq!(deadlock::mode(), Mode::Warn);
/// deadlock::set_mode(Mode::Off);
/// assert_eq!(deadlock::mode(), Mode::Off);
/// ```
pub fn set_mode(mode: Mode) {
    #[cfg(not(concur_loom))]
    {
        let new = match mode {
            Mode::Off => OFF,
            Mode::Warn => WARN,
            Mode::Panic => PANIC,
        };
        let old = MODE.swap(new, Ordering::Relaxed);
        if old == OFF && new != OFF {
            with_state(State::reset_runtime);
        }
    }
    #[cfg(concur_loom)]
    let _ = mode;
}

/// The current mode (read from `CONCUR_DEADLOCK` the first time it is needed; unset or
/// unparsable means [`Mode::Off`]).
///
/// ```
/// use concur::deadlock::{self, Mode};
/// if std::env::var_os("CONCUR_DEADLOCK").is_none() {
///     assert_eq!(deadlock::mode(), Mode::Off);
/// }
/// ```
pub fn mode() -> Mode {
    #[cfg(not(concur_loom))]
    {
        let mut m = MODE.load(Ordering::Relaxed);
        if m == UNINIT {
            init_from_env();
            m = MODE.load(Ordering::Relaxed);
        }
        match m {
            WARN => Mode::Warn,
            PANIC => Mode::Panic,
            _ => Mode::Off,
        }
    }
    #[cfg(concur_loom)]
    Mode::Off
}

#[cfg(not(concur_loom))]
#[cold]
fn init_from_env() {
    let m = match std::env::var("CONCUR_DEADLOCK")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(Mode::Warn) => WARN,
        Some(Mode::Panic) => PANIC,
        _ => OFF,
    };
    let _ = MODE.compare_exchange(UNINIT, m, Ordering::Relaxed, Ordering::Relaxed);
}

/// True when lock operations must call the hooks below. One relaxed load when off.
#[inline(always)]
pub(crate) fn enabled() -> bool {
    #[cfg(not(concur_loom))]
    {
        let m = MODE.load(Ordering::Relaxed);
        m != OFF && (m != UNINIT || mode() != Mode::Off)
    }
    #[cfg(concur_loom)]
    false
}

/// Deadlock-detection settings, builder style: what is not set is left as it is.
///
/// # Examples
///
/// ```
/// use concur::deadlock::{Config, Mode};
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// let seen = Arc::new(AtomicUsize::new(0));
/// let s = seen.clone();
/// Config::new()
///     .mode(Mode::Warn)
///     .report_hook(move |report| {
///         assert!(report.to_string().contains("->"));
///         s.fetch_add(1, Ordering::Relaxed);
///     })
///     .install();
/// assert_eq!(concur::deadlock::mode(), Mode::Warn);
/// assert_eq!(seen.load(Ordering::Relaxed), 0); // nothing found yet
/// ```
#[derive(Clone, Default)]
#[must_use = "a Config does nothing until `install` is called"]
pub struct Config {
    mode: Option<Mode>,
    hook: Option<Option<report::Hook>>,
}

impl Config {
    /// Settings that change nothing yet.
    ///
    /// ```
    /// let mode = concur::deadlock::mode();
    /// concur::deadlock::Config::new().install(); // changes nothing
    /// assert_eq!(concur::deadlock::mode(), mode);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The mode to switch to (see [`set_mode`]).
    ///
    /// ```
    /// use concur::deadlock::{self, Config, Mode};
    /// Config::new().mode(Mode::Panic).install();
    /// assert_eq!(deadlock::mode(), Mode::Panic);
    /// ```
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// The mode named by `CONCUR_DEADLOCK`, if it is set to `off`, `warn` or `panic`
    /// (else the mode is left unchanged).
    ///
    /// ```
    /// concur::deadlock::Config::new().mode_from_env().install();
    /// ```
    pub fn mode_from_env(mut self) -> Self {
        if let Some(m) = std::env::var("CONCUR_DEADLOCK")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            self.mode = Some(m);
        }
        self
    }

    /// The hook to call with every report (see [`set_report_hook`]).
    ///
    /// ```
    /// use concur::deadlock::{Config, Mode, ReportKind};
    /// use concur::sync::Lock;
    /// use std::sync::{Arc, Mutex};
    ///
    /// let kinds = Arc::new(Mutex::new(Vec::new()));
    /// let k = kinds.clone();
    /// Config::new()
    ///     .mode(Mode::Warn)
    ///     .report_hook(move |r| k.lock().unwrap().push(r.kind()))
    ///     .install();
    /// let a = Lock::new();
    /// let _held = a.acquire();
    /// assert!(a.acquire_timeout(std::time::Duration::from_millis(1)).is_none());
    /// assert_eq!(*kinds.lock().unwrap(), [ReportKind::WaitForCycle]); // self-deadlock
    /// ```
    pub fn report_hook(mut self, hook: impl Fn(&Report) + Send + Sync + 'static) -> Self {
        self.hook = Some(Some(Arc::new(hook)));
        self
    }

    /// Removes any report hook on install (back to the default reporting).
    ///
    /// ```
    /// concur::deadlock::Config::new().report_hook(|_| {}).no_report_hook().install();
    /// ```
    pub fn no_report_hook(mut self) -> Self {
        self.hook = Some(None);
        self
    }

    /// Applies the settings to the whole process: the hook first, then the mode, so
    /// the first report already goes to the new hook.
    ///
    /// ```
    /// use concur::deadlock::{self, Config, Mode};
    /// Config::new().mode(Mode::Warn).install();
    /// assert_eq!(deadlock::mode(), Mode::Warn);
    /// ```
    pub fn install(self) {
        if let Some(h) = self.hook {
            report::set_hook(h);
        }
        if let Some(m) = self.mode {
            set_mode(m);
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("mode", &self.mode)
            .field("report_hook", &self.hook.as_ref().map(|h| h.is_some()))
            .finish()
    }
}

#[cfg(not(concur_loom))]
static NEXT_LOCK_ID: AtomicU64 = AtomicU64::new(1);

/// Identity of one lock for the detector: a process-unique id, an optional name and
/// the place it was created. Dropping it (with the lock) frees the detector's node.
#[derive(Debug)]
pub(crate) struct LockMeta {
    pub(crate) id: u64,
    pub(crate) kind: &'static str,
    pub(crate) name: Option<Box<str>>,
    pub(crate) site: &'static Location<'static>,
}

impl LockMeta {
    #[track_caller]
    pub(crate) fn new(kind: &'static str, name: Option<Box<str>>) -> Self {
        #[cfg(not(concur_loom))]
        let id = NEXT_LOCK_ID.fetch_add(1, Ordering::Relaxed);
        #[cfg(concur_loom)]
        let id = 0;
        LockMeta {
            id,
            kind,
            name,
            site: Location::caller(),
        }
    }

    /// The lock's name in reports: its name, or `Kind@file:line:col`.
    fn label(&self) -> Arc<str> {
        graph::label_of(self.kind, self.name.as_deref(), self.site)
    }
}

impl Drop for LockMeta {
    fn drop(&mut self) {
        if enabled() {
            lock_dropped(self);
        }
    }
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

/// Runs `f` on the detector state under its global mutex. Only detector code runs
/// under it (no user code, no blocking), so it cannot take part in a deadlock; a
/// poisoned mutex (a bug, or an allocation failure) is used anyway.
fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> R {
    let mut g = STATE.lock().unwrap_or_else(PoisonError::into_inner);
    f(g.get_or_insert_with(State::default))
}

crate::shim::thread_local! {
    // Not `const { .. }`: loom's `thread_local!` does not take that form.
    #[allow(clippy::missing_const_for_thread_local)]
    static THREAD_NAME: std::cell::OnceCell<Arc<str>> = std::cell::OnceCell::new();
}

/// The current thread as the state knows it: ident and (cached) name.
fn me() -> Me {
    let ident = crate::ident::get_ident();
    let name = THREAD_NAME.with(|n| {
        n.get_or_init(|| match std::thread::current().name() {
            Some(s) => Arc::from(s),
            None => Arc::from(format!("Thread-{ident}")),
        })
        .clone()
    });
    Me { ident, name }
}

/// Publishes `reports` found at a new wait of `me` (with no detector lock held) and, in
/// panic mode, panics with them as the message. If the report hook panics, the wait
/// recorded in warn mode is withdrawn, since the thread will not block after all.
fn publish(me: &Me, reports: Vec<Report>, mode: Mode) {
    struct WithdrawOnUnwind<'a>(&'a Me, bool);
    impl Drop for WithdrawOnUnwind<'_> {
        fn drop(&mut self) {
            if self.1 {
                with_state(|s| s.end_wait(self.0));
            }
        }
    }
    if reports.is_empty() {
        return;
    }
    let mut guard = WithdrawOnUnwind(me, true);
    report::dispatch(&reports, mode);
    guard.1 = false;
    if mode == Mode::Panic {
        let msg: Vec<&str> = reports.iter().map(Report::message).collect();
        panic!("{}", msg.join("\n"));
    }
}

/// The current thread is about to block acquiring `lock` (not a re-entrant acquire of
/// a lock it already holds, which would be reported as a self-deadlock).
///
/// # Panics
/// In panic mode, if this acquisition inverts a lock order or closes a wait-for cycle;
/// nothing is recorded as waiting then, and the caller must not block.
#[track_caller]
pub(crate) fn before_acquire(lock: &LockMeta) {
    let site = Location::caller();
    let mode = mode();
    let me = me();
    let record = mode != Mode::Panic;
    let reports = with_state(|s| s.before_acquire(&me, lock.id, || lock.label(), site, record));
    publish(&me, reports, mode);
}

/// The current thread now holds `lock` (after a blocking or a non-blocking acquire).
pub(crate) fn after_acquire(lock: &LockMeta) {
    let me = me();
    with_state(|s| s.after_acquire(&me, lock.id, || lock.label()));
}

/// A blocking acquire announced by `before_acquire` gave up (timeout).
pub(crate) fn acquire_abandoned(_lock: &LockMeta) {
    let me = me();
    with_state(|s| s.end_wait(&me));
}

/// `lock` was released (by whichever thread): its oldest acquisition's owner lets go.
pub(crate) fn on_release(lock: &LockMeta) {
    with_state(|s| s.on_release(lock.id));
}

/// `lock` is being destroyed: the detector forgets it (called by `LockMeta`'s drop).
pub(crate) fn lock_dropped(lock: &LockMeta) {
    with_state(|s| s.lock_dropped(lock.id));
}

/// The current thread is about to block joining the thread `ident`.
///
/// # Panics
/// In panic mode, if the joined thread waits (directly or through locks) for the
/// current one; the caller must not block then.
#[allow(dead_code)] // until concur's thread joins call it
pub(crate) fn before_join(ident: u64) {
    let mode = mode();
    let me = me();
    let reports = with_state(|s| s.before_join(&me, ident, mode != Mode::Panic));
    publish(&me, reports, mode);
}

/// The join announced by `before_join` ended (joined or timed out).
#[allow(dead_code)] // until concur's thread joins call it
pub(crate) fn after_join(_ident: u64) {
    let me = me();
    with_state(|s| s.end_wait(&me));
}
