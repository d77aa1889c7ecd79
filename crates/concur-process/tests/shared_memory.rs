//! Shared memory blocks, values and arrays across forked processes.
//!
//! Ported from CPython 3.13 `Lib/test/_test_multiprocessing.py`: `_TestValue`,
//! `_TestArray` and `_TestSharedMemory` (basics), in their `processes` flavour (the
//! other process is a forked child), plus the counter scenario: four
//! processes each add 1 ten thousand times under the value's lock.

mod common;

use common::{LIMIT, fork};
use concur_process::shm::{AccessError, Array, FrozenArray, Locking, SharedMemory, Value};
use concur_process::sync::{Lock, ReleaseError};
use std::thread;

// ---------------------------------------------------------------- _TestValue

/// CPython's `codes_values`: ('i', 4343, 24234), ('d', 3.625, -4.25), ('h', -232, 234),
/// ('q', 2**33, 2**34), ('c', b'x', b'y').
fn check_values(locking: fn() -> Locking) {
    let i = Value::new_with(4343i32, locking()).unwrap();
    let d = Value::new_with(3.625f64, locking()).unwrap();
    let h = Value::new_with(-232i16, locking()).unwrap();
    let q = Value::new_with(1i64 << 33, locking()).unwrap();
    let c = Value::new_with(b'x', locking()).unwrap();
    assert_eq!(
        (i.get(), d.get(), h.get(), q.get(), c.get()),
        (4343, 3.625, -232, 1 << 33, b'x')
    );
    fork(|| {
        i.set(24234);
        d.set(-4.25);
        h.set(234);
        q.set(1 << 34);
        c.set(b'y');
    })
    .expect_success(LIMIT, "value writer");
    assert_eq!(
        (i.get(), d.get(), h.get(), q.get(), c.get()),
        (24234, -4.25, 234, 1 << 34, b'y')
    );
}

#[test]
fn test_value() {
    check_values(|| Locking::Own);
}

#[test]
fn test_rawvalue() {
    check_values(|| Locking::Raw);
}

#[test]
fn test_getobj_getlock() {
    let val1 = Value::new(5i32).unwrap();
    assert!(val1.get_lock().is_some());

    let lock = Lock::new().unwrap();
    let val3 = Value::new_with(5i32, lock.clone()).unwrap();
    assert!(val3.get_lock().unwrap().ptr_eq(&lock));

    let val4 = Value::new_with(5i32, false).unwrap();
    assert!(val4.get_lock().is_none());

    let val5 = Value::new_raw(5i32).unwrap();
    assert!(val5.get_lock().is_none());
}

#[test]
fn four_processes_count_to_forty_thousand_under_the_lock() {
    let counter = Value::new(0u64).unwrap();
    let children: Vec<_> = (0..4)
        .map(|k| {
            fork(|| {
                for _ in 0..10_000 {
                    if k % 2 == 0 {
                        counter.with_lock(|v| *v += 1).unwrap();
                    } else {
                        // Python's `with counter.get_lock(): counter.value += 1`.
                        let _g = counter.get_lock().unwrap().acquire().unwrap();
                        counter.set(counter.get() + 1);
                    }
                }
            })
        })
        .collect();
    for c in children {
        c.expect_success(LIMIT, "counter");
    }
    assert_eq!(counter.get(), 40_000);
}

#[test]
fn threads_and_processes_share_one_lock_across_values() {
    let lock = Lock::new().unwrap();
    let a = Value::new_with(0u32, lock.clone()).unwrap();
    let b = Value::new_with(0u32, lock.clone()).unwrap();
    let body = || {
        for _ in 0..2_000 {
            let _g = lock.acquire().unwrap();
            // The invariant a == b holds whenever the lock is free.
            assert_eq!(a.get(), b.get());
            a.set(a.get() + 1);
            b.set(b.get() + 1);
        }
    };
    let child = fork(body);
    thread::scope(|s| {
        s.spawn(body);
        body();
    });
    child.expect_success(LIMIT, "paired counter");
    assert_eq!((a.get(), b.get()), (6_000, 6_000));
}

#[test]
#[should_panic(expected = "inside its own `with_lock`")]
fn copying_a_value_inside_its_own_with_lock_is_refused() {
    let v = Value::new(1u8).unwrap();
    let _ = v.with_lock(|_| v.get());
}

#[test]
fn the_lock_cannot_be_released_while_its_data_is_lent_out() {
    let v = Value::new(1u8).unwrap();
    let lock = v.get_lock().unwrap();
    let r = v.with_lock(|x| {
        *x = 2;
        lock.release()
    });
    assert_eq!(r, Ok(Err(ReleaseError::NotOwner)));
    assert!(!lock.locked());
    assert_eq!(v.get(), 2);
}

