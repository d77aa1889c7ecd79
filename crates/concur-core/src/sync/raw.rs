//! `RawLock`: the one-byte, parking, eventually-fair lock under `Lock`, and under every
//! other blocking type in `concur::sync` that needs mutual exclusion.
//!
//! The algorithm is the one `parking_lot::RawMutex` uses (Amanieu d'Antras, after
//! WebKit's `WTF::Lock`); this is our own implementation of it over `shim::park`.
//!
//! # State machine (`state: AtomicU8`)
//!
//! | bits            | meaning                                          |
//! |-----------------|--------------------------------------------------|
//! | `0`             | unlocked, nobody parked                          |
//! | `LOCKED`        | locked, nobody parked                            |
//! | `PARKED`        | unlocked, but threads may be parked on the key   |
//! | `LOCKED|PARKED` | locked, threads parked (unlock takes slow path)  |
//! | `+ CHECKED`     | any of the above, for a lock the deadlock detector watches |
//!
//! `CHECKED` is set at creation and never changes. It makes both fast paths (which
//! compare against exactly `0` and `LOCKED`) fail, so a watched lock always goes
//! through the slow paths, where the owning type calls the detector's hooks; an
//! unwatched lock pays nothing at all for deadlock detection.
//!
//! Transitions:
//! - lock fast path: CAS `0 -> LOCKED` (Acquire).
//! - lock slow path: spin a little while nobody is parked; then CAS `PARKED` in and
//!   park on `&state`, validating (under the queue lock) that the state is still
//!   `LOCKED|PARKED`. Woken with `HANDOFF`, the thread owns the lock already.
//!   A waiter whose deadline passes clears `PARKED` if it was the last one parked.
//! - unlock fast path: CAS `LOCKED -> 0` (Release).
//! - unlock slow path: without `PARKED`, CAS `LOCKED` out (keeping `CHECKED`); with
//!   `PARKED`, `unpark_one`; in its callback (queue locked)
//!   either hand the lock over (fair unlock, about every 0.5 ms: `LOCKED` stays set)
//!   or clear `LOCKED`, and clear `PARKED` when no one else is parked. The callback
//!   uses read-modify-write operations, never a blind store, so that the racy
//!   "release from another thread" Python allows cannot erase a `PARKED` bit set
//!   concurrently.
//!
//! Ordering: Acquire on every transition that takes the lock, Release on every one that
//! gives it up; the hand-off is ordered by the parking queue's own lock.

use crate::shim::atomic::{AtomicU8, Ordering};
use crate::shim::park::{self, ParkResult, SpinWait};
use std::time::Instant;

const LOCKED: u8 = 1;
const PARKED: u8 = 2;
const CHECKED: u8 = 4;

const TOKEN_NORMAL: usize = 0;
const TOKEN_HANDOFF: usize = 1;

/// A one-byte lock with no owner and no data.
pub(crate) struct RawLock {
    state: AtomicU8,
}

impl RawLock {
    #[cfg(not(concur_loom))]
    pub(crate) const fn new() -> Self {
        RawLock {
            state: AtomicU8::new(0),
        }
    }

    #[cfg(concur_loom)]
    pub(crate) fn new() -> Self {
        RawLock {
            state: AtomicU8::new(0),
        }
    }

    /// A lock whose fast paths always fail when `checked` (see the module docs), so
    /// that its owner can route every operation through the deadlock detector.
    pub(crate) fn with_checked(checked: bool) -> Self {
        RawLock {
            state: AtomicU8::new(if checked { CHECKED } else { 0 }),
        }
    }

