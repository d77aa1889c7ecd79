//! Entry points for the fuzz targets in the repository's `fuzz/` crate (not part of
//! the API: hidden from the docs, no stability promise). Each function feeds
//! arbitrary bytes to one decoder of this crate the way a hostile or broken peer
//! would, and panics only where the decoder broke its contract (a panic, a hang, or an
//! error of the wrong kind); typed errors are the expected outcome of garbage.
//!
//! The targets stay thin and name stable entry points (the connection's public
//! `recv`, the manager's `RequestRef` and `make`, the pool's `split_task` and
//! `decode_report`, the queue's records), so the decoders can change under them.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use serde::{Deserialize, Serialize};

use crate::connection::Connection;
use crate::pool::executor::decode_report;
use crate::pool::wire::{Hello, split_task};
use crate::process::protocol::{PROGRESS_TAG, Report};
use crate::queue::{Queue, TryGetError, TryPutError};

/// A message type with a bit of everything serde has (the connection target decodes
/// frames into it).
#[derive(Serialize, Deserialize, Debug)]
enum Message {
    Unit,
    Number(u64, i32),
    Text(String, Option<char>),
    Nested(Vec<Vec<u16>>, Box<Option<Message>>),
    Bytes(#[serde(with = "serde_bytes_compat")] Vec<u8>),
}

/// `Vec<u8>` through `serialize_bytes` (what `serde_bytes` does), written here.
mod serde_bytes_compat {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        <&[u8]>::deserialize(d).map(<[u8]>::to_vec)
    }
}

/// `Connection::recv` on a stream carrying `data` then end-of-stream: every receive
/// ends in a message or a typed error, the framing errors and the end stick, and the
/// loop ends (each receive consumes input). `data` is cut to 64 KiB (what a socket
/// buffers without a reader). The first byte picks a small or the default frame limit.
pub fn connection_recv(data: &[u8]) {
    let Some((&choice, data)) = data.split_first() else {
        return;
    };
    let data = &data[..data.len().min(64 << 10)];
    let (mine, mut theirs) = UnixStream::pair().expect("socketpair");
    let conn = Connection::from_fd(OwnedFd::from(mine));
    if choice & 1 == 1 {
        conn.set_max_frame(1 << 10);
    }
    theirs.write_all(data).expect("write to the socket buffer");
    drop(theirs);
    for _ in 0..=data.len() + 1 {
        let r = if choice & 2 == 2 {
            conn.recv_bytes().map(drop)
        } else {
            conn.recv::<Message>().map(drop)
        };
        match r {
            Ok(()) => {}
            Err(e) if e.is_decode() => {}
            Err(e) => {
                assert!(
                    e.is_eof() || e.is_malformed() || e.is_too_large(),
                    "an error of no known kind: {e:?}"
                );
                assert!(conn.recv_bytes().is_err(), "a stream error did not stick");
                return;
            }
        }
    }
    panic!("more messages than bytes: the receiver is not consuming input");
}

/// The pool's wire: a worker's first frame (`Hello`), a dispatcher's task frame as
/// the worker splits it, and reports as the dispatcher decodes them (a single call's,
/// a map chunk's, a progress frame). Never resolves a trampoline offset: the
/// dispatcher and its workers are one binary on a socket pair nobody else holds;
/// what is fuzzed is the decoding of everything around it.
pub fn pool_frames(data: &[u8]) {
    let _ = postcard::from_bytes::<Hello>(data);
    if let Some((_offset, _seq, rest)) = split_task(data) {
        assert_eq!(rest.len(), data.len() - 16);
    } else {
        assert!(data.len() < 16);
    }
    if data.first() == Some(&PROGRESS_TAG) {
        let _ = postcard::from_bytes::<Report<()>>(data);
    }
    let _ = decode_report::<u64>(data, Vec::new());
    let _ = decode_report::<String>(data, Vec::new());
    let _ = decode_report::<Vec<Report<(u32, Option<String>)>>>(data, Vec::new());
}

/// The process queue's ring records as a process writing the shared block outside
/// the protocol leaves them: the first 33 bytes choose the ring's size and both
/// sides' positions and counts, the rest is written over the records at the head.
/// Every get then returns an item, `Empty`, `ShutDown` or a typed corruption or
/// decode error, within a bounded number of calls, and a put after them either
/// succeeds or is refused with a typed error.
pub fn queue_ring(data: &[u8]) {
    let Some((head, records)) = data.split_first_chunk::<33>() else {
        return;
    };
    let (&size, positions) = head.split_first().expect("33 bytes");
    let word = |i: usize| {
        let b: [u8; 8] = positions[i * 8..i * 8 + 8].try_into().expect("8 bytes");
        u64::from_le_bytes(b)
    };
    let cap = 64 + 8 * usize::from(size);
    let q = Queue::<Vec<u8>>::with_capacity(4, cap).expect("a queue");
    // Start from a real state (an item in the ring) half of the time.
    if size & 1 == 1 {
        q.put(vec![1, 2, 3]).expect("a put into an empty queue");
    }
    q.scribble(records, [word(0), word(1), word(2), word(3)]);
    for _ in 0..64 {
        match q.try_get() {
            Ok(_) | Err(TryGetError::Decode(_)) => {}
            Err(TryGetError::Empty | TryGetError::ShutDown) => break,
        }
    }
    match q.try_put(vec![9; 5]) {
        Ok(()) | Err(TryPutError::Full(_)) => {}
        Err(e) => panic!("a put error of no known kind: {e:?}"),
    }
}

/// The manager server's handling of an authenticated client's requests: `data` is cut
/// into frames (a `u16` little-endian length before each), each decoded as the server
/// decodes a request; `Create` makes the object, `Call` runs the op on the dicts,
/// lists, namespaces and values made so far (ids are their order; the other kinds'
/// ops may block, and are only made). The client does not run the server's binary, so
/// `update` ops must be refused.
#[cfg(feature = "manager")]
pub fn manager_requests(data: &[u8]) {
    crate::manager::fuzz_requests(data);
}
