//! `Local<T>`: Python's `threading.local`, a value per thread behind one shared handle
//! (after CPython's `Lib/_threading_local.py` design: a per-thread table of values, keyed
//! by the local object, with weak links both ways so either side can go first).
//!
//! # Design
//! Each OS thread owns a *slot table* (`Arc<Mutex<HashMap<local id, Entry>>>`) held by
//! a thread-local; each `Local` keeps `Weak` links to the tables that hold one of its
//! values. Values are therefore dropped
//! - when their thread exits (the thread-local drops its table, on that thread), or
//! - when the last `Local` handle is dropped (it removes its entry from every live table,
//!   on the dropping thread: hence `T: Send`), or
//! - by `reset_thread_locals()`, which drops every value of the calling thread. The
//!   thread pools call it between tasks, so that each task starts with fresh values, as
//!   if it ran on a new thread (a pool worker outlives many tasks).
//!
//! An entry is a boxed `RefCell<T>` stored as a raw pointer, so that `with` can run user
//! code without holding the table's mutex (user code may use other `Local`s, or this
//! one, re-entrantly). Values are always dropped with no table mutex held.

use super::registry::PoisonFree;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// One thread's value of one `Local`: a `Box<RefCell<T>>` with its type erased.
struct Entry {
    ptr: *mut (),
    drop_fn: unsafe fn(*mut ()),
    borrowed: unsafe fn(*mut ()) -> bool,
}

// SAFETY: an `Entry` owns a `RefCell<T>` with `T: Send` (the only constructor,
// `Entry::new`, requires it), and `RefCell<T>: Send` when `T: Send`. Shared access only
// ever happens on the owning thread (through `Local::with*`); other threads only drop it.
unsafe impl Send for Entry {}

impl Entry {
    fn new<T: Send>(value: T) -> Entry {
        unsafe fn drop_fn<T>(p: *mut ()) {
            // SAFETY: `p` came from `Box::into_raw(Box<RefCell<T>>)` in `Entry::new` and
            // is dropped once, by `Entry::drop`.
            drop(unsafe { Box::from_raw(p.cast::<RefCell<T>>()) });
        }
        unsafe fn borrowed<T>(p: *mut ()) -> bool {
            // SAFETY: `p` points to a live `RefCell<T>` (the entry is not dropped yet).
            unsafe { &*p.cast::<RefCell<T>>() }
                .try_borrow_mut()
                .is_err()
        }
        Entry {
            ptr: Box::into_raw(Box::new(RefCell::new(value))).cast(),
            drop_fn: drop_fn::<T>,
            borrowed: borrowed::<T>,
        }
    }

    fn is_borrowed(&self) -> bool {
        // SAFETY: `self.ptr` is live while `self` is; `borrowed` matches its type.
        unsafe { (self.borrowed)(self.ptr) }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        // SAFETY: `drop_fn` matches the pointer's type and runs once.
        unsafe { (self.drop_fn)(self.ptr) }
    }
}

type Table = Mutex<HashMap<u64, Entry>>;

std::thread_local! {
    static TABLE: Arc<Table> = Arc::new(Mutex::new(HashMap::new()));
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

struct Inner<T> {
    id: u64,
    init: Box<dyn Fn() -> T + Send + Sync>,
    /// The tables that (may) hold a value of this local.
    tables: Mutex<Vec<Weak<Table>>>,
}

impl<T> Drop for Inner<T> {
    fn drop(&mut self) {
        let tables = std::mem::take(&mut *self.tables.lock_ok());
        for t in tables.iter().filter_map(Weak::upgrade) {
            let entry = t.lock_ok().remove(&self.id);
            drop(entry);
        }
    }
}

/// A value per thread behind one shared handle: Python's `threading.local`.
///
/// Each thread that touches the `Local` sees its own `T`, created by the `init`
/// closure on the thread's first access. Clones are handles to the same local. A
/// thread's value is dropped when that thread exits, or when the last handle is
/// dropped, whichever comes first (see the module source for the design). Nothing
/// blocks except briefly on a per-thread table lock.
///
/// ```
/// use concur::thread::{self, Local};
/// let count = Local::new(|| 0u32);
/// count.with_mut(|c| *c += 5);
/// let c2 = count.clone();
/// let other = thread::spawn(move || c2.get()).join().unwrap();
/// assert_eq!(other, 0);          // a fresh value in the new thread
/// assert_eq!(count.get(), 5);    // ours is untouched
/// ```
pub struct Local<T: Send + 'static> {
    inner: Arc<Inner<T>>,
}

