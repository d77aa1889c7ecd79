//! An oversize item is refused before it is encoded (issue 14, finding 4): a 2 GiB put
//! into a queue with the default 8 MiB item limit used to take 22.6 s and allocate
//! 4 GiB before `TooLarge`. Here the item is produced lazily (its `Serialize` streams
//! 2 GiB from a counter and holds none of it), and this binary's global allocator
//! counts every byte allocated while the put runs.
//!
//! The only test of its own binary, so no other test allocates while it measures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use concur_process::Queue;
use concur_process::queue::{DEFAULT_CAPACITY, Rejected};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bytes handed out by `alloc`/`realloc` growth since the start, never decreased.
static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

struct Counting;

// SAFETY: forwards every call to `System`, only counting sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new_size.saturating_sub(layout.size()), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A byte sequence of `len` bytes that exists only while it is serialized: each byte
/// is made from its index as the serializer asks for it.
struct Lazy {
    len: u64,
}

impl Serialize for Lazy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.len as usize))?;
        for i in 0..self.len {
            seq.serialize_element(&(i as u8))?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Lazy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vec::<u8>::deserialize(d)?;
        Ok(Lazy {
            len: v.len() as u64,
        })
    }
}

#[test]
fn a_2_gib_put_into_an_8_mib_queue_is_refused_at_once_without_allocating_it() {
    let q = Queue::<Lazy>::with_capacity(0, DEFAULT_CAPACITY).unwrap();
    let max = q.max_item_size();
    assert!(max <= 8 << 20);
    // A small lazy item goes through (and comes back whole): the type is a real one.
    q.put(Lazy { len: 1000 }).unwrap();
    assert_eq!(q.get().unwrap().len, 1000);

    let before = ALLOCATED.load(Ordering::Relaxed);
    let start = Instant::now();
    let e = q.put(Lazy { len: 2 << 30 }).unwrap_err();
    let took = start.elapsed();
    let allocated = ALLOCATED.load(Ordering::Relaxed) - before;
    eprintln!(
        "2 GiB put refused in {:.1} ms, {allocated} bytes allocated during the put",
        took.as_secs_f64() * 1e3
    );
    match e.rejected() {
        Some(&Rejected::TooLarge { size, max: m }) => {
            assert_eq!(m, max);
            assert!(size > max, "size {size} max {max}");
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(e.into_inner().len, 2 << 30, "the item is handed back");
    assert!(
        allocated < 4 << 20,
        "the refused put allocated {allocated} bytes (limit 4 MiB)"
    );
    assert!(
        took.as_secs() < 2,
        "the refused put took {took:?}: it encoded far past the limit"
    );
    assert!(q.empty());
}
