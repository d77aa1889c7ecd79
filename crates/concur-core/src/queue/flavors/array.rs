//! The bounded FIFO flavor: a lock-free bounded MPMC ring buffer with a stamp per slot.
//!
//! The algorithm is Dmitry Vyukov's bounded MPMC queue
//! (<https://www.1024cores.net/home/lock-free-algorithms/queues/bounded-mpmc-queue>), in
//! the lap-encoded form crossbeam-channel's `array` flavor uses; this is our own
//! implementation of it over `crate::shim`.
//!
//! # Positions and stamps
//!
//! `head` and `tail` are positions `lap * one_lap + index`, where `one_lap` is the
//! smallest power of two above `cap` (so `index < cap` and the lap occupies the high
//! bits). Both only grow. Slot `i` carries a `stamp`:
//!
//! | `stamp` of the slot at position `p` | meaning |
//! |---|---|
//! | `== p`         | empty: a putter whose tail is `p` may claim it |
//! | `== p + 1`     | full: a getter whose head is `p` may claim it |
//! | `== p - one_lap + 1` (seen by a putter) | still full from the previous lap: the ring is full (if `head` agrees) |
//!
//! Transitions:
//! - put: CAS `tail: p -> next(p)` (SeqCst) when `stamp == p`; write the value;
//!   `stamp := p + 1` (Release, publishing the value).
//! - get: CAS `head: p -> next(p)` (SeqCst) when `stamp == p + 1`; read the value;
//!   `stamp := p + one_lap` (Release, handing the slot to the next lap's putter).
//!
//! The `Acquire` load of a stamp pairs with the `Release` store that set it, so a value
//! is fully written before a getter reads it, and fully read before a putter overwrites
//! it. The successful `head`/`tail` CASes are `SeqCst`: they are one half of the
//! sleeper handshake described in `chan.rs`.
//!
//! Because positions never wrap (u64), the number of items ever put is a function of
//! `tail` alone ([`Array::pushed`]); task accounting needs no counter of its own.

use super::Backoff;
use crate::shim::atomic::{AtomicU64, Ordering};
use crate::shim::cell::UnsafeCell;
use crossbeam_utils::CachePadded;
use std::mem::MaybeUninit;

struct Slot<T> {
    stamp: AtomicU64,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// A bounded lock-free MPMC ring (see the module docs).
pub(crate) struct Array<T> {
    head: CachePadded<AtomicU64>,
    tail: CachePadded<AtomicU64>,
    buffer: Box<[Slot<T>]>,
    cap: u64,
    one_lap: u64,
    lap_shift: u32,
}

// SAFETY: values of `T` move between threads through the slots (so `T: Send` is
// needed), and each slot's value is accessed by exactly one thread at a time, the one
// that won the CAS for its position; the stamp protocol orders those accesses.
unsafe impl<T: Send> Send for Array<T> {}
// SAFETY: as above: shared access never hands out `&T`, only moves values in and out
// under the stamp protocol.
unsafe impl<T: Send> Sync for Array<T> {}

impl<T> Array<T> {
    /// A ring holding at most `cap` (> 0) items.
    pub(crate) fn new(cap: usize) -> Self {
        assert!(cap > 0, "capacity must be positive");
        let cap = cap as u64;
        let one_lap = (cap + 1).next_power_of_two();
        let buffer = (0..cap)
            .map(|i| Slot {
                stamp: AtomicU64::new(i),
                value: UnsafeCell::new(MaybeUninit::uninit()),
            })
            .collect();
        Array {
            head: CachePadded::new(AtomicU64::new(0)),
            tail: CachePadded::new(AtomicU64::new(0)),
            buffer,
            cap,
            one_lap,
            lap_shift: one_lap.trailing_zeros(),
        }
    }

    /// The position after `pos`.
    #[inline]
    fn next(&self, pos: u64) -> u64 {
        let index = pos & (self.one_lap - 1);
        if index + 1 < self.cap {
            pos + 1
        } else {
            (pos & !(self.one_lap - 1)) + self.one_lap
        }
    }

    /// How many positions precede `pos` (items put before it, for `tail`).
    #[inline]
    fn count(&self, pos: u64) -> u64 {
        (pos >> self.lap_shift) * self.cap + (pos & (self.one_lap - 1))
    }

    #[inline]
    fn slot(&self, pos: u64) -> &Slot<T> {
        // `index < cap == buffer.len()` by construction of positions.
        &self.buffer[(pos & (self.one_lap - 1)) as usize]
    }

