//! [`Event`], [`Condition`] and [`Barrier`] held by a manager (Python's
//! `Manager().Event()`, `Manager().Condition()`, `Manager().Barrier(n)`).
//!
//! The barrier follows the state machine of CPython's `threading.Barrier`
//! (`Lib/threading.py`): filling, draining (the parties of a completed round are
//! leaving), resetting, broken.

use concur_core::time::deadline_after;
use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::sync_lock::{Guarded, acquire_forms, invalid, sync_proxy, timeout_until};
use crate::manager::error::{Kind, ManagerError};
use crate::manager::object::{Ctx, Object};
use crate::manager::protocol::{ObjKind, decode_op, encode};

// ----------------------------------------------------------------------- Event

#[derive(Serialize, Deserialize)]
enum EventOp {
    Set,
    Clear,
    IsSet,
    Wait(Option<Duration>),
}

struct EventState {
    flag: bool,
    /// Counts `set` calls, so a waiter sees a set even if a clear followed at once.
    sets: u64,
}

/// The server side of an [`Event`].
pub(crate) struct EventObject {
    tag: String,
    g: Guarded<EventState>,
}

impl EventObject {
    pub(crate) fn new(tag: String) -> Self {
        EventObject {
            tag,
            g: Guarded::new(EventState {
                flag: false,
                sets: 0,
            }),
        }
    }
}

impl Object for EventObject {
    fn tag(&self) -> &str {
        &self.tag
    }

    fn call(&self, ctx: &Ctx<'_>, op: &[u8]) -> Result<Vec<u8>, ManagerError> {
        let op = decode_op::<EventOp>(op)?;
        let mut g = self.g.lock();
        match op {
            EventOp::Set => {
                g.flag = true;
                g.sets = g.sets.wrapping_add(1);
                self.g.wake();
                encode(&())
            }
            EventOp::Clear => {
                g.flag = false;
                encode(&())
            }
            EventOp::IsSet => encode(&g.flag),
            EventOp::Wait(t) => {
                let seen = g.sets;
                let (_g, ok) = self.g.wait_until(ctx, g, t.and_then(deadline_after), |s| {
                    s.flag || s.sets != seen
                })?;
                encode(&ok)
            }
        }
    }

    fn stop(&self) {
        self.g.stop();
    }
}

sync_proxy! {
    /// A flag held by a [`Manager`](crate::Manager)'s server that processes wait on
    /// (Python's `Manager().Event()`): `set` wakes every waiter, `clear` resets it.
    ///
    /// Waiting blocks on the server, in this proxy's connection thread there. A waiter
    /// that was waiting when the event was set returns `true` even if it was cleared
    /// again at once (as `threading.Event`). An event holds nothing, so a client that
    /// ends leaves nothing to release.
    ///
    /// ```
    /// use concur::process::{Manager, Process};
    /// use concur::process::manager::Event;
    ///
    /// let m = Manager::start().unwrap();
    /// let e = m.event().unwrap();
    /// let p = Process::spawn(|e: Event| e.set().unwrap(), e.clone()).unwrap();
    /// e.wait().unwrap();
    /// p.join().unwrap();
    /// assert!(e.is_set().unwrap());
    /// ```
    Event, "event", event_by_id, "event()"
}

impl Event {
    fn wait_op(&self, timeout: Option<Duration>) -> Result<bool, ManagerError> {
        self.h.call(&EventOp::Wait(timeout))
    }

    /// Sets the flag and wakes every waiter. Does not block.
    ///
    /// # Errors
    /// [`is_shutdown`](ManagerError::is_shutdown) if the manager stops or is gone;
    /// an I/O error.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let e = m.event().unwrap();
    /// e.set().unwrap();
    /// assert!(e.is_set().unwrap());
    /// ```
    pub fn set(&self) -> Result<(), ManagerError> {
        self.h.call(&EventOp::Set)
    }

    /// Clears the flag. Does not block.
    ///
    /// # Errors
    /// As [`set`](Self::set).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let e = m.event().unwrap();
    /// e.set().unwrap();
    /// e.clear().unwrap();
    /// assert!(!e.is_set().unwrap());
    /// ```
    pub fn clear(&self) -> Result<(), ManagerError> {
        self.h.call(&EventOp::Clear)
    }

