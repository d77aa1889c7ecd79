//! The OS-specific part of `thread`: native thread ids and recognising the main thread.
//!
//! Linux: `gettid()` (glibc >= 2.30, musl), and a load-time constructor (an
//! `.init_array` entry, run by the dynamic loader on the main thread before `main`) that
//! records the main thread's [`get_ident`](super::get_ident), so `main_thread()` knows
//! it from any thread. Elsewhere: unsupported, `native_id` is `None` and the main thread
//! is recognised lazily (see `registry::main_thread`).

#[cfg(target_os = "linux")]
mod imp {
    use std::sync::atomic::{AtomicU64, Ordering};

    unsafe extern "C" {
        fn gettid() -> i32;
    }

    /// The calling thread's OS id.
    pub(crate) fn native_id() -> Option<u64> {
        // SAFETY: `gettid` has no preconditions and cannot fail.
        let tid = unsafe { gettid() };
        u64::try_from(tid).ok()
    }

    /// The main thread's ident, recorded before `main` (0: the constructor did not run).
    static MAIN_IDENT: AtomicU64 = AtomicU64::new(0);

    /// Runs on the main thread before `main` (also when concur is loaded later with
    /// `dlopen`, on the loading thread: hence the tid == pid check). It must not panic:
    /// it only reads two ids and stores one.
    extern "C" fn record_main_thread() {
        if native_id() == Some(u64::from(std::process::id())) {
            MAIN_IDENT.store(super::super::get_ident(), Ordering::Relaxed);
        }
    }

    #[used]
    // SAFETY: `.init_array` holds pointers to `extern "C" fn()`s run once at load time,
    // which is exactly the type of this static.
    #[unsafe(link_section = ".init_array")]
    static RECORD_MAIN_THREAD: extern "C" fn() = record_main_thread;

    pub(crate) fn main_ident() -> Option<u64> {
        match MAIN_IDENT.load(Ordering::Relaxed) {
            0 => None,
            v => Some(v),
        }
    }

    pub(crate) fn main_native_id() -> Option<u64> {
        Some(u64::from(std::process::id()))
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub(crate) fn native_id() -> Option<u64> {
        None
    }
    pub(crate) fn main_ident() -> Option<u64> {
        None
    }
    pub(crate) fn main_native_id() -> Option<u64> {
        None
    }
}

pub(crate) use imp::{main_ident, main_native_id, native_id};
