//! `Array<T>`: Python's `multiprocessing.Array` (and `RawArray`), a fixed-length array
//! of plain data in shared memory, with an optional process-shared lock.
//!
//! # Block layout
//!
//! ```text
//! 0            ArrayHeader (repr(C), atomics)
//! lock_offset  MutexState of the array's own Lock       (only with an own lock)
//! data_offset  len × T, aligned to max(align_of::<T>(), 64)
//! ```
//!
//! The header is written by the creator before any other handle exists, `magic` last
//! (`Release`); a receiver checks `magic` (`Acquire`), the kind (value or array), the
//! element size and alignment against its `T`, and that the data fits in the block,
//! before building a handle. Whether the array has its own lock is in the header, so
//! every handle agrees; an external lock travels with the array.
//!
//! # Access
//!
//! Copies (`get`, `set`, `to_vec`, ...) take the lock if there is one, then copy with
//! atomic loads/stores (see `mapping.rs`). [`Array::with_lock`] hands the closure a
//! `&mut [T]` into the shared memory: sound because every access to a locked array,
//! from any handle in any process, takes the same lock, and while the slice lives the
//! thread can neither release that lock nor copy the same data (both are refused:
//! `mutex::lend`).

use crate::block::SharedMemory;
use crate::block::mapping;
use crate::block::sys;
use crate::sync::mutex::{Key, MutexState};
use crate::sync::{Lock, OwnerDied};
use bytemuck::Pod;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

const MAGIC: u32 = 0x6172_7279; // "arry"
const OWN_LOCK: u32 = 1;

/// What a block holds: one value or an array (a `Value` cannot be received as an
/// `Array` or the other way round).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub(crate) enum Shape {
    Value = 1,
    Array = 2,
}

/// The first bytes of a value or array block. See the module docs.
#[repr(C)]
struct ArrayHeader {
    magic: AtomicU32,
    shape: AtomicU32,
    elem_size: AtomicU32,
    elem_align: AtomicU32,
    flags: AtomicU32,
    _reserved: AtomicU32,
    len: AtomicU64,
    lock_offset: AtomicU64,
    data_offset: AtomicU64,
}

fn header(mem: &SharedMemory) -> io::Result<&ArrayHeader> {
    let p = mem
        .mapping()
        .range(0, size_of::<ArrayHeader>(), align_of::<ArrayHeader>())
        .ok_or_else(|| invalid("shared memory block too small for an array header"))?;
    // SAFETY: the range is inside the mapping, which `mem` keeps alive for the
    // returned lifetime, and aligned; the header is atomics only, so any bytes are a
    // valid value and a shared reference is sound while other processes write it.
    Ok(unsafe { &*p.cast::<ArrayHeader>() })
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

fn align_up(x: usize, a: usize) -> Option<usize> {
    x.checked_add(a - 1).map(|y| y & !(a - 1))
}

/// Which lock guards a new [`Value`](super::Value) or [`Array`]: Python's `lock=`
/// argument (`True`, `False`, or an existing lock).
///
/// ```
/// use concur::process::shm::{Array, Locking};
/// let own = Array::<u8>::zeroed_with(4, Locking::Own)?;
/// let raw = Array::<u8>::zeroed_with(4, false)?; // From<bool>
/// let shared = Array::<u8>::zeroed_with(4, own.get_lock().unwrap().clone())?; // From<Lock>
/// assert!(raw.get_lock().is_none());
/// assert!(shared.get_lock().unwrap().ptr_eq(own.get_lock().unwrap()));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub enum Locking {
    /// A new lock of its own, stored in the same block (Python's `lock=True`).
    Own,
    /// No lock (Python's `lock=False`, `RawArray`): copies are race-free but a
    /// reader may see a half-written element.
    Raw,
    /// An existing process-shared lock, e.g. one guarding several values.
    Shared(Lock),
}

impl From<bool> for Locking {
    fn from(lock: bool) -> Self {
        if lock { Locking::Own } else { Locking::Raw }
    }
}

impl From<Lock> for Locking {
    fn from(lock: Lock) -> Self {
        Locking::Shared(lock)
    }
}

/// The machinery `Value` and `Array` share: a block, its data range and its lock.
pub(crate) struct Block<T> {
    mem: SharedMemory,
    len: usize,
    data: usize,
    lock: Option<Lock>,
    own_lock: bool,
    _t: PhantomData<T>,
}

