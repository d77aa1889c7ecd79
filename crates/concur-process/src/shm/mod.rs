//! Shared memory: raw blocks ([`SharedMemory`]), typed values and arrays living in them
//! ([`Value`], [`Array`]) and sealed read-only arrays for zero-copy hand-off
//! ([`FrozenArray`]) — Python's `multiprocessing.shared_memory` and
//! `multiprocessing.sharedctypes`.
//!
//! Every type here is a handle to memory mapped `MAP_SHARED`: clones in one process
//! share one mapping; a handle serialized to another process (as a process argument or
//! over a connection) carries the block's file descriptor, and the receiver maps the
//! same memory. Nothing is copied, however large the block.
//!
//! Blocks are anonymous by default (`memfd_create`): they have no name, and the kernel
//! frees them when the last descriptor and mapping are gone — even if every process
//! using them is killed. Named blocks ([`SharedMemory::create`]) live in `/dev/shm`
//! until [`SharedMemory::unlink`], as in Python.
//!
//! # Access rules
//!
//! Other processes change shared memory behind Rust's back, so safe access copies:
//! [`SharedMemory::read_at`]/[`write_at`](SharedMemory::write_at), [`Value::get`]/
//! [`set`](Value::set), [`Array::get`]/[`to_vec`](Array::to_vec). Copies are free of
//! data races (they use atomic loads and stores) but not atomic as a whole: without a
//! lock, a reader racing a writer may see a mix of old and new bytes (always a valid
//! value of a plain-data type). References into the memory are handed out only where
//! that is sound: under the value's lock ([`Array::with_lock`]) or for sealed
//! read-only memory ([`FrozenArray`]); everything else is `unsafe` with its rules
//! written down ([`SharedMemory::as_slice`]).
//!
//! All of this assumes the processes sharing a block cooperate: a process that writes
//! the memory behind the API's back (or maps it and scribbles on a lock) can break
//! the guarantees of every process using it, as raw pointers could in one program.

mod array;
mod frozen;
mod value;

#[cfg(test)]
mod tests;

pub use crate::block::{AccessError, SharedMemory};
pub use array::{Array, Locking};
pub use frozen::FrozenArray;
pub use value::Value;
