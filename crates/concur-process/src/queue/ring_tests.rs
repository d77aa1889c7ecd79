//! Unit tests of the ring: wrapping, both limits, and owners dying mid-operation.

use super::*;

#[test]
fn records_wrap_around_the_end() {
    let r = Ring::create(64, 100, false, 1).unwrap();
    let mut out = Buf::new();
    for i in 0..50u8 {
        let data = vec![i; usize::from(i % 20)];
        r.put(&data, Wait::Now).unwrap();
        r.get(&mut out, Wait::Now).unwrap();
        assert_eq!(out.as_slice(), data);
    }
    assert_eq!(r.get(&mut out, Wait::Now), Err(GetFail::Empty));
}

#[test]
fn full_by_bytes_and_by_items() {
    let r = Ring::create(64, 3, false, 1).unwrap();
    r.put(&[0; 24], Wait::Now).unwrap(); // 32 bytes
    r.put(&[0; 16], Wait::Now).unwrap(); // 24 bytes
    assert_eq!(r.put(&[0; 8], Wait::Now), Err(PutFail::Full)); // 16 > 8 left
    r.put(&[], Wait::Now).unwrap(); // 8 bytes
    assert_eq!(r.qsize(), 3);
    let mut out = Buf::new();
    r.get(&mut out, Wait::Now).unwrap();
    assert_eq!(out.as_slice().len(), 24);
    r.put(&[1; 8], Wait::Now).unwrap();
    assert_eq!(r.put(&[], Wait::Now), Err(PutFail::Full)); // 3 items
}

#[test]
fn a_dead_owner_between_the_two_stores_is_repaired() {
    let r = Ring::create(64, 10, false, 1).unwrap();
    let p = &r.header().prod;
    // Simulate a producer that died after counting, before publishing.
    p.pend_count.store(0, Ordering::Relaxed);
    p.pend_pos.store(1, Ordering::Relaxed);
    p.count.store(1, Ordering::Relaxed);
    repair(p);
    assert_eq!(p.count.load(Ordering::Relaxed), 0);
    assert_eq!(p.pend_pos.load(Ordering::Relaxed), 0);
    // ... and one that died after publishing, before clearing the mark.
    p.pend_count.store(0, Ordering::Relaxed);
    p.pend_pos.store(1, Ordering::Relaxed);
    p.pos.store(16, Ordering::Relaxed);
    repair(p);
    assert_eq!(p.count.load(Ordering::Relaxed), 1);
}

/// A forked child takes `side`'s mutex, runs `f` (half an operation) and exits
/// holding it, as if killed there.
fn die_holding(ring: &Ring, side: fn(&Header) -> &Side, f: fn(&Ring)) {
    use crate::sync::test_common::{LIMIT, fork};
    let child = fork(|| {
        let g = lock(side(ring.header()), Wait::Now).expect("free");
        f(ring);
        std::mem::forget(g); // exit holding it
    });
    child.expect_success(LIMIT, "die holding the lock");
}

#[test]
fn a_producer_dying_mid_put_leaves_no_record_and_the_counts_right() {
    let r = Ring::create(64, 10, false, 1).unwrap();
    die_holding(
        &r,
        |h| &h.prod,
        |r| {
            let p = &r.header().prod;
            // Counted, half written, never published.
            p.pend_count.store(0, Ordering::Relaxed);
            p.pend_pos.store(1, Ordering::Relaxed);
            p.count.store(1, Ordering::Relaxed);
            r.write_at(0, &[0xff; 12]);
        },
    );
    assert_eq!(r.qsize(), 1, "the dead producer's count, until repaired");
    let mut out = Buf::new();
    assert_eq!(r.get(&mut out, Wait::Now), Err(GetFail::Empty));
    r.put(b"ok", Wait::Now).unwrap(); // recovers the mutex, repairs the count
    assert_eq!(r.qsize(), 1);
    r.get(&mut out, Wait::Now).unwrap();
    assert_eq!(out.as_slice(), b"ok");
    assert_eq!(r.qsize(), 0);
}

#[test]
fn a_consumer_dying_mid_get_loses_only_its_item_and_the_counts_right() {
    let r = Ring::create(64, 10, false, 1).unwrap();
    r.put(b"first", Wait::Now).unwrap();
    r.put(b"second", Wait::Now).unwrap();
    die_holding(
        &r,
        |h| &h.cons,
        |r| {
            let c = &r.header().cons;
            // Took the first record (16 bytes), died before counting it.
            c.pend_count.store(0, Ordering::Relaxed);
            c.pend_pos.store(1, Ordering::Relaxed);
            c.pos.store(16, Ordering::Release);
        },
    );
    let mut out = Buf::new();
    r.get(&mut out, Wait::Now).unwrap();
    assert_eq!(out.as_slice(), b"second");
    assert_eq!(r.qsize(), 0);
    assert_eq!(r.get(&mut out, Wait::Now), Err(GetFail::Empty));
}

#[test]
fn a_record_longer_than_the_ring_is_refused_before_it_is_allocated() {
    // A writer outside the protocol claims a 4 GiB record and publishes positions
    // that would cover it: the get refuses it as corrupt (and empties the queue)
    // instead of allocating 4 GiB and copying the ring into it round and round.
    let r = Ring::create(64, 10, false, 1).unwrap();
    let mut hdr = [0u8; 8];
    hdr[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    r.scribble(&hdr, [1 << 40, 1, 0, 0]);
    let mut out = Buf::new();
    match r.get(&mut out, Wait::Now) {
        Err(GetFail::Corrupt(m)) => assert!(m.contains("4294967295"), "{m}"),
        other => panic!("expected a corrupt record, got {other:?}"),
    }
    assert_eq!(r.get(&mut out, Wait::Now), Err(GetFail::Empty));
    // The queue goes on working.
    r.put(&[5; 3], Wait::Now).unwrap();
    r.get(&mut out, Wait::Now).unwrap();
    assert_eq!(out.as_slice(), [5; 3]);
}
