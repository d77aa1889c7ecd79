//! The raw block of shared memory: [`SharedMemory`] (re-exported as
//! `concur::process::shm::SharedMemory`), its mapping and the OS calls that make it.
//! It sits below everything that lives in shared memory: the process-shared locks of
//! `sync` (each in a block of its own), the queues' rings, and the typed values and
//! arrays of `shm` (which may carry one of those locks). The access rules are in the
//! [`shm`](crate::shm) docs.

pub(crate) mod mapping;
pub(crate) mod sys;

use mapping::Mapping;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// A block of memory shared between processes: Python's
/// `multiprocessing.shared_memory.SharedMemory`, as a cheaply cloneable handle.
///
/// [`SharedMemory::new`] makes an anonymous block (the default: nothing to clean up,
/// ever); [`create`](SharedMemory::create) and [`open`](SharedMemory::open) make or
/// attach to a named one in `/dev/shm`, which outlives the processes until
/// [`unlink`](SharedMemory::unlink)ed. Clones share one mapping; the block is unmapped
/// when the last handle in this process is dropped.
///
/// Access is by copy ([`read_at`](SharedMemory::read_at),
/// [`write_at`](SharedMemory::write_at)) or through raw pointers
/// ([`as_ptr`](SharedMemory::as_ptr), `unsafe` [`as_slice`](SharedMemory::as_slice));
/// see the [`shm` module docs](crate::shm) for the rules. Nothing here blocks.
///
/// Serializable: sending a `SharedMemory` to another process (as a process argument
/// or over a connection) sends its file descriptor, and the receiver maps the same
/// memory. Serializing it with a plain serde serializer (to a file, say) is an error.
///
/// # Examples
///
/// ```
/// use concur::process::shm::SharedMemory;
///
/// let shm = SharedMemory::new(4096)?;
/// shm.write_at(10, b"hello")?;
/// let view = shm.clone(); // the same memory
/// let mut buf = [0u8; 5];
/// view.read_at(10, &mut buf)?;
/// assert_eq!(&buf, b"hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SharedMemory {
    map: Arc<Mapping>,
}

