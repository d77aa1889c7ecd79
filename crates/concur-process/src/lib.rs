//! # concur-process
//!
//! Python's `multiprocessing`, rebuilt in Rust: the process tier of `concur`.
//! Linux is the target; everything that talks to the OS lives under `sys`.
#[allow(dead_code)] // used by connections and shared memory as they land
mod fds;
mod sys;

// Shared memory and process-shared synchronisation (`shm`, `sync`).
pub mod shm;
pub mod sync;
pub use shm::{Array, FrozenArray, SharedMemory, Value};
pub use sync::{Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore};