#[test]
fn other_values_sharing_the_lock_can_be_copied_inside_with_lock() {
    let lock = Lock::new().unwrap();
    let a = Value::new_with(1u32, lock.clone()).unwrap();
    let b = Value::new_with(2u32, lock.clone()).unwrap();
    let sum = a.with_lock(|x| {
        *x += b.get();
        *x
    });
    assert_eq!(sum, Ok(3));
}

#[test]
#[should_panic(expected = "without a lock")]
fn with_lock_on_a_raw_value_panics() {
    let v = Value::new_raw(1u8).unwrap();
    let _ = v.with_lock(|_| ());
}

// ---------------------------------------------------------------- _TestArray

/// CPython's `_TestArray.f`: running sums, in place.
fn prefix_sums(seq: &mut [i32]) {
    for i in 1..seq.len() {
        seq[i] += seq[i - 1];
    }
}

fn check_array(locking: Locking) {
    let mut seq = vec![680, 626, 934, 821, 150, 233, 548, 982, 714, 831];
    let raw = matches!(locking, Locking::Raw);
    let arr = Array::from_slice_with(&seq, locking).unwrap();
    assert_eq!(arr.len(), seq.len());
    assert_eq!(arr.get(3), Some(seq[3]));
    assert_eq!(&arr.to_vec()[2..7], &seq[2..7]);

    // arr[4:8] = seq[4:8] = [1, 2, 3, 4]
    seq[4..8].copy_from_slice(&[1, 2, 3, 4]);
    for (k, x) in [1, 2, 3, 4].into_iter().enumerate() {
        arr.set(4 + k, x).unwrap();
    }
    assert_eq!(arr.to_vec(), seq);

    prefix_sums(&mut seq);
    fork(|| {
        if raw {
            for i in 1..arr.len() {
                let s = arr.get(i).unwrap() + arr.get(i - 1).unwrap();
                arr.set(i, s).unwrap();
            }
        } else {
            arr.with_lock(prefix_sums).unwrap();
        }
    })
    .expect_success(LIMIT, "array writer");
    assert_eq!(arr.to_vec(), seq);
}

#[test]
fn test_array() {
    check_array(Locking::Own);
}

#[test]
fn test_rawarray() {
    check_array(Locking::Raw);
}

#[test]
fn test_array_from_size() {
    for _ in 0..3 {
        let arr = Array::<i32>::zeroed(10).unwrap();
        assert_eq!(arr.len(), 10);
        assert_eq!(arr.to_vec(), [0; 10]);
        let v: Vec<i32> = (0..10).collect();
        arr.copy_from_slice(&v).unwrap();
        assert_eq!(arr.to_vec(), v);
    }
}

#[test]
fn test_getobj_getlock_obj() {
    let arr1 = Array::from_slice(&[0i32; 10]).unwrap();
    assert!(arr1.get_lock().is_some());
    let lock = Lock::new().unwrap();
    let arr3 = Array::from_slice_with(&[0i32; 10], lock.clone()).unwrap();
    assert!(arr3.get_lock().unwrap().ptr_eq(&lock));
    let arr4 = Array::from_slice_with(&[0i32; 10], false).unwrap();
    assert!(arr4.get_lock().is_none());
}

#[test]
fn bad_indices_and_lengths_are_errors_not_panics() {
    let arr = Array::<u16>::zeroed(3).unwrap();
    assert_eq!(arr.get(3), None);
    assert_eq!(
        arr.set(3, 1),
        Err(AccessError::OutOfBounds {
            start: 3,
            count: 1,
            len: 3
        })
    );
    assert_eq!(
        arr.copy_from_slice(&[1, 2]),
        Err(AccessError::LengthMismatch {
            expected: 3,
            got: 2
        })
    );
    assert_eq!(arr.to_vec(), [0, 0, 0]);
}

#[test]
fn a_large_array_is_shared_not_copied() {
    // 8 MiB of u64: the child sees the parent's data and the parent the child's
    // writes, through one mapping of the same pages.
    let n = 1 << 20;
    let arr = Array::<u64>::zeroed_with(n, false).unwrap();
    arr.set(n - 1, 42).unwrap();
    fork(|| {
        assert_eq!(arr.get(n - 1), Some(42));
        arr.set(0, 7).unwrap();
    })
    .expect_success(LIMIT, "large array user");
    assert_eq!(arr.get(0), Some(7));
}

#[test]
fn frozen_arrays_are_readable_everywhere_without_copying() {
    let data: Vec<u32> = (0..100_000).collect();
    let frozen = FrozenArray::from_slice(&data).unwrap();
    let base = frozen.as_ptr() as usize;
    fork(|| {
        let sum: u64 = frozen.iter().map(|&x| u64::from(x)).sum();
        assert_eq!(sum, 4_999_950_000);
        assert_eq!(frozen.as_ptr() as usize, base); // the same mapping, inherited
    })
    .expect_success(LIMIT, "frozen reader");
    assert_eq!(&frozen[..], &data[..]);
}

