//! The cluster's shared objects: [`Lock`], [`Semaphore`], [`BoundedSemaphore`],
//! [`Event`], [`Barrier`], [`Queue`] and [`Dict`], on the same Redis as the executor,
//! with the API of their thread and process counterparts (see the crate docs,
//! "Shared objects").
//!
//! One file per object; [`ctx`] holds what they share (names and keys, connections,
//! retries, write sessions) and [`renew`] the lease renewer. Every object's keys and
//! scripts are described in its file.

mod barrier;
mod ctx;
mod dict;
mod event;
mod lock;
mod queue;
mod queue_errors;
mod queue_scripts;
mod renew;
mod semaphore;

pub use barrier::{Barrier, BarrierBuilder};
pub use dict::Dict;
pub use event::Event;
pub use lock::{Lock, LockBuilder, LockGuard};
pub use queue::{AckError, GetError, PutError, Queue, QueueBuilder};
pub use semaphore::{
    BoundedSemaphore, BoundedSemaphoreBuilder, Semaphore, SemaphoreBuilder, SemaphoreGuard,
};