    /// Whether the flag is set. Does not block.
    ///
    /// # Errors
    /// As [`set`](Self::set).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// assert!(!m.event().unwrap().is_set().unwrap());
    /// ```
    pub fn is_set(&self) -> Result<bool, ManagerError> {
        self.h.call(&EventOp::IsSet)
    }

    /// Blocks until the flag is set (Python's `wait()`).
    ///
    /// # Errors
    /// As [`set`](Self::set) (a shut-down error also ends the wait).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let e = m.event().unwrap();
    /// e.set().unwrap();
    /// e.wait().unwrap();
    /// ```
    pub fn wait(&self) -> Result<(), ManagerError> {
        self.wait_op(None).map(drop)
    }

    /// Whether the flag is set, without waiting (the non-blocking form of `wait`).
    ///
    /// # Errors
    /// As [`set`](Self::set).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// assert!(!m.event().unwrap().try_wait().unwrap());
    /// ```
    pub fn try_wait(&self) -> Result<bool, ManagerError> {
        self.wait_op(Some(Duration::ZERO))
    }

    /// Waits at most `timeout` for the flag (Python's `wait(timeout)`); `Ok(false)` if
    /// it was not set in time. A timeout too large to represent waits forever.
    ///
    /// # Errors
    /// As [`set`](Self::set).
    ///
    /// ```
    /// use std::time::Duration;
    /// let m = concur::process::Manager::start().unwrap();
    /// let e = m.event().unwrap();
    /// assert!(!e.wait_timeout(Duration::from_millis(10)).unwrap());
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
        match deadline_after(timeout) {
            Some(d) => self.wait_deadline(d),
            None => self.wait().map(|()| true),
        }
    }

    /// Waits until `deadline` at most for the flag; `Ok(false)` if it was not set.
    ///
    /// # Errors
    /// As [`set`](Self::set).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let m = concur::process::Manager::start().unwrap();
    /// let e = m.event().unwrap();
    /// e.set().unwrap();
    /// assert!(e.wait_deadline(Instant::now() + Duration::from_millis(10)).unwrap());
    /// ```
    pub fn wait_deadline(&self, deadline: Instant) -> Result<bool, ManagerError> {
        self.wait_op(timeout_until(deadline))
    }
}

// ------------------------------------------------------------------- Condition

#[derive(Serialize, Deserialize)]
enum CondOp {
    Acquire(Option<Duration>),
    Release,
    Wait(Option<Duration>),
    Notify(u64),
    NotifyAll,
}

#[derive(Default)]
struct CondState {
    /// The connection holding the condition's (reentrant) lock, and its depth.
    owner: Option<u64>,
    count: usize,
    next_ticket: u64,
    /// Tickets of waiters not yet notified, oldest first.
    waiting: VecDeque<u64>,
    /// Tickets notified, not yet picked up by their waiter.
    notified: HashSet<u64>,
}

impl CondState {
    /// Takes the lock for `me` (again, if it owns it) if it can; `depth` levels when
    /// it was free.
    fn take(&mut self, me: u64, depth: usize) -> bool {
        match self.owner {
            Some(c) if c == me => {
                self.count += 1;
                true
            }
            Some(_) => false,
            None => {
                self.owner = Some(me);
                self.count = depth;
                true
            }
        }
    }
}

/// The server side of a [`Condition`].
pub(crate) struct ConditionObject {
    tag: String,
    g: Guarded<CondState>,
}

impl ConditionObject {
    pub(crate) fn new(tag: String) -> Self {
        ConditionObject {
            tag,
            g: Guarded::new(CondState::default()),
        }
    }
}

impl Object for ConditionObject {
    fn tag(&self) -> &str {
        &self.tag
    }