impl SharedMemory {
    /// Creates an anonymous block of `size` zero bytes.
    ///
    /// No file name is involved: the memory is freed by the kernel when the last
    /// handle to it, in any process, is gone (even after `SIGKILL`).
    ///
    /// # Errors
    /// `InvalidInput` if `size` is 0; the OS error if the block cannot be created or
    /// mapped (out of descriptors or memory).
    ///
    /// ```
    /// let shm = concur::process::shm::SharedMemory::new(100)?;
    /// assert_eq!(shm.len(), 100);
    /// assert_eq!(shm.name(), None);
    /// assert!(concur::process::shm::SharedMemory::new(0).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(size: usize) -> io::Result<Self> {
        Self::anonymous("concur-shm", size)
    }

    /// An anonymous block whose memfd carries `label` (visible in `/proc/*/fd`).
    pub(crate) fn anonymous(label: &str, size: usize) -> io::Result<Self> {
        check_size(size)?;
        let fd = sys::memfd(label, size)?;
        Ok(SharedMemory {
            map: Mapping::new(fd, true, None)?,
        })
    }

    /// Creates the named block `name` (`shm_open(name, O_CREAT | O_EXCL)`) of `size`
    /// zero bytes, readable and writable by the current user only.
    ///
    /// The name is one path component, with or without a leading `/`; the block lives
    /// in `/dev/shm` until [`unlink`](SharedMemory::unlink)ed, whatever happens to the
    /// processes (as in Python, remember to unlink it).
    ///
    /// # Errors
    /// `AlreadyExists` if the name is taken; `InvalidInput` for a bad name or a zero
    /// size; other OS errors.
    ///
    /// ```
    /// use concur::process::shm::SharedMemory;
    /// let name = format!("concur-doc-create-{}", std::process::id());
    /// let a = SharedMemory::create(&name, 64)?;
    /// assert_eq!(a.name(), Some(name.as_str()));
    /// assert!(SharedMemory::create(&name, 64).is_err()); // taken
    /// a.unlink()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create(name: &str, size: usize) -> io::Result<Self> {
        check_size(size)?;
        let bare = sys::check_name(name)?;
        let fd = sys::create_named(bare, size)?;
        match Mapping::new(fd, true, Some(bare.into())) {
            Ok(map) => Ok(SharedMemory { map }),
            Err(e) => {
                let _ = sys::unlink_named(bare);
                Err(e)
            }
        }
    }

    /// Attaches to the existing named block `name`, mapping all of it.
    ///
    /// # Errors
    /// `NotFound` if there is no such block; `InvalidInput` for a bad name or an empty
    /// block; other OS errors.
    ///
    /// ```
    /// use concur::process::shm::SharedMemory;
    /// let name = format!("concur-doc-open-{}", std::process::id());
    /// let a = SharedMemory::create(&name, 16)?;
    /// a.write_at(0, &[7])?;
    /// let b = SharedMemory::open(&name)?;
    /// let mut x = [0u8];
    /// b.read_at(0, &mut x)?;
    /// assert_eq!((x[0], b.len()), (7, 16));
    /// a.unlink()?;
    /// assert!(SharedMemory::open(&name).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open(name: &str) -> io::Result<Self> {
        let bare = sys::check_name(name)?;
        let fd = sys::open_named(bare)?;
        Ok(SharedMemory {
            map: Mapping::new(fd, true, Some(bare.into()))?,
        })
    }

    /// Removes the block's name (`shm_unlink`), like Python's `unlink()`: existing
    /// mappings stay valid, and the memory is freed once they are all gone. Does
    /// nothing for an anonymous block, which has no name.
    ///
    /// # Errors
    /// The OS error, such as `NotFound` if the name was already removed.
    ///
    /// ```
    /// use concur::process::shm::SharedMemory;
    /// let name = format!("concur-doc-unlink-{}", std::process::id());
    /// let a = SharedMemory::create(&name, 8)?;
    /// a.unlink()?;
    /// a.write_at(0, &[1])?; // still mapped
    /// assert!(a.unlink().is_err()); // already gone
    /// SharedMemory::new(8)?.unlink()?; // anonymous: nothing to do
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn unlink(&self) -> io::Result<()> {
        match self.map.name() {
            Some(name) => sys::unlink_named(name),
            None => Ok(()),
        }
    }

    /// The block's name without a leading `/`, or `None` for an anonymous block.
    ///
    /// ```
    /// assert_eq!(concur::process::shm::SharedMemory::new(1)?.name(), None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.map.name()
    }

    /// The size of the block in bytes (Python's `size`).
    ///
    /// ```
    /// assert_eq!(concur::process::shm::SharedMemory::new(10)?.len(), 10);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Always false: a block has at least one byte.
    ///
    /// ```
    /// assert!(!concur::process::shm::SharedMemory::new(1)?.is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// Copies `buf.len()` bytes starting at `offset` out of the block. Never blocks.
    ///
    /// The copy is free of data races but not atomic as a whole (see the
    /// [module docs](crate::shm)).
    ///
    /// # Errors
    /// [`AccessError::OutOfBounds`] if the range does not fit in the block.
    ///
    /// ```
    /// use concur::process::shm::{AccessError, SharedMemory};
    /// let shm = SharedMemory::new(8)?;
    /// shm.write_at(4, &[1, 2, 3, 4])?;
    /// let mut buf = [0u8; 4];
    /// shm.read_at(4, &mut buf)?;
    /// assert_eq!(buf, [1, 2, 3, 4]);
    /// assert!(matches!(shm.read_at(6, &mut buf), Err(AccessError::OutOfBounds { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<(), AccessError> {
        let p = self.checked(offset, buf.len())?;
        // SAFETY: the range is inside our live mapping (checked), the mapping is
        // writable (a `SharedMemory` always is), and the crate never hands out
        // references into a `SharedMemory`'s bytes (only `unsafe` `as_slice`, whose
        // caller promises no overlap with this).
        unsafe { mapping::load(p, buf) };
        Ok(())
    }

    /// Copies `data` into the block starting at `offset`. Never blocks.
    ///
    /// # Errors
    /// [`AccessError::OutOfBounds`] if the range does not fit in the block.
    ///
    /// ```
    /// let shm = concur::process::shm::SharedMemory::new(4)?;
    /// shm.write_at(0, b"abcd")?;
    /// assert!(shm.write_at(1, b"abcd").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_at(&self, offset: usize, data: &[u8]) -> Result<(), AccessError> {
        let p = self.checked(offset, data.len())?;
        // SAFETY: as for `read_at`.
        unsafe { mapping::store(p, data) };
        Ok(())
    }

    /// A copy of the whole block.
    ///
    /// ```
    /// let shm = concur::process::shm::SharedMemory::new(3)?;
    /// shm.write_at(1, &[9])?;
    /// assert_eq!(shm.to_vec(), [0, 9, 0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.len()];
        // SAFETY: as for `read_at`; the whole mapping is in range.
        unsafe { mapping::load(self.map.ptr(), &mut v) };
        v
    }

    fn checked(&self, offset: usize, count: usize) -> Result<*mut u8, AccessError> {
        self.map
            .range(offset, count, 1)
            .ok_or(AccessError::OutOfBounds {
                start: offset,
                count,
                len: self.len(),
            })
    }

    /// The address of the first byte in this process (page-aligned). Getting it is
    /// safe; using it is subject to the [module docs'](crate::shm) rules: other processes
    /// may write the memory at any time.
    ///
    /// ```
    /// let shm = concur::process::shm::SharedMemory::new(8)?;
    /// let p = shm.as_ptr();
    /// assert_eq!(p as usize % 4096, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn as_ptr(&self) -> *mut u8 {
        self.map.ptr()
    }

    /// The block as a byte slice, without copying.
    ///
    /// # Safety
    /// While the slice lives, no process may write the block (through any handle,
    /// mapping or pointer) — for instance, because the writers are done and
    /// signalled it through a lock or event — and this process must not write it
    /// through `write_at` or `as_ptr` either.
    ///
    /// ```
    /// let shm = concur::process::shm::SharedMemory::new(4)?;
    /// shm.write_at(0, b"ab")?;
    /// // SAFETY: no other process has this block and nothing writes it meanwhile.
    /// let bytes = unsafe { shm.as_slice() };
    /// assert_eq!(&bytes[..2], b"ab");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: the mapping is live and `len` bytes long while `self` is borrowed;
        // the caller guarantees nobody writes it while the slice lives.
        unsafe { std::slice::from_raw_parts(self.map.ptr(), self.map.len()) }
    }

    /// The block as a mutable byte slice, without copying.
    ///
    /// # Safety
    /// While the slice lives, no process may read or write the block through any other
    /// handle, mapping, pointer or slice (in this process or any other) — for
    /// instance, because every user of the block takes the same process-shared
    /// [`Lock`](crate::sync::Lock) first and the caller holds it.
    ///
    /// ```
    /// let shm = concur::process::shm::SharedMemory::new(4)?;
    /// // SAFETY: no other process has this block and no other access overlaps.
    /// unsafe { shm.as_mut_slice() }.copy_from_slice(b"wxyz");
    /// assert_eq!(shm.to_vec(), b"wxyz");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[allow(clippy::mut_from_ref)] // exclusivity is the caller's promise (# Safety)
    pub unsafe fn as_mut_slice(&self) -> &mut [u8] {
        // SAFETY: the mapping is live, writable and `len` bytes long; the caller
        // guarantees exclusive access while the slice lives.
        unsafe { std::slice::from_raw_parts_mut(self.map.ptr(), self.map.len()) }
    }

    /// True if both handles refer to the same block (even through different mappings,
    /// such as one received from another process).
    ///
    /// ```
    /// use concur::process::shm::SharedMemory;
    /// let a = SharedMemory::new(8)?;
    /// assert!(a.ptr_eq(&a.clone()));
    /// assert!(!a.ptr_eq(&SharedMemory::new(8)?));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ptr_eq(&self, other: &Self) -> bool {
        self.map.id() == other.map.id()
    }

    pub(crate) fn mapping(&self) -> &Arc<Mapping> {
        &self.map
    }
}

