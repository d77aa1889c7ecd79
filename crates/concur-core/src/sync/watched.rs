//! `WatchedLock`: a [`RawLock`] plus its identity for the deadlock detector, the one
//! place where `Lock` and `RLock` route their slow paths through the detector's hooks.
//!
//! A lock created while detection is on carries the raw lock's sticky `CHECKED` bit
//! (see `raw.rs`), so its fast paths always fail and every acquire and release lands
//! in the `*_slow` functions below, which call the hooks. A lock created while
//! detection is off never sees the hooks: its fast paths are one compare-and-swap.

use super::raw::RawLock;
use crate::deadlock::{self, LockMeta};
use std::time::Instant;

/// A raw lock the deadlock detector can watch.
pub(crate) struct WatchedLock {
    raw: RawLock,
    meta: LockMeta,
}

impl WatchedLock {
    /// An unlocked lock of `kind` ("Lock", "RLock"), watched iff detection is on now.
    #[track_caller]
    pub(crate) fn new(kind: &'static str, name: Option<Box<str>>) -> Self {
        WatchedLock {
            raw: RawLock::with_checked(deadlock::enabled()),
            meta: LockMeta::new(kind, name),
        }
    }

    /// The detector's identity of this lock (name, creation site).
    pub(crate) fn meta(&self) -> &LockMeta {
        &self.meta
    }

    /// Whether any thread holds the lock at this instant.
    #[inline]
    pub(crate) fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }

    /// True when the detector watches this lock and detection is still on.
    #[inline]
    fn watched(&self) -> bool {
        self.raw.is_checked() && deadlock::enabled()
    }

    /// Blocks until the lock is taken (true) or `deadline` passes (false).
    #[inline]
    pub(crate) fn lock(&self, deadline: Option<Instant>) -> bool {
        self.raw.lock_fast() || self.lock_slow(deadline)
    }

    /// Takes the lock if it is free, without blocking.
    #[inline]
    pub(crate) fn try_lock(&self) -> bool {
        self.raw.lock_fast() || self.try_lock_slow()
    }

    /// Releases a lock held by the caller (or on its behalf).
    #[inline]
    pub(crate) fn unlock(&self) {
        if !self.raw.unlock_fast() {
            self.unlock_slow();
        }
    }

    /// Releases the lock if it is held, whoever took it; false if it was free.
    pub(crate) fn try_unlock(&self) -> bool {
        if !self.raw.try_unlock() {
            return false;
        }
        if self.watched() {
            deadlock::on_release(&self.meta);
        }
        true
    }

    /// Contended acquire, and every acquire of a watched lock.
    #[cold]
    fn lock_slow(&self, deadline: Option<Instant>) -> bool {
        if !self.watched() {
            return self.raw.lock_slow(deadline);
        }
        deadlock::before_acquire(&self.meta);
        if self.raw.lock_slow(deadline) {
            deadlock::after_acquire(&self.meta);
            true
        } else {
            deadlock::acquire_abandoned(&self.meta);
            false
        }
    }

    #[cold]
    fn try_lock_slow(&self) -> bool {
        if !self.raw.try_lock() {
            return false;
        }
        if self.watched() {
            deadlock::after_acquire(&self.meta);
        }
        true
    }

    /// Contended release, and every release of a watched lock.
    #[cold]
    fn unlock_slow(&self) {
        if self.watched() {
            deadlock::on_release(&self.meta);
        }
        self.raw.unlock_slow();
    }
}

impl std::fmt::Debug for WatchedLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchedLock")
            .field("locked", &self.is_locked())
            .field("meta", &self.meta)
            .finish()
    }
}
