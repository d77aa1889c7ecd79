//! `FrozenArray<T>`: an immutable array in a sealed memfd, readable as `&[T]` in every
//! process without copying.
//!
//! The creator writes the data into a fresh memfd with `pwrite` (it never maps it
//! writable), then adds `F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`:
//! from then on the kernel refuses every write, writable mapping and resize, for
//! every process, forever. A receiver checks those seals on the descriptor it got
//! before mapping it read-only, so a peer cannot pass off a writable file. That is
//! what makes plain `&[T]` access sound.
//!
//! Layout: a `FrozenHeader` at offset 0, the data at `data_offset` (64-byte aligned).

use crate::block::mapping::Mapping;
use crate::block::sys;
use bytemuck::{Pod, Zeroable};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

const MAGIC: u32 = 0x6672_7a6e; // "frzn"

/// The first bytes of a frozen block (immutable once sealed, so plain data).
#[derive(Copy, Clone, Pod, Zeroable)]
#[repr(C)]
struct FrozenHeader {
    magic: u32,
    elem_size: u32,
    elem_align: u32,
    reserved: u32,
    len: u64,
    data_offset: u64,
}

/// An immutable array of plain data in sealed shared memory: hand a large, read-only
/// input to other processes (pool tasks, children) without copying it.
///
/// It dereferences to `&[T]`. The kernel guarantees nobody can change the memory
/// (see the module docs), so reading it needs no lock and no copy. Sending it to
/// another process sends only the descriptor; the receiver maps the same pages.
/// Made once from a slice ([`FrozenArray::from_slice`]); clones share one mapping.
///
/// ```
/// use concur::process::shm::FrozenArray;
/// let big: Vec<u32> = (0..10_000).collect();
/// let frozen = FrozenArray::from_slice(&big)?;
/// assert_eq!(frozen.len(), 10_000);
/// assert_eq!(frozen[9_999], 9_999);
/// assert_eq!(frozen.iter().map(|&x| u64::from(x)).sum::<u64>(), 49_995_000);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct FrozenArray<T> {
    map: Arc<Mapping>,
    len: usize,
    data: usize,
    _t: PhantomData<T>,
}

impl<T> Clone for FrozenArray<T> {
    fn clone(&self) -> Self {
        FrozenArray {
            map: self.map.clone(),
            len: self.len,
            data: self.data,
            _t: PhantomData,
        }
    }
}

impl<T: Pod> FrozenArray<T> {
    /// Copies `items` into a new sealed block.
    ///
    /// # Errors
    /// `InvalidInput` for a zero-sized `T`, an alignment above the page size or a
    /// size overflow; the OS error if the block cannot be created, sealed or mapped.
    ///
    /// ```
    /// let f = concur::process::shm::FrozenArray::from_slice(&[1.0f32, 2.0])?;
    /// assert_eq!(&*f, &[1.0, 2.0]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_slice(items: &[T]) -> io::Result<Self> {
        let (size, align) = (size_of::<T>(), align_of::<T>());
        let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidInput, m.to_owned());
        if size == 0 || align > sys::page_size() {
            return Err(bad(
                "element type must have a non-zero size and at most page alignment",
            ));
        }
        let data = size_of::<FrozenHeader>().next_multiple_of(align.max(64));
        let bytes: &[u8] = bytemuck::cast_slice(items);
        let total = data
            .checked_add(bytes.len())
            .ok_or_else(|| bad("array too large"))?;
        let header = FrozenHeader {
            magic: MAGIC,
            elem_size: size as u32,
            elem_align: align as u32,
            reserved: 0,
            len: items.len() as u64,
            data_offset: data as u64,
        };
        let fd = sys::frozen_memfd(total, &[(0, bytemuck::bytes_of(&header)), (data, bytes)])?;
        Self::from_mapping(Mapping::new(fd, false, None)?)
    }

    /// Checks the header of a sealed, read-only mapping against `T`.
    fn from_mapping(map: Arc<Mapping>) -> io::Result<Self> {
        let invalid = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_owned());
        let hp = map
            .range(0, size_of::<FrozenHeader>(), align_of::<FrozenHeader>())
            .ok_or_else(|| invalid("frozen block too small"))?;
        // SAFETY: in range and aligned (checked); the memory is sealed against writes
        // (checked by every constructor before mapping), so reading it is race-free.
        let h: FrozenHeader = unsafe { hp.cast::<FrozenHeader>().read() };
        if h.magic != MAGIC
            || h.elem_size as usize != size_of::<T>()
            || h.elem_align as usize != align_of::<T>()
        {
            return Err(invalid("frozen block does not hold this element type"));
        }
        let len = usize::try_from(h.len).map_err(|_| invalid("bad length"))?;
        let data = usize::try_from(h.data_offset).map_err(|_| invalid("bad offset"))?;
        let bytes = len
            .checked_mul(size_of::<T>())
            .ok_or_else(|| invalid("bad length"))?;
        if data < size_of::<FrozenHeader>() || map.range(data, bytes, align_of::<T>()).is_none() {
            return Err(invalid("frozen data lies outside its block"));
        }
        Ok(FrozenArray {
            map,
            len,
            data,
            _t: PhantomData,
        })
    }

    /// True if both handles refer to the same block.
    ///
    /// ```
    /// let f = concur::process::shm::FrozenArray::from_slice(&[1u8])?;
    /// assert!(f.ptr_eq(&f.clone()));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ptr_eq(&self, other: &Self) -> bool {
        self.map.id() == other.map.id()
    }
}

impl<T: Pod> Deref for FrozenArray<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        let p = self.map.ptr().wrapping_add(self.data).cast::<T>();
        // SAFETY: `len` elements at `data` lie inside the mapping and are aligned
        // (checked in `from_mapping`); the mapping lives as long as `self`; the file is
        // sealed against writes and resizes for every process, so nothing can change
        // or truncate the memory while the slice lives; any bytes are a valid `T: Pod`.
        unsafe { std::slice::from_raw_parts(p, self.len) }
    }
}

impl<T: Pod> Serialize for FrozenArray<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::block::serialize_mapping(&self.map, s)
    }
}

impl<'de, T: Pod> Deserialize<'de> for FrozenArray<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let (fd, name) = crate::block::deserialize_fd(d)?;
        let seals = sys::seals(std::os::fd::AsFd::as_fd(&fd));
        let needed = rustix::fs::SealFlags::WRITE | rustix::fs::SealFlags::SHRINK;
        if name.is_some() || !seals.contains(needed) {
            return Err(D::Error::custom(
                "received a FrozenArray whose memory is not sealed read-only",
            ));
        }
        let map = Mapping::new(fd, false, None).map_err(D::Error::custom)?;
        Self::from_mapping(map).map_err(D::Error::custom)
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for FrozenArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrozenArray")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}
