//! The one place concur-core takes its atomics, `Arc`, thread-locals and thread
//! parking from, so that `RUSTFLAGS="--cfg concur_loom"` can swap every one of them for
//! [loom]'s model-checked versions (crossbeam and tokio do the same).
//!
//! Everything in the crate that takes part in a wait/wake protocol must import from
//! here, never from `std::sync::atomic` or `parking_lot_core` directly.
//!
//! [loom]: https://docs.rs/loom

#![allow(unused_imports)]

pub(crate) mod cell;
pub(crate) mod park;

#[cfg(not(concur_loom))]
pub(crate) mod atomic {
    pub(crate) use std::sync::atomic::{
        AtomicBool, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
    };
}
#[cfg(concur_loom)]
pub(crate) mod atomic {
    pub(crate) use loom::sync::atomic::{
        AtomicBool, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
    };
}

#[cfg(concur_loom)]
pub(crate) use loom::sync::Arc;
#[cfg(not(concur_loom))]
pub(crate) use std::sync::Arc;

/// A `thread_local!` that loom can see (loom runs its threads as coroutines on one OS
/// thread, so a std thread-local would be shared between model threads).
#[cfg(not(concur_loom))]
macro_rules! shim_thread_local {
    ($($t:tt)*) => { std::thread_local!($($t)*); };
}
#[cfg(concur_loom)]
macro_rules! shim_thread_local {
    ($($t:tt)*) => { loom::thread_local!($($t)*); };
}
pub(crate) use shim_thread_local as thread_local;

/// Yields the processor (a scheduling point under loom).
#[inline]
pub(crate) fn yield_now() {
    #[cfg(not(concur_loom))]
    std::thread::yield_now();
    #[cfg(concur_loom)]
    loom::thread::yield_now();
}