impl<T: Send + 'static> Clone for Local<T> {
    fn clone(&self) -> Self {
        Local {
            inner: self.inner.clone(),
        }
    }
}

impl<T: Send + 'static> Local<T> {
    /// A local whose value in each thread starts as `init()`; `init` runs lazily, on a
    /// thread's first access.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// static INITS: AtomicUsize = AtomicUsize::new(0);
    /// let v = concur::thread::Local::new(|| {
    ///     INITS.fetch_add(1, Ordering::Relaxed);
    ///     vec![1, 2]
    /// });
    /// assert_eq!(INITS.load(Ordering::Relaxed), 0); // nothing created yet
    /// assert_eq!(v.get(), [1, 2]);
    /// assert_eq!(v.with(|v| v.len()), 2);            // same value, no second init
    /// assert_eq!(INITS.load(Ordering::Relaxed), 1);
    /// ```
    pub fn new(init: impl Fn() -> T + Send + Sync + 'static) -> Self {
        Local {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                init: Box::new(init),
                tables: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The current thread's value cell, created on first use.
    ///
    /// Returns `None` if the thread's table is already destroyed (a thread-local
    /// destructor running after it).
    fn cell(&self) -> Option<*const RefCell<T>> {
        let table = TABLE.try_with(Arc::clone).ok()?;
        let id = self.inner.id;
        if let Some(e) = table.lock_ok().get(&id) {
            return Some(e.ptr.cast_const().cast());
        }
        // Run `init` unlocked: it may use other locals.
        let fresh = Entry::new((self.inner.init)());
        let mut map = table.lock_ok();
        let mut unused = None;
        let ptr = match map.get(&id) {
            Some(e) => {
                unused = Some(fresh); // `init` itself initialised this local
                e.ptr
            }
            None => {
                let p = fresh.ptr;
                map.insert(id, fresh);
                let mut tables = self.inner.tables.lock_ok();
                tables.retain(|w| w.strong_count() > 0);
                tables.push(Arc::downgrade(&table));
                p
            }
        };
        drop(map);
        drop(unused);
        Some(ptr.cast_const().cast())
    }

    /// Calls `f` with the current thread's value (created by `init` on first use).
    ///
    /// # Panics
    /// If the value is mutably borrowed by an enclosing [`with_mut`](Local::with_mut) on
    /// this thread, or if `init` panics.
    ///
    /// ```
    /// let name = concur::thread::Local::new(|| String::from("x"));
    /// assert_eq!(name.with(|s| s.len()), 1);
    /// ```
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        match self.cell() {
            // SAFETY: the entry lives until this thread's table drops it (thread exit:
            // not during this call), `reset_thread_locals`/`take` (both refuse borrowed
            // entries, and we hold a borrow), or the last handle drops (we hold `self`).
            Some(cell) => f(&unsafe { &*cell }.borrow()),
            None => f(&(self.inner.init)()),
        }
    }

    /// Calls `f` with the current thread's value, mutably.
    ///
    /// # Panics
    /// If the value is already borrowed by an enclosing `with`/`with_mut` on this thread,
    /// or if `init` panics.
    ///
    /// ```
    /// let v = concur::thread::Local::new(Vec::new);
    /// v.with_mut(|v| v.push(1));
    /// assert_eq!(v.with(|v| v.len()), 1);
    /// ```
    pub fn with_mut<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        match self.cell() {
            // SAFETY: as in `with`.
            Some(cell) => f(&mut unsafe { &*cell }.borrow_mut()),
            None => f(&mut (self.inner.init)()),
        }
    }

    /// Replaces the current thread's value with `value`.
    ///
    /// # Panics
    /// If the value is borrowed by an enclosing `with`/`with_mut` on this thread.
    ///
    /// ```
    /// let v = concur::thread::Local::new(|| 1);
    /// v.set(2);
    /// assert_eq!(v.get(), 2);
    /// ```
    pub fn set(&self, value: T) {
        let old = self.with_mut(|v| std::mem::replace(v, value));
        drop(old);
    }

    /// Removes the current thread's value and returns it (`None` if this thread had
    /// none); the next access creates a fresh one with `init`.
    ///
    /// # Panics
    /// If the value is borrowed by an enclosing `with`/`with_mut` on this thread.
    ///
    /// ```
    /// let v = concur::thread::Local::new(|| 1);
    /// assert_eq!(v.take(), None);
    /// v.set(5);
    /// assert_eq!(v.take(), Some(5));
    /// assert_eq!(v.get(), 1);
    /// ```
    pub fn take(&self) -> Option<T> {
        let table = TABLE.try_with(Arc::clone).ok()?;
        let mut map = table.lock_ok();
        let borrowed = map.get(&self.inner.id).is_some_and(Entry::is_borrowed);
        if borrowed {
            drop(map);
            panic!("Local::take: the value is borrowed by an enclosing with/with_mut");
        }
        let entry = map.remove(&self.inner.id)?;
        drop(map);
        let ptr = entry.ptr.cast::<RefCell<T>>();
        std::mem::forget(entry);
        // SAFETY: `ptr` came from `Box::into_raw(Box<RefCell<T>>)` and the entry that
        // owned it was forgotten, so ownership moves back here exactly once.
        let cell = unsafe { Box::from_raw(ptr) };
        Some(cell.into_inner())
    }

    /// A clone of the current thread's value.
    ///
    /// # Panics
    /// If the value is mutably borrowed by an enclosing `with_mut` on this thread.
    ///
    /// ```
    /// let v = concur::thread::Local::new(|| 'a');
    /// assert_eq!(v.get(), 'a');
    /// ```
    pub fn get(&self) -> T
    where
        T: Clone,
    {
        self.with(T::clone)
    }
}

