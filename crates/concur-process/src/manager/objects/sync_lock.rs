//! [`Lock`] and [`RLock`]: a manager's locks (Python's `Manager().Lock()` and
//! `Manager().RLock()`), plus what every synchronization object shares: the server-side
//! wait (a `Mutex` + `Condvar` per object, woken when the server stops) and the proxy
//! boilerplate.
//!
//! Blocking happens on the server, in the thread of the calling connection: an op
//! carries its timeout relative to its arrival (`None`: forever), and the reply comes
//! when the op is done. The owner of what a call acquires is the connection it came on
//! ([`Ctx::client`]), so every proxy (and every clone of one: a clone has its own
//! connection) is a separate owner, as each Python thread is.

use concur_core::time::deadline_after;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::manager::error::{Kind, ManagerError};
use crate::manager::object::{Ctx, Object};
use crate::manager::protocol::{ObjKind, decode_op, encode};

// ------------------------------------------------------------ shared machinery

/// An object's state behind a mutex, the condition variable its waiters block on, and
/// the stop flag.
pub(crate) struct Guarded<S> {
    state: Mutex<S>,
    cv: Condvar,
    stopped: AtomicBool,
}

impl<S> Guarded<S> {
    pub(crate) fn new(state: S) -> Self {
        Guarded {
            state: Mutex::new(state),
            cv: Condvar::new(),
            stopped: AtomicBool::new(false),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, S> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes every waiter (each rechecks its own condition).
    pub(crate) fn wake(&self) {
        self.cv.notify_all();
    }

    /// Waits until `ready` holds (it may change the state: it runs under the mutex),
    /// returning the guard and `true`; or until `deadline` passes (`false`); or until
    /// the server stops (a shut-down error). `ready` is tried first, so a deadline in
    /// the past makes a non-blocking attempt. The server's own flag is checked too: an
    /// object made while the server was stopping was never told to stop.
    pub(crate) fn wait_until<'a>(
        &self,
        ctx: &Ctx<'_>,
        mut g: MutexGuard<'a, S>,
        deadline: Option<Instant>,
        mut ready: impl FnMut(&mut S) -> bool,
    ) -> Result<(MutexGuard<'a, S>, bool), ManagerError> {
        loop {
            if ready(&mut g) {
                return Ok((g, true));
            }
            if self.stopped.load(Ordering::SeqCst) || ctx.server_stopping() {
                return Err(stopped());
            }
            let Some(slice) = Ctx::wait_slice(deadline) else {
                return Ok((g, false));
            };
            let (g2, timed_out) = self
                .cv
                .wait_timeout(g, slice)
                .unwrap_or_else(PoisonError::into_inner);
            g = g2;
            // A dead client's call must not take anything later.
            if timed_out.timed_out() && ctx.peer_gone() {
                return Err(ctx.gone_error());
            }
        }
    }

    /// Marks the object stopped and wakes its waiters. The flag is set before the
    /// mutex is taken, so a waiter either sees it or is already waiting when woken.
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let _g = self.lock();
        self.cv.notify_all();
    }
}

/// The error of a wait ended by the server stopping.
fn stopped() -> ManagerError {
    ManagerError::shutdown("the manager is shutting down")
}

/// An error for a call the object's state forbids.
pub(crate) fn invalid(message: impl Into<String>) -> ManagerError {
    ManagerError::new(Kind::InvalidState, message)
}

/// The timeout an op carries for `deadline` (zero if it has passed).
pub(crate) fn timeout_until(deadline: Instant) -> Option<Duration> {
    Some(deadline.saturating_duration_since(Instant::now()))
}

