//! The public report of a failed future dropped unread (CWE-392): the hook set with
//! `futures::set_unobserved_failure_hook` sees each such error once, with its cause;
//! read or cancelled futures are not reported; `unobserved_failures` counts the same.
//! (Its own test binary: the hook and the counter are process-wide.)

use concur_core::futures::{
    Executor, Promise, TaskError, ThreadPoolExecutor, reset_unobserved_failure_hook,
    set_unobserved_failure_hook, unobserved_failures,
};
use std::sync::{Arc, Mutex};

#[test]
fn the_hook_sees_every_unread_failure_once() {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let s = seen.clone();
    set_unobserved_failure_hook(move |e: &TaskError| s.lock().unwrap().push(e.to_string()));
    let base = unobserved_failures();

    // Read: not reported.
    let p = Promise::<u8>::new();
    assert!(p.set_error(TaskError::user("read")));
    assert!(p.future().result().is_err());
    drop(p);
    // Cancelled: not a failure.
    let p = Promise::<u8>::new();
    assert!(p.future().cancel());
    drop(p);
    assert!(seen.lock().unwrap().is_empty());

    // An unread panic on a pool: reported once, when the last handle goes.
    let pool = ThreadPoolExecutor::new(1);
    let f = pool.submit(|| -> u8 { panic!("never read") }).unwrap();
    pool.shutdown(true, false).unwrap();
    let g = f.clone();
    drop(f);
    assert!(seen.lock().unwrap().is_empty());
    drop(g);
    let p = Promise::<u8>::new();
    assert!(p.set_error(TaskError::user("second")));
    drop(p);
    reset_unobserved_failure_hook();
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].contains("never read"), "{got:?}");
    assert!(got[1].contains("second"), "{got:?}");
    assert_eq!(unobserved_failures(), base + 2);

    set_unobserved_failure_hook(|_| panic!("a broken hook"));
    let p = Promise::<u8>::new();
    assert!(p.set_error(TaskError::user("third")));
    drop(p); // the hook's panic is reported, not propagated
    reset_unobserved_failure_hook();
    assert_eq!(unobserved_failures(), base + 3);
}
