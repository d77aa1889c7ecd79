//! Python's `threading` threads: [`Builder`] and [`spawn`], join handles that return the
//! closure's value or its panic, [`current_thread`], [`main_thread`], [`enumerate`],
//! [`Timer`], [`Local`] and the [`excepthook`](set_excepthook).
//!
//! | Python                                  | concur                                           |
//! |-----------------------------------------|--------------------------------------------------|
//! | `t = Thread(target=f, name="A"); t.start()` | `let h = Builder::new().name("A").spawn(f)?;`  |
//! | `t.join()` / `t.join(timeout)`          | `h.join()` / `h.join_timeout(d)` (value or `JoinError`) |
//! | `current_thread()`, `main_thread()`     | [`current_thread()`], [`main_thread()`]          |
//! | `enumerate()`, `active_count()`         | [`enumerate()`], [`active_count()`]              |
//! | `get_ident()`, `t.native_id`            | [`get_ident()`], [`Thread::native_id`]           |
//! | `threading.excepthook = f`              | [`set_excepthook(f)`](set_excepthook)            |
//! | `Timer(5, f).start()`                   | `Timer::new(d, f).start()?`                      |
//! | `threading.local()`                     | [`Local::new(init)`](Local::new)                 |
//!
//! Differences from Python, all on the safe side: a panic is never lost (it is reported
//! once through the excepthook *and* returned by `join`); joining the current thread is
//! an immediate [`JoinError`] (`is_self_join`), never a hang; `get_ident` values are
//! never reused.
//!
//! # Daemon threads
//! Rust never waits for other threads when `main` returns: the process exits and every
//! thread still running is abandoned mid-flight (no destructors run on them). So in
//! concur "daemon" means exactly this: **a non-daemon thread is one that
//! [`wait_non_daemon()`] waits for; a daemon thread is one it does not wait for**.
//! [`Builder`] makes non-daemon threads by default, like Python. To get Python's
//! behaviour at interpreter exit (wait for every non-daemon thread, abandon the
//! daemons), end `main` with [`wait_non_daemon()`]:
//!
//! ```
//! use concur::thread;
//! use std::sync::{Arc, atomic::{AtomicBool, Ordering}};
//! use std::time::Duration;
//! let flushed = Arc::new(AtomicBool::new(false));
//! let f = flushed.clone();
//! thread::spawn(move || f.store(true, Ordering::SeqCst)); // handle dropped: detached
//! let stop = Arc::new(AtomicBool::new(false));
//! let s = stop.clone();
//! let daemon = thread::Builder::new()
//!     .daemon(true)
//!     .spawn(move || while !s.load(Ordering::SeqCst) {
//!         std::thread::park_timeout(Duration::from_millis(1))
//!     })
//!     .unwrap();
//! thread::wait_non_daemon();                              // last line of `main`
//! assert!(flushed.load(Ordering::SeqCst));
//! assert!(daemon.is_alive());                             // not waited for
//! # stop.store(true, Ordering::SeqCst);                   // (tidy up the doc test)
//! # daemon.join().unwrap();
//! ```
//!
//! # Panics and the excepthook
//! A panic that ends a concur thread is captured by a process panic hook (installed at
//! the first spawn; it chains to the previous hook for every other thread), so Rust's
//! own "thread panicked" message is not printed; instead the excepthook is called once
//! with the thread's name, the message and the location. The default hook writes
//! `Exception in thread A:` / `panicked at src/x.rs:3:5: boom` to stderr and emits a
//! `tracing::error!` event. The panic then reaches `join` as a [`JoinError`].
//!
//! Two consequences of the hook: a panic that the closure catches itself (with
//! `catch_unwind`) is not printed either, since it is the closure's to handle; and if
//! other code replaces the process panic hook after concur installed its own, Rust's
//! message is printed as well and [`JoinError::panic_location`] is `None` (the message
//! is still taken from the payload, so nothing is lost).
//!
//! # Implementation
//! Joining and the [`Timer`] wait are built on `std::sync::{Mutex, Condvar}` (no
//! hand-written wait/wake protocol, so no loom model is needed); the registry of alive
//! threads is a `Mutex<BTreeMap>` keyed by ident.

mod error;
mod hook;
mod local;
mod registry;
mod spawn;
mod timer;

pub use crate::ident::get_ident;
pub use error::JoinError;
pub use hook::{ExceptHookArgs, default_excepthook, excepthook, reset_excepthook, set_excepthook};
#[allow(unused_imports)] // used by the thread pools (a later issue)
pub(crate) use hook::{capture, install_panic_hook};
pub use local::Local;
pub(crate) use local::reset_thread_locals;
pub use registry::{Thread, active_count, current_thread, enumerate, main_thread};
pub use spawn::{Builder, JoinHandle, spawn};
pub use timer::Timer;

use std::time::{Duration, Instant};

/// Blocks until every non-daemon thread spawned by concur has finished, including ones
/// started while waiting: what Python does at interpreter exit. Call it at the end of
/// `main` (see [Daemon threads](self#daemon-threads)). The calling thread is never
/// waited for.
///
/// # Panics
/// In deadlock-detection panic mode, if a join would close a wait-for cycle.
///
/// ```
/// let h = concur::thread::spawn(|| ());
/// let t = h.thread().clone();
/// drop(h);
/// concur::thread::wait_non_daemon();
/// assert!(!t.is_alive());
/// ```
pub fn wait_non_daemon() {
    wait_non_daemon_until(None);
}

/// Like [`wait_non_daemon`] for at most `timeout`; true if every non-daemon thread has
/// finished, false if some still ran at the deadline.
///
/// # Panics
/// In deadlock-detection panic mode, if a join would close a wait-for cycle.
///
/// ```
/// use std::time::Duration;
/// let (tx, rx) = std::sync::mpsc::channel::<()>();
/// let h = concur::thread::spawn(move || { let _ = rx.recv(); });
/// assert!(!concur::thread::wait_non_daemon_timeout(Duration::from_millis(10)));
/// drop(tx);
/// h.join().unwrap();
/// ```
pub fn wait_non_daemon_timeout(timeout: Duration) -> bool {
    wait_non_daemon_until(crate::time::deadline_after(timeout))
}

/// Like [`wait_non_daemon`] until `deadline` at the latest; true if every non-daemon
/// thread has finished.
///
/// # Panics
/// In deadlock-detection panic mode, if a join would close a wait-for cycle.
///
/// ```
/// use std::time::{Duration, Instant};
/// let h = concur::thread::spawn(|| ());
/// assert!(concur::thread::wait_non_daemon_deadline(Instant::now() + Duration::from_secs(10)));
/// assert!(!h.is_alive());
/// ```
pub fn wait_non_daemon_deadline(deadline: Instant) -> bool {
    wait_non_daemon_until(Some(deadline))
}

fn wait_non_daemon_until(deadline: Option<Instant>) -> bool {
    let me = get_ident();
    loop {
        let pending: Vec<Thread> = enumerate()
            .into_iter()
            .filter(|t| t.kind() == registry::Kind::Spawned && !t.daemon() && t.ident() != me)
            .collect();
        if pending.is_empty() {
            return true;
        }
        for t in pending {
            if t.join_until(deadline).is_err() {
                return false;
            }
        }
    }
}