    fn call(&self, ctx: &Ctx<'_>, op: &[u8]) -> Result<Vec<u8>, ManagerError> {
        let op = decode_op::<CondOp>(op)?;
        let mut g = self.g.lock();
        let me = ctx.client;
        match op {
            CondOp::Acquire(t) => {
                let (_g, ok) = self
                    .g
                    .wait_until(ctx, g, t.and_then(deadline_after), |s| s.take(me, 1))?;
                encode(&ok)
            }
            CondOp::Release => {
                if g.owner != Some(me) {
                    return Err(invalid("cannot release un-acquired lock"));
                }
                g.count -= 1;
                if g.count == 0 {
                    g.owner = None;
                    self.g.wake();
                }
                encode(&())
            }
            CondOp::Wait(t) => {
                if g.owner != Some(me) {
                    return Err(invalid("cannot wait on un-acquired lock"));
                }
                // Release every level, wait for a notification, take them back.
                let depth = std::mem::take(&mut g.count);
                g.owner = None;
                let ticket = g.next_ticket;
                g.next_ticket += 1;
                g.waiting.push_back(ticket);
                self.g.wake();
                let (mut g, notified) =
                    self.g.wait_until(ctx, g, t.and_then(deadline_after), |s| {
                        s.notified.remove(&ticket)
                    })?;
                if !notified {
                    g.waiting.retain(|&w| w != ticket);
                }
                let _g = self.g.wait_until(ctx, g, None, |s| s.take(me, depth))?;
                encode(&notified)
            }
            CondOp::Notify(n) => {
                if g.owner != Some(me) {
                    return Err(invalid("cannot notify on un-acquired lock"));
                }
                let n = usize::try_from(n)
                    .unwrap_or(usize::MAX)
                    .min(g.waiting.len());
                for _ in 0..n {
                    if let Some(w) = g.waiting.pop_front() {
                        g.notified.insert(w);
                    }
                }
                if n > 0 {
                    self.g.wake();
                }
                encode(&(n as u64))
            }
            CondOp::NotifyAll => {
                if g.owner != Some(me) {
                    return Err(invalid("cannot notify on un-acquired lock"));
                }
                let woken: Vec<u64> = g.waiting.drain(..).collect();
                let n = woken.len();
                g.notified.extend(woken);
                self.g.wake();
                encode(&(n as u64))
            }
        }
    }

    fn client_gone(&self, client: u64) {
        let mut g = self.g.lock();
        if g.owner == Some(client) {
            g.owner = None;
            g.count = 0;
            self.g.wake();
        }
    }

    fn stop(&self) {
        self.g.stop();
    }
}

sync_proxy! {
    /// A condition variable held by a [`Manager`](crate::Manager)'s server, with its
    /// own reentrant lock (Python's `Manager().Condition()`): acquire it, check your
    /// state, `wait` (which releases the lock until notified, then takes it back),
    /// and `notify` from another holder.
    ///
    /// Every call blocks on the server, in this proxy's connection thread there. The
    /// owner of the lock is this proxy (its connection); a clone or a proxy in another
    /// process is another owner.
    ///
    /// **Crash safety**: when the owner's connection ends (its process exited, was
    /// killed, or dropped the proxy) while it holds the lock, the server releases it
    /// and wakes the waiters.
    ///
    /// ```
    /// use concur::process::{Manager, Process};
    /// use concur::process::manager::{Condition, Dict};
    ///
    /// fn producer((c, d): (Condition, Dict<u8, u8>)) {
    ///     c.acquire().unwrap();
    ///     d.insert(0, 42).unwrap();
    ///     c.notify_all().unwrap();
    ///     c.release().unwrap();
    /// }
    ///
    /// let m = Manager::start().unwrap();
    /// let (c, d) = (m.condition().unwrap(), m.dict::<u8, u8>().unwrap());
    /// c.acquire().unwrap();
    /// let p = Process::spawn(producer, (c.clone(), d.clone())).unwrap();
    /// c.wait_for(|| d.contains_key(&0).unwrap()).unwrap();
    /// c.release().unwrap();
    /// p.join().unwrap();
    /// assert_eq!(d.get(&0).unwrap(), Some(42));
    /// ```
    Condition, "condition", condition_by_id, "condition()"
}

impl Condition {
    fn acquire_for(&self, timeout: Option<Duration>) -> Result<bool, ManagerError> {
        self.h.call(&CondOp::Acquire(timeout))
    }

    fn wait_op(&self, timeout: Option<Duration>) -> Result<bool, ManagerError> {
        self.h.call(&CondOp::Wait(timeout))
    }

    acquire_forms!(
        "the condition's lock (again, if this proxy holds it)",
        "condition()"
    );

    /// Releases one level of the lock. Does not block.
    ///
    /// # Errors
    /// [`is_invalid_state`](ManagerError::is_invalid_state) if this proxy does not own
    /// the lock; otherwise as [`acquire`](Self::acquire).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let c = m.condition().unwrap();
    /// assert!(c.release().unwrap_err().is_invalid_state());
    /// ```
    pub fn release(&self) -> Result<(), ManagerError> {
        self.h.call(&CondOp::Release)
    }

