//! `Builder`, `spawn` and `JoinHandle`: starting a thread and getting its value back.

use super::error::{JoinError, PanicReport, payload_message};
use super::hook;
use super::registry::{self, Ids, Kind, Thread, lock};
use crate::ident::get_ident;
use crate::sys;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Configures a thread before starting it: Python's `threading.Thread(name=..., daemon=...)`
/// plus a stack size.
///
/// ```
/// use concur::thread::Builder;
/// let h = Builder::new().name("A").daemon(true).stack_size(256 * 1024).spawn(|| 2 + 2)?;
/// assert_eq!(h.name(), "A");
/// assert_eq!(h.join().unwrap(), 4);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until `spawn` is called"]
pub struct Builder {
    name: Option<String>,
    daemon: bool,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder for an unnamed (`"Thread-N"`), non-daemon thread with the default stack.
    ///
    /// ```
    /// let h = concur::thread::Builder::new().spawn(|| ()).unwrap();
    /// assert!(h.name().starts_with("Thread-"));
    /// assert!(!h.thread().daemon());
    /// h.join().unwrap();
    /// ```
    pub fn new() -> Self {
        Builder::default()
    }

    /// Names the thread (also the std thread name, shown in Rust panics and debuggers).
    ///
    /// ```
    /// let h = concur::thread::Builder::new()
    ///     .name("worker")
    ///     .spawn(|| std::thread::current().name().map(str::to_owned))
    ///     .unwrap();
    /// assert_eq!(h.name(), "worker");
    /// assert_eq!(h.join().unwrap().as_deref(), Some("worker"));
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Makes the thread a daemon: [`wait_non_daemon`](super::wait_non_daemon) does not
    /// wait for it (the default is non-daemon, like Python). See the [module docs](super).
    ///
    /// ```
    /// let h = concur::thread::Builder::new().daemon(true).spawn(|| ()).unwrap();
    /// assert!(h.thread().daemon());
    /// h.join().unwrap();
    /// ```
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = daemon;
        self
    }

    /// Sets the thread's stack size in bytes (Python's `threading.stack_size`, per thread).
    ///
    /// ```
    /// let h = concur::thread::Builder::new()
    ///     .stack_size(4 * 1024 * 1024)
    ///     .spawn(|| [0u8; 1024 * 1024].len()) // a 1 MiB local fits in 4 MiB of stack
    ///     .unwrap();
    /// assert_eq!(h.join().unwrap(), 1024 * 1024);
    /// ```
    pub fn stack_size(mut self, size: usize) -> Self {
        self.stack_size = Some(size);
        self
    }

    /// Starts the thread running `f` and returns the handle that joins it.
    ///
    /// Blocks until the new thread has started and registered itself (as Python's
    /// `start()` waits for `_started`), so its ident, native id and place in
    /// [`enumerate`](super::enumerate) are known when this returns.
    ///
    /// # Errors
    /// The OS error if the thread could not be created.
    ///
    /// ```
    /// let h = concur::thread::Builder::new().spawn(|| "done")?;
    /// assert!(h.ident() != 0);
    /// assert_eq!(h.join().unwrap(), "done");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        hook::install_panic_hook();
        let name = self.name.unwrap_or_else(|| registry::new_name("Thread"));
        let thread = Thread::new(name.clone(), self.daemon, Kind::Spawned, None);
        let packet: Arc<Mutex<Option<Result<T, JoinError>>>> = Arc::new(Mutex::new(None));
        let mut std_builder = std::thread::Builder::new().name(name);
        if let Some(size) = self.stack_size {
            std_builder = std_builder.stack_size(size);
        }
        let (their_thread, their_packet) = (thread.clone(), packet.clone());
        let native = std_builder.spawn(move || run(their_thread, their_packet, f))?;
        thread.wait_started();
        Ok(JoinHandle {
            thread,
            packet,
            native: Some(native),
        })
    }
}

/// The body of every concur thread.
fn run<F, T>(thread: Thread, packet: Arc<Mutex<Option<Result<T, JoinError>>>>, f: F)
where
    F: FnOnce() -> T,
{
    let _ = thread.inner.ids.set(Ids {
        ident: get_ident(),
        native_id: sys::native_id(),
    });
    registry::set_current(&thread);
    registry::register(&thread);
    thread.mark_started();
    let result = match hook::capture(f) {
        Ok(v) => Ok(v),
        Err((payload, seen)) => {
            let (message, location) = match seen {
                Some(c) => (c.message, c.location),
                None => (payload_message(&*payload), None),
            };
            hook::report(&thread, &message, location.as_deref());
            Err(JoinError::panic(PanicReport {
                thread_name: thread.name(),
                message,
                location,
                payload: Mutex::new(Some(payload)),
            }))
        }
    };
    *lock(&packet) = Some(result);
    drop(packet);
    thread.mark_finished();
}

/// Starts an unnamed, non-daemon thread running `f`: `Builder::new().spawn(f)` for when
/// thread creation failing is a bug.
///
/// Blocks until the thread has started, like [`Builder::spawn`].
///
/// # Panics
/// If the OS cannot create the thread.
///
/// ```
/// let h = concur::thread::spawn(|| 6 * 7);
/// assert_eq!(h.join().unwrap(), 42);
/// ```
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match Builder::new().spawn(f) {
        Ok(h) => h,
        Err(e) => panic!("failed to spawn thread: {e}"),
    }
}