fn check_size(size: usize) -> io::Result<()> {
    if size == 0 || isize::try_from(size).is_err() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid shared memory size {size}: must be positive and fit in isize"),
        ));
    }
    Ok(())
}

impl fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedMemory")
            .field("name", &self.name())
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// A descriptor by reference, serialized through the `fds` side table.
struct FdRef<'a>(&'a Mapping);

impl Serialize for FdRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        crate::fds::register(self.0.fd())
            .map_err(S::Error::custom)?
            .serialize(s)
    }
}

#[derive(Serialize)]
struct WireOut<'a> {
    fd: FdRef<'a>,
    name: Option<&'a str>,
}

#[derive(Deserialize)]
struct WireIn {
    #[serde(with = "crate::fds::serde_fd")]
    fd: OwnedFd,
    name: Option<String>,
}

/// Serialization of a mapping: its descriptor (through the `fds` side table) and name.
pub(crate) fn serialize_mapping<S: Serializer>(map: &Mapping, s: S) -> Result<S::Ok, S::Error> {
    WireOut {
        fd: FdRef(map),
        name: map.name(),
    }
    .serialize(s)
}

/// The (descriptor, name) pair of a serialized mapping, not mapped yet.
pub(crate) fn deserialize_fd<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<(OwnedFd, Option<Box<str>>), D::Error> {
    use serde::de::Error;
    let w = WireIn::deserialize(d)?;
    let name = match w.name {
        Some(n) => Some(Box::from(sys::check_name(&n).map_err(D::Error::custom)?)),
        None => None,
    };
    Ok((w.fd, name))
}

