//! [`ProcessError`]: why a child process produced no value.

use std::error::Error;
use std::fmt;
use std::io;

/// What kind of failure a [`ProcessError`] is (private so kinds can be added).
#[derive(Debug)]
enum Kind {
    Panic {
        message: String,
        location: Option<String>,
    },
    Exited(i32),
    Signaled(i32),
    Spawn(io::Error),
    Io(io::Error),
    Serialization(String),
    IdentityMismatch(String),
    ForkRefused(usize),
    Timeout,
    NotStarted,
    AlreadyStarted,
    AlreadyJoined,
}

/// Why a [`Process`](crate::Process) produced no value: the child panicked (Python: the
/// target raised), exited or was killed before returning, could not be started, could
/// not pass its arguments or result, found itself in a different binary, or the join
/// timed out.
///
/// Opaque on purpose, like `concur::futures::TaskError`: ask it with the
/// predicates. [`exit_status`](ProcessError::exit_status) and
/// [`signal`](ProcessError::signal) tell how the child ended whenever that is known.
///
/// ```
/// use concur::process::Process;
///
/// fn fails(n: u32) -> u32 {
///     assert!(n < 10, "too big: {n}");
///     n
/// }
/// let e = Process::spawn(fails, 11).unwrap().join().unwrap_err();
/// assert!(e.is_panic());
/// assert_eq!(e.panic_message(), Some("too big: 11"));
/// assert_eq!(e.exit_status(), Some(1));
/// ```
pub struct ProcessError {
    kind: Kind,
}

impl ProcessError {
    fn new(kind: Kind) -> Self {
        ProcessError { kind }
    }

    pub(crate) fn panic(message: String, location: Option<String>) -> Self {
        Self::new(Kind::Panic { message, location })
    }

    pub(crate) fn exited(code: i32) -> Self {
        Self::new(Kind::Exited(code))
    }

    pub(crate) fn signaled(signal: i32) -> Self {
        Self::new(Kind::Signaled(signal))
    }

    pub(crate) fn spawn(err: io::Error) -> Self {
        Self::new(Kind::Spawn(err))
    }

    pub(crate) fn io(err: io::Error) -> Self {
        Self::new(Kind::Io(err))
    }

    pub(crate) fn serialization(message: impl Into<String>) -> Self {
        Self::new(Kind::Serialization(message.into()))
    }

    pub(crate) fn identity_mismatch(message: impl Into<String>) -> Self {
        Self::new(Kind::IdentityMismatch(message.into()))
    }

    pub(crate) fn fork_refused(threads: usize) -> Self {
        Self::new(Kind::ForkRefused(threads))
    }

    pub(crate) fn timeout() -> Self {
        Self::new(Kind::Timeout)
    }

    pub(crate) fn not_started() -> Self {
        Self::new(Kind::NotStarted)
    }

    pub(crate) fn already_started() -> Self {
        Self::new(Kind::AlreadyStarted)
    }

    pub(crate) fn already_joined() -> Self {
        Self::new(Kind::AlreadyJoined)
    }

