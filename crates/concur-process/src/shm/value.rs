//! `Value<T>`: Python's `multiprocessing.Value` (and `RawValue`), one plain-data value
//! in shared memory with an optional process-shared lock. A one-element block of the
//! same layout as an `Array` (see `array.rs`), tagged as a value.

use super::array::{Block, BlockWire, Locking, Shape};
use crate::sync::{Lock, OwnerDied};
use bytemuck::Pod;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io;

/// One value of plain data in shared memory: Python's `multiprocessing.Value` (with
/// its lock) or `RawValue` (without), as a cheaply cloneable, serializable handle.
///
/// [`get`](Value::get) and [`set`](Value::set) copy under the lock if there is one
/// (so they block only to take it); a read-modify-write such as `+= 1` must hold the
/// lock across both, with [`with_lock`](Value::with_lock) or a guard from
/// [`get_lock`](Value::get_lock) — copies made while the calling thread holds the lock
/// do not lock again, so Python's `with v.get_lock(): v.value += 1` works as written.
/// Sending a `Value` to another process sends its block's descriptor: both sides see
/// the same memory.
///
/// # Examples
///
/// ```
/// use concur::process::shm::Value;
/// use std::thread;
///
/// let counter = Value::new(0i64)?;
/// let workers: Vec<_> = (0..4)
///     .map(|_| {
///         let c = counter.clone();
///         thread::spawn(move || {
///             for _ in 0..1000 {
///                 c.with_lock(|v| *v += 1).unwrap();
///             }
///         })
///     })
///     .collect();
/// for w in workers {
///     w.join().unwrap();
/// }
/// assert_eq!(counter.get(), 4000);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Value<T> {
    block: Block<T>,
}

impl<T> Clone for Value<T> {
    fn clone(&self) -> Self {
        Value {
            block: self.block.clone(),
        }
    }
}

impl<T: Pod> Value<T> {
    /// Creates a value holding `value`, with a lock of its own (Python's default).
    ///
    /// # Errors
    /// `InvalidInput` for a zero-sized `T`; the OS error if the block cannot be created
    /// or mapped.
    ///
    /// ```
    /// let v = concur::process::shm::Value::new(1.5f64)?;
    /// assert_eq!(v.get(), 1.5);
    /// assert!(v.get_lock().is_some());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(value: T) -> io::Result<Self> {
        Self::new_with(value, Locking::Own)
    }

    /// Creates a value without a lock (Python's `RawValue`, or `lock=False`): copies
    /// are free of data races, but a reader racing a writer may see a mix of old and
    /// new bytes, and there is no [`with_lock`](Value::with_lock).
    ///
    /// # Errors
    /// As for [`new`](Value::new).
    ///
    /// ```
    /// let v = concur::process::shm::Value::new_raw(7u8)?;
    /// v.set(8);
    /// assert_eq!((v.get(), v.get_lock().is_none()), (8, true));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new_raw(value: T) -> io::Result<Self> {
        Self::new_with(value, Locking::Raw)
    }

    /// Creates a value with the given locking (Python's `lock=` argument: `true`,
    /// `false`, or an existing [`Lock`], e.g. one shared with other values).
    ///
    /// # Errors
    /// As for [`new`](Value::new).
    ///
    /// ```
    /// use concur::process::{shm::Value, sync::Lock};
    /// let lock = Lock::new()?;
    /// let (a, b) = (Value::new_with(1u32, lock.clone())?, Value::new_with(2u32, lock.clone())?);
    /// let _g = lock.acquire().unwrap(); // guards both
    /// a.set(a.get() + b.get());
    /// assert_eq!(a.get(), 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new_with(value: T, locking: impl Into<Locking>) -> io::Result<Self> {
        Block::create(Shape::Value, 1, Some(&[value]), locking.into()).map(|block| Value { block })
    }

    /// A copy of the value (Python's `.value`), taken under the lock if there is one.
    ///
    /// If the lock's previous holder died holding it, the value is read anyway (it may
    /// be half-updated) and a warning is logged; [`with_lock`](Value::with_lock)
    /// reports it instead.
    ///
    /// # Panics
    /// Inside this value's own [`with_lock`](Value::with_lock) (use the reference there).
    ///
    /// ```
    /// assert_eq!(concur::process::shm::Value::new(3u16)?.get(), 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn get(&self) -> T {
        let mut v = [T::zeroed()];
        self.block.read(0, &mut v);
        v[0]
    }

    /// Stores `value` (Python's `.value = x`), under the lock if there is one.
    ///
    /// # Panics
    /// As for [`get`](Value::get).
    ///
    /// ```
    /// let v = concur::process::shm::Value::new(0u64)?;
    /// v.set(9);
    /// assert_eq!(v.get(), 9);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn set(&self, value: T) {
        self.block.write(0, &[value]);
    }

    /// Runs `f` on the value as `&mut T` while holding the lock, and returns its
    /// result: a read-modify-write that no other process can interleave with.
    ///
    /// # Errors
    /// [`OwnerDied`] with `f`'s result if the lock's previous holder died holding it
    /// (the value may be half-updated; `f` ran anyway).
    ///
    /// # Panics
    /// If the value has no lock, or the calling thread already holds it. A panic in `f`
    /// releases the lock and propagates.
    ///
    /// ```
    /// let v = concur::process::shm::Value::new(41i32)?;
    /// let now = v.with_lock(|x| { *x += 1; *x }).unwrap();
    /// assert_eq!(now, 42);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn with_lock<R>(&self, f: impl FnOnce(&mut T) -> R) -> Result<R, OwnerDied<R>> {
        self.block.with_lock(|s| f(&mut s[0]))
    }

    /// The lock guarding the value, if it has one (Python's `get_lock()`).
    ///
    /// ```
    /// let v = concur::process::shm::Value::new(0u8)?;
    /// let g = v.get_lock().unwrap().acquire().unwrap();
    /// v.set(v.get() + 1); // under the held lock, without locking again
    /// drop(g);
    /// assert_eq!(v.get(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_lock(&self) -> Option<&Lock> {
        self.block.lock()
    }

    /// The value's address in this process. Getting it is safe; using it is subject
    /// to the [module docs'](super) rules.
    ///
    /// ```
    /// let v = concur::process::shm::Value::new(0u32)?;
    /// assert!(!v.as_ptr().is_null());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn as_ptr(&self) -> *mut T {
        self.block.data_ptr()
    }

    /// True if both handles refer to the same value.
    ///
    /// ```
    /// use concur::process::shm::Value;
    /// let v = Value::new(0u8)?;
    /// assert!(v.ptr_eq(&v.clone()));
    /// assert!(!v.ptr_eq(&Value::new(0u8)?));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ptr_eq(&self, other: &Self) -> bool {
        self.block.same(&other.block)
    }
}

impl<T: Pod> Serialize for Value<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.block.to_wire().serialize(s)
    }
}

impl<'de, T: Pod> Deserialize<'de> for Value<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = BlockWire::deserialize(d)?;
        Block::from_wire(Shape::Value, w)
            .map(|block| Value { block })
            .map_err(<D::Error as serde::de::Error>::custom)
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Value");
        if self.get_lock().is_none() {
            d.field("value", &self.get());
        }
        d.field("lock", &self.get_lock()).finish_non_exhaustive()
    }
}
