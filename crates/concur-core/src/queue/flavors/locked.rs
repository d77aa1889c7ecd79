//! The lock-protected flavor: a container behind a [`RawLock`], used for `LifoQueue`
//! and `PriorityQueue`.
//!
//! The lock only guards the container. Beside it, three atomics are written while the
//! lock is held and read without it: `len` (SeqCst, the "empty / full" fact the
//! sleeper handshake in `chan.rs` re-checks under the parking lock, which may not take
//! this lock), `pushed` and `popped` (monotonic counts for task accounting).

use super::Flavor;
use crate::shim::atomic::{AtomicU64, AtomicUsize, Ordering};
use crate::shim::cell::UnsafeCell;
use crate::sync::raw::RawLock;
use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;

/// A container with one order of taking items out.
pub(crate) trait Store: Default {
    type Item;
    fn push(&mut self, item: Self::Item);
    fn pop(&mut self) -> Option<Self::Item>;
}

/// Last in, first out.
pub(crate) struct Lifo<T>(Vec<T>);

impl<T> Default for Lifo<T> {
    fn default() -> Self {
        Lifo(Vec::new())
    }
}

impl<T> Store for Lifo<T> {
    type Item = T;
    fn push(&mut self, item: T) {
        self.0.push(item);
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop()
    }
}

/// Smallest first; equal items in insertion order (an insertion sequence number breaks
/// ties, which Python's `heapq`-based `PriorityQueue` does not promise).
pub(crate) struct Heap<T: Ord> {
    heap: BinaryHeap<Entry<T>>,
    seq: u64,
}

impl<T: Ord> Default for Heap<T> {
    fn default() -> Self {
        Heap {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }
}

struct Entry<T> {
    item: T,
    seq: u64,
}

impl<T: Ord> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        // `BinaryHeap` is a max-heap: reverse, so the smallest (item, seq) is on top.
        other
            .item
            .cmp(&self.item)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}
impl<T: Ord> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl<T: Ord> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}
impl<T: Ord> Eq for Entry<T> {}

impl<T: Ord> Store for Heap<T> {
    type Item = T;
    fn push(&mut self, item: T) {
        let seq = self.seq;
        self.seq += 1;
        self.heap.push(Entry { item, seq });
    }
    fn pop(&mut self) -> Option<T> {
        self.heap.pop().map(|e| e.item)
    }
}

/// A [`Store`] behind a [`RawLock`], with lock-free counters (see the module docs).
pub(crate) struct Locked<S> {
    lock: RawLock,
    store: UnsafeCell<S>,
    len: AtomicUsize,
    pushed: AtomicU64,
    popped: AtomicU64,
    cap: usize,
}

// SAFETY: the store is only touched with `lock` held, one thread at a time; items move
// between threads, hence `S: Send`.
unsafe impl<S: Send> Send for Locked<S> {}
// SAFETY: as above; `&Locked` never exposes a reference into the store.
unsafe impl<S: Send> Sync for Locked<S> {}

impl<S: Store> Locked<S> {
    /// An empty store holding at most `cap` items (`None`: unbounded).
    pub(crate) fn new(cap: Option<usize>) -> Self {
        Locked {
            lock: RawLock::new(),
            store: UnsafeCell::new(S::default()),
            len: AtomicUsize::new(0),
            pushed: AtomicU64::new(0),
            popped: AtomicU64::new(0),
            cap: cap.unwrap_or(usize::MAX),
        }
    }

    /// Runs `f` on the store with the lock held.
    #[inline]
    fn locked<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        self.lock.lock();
        // SAFETY: the lock is held, so this is the only access to the store.
        let r = self.store.with_mut(|s| f(unsafe { &mut *s }));
        self.lock.unlock();
        r
    }
}

impl<S: Store> Flavor<S::Item> for Locked<S> {
    #[inline]
    fn try_push(&self, value: S::Item) -> Result<(), S::Item> {
        self.locked(|s| {
            let len = self.len.load(Ordering::Relaxed);
            if len >= self.cap {
                return Err(value);
            }
            s.push(value);
            self.len.store(len + 1, Ordering::SeqCst);
            let p = self.pushed.load(Ordering::Relaxed);
            self.pushed.store(p + 1, Ordering::SeqCst);
            Ok(())
        })
    }

    #[inline]
    fn try_pop(&self) -> Option<S::Item> {
        if self.len.load(Ordering::Relaxed) == 0 {
            // Cheap early out; `chan.rs` re-checks with SeqCst before sleeping.
            return None;
        }
        self.locked(|s| {
            let v = s.pop()?;
            let len = self.len.load(Ordering::Relaxed);
            self.len.store(len - 1, Ordering::SeqCst);
            let p = self.popped.load(Ordering::Relaxed);
            self.popped.store(p + 1, Ordering::SeqCst);
            Some(v)
        })
    }

    fn len(&self) -> usize {
        self.len.load(Ordering::SeqCst)
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.len.load(Ordering::SeqCst) == 0
    }

    #[inline]
    fn is_full(&self) -> bool {
        self.len.load(Ordering::SeqCst) >= self.cap
    }

    fn capacity(&self) -> Option<usize> {
        (self.cap != usize::MAX).then_some(self.cap)
    }

    #[inline]
    fn pushed(&self) -> u64 {
        self.pushed.load(Ordering::SeqCst)
    }

    #[inline]
    fn popped(&self) -> u64 {
        self.popped.load(Ordering::Relaxed)
    }
}