    /// True if the child panicked; the panic's message and location came back from it.
    ///
    /// ```
    /// let p = concur::process::Process::spawn(|_: ()| -> u8 { panic!("boom") }, ()).unwrap();
    /// assert!(p.join().unwrap_err().is_panic());
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self.kind, Kind::Panic { .. })
    }

    /// The child's panic message, if it panicked.
    ///
    /// ```
    /// let p = concur::process::Process::spawn(|x: i32| -> i32 { panic!("x = {x}") }, 4).unwrap();
    /// assert_eq!(p.join().unwrap_err().panic_message(), Some("x = 4"));
    /// ```
    pub fn panic_message(&self) -> Option<&str> {
        match &self.kind {
            Kind::Panic { message, .. } => Some(message),
            _ => None,
        }
    }

    /// Where the child panicked (`file:line:column`), when its panic hook saw it.
    ///
    /// ```
    /// let p = concur::process::Process::spawn(|_: ()| -> () { panic!("here") }, ()).unwrap();
    /// let e = p.join().unwrap_err();
    /// assert!(e.panic_location().unwrap().contains(".rs:"));
    /// ```
    pub fn panic_location(&self) -> Option<&str> {
        match &self.kind {
            Kind::Panic { location, .. } => location.as_deref(),
            _ => None,
        }
    }

    /// True if the child exited (with [`exit_status`](ProcessError::exit_status))
    /// without returning a value: it called `std::process::exit`, or died in a way that
    /// left no report.
    ///
    /// ```
    /// let p = concur::process::Process::spawn(|c: i32| -> () { std::process::exit(c) }, 8).unwrap();
    /// let e = p.join().unwrap_err();
    /// assert!(e.is_exited());
    /// assert_eq!(e.exit_status(), Some(8));
    /// ```
    pub fn is_exited(&self) -> bool {
        matches!(self.kind, Kind::Exited(_))
    }

    /// True if a signal killed the child (see [`signal`](ProcessError::signal)).
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = concur::process::Process::spawn(|_: ()| std::thread::sleep(Duration::from_secs(30)), ()).unwrap();
    /// p.kill().unwrap();
    /// let e = p.join().unwrap_err();
    /// assert!(e.is_signaled());
    /// assert_eq!(e.signal(), Some(9));
    /// ```
    pub fn is_signaled(&self) -> bool {
        matches!(self.kind, Kind::Signaled(_))
    }

    /// The child's exit status, when it exited: `n` after `exit(n)`, 1 after a panic.
    ///
    /// ```
    /// let p = concur::process::Process::spawn(|_: ()| -> () { std::process::exit(3) }, ()).unwrap();
    /// assert_eq!(p.join().unwrap_err().exit_status(), Some(3));
    /// ```
    pub fn exit_status(&self) -> Option<i32> {
        match self.kind {
            Kind::Exited(c) => Some(c),
            Kind::Panic { .. } => Some(1),
            _ => None,
        }
    }

    /// The number of the signal that killed the child, if one did.
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = concur::process::Process::spawn(|_: ()| std::thread::sleep(Duration::from_secs(30)), ()).unwrap();
    /// p.terminate().unwrap();
    /// assert_eq!(p.join().unwrap_err().signal(), Some(15));
    /// ```
    pub fn signal(&self) -> Option<i32> {
        match self.kind {
            Kind::Signaled(s) => Some(s),
            _ => None,
        }
    }

    /// True if the child could not be started (see [`io_error`](ProcessError::io_error)).
    ///
    /// ```
    /// # use concur::process::ProcessError;
    /// fn explain(e: &ProcessError) -> &'static str {
    ///     if e.is_spawn_failed() { "could not start" } else { "other" }
    /// }
    /// # let _ = explain;
    /// ```
    pub fn is_spawn_failed(&self) -> bool {
        matches!(self.kind, Kind::Spawn(_))
    }

    /// The operating-system error behind a failed start, or behind a failure of the
    /// control channel to the child.
    ///
    /// ```
    /// let p = concur::process::Process::spawn(|x: u8| x, 1).unwrap();
    /// let e = p.join_timeout(std::time::Duration::ZERO).err();
    /// assert!(e.map_or(true, |e| e.io_error().is_none()));
    /// # let _ = p.join();
    /// ```
    pub fn io_error(&self) -> Option<&io::Error> {
        match &self.kind {
            Kind::Spawn(e) | Kind::Io(e) => Some(e),
            _ => None,
        }
    }

    /// True if the arguments could not be serialized (or decoded in the child), or the
    /// result could not be serialized (or decoded in the parent).
    ///
    /// ```
    /// use serde::{Deserialize, Serialize, Serializer};
    /// #[derive(Deserialize)]
    /// struct Refuses;
    /// impl Serialize for Refuses {
    ///     fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
    ///         Err(serde::ser::Error::custom("not today"))
    ///     }
    /// }
    /// let e = concur::process::Process::spawn(|_: Refuses| 1u8, Refuses).unwrap_err();
    /// assert!(e.is_serialization());
    /// ```
    pub fn is_serialization(&self) -> bool {
        matches!(self.kind, Kind::Serialization(_))
    }

    /// True if the child found that it runs a different binary than its parent, so the
    /// function could not be looked up safely (it was not run).
    ///
    /// ```
    /// // A child re-executes the very binary its parent runs, so in practice this only
    /// // fires if the binary on disk was replaced in a way `exec` could see.
    /// let p = concur::process::Process::spawn(|x: u8| x, 1).unwrap();
    /// assert!(p.join().is_ok_and(|v| v == 1));
    /// # let e: Option<concur::process::ProcessError> = None;
    /// # assert!(!e.is_some_and(|e| e.is_identity_mismatch()));
    /// ```
    pub fn is_identity_mismatch(&self) -> bool {
        matches!(self.kind, Kind::IdentityMismatch(_))
    }

    /// True if the `Fork` start method was refused because other threads are running
    /// (see [`StartMethod::Fork`](crate::StartMethod::Fork)).
    ///
    /// ```
    /// use concur::process::{Process, StartMethod};
    /// let _busy = std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_secs(1)));
    /// let r = Process::builder()
    ///     .start_method(StartMethod::Fork { force: false })
    ///     .spawn(|x: u8| x, 1);
    /// assert!(r.unwrap_err().is_fork_refused());
    /// ```
    pub fn is_fork_refused(&self) -> bool {
        matches!(self.kind, Kind::ForkRefused(_))
    }

    /// True if a `join_timeout`/`join_deadline` ran out of time; the child is still
    /// running and can be joined again.
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = concur::process::Process::spawn(|_: ()| std::thread::sleep(Duration::from_secs(30)), ()).unwrap();
    /// assert!(p.join_timeout(Duration::from_millis(10)).unwrap_err().is_timeout());
    /// p.kill().unwrap();
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self.kind, Kind::Timeout)
    }

    /// True if the process was joined before it was started (or after its start
    /// failed).
    ///
    /// ```
    /// let p = concur::process::Process::new(|x: u8| x, 1);
    /// assert!(p.join().unwrap_err().is_not_started());
    /// ```
    pub fn is_not_started(&self) -> bool {
        matches!(self.kind, Kind::NotStarted)
    }

    /// True if `start` was called a second time.
    ///
    /// ```
    /// let p = concur::process::Process::spawn(|x: u8| x, 1).unwrap();
    /// assert!(p.start().unwrap_err().is_already_started());
    /// # p.join().unwrap();
    /// ```
    pub fn is_already_started(&self) -> bool {
        matches!(self.kind, Kind::AlreadyStarted)
    }

    /// True if the process's value was already taken by an earlier `join`.
    ///
    /// ```
    /// let p = concur::process::Process::spawn(|x: u8| x + 1, 1).unwrap();
    /// assert_eq!(p.join().unwrap(), 2);
    /// assert!(p.join().unwrap_err().is_already_joined());
    /// assert_eq!(p.exitcode(), Some(0));
    /// ```
    pub fn is_already_joined(&self) -> bool {
        matches!(self.kind, Kind::AlreadyJoined)
    }
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Panic { message, location } => {
                write!(f, "the child process panicked: {message}")?;
                if let Some(l) = location {
                    write!(f, " at {l}")?;
                }
                Ok(())
            }
            Kind::Exited(c) => write!(
                f,
                "the child process exited with status {c} without returning a value"
            ),
            Kind::Signaled(s) => write!(f, "the child process was killed by signal {s}"),
            Kind::Spawn(e) => write!(f, "the child process could not be started: {e}"),
            Kind::Io(e) => write!(f, "lost contact with the child process: {e}"),
            Kind::Serialization(m) => f.write_str(m),
            Kind::IdentityMismatch(m) => write!(
                f,
                "the child process runs a different binary, so the function was not run: {m}"
            ),
            Kind::ForkRefused(n) => write!(
                f,
                "refusing to fork while {n} other thread(s) are running (a forked child \
                 could inherit their locks held); use StartMethod::Spawn, or \
                 StartMethod::Fork {{ force: true }} if you know this is safe"
            ),
            Kind::Timeout => f.write_str("join timed out: the child process is still running"),
            Kind::NotStarted => f.write_str("cannot join a process that was not started"),
            Kind::AlreadyStarted => f.write_str("a process can only be started once"),
            Kind::AlreadyJoined => f.write_str("the process's value was already taken by join"),
        }
    }
}

impl fmt::Debug for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessError")
            .field("kind", &self.kind)
            .field("message", &format_args!("{self}"))
            .finish()
    }
}

impl Error for ProcessError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match &self.kind {
            Kind::Spawn(e) | Kind::Io(e) => Some(e),
            _ => None,
        }
    }
}
