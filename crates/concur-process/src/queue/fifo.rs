//! `Queue<T>`: Python's `multiprocessing.Queue`, on a shared-memory ring.

use super::error::{
    DecodeError, GetError, GetTimeoutError, PutError, PutTimeoutError, Rejected, TryGetError,
    TryPutError,
};
use super::ring::{Buf, GetFail, MAX_CAPACITY, MIN_CAPACITY, PutFail, Ring, SMALL, Wait};
use super::{DEFAULT_CAPACITY, DEFAULT_MAXSIZE};
use crate::block::SharedMemory;
use crate::capped::{self, CapError};
use crate::fds;
use concur_core::time::deadline_after;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A fingerprint of the item type, checked when a handle is received.
fn type_hash<T>() -> u64 {
    // FNV-1a of the type's name and size.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in std::any::type_name::<T>()
        .bytes()
        .chain(size_of::<T>().to_le_bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A FIFO queue shared between processes: Python's `multiprocessing.Queue`, for any
/// serde item type, with the API of [`concur::queue::Queue`](concur_core::queue::Queue).
///
/// Items are encoded (postcard) into a ring buffer in an anonymous shared memory
/// block: no pipe and no feeder thread, so a put or get is a copy plus two atomic
/// operations on the fast path and makes a system call only to wake a sleeping peer.
/// The handle is a cheap clone; it is serializable, so it can be passed to a child as
/// a [`Process`](crate::Process) argument or sent over a [`Connection`](crate::Connection)
/// (the block's descriptor travels along), and forked children inherit it.
///
/// Bounded twice: at most [`maxsize`](Queue::maxsize) items, and at most
/// [`capacity_bytes`](Queue::capacity_bytes) bytes of encoded records (8 bytes of
/// header per item plus its encoding rounded up to 8). `put` blocks while either is
/// exhausted. See the [module docs](super) for what happens when a process dies while
/// using the queue, and for what items cannot be queued.
///
/// Blocking calls come in four forms: `put`, `try_put`, `put_timeout`, `put_deadline`
/// (and the same for `get`). A timeout too large to represent waits forever.
///
/// # Examples
///
/// ```
/// use concur::process::{Process, Queue};
///
/// let q = Queue::<String>::new(0)?;
/// let child = Process::spawn(
///     |q: Queue<String>| q.put("hello from the child".to_string()).is_ok(),
///     q.clone(),
/// ).unwrap();
/// assert_eq!(q.get().unwrap(), "hello from the child");
/// assert!(child.join().unwrap());
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Queue<T> {
    pub(super) ring: Ring,
    /// The last item this handle encoded did not fit the stack buffer: encode the
    /// next one straight to the heap (a hint only).
    big: AtomicBool,
    _items: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            ring: self.ring.clone(),
            big: AtomicBool::new(false),
            _items: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("qsize", &self.ring.qsize())
            .field("maxsize", &self.ring.maxsize())
            .field("capacity_bytes", &self.ring.capacity())
            .field("shutdown", &self.ring.is_shutdown())
            .finish()
    }
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    pub(super) fn create(maxsize: usize, bytes: usize, joinable: bool) -> io::Result<Self> {
        if bytes > MAX_CAPACITY {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a queue holds at most {MAX_CAPACITY} bytes, {bytes} requested"),
            ));
        }
        let bytes = bytes.max(MIN_CAPACITY).div_ceil(8) * 8;
        let maxsize = if maxsize == 0 {
            DEFAULT_MAXSIZE
        } else {
            maxsize
        };
        Ring::create(bytes, maxsize as u64, joinable, type_hash::<T>()).map(|ring| Queue {
            ring,
            big: AtomicBool::new(false),
            _items: PhantomData,
        })
    }

    pub(super) fn from_mem(mem: SharedMemory, need_joinable: bool) -> io::Result<Self> {
        Ring::attach(mem, type_hash::<T>(), need_joinable).map(|ring| Queue {
            ring,
            big: AtomicBool::new(false),
            _items: PhantomData,
        })
    }

    /// Creates a queue holding at most `maxsize` items (Python's `Queue(maxsize)`);
    /// `maxsize == 0` means [`DEFAULT_MAXSIZE`](super::DEFAULT_MAXSIZE), as Python's
    /// means its semaphore's limit: a process queue is never unbounded, since its
    /// memory is one shared block of [`DEFAULT_CAPACITY`](super::DEFAULT_CAPACITY)
    /// bytes (pages are only allocated as the ring first reaches them). Never blocks.
    ///
    /// # Errors
    /// The OS error if the shared memory cannot be created or mapped.
    ///
    /// ```
    /// let q = concur::process::Queue::<u32>::new(0)?;
    /// assert_eq!(q.maxsize(), concur::process::queue::DEFAULT_MAXSIZE);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(maxsize: usize) -> io::Result<Self> {
        Self::create(maxsize, DEFAULT_CAPACITY, false)
    }

    /// Creates a queue holding at most `cap` items.
    ///
    /// # Errors
    /// `InvalidInput` if `cap` is 0; else as [`new`](Queue::new).
    ///
    /// ```
    /// let q = concur::process::Queue::<u32>::bounded(2)?;
    /// assert_eq!(q.maxsize(), 2);
    /// assert!(concur::process::Queue::<u32>::bounded(0).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bounded(cap: usize) -> io::Result<Self> {
        if cap == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a bounded queue needs room for at least one item",
            ));
        }
        Self::create(cap, DEFAULT_CAPACITY, false)
    }

    /// Creates a queue holding at most `maxsize` items (0: the default) in a ring of
    /// `bytes` bytes (rounded up to a multiple of 8, at least 64), which also limits
    /// the size of one item ([`max_item_size`](Queue::max_item_size)).
    ///
    /// # Errors
    /// `InvalidInput` if `bytes` exceeds 1 GiB; else as [`new`](Queue::new).
    ///
    /// ```
    /// let q = concur::process::Queue::<Vec<u8>>::with_capacity(0, 4096)?;
    /// assert_eq!(q.capacity_bytes(), 4096);
    /// assert!(q.try_put(vec![0; 5000]).unwrap_err().rejected().is_some());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_capacity(maxsize: usize, bytes: usize) -> io::Result<Self> {
        Self::create(maxsize, bytes, false)
    }

    /// Encodes `item` (on the stack if it is small) and hands the bytes to `f`,
    /// refusing what the ring cannot carry. An item too large for the stack is first
    /// measured by an encoding that stores nothing and stops one byte past the ring's
    /// limit, so an oversize item costs at most `max_item_size` bytes of serialization
    /// and no allocation; one that fits is then encoded into a buffer of its exact size.
    fn encode<R>(&self, item: &T, f: impl FnOnce(&[u8]) -> R) -> Result<R, Rejected> {
        let max = self.ring.max_payload();
        let mut small = [0u8; SMALL];
        let mut big = Vec::new();
        let (r, fds) = fds::collect_fds(|| {
            if !self.big.load(Ordering::Relaxed) {
                match postcard::to_slice(item, &mut small) {
                    Ok(bytes) => return Ok(Some(bytes.len())),
                    Err(postcard::Error::SerializeBufferFull) => {}
                    Err(e) => return Err(CapError::Encode(e)),
                }
            }
            let n = capped::size(item, max)?;
            big.reserve_exact(n);
            capped::extend(item, &mut big, max)?;
            Ok(None)
        });
        if !fds.is_empty() {
            return Err(Rejected::FileDescriptors);
        }
        let bytes: &[u8] = match r {
            Ok(Some(n)) => &small[..n],
            Ok(None) => &big,
            Err(CapError::Over { at_least }) => {
                self.big.store(true, Ordering::Relaxed);
                return Err(Rejected::TooLarge {
                    size: at_least,
                    max,
                });
            }
            Err(CapError::Encode(e)) => return Err(Rejected::Encode(e.to_string())),
        };
        self.big.store(bytes.len() > SMALL, Ordering::Relaxed);
        if bytes.len() > max {
            return Err(Rejected::TooLarge {
                size: bytes.len(),
                max,
            });
        }
        Ok(f(bytes))
    }

    /// Overwrites the ring's records and positions outside the protocol (see
    /// `Ring::scribble`): for the fuzz target only.
    pub(crate) fn scribble(&self, data: &[u8], positions: [u64; 4]) {
        self.ring.scribble(data, positions);
    }

    fn put_until(&self, item: T, wait: Wait) -> Result<(), TryPutError<T>> {
        match self.encode(&item, |bytes| self.ring.put(bytes, wait)) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(PutFail::Full)) => Err(TryPutError::Full(item)),
            Ok(Err(PutFail::ShutDown)) => Err(TryPutError::ShutDown(item)),
            Err(r) => Err(TryPutError::Rejected(item, r)),
        }
    }

    /// Puts `item`, blocking while the queue is full (Python's `put(item)`).
    ///
    /// # Errors
    /// [`PutError::ShutDown`] if the queue is shut down; [`PutError::Rejected`] if
    /// the item can never be queued: larger than
    /// [`max_item_size`](Queue::max_item_size) encoded, holding file descriptors, or
    /// failing to serialize. The item is handed back.
    ///
    /// ```
    /// let q = concur::process::Queue::new(0)?;
    /// q.put(5u8).unwrap();
    /// assert_eq!(q.get().unwrap(), 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        match self.put_until(item, Wait::Until(None)) {
            Ok(()) => Ok(()),
            Err(TryPutError::ShutDown(t)) => Err(PutError::ShutDown(t)),
            Err(TryPutError::Rejected(t, r)) => Err(PutError::Rejected(t, r)),
            Err(TryPutError::Full(_)) => unreachable!("an unlimited put does not time out"),
        }
    }

    /// Puts `item` if there is room now (Python's `put_nowait`). Never blocks: a
    /// producer lock held by another putter at this instant also counts as full.
    ///
    /// # Errors
    /// [`TryPutError::Full`], `ShutDown` or `Rejected`, with the item.
    ///
    /// ```
    /// use concur::process::queue::TryPutError;
    /// let q = concur::process::Queue::bounded(1)?;
    /// q.try_put('a').unwrap();
    /// assert_eq!(q.try_put('b'), Err(TryPutError::Full('b')));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_put(&self, item: T) -> Result<(), TryPutError<T>> {
        self.put_until(item, Wait::Now)
    }

    /// Puts `item`, blocking at most `timeout` for room (Python's `put(item,
    /// timeout=t)`). A timeout too large to represent waits forever.
    ///
    /// # Errors
    /// [`PutTimeoutError::Full`] if there was no room in time; `ShutDown` or
    /// `Rejected` as for [`put`](Queue::put). The item is handed back.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let q = concur::process::Queue::bounded(1)?;
    /// q.put(1).unwrap();
    /// let start = Instant::now();
    /// assert!(q.put_timeout(2, Duration::from_millis(20)).unwrap_err().is_full());
    /// assert!(start.elapsed() >= Duration::from_millis(20));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutTimeoutError<T>> {
        match deadline_after(timeout) {
            Some(d) => self.put_deadline(item, d),
            None => self.put(item).map_err(PutTimeoutError::from),
        }
    }

    /// Puts `item`, blocking until `deadline` at the latest for room.
    ///
    /// # Errors
    /// As for [`put_timeout`](Queue::put_timeout).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let q = concur::process::Queue::bounded(1)?;
    /// assert!(q.put_deadline(1, Instant::now() + Duration::from_secs(1)).is_ok());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn put_deadline(&self, item: T, deadline: Instant) -> Result<(), PutTimeoutError<T>> {
        self.put_until(item, Wait::Until(Some(deadline)))
            .map_err(|e| match e {
                TryPutError::Full(t) => PutTimeoutError::Full(t),
                TryPutError::ShutDown(t) => PutTimeoutError::ShutDown(t),
                TryPutError::Rejected(t, r) => PutTimeoutError::Rejected(t, r),
            })
    }

    fn get_until(&self, wait: Wait) -> Result<T, TryGetError> {
        let mut buf = Buf::new();
        match self.ring.get(&mut buf, wait) {
            Ok(()) => postcard::from_bytes(buf.as_slice()).map_err(|e| {
                TryGetError::Decode(DecodeError {
                    message: e.to_string(),
                })
            }),
            Err(GetFail::Empty) => Err(TryGetError::Empty),
            Err(GetFail::ShutDown) => Err(TryGetError::ShutDown),
            Err(GetFail::Corrupt(message)) => Err(TryGetError::Decode(DecodeError { message })),
        }
    }

    /// Takes the oldest item, blocking while the queue is empty (Python's `get()`).
    ///
    /// # Errors
    /// [`GetError::ShutDown`] once the queue is shut down and drained;
    /// [`GetError::Decode`] if the record could not be decoded (it is consumed).
    ///
    /// ```
    /// let q = concur::process::Queue::new(0)?;
    /// q.put(vec![1, 2]).unwrap();
    /// assert_eq!(q.get().unwrap(), vec![1, 2]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get(&self) -> Result<T, GetError> {
        self.get_until(Wait::Until(None)).map_err(|e| match e {
            TryGetError::ShutDown => GetError::ShutDown,
            TryGetError::Decode(d) => GetError::Decode(d),
            TryGetError::Empty => unreachable!("an unlimited get does not time out"),
        })
    }

    /// Takes the oldest item if there is one now (Python's `get_nowait`). Never
    /// blocks (a busy consumer lock counts as empty).
    ///
    /// # Errors
    /// [`TryGetError::Empty`], `ShutDown` (shut down and drained) or `Decode`.
    ///
    /// ```
    /// use concur::process::queue::TryGetError;
    /// let q = concur::process::Queue::<u8>::new(0)?;
    /// assert_eq!(q.try_get(), Err(TryGetError::Empty));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_get(&self) -> Result<T, TryGetError> {
        self.get_until(Wait::Now)
    }

    /// Takes the oldest item, blocking at most `timeout` (Python's `get(timeout=t)`).
    /// A timeout too large to represent waits forever.
    ///
    /// # Errors
    /// [`GetTimeoutError::Empty`] if none came in time; `ShutDown` or `Decode` as for
    /// [`get`](Queue::get).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let q = concur::process::Queue::<u8>::new(0)?;
    /// let start = Instant::now();
    /// assert!(q.get_timeout(Duration::from_millis(20)).unwrap_err().is_empty());
    /// assert!(start.elapsed() >= Duration::from_millis(20));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        match deadline_after(timeout) {
            Some(d) => self.get_deadline(d),
            None => self.get().map_err(GetTimeoutError::from),
        }
    }

    /// Takes the oldest item, blocking until `deadline` at the latest.
    ///
    /// # Errors
    /// As for [`get_timeout`](Queue::get_timeout).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let q = concur::process::Queue::new(0)?;
    /// q.put(3u8).unwrap();
    /// assert_eq!(q.get_deadline(Instant::now() + Duration::from_secs(1)).unwrap(), 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_deadline(&self, deadline: Instant) -> Result<T, GetTimeoutError> {
        self.get_until(Wait::Until(Some(deadline)))
            .map_err(|e| match e {
                TryGetError::Empty => GetTimeoutError::Empty,
                TryGetError::ShutDown => GetTimeoutError::ShutDown,
                TryGetError::Decode(d) => GetTimeoutError::Decode(d),
            })
    }
}

