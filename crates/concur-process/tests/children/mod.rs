//! Child processes for the integration tests that use `Process` itself: a daemon child
//! (killed if a test drops it early) and a bounded join.

use concur_process::Process;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Starts `f(args)` in a daemon child (killed if the test drops it early).
pub(crate) fn spawn<F, A, R>(f: F, args: A) -> Process<R>
where
    F: Fn(A) -> R + Copy + 'static,
    A: Serialize + DeserializeOwned,
    R: Serialize + DeserializeOwned,
{
    Process::builder()
        .daemon(true)
        .spawn(f, args)
        .expect("spawn a child")
}

/// Joins `p` (bounded by [`LIMIT`](super::common::LIMIT)) and returns its result; a
/// child's panic fails the test.
#[track_caller]
pub(crate) fn join<R: Serialize + DeserializeOwned>(p: &Process<R>) -> R {
    p.join_timeout(super::common::LIMIT)
        .expect("the child finished cleanly")
}