    /// Puts `value` if there is room; gives it back if the ring is full.
    #[inline]
    pub(crate) fn try_push(&self, value: T) -> Result<(), T> {
        let mut backoff = Backoff::new();
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            let slot = self.slot(tail);
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == tail {
                let next = self.next(tail);
                match self.tail.compare_exchange_weak(
                    tail,
                    next,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: winning the CAS for position `tail` while the stamp
                        // said "empty at tail" gives this thread sole access to the
                        // slot until it publishes the new stamp below.
                        slot.value.with_mut(|p| unsafe { (*p).write(value) });
                        slot.stamp.store(tail + 1, Ordering::Release);
                        return Ok(());
                    }
                    Err(t) => {
                        tail = t;
                        backoff.spin();
                    }
                }
            } else if stamp + self.one_lap == tail + 1 {
                // The slot still holds last lap's value: full, unless a getter moved on.
                let head = self.head.load(Ordering::SeqCst);
                if head + self.one_lap == tail {
                    return Err(value);
                }
                backoff.spin();
                tail = self.tail.load(Ordering::Relaxed);
            } else {
                // Another putter claimed this position and has not published yet, or
                // our `tail` is stale.
                backoff.snooze();
                tail = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Takes the oldest value, or `None` if the ring is empty.
    #[inline]
    pub(crate) fn try_pop(&self) -> Option<T> {
        let mut backoff = Backoff::new();
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            let slot = self.slot(head);
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == head + 1 {
                let next = self.next(head);
                match self.head.compare_exchange_weak(
                    head,
                    next,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: winning the CAS for position `head` while the stamp
                        // said "full at head" gives this thread sole access to an
                        // initialized value, which it moves out before handing the slot
                        // to the next lap.
                        let value = slot.value.with(|p| unsafe { (*p).assume_init_read() });
                        slot.stamp.store(head + self.one_lap, Ordering::Release);
                        return Some(value);
                    }
                    Err(h) => {
                        head = h;
                        backoff.spin();
                    }
                }
            } else if stamp == head {
                // Nothing published at `head`: empty, unless a putter is mid-way.
                let tail = self.tail.load(Ordering::SeqCst);
                if tail == head {
                    return None;
                }
                backoff.spin();
                head = self.head.load(Ordering::Relaxed);
            } else {
                backoff.snooze();
                head = self.head.load(Ordering::Relaxed);
            }
        }
    }

    /// Items in the ring at some instant during the call.
    pub(crate) fn len(&self) -> usize {
        loop {
            let tail = self.tail.load(Ordering::SeqCst);
            let head = self.head.load(Ordering::SeqCst);
            if self.tail.load(Ordering::SeqCst) == tail {
                return self.count(tail).saturating_sub(self.count(head)) as usize;
            }
        }
    }

    /// True if no value has been claimed-for-put beyond `head` (SeqCst: the sleeper
    /// handshake re-checks this under the parking lock).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        let head = self.head.load(Ordering::SeqCst);
        let tail = self.tail.load(Ordering::SeqCst);
        head == tail
    }

    /// True if every slot is claimed (SeqCst, as `is_empty`).
    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        let tail = self.tail.load(Ordering::SeqCst);
        let head = self.head.load(Ordering::SeqCst);
        head + self.one_lap == tail
    }

    /// The capacity given at creation.
    pub(crate) fn capacity(&self) -> usize {
        self.cap as usize
    }

    /// How many values were ever put (claimed positions; SeqCst).
    #[inline]
    pub(crate) fn pushed(&self) -> u64 {
        self.count(self.tail.load(Ordering::SeqCst))
    }

    /// How many values were ever taken (claimed positions; a cheap lower bound for
    /// `pushed`, read from the getters' own cache line).
    #[inline]
    pub(crate) fn popped(&self) -> u64 {
        self.count(self.head.load(Ordering::Relaxed))
    }
}

impl<T> Drop for Array<T> {
    fn drop(&mut self) {
        // `&mut self`: no other thread can touch the ring; every position in
        // `head..tail` holds a published value.
        let mut pos = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        while pos != tail {
            let slot = self.slot(pos);
            // SAFETY: positions between head and tail were fully put (we have `&mut`,
            // so no put is half-done) and never taken.
            slot.value.with_mut(|p| unsafe { (*p).assume_init_drop() });
            pos = self.next(pos);
        }
    }
}
