//! File descriptors that travel inside serialized values.
//!
//! Serde cannot carry a file descriptor, so values that own one (shared memory blocks,
//! process-shared locks, connections) serialize an *index* into a side table instead,
//! and the transport moves the descriptors themselves next to the bytes (`SCM_RIGHTS`
//! on a Unix socket, or inheritance when a child is started). Python's
//! `multiprocessing.reduction` (`DupFd`, `sendfds`/`recvfds`) works the same way.
//!
//! The tables are per thread and only live for one `collect_fds` / `provide_fds` call,
//! so concurrent sends on other threads never mix their descriptors.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

thread_local! {
    static OUTGOING: RefCell<Option<Vec<OwnedFd>>> = const { RefCell::new(None) };
    static INCOMING: RefCell<Option<Vec<Option<OwnedFd>>>> = const { RefCell::new(None) };
}

/// Runs `f` (a serialization) and returns its result with the descriptors that values
/// registered through [`register`] while it ran, in index order.
pub(crate) fn collect_fds<R>(f: impl FnOnce() -> R) -> (R, Vec<OwnedFd>) {
    let prev = OUTGOING.with(|t| t.borrow_mut().replace(Vec::new()));
    let r = f();
    let fds = OUTGOING.with(|t| std::mem::replace(&mut *t.borrow_mut(), prev));
    (r, fds.unwrap_or_default())
}

/// Runs `f` (a deserialization) with `fds` available to [`take`] by index. Descriptors
/// no value claimed are closed when this returns.
pub(crate) fn provide_fds<R>(fds: Vec<OwnedFd>, f: impl FnOnce() -> R) -> R {
    let table = fds.into_iter().map(Some).collect();
    let prev = INCOMING.with(|t| t.borrow_mut().replace(table));
    let r = f();
    INCOMING.with(|t| *t.borrow_mut() = prev);
    r
}

/// Duplicates `fd` into the table of the enclosing [`collect_fds`] and returns its
/// index, to be serialized in place of the descriptor.
///
/// # Errors
/// `InvalidInput` when no `collect_fds` is running on this thread (the value is being
/// serialized by something that cannot carry descriptors, such as plain postcard to a
/// file), or the `dup` error.
pub(crate) fn register(fd: BorrowedFd<'_>) -> io::Result<u32> {
    let owned = fd.try_clone_to_owned()?;
    OUTGOING.with(|t| match t.borrow_mut().as_mut() {
        Some(v) => {
            v.push(owned);
            u32::try_from(v.len() - 1).map_err(|_| io::Error::other("too many descriptors"))
        }
        None => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "this value holds a file descriptor and can only be sent through a concur \
             connection, queue or process argument",
        )),
    })
}

/// Takes the descriptor at `index` from the table of the enclosing [`provide_fds`].
///
/// # Errors
/// `InvalidData` when there is no table, the index is out of range, or the descriptor
/// was already taken (a malformed or replayed message).
pub(crate) fn take(index: u32) -> io::Result<OwnedFd> {
    INCOMING.with(|t| {
        t.borrow_mut()
            .as_mut()
            .and_then(|v| v.get_mut(index as usize))
            .and_then(Option::take)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("message refers to file descriptor #{index}, which did not arrive"),
                )
            })
    })
}

/// Serde helpers for a field holding an [`OwnedFd`]:
/// `#[serde(with = "crate::fds::serde_fd")]`.
pub(crate) mod serde_fd {
    use super::*;
    use serde::{Deserialize, Deserializer, Serialize, Serializer, de, ser};

    #[cfg_attr(not(test), allow(dead_code))] // values that own their fd use it
    pub(crate) fn serialize<S: Serializer>(fd: &OwnedFd, s: S) -> Result<S::Ok, S::Error> {
        register(fd.as_fd())
            .map_err(ser::Error::custom)?
            .serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OwnedFd, D::Error> {
        let i = u32::deserialize(d)?;
        take(i).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    struct Holder {
        name: String,
        #[serde(with = "serde_fd")]
        fd: OwnedFd,
    }

    #[test]
    fn round_trip_through_the_tables() {
        let (r, _w) = rustix::pipe::pipe().unwrap();
        let h = Holder {
            name: "x".into(),
            fd: r,
        };
        let (bytes, fds) = collect_fds(|| postcard::to_stdvec(&h));
        let bytes = bytes.unwrap();
        assert_eq!(fds.len(), 1);
        let back: Holder = provide_fds(fds, || postcard::from_bytes(&bytes)).unwrap();
        assert_eq!(back.name, "x");
        assert!(rustix::fs::fstat(&back.fd).is_ok());
    }

    #[test]
    fn outside_a_transport_is_an_error_not_a_panic() {
        let (r, _w) = rustix::pipe::pipe().unwrap();
        let h = Holder {
            name: "x".into(),
            fd: r,
        };
        assert!(postcard::to_stdvec(&h).is_err());
        let (bytes, fds) = collect_fds(|| postcard::to_stdvec(&h));
        drop(fds);
        let back: Result<Holder, _> =
            provide_fds(Vec::new(), || postcard::from_bytes(&bytes.unwrap()));
        assert!(back.is_err());
    }
}
