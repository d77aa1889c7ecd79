//! Thread parking keyed by address, the primitive every blocking type in concur-core
//! is built on.
//!
//! Normally this is a thin layer over [`parking_lot_core`] (the global hash table of
//! parked threads from WebKit's `WTF::ParkingLot`, as ported by Amanieu d'Antras);
//! under `--cfg concur_loom` it is a small model of the same contract built from loom's
//! `Mutex` and `Condvar`, in which a timed park times out at once if nobody unparked it
//! first (loom has no clock, so "the deadline passed" is explored as one more
//! interleaving).
//!
//! Under Miri it is the same model built from `std`'s `Mutex` and `Condvar`, with real
//! deadlines: parking_lot_core 0.9.12 passes `&AtomicI32` to `syscall(SYS_futex, …)`,
//! which Miri (since rust-lang/rust#161734) reports as undefined behaviour in the
//! dependency on every contended park; the model keeps the contract Miri checks our
//! code against. The real build always uses parking_lot_core.
//!
//! The contract, for all three: `validate` and `timed_out` run with the key's queue locked,
//! so a state change checked in `validate` and an unpark that follows it cannot race;
//! callbacks must not panic and must not call into this module.

use std::time::Instant;

/// What `park` returned.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum ParkResult {
    /// Unparked by another thread, which passed this token.
    Unparked(usize),
    /// `validate` returned false; the thread never slept.
    Invalid,
    /// The deadline passed first.
    TimedOut,
}

/// What an unpark saw, passed to its callback while the queue is still locked.
#[derive(Copy, Clone, Debug, Default)]
pub(crate) struct UnparkResult {
    /// How many threads were woken.
    pub(crate) unparked_threads: usize,
    /// Whether threads remain parked on the key (only meaningful if one was woken).
    pub(crate) have_more_threads: bool,
    /// True about once every 0.5 ms per key: hand the resource over fairly.
    pub(crate) be_fair: bool,
}

#[cfg(not(any(concur_loom, miri)))]
mod imp {
    use super::{ParkResult, UnparkResult};
    use parking_lot_core as plc;
    use std::time::Instant;

    /// Parks the current thread on `key`.
    ///
    /// # Safety
    /// The callbacks must not panic or call into this module (they run with a
    /// parking-lot bucket locked).
    #[inline]
    pub(crate) unsafe fn park(
        key: usize,
        validate: impl FnOnce() -> bool,
        before_sleep: impl FnOnce(),
        timed_out: impl FnOnce(usize, bool),
        deadline: Option<Instant>,
    ) -> ParkResult {
        // SAFETY: forwarded from this function's own contract.
        let r = unsafe {
            plc::park(
                key,
                validate,
                before_sleep,
                timed_out,
                plc::DEFAULT_PARK_TOKEN,
                deadline,
            )
        };
        match r {
            plc::ParkResult::Unparked(t) => ParkResult::Unparked(t.0),
            plc::ParkResult::Invalid => ParkResult::Invalid,
            plc::ParkResult::TimedOut => ParkResult::TimedOut,
        }
    }

    /// Wakes one thread parked on `key`; `callback` picks the token it receives.
    ///
    /// # Safety
    /// `callback` must not panic or call into this module.
    #[inline]
    pub(crate) unsafe fn unpark_one(
        key: usize,
        callback: impl FnOnce(UnparkResult) -> usize,
    ) -> UnparkResult {
        let mut seen = UnparkResult::default();
        // SAFETY: forwarded from this function's own contract.
        unsafe {
            plc::unpark_one(key, |r| {
                seen = UnparkResult {
                    unparked_threads: r.unparked_threads,
                    have_more_threads: r.have_more_threads,
                    be_fair: r.be_fair,
                };
                plc::UnparkToken(callback(seen))
            })
        };
        seen
    }

    /// Wakes every thread parked on `key` with `token`; returns how many.
    ///
    /// # Safety
    /// Always safe in practice; `unsafe` mirrors `parking_lot_core`.
    #[inline]
    pub(crate) unsafe fn unpark_all(key: usize, token: usize) -> usize {
        // SAFETY: no callbacks are involved.
        unsafe { plc::unpark_all(key, plc::UnparkToken(token)) }
    }

    /// Bounded exponential spinning before parking.
    pub(crate) struct SpinWait(plc::SpinWait);

    impl SpinWait {
        #[inline]
        pub(crate) fn new() -> Self {
            SpinWait(plc::SpinWait::new())
        }
        /// Spins once; false when spinning is no longer worth it.
        #[inline]
        pub(crate) fn spin(&mut self) -> bool {
            self.0.spin()
        }
    }
}

#[cfg(concur_loom)]
mod imp {
    use super::{ParkResult, UnparkResult};
    use loom::sync::{Arc, Condvar, Mutex};
    use std::time::Instant;

    struct Slot {
        token: Mutex<Option<usize>>,
        cv: Condvar,
    }

    struct Waiter {
        key: usize,
        slot: Arc<Slot>,
    }

    loom::lazy_static! {
        static ref QUEUE: Mutex<Vec<Waiter>> = Mutex::new(Vec::new());
    }