impl<T> Queue<T> {
    /// The number of items in the queue at this instant (Python's `qsize()`;
    /// approximate while other processes use it). Never blocks.
    ///
    /// ```
    /// let q = concur::process::Queue::new(0)?;
    /// q.put(1u8).unwrap();
    /// assert_eq!(q.qsize(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn qsize(&self) -> usize {
        usize::try_from(self.ring.qsize()).unwrap_or(usize::MAX)
    }

    /// Whether the queue holds no item at this instant (Python's `empty()`).
    ///
    /// ```
    /// let q = concur::process::Queue::<u8>::new(0)?;
    /// assert!(q.empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn empty(&self) -> bool {
        self.ring.qsize() == 0
    }

    /// Whether the queue holds [`maxsize`](Queue::maxsize) items at this instant
    /// (Python's `full()`). A put can also wait for bytes while this is false.
    ///
    /// ```
    /// let q = concur::process::Queue::bounded(1)?;
    /// q.put(1u8).unwrap();
    /// assert!(q.full());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn full(&self) -> bool {
        self.ring.qsize() >= self.ring.maxsize()
    }

    /// The most items the queue holds.
    ///
    /// ```
    /// assert_eq!(concur::process::Queue::<u8>::bounded(7)?.maxsize(), 7);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn maxsize(&self) -> usize {
        usize::try_from(self.ring.maxsize()).unwrap_or(usize::MAX)
    }

    /// The size of the ring of encoded records, in bytes.
    ///
    /// ```
    /// let q = concur::process::Queue::<u8>::new(0)?;
    /// assert_eq!(q.capacity_bytes(), concur::process::queue::DEFAULT_CAPACITY);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn capacity_bytes(&self) -> usize {
        usize::try_from(self.ring.capacity()).unwrap_or(usize::MAX)
    }

    /// The largest encoded item the queue accepts: the ring's size less 8 bytes.
    ///
    /// ```
    /// let q = concur::process::Queue::<u8>::with_capacity(0, 64)?;
    /// assert_eq!(q.max_item_size(), 56);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn max_item_size(&self) -> usize {
        self.ring.max_payload()
    }

    /// Shuts the queue down for every process (Python 3.13's `shutdown`): puts fail
    /// with `ShutDown`; gets drain what is left, then fail with `ShutDown`; blocked
    /// putters and getters wake. With `immediate`, the queued items are dropped at
    /// once (and, for a [`JoinableQueue`](super::JoinableQueue), counted as done).
    /// Blocks only for the other processes' copies in progress.
    ///
    /// ```
    /// use concur::process::queue::GetError;
    /// let q = concur::process::Queue::new(0)?;
    /// q.put(1u8).unwrap();
    /// q.shutdown(false);
    /// assert!(q.put(2).unwrap_err().is_shutdown());
    /// assert_eq!(q.get().unwrap(), 1);
    /// assert_eq!(q.get(), Err(GetError::ShutDown));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&self, immediate: bool) {
        self.ring.shutdown(immediate);
    }

    /// Whether the queue was shut down (by any process).
    ///
    /// ```
    /// let q = concur::process::Queue::<u8>::new(0)?;
    /// assert!(!q.is_shutdown());
    /// q.shutdown(true);
    /// assert!(q.is_shutdown());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_shutdown(&self) -> bool {
        self.ring.is_shutdown()
    }
}

impl<T> Serialize for Queue<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.ring.mem().serialize(s)
    }
}

impl<'de, T: Serialize + DeserializeOwned> Deserialize<'de> for Queue<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mem = SharedMemory::deserialize(d)?;
        Self::from_mem(mem, false).map_err(serde::de::Error::custom)
    }
}
