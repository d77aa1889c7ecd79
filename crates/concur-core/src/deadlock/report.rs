//! Reports as values: [`Report`], the report hook, and the retained-report buffer that
//! [`take_reports`] drains.

use super::Mode;
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Which kind of problem a [`Report`] describes.
///
/// ```
/// use concur::deadlock::{self, Mode, ReportKind};
/// use concur::sync::Lock;
/// use std::time::Duration;
///
/// deadlock::set_mode(Mode::Warn);
/// let (a, b) = (Lock::builder().name("A").build(), Lock::builder().name("B").build());
/// drop((a.acquire(), b.acquire())); // A -> B
/// drop((b.acquire(), a.acquire())); // B -> A
/// let _held = a.acquire();
/// assert!(a.acquire_timeout(Duration::from_millis(1)).is_none()); // waits for itself
/// let kinds: Vec<ReportKind> = deadlock::take_reports().iter().map(|r| r.kind()).collect();
/// assert_eq!(kinds, [ReportKind::LockOrderInversion, ReportKind::WaitForCycle]);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReportKind {
    /// Two (or more) locks were taken in orders that form a cycle, in different
    /// places: the program *can* deadlock, even if this run did not.
    LockOrderInversion,
    /// Threads are blocked waiting for each other (through locks they hold or threads
    /// they join): the program *is* deadlocked (or would be, in panic mode).
    WaitForCycle,
}

/// One problem found by the deadlock detector: what kind, the threads and locks
/// involved, and a one-line human-readable message (its `Display`).
///
/// Locks are named by their [`name`](crate::sync::LockBuilder::name), or by their kind
/// and creation site (`Lock@src/main.rs:12:9`) when unnamed. Threads are named by
/// their thread name, or `Thread-<ident>` when they have none.
///
/// # Examples
///
/// ```
/// use concur::deadlock::{self, Mode, ReportKind};
/// use concur::sync::Lock;
///
/// deadlock::set_mode(Mode::Warn);
/// let (a, b) = (Lock::<()>::builder().name("A").build(), Lock::<()>::builder().name("B").build());
/// {
///     let _a = a.acquire();
///     let _b = b.acquire(); // A -> B
/// }
/// {
///     let _b = b.acquire();
///     let _a = a.acquire(); // B -> A: an inversion, reported (no hang needed)
/// }
/// let r = deadlock::take_reports().pop().expect("a report");
/// assert_eq!(r.kind(), ReportKind::LockOrderInversion);
/// assert_eq!(r.locks(), ["A", "B"]);
/// assert!(r.to_string().starts_with("lock order inversion: A -> B in thread"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub(crate) kind: ReportKind,
    pub(crate) threads: Vec<String>,
    pub(crate) locks: Vec<String>,
    pub(crate) message: String,
}

impl Report {
    /// The kind of problem.
    ///
    /// ```
    /// use concur::deadlock::{self, Mode, ReportKind};
    /// use concur::sync::Lock;
    /// use std::time::Duration;
    /// deadlock::set_mode(Mode::Warn);
    /// let a = Lock::builder().name("A").build();
    /// let _held = a.acquire();
    /// assert!(a.acquire_timeout(Duration::from_millis(1)).is_none()); // waits for itself
    /// let r = deadlock::take_reports().pop().expect("a report");
    /// assert_eq!(r.kind(), ReportKind::WaitForCycle);
    /// ```
    pub fn kind(&self) -> ReportKind {
        self.kind
    }

    /// The names of the threads involved, in the order the message mentions them,
    /// each once.
    ///
    /// ```
    /// use concur::deadlock::{self, Mode};
    /// use concur::{sync::Lock, thread};
    /// deadlock::set_mode(Mode::Warn);
    /// let (a, b) = (Lock::builder().name("A").build(), Lock::builder().name("B").build());
    /// for (name, first, second) in [("t1", &a, &b), ("t2", &b, &a)] {
    ///     let (first, second) = (first.clone(), second.clone());
    ///     let h = thread::Builder::new().name(name).spawn(move || {
    ///         drop((first.acquire(), second.acquire()));
    ///     });
    ///     h.unwrap().join().unwrap();
    /// }
    /// let r = deadlock::take_reports().pop().expect("a report");
    /// assert_eq!(r.threads(), ["t1", "t2"]);
    /// ```
    pub fn threads(&self) -> &[String] {
        &self.threads
    }

    /// The names (or creation sites) of the locks involved, in the order the message
    /// mentions them, each once.
    ///
    /// ```
    /// use concur::deadlock::{self, Mode};
    /// use concur::sync::Lock;
    /// deadlock::set_mode(Mode::Warn);
    /// let (a, b) = (Lock::builder().name("A").build(), Lock::builder().name("B").build());
    /// drop((a.acquire(), b.acquire())); // A -> B
    /// drop((b.acquire(), a.acquire())); // B -> A: an inversion
    /// let r = deadlock::take_reports().pop().expect("a report");
    /// assert_eq!(r.locks(), ["A", "B"]);
    /// ```
    pub fn locks(&self) -> &[String] {
        &self.locks
    }

