//! Serialization of shared memory handles: the descriptor travels through the `fds`
//! side tables and the receiver maps the same memory — in this process (a second
//! mapping) and in a forked child that receives the descriptors as a transport would
//! hand them over.

use super::*;
use crate::fds::{collect_fds, provide_fds};
use crate::sync::Lock;
use crate::sync::test_common::{LIMIT, fork};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::os::fd::OwnedFd;

fn send<T: Serialize>(v: &T) -> (Vec<u8>, Vec<OwnedFd>) {
    let (bytes, fds) = collect_fds(|| postcard::to_stdvec(v));
    (bytes.expect("serializable"), fds)
}

fn recv<T: DeserializeOwned>(msg: (Vec<u8>, Vec<OwnedFd>)) -> Result<T, postcard::Error> {
    let (bytes, fds) = msg;
    provide_fds(fds, || postcard::from_bytes(&bytes))
}

#[test]
fn shared_memory_round_trip_maps_the_same_block_again() {
    let shm = SharedMemory::new(100).unwrap();
    let msg = send(&shm);
    assert_eq!(msg.1.len(), 1);
    let back: SharedMemory = recv(msg).unwrap();
    assert_ne!(back.as_ptr(), shm.as_ptr()); // a second mapping...
    assert!(back.ptr_eq(&shm)); // ...of the same block
    back.write_at(99, &[5]).unwrap();
    assert_eq!(shm.to_vec()[99], 5);
}

#[test]
fn a_named_block_keeps_its_name() {
    let name = format!("concur-unit-named-{}", std::process::id());
    let shm = SharedMemory::create(&name, 8).unwrap();
    let back: SharedMemory = recv(send(&shm)).unwrap();
    assert_eq!(back.name(), Some(name.as_str()));
    back.unlink().unwrap();
}

#[test]
fn plain_serde_cannot_carry_a_block() {
    let shm = SharedMemory::new(8).unwrap();
    assert!(postcard::to_stdvec(&shm).is_err());
}

#[test]
fn a_child_maps_a_received_value_and_array() {
    let v = Value::new(1u64).unwrap();
    let lock = Lock::new().unwrap();
    let a = Array::from_slice_with(&[1i32, 2, 3], lock.clone()).unwrap();
    let msg = send(&(v.clone(), a.clone()));
    assert_eq!(msg.1.len(), 3); // the value's block, the array's block, its lock's page
    fork(move || {
        let (v, a): (Value<u64>, Array<i32>) = recv(msg).unwrap();
        v.with_lock(|x| *x += 41).unwrap();
        a.with_lock(|xs| xs.reverse()).unwrap();
        // The external lock came along: it is the one guarding the array.
        let l = a.get_lock().unwrap();
        assert!(!l.locked());
    })
    .expect_success(LIMIT, "receiver");
    assert_eq!(v.get(), 42);
    assert_eq!(a.to_vec(), [3, 2, 1]);
}

#[test]
fn a_received_value_shares_its_lock() {
    let v = Value::new(0u32).unwrap();
    let back: Value<u32> = recv(send(&v)).unwrap();
    assert!(back.ptr_eq(&v));
    let g = v.get_lock().unwrap().acquire().unwrap();
    assert!(back.get_lock().unwrap().locked());
    assert!(back.get_lock().unwrap().ptr_eq(v.get_lock().unwrap()));
    drop(g);
}

#[test]
fn mismatched_types_are_refused() {
    let v = Value::new(0u32).unwrap();
    assert!(recv::<Value<u64>>(send(&v)).is_err());
    assert!(recv::<Array<u32>>(send(&v)).is_err());
    let a = Array::<u32>::zeroed(2).unwrap();
    assert!(recv::<Value<u32>>(send(&a)).is_err());
    assert!(recv::<Array<u32>>(send(&a)).is_ok());
    // A plain block holds no array header.
    let shm = SharedMemory::new(4096).unwrap();
    assert!(recv::<Array<u32>>(send(&shm)).is_err());
}

#[test]
fn frozen_arrays_travel_and_unsealed_memory_is_refused() {
    let f = FrozenArray::from_slice(&[3u16, 4, 5]).unwrap();
    let back: FrozenArray<u16> = recv(send(&f)).unwrap();
    assert_eq!(&*back, &[3, 4, 5]);
    assert!(back.ptr_eq(&f));
    assert!(recv::<FrozenArray<u32>>(send(&f)).is_err());
    // Writable memory cannot pose as frozen.
    let shm = SharedMemory::new(4096).unwrap();
    assert!(recv::<FrozenArray<u8>>(send(&shm)).is_err());
    // And frozen memory cannot be mapped writable.
    assert!(recv::<SharedMemory>(send(&f)).is_err());
}
