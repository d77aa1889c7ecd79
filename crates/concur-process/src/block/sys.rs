//! Linux glue for shared memory: anonymous `memfd`s, named files under `/dev/shm`
//! (what glibc's `shm_open` does), `mmap`/`munmap` and file seals.
//!
//! Everything that makes a system call for the `shm` module is here; the rest of the
//! module only sees descriptors and mapped addresses.

use rustix::fs::{self, MemfdFlags, Mode, OFlags, SealFlags};
use rustix::mm::{self, MapFlags, ProtFlags};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

/// Where named blocks live: glibc's `shm_open(name)` opens `/dev/shm/<name>`.
const SHM_DIR: &str = "/dev/shm";

/// Seals every anonymous block carries: its size can never change, so no process can
/// shrink it under another's mapping (which would turn accesses into `SIGBUS`).
pub(crate) const SIZE_SEALS: SealFlags = SealFlags::SHRINK.union(SealFlags::GROW);

/// Seals that make a block immutable for everyone, forever (kernel-enforced).
pub(crate) const FROZEN_SEALS: SealFlags =
    SIZE_SEALS.union(SealFlags::WRITE).union(SealFlags::SEAL);

/// The identity of a file: device and inode (the same for every descriptor and
/// every mapping of one block, in every process).
pub(crate) type FileId = (u64, u64);

fn to_u64(size: usize) -> io::Result<u64> {
    u64::try_from(size).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "size too large"))
}

/// Creates an anonymous memory file of `size` zero bytes (`memfd_create`), sealed
/// against resizing. Nothing is left behind when the last descriptor and mapping go,
/// whatever way the processes holding them end.
pub(crate) fn memfd(name: &str, size: usize) -> io::Result<OwnedFd> {
    let fd = fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
    fs::ftruncate(&fd, to_u64(size)?)?;
    fs::fcntl_add_seals(&fd, SIZE_SEALS)?;
    Ok(fd)
}

/// Creates an anonymous memory file of `size` bytes holding `parts` (each copied in at
/// its offset, the rest zero), then seals it read-only for good (`F_SEAL_WRITE`: no
/// process can ever change it).
pub(crate) fn frozen_memfd(size: usize, parts: &[(usize, &[u8])]) -> io::Result<OwnedFd> {
    let fd = fs::memfd_create(
        "concur-frozen",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )?;
    fs::ftruncate(&fd, to_u64(size)?)?;
    for &(offset, bytes) in parts {
        let mut done = 0;
        while done < bytes.len() {
            let at = to_u64(offset + done)?;
            match rustix::io::pwrite(&fd, &bytes[done..], at) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "memfd write")),
                Ok(n) => done += n,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    fs::fcntl_add_seals(&fd, FROZEN_SEALS)?;
    Ok(fd)
}

/// The seals on `fd` (empty for files that do not support sealing).
pub(crate) fn seals(fd: BorrowedFd<'_>) -> SealFlags {
    fs::fcntl_get_seals(fd).unwrap_or(SealFlags::empty())
}

/// Checks a block name the way `shm_open` wants it: one path component, optionally
/// with a leading `/` (POSIX style), at most 255 bytes, no NUL.
pub(crate) fn check_name(name: &str) -> io::Result<&str> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let ok = !bare.is_empty()
        && bare.len() <= 255
        && bare != "."
        && bare != ".."
        && !bare.contains(['/', '\0']);
    if ok {
        Ok(bare)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid shared memory name {name:?}: one path component expected"),
        ))
    }
}

fn path_of(bare: &str) -> String {
    format!("{SHM_DIR}/{bare}")
}

/// Creates the named block `name` (`O_CREAT | O_EXCL`, mode 0600) of `size` zero bytes.
pub(crate) fn create_named(name: &str, size: usize) -> io::Result<OwnedFd> {
    let path = path_of(check_name(name)?);
    let fd = fs::open(
        &path,
        OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::RUSR | Mode::WUSR,
    )?;
    if let Err(e) = fs::ftruncate(&fd, to_u64(size)?) {
        let _ = fs::unlink(&path);
        return Err(e.into());
    }
    Ok(fd)
}

/// Opens the existing named block `name` for reading and writing.
pub(crate) fn open_named(name: &str) -> io::Result<OwnedFd> {
    let path = path_of(check_name(name)?);
    Ok(fs::open(
        &path,
        OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?)
}

/// Removes the name `name` (`shm_unlink`); mappings stay valid until unmapped.
pub(crate) fn unlink_named(name: &str) -> io::Result<()> {
    Ok(fs::unlink(path_of(check_name(name)?))?)
}

/// The size and identity of the file behind `fd`.
pub(crate) fn stat(fd: BorrowedFd<'_>) -> io::Result<(usize, FileId)> {
    let st = fs::fstat(fd)?;
    let size = usize::try_from(st.st_size)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad shared memory size"))?;
    Ok((size, (st.st_dev, st.st_ino)))
}

/// Maps `len` bytes of `fd` shared (`MAP_SHARED`), readable, and writable if asked.
///
/// # Errors
/// `InvalidInput` for `len == 0`, or the `mmap` error.
pub(crate) fn map(fd: impl AsFd, len: usize, writable: bool) -> io::Result<NonNull<u8>> {
    if len == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot map an empty shared memory block",
        ));
    }
    let prot = if writable {
        ProtFlags::READ | ProtFlags::WRITE
    } else {
        ProtFlags::READ
    };
    // SAFETY: a null hint lets the kernel choose a fresh address range, so no existing
    // Rust object is affected; the result is checked below.
    let p = unsafe { mm::mmap(std::ptr::null_mut(), len, prot, MapFlags::SHARED, fd, 0)? };
    NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))
}

/// Unmaps a range returned by [`map`].
///
/// # Safety
/// `ptr`/`len` come from one successful `map` call and nothing uses the range after.
pub(crate) unsafe fn unmap(ptr: NonNull<u8>, len: usize) {
    // SAFETY: the caller guarantees the range is ours and unused from now on.
    if let Err(e) = unsafe { mm::munmap(ptr.as_ptr().cast(), len) } {
        tracing::warn!(error = %e, "munmap of a shared memory block failed");
    }
}

/// The page size: mappings start on a page boundary, so any alignment up to it holds.
pub(crate) fn page_size() -> usize {
    rustix::param::page_size()
}
