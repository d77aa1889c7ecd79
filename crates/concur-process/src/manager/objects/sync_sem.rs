//! [`Semaphore`] and [`BoundedSemaphore`]: a manager's semaphores (Python's
//! `Manager().Semaphore(n)` and `Manager().BoundedSemaphore(n)`), one server object
//! that counts, per connection, the units each acquired and has not given back.

use concur_core::time::deadline_after;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::sync_lock::{Guarded, acquire_forms, invalid, sync_proxy, timeout_until};
use crate::manager::error::ManagerError;
use crate::manager::object::{Ctx, Object};
use crate::manager::protocol::{ObjKind, decode_op, encode};

#[derive(Serialize, Deserialize)]
enum SemOp {
    Acquire(Option<Duration>),
    Release(u64),
    Value,
}

struct SemState {
    value: usize,
    /// Units acquired and not given back, per connection (no zero entries).
    held: BTreeMap<u64, usize>,
}

/// The server side of a [`Semaphore`] or [`BoundedSemaphore`].
pub(crate) struct SemaphoreObject {
    tag: String,
    /// The initial value, the bound of a bounded semaphore.
    initial: usize,
    bounded: bool,
    g: Guarded<SemState>,
}

impl SemaphoreObject {
    pub(crate) fn new(tag: String, value: usize, bounded: bool) -> Self {
        SemaphoreObject {
            tag,
            initial: value,
            bounded,
            g: Guarded::new(SemState {
                value,
                held: BTreeMap::new(),
            }),
        }
    }
}

/// Takes up to `n` units off `client`'s count; returns how many it had.
fn settle(held: &mut BTreeMap<u64, usize>, client: u64, n: usize) -> usize {
    let Some(h) = held.get_mut(&client) else {
        return 0;
    };
    let k = n.min(*h);
    *h -= k;
    if *h == 0 {
        held.remove(&client);
    }
    k
}

impl Object for SemaphoreObject {
    fn tag(&self) -> &str {
        &self.tag
    }

    fn call(&self, ctx: &Ctx<'_>, op: &[u8]) -> Result<Vec<u8>, ManagerError> {
        let op = decode_op::<SemOp>(op)?;
        let g = self.g.lock();
        match op {
            SemOp::Acquire(t) => {
                let (_g, ok) = self.g.wait_until(ctx, g, t.and_then(deadline_after), |s| {
                    s.value > 0 && {
                        s.value -= 1;
                        *s.held.entry(ctx.client).or_insert(0) += 1;
                        true
                    }
                })?;
                encode(&ok)
            }
            SemOp::Release(n) => {
                let mut g = g;
                let n = usize::try_from(n).map_err(|_| invalid("release count too large"))?;
                let value = g
                    .value
                    .checked_add(n)
                    .filter(|v| !self.bounded || *v <= self.initial)
                    .ok_or_else(|| invalid("semaphore released too many times"))?;
                g.value = value;
                // The units released come off this connection's count first, then off
                // the others' (lowest id first): a unit given back by anyone is not
                // given back again when its acquirer's connection ends.
                let mut rest = n - settle(&mut g.held, ctx.client, n);
                while rest > 0 {
                    let Some(&other) = g.held.keys().next() else {
                        break;
                    };
                    rest -= settle(&mut g.held, other, rest);
                }
                self.g.wake();
                encode(&())
            }
            SemOp::Value => encode(&(g.value as u64)),
        }
    }

    fn client_gone(&self, client: u64) {
        let mut g = self.g.lock();
        if let Some(n) = g.held.remove(&client) {
            g.value = g.value.saturating_add(n);
            if self.bounded {
                g.value = g.value.min(self.initial);
            }
            self.g.wake();
        }
    }

    fn stop(&self) {
        self.g.stop();
    }
}

