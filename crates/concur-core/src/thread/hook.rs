//! Reporting panics of concur threads: the process panic hook that captures a concur
//! thread's panic (instead of letting Rust print it), and Python's `threading.excepthook`.

use super::error::payload_message;
use super::registry::Thread;
use std::cell::{Cell, RefCell};
use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Once, RwLock};

// ---- capture ---------------------------------------------------------------------------

/// What the panic hook saw of the last panic on a concur thread.
pub(crate) struct Captured {
    pub(crate) message: String,
    pub(crate) location: Option<String>,
}

std::thread_local! {
    /// True while a concur thread runs user code (its closure or an excepthook).
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    static LAST: RefCell<Option<Captured>> = const { RefCell::new(None) };
}

static INSTALL: Once = Once::new();

/// Installs (once) the process panic hook that records panics of concur threads and
/// chains to the previously installed hook for every other thread.
pub(crate) fn install_panic_hook() {
    // `set_hook` panics on a panicking thread (a spawn from a destructor during
    // unwinding): leave it for a later spawn then.
    if INSTALL.is_completed() || std::thread::panicking() {
        return;
    }
    INSTALL.call_once(|| {
        let prev = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let captured = CAPTURING.try_with(Cell::get).unwrap_or(false);
            if !captured {
                return prev(info);
            }
            let c = Captured {
                message: payload_message(info.payload()),
                location: info
                    .location()
                    .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column())),
            };
            let _ = LAST.try_with(|last| *last.borrow_mut() = Some(c));
        }));
    });
}

/// Runs `f` with the panic hook recording instead of printing; returns what it recorded
/// for a panic that escaped `f`.
pub(crate) fn capture<R>(
    f: impl FnOnce() -> R,
) -> Result<R, (Box<dyn std::any::Any + Send>, Option<Captured>)> {
    let was = CAPTURING.with(|c| c.replace(true));
    LAST.with(|l| l.borrow_mut().take());
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    CAPTURING.with(|c| c.set(was));
    r.map_err(|p| (p, LAST.with(|l| l.borrow_mut().take())))
}

// ---- excepthook -------------------------------------------------------------------------

/// What an excepthook is told about a panic that ended a concur thread: Python's
/// `threading.ExceptHookArgs`.
///
/// ```
/// use concur::thread::ExceptHookArgs;
/// let args = ExceptHookArgs::new("boom", "A", 7, Some("src/x.rs:3:5"));
/// assert_eq!(args.message(), "boom");
/// assert_eq!(args.thread_name(), "A");
/// assert_eq!(args.location(), Some("src/x.rs:3:5"));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ExceptHookArgs<'a> {
    message: &'a str,
    thread_name: &'a str,
    thread_ident: u64,
    location: Option<&'a str>,
}

impl<'a> ExceptHookArgs<'a> {
    /// Arguments for a panic `message` at `location` (`file:line:column`) in the thread
    /// `thread_name`/`thread_ident`; for calling [`excepthook`] or testing a hook.
    ///
    /// ```
    /// use concur::thread::{self, ExceptHookArgs};
    /// let args = ExceptHookArgs::new("boom", "A", thread::get_ident(), None);
    /// assert_eq!((args.message(), args.thread_name()), ("boom", "A"));
    /// assert_eq!(args.location(), None);
    /// ```
    pub fn new(
        message: &'a str,
        thread_name: &'a str,
        thread_ident: u64,
        location: Option<&'a str>,
    ) -> Self {
        ExceptHookArgs {
            message,
            thread_name,
            thread_ident,
            location,
        }
    }
    /// The panic message.
    ///
    /// ```
    /// let args = concur::thread::ExceptHookArgs::new("boom", "A", 1, None);
    /// assert_eq!(args.message(), "boom");
    /// ```
    pub fn message(&self) -> &'a str {
        self.message
    }
    /// The name of the thread that panicked.
    ///
    /// ```
    /// let args = concur::thread::ExceptHookArgs::new("boom", "A", 1, None);
    /// assert_eq!(args.thread_name(), "A");
    /// ```
    pub fn thread_name(&self) -> &'a str {
        self.thread_name
    }
    /// The [`get_ident`](super::get_ident) of the thread that panicked.
    ///
    /// ```
    /// let args = concur::thread::ExceptHookArgs::new("boom", "A", 7, None);
    /// assert_eq!(args.thread_ident(), 7);
    /// ```
    pub fn thread_ident(&self) -> u64 {
        self.thread_ident
    }
    /// Where it panicked, as `file:line:column`; `None` when unknown.
    ///
    /// ```
    /// use concur::thread::ExceptHookArgs;
    /// let args = ExceptHookArgs::new("boom", "A", 1, Some("src/x.rs:3:5"));
    /// assert_eq!(args.location(), Some("src/x.rs:3:5"));
    /// assert_eq!(ExceptHookArgs::new("boom", "A", 1, None).location(), None);
    /// ```
    pub fn location(&self) -> Option<&'a str> {
        self.location
    }
}