// ---------------------------------------------------------------- _TestSharedMemory

fn shm_name(prefix: &str) -> String {
    // A PID in the name lets test runs proceed in parallel, as in CPython.
    format!("{prefix}{}", std::process::id())
}

#[test]
fn test_shared_memory_name_with_embedded_null() {
    let name = shm_name("test01_null");
    let sms = SharedMemory::create(&name, 512).unwrap();
    assert!(SharedMemory::open(&format!("{name}\0a")).is_err());
    sms.unlink().unwrap();
}

#[test]
fn test_shared_memory_basics() {
    let name = shm_name("test01_tsmb");
    let sms = SharedMemory::create(&name, 512).unwrap();
    assert_eq!(sms.name(), Some(name.as_str()));
    assert_eq!(sms.len(), 512);
    assert!(format!("{sms:?}").contains(&name));

    sms.write_at(0, &[42]).unwrap();
    let mut b = [0u8];
    sms.read_at(0, &mut b).unwrap();
    assert_eq!(b[0], 42);

    // Attach to the existing block (with a leading slash, POSIX style).
    let also = SharedMemory::open(&format!("/{name}")).unwrap();
    also.read_at(0, &mut b).unwrap();
    assert_eq!((b[0], also.len()), (42, 512));
    assert!(also.ptr_eq(&sms));

    // Sizes and names that make no sense are errors.
    assert!(SharedMemory::new(0).is_err());
    assert!(SharedMemory::create("a/b", 1).is_err());
    assert!(SharedMemory::create("", 1).is_err());

    // A name in use cannot be created again.
    let e = SharedMemory::create(&name, 512).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);

    // POSIX shared memory can only be unlinked once.
    also.unlink().unwrap();
    assert_eq!(
        sms.unlink().unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
    // The mappings outlive the name.
    sms.write_at(1, &[43]).unwrap();
    also.read_at(1, &mut b).unwrap();
    assert_eq!(b[0], 43);
}

#[test]
fn a_child_attaches_to_a_named_block_by_name() {
    let name = shm_name("test02_attach");
    let sms = SharedMemory::create(&name, 64).unwrap();
    fork(|| {
        let mine = SharedMemory::open(&name).unwrap();
        mine.write_at(0, b"from the child").unwrap();
    })
    .expect_success(LIMIT, "attaching child");
    let mut buf = [0u8; 14];
    sms.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"from the child");
    sms.unlink().unwrap();
}

#[test]
fn anonymous_blocks_have_no_name_anywhere() {
    let shm = SharedMemory::new(4096).unwrap();
    assert_eq!(shm.name(), None);
    // A memfd: nothing in /dev/shm to leak, however the processes end.
    let fd_links: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    assert!(
        fd_links.iter().any(|l| l.starts_with("/memfd:concur-shm")),
        "{fd_links:?}"
    );
    fork(|| shm.write_at(100, &[9]).unwrap()).expect_success(LIMIT, "writer");
    assert_eq!(shm.to_vec()[100], 9);
}

#[test]
fn racing_raw_copies_are_whole_for_aligned_words() {
    // Unlocked copies are race-free; aligned 8-byte elements are copied as one
    // atomic word, so a reader never sees a torn u64.
    let arr = Array::<u64>::zeroed_with(64, false).unwrap();
    let child = fork(|| {
        for i in 0..20_000u64 {
            let v = if i % 2 == 0 { 0 } else { u64::MAX };
            for k in 0..64 {
                arr.set(k, v).unwrap();
            }
        }
    });
    for _ in 0..2_000 {
        for x in arr.to_vec() {
            assert!(x == 0 || x == u64::MAX, "torn read {x:#x}");
        }
    }
    child.expect_success(LIMIT, "writer");
}

#[test]
fn handles_are_send_and_sync() {
    fn both<T: Send + Sync>() {}
    both::<SharedMemory>();
    both::<Value<u64>>();
    both::<Array<f32>>();
    both::<FrozenArray<u8>>();
    both::<Lock>();
    both::<concur_process::sync::RLock>();
    both::<concur_process::sync::Semaphore>();
    both::<concur_process::sync::BoundedSemaphore>();
    both::<concur_process::sync::Event>();
    both::<concur_process::sync::Condition>();
    both::<concur_process::sync::Barrier>();
    // And they can be moved to and used from another thread.
    let v = Value::new(1u8).unwrap();
    let v2 = v.clone();
    thread::spawn(move || v2.set(2)).join().unwrap();
    assert_eq!(v.get(), 2);
}