/// The acquire forms and `value`, shared by both proxies.
macro_rules! acquire_methods {
    ($name:ident, $make:literal, $one:literal) => {
        impl $name {
            fn acquire_for(&self, timeout: Option<Duration>) -> Result<bool, ManagerError> {
                self.h.call(&SemOp::Acquire(timeout))
            }

            acquire_forms!("a unit", $one);

            /// The number of free units now. Does not block.
            ///
            /// # Errors
            /// As [`acquire`](Self::acquire).
            ///
            /// ```
            /// let m = concur::process::Manager::start().unwrap();
            #[doc = concat!("let s = m.", $make, ".unwrap();")]
            /// assert_eq!(s.value().unwrap(), 2);
            /// ```
            pub fn value(&self) -> Result<usize, ManagerError> {
                let v: u64 = self.h.call(&SemOp::Value)?;
                Ok(v as usize)
            }
        }
    };
}

sync_proxy! {
    /// A semaphore held by a [`Manager`](crate::Manager)'s server (Python's
    /// `Manager().Semaphore(n)`): a count of free units, taken by `acquire` and given
    /// back by `release` (by any proxy), shared by every process with a proxy.
    ///
    /// Acquiring blocks on the server, in this proxy's connection thread there.
    ///
    /// **Crash safety**: the server counts, per connection, the units it acquired and
    /// has not given back (a release comes off the releaser's own count first, then
    /// off the others'). When a connection ends (its process exited, was killed, or
    /// dropped the proxy), its outstanding units are returned and waiters woken, so a
    /// process that dies holding a unit does not starve the others. The flip side: a
    /// semaphore used to *signal* (one process releases, another acquires a unit for
    /// good) gets the unit back when the acquirer's proxy goes away; signal with an
    /// [`Event`](crate::manager::Event) or a [`Condition`](crate::manager::Condition)
    /// instead.
    ///
    /// ```
    /// use concur::process::{Manager, Process};
    /// use concur::process::manager::Semaphore;
    ///
    /// let m = Manager::start().unwrap();
    /// let s = m.semaphore(1).unwrap();
    /// s.acquire().unwrap();
    /// let p = Process::spawn(|s: Semaphore| s.try_acquire().unwrap(), s.clone()).unwrap();
    /// assert!(!p.join().unwrap());
    /// s.release().unwrap();
    /// assert_eq!(s.value().unwrap(), 1);
    /// ```
    Semaphore, "semaphore", semaphore_by_id, "semaphore(2)"
}

acquire_methods!(Semaphore, "semaphore(2)", "semaphore(1)");

impl Semaphore {
    /// Gives back one unit, waking a waiter (Python's `release()`). Does not block.
    ///
    /// # Errors
    /// [`is_invalid_state`](ManagerError::is_invalid_state) if the count would
    /// overflow; [`is_shutdown`](ManagerError::is_shutdown) if the manager is gone.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let s = m.semaphore(0).unwrap();
    /// s.release().unwrap();
    /// assert_eq!(s.value().unwrap(), 1);
    /// ```
    pub fn release(&self) -> Result<(), ManagerError> {
        self.release_n(1)
    }

    /// Gives back `n` units at once (Python's `release(n)`). Does not block.
    ///
    /// # Errors
    /// As [`release`](Self::release).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let s = m.semaphore(0).unwrap();
    /// s.release_n(3).unwrap();
    /// assert_eq!(s.value().unwrap(), 3);
    /// ```
    pub fn release_n(&self, n: usize) -> Result<(), ManagerError> {
        self.h.call(&SemOp::Release(n as u64))
    }
}

sync_proxy! {
    /// A semaphore that refuses to be released above its initial value, held by a
    /// [`Manager`](crate::Manager)'s server (Python's `Manager().BoundedSemaphore(n)`).
    ///
    /// Acquiring blocks on the server. **Crash safety** as for
    /// [`Semaphore`](crate::manager::Semaphore): the units a connection acquired and
    /// did not give back are returned when it ends (never above the bound).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let s = m.bounded_semaphore(1).unwrap();
    /// s.acquire().unwrap();
    /// s.release().unwrap();
    /// assert!(s.release().unwrap_err().is_invalid_state());
    /// ```
    BoundedSemaphore, "bounded_semaphore", bounded_semaphore_by_id, "bounded_semaphore(2)"
}

