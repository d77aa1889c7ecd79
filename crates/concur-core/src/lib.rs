//! concur-core: the thread tier of concur — Python's `threading`, `queue` and
//! `concurrent.futures`, rebuilt in Rust.

pub mod deadlock;
pub(crate) mod shim;
pub mod sync;
pub mod thread;
pub(crate) mod time;
