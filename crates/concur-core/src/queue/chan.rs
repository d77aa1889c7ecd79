//! The blocking protocol shared by every queue kind: sleeping getters and putters, task
//! accounting (`task_done` / `join`) and shutdown, over a non-blocking [`Flavor`].
//!
//! # Sleeper handshake (no lost wake-up)
//!
//! Three parking keys, one per kind of waiter: the addresses of `getters`, `putters`
//! and `joiners`, each of which counts the threads registered to sleep on it.
//!
//! A getter that finds the queue empty (after a short spin):
//! 1. `getters.fetch_add(1, SeqCst)`;
//! 2. parks on `&getters`, with `validate` (run under the parking bucket lock)
//!    re-checking `flavor.is_empty() && !shutdown` with SeqCst loads;
//! 3. on waking, `getters.fetch_sub(1)` and retries from the top.
//!
//! A putter, after every successful `try_push` (whose position/length write is SeqCst),
//! loads `getters` (SeqCst) and calls `unpark_one(&getters)` only if it is non-zero. In
//! the single total order of SeqCst operations, either the push's write comes before
//! the getter's `fetch_add` (so the getter's re-check in step 2, which follows its
//! `fetch_add`, sees the item), or the `fetch_add` comes first (so the putter's load,
//! which follows its push, sees a sleeper and unparks; the unpark takes the bucket
//! lock, so it comes after the getter's validate-and-enqueue or before its validate,
//! which then sees the item). This is Dekker's pattern: each side writes its own flag
//! then reads the other's. The fast path, when nobody sleeps, is one extra load of a
//! read-mostly cache line; no fence and no parking-table access (on x86 the SeqCst
//! write is the `lock cmpxchg` the ring needs anyway).
//!
//! Putters waiting for room use `putters` the same way, re-checking
//! `flavor.is_full() && !shutdown`; getters load `putters` after every successful pop.
//! A woken waiter that loses the item to a faster thread simply re-registers.
//!
//! Loom models SeqCst accesses more weakly than C++ does (as AcqRel), so under
//! `--cfg concur_loom` both sides add a `fence(SeqCst)` between their write and their
//! read ([`sc_fence`]); with the real memory model the SeqCst accesses already give
//! the total order the argument needs.
//!
//! # Task accounting
//!
//! Python counts `unfinished_tasks` up on every put. Here "items ever put" is
//! `flavor.pushed()` (for the ring, a function of `tail`), and only `done` is a
//! counter of its own, bumped by `task_done` with a CAS that refuses to pass `pushed`
//! (one call too many is [`TaskDoneError`]). Invariant: `done <= pushed` always, so
//! `join` reading `done` then `pushed` and finding them equal saw a real instant with
//! no unfinished task. Joiners register on `joiners` exactly like getters; `task_done`
//! (CAS on `done`, SeqCst) loads `joiners` and, if someone waits and the count reached
//! zero, wakes them all. Immediate shutdown adds every discarded item to `done`.
//!
//! # Shutdown
//!
//! `state` goes `OPEN -> SHUT | IMMEDIATE` (`fetch_max`, SeqCst, never back), and then
//! `shutdown` `unpark_all`s every key. A waiter's validate reads the state under the
//! bucket lock, so it either sees it or is already parked when the wake-up comes.
//!
//! A put checks the state before pushing, so a put racing `shutdown` may still land
//! (it is ordered before the shutdown; Python's mutex orders the two the same way, one
//! or the other first). Its item is handed out by a later `get` after a normal
//! shutdown. After an immediate one it must not linger: `shutdown` drains after its
//! SeqCst state store, and every successful push loads the state (SeqCst) afterwards
//! and, seeing `IMMEDIATE`, drains too (Dekker again: at least one of the two sees the
//! item). So no item stays queued once an immediate shutdown and every racing put have
//! returned.

use super::TaskDoneError;
use super::flavors::Flavor;
use crate::shim::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use crate::shim::park::{self, ParkResult, SpinWait};
use crossbeam_utils::CachePadded;
use std::marker::PhantomData;
use std::time::Instant;

/// Why a put did not store its item.
pub(crate) enum PutFail<T> {
    Full(T),
    ShutDown(T),
}

/// Why a get returned no item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GetFail {
    Empty,
    ShutDown,
}

/// How long an operation may block.
#[derive(Clone, Copy)]
pub(crate) enum Wait {
    /// Not at all (`try_*`).
    Never,
    /// Until the deadline (`None`: forever).
    Until(Option<Instant>),
}

/// Counters that are written only when someone sleeps: read-mostly, on their own line.
struct Sleepers {
    getters: AtomicUsize,
    putters: AtomicUsize,
    joiners: AtomicUsize,
    /// `OPEN`, then `SHUT` or `IMMEDIATE`; only ever grows (`fetch_max`).
    state: AtomicU8,
}

/// Accepting puts.
const OPEN: u8 = 0;
/// `shutdown(false)` was called.
const SHUT: u8 = 1;
/// `shutdown(true)` was called: queued items are discarded.
const IMMEDIATE: u8 = 2;

