//! The storage behind each queue kind (crossbeam-channel's "flavors" layout): a
//! lock-free ring for the bounded FIFO, a lock-free list of blocks for the unbounded
//! FIFO, a lock-protected container for `LifoQueue` and `PriorityQueue`. `chan.rs` builds the blocking, shutdown and task-accounting protocol on top
//! of the non-blocking [`Flavor`] interface.

mod array;
mod list;
mod locked;

pub(crate) use array::Array;
pub(crate) use list::List;
pub(crate) use locked::{Heap, Lifo, Locked};

/// Non-blocking storage with the counters the blocking protocol needs.
///
/// `is_empty`, `is_full` and `pushed` are `SeqCst` reads: they are the re-checks of the
/// sleeper handshake in `chan.rs`, paired with the `SeqCst` write that a successful
/// `try_push` / `try_pop` makes.
pub(crate) trait Flavor<T> {
    /// Stores `value`, or gives it back when there is no room.
    fn try_push(&self, value: T) -> Result<(), T>;
    /// Takes the next value in this flavor's order.
    fn try_pop(&self) -> Option<T>;
    /// Items stored at some instant during the call.
    fn len(&self) -> usize;
    /// No item stored (SeqCst).
    fn is_empty(&self) -> bool;
    /// No room for one more (SeqCst); always false when unbounded.
    fn is_full(&self) -> bool;
    /// The bound, `None` when unbounded.
    fn capacity(&self) -> Option<usize>;
    /// Items ever stored (SeqCst, monotonic).
    fn pushed(&self) -> u64;
    /// Items ever taken (monotonic, `<= pushed`; may be read Relaxed).
    fn popped(&self) -> u64;
}

/// The FIFO flavors behind `Queue` and `SimpleQueue`, dispatched by `match` as
/// crossbeam-channel does (no virtual call on the hot path).
// The ring's cache-padded head and tail make `Array` large; the enum lives once, inside
// the queue's `Arc`, and boxing it would add a pointer chase to every operation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum FifoFlavor<T> {
    /// `Queue::bounded(n)`: the lock-free ring.
    Array(Array<T>),
    /// `Queue::unbounded()` and `SimpleQueue`: the lock-free list of blocks.
    List(List<T>),
}

macro_rules! dispatch {
    ($self:ident, $f:ident => $e:expr) => {
        match $self {
            FifoFlavor::Array($f) => $e,
            FifoFlavor::List($f) => $e,
        }
    };
}

impl<T> Flavor<T> for FifoFlavor<T> {
    #[inline]
    fn try_push(&self, value: T) -> Result<(), T> {
        match self {
            FifoFlavor::Array(f) => f.try_push(value),
            FifoFlavor::List(f) => {
                f.push(value);
                Ok(())
            }
        }
    }
    #[inline]
    fn try_pop(&self) -> Option<T> {
        dispatch!(self, f => f.try_pop())
    }
    fn len(&self) -> usize {
        dispatch!(self, f => f.len())
    }
    #[inline]
    fn is_empty(&self) -> bool {
        dispatch!(self, f => f.is_empty())
    }
    #[inline]
    fn is_full(&self) -> bool {
        match self {
            FifoFlavor::Array(f) => f.is_full(),
            FifoFlavor::List(_) => false,
        }
    }
    fn capacity(&self) -> Option<usize> {
        match self {
            FifoFlavor::Array(f) => Some(f.capacity()),
            FifoFlavor::List(_) => None,
        }
    }
    #[inline]
    fn pushed(&self) -> u64 {
        dispatch!(self, f => f.pushed())
    }
    #[inline]
    fn popped(&self) -> u64 {
        dispatch!(self, f => f.popped())
    }
}

/// Spinning for the short windows in which another thread is half-way through an
/// operation (crossbeam-utils' `Backoff`, reduced). Under loom every step is a yield,
/// so the model checker sees a scheduling point instead of a busy loop.
pub(crate) struct Backoff {
    #[cfg_attr(concur_loom, allow(dead_code))]
    step: u32,
}

impl Backoff {
    #[cfg_attr(concur_loom, allow(dead_code))]
    const SPIN_LIMIT: u32 = 6;

    #[inline]
    pub(crate) fn new() -> Self {
        Backoff { step: 0 }
    }

    /// Back off after losing a race (a CAS failed).
    #[inline]
    pub(crate) fn spin(&mut self) {
        #[cfg(not(concur_loom))]
        {
            for _ in 0..1u32 << self.step.min(Self::SPIN_LIMIT) {
                std::hint::spin_loop();
            }
            if self.step <= Self::SPIN_LIMIT {
                self.step += 1;
            }
        }
        #[cfg(concur_loom)]
        crate::shim::yield_now();
    }

    /// Wait for another thread to finish its step (it may have been preempted).
    #[inline]
    pub(crate) fn snooze(&mut self) {
        #[cfg(not(concur_loom))]
        {
            if self.step <= Self::SPIN_LIMIT {
                for _ in 0..1u32 << self.step {
                    std::hint::spin_loop();
                }
                self.step += 1;
            } else {
                crate::shim::yield_now();
            }
        }
        #[cfg(concur_loom)]
        crate::shim::yield_now();
    }
}