/// Declares a synchronization proxy type over a [`Handle`], with `Clone` (a new
/// connection, so a new owner), `Debug`, `Serialize`/`Deserialize` (it reconnects in
/// the receiving process), `from_handle`, `id` and `tag`.
macro_rules! sync_proxy {
    ($(#[$m:meta])* $name:ident, $tag:literal, $by_id:ident, $make:literal) => {
        $(#[$m])*
        pub struct $name {
            h: $crate::manager::client::Handle,
        }

        impl Clone for $name {
            /// Another proxy to the same object, on its own connection (opened on
            /// first use): a different owner for what it acquires.
            fn clone(&self) -> Self {
                $name { h: self.h.clone() }
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                self.h.fmt(f)
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.h.serialize(s)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok($name {
                    h: $crate::manager::client::Handle::deserialize(d)?,
                })
            }
        }

        impl $name {
            /// The type tag of this kind of object.
            pub(crate) fn tag() -> String {
                $crate::manager::objects::tag($tag, &[])
            }

            pub(crate) fn from_handle(h: $crate::manager::client::Handle) -> Self {
                $name { h }
            }

            /// The object's id on its manager, to attach to it with
            #[doc = concat!("[`Manager::", stringify!($by_id), "`](crate::Manager::", stringify!($by_id), ").")]
            ///
            /// ```
            /// let m = concur::process::Manager::start().unwrap();
            #[doc = concat!("let a = m.", $make, ".unwrap();")]
            #[doc = concat!("let b = m.", stringify!($by_id), "(a.id()).unwrap();")]
            /// assert_eq!(a.id(), b.id());
            /// ```
            pub fn id(&self) -> u64 {
                self.h.id
            }
        }
    };
}
pub(crate) use sync_proxy;

/// The four acquire forms of a proxy whose private `acquire_for(timeout)` asks the
/// server (Lock, RLock, Condition and the semaphores): `$what` names what is acquired,
/// `$make` the `Manager` call that makes one with a single unit (for the examples).
macro_rules! acquire_forms {
    ($what:literal, $make:literal) => {
        #[doc = concat!("Acquires ", $what, ", blocking until it is free (Python's `acquire()`).")]
        ///
        /// # Errors
        /// [`is_shutdown`](ManagerError::is_shutdown) if the manager stops or is gone;
        /// an I/O error.
        ///
        /// ```
        /// let m = concur::process::Manager::start().unwrap();
        #[doc = concat!("let x = m.", $make, ".unwrap();")]
        /// x.acquire().unwrap();
        /// assert!(!x.clone().try_acquire().unwrap(), "another proxy waits");
        /// ```
        pub fn acquire(&self) -> Result<(), ManagerError> {
            self.acquire_for(None).map(drop)
        }

        #[doc = concat!("Acquires ", $what, " if it is free; never blocks (Python's `acquire(blocking=False)`). `Ok(false)` if it is not.")]
        ///
        /// # Errors
        /// As [`acquire`](Self::acquire).
        ///
        /// ```
        /// let m = concur::process::Manager::start().unwrap();
        #[doc = concat!("let x = m.", $make, ".unwrap();")]
        /// assert!(x.try_acquire().unwrap());
        /// assert!(!x.clone().try_acquire().unwrap());
        /// ```
        pub fn try_acquire(&self) -> Result<bool, ManagerError> {
            self.acquire_for(Some(Duration::ZERO))
        }

        #[doc = concat!("Acquires ", $what, ", waiting at most `timeout` (Python's `acquire(timeout=t)`); `Ok(false)` if it did not come free. A timeout too large to represent waits forever.")]
        ///
        /// # Errors
        /// As [`acquire`](Self::acquire).
        ///
        /// ```
        /// use std::time::Duration;
        /// let m = concur::process::Manager::start().unwrap();
        #[doc = concat!("let x = m.", $make, ".unwrap();")]
        /// let other = x.clone();
        /// assert!(x.acquire_timeout(Duration::from_millis(10)).unwrap());
        /// assert!(!other.acquire_timeout(Duration::from_millis(10)).unwrap());
        /// ```
        pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
            match deadline_after(timeout) {
                Some(d) => self.acquire_deadline(d),
                None => self.acquire().map(|()| true),
            }
        }

        #[doc = concat!("Acquires ", $what, ", waiting until `deadline` at most; `Ok(false)` if it did not come free.")]
        ///
        /// # Errors
        /// As [`acquire`](Self::acquire).
        ///
        /// ```
        /// use std::time::{Duration, Instant};
        /// let m = concur::process::Manager::start().unwrap();
        #[doc = concat!("let x = m.", $make, ".unwrap();")]
        /// assert!(x.acquire_deadline(Instant::now() + Duration::from_millis(10)).unwrap());
        /// ```
        pub fn acquire_deadline(&self, deadline: Instant) -> Result<bool, ManagerError> {
            self.acquire_for(timeout_until(deadline))
        }
    };
}

pub(crate) use acquire_forms;

// ------------------------------------------------------------------------ Lock

#[derive(Serialize, Deserialize)]
enum LockOp {
    Acquire(Option<Duration>),
    Release,
    Locked,
}

/// The server side of a [`Lock`]: who holds it (a connection id; 0 for none).
pub(crate) struct LockObject {
    tag: String,
    g: Guarded<Option<u64>>,
}

impl LockObject {
    pub(crate) fn new(tag: String) -> Self {
        LockObject {
            tag,
            g: Guarded::new(None),
        }
    }
}

impl Object for LockObject {
    fn tag(&self) -> &str {
        &self.tag
    }

    fn call(&self, ctx: &Ctx<'_>, op: &[u8]) -> Result<Vec<u8>, ManagerError> {
        let op = decode_op::<LockOp>(op)?;
        let g = self.g.lock();
        match op {
            LockOp::Acquire(t) => {
                let (_g, ok) = self.g.wait_until(ctx, g, t.and_then(deadline_after), |h| {
                    h.is_none() && {
                        *h = Some(ctx.client);
                        true
                    }
                })?;
                encode(&ok)
            }
            LockOp::Release => {
                let mut g = g;
                if g.take().is_none() {
                    return Err(invalid("release of an unlocked lock"));
                }
                self.g.wake();
                encode(&())
            }
            LockOp::Locked => encode(&g.is_some()),
        }
    }

    fn client_gone(&self, client: u64) {
        let mut g = self.g.lock();
        if *g == Some(client) {
            *g = None;
            self.g.wake();
        }
    }

    fn stop(&self) {
        self.g.stop();
    }
}

sync_proxy! {
    /// A lock held by a [`Manager`](crate::Manager)'s server (Python's
    /// `Manager().Lock()`): one holder at a time, among every proxy of every process.
    ///
    /// Like `threading.Lock`, any proxy may release it, not only the one that acquired
    /// it. Acquiring blocks on the server (in this proxy's connection thread there),
    /// so a waiting client holds up no other. Cloning the proxy gives another
    /// connection; passing it to a [`Process`](crate::Process) connects from the child.
    ///
    /// **Crash safety**: the server remembers which connection acquired the lock. When
    /// that connection ends (its process exited, was killed, or dropped the proxy)
    /// while the lock is held, the server releases it and wakes a waiter, so a process
    /// that dies holding the lock does not deadlock the others. A release by another
    /// proxy clears that record, as expected.
    ///
    /// ```
    /// use concur::process::{Manager, Process};
    /// use concur::process::manager::Lock;
    ///
    /// let m = Manager::start().unwrap();
    /// let lock = m.lock().unwrap();
    /// lock.acquire().unwrap();
    /// let p = Process::spawn(|l: Lock| l.try_acquire().unwrap(), lock.clone()).unwrap();
    /// assert!(!p.join().unwrap()); // held here
    /// lock.release().unwrap();
    /// assert!(!lock.locked().unwrap());
    /// ```
    Lock, "lock", lock_by_id, "lock()"
}

impl Lock {
    fn acquire_for(&self, timeout: Option<Duration>) -> Result<bool, ManagerError> {
        self.h.call(&LockOp::Acquire(timeout))
    }

    acquire_forms!("the lock", "lock()");

    /// Releases the lock; any proxy may (Python's `release()`). Does not block.
    ///
    /// # Errors
    /// [`is_invalid_state`](ManagerError::is_invalid_state) if the lock is not held;
    /// otherwise as [`acquire`](Self::acquire).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let l = m.lock().unwrap();
    /// l.acquire().unwrap();
    /// l.release().unwrap();
    /// assert!(l.release().unwrap_err().is_invalid_state());
    /// ```
    pub fn release(&self) -> Result<(), ManagerError> {
        self.h.call(&LockOp::Release)
    }

    /// Whether the lock is held by anyone now (Python's `locked()`). Does not block.
    ///
    /// # Errors
    /// As [`acquire`](Self::acquire).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// assert!(!m.lock().unwrap().locked().unwrap());
    /// ```
    pub fn locked(&self) -> Result<bool, ManagerError> {
        self.h.call(&LockOp::Locked)
    }
}

// ----------------------------------------------------------------------- RLock

#[derive(Serialize, Deserialize)]
enum RLockOp {
    Acquire(Option<Duration>),
    Release,
    Locked,
    Owned,
}

/// Who holds an RLock and how many times.
#[derive(Default)]
struct Owner {
    client: Option<u64>,
    count: usize,
}

/// The server side of an [`RLock`].
pub(crate) struct RLockObject {
    tag: String,
    g: Guarded<Owner>,
}

impl RLockObject {
    pub(crate) fn new(tag: String) -> Self {
        RLockObject {
            tag,
            g: Guarded::new(Owner::default()),
        }
    }
}

impl Object for RLockObject {
    fn tag(&self) -> &str {
        &self.tag
    }

    fn call(&self, ctx: &Ctx<'_>, op: &[u8]) -> Result<Vec<u8>, ManagerError> {
        let op = decode_op::<RLockOp>(op)?;
        let g = self.g.lock();
        let me = ctx.client;
        match op {
            RLockOp::Acquire(t) => {
                let (_g, ok) =
                    self.g
                        .wait_until(ctx, g, t.and_then(deadline_after), |o| match o.client {
                            Some(c) if c == me => {
                                o.count += 1;
                                true
                            }
                            Some(_) => false,
                            None => {
                                *o = Owner {
                                    client: Some(me),
                                    count: 1,
                                };
                                true
                            }
                        })?;
                encode(&ok)
            }
            RLockOp::Release => {
                let mut g = g;
                if g.client != Some(me) {
                    return Err(invalid("cannot release un-acquired lock"));
                }
                g.count -= 1;
                if g.count == 0 {
                    g.client = None;
                    self.g.wake();
                }
                encode(&())
            }
            RLockOp::Locked => encode(&g.client.is_some()),
            RLockOp::Owned => encode(&(g.client == Some(me))),
        }
    }

    fn client_gone(&self, client: u64) {
        let mut g = self.g.lock();
        if g.client == Some(client) {
            *g = Owner::default();
            self.g.wake();
        }
    }

    fn stop(&self) {
        self.g.stop();
    }
}

sync_proxy! {
    /// A reentrant lock held by a [`Manager`](crate::Manager)'s server (Python's
    /// `Manager().RLock()`): its owner (this proxy's connection) may acquire it again
    /// and must release it as many times; only the owner may release it.
    ///
    /// Blocking happens on the server. Each proxy is its own owner: a clone (a new
    /// connection) or a proxy in another process waits like any other client.
    ///
    /// **Crash safety**: when the owner's connection ends (its process exited, was
    /// killed, or dropped the proxy), the server releases every level it held and
    /// wakes a waiter.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let r = m.rlock().unwrap();
    /// r.acquire().unwrap();
    /// r.acquire().unwrap();
    /// let other = r.clone();
    /// assert!(!other.try_acquire().unwrap());
    /// assert!(other.release().unwrap_err().is_invalid_state());
    /// r.release().unwrap();
    /// r.release().unwrap();
    /// assert!(other.try_acquire().unwrap());
    /// ```
    RLock, "rlock", rlock_by_id, "rlock()"
}

impl RLock {
    fn acquire_for(&self, timeout: Option<Duration>) -> Result<bool, ManagerError> {
        self.h.call(&RLockOp::Acquire(timeout))
    }

    acquire_forms!("the lock (again, if this proxy holds it)", "rlock()");

    /// Releases one level; the lock is free when every level is released. Does not
    /// block.
    ///
    /// # Errors
    /// [`is_invalid_state`](ManagerError::is_invalid_state) if this proxy does not own
    /// the lock (Python's `RuntimeError`); otherwise as [`acquire`](Self::acquire).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let r = m.rlock().unwrap();
    /// r.acquire().unwrap();
    /// r.release().unwrap();
    /// assert!(r.release().unwrap_err().is_invalid_state());
    /// ```
    pub fn release(&self) -> Result<(), ManagerError> {
        self.h.call(&RLockOp::Release)
    }

    /// Whether anyone holds the lock now. Does not block.
    ///
    /// # Errors
    /// As [`acquire`](Self::acquire).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let r = m.rlock().unwrap();
    /// r.acquire().unwrap();
    /// assert!(r.clone().locked().unwrap());
    /// ```
    pub fn locked(&self) -> Result<bool, ManagerError> {
        self.h.call(&RLockOp::Locked)
    }

    /// Whether this proxy owns the lock. Does not block.
    ///
    /// # Errors
    /// As [`acquire`](Self::acquire).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let r = m.rlock().unwrap();
    /// r.acquire().unwrap();
    /// assert!(r.is_owned().unwrap() && !r.clone().is_owned().unwrap());
    /// ```
    pub fn is_owned(&self) -> Result<bool, ManagerError> {
        self.h.call(&RLockOp::Owned)
    }
}

// ------------------------------------------------------------------ constructors

impl crate::manager::Manager {
    /// A new shared lock (Python's `m.Lock()`). See [`Lock`].
    ///
    /// # Errors
    /// [`is_shutdown`](ManagerError::is_shutdown) if the manager is gone.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// assert!(m.lock().unwrap().try_acquire().unwrap());
    /// ```
    pub fn lock(&self) -> Result<Lock, ManagerError> {
        Ok(Lock::from_handle(self.create(
            ObjKind::Lock,
            Lock::tag(),
            Vec::new(),
        )?))
    }

    /// A proxy to the existing lock `id` of this manager (made by any client).
    ///
    /// # Errors
    /// [`is_missing`](ManagerError::is_missing) if there is no such object;
    /// [`is_wrong_type`](ManagerError::is_wrong_type) if it is not a lock.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let l = m.lock().unwrap();
    /// l.acquire().unwrap();
    /// assert!(m.lock_by_id(l.id()).unwrap().locked().unwrap());
    /// assert!(m.rlock_by_id(l.id()).unwrap_err().is_wrong_type());
    /// ```
    pub fn lock_by_id(&self, id: u64) -> Result<Lock, ManagerError> {
        Ok(Lock::from_handle(self.attach(id, Lock::tag())?))
    }

    /// A new shared reentrant lock (Python's `m.RLock()`). See [`RLock`].
    ///
    /// # Errors
    /// [`is_shutdown`](ManagerError::is_shutdown) if the manager is gone.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// assert!(!m.rlock().unwrap().locked().unwrap());
    /// ```
    pub fn rlock(&self) -> Result<RLock, ManagerError> {
        Ok(RLock::from_handle(self.create(
            ObjKind::RLock,
            RLock::tag(),
            Vec::new(),
        )?))
    }

    /// A proxy to the existing reentrant lock `id` of this manager.
    ///
    /// # Errors
    /// As [`lock_by_id`](Self::lock_by_id).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let r = m.rlock().unwrap();
    /// assert!(m.rlock_by_id(r.id()).is_ok());
    /// ```
    pub fn rlock_by_id(&self, id: u64) -> Result<RLock, ManagerError> {
        Ok(RLock::from_handle(self.attach(id, RLock::tag())?))
    }
}
