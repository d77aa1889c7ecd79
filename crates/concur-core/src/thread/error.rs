//! `JoinError`: why a join did not produce the thread's value.

use std::any::Any;
use std::fmt;
use std::sync::Mutex;

/// Why [`JoinHandle::join`](super::JoinHandle::join) or [`Thread::join`](super::Thread::join)
/// did not return the thread's value: the thread panicked, the wait timed out, the thread
/// tried to join itself, or the value was already taken.
///
/// It is opaque: ask it with the predicates ([`is_panic`](JoinError::is_panic),
/// [`is_timeout`](JoinError::is_timeout), ...). A panic keeps its message, its location
/// and the thread's name, so it is never lost; [`into_panic`](JoinError::into_panic)
/// gives back the original payload for `std::panic::resume_unwind`.
///
/// ```
/// use concur::thread;
/// let err = thread::Builder::new()
///     .name("A")
///     .spawn(|| -> u32 { panic!("boom") })
///     .unwrap()
///     .join()
///     .unwrap_err();
/// assert!(err.is_panic());
/// assert_eq!(err.panic_message(), Some("boom"));
/// assert!(err.to_string().starts_with("thread 'A' panicked at "));
/// assert!(err.to_string().ends_with(": boom"));
/// ```
pub struct JoinError {
    kind: Kind,
}

pub(crate) struct PanicReport {
    pub(crate) thread_name: String,
    pub(crate) message: String,
    pub(crate) location: Option<String>,
    /// The original payload, behind a mutex only so the error is `Sync`.
    pub(crate) payload: Mutex<Option<Box<dyn Any + Send>>>,
}

enum Kind {
    Panic(Box<PanicReport>),
    Timeout,
    SelfJoin,
    AlreadyJoined,
    NotStarted,
}

impl JoinError {
    pub(crate) fn panic(report: PanicReport) -> Self {
        JoinError {
            kind: Kind::Panic(Box::new(report)),
        }
    }
    pub(crate) fn timeout() -> Self {
        JoinError {
            kind: Kind::Timeout,
        }
    }
    pub(crate) fn self_join() -> Self {
        JoinError {
            kind: Kind::SelfJoin,
        }
    }
    pub(crate) fn already_joined() -> Self {
        JoinError {
            kind: Kind::AlreadyJoined,
        }
    }
    pub(crate) fn not_started() -> Self {
        JoinError {
            kind: Kind::NotStarted,
        }
    }