    /// The one-line message, e.g. `lock order inversion: A -> B in thread t1, B -> A in
    /// thread t2` or `deadlock: thread t1 holds A and waits for B; thread t2 holds B and
    /// waits for A`. Same as the `Display` output.
    ///
    /// ```
    /// use concur::deadlock::{self, Mode};
    /// use concur::{sync::Lock, thread};
    /// use std::time::Duration;
    /// deadlock::set_mode(Mode::Warn);
    /// let a = Lock::builder().name("A").build();
    /// let h = thread::Builder::new().name("t1").spawn(move || {
    ///     let _held = a.acquire();
    ///     a.acquire_timeout(Duration::from_millis(1)).is_none() // waits for itself
    /// });
    /// assert!(h.unwrap().join().unwrap());
    /// let r = deadlock::take_reports().pop().expect("a report");
    /// assert_eq!(r.message(), "deadlock: thread t1 holds A and waits for A");
    /// assert_eq!(r.message(), r.to_string());
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Pushes `s` into `v` unless it is already there (keeps first-mention order).
pub(crate) fn push_unique(v: &mut Vec<String>, s: &str) {
    if !v.iter().any(|x| x == s) {
        v.push(s.to_owned());
    }
}

pub(crate) type Hook = Arc<dyn Fn(&Report) + Send + Sync + 'static>;

/// How many reports [`take_reports`] can return at most: older ones are dropped first
/// (they still count in [`report_count`]).
pub const RETAINED_REPORTS: usize = 256;

struct Sink {
    hook: Option<Hook>,
    retained: VecDeque<Report>,
    count: u64,
}

static SINK: Mutex<Sink> = Mutex::new(Sink {
    hook: None,
    retained: VecDeque::new(),
    count: 0,
});

fn sink() -> MutexGuard<'static, Sink> {
    // Only this module's code runs under the lock (hooks are called after it is
    // released), but a poisoned lock must never disable reporting for good.
    SINK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Installs `hook`, called with every report from now on (replacing any previous hook).
///
/// The hook runs on the thread that found the problem, outside the detector's own lock
/// (so it may use concur locks), before that thread goes on (warn mode) or panics
/// (panic mode). While a hook is installed, warn mode prints nothing to stderr; the
/// `tracing` event is still emitted. A panicking hook unwinds out of the lock
/// operation that found the problem and leaves the detector working.
///
/// ```
/// use concur::deadlock;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// static SEEN: AtomicUsize = AtomicUsize::new(0);
/// deadlock::set_report_hook(|_report| {
///     SEEN.fetch_add(1, Ordering::Relaxed);
/// });
/// deadlock::clear_report_hook();
/// assert_eq!(SEEN.load(Ordering::Relaxed), 0);
/// ```
pub fn set_report_hook(hook: impl Fn(&Report) + Send + Sync + 'static) {
    set_hook(Some(Arc::new(hook)));
}

pub(crate) fn set_hook(hook: Option<Hook>) {
    sink().hook = hook;
}

/// Removes the report hook installed by [`set_report_hook`] (warn mode then prints one
/// line per report to stderr again).
///
/// ```
/// concur::deadlock::clear_report_hook();
/// ```
pub fn clear_report_hook() {
    sink().hook = None;
}

/// Removes and returns the reports produced so far (the latest [`RETAINED_REPORTS`]
/// of them), oldest first. Never blocks beyond a short internal lock.
///
/// ```
/// use concur::deadlock;
/// deadlock::take_reports();              // drain
/// assert!(deadlock::take_reports().is_empty());
/// ```
pub fn take_reports() -> Vec<Report> {
    sink().retained.drain(..).collect()
}

/// A copy of the retained reports, oldest first, leaving them in place (useful when
/// several tests share one process and each picks out its own).
///
/// ```
/// let all = concur::deadlock::reports();
/// assert!(all.len() <= concur::deadlock::RETAINED_REPORTS);
/// ```
pub fn reports() -> Vec<Report> {
    sink().retained.iter().cloned().collect()
}

/// How many reports the detector has produced since the process started (including
/// those no longer retained).
///
/// ```
/// let before = concur::deadlock::report_count();
/// assert!(concur::deadlock::report_count() >= before);
/// ```
pub fn report_count() -> u64 {
    sink().count
}

/// Publishes `reports`: retains them, emits a `tracing` warning each, calls the hook
/// (or, in warn mode without a hook, writes one line to stderr). Called with no
/// detector lock held.
pub(crate) fn dispatch(reports: &[Report], mode: Mode) {
    let hook = {
        let mut s = sink();
        for r in reports {
            if s.retained.len() == RETAINED_REPORTS {
                s.retained.pop_front();
            }
            s.retained.push_back(r.clone());
            s.count += 1;
        }
        s.hook.clone()
    };
    for r in reports {
        tracing::warn!(target: "concur::deadlock", kind = ?r.kind, "{}", r.message);
        match &hook {
            Some(h) => h(r),
            // The documented purpose of warn mode: one line per problem on stderr, so
            // it is seen even without a tracing subscriber.
            None if mode == Mode::Warn => eprintln!("concur: {}", r.message),
            None => {}
        }
    }
}
