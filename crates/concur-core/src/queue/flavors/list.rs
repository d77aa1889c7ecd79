//! The unbounded FIFO flavor: a lock-free linked list of fixed-size blocks.
//!
//! The algorithm is the one crossbeam-channel's `list` flavor uses (a segmented
//! Michael–Scott-style queue, after Vyukov's ideas); this is our own implementation of
//! it over `crate::shim`.
//!
//! # Positions
//!
//! `head.index` and `tail.index` are `position << SHIFT`, positions only grow. A block
//! holds `BLOCK_CAP` (31; 3 under loom) slots and one lap of positions is `LAP` (32): the position
//! with offset `BLOCK_CAP` is a sentinel meaning "the thread that took the block's
//! last slot is installing the next block; wait". Bit 0 of `head.index` (`MARK_BIT`)
//! caches "head and tail are in different blocks", so a getter does not read `tail`
//! (the putters' cache line) while there is surely more to read.
//!
//! # Transitions
//!
//! - put: CAS `tail.index` one position on (SeqCst). The winner of a block's last slot
//!   installs the pre-allocated next block (`tail.block`, then `tail.index` past the
//!   sentinel, then `block.next`). The value is written, then `WRITE` set (Release).
//! - get: if not marked, read `tail` (SeqCst) to decide empty; CAS `head.index` one
//!   position on (SeqCst). The winner of a block's last slot moves `head` to the next
//!   block (waiting for `block.next`). The getter waits for `WRITE` (Acquire), reads
//!   the value, and sets `READ`.
//!
//! # Reclamation
//!
//! A block is freed by whoever finishes with it last: the getter of its last slot
//! starts destruction and walks the other slots; a slot whose getter is still
//! reading (no `READ` yet) gets `DESTROY` set and that getter, on setting `READ` and
//! seeing `DESTROY`, continues the walk from the next slot. Every slot is read exactly
//! once, so exactly one thread frees each block.

use super::Backoff;
use crate::shim::atomic::{AtomicPtr, AtomicUsize, Ordering};
use crate::shim::cell::UnsafeCell;
use crossbeam_utils::CachePadded;
use std::mem::MaybeUninit;
use std::ptr;

const WRITE: usize = 1;
const READ: usize = 2;
const DESTROY: usize = 4;

/// Positions per block (one of them the sentinel). Under loom, blocks are tiny so a
/// model crosses block boundaries within a few operations.
const LAP: usize = if cfg!(concur_loom) { 4 } else { 32 };
const BLOCK_CAP: usize = LAP - 1;
const SHIFT: usize = 1;
const MARK_BIT: usize = 1;

struct Slot<T> {
    value: UnsafeCell<MaybeUninit<T>>,
    state: AtomicUsize,
}

impl<T> Slot<T> {
    fn wait_write(&self) {
        let mut backoff = Backoff::new();
        while self.state.load(Ordering::Acquire) & WRITE == 0 {
            backoff.snooze();
        }
    }
}

struct Block<T> {
    next: AtomicPtr<Block<T>>,
    slots: [Slot<T>; BLOCK_CAP],
}

impl<T> Block<T> {
    fn alloc() -> *mut Block<T> {
        Box::into_raw(Box::new(Block {
            next: AtomicPtr::new(ptr::null_mut()),
            slots: std::array::from_fn(|_| Slot {
                value: UnsafeCell::new(MaybeUninit::uninit()),
                state: AtomicUsize::new(0),
            }),
        }))
    }

    fn wait_next(&self) -> *mut Block<T> {
        let mut backoff = Backoff::new();
        loop {
            let next = self.next.load(Ordering::Acquire);
            if !next.is_null() {
                return next;
            }
            backoff.snooze();
        }
    }

