//! # concur-process
//!
//! Python's `multiprocessing`, rebuilt in Rust: the process tier of `concur`.
//! Linux is the target; everything that talks to the OS lives under `sys`.
#[allow(dead_code)] // used by connections and shared memory as they land
mod fds;
mod sys;

// -- processes and connections ------------------------------------------------------
mod connection;
mod error;
mod process;
pub use connection::{Connection, ConnectionError, DEFAULT_MAX_FRAME, Pipe};
pub use error::ProcessError;
pub use process::{Process, ProcessBuilder, StartMethod};
// -----------------------------------------------------------------------------------
