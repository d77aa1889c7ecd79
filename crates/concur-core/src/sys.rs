//! The OS-specific part of the thread tier: native thread ids and recognising the main
//! thread (used by `ident` and `thread`).
//!
//! Linux: `gettid()` (glibc >= 2.30, musl); the main thread is the one whose tid is the
//! pid, and it always gets the reserved ident `MAIN_IDENT`, so `main_thread()` knows
//! it from any thread even if main never called concur. Elsewhere: unsupported, `native_id` is `None` and the main thread
//! is recognised lazily (see `registry::main_thread`).

#[cfg(target_os = "linux")]
mod imp {
    unsafe extern "C" {
        fn gettid() -> i32;
    }

    /// The calling thread's OS id.
    pub(crate) fn native_id() -> Option<u64> {
        // SAFETY: `gettid` has no preconditions and cannot fail.
        let tid = unsafe { gettid() };
        u64::try_from(tid).ok()
    }

    /// Whether the calling thread is the process's main thread (its tid is the pid).
    pub(crate) fn is_main_os_thread() -> bool {
        native_id() == Some(u64::from(std::process::id()))
    }

    /// Whether this platform tells the main thread from any thread (so its ident is
    /// the reserved one, see `ident.rs`).
    pub(crate) const KNOWS_MAIN_THREAD: bool = true;

    pub(crate) fn main_native_id() -> Option<u64> {
        Some(u64::from(std::process::id()))
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub(crate) fn native_id() -> Option<u64> {
        None
    }
    pub(crate) const KNOWS_MAIN_THREAD: bool = false;
    pub(crate) fn is_main_os_thread() -> bool {
        false
    }
    pub(crate) fn main_native_id() -> Option<u64> {
        None
    }
}

pub(crate) use imp::{KNOWS_MAIN_THREAD, is_main_os_thread, main_native_id, native_id};