    pub(crate) unsafe fn park(
        key: usize,
        validate: impl FnOnce() -> bool,
        before_sleep: impl FnOnce(),
        timed_out: impl FnOnce(usize, bool),
        deadline: Option<Instant>,
    ) -> ParkResult {
        let slot = Arc::new(Slot {
            token: Mutex::new(None),
            cv: Condvar::new(),
        });
        {
            let mut q = QUEUE.lock().unwrap();
            if !validate() {
                return ParkResult::Invalid;
            }
            q.push(Waiter {
                key,
                slot: slot.clone(),
            });
        }
        before_sleep();
        if deadline.is_some() {
            let mut q = QUEUE.lock().unwrap();
            if let Some(i) = q.iter().position(|w| Arc::ptr_eq(&w.slot, &slot)) {
                q.remove(i);
                let was_last = !q.iter().any(|w| w.key == key);
                timed_out(key, was_last);
                return ParkResult::TimedOut;
            }
        }
        let mut t = slot.token.lock().unwrap();
        loop {
            if let Some(tok) = *t {
                return ParkResult::Unparked(tok);
            }
            t = slot.cv.wait(t).unwrap();
        }
    }

    pub(crate) unsafe fn unpark_one(
        key: usize,
        callback: impl FnOnce(UnparkResult) -> usize,
    ) -> UnparkResult {
        let mut q = QUEUE.lock().unwrap();
        let found = q.iter().position(|w| w.key == key).map(|i| q.remove(i));
        let res = UnparkResult {
            unparked_threads: usize::from(found.is_some()),
            have_more_threads: found.is_some() && q.iter().any(|w| w.key == key),
            be_fair: false,
        };
        let tok = callback(res);
        drop(q);
        if let Some(w) = found {
            *w.slot.token.lock().unwrap() = Some(tok);
            w.slot.cv.notify_one();
        }
        res
    }

    pub(crate) unsafe fn unpark_all(key: usize, token: usize) -> usize {
        let mut q = QUEUE.lock().unwrap();
        let mut woken = Vec::new();
        q.retain(|w| {
            if w.key == key {
                woken.push(w.slot.clone());
                false
            } else {
                true
            }
        });
        drop(q);
        for s in &woken {
            *s.token.lock().unwrap() = Some(token);
            s.cv.notify_one();
        }
        woken.len()
    }

    pub(crate) struct SpinWait;

    impl SpinWait {
        pub(crate) fn new() -> Self {
            SpinWait
        }
        pub(crate) fn spin(&mut self) -> bool {
            false
        }
    }
}

/// The model of the contract on `std` (Miri only; see the module docs).
#[cfg(all(miri, not(concur_loom)))]
mod imp {
    use super::{ParkResult, UnparkResult};
    use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
    use std::time::Instant;

    struct Slot {
        token: Mutex<Option<usize>>,
        cv: Condvar,
    }

    struct Waiter {
        key: usize,
        slot: Arc<Slot>,
    }

    static QUEUE: Mutex<Vec<Waiter>> = Mutex::new(Vec::new());

    fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        m.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) unsafe fn park(
        key: usize,
        validate: impl FnOnce() -> bool,
        before_sleep: impl FnOnce(),
        timed_out: impl FnOnce(usize, bool),
        deadline: Option<Instant>,
    ) -> ParkResult {
        let slot = Arc::new(Slot {
            token: Mutex::new(None),
            cv: Condvar::new(),
        });
        {
            let mut q = lock(&QUEUE);
            if !validate() {
                return ParkResult::Invalid;
            }
            q.push(Waiter {
                key,
                slot: slot.clone(),
            });
        }
        before_sleep();
        let mut t = lock(&slot.token);
        loop {
            if let Some(tok) = *t {
                return ParkResult::Unparked(tok);
            }
            match deadline {
                None => t = slot.cv.wait(t).unwrap_or_else(PoisonError::into_inner),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        drop(t);
                        let mut q = lock(&QUEUE);
                        if let Some(i) = q.iter().position(|w| Arc::ptr_eq(&w.slot, &slot)) {
                            q.remove(i);
                            let was_last = !q.iter().any(|w| w.key == key);
                            timed_out(key, was_last);
                            return ParkResult::TimedOut;
                        }
                        // Unparked between the deadline and the queue lock: the token
                        // is on its way.
                        drop(q);
                        t = lock(&slot.token);
                        continue;
                    }
                    t = slot
                        .cv
                        .wait_timeout(t, d - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
        }
    }

    pub(crate) unsafe fn unpark_one(
        key: usize,
        callback: impl FnOnce(UnparkResult) -> usize,
    ) -> UnparkResult {
        let mut q = lock(&QUEUE);
        let found = q.iter().position(|w| w.key == key).map(|i| q.remove(i));
        let res = UnparkResult {
            unparked_threads: usize::from(found.is_some()),
            have_more_threads: found.is_some() && q.iter().any(|w| w.key == key),
            be_fair: false,
        };
        let tok = callback(res);
        drop(q);
        if let Some(w) = found {
            *lock(&w.slot.token) = Some(tok);
            w.slot.cv.notify_one();
        }
        res
    }

    pub(crate) unsafe fn unpark_all(key: usize, token: usize) -> usize {
        let mut q = lock(&QUEUE);
        let mut woken = Vec::new();
        q.retain(|w| {
            if w.key == key {
                woken.push(w.slot.clone());
                false
            } else {
                true
            }
        });
        drop(q);
        for s in &woken {
            *lock(&s.token) = Some(token);
            s.cv.notify_one();
        }
        woken.len()
    }

    pub(crate) struct SpinWait(u32);

    impl SpinWait {
        pub(crate) fn new() -> Self {
            SpinWait(0)
        }
        pub(crate) fn spin(&mut self) -> bool {
            self.0 += 1;
            std::thread::yield_now();
            self.0 <= 3
        }
    }
}

pub(crate) use imp::{SpinWait, park, unpark_all, unpark_one};

/// Keeps the `Instant` import used in both configurations.
#[allow(dead_code)]
fn _deadline_type(_: Option<Instant>) {}
