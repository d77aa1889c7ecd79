//! `Mapping`: one process's mapping of a shared memory file, and race-free copies in
//! and out of it.
//!
//! A mapping is process-local (an address range in this process); the memory behind
//! it is shared with every process that maps the same file. All handles in this crate
//! (`SharedMemory`, `Value`, `Array`, the process-shared locks) hold an
//! `Arc<Mapping>`, so the range stays mapped while any of them lives.
//!
//! # Access rules (why the copies are atomic)
//!
//! Other processes write the memory concurrently, outside anything Rust can see. To
//! keep every access free of data races in Rust's memory model, unsynchronised
//! accesses go through [`load`] and [`store`], which copy with `Relaxed` atomic loads
//! and stores (8 bytes at a time where aligned). A copy is therefore never undefined
//! behaviour, but it is not atomic as a whole: a concurrent writer can leave a mix of
//! old and new bytes, which is still a valid value for plain-data (`Pod`) types.
//! Plain `&`/`&mut` references into the memory are only handed out while a
//! process-shared lock that every accessor takes is held, or for memory that is
//! sealed read-only.

use super::sys::{self, FileId};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};

/// One process's mapping of a shared memory file. Unmapped on drop (see `pins`).
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    fd: OwnedFd,
    id: FileId,
    name: Option<Box<str>>,
    /// Robust mutexes inside this mapping currently held by threads of this process.
    /// glibc links a held robust mutex into the owning thread's robust list by its
    /// address, and walks that list on every robust lock/unlock and at thread exit;
    /// unmapping the range while one is held would leave a dangling pointer there.
    /// A mapping dropped with pins left is deliberately leaked instead.
    pins: AtomicUsize,
}

// SAFETY: the mapping is plain memory shared between processes; every access to it
// goes through atomics, raw pointers under the rules above, or pthread calls made
// for process-shared use, none of which depend on the accessing thread.
unsafe impl Send for Mapping {}
// SAFETY: as above; `&Mapping` gives no unsynchronised access to the bytes.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps the whole file behind `fd` (its current size), shared.
    pub(crate) fn new(
        fd: OwnedFd,
        writable: bool,
        name: Option<Box<str>>,
    ) -> io::Result<Arc<Self>> {
        let (len, id) = sys::stat(fd.as_fd())?;
        let ptr = sys::map(&fd, len, writable)?;
        Ok(Arc::new(Mapping {
            ptr,
            len,
            fd,
            id,
            name,
            pins: AtomicUsize::new(0),
        }))
    }

    /// The first byte of the mapping.
    pub(crate) fn ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The mapped length in bytes (the file's size when it was mapped).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Device and inode: equal for every mapping of the same block.
    pub(crate) fn id(&self) -> FileId {
        self.id
    }

    pub(crate) fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The address of `size` bytes at `offset`, if they lie inside the mapping and
    /// the address is aligned to `align` (a power of two).
    pub(crate) fn range(&self, offset: usize, size: usize, align: usize) -> Option<*mut u8> {
        let end = offset.checked_add(size)?;
        if end > self.len {
            return None;
        }
        // `offset <= len`, so this stays inside (or one past) the mapping.
        let p = self.ptr().wrapping_add(offset);
        (p as usize).is_multiple_of(align).then_some(p)
    }

    /// Records that a thread of this process now holds a robust mutex in here.
    pub(crate) fn pin(&self) {
        self.pins.fetch_add(1, Ordering::Relaxed);
    }

    /// Undoes one [`pin`](Mapping::pin). Never goes below zero: a lock locked through
    /// one mapping and unlocked through another mapping of the same block (possible
    /// with `leak` + `release`) leaves the first pinned — leaked, never unmapped
    /// early.
    pub(crate) fn unpin(&self) {
        let _ = self
            .pins
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| p.checked_sub(1));
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if *self.pins.get_mut() != 0 {
            tracing::warn!(
                len = self.len,
                "shared memory dropped while this process holds a lock inside it; \
                 leaving it mapped so the thread's robust-mutex list stays valid"
            );
            return;
        }
        // SAFETY: `ptr`/`len` come from `sys::map`; this is the last handle, so nothing
        // in this process uses the range any more.
        unsafe { sys::unmap(self.ptr, self.len) }
    }
}

/// Copies `dst.len()` bytes from `src` with relaxed atomic loads.
///
/// # Safety
/// `src..src + dst.len()` lies in a live, writable shared mapping, and while this runs
/// no reference (`&`/`&mut`) to those bytes is alive in this process.
pub(crate) unsafe fn load(src: *const u8, dst: &mut [u8]) {
    let n = dst.len();
    let src = src.cast_mut();
    let head = src.align_offset(8).min(n);
    let mut i = 0;
    while i < head {
        // SAFETY: in range by the contract; any address is aligned for a byte.
        dst[i] = unsafe { AtomicU8::from_ptr(src.add(i)) }.load(Ordering::Relaxed);
        i += 1;
    }
    while i + 8 <= n {
        // SAFETY: in range by the contract, and `src + i` is 8-aligned (after `head`).
        let w = unsafe { AtomicU64::from_ptr(src.add(i).cast::<u64>()) }.load(Ordering::Relaxed);
        dst[i..i + 8].copy_from_slice(&w.to_ne_bytes());
        i += 8;
    }
    while i < n {
        // SAFETY: as for the head.
        dst[i] = unsafe { AtomicU8::from_ptr(src.add(i)) }.load(Ordering::Relaxed);
        i += 1;
    }
}

/// Copies `src` to `dst` with relaxed atomic stores.
///
/// # Safety
/// As for [`load`], with `dst..dst + src.len()` in place of the source range.
pub(crate) unsafe fn store(dst: *mut u8, src: &[u8]) {
    let n = src.len();
    let head = dst.align_offset(8).min(n);
    let mut i = 0;
    while i < head {
        // SAFETY: in range by the contract; any address is aligned for a byte.
        unsafe { AtomicU8::from_ptr(dst.add(i)) }.store(src[i], Ordering::Relaxed);
        i += 1;
    }
    while i + 8 <= n {
        let mut w = [0u8; 8];
        w.copy_from_slice(&src[i..i + 8]);
        // SAFETY: in range by the contract, and `dst + i` is 8-aligned (after `head`).
        unsafe { AtomicU64::from_ptr(dst.add(i).cast::<u64>()) }
            .store(u64::from_ne_bytes(w), Ordering::Relaxed);
        i += 8;
    }
    while i < n {
        // SAFETY: as for the head.
        unsafe { AtomicU8::from_ptr(dst.add(i)) }.store(src[i], Ordering::Relaxed);
        i += 1;
    }
}
