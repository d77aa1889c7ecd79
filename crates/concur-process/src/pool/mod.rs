//! Process pools: [`ProcessPoolExecutor`] (Python's
//! `concurrent.futures.ProcessPoolExecutor`) and [`ProcessPool`] (Python's
//! `multiprocessing.Pool`), on one engine (`engine`) that survives worker crashes,
//! enforces per-task time limits and recycles workers.

mod engine;
mod executor;
mod slots;
mod wire;
mod worker;

pub use executor::{ProcessPoolBuilder, ProcessPoolExecutor};