    /// True if the thread panicked; the panic's details are in
    /// [`panic_message`](JoinError::panic_message) and [`panic_location`](JoinError::panic_location).
    ///
    /// ```
    /// let err = concur::thread::spawn(|| panic!("boom")).join().unwrap_err();
    /// assert!(err.is_panic() && !err.is_timeout());
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self.kind, Kind::Panic(_))
    }

    /// True if a `join_timeout`/`join_deadline` gave up before the thread finished (the
    /// thread is still running and may be joined again).
    ///
    /// ```
    /// use std::time::Duration;
    /// let (tx, rx) = std::sync::mpsc::channel::<()>();
    /// let mut h = concur::thread::spawn(move || rx.recv().is_err());
    /// assert!(h.join_timeout(Duration::from_millis(10)).unwrap_err().is_timeout());
    /// drop(tx);
    /// assert!(h.join().unwrap());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self.kind, Kind::Timeout)
    }

    /// True if a thread tried to join itself, which would otherwise wait forever.
    ///
    /// ```
    /// let me = concur::thread::current_thread();
    /// assert!(me.join().unwrap_err().is_self_join());
    /// ```
    pub fn is_self_join(&self) -> bool {
        matches!(self.kind, Kind::SelfJoin)
    }

    /// True if the thread's value was already taken by an earlier successful
    /// `join_timeout`/`join_deadline` on the same handle.
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut h = concur::thread::spawn(|| 1);
    /// assert_eq!(h.join_timeout(Duration::from_secs(10)).unwrap(), 1);
    /// assert!(h.join().unwrap_err().is_already_joined());
    /// ```
    pub fn is_already_joined(&self) -> bool {
        matches!(self.kind, Kind::AlreadyJoined)
    }

    /// True if the thread (a [`Timer`](super::Timer)'s) was joined before it was started,
    /// Python's "cannot join thread before it is started".
    ///
    /// ```
    /// let t = concur::thread::Timer::new(std::time::Duration::ZERO, || ());
    /// let err = t.join().unwrap_err();
    /// assert!(err.is_not_started());
    /// assert_eq!(err.to_string(), "cannot join thread before it is started");
    /// ```
    pub fn is_not_started(&self) -> bool {
        matches!(self.kind, Kind::NotStarted)
    }

    /// The panic message (the `&str` or `String` payload; `"Box<dyn Any>"` otherwise);
    /// `None` if this is not a panic.
    ///
    /// ```
    /// use concur::thread;
    /// let err = thread::spawn(|| panic!("bad {}", 42)).join().unwrap_err();
    /// assert_eq!(err.panic_message(), Some("bad 42"));
    /// let err = thread::spawn(|| std::panic::panic_any(7u8)).join().unwrap_err();
    /// assert_eq!(err.panic_message(), Some("Box<dyn Any>"));
    /// ```
    pub fn panic_message(&self) -> Option<&str> {
        match &self.kind {
            Kind::Panic(r) => Some(&r.message),
            _ => None,
        }
    }

    /// Where the thread panicked, as `file:line:column`, when the panic hook saw it;
    /// `None` otherwise, or if this is not a panic.
    ///
    /// ```
    /// let err = concur::thread::spawn(|| panic!("boom")).join().unwrap_err();
    /// // Some unless other code replaced the process panic hook after concur's.
    /// let loc = err.panic_location().expect("seen by concur's panic hook");
    /// assert_eq!(loc.rsplitn(3, ':').count(), 3); // file:line:column
    /// assert!(concur::thread::current_thread().join().unwrap_err().panic_location().is_none());
    /// ```
    pub fn panic_location(&self) -> Option<&str> {
        match &self.kind {
            Kind::Panic(r) => r.location.as_deref(),
            _ => None,
        }
    }

    /// The name of the thread that panicked; `None` if this is not a panic.
    ///
    /// ```
    /// use concur::thread;
    /// let h = thread::Builder::new().name("A").spawn(|| panic!("boom")).unwrap();
    /// assert_eq!(h.join().unwrap_err().thread_name(), Some("A"));
    /// let me = thread::current_thread();
    /// assert_eq!(me.join().unwrap_err().thread_name(), None); // a self-join, not a panic
    /// ```
    pub fn thread_name(&self) -> Option<&str> {
        match &self.kind {
            Kind::Panic(r) => Some(&r.thread_name),
            _ => None,
        }
    }

    /// The original panic payload, for `std::panic::resume_unwind`; `None` if this is not
    /// a panic.
    ///
    /// ```
    /// let err = concur::thread::spawn(|| std::panic::panic_any(7u8)).join().unwrap_err();
    /// let payload = err.into_panic().unwrap();
    /// assert_eq!(payload.downcast_ref::<u8>(), Some(&7));
    /// ```
    pub fn into_panic(self) -> Option<Box<dyn Any + Send>> {
        match self.kind {
            Kind::Panic(r) => {
                let r = *r;
                r.payload.into_inner().unwrap_or_else(|p| p.into_inner())
            }
            _ => None,
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Panic(r) => match &r.location {
                Some(loc) => write!(
                    f,
                    "thread '{}' panicked at {loc}: {}",
                    r.thread_name, r.message
                ),
                None => write!(f, "thread '{}' panicked: {}", r.thread_name, r.message),
            },
            Kind::Timeout => f.write_str("join timed out: the thread is still running"),
            Kind::SelfJoin => f.write_str("cannot join current thread"),
            Kind::AlreadyJoined => f.write_str("the thread's result was already taken"),
            Kind::NotStarted => f.write_str("cannot join thread before it is started"),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinError")
            .field("error", &format_args!("{self}"))
            .finish()
    }
}

impl std::error::Error for JoinError {}

/// The message of a panic payload, as std prints it.
pub(crate) fn payload_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_predicates_of_every_kind() {
        let cases = [
            (
                JoinError::timeout(),
                "join timed out: the thread is still running",
            ),
            (JoinError::self_join(), "cannot join current thread"),
            (
                JoinError::already_joined(),
                "the thread's result was already taken",
            ),
            (
                JoinError::not_started(),
                "cannot join thread before it is started",
            ),
        ];
        for (e, text) in &cases {
            assert_eq!(e.to_string(), *text);
            assert!(!e.is_panic() && e.panic_message().is_none() && e.panic_location().is_none());
        }
        assert!(cases[0].0.is_timeout() && cases[1].0.is_self_join());
        assert!(cases[2].0.is_already_joined() && cases[3].0.is_not_started());
        let p = JoinError::panic(PanicReport {
            thread_name: "A".into(),
            message: "boom".into(),
            location: None,
            payload: Mutex::new(None),
        });
        assert_eq!(p.to_string(), "thread 'A' panicked: boom");
        assert!(format!("{p:?}").contains("boom"));
        fn is_send_sync<T: Send + Sync + std::error::Error>() {}
        is_send_sync::<JoinError>();
    }

    #[test]
    fn payload_messages() {
        assert_eq!(payload_message(&"s"), "s");
        assert_eq!(payload_message(&String::from("t")), "t");
        assert_eq!(payload_message(&5u8), "Box<dyn Any>");
    }
}
