//! Test support shared by the integration tests: bounded waits, so that no test can
//! hang CI. A deadlock fails the test with a message instead.
#![allow(dead_code)]

use std::sync::mpsc;
use std::time::Duration;

/// The default bound for a test body that should finish in well under a second.
pub(crate) const LIMIT: Duration = Duration::from_secs(20);

/// Runs `f` on its own thread and returns its result, or panics with a message naming
/// the probable deadlock if it does not finish within `limit`. A panic in `f` is
/// re-raised here with its original payload.
#[track_caller]
pub(crate) fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let h = std::thread::Builder::new()
        .name(format!("within: {what}"))
        .spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.send(r);
        })
        .expect("spawn test thread");
    match rx.recv_timeout(limit) {
        Ok(Ok(v)) => {
            let _ = h.join();
            v
        }
        Ok(Err(p)) => std::panic::resume_unwind(p),
        Err(_) => panic!("probable deadlock: `{what}` did not finish within {limit:?}"),
    }
}
