//! Fuzzing `Connection::recv` through a raw socket peer: random bytes, truncated
//! streams and huge length prefixes must give typed errors, never a panic, a hang, or
//! an allocation larger than the connection's frame limit. A global allocator records
//! the largest single allocation made on each thread to check the last point.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use concur_process::{Connection, DEFAULT_MAX_FRAME};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

struct Tracking;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

// SAFETY: forwards every call to the system allocator unchanged; only records sizes.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Tracking = Tracking;

/// Runs `f` and returns the largest single allocation it made on this thread.
fn largest_allocation(f: impl FnOnce()) -> usize {
    LARGEST.with(|l| l.set(0));
    f();
    LARGEST.with(Cell::get)
}

#[derive(Serialize, Deserialize, Debug)]
struct Record {
    id: u64,
    name: String,
    items: Vec<Vec<u32>>,
    tag: Option<char>,
}

fn raw_pair() -> (Connection, UnixStream) {
    let (mine, theirs) = UnixStream::pair().unwrap();
    (Connection::from_fd(OwnedFd::from(mine)), theirs)
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32).to_le_bytes().to_vec();
    v.extend_from_slice(&[0, 0, 0, 0]);
    v.extend_from_slice(body);
    v
}

/// Feeds `data` then end-of-stream; receives until an error and checks it is typed.
/// Returns how many messages decoded. Bounded: each iteration consumes a frame or ends.
fn drain_as_records(conn: &Connection, data: &[u8]) -> usize {
    let mut ok = 0;
    for _ in 0..=data.len() + 1 {
        match conn.recv::<Record>() {
            Ok(_) => ok += 1,
            Err(e) if e.is_decode() => {}
            Err(e) => {
                assert!(
                    e.is_eof() || e.is_malformed() || e.is_too_large(),
                    "unexpected error kind: {e:?}"
                );
                // Framing errors and EOF stick.
                assert!(conn.recv_bytes().is_err());
                return ok;
            }
        }
    }
    panic!("more messages than bytes: the receiver is not consuming input");
}

const SMALL_MAX: usize = 64 * 1024;

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_give_typed_errors(
        data in prop::collection::vec(any::<u8>(), 0..3000),
        small in any::<bool>(),
    ) {
        let (conn, mut raw) = raw_pair();
        let max = if small { SMALL_MAX } else { DEFAULT_MAX_FRAME };
        conn.set_max_frame(max);
        raw.write_all(&data).unwrap();
        drop(raw);
        let peak = largest_allocation(|| { drain_as_records(&conn, &data); });
        prop_assert!(peak <= max + 64 * 1024, "allocated {peak} bytes with a limit of {max}");
    }

    #[test]
    fn valid_frames_then_a_truncation(
        bodies in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..400), 0..12),
        cut in any::<prop::sample::Index>(),
    ) {
        let (conn, mut raw) = raw_pair();
        let stream: Vec<u8> = bodies.iter().flat_map(|b| frame(b)).collect();
        let cut = if stream.is_empty() { 0 } else { cut.index(stream.len() + 1) };
        raw.write_all(&stream[..cut]).unwrap();
        drop(raw);
        // Exactly the frames that fit before the cut come out, in order, then EOF.
        let mut at = 0;
        let mut whole = 0;
        for b in &bodies {
            if at + 8 + b.len() <= cut {
                whole += 1;
                at += 8 + b.len();
            } else {
                break;
            }
        }
        for b in bodies.iter().take(whole) {
            prop_assert_eq!(&conn.recv_bytes().unwrap(), b);
        }
        let e = conn.recv_bytes().unwrap_err();
        prop_assert!(e.is_eof(), "{:?}", e);
    }

    #[test]
    fn huge_length_prefixes_fail_before_allocating(
        len in (SMALL_MAX as u32 + 1)..=u32::MAX,
        tail in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let (conn, mut raw) = raw_pair();
        conn.set_max_frame(SMALL_MAX);
        let mut data = len.to_le_bytes().to_vec();
        data.extend_from_slice(&[0, 0, 0, 0]);
        data.extend_from_slice(&tail);
        raw.write_all(&data).unwrap();
        // The peer stays open: the error must come from the header alone, not a wait.
        let peak = largest_allocation(|| {
            let e = conn.recv_bytes().unwrap_err();
            assert!(e.is_too_large(), "{e:?}");
        });
        prop_assert!(peak <= SMALL_MAX);
        drop(raw);
    }

    #[test]
    fn random_bodies_in_valid_frames_decode_or_fail_cleanly(
        bodies in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 1..10),
    ) {
        let (conn, mut raw) = raw_pair();
        conn.set_max_frame(SMALL_MAX);
        let stream: Vec<u8> = bodies.iter().flat_map(|b| frame(b)).collect();
        raw.write_all(&stream).unwrap();
        drop(raw);
        let peak = largest_allocation(|| {
            for _ in &bodies {
                match conn.recv::<Record>() {
                    Ok(_) => {}
                    Err(e) => assert!(e.is_decode(), "{e:?}"),
                }
            }
            assert!(conn.recv::<Record>().unwrap_err().is_eof());
        });
        prop_assert!(peak <= SMALL_MAX + 64 * 1024);
    }
}