impl Serialize for SharedMemory {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_mapping(&self.map, s)
    }
}

impl<'de> Deserialize<'de> for SharedMemory {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let (fd, name) = deserialize_fd(d)?;
        let map = Mapping::new(fd, true, name).map_err(D::Error::custom)?;
        Ok(SharedMemory { map })
    }
}

/// A copy into or out of shared memory was refused: the range or the lengths do not
/// fit. Nothing was copied.
///
/// ```
/// use concur::process::shm::{AccessError, SharedMemory};
/// let shm = SharedMemory::new(4)?;
/// let e = shm.write_at(3, &[1, 2]).unwrap_err();
/// assert_eq!(e, AccessError::OutOfBounds { start: 3, count: 2, len: 4 });
/// assert_eq!(e.to_string(), "range 3..5 is out of bounds for length 4");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AccessError {
    /// `count` items (bytes or elements) at `start` do not fit in `len`.
    OutOfBounds {
        /// The first index (or byte offset) asked for.
        start: usize,
        /// How many items were asked for.
        count: usize,
        /// How many items there are.
        len: usize,
    },
    /// A slice given for a whole array has the wrong length.
    LengthMismatch {
        /// The array's length.
        expected: usize,
        /// The slice's length.
        got: usize,
    },
}

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AccessError::OutOfBounds { start, count, len } => write!(
                f,
                "range {start}..{} is out of bounds for length {len}",
                start.saturating_add(count)
            ),
            AccessError::LengthMismatch { expected, got } => {
                write!(
                    f,
                    "length mismatch: expected {expected} elements, got {got}"
                )
            }
        }
    }
}

impl std::error::Error for AccessError {}

/// For `?` in functions returning `io::Result`: an `InvalidInput` error.
///
/// ```
/// fn f() -> std::io::Result<()> {
///     let shm = concur::process::shm::SharedMemory::new(1)?;
///     shm.write_at(1, &[0])?;
///     Ok(())
/// }
/// assert_eq!(f().unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
/// ```
impl From<AccessError> for io::Error {
    fn from(e: AccessError) -> Self {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}