    /// Releases the lock (every level), blocks until notified, and takes the lock
    /// back (Python's `wait()`). As with any condition, check your state in a loop (or
    /// use [`wait_for`](Self::wait_for)).
    ///
    /// # Errors
    /// [`is_invalid_state`](ManagerError::is_invalid_state) if this proxy does not own
    /// the lock; otherwise as [`acquire`](Self::acquire).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let c = m.condition().unwrap();
    /// assert!(c.wait().unwrap_err().is_invalid_state());
    /// ```
    pub fn wait(&self) -> Result<(), ManagerError> {
        self.wait_op(None).map(drop)
    }

    /// As [`wait`](Self::wait), for at most `timeout`; `Ok(false)` if no notification
    /// came (the lock is taken back either way). A timeout too large to represent
    /// waits forever.
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    ///
    /// ```
    /// use std::time::Duration;
    /// let m = concur::process::Manager::start().unwrap();
    /// let c = m.condition().unwrap();
    /// c.acquire().unwrap();
    /// assert!(!c.wait_timeout(Duration::from_millis(10)).unwrap());
    /// c.release().unwrap();
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
        match deadline_after(timeout) {
            Some(d) => self.wait_deadline(d),
            None => self.wait().map(|()| true),
        }
    }

    /// As [`wait`](Self::wait), until `deadline` at most; `Ok(false)` if no
    /// notification came.
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let m = concur::process::Manager::start().unwrap();
    /// let c = m.condition().unwrap();
    /// c.acquire().unwrap();
    /// assert!(!c.wait_deadline(Instant::now() + Duration::from_millis(5)).unwrap());
    /// ```
    pub fn wait_deadline(&self, deadline: Instant) -> Result<bool, ManagerError> {
        self.wait_op(timeout_until(deadline))
    }

    /// Waits until `pred()` holds (Python's `wait_for`): checks it, and waits for a
    /// notification each time it does not. `pred` runs here, with the lock held.
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let c = m.condition().unwrap();
    /// c.acquire().unwrap();
    /// c.wait_for(|| true).unwrap();
    /// ```
    pub fn wait_for(&self, mut pred: impl FnMut() -> bool) -> Result<(), ManagerError> {
        while !pred() {
            self.wait()?;
        }
        Ok(())
    }

    /// As [`wait_for`](Self::wait_for), for at most `timeout`; returns the last value
    /// of `pred()`.
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    ///
    /// ```
    /// use std::time::Duration;
    /// let m = concur::process::Manager::start().unwrap();
    /// let c = m.condition().unwrap();
    /// c.acquire().unwrap();
    /// assert!(!c.wait_for_timeout(Duration::from_millis(10), || false).unwrap());
    /// ```
    pub fn wait_for_timeout(
        &self,
        timeout: Duration,
        pred: impl FnMut() -> bool,
    ) -> Result<bool, ManagerError> {
        match deadline_after(timeout) {
            Some(d) => self.wait_for_deadline(d, pred),
            None => self.wait_for(pred).map(|()| true),
        }
    }

    /// As [`wait_for`](Self::wait_for), until `deadline` at most; returns the last
    /// value of `pred()`.
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    ///
    /// ```
    /// use std::time::Instant;
    /// let m = concur::process::Manager::start().unwrap();
    /// let c = m.condition().unwrap();
    /// c.acquire().unwrap();
    /// assert!(!c.wait_for_deadline(Instant::now(), || false).unwrap());
    /// ```
    pub fn wait_for_deadline(
        &self,
        deadline: Instant,
        mut pred: impl FnMut() -> bool,
    ) -> Result<bool, ManagerError> {
        loop {
            if pred() {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            self.wait_deadline(deadline)?;
        }
    }

    /// Wakes up to `n` waiters (the longest waiting first); returns how many. Does
    /// not block.
    ///
    /// # Errors
    /// [`is_invalid_state`](ManagerError::is_invalid_state) if this proxy does not own
    /// the lock; otherwise as [`acquire`](Self::acquire).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let c = m.condition().unwrap();
    /// c.acquire().unwrap();
    /// assert_eq!(c.notify(1).unwrap(), 0); // nobody waits
    /// ```
    pub fn notify(&self, n: usize) -> Result<usize, ManagerError> {
        let k: u64 = self.h.call(&CondOp::Notify(n as u64))?;
        Ok(k as usize)
    }

    /// Wakes every waiter; returns how many. Does not block.
    ///
    /// # Errors
    /// As [`notify`](Self::notify).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let c = m.condition().unwrap();
    /// assert!(c.notify_all().unwrap_err().is_invalid_state());
    /// ```
    pub fn notify_all(&self) -> Result<usize, ManagerError> {
        let k: u64 = self.h.call(&CondOp::NotifyAll)?;
        Ok(k as usize)
    }
}