/// The shared state behind every handle of one queue.
pub(crate) struct Chan<T, F> {
    flavor: F,
    sleepers: CachePadded<Sleepers>,
    done: CachePadded<AtomicU64>,
    // `fn() -> T`: Send and Sync follow the flavor (which owns the items), not `T: Sync`.
    _items: PhantomData<fn() -> T>,
}

/// Loom-only fence completing the SeqCst handshake (see the module docs).
#[inline(always)]
fn sc_fence() {
    #[cfg(concur_loom)]
    crate::shim::atomic::fence(Ordering::SeqCst);
}

impl<T, F: Flavor<T>> Chan<T, F> {
    pub(crate) fn new(flavor: F) -> Self {
        Chan {
            flavor,
            sleepers: CachePadded::new(Sleepers {
                getters: AtomicUsize::new(0),
                putters: AtomicUsize::new(0),
                joiners: AtomicUsize::new(0),
                state: AtomicU8::new(OPEN),
            }),
            done: CachePadded::new(AtomicU64::new(0)),
            _items: PhantomData,
        }
    }

    fn key(a: &AtomicUsize) -> usize {
        a as *const AtomicUsize as usize
    }

    /// Sleeps on `counter`'s key while `still_blocked()` holds (checked under the
    /// bucket lock). Returns false if the deadline passed.
    #[inline(never)]
    fn sleep(
        &self,
        counter: &AtomicUsize,
        still_blocked: impl FnOnce() -> bool,
        deadline: Option<Instant>,
    ) -> bool {
        counter.fetch_add(1, Ordering::SeqCst);
        sc_fence();
        // SAFETY: `validate` only performs atomic loads (no panic, no parking call);
        // the other callbacks do nothing.
        let r = unsafe {
            park::park(
                Self::key(counter),
                still_blocked,
                || {},
                |_, _| {},
                deadline,
            )
        };
        counter.fetch_sub(1, Ordering::SeqCst);
        r != ParkResult::TimedOut
    }

    /// Wakes one thread sleeping on `counter`, if any registered (the second half of
    /// the handshake; the caller's SeqCst write precedes this).
    #[inline]
    fn wake_one(&self, counter: &AtomicUsize) {
        sc_fence();
        if counter.load(Ordering::SeqCst) != 0 {
            self.wake_one_slow(counter);
        }
    }

    #[cold]
    #[inline(never)]
    fn wake_one_slow(&self, counter: &AtomicUsize) {
        // SAFETY: the callback does nothing.
        unsafe { park::unpark_one(Self::key(counter), |_| 0) };
    }

    fn wake_all(&self, counter: &AtomicUsize) {
        // SAFETY: no callbacks.
        unsafe { park::unpark_all(Self::key(counter), 0) };
    }

    #[inline]
    pub(crate) fn is_shutdown(&self) -> bool {
        self.sleepers.state.load(Ordering::SeqCst) != OPEN
    }

    /// Puts `value`, waiting for room as `wait` allows.
    #[inline]
    pub(crate) fn put(&self, value: T, wait: Wait) -> Result<(), PutFail<T>> {
        if self.sleepers.state.load(Ordering::Relaxed) != OPEN {
            return Err(PutFail::ShutDown(value));
        }
        match self.flavor.try_push(value) {
            Ok(()) => {
                self.after_push();
                Ok(())
            }
            Err(value) => self.put_slow(value, wait),
        }
    }

    /// After a successful push: wake a sleeping getter, and finish an immediate
    /// shutdown that raced this put (module docs, "Shutdown").
    #[inline]
    fn after_push(&self) {
        self.wake_one(&self.sleepers.getters);
        if self.sleepers.state.load(Ordering::SeqCst) == IMMEDIATE {
            self.discard_all();
        }
    }

    #[cold]
    fn put_slow(&self, mut value: T, wait: Wait) -> Result<(), PutFail<T>> {
        let deadline = match wait {
            Wait::Never => return Err(PutFail::Full(value)),
            Wait::Until(d) => d,
        };
        let mut spin = SpinWait::new();
        loop {
            if self.is_shutdown() {
                return Err(PutFail::ShutDown(value));
            }
            match self.flavor.try_push(value) {
                Ok(()) => {
                    self.after_push();
                    return Ok(());
                }
                Err(v) => value = v,
            }
            if spin.spin() {
                continue;
            }
            let woke = self.sleep(
                &self.sleepers.putters,
                || self.flavor.is_full() && self.sleepers.state.load(Ordering::SeqCst) == OPEN,
                deadline,
            );
            if !woke {
                // Timed out: one last try, as Python's `not_full.wait` loop would.
                if self.is_shutdown() {
                    return Err(PutFail::ShutDown(value));
                }
                return match self.flavor.try_push(value) {
                    Ok(()) => {
                        self.after_push();
                        Ok(())
                    }
                    Err(v) => Err(PutFail::Full(v)),
                };
            }
        }
    }

