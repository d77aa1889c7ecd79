//! Deadlock detection (CWE-833) for concur's locks and thread joins.
//!
//! STUB: the interface the locks and joins call. The real detector replaces the bodies.

use crate::shim::atomic::{AtomicU8, AtomicU64, Ordering};
use std::panic::Location;

/// What the detector does when it finds a lock-order inversion or a wait-for cycle.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// No checks at all (the default): one relaxed atomic load per lock operation.
    Off,
    /// Report through `tracing` and the report hook, then carry on.
    Warn,
    /// Report, then panic in the thread that closed the cycle.
    Panic,
}

const UNINIT: u8 = u8::MAX;
const OFF: u8 = 0;
const WARN: u8 = 1;
const PANIC: u8 = 2;

#[cfg(not(concur_loom))]
static MODE: AtomicU8 = AtomicU8::new(UNINIT);

/// Sets the detection mode for the whole process.
pub fn set_mode(mode: Mode) {
    #[cfg(not(concur_loom))]
    MODE.store(
        match mode {
            Mode::Off => OFF,
            Mode::Warn => WARN,
            Mode::Panic => PANIC,
        },
        Ordering::Relaxed,
    );
    #[cfg(concur_loom)]
    let _ = mode;
}

/// The current mode (read from `CONCUR_DEADLOCK` the first time it is needed).
pub fn mode() -> Mode {
    #[cfg(not(concur_loom))]
    {
        let mut m = MODE.load(Ordering::Relaxed);
        if m == UNINIT {
            init_from_env();
            m = MODE.load(Ordering::Relaxed);
        }
        match m {
            WARN => Mode::Warn,
            PANIC => Mode::Panic,
            _ => Mode::Off,
        }
    }
    #[cfg(concur_loom)]
    Mode::Off
}

#[cfg(not(concur_loom))]
#[cold]
fn init_from_env() {
    let m = match std::env::var("CONCUR_DEADLOCK").as_deref() {
        Ok("warn") => WARN,
        Ok("panic") => PANIC,
        _ => OFF,
    };
    let _ = MODE.compare_exchange(UNINIT, m, Ordering::Relaxed, Ordering::Relaxed);
}

/// True when lock operations must call the hooks below. One relaxed load when off.
#[inline(always)]
pub(crate) fn enabled() -> bool {
    #[cfg(not(concur_loom))]
    {
        let m = MODE.load(Ordering::Relaxed);
        m != OFF && (m != UNINIT || mode() != Mode::Off)
    }
    #[cfg(concur_loom)]
    false
}

#[cfg(not(concur_loom))]
static NEXT_LOCK_ID: AtomicU64 = AtomicU64::new(1);

/// Identity of one lock for the detector: a process-unique id, an optional name and
/// the place it was created.
#[derive(Debug)]
pub(crate) struct LockMeta {
    pub(crate) id: u64,
    pub(crate) kind: &'static str,
    pub(crate) name: Option<Box<str>>,
    pub(crate) site: &'static Location<'static>,
}

impl LockMeta {
    #[track_caller]
    pub(crate) fn new(kind: &'static str, name: Option<Box<str>>) -> Self {
        #[cfg(not(concur_loom))]
        let id = NEXT_LOCK_ID.fetch_add(1, Ordering::Relaxed);
        #[cfg(concur_loom)]
        let id = 0;
        LockMeta {
            id,
            kind,
            name,
            site: Location::caller(),
        }
    }
}

/// The current thread is about to block acquiring `lock` (not a re-entrant acquire).
pub(crate) fn before_acquire(_lock: &LockMeta) {}
/// The current thread now holds `lock`.
pub(crate) fn after_acquire(_lock: &LockMeta) {}
/// A blocking acquire announced by `before_acquire` gave up (timeout).
pub(crate) fn acquire_abandoned(_lock: &LockMeta) {}
/// `lock` was released (by whichever thread).
pub(crate) fn on_release(_lock: &LockMeta) {}
/// The current thread is about to block joining the thread `ident`.
pub(crate) fn before_join(_ident: u64) {}
/// The join announced by `before_join` ended (joined or timed out).
pub(crate) fn after_join(_ident: u64) {}