impl<T> Clone for Block<T> {
    fn clone(&self) -> Self {
        Block {
            mem: self.mem.clone(),
            len: self.len,
            data: self.data,
            lock: self.lock.clone(),
            own_lock: self.own_lock,
            _t: PhantomData,
        }
    }
}

impl<T: Pod> Block<T> {
    /// A new zeroed block for `len` elements, filled from `init` if given.
    pub(crate) fn create(
        shape: Shape,
        len: usize,
        init: Option<&[T]>,
        locking: Locking,
    ) -> io::Result<Self> {
        let (size, align) = (size_of::<T>(), align_of::<T>());
        if size == 0 || align > sys::page_size() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "element type must have a non-zero size and at most page alignment",
            ));
        }
        let too_big = || io::Error::new(io::ErrorKind::InvalidInput, "array too large");
        let own = matches!(locking, Locking::Own);
        let lock_offset = align_up(size_of::<ArrayHeader>(), align_of::<MutexState>()).unwrap_or(0);
        let after = if own {
            lock_offset + size_of::<MutexState>()
        } else {
            size_of::<ArrayHeader>()
        };
        let data = align_up(after, align.max(64)).ok_or_else(too_big)?;
        let total = len
            .checked_mul(size)
            .and_then(|b| b.checked_add(data))
            .ok_or_else(too_big)?;
        let mem = SharedMemory::anonymous("concur-array", total)?;
        let lock = match locking {
            Locking::Own => Some(Lock::create_at(mem.clone(), lock_offset)?),
            Locking::Raw => None,
            Locking::Shared(l) => Some(l),
        };
        let block: Block<T> = Block {
            mem,
            len,
            data,
            lock,
            own_lock: own,
            _t: PhantomData,
        };
        if let Some(init) = init {
            // SAFETY: `data + len * size <= total`, inside the writable mapping; no
            // reference into the block exists (it is not shared yet).
            unsafe { mapping::store(block.data_ptr().cast(), bytemuck::cast_slice(init)) };
        }
        let h = header(&block.mem)?;
        h.shape.store(shape as u32, Ordering::Relaxed);
        h.elem_size.store(size as u32, Ordering::Relaxed);
        h.elem_align.store(align as u32, Ordering::Relaxed);
        h.flags
            .store(if own { OWN_LOCK } else { 0 }, Ordering::Relaxed);
        h.len.store(len as u64, Ordering::Relaxed);
        h.lock_offset.store(lock_offset as u64, Ordering::Relaxed);
        h.data_offset.store(data as u64, Ordering::Relaxed);
        h.magic.store(MAGIC, Ordering::Release);
        Ok(block)
    }

    /// Attaches to a received block, checking its header against `shape` and `T`.
    fn attach(shape: Shape, mem: SharedMemory, external: Option<Lock>) -> io::Result<Self> {
        let h = header(&mem)?;
        if h.magic.load(Ordering::Acquire) != MAGIC
            || h.shape.load(Ordering::Relaxed) != shape as u32
        {
            return Err(invalid(
                "shared memory does not hold the expected value or array",
            ));
        }
        if h.elem_size.load(Ordering::Relaxed) as usize != size_of::<T>()
            || h.elem_align.load(Ordering::Relaxed) as usize != align_of::<T>()
        {
            return Err(invalid("shared array element type does not match"));
        }
        let to_usize = |v: u64| usize::try_from(v).map_err(|_| invalid("bad array header"));
        let len = to_usize(h.len.load(Ordering::Relaxed))?;
        let data = to_usize(h.data_offset.load(Ordering::Relaxed))?;
        let bytes = len
            .checked_mul(size_of::<T>())
            .ok_or_else(|| invalid("bad array length"))?;
        if mem.mapping().range(data, bytes, align_of::<T>()).is_none()
            || data < size_of::<ArrayHeader>()
        {
            return Err(invalid("shared array data lies outside its block"));
        }
        let own = h.flags.load(Ordering::Relaxed) & OWN_LOCK != 0;
        let lock = match (own, external) {
            (true, None) => {
                let off = to_usize(h.lock_offset.load(Ordering::Relaxed))?;
                Some(Lock::attach(mem.clone(), off)?)
            }
            (true, Some(_)) => return Err(invalid("array with its own lock sent with another")),
            (false, ext) => ext,
        };
        Ok(Block {
            mem,
            len,
            data,
            lock,
            own_lock: own,
            _t: PhantomData,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn lock(&self) -> Option<&Lock> {
        self.lock.as_ref()
    }

    pub(crate) fn data_ptr(&self) -> *mut T {
        self.mem.as_ptr().wrapping_add(self.data).cast()
    }

    fn data_key(&self) -> Key {
        (self.mem.mapping().id(), self.data)
    }

    /// Runs `f` with the array's lock held for a copy (if it has one).
    #[track_caller]
    fn locked<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = self
            .lock
            .as_ref()
            .and_then(|l| l.acquire_for_copy(self.data_key()));
        f()
    }

    /// Copies `out.len()` elements starting at `start` (in range: checked by callers).
    #[track_caller]
    pub(crate) fn read(&self, start: usize, out: &mut [T]) {
        debug_assert!(start + out.len() <= self.len);
        self.locked(|| {
            let src = self.data_ptr().wrapping_add(start);
            if self.lock.is_some() {
                // SAFETY: in range (as below), and this thread holds the lock that
                // every access to a locked array's data takes, in every process: no
                // one writes these bytes while we copy, so a plain (vectorised) copy
                // cannot race.
                unsafe { std::ptr::copy_nonoverlapping(src, out.as_mut_ptr(), out.len()) };
                return;
            }
            // SAFETY: the elements are inside the mapping (start + count <= len, and
            // the data range was checked at creation/attach); no reference into them
            // is alive in this thread (`with_lock` on this data makes `locked` panic).
            unsafe { mapping::load(src.cast(), bytemuck::cast_slice_mut(out)) }
        });
    }

    /// Copies `src` in, starting at `start` (in range: checked by callers).
    #[track_caller]
    pub(crate) fn write(&self, start: usize, src: &[T]) {
        debug_assert!(start + src.len() <= self.len);
        self.locked(|| {
            let dst = self.data_ptr().wrapping_add(start);
            if self.lock.is_some() {
                // SAFETY: as in `read`: in range, and exclusive under the lock that
                // every access to this data takes.
                unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
                return;
            }
            // SAFETY: as in `read`.
            unsafe { mapping::store(dst.cast(), bytemuck::cast_slice(src)) }
        });
    }

    /// Runs `f` on the whole data as `&mut [T]`, under the lock.
    #[track_caller]
    pub(crate) fn with_lock<R>(&self, f: impl FnOnce(&mut [T]) -> R) -> Result<R, OwnerDied<R>> {
        let lock = self
            .lock
            .as_ref()
            .expect("with_lock on a shared value or array made without a lock (Locking::Raw)");
        lock.exclusive(self.data_key(), || {
            // SAFETY: the range is inside the live mapping and aligned for `T` (checked
            // at creation/attach), and any bytes are a valid `T: Pod`. Exclusive: this
            // thread holds the lock that every access to this data takes (the array
            // has a lock, so all its handles in every process lock), and `exclusive`
            // marks the data lent, so this thread can neither release the lock nor copy
            // the data until the slice is gone.
            let slice = unsafe { std::slice::from_raw_parts_mut(self.data_ptr(), self.len) };
            f(slice)
        })
    }

    pub(crate) fn same(&self, other: &Self) -> bool {
        self.data == other.data && self.mem.ptr_eq(&other.mem)
    }

    pub(crate) fn to_wire(&self) -> BlockWire {
        BlockWire {
            mem: self.mem.clone(),
            lock: if self.own_lock {
                None
            } else {
                self.lock.clone()
            },
        }
    }

    pub(crate) fn from_wire(shape: Shape, w: BlockWire) -> io::Result<Self> {
        Self::attach(shape, w.mem, w.lock)
    }
}

/// How a value or array travels: its block, and the external lock if it has one.
#[derive(Serialize, Deserialize)]
pub(crate) struct BlockWire {
    mem: SharedMemory,
    lock: Option<Lock>,
}

/// A fixed-length array of plain data in shared memory: Python's
/// `multiprocessing.Array` (with its lock) or `RawArray` (without), as a cheaply
/// cloneable, serializable handle.
///
/// Sending an `Array` to another process sends only the block's descriptor: a large
/// array is handed over without copying, and both sides see each other's writes.
///
/// Element access copies ([`get`](Array::get), [`set`](Array::set),
/// [`to_vec`](Array::to_vec), [`copy_from_slice`](Array::copy_from_slice)), each under
/// the lock if there is one (like Python's synchronized wrapper); for a
/// read-modify-write, use [`with_lock`](Array::with_lock), which hands a closure the
/// whole array as `&mut [T]` under the lock. If the calling thread already holds the
/// lock (through a guard from [`get_lock`](Array::get_lock)), copies do not lock again,
/// so Python's `with arr.get_lock(): arr[0] += 1` works as written. Copies block only
/// to take the lock.
///
/// # Examples
///
/// ```
/// use concur::process::shm::Array;
///
/// let a = Array::from_slice(&[1u32, 2, 3])?;
/// a.set(0, 10)?;
/// a.with_lock(|xs| xs.iter_mut().for_each(|x| *x *= 2)).unwrap();
/// assert_eq!(a.to_vec(), [20, 4, 6]);
/// assert_eq!(a.get(5), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Array<T> {
    block: Block<T>,
}

