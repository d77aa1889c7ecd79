//! Serialization of process-shared primitives: the page's descriptor and the offset
//! travel; the receiver checks the tag.

use super::*;
use crate::fds::{collect_fds, provide_fds};
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
fn every_primitive_round_trips_to_the_same_object() {
    let lock = Lock::new().unwrap();
    assert!(recv::<Lock>(send(&lock)).unwrap().ptr_eq(&lock));
    let r = RLock::new().unwrap();
    assert!(recv::<RLock>(send(&r)).unwrap().ptr_eq(&r));
    let s = Semaphore::new(3).unwrap();
    let s2: Semaphore = recv(send(&s)).unwrap();
    assert!(s2.ptr_eq(&s) && s2.value() == 3);
    let b = BoundedSemaphore::new(1).unwrap();
    assert!(recv::<BoundedSemaphore>(send(&b)).unwrap().ptr_eq(&b));
    let e = Event::new().unwrap();
    e.set();
    assert!(recv::<Event>(send(&e)).unwrap().is_set());
    let c = Condition::new().unwrap();
    assert!(recv::<Condition>(send(&c)).unwrap().ptr_eq(&c));
    let bar = Barrier::new(4).unwrap();
    assert_eq!(recv::<Barrier>(send(&bar)).unwrap().parties(), 4);
}

#[test]
fn a_primitive_received_as_another_kind_is_refused() {
    let lock = Lock::new().unwrap();
    assert!(recv::<RLock>(send(&lock)).is_err());
    assert!(recv::<Semaphore>(send(&lock)).is_err());
    let s = Semaphore::new(1).unwrap();
    assert!(recv::<BoundedSemaphore>(send(&s)).is_err());
    let e = Event::new().unwrap();
    assert!(recv::<Barrier>(send(&e)).is_err());
}

#[test]
fn a_bad_offset_is_refused() {
    let lock = Lock::new().unwrap();
    let (mut bytes, fds) = send(&lock);
    // Wire form: fd index, name (None), offset (varint 0, last byte).
    assert_eq!(bytes.last(), Some(&0));
    *bytes.last_mut().unwrap() = 0x7f; // past the end of the state
    assert!(recv::<Lock>((bytes.clone(), fds)).is_err());
    let (_, fds) = send(&lock);
    bytes.pop();
    bytes.extend_from_slice(&[0xff, 0x3f]); // 8191: outside the page
    assert!(recv::<Lock>((bytes, fds)).is_err());
}

#[test]
fn a_child_uses_received_primitives() {
    let lock = Lock::new().unwrap();
    let held = Event::new().unwrap();
    let go = Event::new().unwrap();
    let msg = send(&(lock.clone(), held.clone(), go.clone()));
    let child = fork(move || {
        let (lock, held, go): (Lock, Event, Event) = recv(msg).unwrap();
        let g = lock.acquire().unwrap();
        held.set();
        assert!(go.wait_timeout(LIMIT));
        drop(g);
    });
    assert!(held.wait_timeout(LIMIT));
    assert!(lock.locked());
    assert!(lock.try_acquire().is_err());
    go.set();
    drop(lock.acquire_timeout(LIMIT).unwrap());
    child.expect_success(LIMIT, "receiver");
}

#[test]
fn errors_display_and_compare() {
    let e: TryAcquireError<()> = TryAcquireError::WouldBlock;
    assert_eq!(format!("{e:?}"), "WouldBlock");
    let d: TryAcquireError<u8> = OwnerDied::new(1).into();
    assert_eq!(
        d.to_string(),
        "the previous owner of the lock died while holding it"
    );
    assert!(matches!(d, TryAcquireError::OwnerDied(ref x) if *x.get_ref() == 1));
}