/// Owns a started thread's result: join it to get the closure's value or its panic.
///
/// Dropping the handle detaches the thread (it keeps running; its value is dropped when
/// it finishes). [`join`](JoinHandle::join) consumes the handle, so a value is taken
/// once; the timed joins borrow it and leave it usable after a timeout.
///
/// ```
/// use std::time::Duration;
/// let mut h = concur::thread::spawn(|| String::from("hi"));
/// assert_eq!(h.join_timeout(Duration::from_secs(10)).unwrap(), "hi");
/// assert!(h.join_timeout(Duration::from_secs(10)).unwrap_err().is_already_joined());
/// ```
pub struct JoinHandle<T> {
    thread: Thread,
    packet: Arc<Mutex<Option<Result<T, JoinError>>>>,
    native: Option<std::thread::JoinHandle<()>>,
}

impl<T> JoinHandle<T> {
    /// Blocks until the thread finishes and returns the closure's value.
    ///
    /// # Errors
    /// [`JoinError::is_panic`] (with message and location) if the closure panicked;
    /// [`JoinError::is_self_join`] if called on the thread itself (instead of hanging);
    /// [`JoinError::is_already_joined`] if a timed join already took the value.
    ///
    /// # Panics
    /// In deadlock-detection panic mode, if the join would close a wait-for cycle.
    ///
    /// ```
    /// let h = concur::thread::spawn(|| panic!("boom"));
    /// assert_eq!(h.join().unwrap_err().panic_message(), Some("boom"));
    /// ```
    pub fn join(mut self) -> Result<T, JoinError> {
        self.join_until(None)
    }

    /// Blocks for at most `timeout` (a timeout too large to represent waits forever).
    ///
    /// # Errors
    /// [`JoinError::is_timeout`] if the thread still runs at the deadline (the handle
    /// stays usable), otherwise as [`join`](JoinHandle::join).
    ///
    /// # Panics
    /// In deadlock-detection panic mode, if the join would close a wait-for cycle.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let mut h = concur::thread::spawn(|| std::thread::sleep(Duration::from_millis(100)));
    /// let start = Instant::now();
    /// assert!(h.join_timeout(Duration::from_millis(20)).unwrap_err().is_timeout());
    /// assert!(start.elapsed() >= Duration::from_millis(20));
    /// h.join().unwrap();
    /// ```
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<T, JoinError> {
        self.join_until(crate::time::deadline_after(timeout))
    }

    /// Blocks until `deadline` at the latest.
    ///
    /// # Errors
    /// As [`join_timeout`](JoinHandle::join_timeout).
    ///
    /// # Panics
    /// In deadlock-detection panic mode, if the join would close a wait-for cycle.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let mut h = concur::thread::spawn(|| 1);
    /// assert_eq!(h.join_deadline(Instant::now() + Duration::from_secs(10)).unwrap(), 1);
    /// ```
    pub fn join_deadline(&mut self, deadline: Instant) -> Result<T, JoinError> {
        self.join_until(Some(deadline))
    }

    fn join_until(&mut self, deadline: Option<Instant>) -> Result<T, JoinError> {
        self.thread.join_until(deadline)?;
        let r = lock(&self.packet).take();
        // The thread finished its closure; wait for it to exit (thread-local destructors).
        if let Some(native) = self.native.take() {
            let _ = native.join();
        }
        r.unwrap_or_else(|| Err(JoinError::already_joined()))
    }

    /// The [`Thread`] this handle joins.
    ///
    /// ```
    /// use concur::thread;
    /// let h = thread::Builder::new().name("A").spawn(|| ()).unwrap();
    /// let t = h.thread().clone();
    /// assert_eq!((t.name().as_str(), t.ident()), ("A", h.ident()));
    /// h.join().unwrap();
    /// assert!(!t.is_alive());
    /// ```
    pub fn thread(&self) -> &Thread {
        &self.thread
    }
    /// [`Thread::is_alive`].
    ///
    /// ```
    /// let (tx, rx) = std::sync::mpsc::channel::<()>();
    /// let mut h = concur::thread::spawn(move || { let _ = rx.recv(); });
    /// assert!(h.is_alive());
    /// drop(tx);
    /// h.join_timeout(std::time::Duration::from_secs(10)).unwrap();
    /// assert!(!h.is_alive());
    /// ```
    pub fn is_alive(&self) -> bool {
        self.thread.is_alive()
    }
    /// [`Thread::name`].
    ///
    /// ```
    /// let h = concur::thread::Builder::new().name("A").spawn(|| ()).unwrap();
    /// assert_eq!(h.name(), "A");
    /// ```
    pub fn name(&self) -> String {
        self.thread.name()
    }
    /// [`Thread::ident`].
    ///
    /// ```
    /// use concur::thread;
    /// let h = thread::spawn(thread::get_ident);
    /// let ident = h.ident();
    /// assert_ne!(ident, thread::get_ident());
    /// assert_eq!(h.join().unwrap(), ident);
    /// ```
    pub fn ident(&self) -> u64 {
        self.thread.ident()
    }
    /// [`Thread::native_id`].
    ///
    /// ```
    /// let h = concur::thread::spawn(|| ());
    /// if cfg!(target_os = "linux") {
    ///     assert!(h.native_id().is_some());
    ///     assert_ne!(h.native_id(), concur::thread::current_thread().native_id());
    /// }
    /// ```
    pub fn native_id(&self) -> Option<u64> {
        self.thread.native_id()
    }
}

impl<T> std::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("JoinHandle").field(&self.thread).finish()
    }
}