impl<T> Clone for Array<T> {
    fn clone(&self) -> Self {
        Array {
            block: self.block.clone(),
        }
    }
}

impl<T: Pod> Array<T> {
    /// Creates an array of `len` zeros with a lock of its own.
    ///
    /// # Errors
    /// `InvalidInput` for a zero-sized `T` or a size overflow; the OS error if the
    /// block cannot be created or mapped.
    ///
    /// ```
    /// let a = concur::process::shm::Array::<f64>::zeroed(3)?;
    /// assert_eq!(a.to_vec(), [0.0; 3]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn zeroed(len: usize) -> io::Result<Self> {
        Self::zeroed_with(len, Locking::Own)
    }

    /// Creates an array holding a copy of `items`, with a lock of its own.
    ///
    /// # Errors
    /// As for [`zeroed`](Array::zeroed).
    ///
    /// ```
    /// let a = concur::process::shm::Array::from_slice(&[1i16, -1])?;
    /// assert_eq!(a.to_vec(), [1, -1]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_slice(items: &[T]) -> io::Result<Self> {
        Self::from_slice_with(items, Locking::Own)
    }

    /// Creates an array of `len` zeros with the given locking (Python's `lock=`).
    ///
    /// # Errors
    /// As for [`zeroed`](Array::zeroed).
    ///
    /// ```
    /// let raw = concur::process::shm::Array::<u8>::zeroed_with(2, false)?;
    /// assert!(raw.get_lock().is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn zeroed_with(len: usize, locking: impl Into<Locking>) -> io::Result<Self> {
        Block::create(Shape::Array, len, None, locking.into()).map(|block| Array { block })
    }

    /// Creates an array holding a copy of `items`, with the given locking.
    ///
    /// # Errors
    /// As for [`zeroed`](Array::zeroed).
    ///
    /// ```
    /// let raw = concur::process::shm::Array::from_slice_with(&[7u8], false)?;
    /// assert_eq!(raw.get(0), Some(7));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_slice_with(items: &[T], locking: impl Into<Locking>) -> io::Result<Self> {
        Block::create(Shape::Array, items.len(), Some(items), locking.into())
            .map(|block| Array { block })
    }

    /// The number of elements.
    ///
    /// ```
    /// assert_eq!(concur::process::shm::Array::<u8>::zeroed(5)?.len(), 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.block.len()
    }

    /// Whether the array has no elements.
    ///
    /// ```
    /// assert!(concur::process::shm::Array::<u8>::zeroed(0)?.is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.block.len() == 0
    }

    /// A copy of element `index`, or `None` if it is out of bounds.
    ///
    /// # Panics
    /// Inside this array's own [`with_lock`](Array::with_lock) (use the slice there).
    ///
    /// ```
    /// let a = concur::process::shm::Array::from_slice(&[5u64, 6])?;
    /// assert_eq!((a.get(1), a.get(2)), (Some(6), None));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn get(&self, index: usize) -> Option<T> {
        if index >= self.len() {
            return None;
        }
        let mut v = [T::zeroed()];
        self.block.read(index, &mut v);
        Some(v[0])
    }

    /// Stores `value` at `index`.
    ///
    /// # Errors
    /// [`AccessError::OutOfBounds`](crate::block::AccessError::OutOfBounds) if `index` is
    /// out of bounds (nothing is written).
    ///
    /// # Panics
    /// Inside this array's own [`with_lock`](Array::with_lock).
    ///
    /// ```
    /// let a = concur::process::shm::Array::<i32>::zeroed(2)?;
    /// a.set(1, -4)?;
    /// assert!(a.set(2, 0).is_err());
    /// assert_eq!(a.to_vec(), [0, -4]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn set(&self, index: usize, value: T) -> Result<(), crate::block::AccessError> {
        if index >= self.len() {
            return Err(crate::block::AccessError::OutOfBounds {
                start: index,
                count: 1,
                len: self.len(),
            });
        }
        self.block.write(index, &[value]);
        Ok(())
    }

    /// A copy of the whole array (taken under the lock, so consistent if every writer
    /// locks).
    ///
    /// # Panics
    /// Inside this array's own [`with_lock`](Array::with_lock).
    ///
    /// ```
    /// let a = concur::process::shm::Array::from_slice(&[1u8, 2])?;
    /// assert_eq!(a.to_vec(), vec![1, 2]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn to_vec(&self) -> Vec<T> {
        let mut v = vec![T::zeroed(); self.len()];
        self.block.read(0, &mut v);
        v
    }

    /// Overwrites the whole array with `items` (under the lock).
    ///
    /// # Errors
    /// [`AccessError::LengthMismatch`](crate::block::AccessError::LengthMismatch) if the
    /// lengths differ (nothing is written).
    ///
    /// # Panics
    /// Inside this array's own [`with_lock`](Array::with_lock).
    ///
    /// ```
    /// let a = concur::process::shm::Array::<u16>::zeroed(2)?;
    /// a.copy_from_slice(&[3, 4])?;
    /// assert!(a.copy_from_slice(&[1]).is_err());
    /// assert_eq!(a.to_vec(), [3, 4]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn copy_from_slice(&self, items: &[T]) -> Result<(), crate::block::AccessError> {
        if items.len() != self.len() {
            return Err(crate::block::AccessError::LengthMismatch {
                expected: self.len(),
                got: items.len(),
            });
        }
        self.block.write(0, items);
        Ok(())
    }

    /// Runs `f` on the whole array as `&mut [T]` while holding the array's lock, and
    /// returns its result: the way to read-modify-write atomically across processes.
    ///
    /// Inside `f`, the lock cannot be released, and this array cannot be copied (use
    /// the slice); other arrays sharing the lock can be.
    ///
    /// # Errors
    /// [`OwnerDied`] with `f`'s result if the lock's previous holder died holding it
    /// (the data may be half-updated; `f` ran anyway).
    ///
    /// # Panics
    /// If the array has no lock ([`Locking::Raw`]), or the calling thread already
    /// holds the lock. A panic in `f` releases the lock and propagates.
    ///
    /// ```
    /// let a = concur::process::shm::Array::from_slice(&[1u32, 2, 3])?;
    /// let sum = a.with_lock(|xs| { xs[0] = 100; xs.iter().sum::<u32>() }).unwrap();
    /// assert_eq!(sum, 105);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn with_lock<R>(&self, f: impl FnOnce(&mut [T]) -> R) -> Result<R, OwnerDied<R>> {
        self.block.with_lock(f)
    }

    /// The lock guarding the array, if it has one (Python's `get_lock()`).
    ///
    /// ```
    /// let a = concur::process::shm::Array::<u8>::zeroed(1)?;
    /// let lock = a.get_lock().expect("made with a lock");
    /// let _g = lock.acquire().unwrap();
    /// a.set(0, 1)?; // this thread holds the lock: the copy does not lock again
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_lock(&self) -> Option<&Lock> {
        self.block.lock()
    }

    /// The address of the first element in this process. Getting it is safe; using it
    /// is subject to the [module docs'](super) rules (other processes may access the
    /// memory at any time; take the lock first).
    ///
    /// ```
    /// let a = concur::process::shm::Array::<u64>::zeroed(1)?;
    /// assert_eq!(a.as_ptr() as usize % 64, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn as_ptr(&self) -> *mut T {
        self.block.data_ptr()
    }

    /// True if both handles refer to the same array (even one received from another
    /// process).
    ///
    /// ```
    /// use concur::process::shm::Array;
    /// let a = Array::<u8>::zeroed(1)?;
    /// assert!(a.ptr_eq(&a.clone()));
    /// assert!(!a.ptr_eq(&Array::zeroed(1)?));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ptr_eq(&self, other: &Self) -> bool {
        self.block.same(&other.block)
    }
}

impl<T: Pod> Serialize for Array<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.block.to_wire().serialize(s)
    }
}

impl<'de, T: Pod> Deserialize<'de> for Array<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = BlockWire::deserialize(d)?;
        Block::from_wire(Shape::Array, w)
            .map(|block| Array { block })
            .map_err(<D::Error as serde::de::Error>::custom)
    }
}

impl<T: Pod> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Array")
            .field("len", &self.len())
            .field("lock", &self.get_lock())
            .finish_non_exhaustive()
    }
}
