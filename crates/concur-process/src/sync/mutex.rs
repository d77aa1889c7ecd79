//! `RawLock`: the robust mutex plus the bookkeeping [`Lock`](super::Lock) and
//! [`RLock`](super::RLock) share, in one `#[repr(C)]` state.
//!
//! # Shared state (`MutexState`)
//!
//! | field           | written by                       | meaning                             |
//! |-----------------|----------------------------------|-------------------------------------|
//! | `mutex`         | the C library                    | robust, process-shared, errorcheck  |
//! | `owner`         | the holder, while holding        | holder's thread id; 0 = free        |
//! | `count`         | the holder, while holding        | `RLock` recursion level             |
//! | `death_pending` | whoever holds the mutex          | 1 = an owner death not yet reported |
//!
//! The mutex is the truth; `owner` is a hint kept for `locked()`, `is_owned()` and
//! `Debug`. A holder stores its id after locking and clears it before unlocking
//! (`Relaxed`: the mutex orders hand-overs). If the holder dies, `owner` keeps the
//! dead thread's id until the next acquirer overwrites it, so `locked()` stays true —
//! correctly, as the lock is not free until someone recovers it. Thread ids are
//! recycled, so "`owner` is my id" is confirmed with `pthread_mutex_trylock` (which
//! fails with `EDEADLK` only for the real owner) before it is believed.
//!
//! `death_pending` covers that confirmation: if the probe itself recovers a dead
//! owner's mutex, it releases it again at once and leaves the news for the next real
//! acquirer, so no death goes unreported.

use super::robust::{Attempt, RobustMutex};
use super::shared::{Shared, SharedState, Tag};
use super::tid;
use crate::block::SharedMemory;
use crate::block::sys::FileId;
use std::cell::RefCell;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

/// The state of a process-shared `Lock` or `RLock`. See the module docs.
#[repr(C)]
pub(crate) struct MutexState {
    tag: Tag,
    mutex: RobustMutex,
    owner: AtomicU32,
    count: AtomicU32,
    death_pending: AtomicU32,
}

// SAFETY: `repr(C)`, starts with the tag, made of atomics and the `UnsafeCell`-based
// `RobustMutex` only; alignment 8.
unsafe impl SharedState for MutexState {
    fn tag(&self) -> &Tag {
        &self.tag
    }
}

/// How long an acquisition may wait.
#[derive(Copy, Clone, Debug)]
pub(crate) enum Wait {
    /// Not at all.
    Now,
    /// Until the deadline (`None`: forever).
    Until(Option<Instant>),
}

/// The outcome of an acquisition.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The caller now holds the mutex; `owner_died` reports a recovered dead owner.
    Acquired { owner_died: bool },
    /// The calling thread already holds it.
    HeldByCaller,
    /// Not acquired in time.
    Busy,
}

/// A handle to a `MutexState`; the operations every process-shared lock needs.
#[derive(Clone)]
pub(crate) struct RawLock {
    shared: Shared<MutexState>,
}

impl RawLock {
    /// A new lock in a page of its own.
    pub(crate) fn create(kind: u32) -> io::Result<Self> {
        Shared::create("concur-lock", kind, |s: &MutexState| s.mutex.init())
            .map(|shared| RawLock { shared })
    }

    /// A new lock at `offset` of the fresh block `mem` (a `Value`'s own lock).
    pub(crate) fn create_at(mem: SharedMemory, offset: usize, kind: u32) -> io::Result<Self> {
        Shared::init_at(mem, offset, kind, |s: &MutexState| s.mutex.init())
            .map(|shared| RawLock { shared })
    }

    pub(crate) fn from_shared(shared: Shared<MutexState>) -> Self {
        RawLock { shared }
    }

    pub(crate) fn shared(&self) -> &Shared<MutexState> {
        &self.shared
    }

    fn state(&self) -> &MutexState {
        self.shared.get()
    }

