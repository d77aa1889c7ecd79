//! A failed future dropped without anyone reading its error is reported exactly once
//! (its own process: the counter is process-wide).

use concur_core::futures::{Executor, Promise, TaskError, ThreadPoolExecutor, unobserved_failures};

#[test]
fn dropped_failed_future_is_reported_once() {
    let base = unobserved_failures();
    // Read errors are not reported.
    let p = Promise::<u8>::new();
    let f = p.future();
    assert!(p.set_error(TaskError::user("read")));
    assert!(f.result().is_err());
    drop((p, f));
    assert_eq!(unobserved_failures(), base);
    // Cancelled futures are not failures.
    let p = Promise::<u8>::new();
    p.future().cancel();
    drop(p);
    assert_eq!(unobserved_failures(), base);
    // An unread panic is reported once, when the last handle goes.
    let pool = ThreadPoolExecutor::new(1);
    let f = pool.submit(|| -> u8 { panic!("never read") }).unwrap();
    let g = f.clone();
    pool.shutdown(true, false).unwrap();
    assert!(f.done());
    drop(f);
    assert_eq!(unobserved_failures(), base);
    drop(g);
    assert_eq!(unobserved_failures(), base + 1);
}
