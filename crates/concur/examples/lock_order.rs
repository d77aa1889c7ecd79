//! CWE-833: two threads take two locks in opposite order.
//!
//! With the wrong timing this hangs forever, in Python and in plain Rust alike. concur's
//! detector reports the inversion the first time it is *seen*, even when the timing
//! happened to be lucky, and in panic mode the thread that would close the cycle panics
//! (releasing its locks) instead of hanging.
//!
//! Run: `cargo run --release -p concur --example lock_order`
//! (or with `CONCUR_DEADLOCK=panic` in the environment: this example sets warn mode).

use concur::deadlock::{self, Mode};
use concur::{sync::Lock, thread};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    deadlock::set_mode(Mode::Warn);
    let a = Lock::builder().name("A").build();
    let b = Lock::builder().name("B").build();

    // t1 takes A then B; then t2 takes B then A. They run one after the other, so
    // nothing hangs, but the order is inconsistent: a deadlock waiting to happen.
    let t1 = thread::Builder::new().name("t1").spawn({
        let (a, b) = (a.clone(), b.clone());
        move || {
            let _a = a.acquire();
            let _b = b.acquire();
        }
    })?;
    t1.join()?;
    let t2 = thread::Builder::new().name("t2").spawn({
        let (a, b) = (a.clone(), b.clone());
        move || {
            let _b = b.acquire();
            let _a = a.acquire();
        }
    })?;
    t2.join()?;

    let reports = deadlock::take_reports();
    for r in &reports {
        println!("caught: {r}");
    }
    assert_eq!(reports.len(), 1, "the inversion is reported exactly once");
    Ok(())
}