    /// Frees `this` once every slot from `start` on has been read (see the module
    /// docs); if a getter is still reading one, hands it the job.
    ///
    /// # Safety
    /// `this` is a live block whose last slot has been read, and slots before `start`
    /// are done with.
    unsafe fn destroy(this: *mut Block<T>, start: usize) {
        // The last slot's getter started the destruction; it needs no mark.
        for i in start..BLOCK_CAP - 1 {
            // SAFETY: `this` is live until freed below, by this call or a later one.
            let slot = unsafe { &(*this).slots[i] };
            if slot.state.load(Ordering::Acquire) & READ == 0
                && slot.state.fetch_or(DESTROY, Ordering::AcqRel) & READ == 0
            {
                // That slot's getter will free the block when it is done.
                return;
            }
        }
        // SAFETY: every slot is read and no thread will touch the block again.
        drop(unsafe { Box::from_raw(this) });
    }
}

struct Position<T> {
    index: AtomicUsize,
    block: AtomicPtr<Block<T>>,
}

/// An unbounded lock-free MPMC queue (see the module docs).
pub(crate) struct List<T> {
    head: CachePadded<Position<T>>,
    tail: CachePadded<Position<T>>,
}

// SAFETY: values move between threads through the slots (`T: Send`); each slot is
// written by the one putter that claimed its position and read by the one getter that
// claimed it, ordered by the slot's `WRITE` bit; blocks are freed exactly once.
unsafe impl<T: Send> Send for List<T> {}
// SAFETY: as above; no `&T` is ever handed out.
unsafe impl<T: Send> Sync for List<T> {}

/// Items before position-index `index` (sentinels do not count).
#[inline]
fn count(index: usize) -> u64 {
    let pos = index >> SHIFT;
    ((pos / LAP) * BLOCK_CAP + pos % LAP) as u64
}

impl<T> List<T> {
    pub(crate) fn new() -> Self {
        let first = Block::alloc();
        List {
            head: CachePadded::new(Position {
                index: AtomicUsize::new(0),
                block: AtomicPtr::new(first),
            }),
            tail: CachePadded::new(Position {
                index: AtomicUsize::new(0),
                block: AtomicPtr::new(first),
            }),
        }
    }

