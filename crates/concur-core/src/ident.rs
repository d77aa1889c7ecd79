//! Thread identity: a process-unique, never-reused, non-zero `u64` per thread. Below
//! `thread` (which re-exports [`get_ident`]) and `deadlock` (which names threads by it).

use crate::shim::atomic::{AtomicU64, Ordering};
use std::cell::Cell;

/// The ident reserved for the process's main thread (on platforms that can tell which
/// thread that is), so any thread can name it without main having called concur.
pub(crate) const MAIN_IDENT: u64 = 1;

#[cfg(not(concur_loom))]
static NEXT_IDENT: AtomicU64 = AtomicU64::new(MAIN_IDENT + 1);
#[cfg(concur_loom)]
loom::lazy_static! {
    static ref NEXT_IDENT: AtomicU64 = AtomicU64::new(MAIN_IDENT + 1);
}

#[cfg(not(concur_loom))]
std::thread_local! {
    // `const`: no lazy-initialisation check on the hot path (RLock calls this on every
    // acquire).
    static IDENT: Cell<u64> = const { Cell::new(0) };
}
#[cfg(concur_loom)]
loom::thread_local! {
    static IDENT: Cell<u64> = Cell::new(0);
}

/// The identifier of the current thread: non-zero, unique for the life of the process
/// (unlike Python's `get_ident`, never reused after a thread exits).
///
/// ```
/// let me = concur::thread::get_ident();
/// assert_ne!(me, 0);
/// assert_eq!(me, concur::thread::get_ident());
/// let other = std::thread::spawn(concur::thread::get_ident).join().unwrap();
/// assert_ne!(me, other);
/// ```
#[inline]
pub fn get_ident() -> u64 {
    IDENT.with(|c| {
        let v = c.get();
        if v != 0 {
            v
        } else {
            let v = if !cfg!(concur_loom) && crate::sys::is_main_os_thread() {
                MAIN_IDENT
            } else {
                NEXT_IDENT.fetch_add(1, Ordering::Relaxed)
            };
            c.set(v);
            v
        }
    })
}

/// The main thread's ident where the platform tells the main thread apart (the
/// reserved [`MAIN_IDENT`]), else `None`.
pub(crate) fn main_ident() -> Option<u64> {
    crate::sys::KNOWS_MAIN_THREAD.then_some(MAIN_IDENT)
}