    /// Whether this lock was created watched by the deadlock detector.
    #[inline]
    pub(crate) fn is_checked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & CHECKED != 0
    }

    /// The uncontended, unwatched acquire: one CAS. False means "take the slow path".
    #[inline]
    pub(crate) fn lock_fast(&self) -> bool {
        self.state
            .compare_exchange_weak(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// The uncontended, unwatched release: one CAS. False means "take the slow path".
    #[inline]
    pub(crate) fn unlock_fast(&self) -> bool {
        self.state
            .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
            .is_ok()
    }

    /// Takes the lock if it is free, without blocking.
    #[inline]
    pub(crate) fn try_lock(&self) -> bool {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & LOCKED != 0 {
                return false;
            }
            match self.state.compare_exchange_weak(
                state,
                state | LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(s) => state = s,
            }
        }
    }

    /// Blocks until the lock is taken.
    #[inline]
    pub(crate) fn lock(&self) {
        if !self.lock_fast() {
            self.lock_slow(None);
        }
    }

    /// Whether the lock is held by someone at this instant.
    #[inline]
    pub(crate) fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & LOCKED != 0
    }

    /// Releases a lock the caller knows to be held (by it or on its behalf).
    #[inline]
    pub(crate) fn unlock(&self) {
        if !self.unlock_fast() {
            self.unlock_slow();
        }
    }

    /// Releases the lock if it is held; false if it was not locked.
    pub(crate) fn try_unlock(&self) -> bool {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & LOCKED == 0 {
                return false;
            }
            if state & PARKED != 0 {
                self.unlock_slow();
                return true;
            }
            match self
                .state
                .compare_exchange_weak(state, 0, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(s) => state = s,
            }
        }
    }

    fn key(&self) -> usize {
        &self.state as *const AtomicU8 as usize
    }

    /// The contended (or watched) acquire.
    #[cold]
    pub(crate) fn lock_slow(&self, deadline: Option<Instant>) -> bool {
        let mut spin = SpinWait::new();
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & LOCKED == 0 {
                match self.state.compare_exchange_weak(
                    state,
                    state | LOCKED,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return true,
                    Err(s) => {
                        state = s;
                        continue;
                    }
                }
            }
            if state & PARKED == 0 && spin.spin() {
                state = self.state.load(Ordering::Relaxed);
                continue;
            }
            if state & PARKED == 0
                && let Err(s) = self.state.compare_exchange_weak(
                    state,
                    state | PARKED,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
            {
                state = s;
                continue;
            }
            let validate = || self.state.load(Ordering::Relaxed) & !CHECKED == LOCKED | PARKED;
            let timed_out = |_key: usize, was_last: bool| {
                if was_last {
                    self.state.fetch_and(!PARKED, Ordering::Relaxed);
                }
            };
            // SAFETY: the callbacks only touch `self.state` with atomics: they neither
            // panic nor call back into the parking module.
            match unsafe { park::park(self.key(), validate, || {}, timed_out, deadline) } {
                ParkResult::Unparked(TOKEN_HANDOFF) => return true,
                ParkResult::Unparked(_) | ParkResult::Invalid => {}
                ParkResult::TimedOut => return false,
            }
            spin = SpinWait::new();
            state = self.state.load(Ordering::Relaxed);
        }
    }

    /// The contended (or watched) release of a held lock.
    #[cold]
    pub(crate) fn unlock_slow(&self) {
        let mut state = self.state.load(Ordering::Relaxed);
        while state & PARKED == 0 {
            match self.state.compare_exchange_weak(
                state,
                state & !LOCKED,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(s) => state = s,
            }
        }
        let callback = |r: park::UnparkResult| {
            if r.unparked_threads != 0 && r.be_fair {
                if !r.have_more_threads {
                    self.state.fetch_and(!PARKED, Ordering::Relaxed);
                }
                return TOKEN_HANDOFF;
            }
            if r.have_more_threads {
                self.state.fetch_and(!LOCKED, Ordering::Release);
            } else {
                self.state.fetch_and(!(LOCKED | PARKED), Ordering::Release);
            }
            TOKEN_NORMAL
        };
        // SAFETY: the callback only performs atomic operations on `self.state`.
        unsafe {
            park::unpark_one(self.key(), callback);
        }
    }
}

impl std::fmt::Debug for RawLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawLock")
            .field("locked", &self.is_locked())
            .finish()
    }
}
