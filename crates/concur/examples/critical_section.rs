//! Seed: a critical section protected by a lock (Python's `with lock:` in two threads).
//!
//! Python:
//! ```python
//! lock = threading.Lock()
//! def critical(name, l):
//!     with l:
//!         log.append(("enter", name)); ...; log.append(("exit", name))
//! t1 = threading.Thread(target=critical, args=("A", lock)); t1.start(); t1.join()
//! ```
//! Run: `cargo run --release -p concur --example critical_section`

use concur::{sync::Lock, thread};
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The log is guarded by its own lock; the critical section by `lock`.
    let lock = Lock::new();
    let log = Lock::with_value(Vec::<(&'static str, &'static str)>::new());

    let workers: Vec<_> = ["A", "B"]
        .into_iter()
        .map(|name| {
            let (lock, log) = (lock.clone(), log.clone());
            thread::Builder::new().name(name).spawn(move || {
                for _ in 0..5 {
                    let _section = lock.acquire();
                    log.acquire().push(("enter", name));
                    std::thread::sleep(Duration::from_millis(2)); // work inside the section
                    log.acquire().push(("exit", name));
                }
            })
        })
        .collect::<Result<_, _>>()?;
    for w in workers {
        w.join()?;
    }

    let log = log.acquire();
    for pair in log.chunks(2) {
        println!(
            "{:<5} {}   {:<5} {}",
            pair[0].0, pair[0].1, pair[1].0, pair[1].1
        );
        // Every "enter X" is followed by "exit X": the sections never interleave.
        assert_eq!((pair[0].0, pair[1].0), ("enter", "exit"));
        assert_eq!(pair[0].1, pair[1].1, "critical sections interleaved");
    }
    println!("{} critical sections, none interleaved", log.len() / 2);
    Ok(())
}