type Hook = Arc<dyn Fn(&ExceptHookArgs<'_>) + Send + Sync>;

static HOOK: RwLock<Option<Hook>> = RwLock::new(None);

/// Replaces the hook called once for every panic that ends a concur thread: Python's
/// `threading.excepthook = hook`. The hook runs on the panicking thread, before any
/// join of it returns; the panic still reaches `join` as a [`JoinError`](super::JoinError).
/// If the hook itself panics, that panic and the original one are both reported by the
/// default hook, and the process carries on.
///
/// ```
/// use concur::thread;
/// use std::sync::{Arc, Mutex};
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let s = seen.clone();
/// thread::set_excepthook(move |a| s.lock().unwrap().push((a.thread_name().to_owned(), a.message().to_owned())));
/// let r = thread::Builder::new().name("A").spawn(|| panic!("boom")).unwrap().join();
/// thread::reset_excepthook();
/// assert!(r.unwrap_err().is_panic());
/// assert!(seen.lock().unwrap().contains(&("A".to_owned(), "boom".to_owned())));
/// ```
pub fn set_excepthook(hook: impl Fn(&ExceptHookArgs<'_>) + Send + Sync + 'static) {
    *HOOK.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(hook));
}

/// Restores the default hook ([`default_excepthook`]): Python's
/// `threading.excepthook = threading.__excepthook__`.
///
/// ```
/// concur::thread::reset_excepthook();
/// ```
pub fn reset_excepthook() {
    *HOOK.write().unwrap_or_else(|p| p.into_inner()) = None;
}

/// Calls the current excepthook (the one set by [`set_excepthook`], or the default).
///
/// # Panics
/// If the hook panics.
///
/// ```
/// use concur::thread::{self, ExceptHookArgs};
/// thread::set_excepthook(|a| assert_eq!(a.message(), "hi"));
/// thread::excepthook(&ExceptHookArgs::new("hi", "A", 1, None));
/// thread::reset_excepthook();
/// ```
pub fn excepthook(args: &ExceptHookArgs<'_>) {
    let hook = HOOK.read().unwrap_or_else(|p| p.into_inner()).clone();
    match hook {
        Some(h) => h(args),
        None => default_excepthook(args),
    }
}

/// The default excepthook: writes one report to stderr, like Python
/// (`Exception in thread A:` then `panicked at src/x.rs:3:5: boom`), and emits a
/// `tracing::error!` event with the same facts.
///
/// ```
/// use concur::thread::{default_excepthook, ExceptHookArgs};
/// default_excepthook(&ExceptHookArgs::new("boom", "A", 1, Some("src/x.rs:3:5")));
/// ```
pub fn default_excepthook(args: &ExceptHookArgs<'_>) {
    let report = match args.location {
        Some(loc) => format!(
            "Exception in thread {}:\npanicked at {loc}: {}\n",
            args.thread_name, args.message
        ),
        None => format!(
            "Exception in thread {}:\npanicked: {}\n",
            args.thread_name, args.message
        ),
    };
    let _ = std::io::stderr().lock().write_all(report.as_bytes());
    tracing::error!(
        thread = args.thread_name,
        ident = args.thread_ident,
        location = args.location.unwrap_or("<unknown>"),
        "exception in thread {}: {}",
        args.thread_name,
        args.message
    );
}

/// Reports a panic that ended `thread` through the excepthook; a panicking hook is
/// caught and reported with the original panic.
pub(crate) fn report(thread: &Thread, message: &str, location: Option<&str>) {
    let name = thread.name();
    let args = ExceptHookArgs::new(message, &name, thread.ident(), location);
    if let Err((payload, seen)) = capture(|| excepthook(&args)) {
        let hook_msg = seen.map_or_else(|| payload_message(&*payload), |c| c.message);
        // Dropping a payload may itself panic; never let that escape.
        let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(payload)));
        default_excepthook(&args);
        let _ = writeln!(
            std::io::stderr().lock(),
            "(the excepthook itself panicked: {hook_msg})"
        );
        tracing::error!(thread = %name, "the excepthook panicked: {hook_msg}");
    }
}
