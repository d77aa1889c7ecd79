//! Seed: a dict shared by worker processes through a manager — each worker counts words
//! into it, with the read-modify-write done atomically on the manager's server.
//!
//! Python:
//! ```python
//! from multiprocessing import Manager, Process
//! def count(d, lock, words):
//!     for w in words:
//!         with lock:                      # d[w] = d.get(w, 0) + 1 is two requests:
//!             d[w] = d.get(w, 0) + 1      # without the lock, updates are lost
//! if __name__ == "__main__":
//!     with Manager() as m:
//!         d, lock = m.dict(), m.Lock()
//!         ps = [Process(target=count, args=(d, lock, WORDS)) for _ in range(4)]
//!         for p in ps: p.start()
//!         for p in ps: p.join()
//!         print(dict(d))
//! ```
//! Rust: the proxy travels to each child as an argument (it carries the manager's
//! address and key; the child connects on first use). `Dict::update` sends the key and
//! a function that captures nothing; the server runs it on the old value while no other
//! call on the dict runs, so no lock is needed and no update is lost:
//! ```rust,ignore
//! d.update(w.to_owned(), |n: Option<u64>| n.unwrap_or(0) + 1)?;   // one request
//! ```
//! The same manager can serve other machines: `Manager::builder().address(
//! "0.0.0.0:50000".parse()?).authkey(key).start()?`, and on the other side
//! `Manager::connect(address, key)?.dict_by_id(id)?`.
//!
//! Run: `cargo run --release -p concur --example manager`

use concur::process::manager::Dict;
use concur::process::{Manager, Process};
use std::time::Duration;

/// Worker processes.
const PROCS: usize = 4;
/// How many times each worker goes through the text.
const ROUNDS: u64 = 50;
/// The text every worker counts.
const TEXT: &str = "the quick brown fox jumps over the lazy dog the end";
/// How long a worker may take (bounded: never a hang).
const JOIN_LIMIT: Duration = Duration::from_secs(120);

/// Counts every word of `TEXT`, `rounds` times, into the shared dict.
fn count((d, rounds): (Dict<String, u64>, u64)) -> u64 {
    let mut updates = 0;
    for _ in 0..rounds {
        for w in TEXT.split_whitespace() {
            d.update(w.to_owned(), |n: Option<u64>| n.unwrap_or(0) + 1)
                .expect("the manager is up");
            updates += 1;
        }
    }
    updates
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let m = Manager::start()?; // the server process; it ends with `m`
    let d = m.dict::<String, u64>()?;
    let ps: Vec<Process<u64>> = (0..PROCS)
        .map(|_| Process::spawn(count, (d.clone(), ROUNDS)))
        .collect::<Result<_, _>>()?;
    let mut updates = 0;
    for p in &ps {
        updates += p.join_timeout(JOIN_LIMIT)?;
    }

    let mut items = d.items()?; // a snapshot, in insertion order
    items.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    println!("{PROCS} processes x {ROUNDS} rounds: {updates} updates through the manager");
    for (w, n) in &items {
        println!("  {w:<6} {n}");
    }
    let words = TEXT.split_whitespace().count() as u64;
    assert_eq!(updates, PROCS as u64 * ROUNDS * words);
    assert_eq!(
        items.iter().map(|(_, n)| n).sum::<u64>(),
        updates,
        "no update lost"
    );
    assert_eq!(d.get_item(&"the".to_owned())?, PROCS as u64 * ROUNDS * 3);
    m.shutdown()?;
    Ok(())
}