    /// Takes the next item, waiting for one as `wait` allows.
    #[inline]
    pub(crate) fn get(&self, wait: Wait) -> Result<T, GetFail> {
        match self.flavor.try_pop() {
            Some(v) => {
                self.wake_one(&self.sleepers.putters);
                Ok(v)
            }
            None => self.get_slow(wait),
        }
    }

    #[cold]
    fn get_slow(&self, wait: Wait) -> Result<T, GetFail> {
        let mut spin = SpinWait::new();
        loop {
            if let Some(v) = self.flavor.try_pop() {
                self.wake_one(&self.sleepers.putters);
                return Ok(v);
            }
            if self.is_shutdown() {
                // Items put before the shutdown are still handed out ("drain").
                return self.try_pop_after_shutdown();
            }
            let deadline = match wait {
                Wait::Never => return Err(GetFail::Empty),
                Wait::Until(d) => d,
            };
            if spin.spin() {
                continue;
            }
            let woke = self.sleep(
                &self.sleepers.getters,
                || self.flavor.is_empty() && self.sleepers.state.load(Ordering::SeqCst) == OPEN,
                deadline,
            );
            if !woke {
                if let Some(v) = self.flavor.try_pop() {
                    self.wake_one(&self.sleepers.putters);
                    return Ok(v);
                }
                return Err(if self.is_shutdown() {
                    GetFail::ShutDown
                } else {
                    GetFail::Empty
                });
            }
        }
    }

    fn try_pop_after_shutdown(&self) -> Result<T, GetFail> {
        match self.flavor.try_pop() {
            Some(v) => {
                self.wake_one(&self.sleepers.putters);
                Ok(v)
            }
            None => Err(GetFail::ShutDown),
        }
    }

    /// Items queued now.
    pub(crate) fn len(&self) -> usize {
        self.flavor.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.flavor.is_empty()
    }

    pub(crate) fn is_full(&self) -> bool {
        self.flavor.is_full()
    }

    pub(crate) fn capacity(&self) -> Option<usize> {
        self.flavor.capacity()
    }

    /// Puts not yet matched by a `task_done` (Python's `unfinished_tasks`).
    #[inline]
    pub(crate) fn unfinished(&self) -> u64 {
        // `done` first: `done <= pushed` at every instant and `pushed` only grows, so
        // equality here means an instant with nothing unfinished (module docs).
        let done = self.done.load(Ordering::SeqCst);
        self.flavor.pushed() - done
    }

    /// Adds `n` to `done`, never past `pushed`; returns how many were added.
    #[inline]
    fn add_done(&self, n: u64) -> u64 {
        let mut done = self.done.load(Ordering::Relaxed);
        loop {
            // `popped <= pushed` is read from the getters' own cache line; only when
            // it does not cover the call do we read `pushed` (the putters' line).
            let limit = match self.flavor.popped() {
                p if p >= done + n => p,
                _ => self.flavor.pushed(),
            };
            let add = n.min(limit.saturating_sub(done));
            if add == 0 {
                return 0;
            }
            match self.done.compare_exchange_weak(
                done,
                done + add,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    sc_fence();
                    if self.sleepers.joiners.load(Ordering::SeqCst) != 0 && self.unfinished() == 0 {
                        self.wake_all(&self.sleepers.joiners);
                    }
                    return add;
                }
                Err(d) => done = d,
            }
        }
    }

    /// Python's `task_done`.
    #[inline]
    pub(crate) fn task_done(&self) -> Result<(), TaskDoneError> {
        if self.add_done(1) == 1 {
            Ok(())
        } else {
            Err(TaskDoneError { _priv: () })
        }
    }

    /// Waits until every put has been matched by a `task_done`; false on timeout.
    pub(crate) fn join(&self, deadline: Option<Instant>) -> bool {
        loop {
            if self.unfinished() == 0 {
                return true;
            }
            let woke = self.sleep(&self.sleepers.joiners, || self.unfinished() != 0, deadline);
            if !woke {
                return self.unfinished() == 0;
            }
        }
    }

    /// Drops every queued item, counting each as done; returns how many.
    fn discard_all(&self) -> u64 {
        let mut discarded = 0u64;
        while let Some(v) = self.flavor.try_pop() {
            drop(v);
            discarded += 1;
        }
        if discarded > 0 {
            self.add_done(discarded);
            // Putters blocked on a full queue have room now (they will see the state).
            self.wake_one(&self.sleepers.putters);
        }
        discarded
    }

    /// Python 3.13's `shutdown(immediate)`.
    pub(crate) fn shutdown(&self, immediate: bool) {
        let new = if immediate { IMMEDIATE } else { SHUT };
        self.sleepers.state.fetch_max(new, Ordering::SeqCst);
        sc_fence();
        if immediate {
            let discarded = self.discard_all();
            tracing::debug!(discarded, "queue shut down immediately");
        }
        self.wake_all(&self.sleepers.getters);
        self.wake_all(&self.sleepers.putters);
        self.wake_all(&self.sleepers.joiners);
    }
}