    /// Puts `value`; an unbounded list always has room.
    pub(crate) fn push(&self, value: T) {
        let mut backoff = Backoff::new();
        let mut tail = self.tail.index.load(Ordering::Acquire);
        let mut block = self.tail.block.load(Ordering::Acquire);
        let mut next_block: *mut Block<T> = ptr::null_mut();
        loop {
            let offset = (tail >> SHIFT) % LAP;
            if offset == BLOCK_CAP {
                // Another putter is installing the next block.
                backoff.snooze();
                tail = self.tail.index.load(Ordering::Acquire);
                block = self.tail.block.load(Ordering::Acquire);
                continue;
            }
            if offset + 1 == BLOCK_CAP && next_block.is_null() {
                // Allocate before claiming the last slot, so the install is quick.
                next_block = Block::alloc();
            }
            let new_tail = tail + (1 << SHIFT);
            match self.tail.index.compare_exchange_weak(
                tail,
                new_tail,
                Ordering::SeqCst,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if offset + 1 == BLOCK_CAP {
                        let next_index = new_tail + (1 << SHIFT);
                        self.tail.block.store(next_block, Ordering::Release);
                        self.tail.index.store(next_index, Ordering::Release);
                        // SAFETY: `block` is live: its last slot (ours) is unread.
                        unsafe { (*block).next.store(next_block, Ordering::Release) };
                    } else if !next_block.is_null() {
                        // SAFETY: allocated above, never shared.
                        drop(unsafe { Box::from_raw(next_block) });
                    }
                    // SAFETY: our slot's getter cannot read before `WRITE`, so the
                    // block is live and the slot ours.
                    let slot = unsafe { &(*block).slots[offset] };
                    // SAFETY: we claimed this position; nobody else writes the slot.
                    slot.value.with_mut(|p| unsafe { (*p).write(value) });
                    slot.state.fetch_or(WRITE, Ordering::Release);
                    return;
                }
                Err(t) => {
                    tail = t;
                    block = self.tail.block.load(Ordering::Acquire);
                    backoff.spin();
                }
            }
        }
    }

    /// Takes the oldest value, or `None` if the list is empty.
    pub(crate) fn try_pop(&self) -> Option<T> {
        let mut backoff = Backoff::new();
        let mut head = self.head.index.load(Ordering::Acquire);
        let mut block = self.head.block.load(Ordering::Acquire);
        loop {
            let offset = (head >> SHIFT) % LAP;
            if offset == BLOCK_CAP {
                // Another getter is moving `head` to the next block.
                backoff.snooze();
                head = self.head.index.load(Ordering::Acquire);
                block = self.head.block.load(Ordering::Acquire);
                continue;
            }
            let mut new_head = head + (1 << SHIFT);
            if new_head & MARK_BIT == 0 {
                let tail = self.tail.index.load(Ordering::SeqCst);
                if head >> SHIFT == tail >> SHIFT {
                    return None;
                }
                if (head >> SHIFT) / LAP != (tail >> SHIFT) / LAP {
                    new_head |= MARK_BIT;
                }
            }
            match self.head.index.compare_exchange_weak(
                head,
                new_head,
                Ordering::SeqCst,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    // SAFETY: the block stays live until our slot is marked READ.
                    unsafe {
                        if offset + 1 == BLOCK_CAP {
                            let next = (*block).wait_next();
                            let mut next_index = (new_head & !MARK_BIT) + (1 << SHIFT);
                            if !(*next).next.load(Ordering::Relaxed).is_null() {
                                next_index |= MARK_BIT;
                            }
                            self.head.block.store(next, Ordering::Release);
                            self.head.index.store(next_index, Ordering::Release);
                        }
                        let slot = &(*block).slots[offset];
                        slot.wait_write();
                        // SAFETY: `WRITE` is set: the value is initialized, and we
                        // are the only getter of this position.
                        let value = slot.value.with(|p| (*p).assume_init_read());
                        if offset + 1 == BLOCK_CAP {
                            Block::destroy(block, 0);
                        } else if slot.state.fetch_or(READ, Ordering::AcqRel) & DESTROY != 0 {
                            Block::destroy(block, offset + 1);
                        }
                        return Some(value);
                    }
                }
                Err(h) => {
                    head = h;
                    block = self.head.block.load(Ordering::Acquire);
                    backoff.spin();
                }
            }
        }
    }

    /// Items in the list at some instant during the call.
    pub(crate) fn len(&self) -> usize {
        loop {
            let tail = self.tail.index.load(Ordering::SeqCst);
            let head = self.head.index.load(Ordering::SeqCst);
            if self.tail.index.load(Ordering::SeqCst) == tail {
                return count(tail).saturating_sub(count(head)) as usize;
            }
        }
    }

    /// True if no position is claimed beyond `head` (SeqCst, for the handshake).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        let head = self.head.index.load(Ordering::SeqCst);
        let tail = self.tail.index.load(Ordering::SeqCst);
        head >> SHIFT == tail >> SHIFT
    }

    /// How many values were ever put (SeqCst).
    #[inline]
    pub(crate) fn pushed(&self) -> u64 {
        count(self.tail.index.load(Ordering::SeqCst))
    }

    /// How many values were ever taken (a lower bound of `pushed`).
    #[inline]
    pub(crate) fn popped(&self) -> u64 {
        count(self.head.index.load(Ordering::Relaxed))
    }
}

impl<T> Drop for List<T> {
    fn drop(&mut self) {
        // `&mut self`: every claimed position is fully written or fully read.
        let mut head = self.head.index.load(Ordering::Relaxed) & !MARK_BIT;
        let tail = self.tail.index.load(Ordering::Relaxed) & !MARK_BIT;
        let mut block = self.head.block.load(Ordering::Relaxed);
        // SAFETY: positions in head..tail hold written, unread values in live blocks
        // chained from `head.block`; each block is freed once, after its last slot.
        unsafe {
            while head != tail {
                let offset = (head >> SHIFT) % LAP;
                if offset < BLOCK_CAP {
                    (*block).slots[offset]
                        .value
                        .with_mut(|p| (*p).assume_init_drop());
                } else {
                    let next = (*block).next.load(Ordering::Relaxed);
                    drop(Box::from_raw(block));
                    block = next;
                }
                head += 1 << SHIFT;
            }
            if !block.is_null() {
                drop(Box::from_raw(block));
            }
        }
    }
}
