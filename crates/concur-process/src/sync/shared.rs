//! `Shared<S>`: a handle to one process-shared state `S` at an offset in a shared
//! memory block, and its wire form.
//!
//! Every process-shared primitive is such a handle. A fresh primitive gets a block of
//! its own (one page); the lock of a [`Value`](crate::shm::Value) lives inside the
//! value's block. The handle holds the block's mapping, so the state stays mapped while
//! any handle lives; serialized, it is the block (its descriptor) and the offset, and
//! the receiver maps the block and checks the tag before trusting the offset.

use crate::block::SharedMemory;
use serde::{Deserialize, Serialize};
use std::io;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, Ordering};

/// The first words of every process-shared state: what it is, once initialised.
///
/// `magic` is written last during initialisation (Release) and checked (Acquire) by
/// every process that attaches, together with `kind`.
#[repr(C)]
pub(crate) struct Tag {
    magic: AtomicU32,
    kind: AtomicU32,
}

const MAGIC: u32 = 0x636f_6e63; // "conc"

/// The kinds of shared state, stored in [`Tag::kind`].
pub(crate) mod kind {
    pub(crate) const LOCK: u32 = 1;
    pub(crate) const RLOCK: u32 = 2;
    pub(crate) const SEMAPHORE: u32 = 3;
    pub(crate) const BOUNDED_SEMAPHORE: u32 = 4;
    pub(crate) const EVENT: u32 = 5;
    pub(crate) const CONDITION: u32 = 6;
    pub(crate) const BARRIER: u32 = 7;
}

/// A state type that lives in shared memory.
///
/// # Safety
/// Implementors are `#[repr(C)]`, start with a [`Tag`] (returned by `tag`), and consist
/// only of atomics and `UnsafeCell`s, so that every byte pattern is a valid value
/// and a shared reference to memory other processes write is sound. Their
/// alignment is at most 8.
pub(crate) unsafe trait SharedState: Sized {
    /// The state's tag.
    fn tag(&self) -> &Tag;
}

/// A handle to one `S` in shared memory. Cloning shares the mapping.
pub(crate) struct Shared<S> {
    mem: SharedMemory,
    offset: usize,
    _state: PhantomData<fn() -> S>,
}

impl<S> Clone for Shared<S> {
    fn clone(&self) -> Self {
        Shared {
            mem: self.mem.clone(),
            offset: self.offset,
            _state: PhantomData,
        }
    }
}

impl<S: SharedState> Shared<S> {
    /// Creates a block of its own holding one `S`, zeroed and then set up by `init`.
    pub(crate) fn create(
        label: &str,
        kind: u32,
        init: impl FnOnce(&S) -> io::Result<()>,
    ) -> io::Result<Self> {
        let mem = SharedMemory::anonymous(label, size_of::<S>())?;
        Self::init_at(mem, 0, kind, init)
    }

    /// Sets up a fresh `S` at `offset` of the zeroed block `mem`, which no other
    /// handle or process can reach yet.
    pub(crate) fn init_at(
        mem: SharedMemory,
        offset: usize,
        kind: u32,
        init: impl FnOnce(&S) -> io::Result<()>,
    ) -> io::Result<Self> {
        let h = Self::locate(mem, offset)?;
        let s = h.get();
        init(s)?;
        s.tag().kind.store(kind, Ordering::Relaxed);
        s.tag().magic.store(MAGIC, Ordering::Release);
        Ok(h)
    }

    /// Attaches to an existing `S` at `offset` of `mem`, checking its tag.
    ///
    /// # Errors
    /// `InvalidData` if the offset does not fit or the tag does not say `kind`.
    pub(crate) fn attach(mem: SharedMemory, offset: usize, kind: u32) -> io::Result<Self> {
        let h = Self::locate(mem, offset)?;
        let tag = h.get().tag();
        let (magic, found) = (
            tag.magic.load(Ordering::Acquire),
            tag.kind.load(Ordering::Relaxed),
        );
        if magic != MAGIC || found != kind {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "shared memory does not hold the expected object (kind {kind}, found \
                     magic {magic:#x} kind {found})"
                ),
            ));
        }
        Ok(h)
    }

    fn locate(mem: SharedMemory, offset: usize) -> io::Result<Self> {
        if mem
            .mapping()
            .range(offset, size_of::<S>(), align_of::<S>())
            .is_none()
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "shared object lies outside its shared memory block",
            ));
        }
        Ok(Shared {
            mem,
            offset,
            _state: PhantomData,
        })
    }

    /// The state.
    pub(crate) fn get(&self) -> &S {
        let p = self.mem.as_ptr().wrapping_add(self.offset).cast::<S>();
        // SAFETY: `locate` checked that `size_of::<S>()` bytes at `offset` lie inside
        // the mapping, which lives as long as `self.mem`, and that they are aligned;
        // `S: SharedState` is valid for any bytes and only interior-mutable, so a
        // shared reference is sound even though other processes write it.
        unsafe { &*p }
    }

    /// The block and mapping the state lives in.
    pub(crate) fn mem(&self) -> &SharedMemory {
        &self.mem
    }

    /// The identity of the state across mappings and processes: block and offset.
    pub(crate) fn key(&self) -> (crate::block::sys::FileId, usize) {
        (self.mem.mapping().id(), self.offset)
    }

    /// Whether both handles refer to the same state (even through different mappings).
    pub(crate) fn same(&self, other: &Self) -> bool {
        self.offset == other.offset && self.mem.ptr_eq(&other.mem)
    }

    /// The wire form: the block and the offset.
    pub(crate) fn to_wire(&self) -> Wire {
        Wire {
            mem: self.mem.clone(),
            offset: self.offset as u64,
        }
    }

    /// Attaches to the state a wire form describes.
    pub(crate) fn from_wire(w: Wire, kind: u32) -> io::Result<Self> {
        let offset = usize::try_from(w.offset)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad offset"))?;
        Self::attach(w.mem, offset, kind)
    }
}

/// How a process-shared object travels: its block (descriptor) and its offset.
#[derive(Serialize, Deserialize)]
pub(crate) struct Wire {
    mem: SharedMemory,
    offset: u64,
}

/// A public handle type made of one `Shared` state (plus nothing that travels).
pub(crate) trait SharedHandle: Sized {
    /// The state type.
    type State: SharedState;
    /// The kind tag a received state must carry.
    const KIND: u32;
    /// The state handle.
    fn shared(&self) -> &Shared<Self::State>;
    /// Rebuilds the handle from a received state.
    fn from_shared(shared: Shared<Self::State>) -> Self;
}

/// Implements `Serialize`/`Deserialize` for a [`SharedHandle`] type: on the wire it is
/// the block (its descriptor) and the offset; the receiver checks the tag.
macro_rules! shared_serde {
    ($ty:ty) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use crate::sync::shared::SharedHandle;
                self.shared().to_wire().serialize(s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                use crate::sync::shared::SharedHandle;
                let w = crate::sync::shared::Wire::deserialize(d)?;
                let shared = crate::sync::shared::Shared::from_wire(w, <$ty>::KIND)
                    .map_err(<D::Error as serde::de::Error>::custom)?;
                Ok(<$ty>::from_shared(shared))
            }
        }
    };
}
pub(crate) use shared_serde;
