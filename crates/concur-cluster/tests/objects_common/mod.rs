//! What the shared-object tests add to `support`: child processes of the test binary
//! (spawned, signalled, reaped with a bound), and unique object names.
#![allow(dead_code)] // each test binary uses a different part

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use concur_process::{Process, StartMethod};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The bound on any single test body.
pub(crate) const LIMIT: Duration = Duration::from_secs(180);

/// A name no other test of this binary uses.
pub(crate) fn name(what: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{what}-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// Starts `f(args)` in a daemon child (a re-run of this test binary), killed and
/// reaped when dropped.
pub(crate) fn spawn<F, A, R>(f: F, args: A) -> Child<R>
where
    F: Fn(A) -> R + Copy + 'static,
    A: Serialize + DeserializeOwned,
    R: Serialize + DeserializeOwned,
{
    let p = Process::builder()
        .start_method(StartMethod::Spawn)
        .daemon(true)
        .spawn(f, args)
        .expect("spawn a child");
    Child { p: Some(p) }
}

/// A child process of the test.
pub(crate) struct Child<R: Serialize + DeserializeOwned> {
    p: Option<Process<R>>,
}

impl<R: Serialize + DeserializeOwned> Child<R> {
    pub(crate) fn pid(&self) -> i32 {
        self.p.as_ref().and_then(Process::pid).expect("started") as i32
    }

    /// Sends `sig` to the child.
    pub(crate) fn signal(&self, sig: i32) {
        // SAFETY: sends a signal to our own child, which is not reaped yet (it is
        // reaped only by `join`, `kill` or drop, which take `self`).
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0);
    }

    /// Waits (bounded) for its result; its panic fails the test.
    #[track_caller]
    pub(crate) fn join(mut self) -> R {
        let p = self.p.take().expect("not joined yet");
        p.join_timeout(LIMIT).expect("the child finished cleanly")
    }

    /// SIGKILL and reap.
    pub(crate) fn kill(mut self) {
        if let Some(p) = self.p.take() {
            let _ = p.kill();
            let _ = p.join_timeout(Duration::from_secs(30));
        }
    }
}

impl<R: Serialize + DeserializeOwned> Drop for Child<R> {
    fn drop(&mut self) {
        if let Some(p) = self.p.take() {
            let _ = p.kill();
            let _ = p.join_timeout(Duration::from_secs(30));
        }
    }
}
