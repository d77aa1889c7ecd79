//! Seed: `noncompliant01.py` (CWE-833) — a thread that joins itself.
//!
//! Python raises `RuntimeError("cannot join current thread")`, but a thread that joins
//! a thread which joins it back hangs forever. In concur joining the current thread is
//! an immediate, typed error, and with `CONCUR_DEADLOCK=warn|panic` a join cycle between
//! threads is reported too.
//!
//! Run: `cargo run --release -p concur --example self_join`

use concur::thread;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let worker = thread::Builder::new().name("worker").spawn(|| {
        let me = thread::current_thread();
        let start = Instant::now();
        let err = me.join().expect_err("joining yourself must fail");
        assert!(err.is_self_join());
        (err.to_string(), start.elapsed())
    })?;
    let (message, took) = worker.join()?;
    // The error is immediate (microseconds); printed, not asserted: a busy machine
    // may deschedule the thread at any point.
    println!("worker joining itself: {message} (after {took:?}, no hang)");

    // The main thread, too.
    let err = thread::current_thread().join().expect_err("self-join");
    println!("main joining itself:   {err}");
    Ok(())
}
