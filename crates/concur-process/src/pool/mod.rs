//! Process pools: [`ProcessPoolExecutor`] (Python's
//! `concurrent.futures.ProcessPoolExecutor`) and [`ProcessPool`] (Python's
//! `multiprocessing.Pool`), on one engine (`engine`) that survives worker crashes,
//! enforces per-task time limits and recycles workers.

mod engine;
pub(crate) mod executor;
mod mp_pool;
mod policy;
mod slots;
mod task;
pub(crate) mod wire;
mod worker;

pub use executor::{AbortHandle, ProcessPoolBuilder, ProcessPoolExecutor};
pub use mp_pool::{IMapUnordered, ProcessPool};