acquire_methods!(
    BoundedSemaphore,
    "bounded_semaphore(2)",
    "bounded_semaphore(1)"
);

impl BoundedSemaphore {
    /// Gives back one unit, waking a waiter. Does not block.
    ///
    /// # Errors
    /// [`is_invalid_state`](ManagerError::is_invalid_state) if that would exceed the
    /// initial value (Python's `ValueError`); otherwise as
    /// [`acquire`](Self::acquire).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let s = m.bounded_semaphore(1).unwrap();
    /// assert!(s.release().unwrap_err().is_invalid_state());
    /// ```
    pub fn release(&self) -> Result<(), ManagerError> {
        self.release_n(1)
    }

    /// Gives back `n` units at once; all or none. Does not block.
    ///
    /// # Errors
    /// As [`release`](Self::release).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let s = m.bounded_semaphore(2).unwrap();
    /// s.acquire().unwrap();
    /// assert!(s.release_n(2).unwrap_err().is_invalid_state());
    /// s.release_n(1).unwrap();
    /// assert_eq!(s.value().unwrap(), 2);
    /// ```
    pub fn release_n(&self, n: usize) -> Result<(), ManagerError> {
        self.h.call(&SemOp::Release(n as u64))
    }
}

impl crate::manager::Manager {
    /// A new shared semaphore with `value` free units (Python's `m.Semaphore(value)`).
    /// See [`Semaphore`].
    ///
    /// # Errors
    /// [`is_shutdown`](ManagerError::is_shutdown) if the manager is gone.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// assert_eq!(m.semaphore(3).unwrap().value().unwrap(), 3);
    /// ```
    pub fn semaphore(&self, value: usize) -> Result<Semaphore, ManagerError> {
        let kind = ObjKind::Semaphore {
            value,
            bounded: false,
        };
        Ok(Semaphore::from_handle(self.create(
            kind,
            Semaphore::tag(),
            Vec::new(),
        )?))
    }

    /// A proxy to the existing semaphore `id` of this manager.
    ///
    /// # Errors
    /// [`is_missing`](ManagerError::is_missing) if there is no such object;
    /// [`is_wrong_type`](ManagerError::is_wrong_type) if it is not a (non-bounded)
    /// semaphore.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let s = m.semaphore(1).unwrap();
    /// assert_eq!(m.semaphore_by_id(s.id()).unwrap().value().unwrap(), 1);
    /// assert!(m.bounded_semaphore_by_id(s.id()).unwrap_err().is_wrong_type());
    /// ```
    pub fn semaphore_by_id(&self, id: u64) -> Result<Semaphore, ManagerError> {
        Ok(Semaphore::from_handle(self.attach(id, Semaphore::tag())?))
    }

    /// A new shared bounded semaphore with `value` free units, its bound (Python's
    /// `m.BoundedSemaphore(value)`). See [`BoundedSemaphore`].
    ///
    /// # Errors
    /// [`is_shutdown`](ManagerError::is_shutdown) if the manager is gone.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// assert_eq!(m.bounded_semaphore(1).unwrap().value().unwrap(), 1);
    /// ```
    pub fn bounded_semaphore(&self, value: usize) -> Result<BoundedSemaphore, ManagerError> {
        let kind = ObjKind::Semaphore {
            value,
            bounded: true,
        };
        Ok(BoundedSemaphore::from_handle(self.create(
            kind,
            BoundedSemaphore::tag(),
            Vec::new(),
        )?))
    }

    /// A proxy to the existing bounded semaphore `id` of this manager.
    ///
    /// # Errors
    /// As [`semaphore_by_id`](Self::semaphore_by_id).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let s = m.bounded_semaphore(1).unwrap();
    /// assert!(m.bounded_semaphore_by_id(s.id()).is_ok());
    /// ```
    pub fn bounded_semaphore_by_id(&self, id: u64) -> Result<BoundedSemaphore, ManagerError> {
        Ok(BoundedSemaphore::from_handle(
            self.attach(id, BoundedSemaphore::tag())?,
        ))
    }
}