    /// Tries to acquire, waiting as `wait` allows.
    pub(crate) fn acquire(&self, wait: Wait) -> Outcome {
        let s = self.state();
        let mut a = s.mutex.try_lock();
        if let (Attempt::Busy, Wait::Until(deadline)) = (a, wait) {
            a = s.mutex.lock(deadline);
        }
        match a {
            Attempt::Acquired | Attempt::OwnerDied => {
                self.shared.mem().mapping().pin();
                s.owner.store(tid::current(), Ordering::Relaxed);
                let pending = s.death_pending.load(Ordering::Relaxed) != 0
                    && s.death_pending.swap(0, Ordering::Relaxed) != 0;
                Outcome::Acquired {
                    owner_died: a == Attempt::OwnerDied || pending,
                }
            }
            Attempt::HeldByCaller => Outcome::HeldByCaller,
            Attempt::Busy => Outcome::Busy,
        }
    }

    /// Releases a hold of the calling thread. Returns false (and changes nothing) if
    /// the calling thread does not hold the mutex.
    pub(crate) fn release(&self) -> bool {
        let s = self.state();
        let me = tid::current();
        let owner_was_me = s.owner.load(Ordering::Relaxed) == me;
        if owner_was_me {
            s.owner.store(0, Ordering::Relaxed);
        }
        if s.mutex.unlock() {
            self.shared.mem().mapping().unpin();
            true
        } else {
            if owner_was_me {
                s.owner.store(me, Ordering::Relaxed); // a stale id: leave it as it was
            }
            false
        }
    }

    /// Whether the calling thread holds the mutex (exact; see the module docs).
    pub(crate) fn held_by_me(&self) -> bool {
        let s = self.state();
        if s.owner.load(Ordering::Relaxed) != tid::current() {
            return false;
        }
        match s.mutex.try_lock() {
            Attempt::HeldByCaller => true,
            Attempt::Busy => false,
            a @ (Attempt::Acquired | Attempt::OwnerDied) => {
                // The id was stale (a recycled thread id); we just took the mutex.
                if a == Attempt::OwnerDied {
                    s.death_pending.store(1, Ordering::Relaxed);
                }
                s.owner.store(0, Ordering::Relaxed);
                s.mutex.unlock();
                false
            }
        }
    }

    /// Whether some thread holds (or died holding) the lock, by the `owner` hint.
    pub(crate) fn locked(&self) -> bool {
        self.state().owner.load(Ordering::Relaxed) != 0
    }

    /// The holder's thread id (0: free), by the hint.
    pub(crate) fn owner(&self) -> u32 {
        self.state().owner.load(Ordering::Relaxed)
    }

    /// The recursion level; meaningful to the holder only.
    pub(crate) fn count(&self) -> u32 {
        self.state().count.load(Ordering::Relaxed)
    }

    /// Sets the recursion level; the caller holds the mutex.
    pub(crate) fn set_count(&self, c: u32) {
        self.state().count.store(c, Ordering::Relaxed);
    }

    /// The identity of the lock across mappings: block and offset.
    pub(crate) fn key(&self) -> (FileId, usize) {
        self.shared.key()
    }

    pub(crate) fn same(&self, other: &Self) -> bool {
        self.shared.same(&other.shared)
    }
}

/// The identity of a lock or of the data it protects: block and offset.
pub(crate) type Key = (FileId, usize);

thread_local! {
    /// (lock, data) pairs whose data this thread has lent out as `&mut` (inside
    /// `Array::with_lock`): the lock must not be released, nor the data copied,
    /// meanwhile.
    static LENT: RefCell<Vec<(Key, Key)>> = const { RefCell::new(Vec::new()) };
}

/// Whether the calling thread has lent out memory that `lock` protects.
pub(crate) fn is_lock_lent(lock: Key) -> bool {
    LENT.with(|l| l.borrow().iter().any(|(k, _)| *k == lock))
}

/// Whether the calling thread has lent out the data at `data`.
pub(crate) fn is_data_lent(data: Key) -> bool {
    LENT.with(|l| l.borrow().iter().any(|(_, d)| *d == data))
}

/// Marks `data` (protected by `lock`) lent while `f` runs (also if it panics).
pub(crate) fn lend<R>(lock: Key, data: Key, f: impl FnOnce() -> R) -> R {
    struct Unlend((Key, Key));
    impl Drop for Unlend {
        fn drop(&mut self) {
            LENT.with(|l| {
                let mut l = l.borrow_mut();
                if let Some(i) = l.iter().rposition(|k| *k == self.0) {
                    l.remove(i);
                }
            });
        }
    }
    LENT.with(|l| l.borrow_mut().push((lock, data)));
    let _unlend = Unlend((lock, data));
    f()
}
