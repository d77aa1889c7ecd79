//! concur: Python's concurrency stack rebuilt in Rust.

pub use concur_core::{deadlock, sync, thread};