// --------------------------------------------------------------------- Barrier

#[derive(Serialize, Deserialize)]
enum BarrierOp {
    Wait(Option<Duration>),
    Abort,
    Reset,
    Parties,
    NWaiting,
    Broken,
}

/// CPython's barrier states: 0, 1, -1, -2.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Filling,
    Draining,
    Resetting,
    Broken,
}

struct BarrierState {
    phase: Phase,
    /// Parties inside `wait` (arrived, or leaving a round).
    count: usize,
}

/// The server side of a [`Barrier`].
pub(crate) struct BarrierObject {
    tag: String,
    parties: usize,
    g: Guarded<BarrierState>,
}

impl BarrierObject {
    pub(crate) fn new(tag: String, parties: usize) -> Result<Self, ManagerError> {
        if parties == 0 {
            return Err(invalid("a barrier needs at least one party"));
        }
        Ok(BarrierObject {
            tag,
            parties,
            g: Guarded::new(BarrierState {
                phase: Phase::Filling,
                count: 0,
            }),
        })
    }

    fn wait(&self, ctx: &Ctx<'_>, timeout: Option<Duration>) -> Result<usize, ManagerError> {
        let deadline = timeout.and_then(deadline_after);
        let g = self.g.lock();
        // Wait for the previous round to drain or a reset to finish.
        let (mut g, _) = self.g.wait_until(ctx, g, None, |s| {
            !matches!(s.phase, Phase::Draining | Phase::Resetting)
        })?;
        if g.phase == Phase::Broken {
            return Err(broken());
        }
        let index = g.count;
        g.count += 1;
        let outcome = if g.count == self.parties {
            g.phase = Phase::Draining;
            self.g.wake();
            Ok(index)
        } else {
            let (g2, done) = self
                .g
                .wait_until(ctx, g, deadline, |s| s.phase != Phase::Filling)?;
            g = g2;
            if !done {
                g.phase = Phase::Broken;
                self.g.wake();
                Err(ManagerError::new(
                    Kind::Timeout,
                    "the barrier wait timed out; the barrier is now broken",
                ))
            } else if matches!(g.phase, Phase::Broken | Phase::Resetting) {
                Err(broken())
            } else {
                Ok(index)
            }
        };
        // Leave; the last one out of a drained or reset round reopens the barrier.
        g.count -= 1;
        if g.count == 0 && matches!(g.phase, Phase::Draining | Phase::Resetting) {
            g.phase = Phase::Filling;
            self.g.wake();
        }
        outcome
    }
}

fn broken() -> ManagerError {
    invalid("the barrier is broken")
}

impl Object for BarrierObject {
    fn tag(&self) -> &str {
        &self.tag
    }

    fn call(&self, ctx: &Ctx<'_>, op: &[u8]) -> Result<Vec<u8>, ManagerError> {
        match decode_op::<BarrierOp>(op)? {
            BarrierOp::Wait(t) => encode(&(self.wait(ctx, t)? as u64)),
            BarrierOp::Abort => {
                self.g.lock().phase = Phase::Broken;
                self.g.wake();
                encode(&())
            }
            BarrierOp::Reset => {
                let mut g = self.g.lock();
                if g.count > 0 {
                    if matches!(g.phase, Phase::Filling | Phase::Broken) {
                        g.phase = Phase::Resetting;
                    }
                } else {
                    g.phase = Phase::Filling;
                }
                self.g.wake();
                encode(&())
            }
            BarrierOp::Parties => encode(&(self.parties as u64)),
            BarrierOp::NWaiting => {
                let g = self.g.lock();
                let n = if g.phase == Phase::Filling {
                    g.count
                } else {
                    0
                };
                encode(&(n as u64))
            }
            BarrierOp::Broken => encode(&(self.g.lock().phase == Phase::Broken)),
        }
    }

    fn stop(&self) {
        self.g.stop();
    }
}

