//! Quick contention checks for `Lock` (the full port of CPython's lock_tests.py lives in
//! `lock_tests.rs`).

use concur_core::sync::Lock;
use std::thread;

#[test]
fn counter_under_contention_is_exact() {
    let n = if cfg!(miri) { 50 } else { 100_000 };
    let lock = Lock::with_value(0i64);
    let hs: Vec<_> = (0..2)
        .map(|i| {
            let lock = lock.clone();
            thread::spawn(move || {
                for _ in 0..n {
                    *lock.acquire() += if i == 0 { 100 } else { -100 };
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(*lock.acquire(), 0);
}
