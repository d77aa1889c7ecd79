//! `WaitQueue<T>`: a small mutex (a [`RawLock`]) around some state `T` and a FIFO of
//! one-shot waiters, the building block of `Condition`, `Semaphore` and `Barrier`.
//!
//! The design is CPython's `threading.Condition` (each waiter blocks on a lock of its
//! own, `notify` pops waiters off the front of a deque), with one difference: a
//! waiter's fate is decided by a single compare-and-swap on its own state, so a waiter
//! whose timeout races a `notify` either counts as notified (and returns `true`) or
//! counts as timed out (and the notifier passes the notification on to the next
//! waiter). A notification is never swallowed by a waiter that reports a timeout.
//!
//! # Per-waiter state machine (`Waiter::state: AtomicU8`)
//!
//! | value       | meaning                                              |
//! |-------------|------------------------------------------------------|
//! | `WAITING`   | queued, neither notified nor timed out               |
//! | `NOTIFIED`  | a notifier won the CAS; the waiter returns `true`    |
//! | `TIMED_OUT` | the waiter won the CAS; notifiers skip it            |
//!
//! Transitions: `WAITING -> NOTIFIED` (notifier, queue lock held, `AcqRel`), then the
//! notifier unparks the waiter's key (its address) while still holding the `Arc`, so
//! the key cannot be reused meanwhile. `WAITING -> TIMED_OUT` (the waiter, after its
//! park timed out, `AcqRel`); it then removes itself from the queue under the lock.
//! The waiter parks with `validate = (state == WAITING)`, checked under the parking
//! bucket's lock, so a notify that lands between the check and the sleep is not lost.

use super::raw::RawLock;
use crate::shim::Arc;
use crate::shim::atomic::{AtomicU8, Ordering};
use crate::shim::park::{self, ParkResult};
use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::time::Instant;

const WAITING: u8 = 0;
const NOTIFIED: u8 = 1;
const TIMED_OUT: u8 = 2;

/// One blocked thread's one-shot parker.
pub(crate) struct Waiter {
    state: AtomicU8,
}

impl Waiter {
    fn key(&self) -> usize {
        &self.state as *const AtomicU8 as usize
    }

    /// Blocks until notified (true) or `deadline` passes (false). Call without the
    /// queue lock held; after `false`, call [`WaitQueue::forget`] to dequeue.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> bool {
        loop {
            let validate = || self.state.load(Ordering::Acquire) == WAITING;
            // SAFETY: the callbacks only load an atomic: they cannot panic or re-enter
            // the parking module.
            let r = unsafe { park::park(self.key(), validate, || {}, |_, _| {}, deadline) };
            match r {
                ParkResult::Unparked(_) | ParkResult::Invalid => {
                    if self.state.load(Ordering::Acquire) == NOTIFIED {
                        return true;
                    }
                }
                ParkResult::TimedOut => {
                    // Losing the CAS means a notifier got there just before the
                    // deadline: the notification counts.
                    return self
                        .state
                        .compare_exchange(WAITING, TIMED_OUT, Ordering::AcqRel, Ordering::Acquire)
                        .is_err();
                }
            }
        }
    }
}

struct Data<T> {
    waiters: VecDeque<Arc<Waiter>>,
    state: T,
}

/// A lock-protected `T` plus a FIFO of waiters (see the module docs).
pub(crate) struct WaitQueue<T> {
    lock: RawLock,
    data: UnsafeCell<Data<T>>,
}

// SAFETY: `data` is only reached through a `QueueGuard`, which exists only while `lock`
// is held, so at most one thread touches it at a time; `T: Send` suffices (as for a
// mutex).
unsafe impl<T: Send> Send for WaitQueue<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for WaitQueue<T> {}

impl<T> WaitQueue<T> {
    pub(crate) fn new(state: T) -> Self {
        WaitQueue {
            lock: RawLock::new(),
            data: UnsafeCell::new(Data {
                waiters: VecDeque::new(),
                state,
            }),
        }
    }

    /// Locks the queue and its state.
    pub(crate) fn lock(&self) -> QueueGuard<'_, T> {
        self.lock.lock();
        QueueGuard { q: self }
    }

    /// Dequeues a waiter whose `wait` returned false (if a notifier has not already).
    pub(crate) fn forget(&self, w: &Arc<Waiter>) {
        let mut g = self.lock();
        g.forget_locked(w);
    }
}

/// Proof that a [`WaitQueue`]'s lock is held.
pub(crate) struct QueueGuard<'a, T> {
    q: &'a WaitQueue<T>,
}

impl<'a, T> QueueGuard<'a, T> {
    fn data(&self) -> &Data<T> {
        // SAFETY: the guard proves `lock` is held, so no other thread touches `data`;
        // within this thread, borrows of the guard keep shared and unique access apart.
        unsafe { &*self.q.data.get() }
    }

    fn data_mut(&mut self) -> &mut Data<T> {
        // SAFETY: as in `data`, and `&mut self` makes this the only live borrow.
        unsafe { &mut *self.q.data.get() }
    }

    /// Appends a new waiter for the caller; call [`Waiter::wait`] after unlocking.
    pub(crate) fn enqueue(&mut self) -> Arc<Waiter> {
        let w = Arc::new(Waiter {
            state: AtomicU8::new(WAITING),
        });
        self.data_mut().waiters.push_back(w.clone());
        w
    }

    fn forget_locked(&mut self, w: &Arc<Waiter>) {
        let ws = &mut self.data_mut().waiters;
        if let Some(i) = ws.iter().position(|x| Arc::ptr_eq(x, w)) {
            ws.remove(i);
        }
    }

    /// Wakes up to `n` waiters, oldest first; returns how many were woken. Waiters that
    /// timed out meanwhile are dropped and not counted.
    pub(crate) fn notify(&mut self, mut n: usize) -> usize {
        let mut woken = 0;
        while n > 0 {
            let Some(w) = self.data_mut().waiters.pop_front() else {
                break;
            };
            if w.state
                .compare_exchange(WAITING, NOTIFIED, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                // SAFETY: no callback that could panic or re-enter the parking module.
                unsafe {
                    park::unpark_one(w.key(), |_| 0);
                }
                n -= 1;
                woken += 1;
            }
        }
        woken
    }

    /// Unlocks, waits to be notified or for `deadline`, relocks. True if notified.
    pub(crate) fn wait(self, deadline: Option<Instant>) -> (Self, bool) {
        let mut me = self;
        let w = me.enqueue();
        let q = me.q;
        drop(me);
        let notified = w.wait(deadline);
        let mut g = q.lock();
        if !notified {
            g.forget_locked(&w);
        }
        (g, notified)
    }

    /// Waits (re-checking after each wake-up) until `pred(&mut state)` holds; false if
    /// `deadline` passed first.
    pub(crate) fn wait_until(
        self,
        deadline: Option<Instant>,
        mut pred: impl FnMut(&mut T) -> bool,
    ) -> (Self, bool) {
        let mut g = self;
        loop {
            if pred(&mut g) {
                return (g, true);
            }
            let (g2, notified) = g.wait(deadline);
            g = g2;
            if !notified {
                let ok = pred(&mut g);
                return (g, ok);
            }
        }
    }
}

impl<T> Deref for QueueGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.data().state
    }
}

impl<T> DerefMut for QueueGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.data_mut().state
    }
}

impl<T> Drop for QueueGuard<'_, T> {
    fn drop(&mut self) {
        self.q.lock.unlock();
    }
}