sync_proxy! {
    /// A barrier held by a [`Manager`](crate::Manager)'s server (Python's
    /// `Manager().Barrier(parties)`): `wait` blocks until `parties` callers wait, then
    /// releases them all, each with its arrival index, and the barrier is ready for
    /// the next round.
    ///
    /// Waiting blocks on the server, in this proxy's connection thread there. `abort`,
    /// or a wait that times out, breaks the barrier: every waiter, and every later
    /// `wait`, fails until [`reset`](Self::reset). A barrier holds nothing, so a client
    /// that ends releases nothing (a party that dies before arriving leaves the others
    /// waiting, as in Python: give their waits a timeout).
    ///
    /// ```
    /// use concur::process::{Manager, Process};
    /// use concur::process::manager::Barrier;
    ///
    /// let m = Manager::start().unwrap();
    /// let b = m.barrier(2).unwrap();
    /// let p = Process::spawn(|b: Barrier| b.wait().unwrap(), b.clone()).unwrap();
    /// let mine = b.wait().unwrap();
    /// let theirs = p.join().unwrap();
    /// assert_eq!(mine + theirs, 1); // indexes 0 and 1
    /// ```
    Barrier, "barrier", barrier_by_id, "barrier(1)"
}

impl Barrier {
    fn wait_op(&self, timeout: Option<Duration>) -> Result<usize, ManagerError> {
        let i: u64 = self.h.call(&BarrierOp::Wait(timeout))?;
        Ok(i as usize)
    }

    /// Waits until all parties wait; returns this caller's arrival index, `0` to
    /// `parties - 1`.
    ///
    /// # Errors
    /// [`is_invalid_state`](ManagerError::is_invalid_state) if the barrier is or
    /// becomes broken (aborted, reset while waiting, another party timed out:
    /// Python's `BrokenBarrierError`); [`is_shutdown`](ManagerError::is_shutdown)
    /// if the manager stops or is gone.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let b = m.barrier(1).unwrap();
    /// assert_eq!(b.wait().unwrap(), 0);
    /// ```
    pub fn wait(&self) -> Result<usize, ManagerError> {
        self.wait_op(None)
    }

    /// As [`wait`](Self::wait), for at most `timeout`. A timeout too large to
    /// represent waits forever.
    ///
    /// # Errors
    /// [`is_timeout`](ManagerError::is_timeout) if the timeout passed, which also
    /// breaks the barrier for the other parties; otherwise as [`wait`](Self::wait).
    ///
    /// ```
    /// use std::time::Duration;
    /// let m = concur::process::Manager::start().unwrap();
    /// let b = m.barrier(2).unwrap();
    /// assert!(b.wait_timeout(Duration::from_millis(10)).unwrap_err().is_timeout());
    /// assert!(b.broken().unwrap());
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, ManagerError> {
        match deadline_after(timeout) {
            Some(d) => self.wait_deadline(d),
            None => self.wait(),
        }
    }

    /// As [`wait`](Self::wait), until `deadline` at most.
    ///
    /// # Errors
    /// As [`wait_timeout`](Self::wait_timeout).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let m = concur::process::Manager::start().unwrap();
    /// let b = m.barrier(1).unwrap();
    /// assert_eq!(b.wait_deadline(Instant::now() + Duration::from_millis(10)).unwrap(), 0);
    /// ```
    pub fn wait_deadline(&self, deadline: Instant) -> Result<usize, ManagerError> {
        self.wait_op(timeout_until(deadline))
    }

    /// Breaks the barrier: current and later waits fail until
    /// [`reset`](Self::reset). Does not block.
    ///
    /// # Errors
    /// [`is_shutdown`](ManagerError::is_shutdown) if the manager is gone.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let b = m.barrier(1).unwrap();
    /// b.abort().unwrap();
    /// assert!(b.wait().unwrap_err().is_invalid_state());
    /// ```
    pub fn abort(&self) -> Result<(), ManagerError> {
        self.h.call(&BarrierOp::Abort)
    }

    /// Returns the barrier to its initial state; parties waiting now fail as broken.
    /// Does not block.
    ///
    /// # Errors
    /// As [`abort`](Self::abort).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let b = m.barrier(1).unwrap();
    /// b.abort().unwrap();
    /// b.reset().unwrap();
    /// assert_eq!(b.wait().unwrap(), 0);
    /// ```
    pub fn reset(&self) -> Result<(), ManagerError> {
        self.h.call(&BarrierOp::Reset)
    }

