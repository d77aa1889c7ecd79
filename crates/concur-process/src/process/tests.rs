//! Unit tests of what the public API cannot reach: the binary identity check and the
//! anchor arithmetic.

use super::protocol::{self, Identity};
use super::*;

#[test]
fn offsets_from_the_anchor_round_trip() {
    fn of<F: Fn(u8) -> u8 + Copy + 'static>(_: F) -> Trampoline {
        child::trampoline::<F, u8, u8>
    }
    let t = of(|x| x);
    let off = protocol::offset_of(t as usize);
    assert_eq!(protocol::address_at(off), t as usize);
}

#[test]
fn identity_is_stable_within_a_process() {
    let a = Identity::current().unwrap();
    assert_eq!(a, Identity::current().unwrap());
    assert_ne!(a, a.clone().corrupted());
    assert_ne!(a, Identity::unknown());
}

#[test]
fn a_child_in_a_different_binary_refuses_to_run_the_function() {
    let mut p = Process::builder().build(|x: u32| x + 1, 1);
    p.corrupt_identity = true;
    p.start().unwrap();
    let e = p.join().unwrap_err();
    assert!(e.is_identity_mismatch(), "{e}");
    assert!(e.to_string().contains("different binary"), "{e}");
    assert_eq!(p.exitcode(), Some(1));
}

#[test]
fn the_same_binary_runs_it() {
    let p = Process::builder().build(|x: u32| x + 1, 1);
    p.start().unwrap();
    assert_eq!(p.join().unwrap(), 2);
}