impl<T: Send + 'static> fmt::Debug for Local<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Local")
            .field("id", &self.inner.id)
            .finish_non_exhaustive()
    }
}

/// Drops every [`Local`] value of the current thread, so that the next access in each
/// local creates a fresh one: what a thread pool calls between tasks so every task sees
/// a new thread's locals. Values borrowed by an enclosing `with` are kept. Returns how
/// many values were dropped.
#[allow(dead_code)] // used by the thread pools (a later issue) and the tests below
pub(crate) fn reset_thread_locals() -> usize {
    let Ok(table) = TABLE.try_with(Arc::clone) else {
        return 0;
    };
    let mut map = table.lock_ok();
    let ids: Vec<u64> = map
        .iter()
        .filter(|(_, e)| !e.is_borrowed())
        .map(|(id, _)| *id)
        .collect();
    let dropped: Vec<Entry> = ids.iter().filter_map(|id| map.remove(id)).collect();
    drop(map);
    let n = dropped.len();
    drop(dropped);
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn reset_drops_this_threads_values_only_and_reinits() {
        let drops = Arc::new(AtomicUsize::new(0));
        let d = drops.clone();
        let a = Local::new(move || Counted(d.clone()));
        let b = Local::new(|| 7);
        a.with(|_| ());
        b.set(9);
        let n = reset_thread_locals();
        assert!(n >= 2);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert_eq!(b.get(), 7, "fresh value after reset");
    }

    #[test]
    fn reset_keeps_borrowed_entry() {
        let a = Local::new(|| 1);
        a.with(|v| {
            reset_thread_locals();
            assert_eq!(*v, 1);
        });
        a.with_mut(|v| *v = 3);
        assert_eq!(a.get(), 3);
    }

    #[test]
    fn drop_of_local_drops_values_in_other_threads() {
        let drops = Arc::new(AtomicUsize::new(0));
        let d = drops.clone();
        let a = Local::new(move || Counted(d.clone()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let a2 = a.clone();
        let h = std::thread::spawn(move || {
            a2.with(|_| ());
            drop(a2);
            ready_tx.send(()).unwrap();
            let _ = go_rx.recv();
        });
        ready_rx.recv().unwrap();
        a.with(|_| ());
        drop(a);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            2,
            "both values dropped with the local"
        );
        drop(go_tx);
        h.join().unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn reentrant_init_and_nested_locals() {
        let inner = Local::new(|| 10);
        let i2 = inner.clone();
        let outer = Local::new(move || i2.get() + 1);
        assert_eq!(outer.with(|o| inner.with(|i| o + i)), 21);
    }

    #[test]
    #[should_panic(expected = "borrowed")]
    fn take_inside_with_panics() {
        let a = Local::new(|| 1);
        a.with(|_| {
            a.take();
        });
    }
}