    /// The number of parties the barrier waits for.
    ///
    /// # Errors
    /// As [`abort`](Self::abort).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// assert_eq!(m.barrier(3).unwrap().parties().unwrap(), 3);
    /// ```
    pub fn parties(&self) -> Result<usize, ManagerError> {
        let n: u64 = self.h.call(&BarrierOp::Parties)?;
        Ok(n as usize)
    }

    /// The number of parties waiting now.
    ///
    /// # Errors
    /// As [`abort`](Self::abort).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// assert_eq!(m.barrier(3).unwrap().n_waiting().unwrap(), 0);
    /// ```
    pub fn n_waiting(&self) -> Result<usize, ManagerError> {
        let n: u64 = self.h.call(&BarrierOp::NWaiting)?;
        Ok(n as usize)
    }

    /// Whether the barrier is broken.
    ///
    /// # Errors
    /// As [`abort`](Self::abort).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// assert!(!m.barrier(3).unwrap().broken().unwrap());
    /// ```
    pub fn broken(&self) -> Result<bool, ManagerError> {
        self.h.call(&BarrierOp::Broken)
    }
}

// ------------------------------------------------------------------ constructors

impl crate::manager::Manager {
    /// A new shared event, not set (Python's `m.Event()`). See [`Event`].
    ///
    /// # Errors
    /// [`is_shutdown`](ManagerError::is_shutdown) if the manager is gone.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// assert!(!m.event().unwrap().is_set().unwrap());
    /// ```
    pub fn event(&self) -> Result<Event, ManagerError> {
        Ok(Event::from_handle(self.create(
            ObjKind::Event,
            Event::tag(),
            Vec::new(),
        )?))
    }

    /// A proxy to the existing event `id` of this manager.
    ///
    /// # Errors
    /// [`is_missing`](ManagerError::is_missing) if there is no such object;
    /// [`is_wrong_type`](ManagerError::is_wrong_type) if it is not an event.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let e = m.event().unwrap();
    /// e.set().unwrap();
    /// assert!(m.event_by_id(e.id()).unwrap().is_set().unwrap());
    /// ```
    pub fn event_by_id(&self, id: u64) -> Result<Event, ManagerError> {
        Ok(Event::from_handle(self.attach(id, Event::tag())?))
    }

    /// A new shared condition with its own reentrant lock (Python's
    /// `m.Condition()`). See [`Condition`].
    ///
    /// # Errors
    /// [`is_shutdown`](ManagerError::is_shutdown) if the manager is gone.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// assert!(m.condition().unwrap().try_acquire().unwrap());
    /// ```
    pub fn condition(&self) -> Result<Condition, ManagerError> {
        Ok(Condition::from_handle(self.create(
            ObjKind::Condition,
            Condition::tag(),
            Vec::new(),
        )?))
    }

    /// A proxy to the existing condition `id` of this manager.
    ///
    /// # Errors
    /// As [`event_by_id`](Self::event_by_id).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let c = m.condition().unwrap();
    /// assert!(m.condition_by_id(c.id()).is_ok());
    /// ```
    pub fn condition_by_id(&self, id: u64) -> Result<Condition, ManagerError> {
        Ok(Condition::from_handle(self.attach(id, Condition::tag())?))
    }

    /// A new shared barrier for `parties` callers (Python's `m.Barrier(parties)`).
    /// See [`Barrier`].
    ///
    /// # Errors
    /// [`is_invalid_state`](ManagerError::is_invalid_state) if `parties` is 0;
    /// [`is_shutdown`](ManagerError::is_shutdown) if the manager is gone.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// assert_eq!(m.barrier(2).unwrap().parties().unwrap(), 2);
    /// assert!(m.barrier(0).unwrap_err().is_invalid_state());
    /// ```
    pub fn barrier(&self, parties: usize) -> Result<Barrier, ManagerError> {
        Ok(Barrier::from_handle(self.create(
            ObjKind::Barrier { parties },
            Barrier::tag(),
            Vec::new(),
        )?))
    }

    /// A proxy to the existing barrier `id` of this manager.
    ///
    /// # Errors
    /// As [`event_by_id`](Self::event_by_id).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let b = m.barrier(2).unwrap();
    /// assert_eq!(m.barrier_by_id(b.id()).unwrap().parties().unwrap(), 2);
    /// ```
    pub fn barrier_by_id(&self, id: u64) -> Result<Barrier, ManagerError> {
        Ok(Barrier::from_handle(self.attach(id, Barrier::tag())?))
    }
}
