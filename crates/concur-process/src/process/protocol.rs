//! What parent and child say on the control socket, and how a function is found in a
//! re-executed binary.
//!
//! Parent → child (Spawn only; a forked child already has everything in memory): one
//! [`Start`] frame whose descriptors are those of the serialized arguments. Then
//! nothing: the child's watch (`SIGIO` on the socket, or a watcher thread) takes the
//! end of the stream for the death of its parent.
//!
//! Child → parent: at most one [`Report`] frame (its descriptors are those of the
//! result), then the child exits. No report means the child exited or was killed
//! before its function returned.
//!
//! With a fork server (see `start/forkserver/server.rs`), the parent first talks to the server on its own
//! socket: one [`Hello`] answered by a [`Welcome`] when the server starts, then per
//! child one [`Request`] (descriptors: the child's end of the control socket and the
//! write end of a status pipe) answered by a [`Reply`] (descriptor: a pidfd of the
//! new child). The child then reads one frame of arguments (body: the serialized
//! arguments; descriptors: theirs) from its control socket and reports as above; the
//! server writes the child's exit status to the status pipe once it has reaped it
//! (`sys::proc::write_status`).
//!
//! Finding the function: `Process::new` monomorphizes `child::trampoline`
//! for the function's type; the parent sends the trampoline as a `code::FnOffset`
//! (its offset from `code::anchor`, the same in every process running this binary,
//! whatever ASLR chose), and the child adds its own `anchor` address back. That is only sound in the
//! same binary, so the start message also carries the parent's [`Identity`] of the
//! executable and the child refuses to run anything if its own differs.

use serde::{Deserialize, Serialize};
use std::io;
use std::os::fd::OwnedFd;

use crate::connection::Connection;

/// Marks a start message of this protocol version.
pub(crate) const MAGIC: u32 = 0x0c0c_0001;

/// The identity of the running executable: its file (device, inode, size and
/// modification time of `/proc/self/exe`), the crate version, and a layout
/// fingerprint of this build (the offsets from `code::anchor` of two functions far
/// apart in the crate, which change with almost any change to the code).
#[derive(Serialize, Deserialize, PartialEq, Eq, Debug, Clone)]
pub(crate) struct Identity {
    exe: [u64; 5],
    version: String,
    layout: [i64; 2],
}

impl Identity {
    /// This process's identity.
    pub(crate) fn current() -> io::Result<Identity> {
        Ok(Identity {
            exe: crate::sys::proc::exe_stat()?,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            layout: [
                crate::code::offset_of(Identity::current as fn() -> io::Result<Identity> as usize),
                crate::code::offset_of(Connection::from_fd as fn(OwnedFd) -> Connection as usize),
            ],
        })
    }

    /// The identity used when this process cannot tell its own: it matches no child,
    /// so nothing is ever looked up on a guess.
    pub(crate) fn unknown() -> Identity {
        Identity {
            exe: [u64::MAX; 5],
            version: String::new(),
            layout: [0, 0],
        }
    }

    /// A deliberately wrong identity, for the tests of the check.
    #[cfg(test)]
    pub(crate) fn corrupted(mut self) -> Identity {
        self.exe[1] ^= 1;
        self
    }
}

/// The start message of a spawned child.
#[derive(Serialize, Deserialize)]
pub(crate) struct Start {
    pub(crate) magic: u32,
    pub(crate) identity: Identity,
    /// The trampoline's `code::FnOffset`.
    pub(crate) offset: i64,
    pub(crate) name: String,
    /// The serialized arguments; descriptor indices refer to the frame's descriptors.
    pub(crate) args: Vec<u8>,
}

/// The first message to a fork server: the protocol version and the parent's binary.
#[derive(Serialize, Deserialize)]
pub(crate) struct Hello {
    pub(crate) magic: u32,
    pub(crate) identity: Identity,
}

/// A fork server's answer to [`Hello`].
#[derive(Serialize, Deserialize)]
pub(crate) enum Welcome {
    /// Ready to fork children.
    Ready,
    /// It will not serve this parent (and exits).
    Refused { failure: Failure, message: String },
}

/// Asks a fork server for a child that runs the trampoline at `offset`.
#[derive(Serialize, Deserialize)]
pub(crate) struct Request {
    pub(crate) offset: i64,
    pub(crate) name: String,
}

/// A fork server's answer to a [`Request`].
#[derive(Serialize, Deserialize)]
pub(crate) enum Reply {
    /// The child runs; its pidfd is the frame's descriptor.
    Forked { pid: u32 },
    /// No child was made.
    Failed { message: String },
}

/// Why a child could not run its function (sent in [`Report::Failed`]).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The child runs a different binary.
    Identity,
    /// The start message was malformed.
    BadStart,
    /// The arguments did not decode.
    DecodeArgs,
    /// The result did not encode.
    EncodeResult,
}

/// The child's report: its function's value, its panic, or why it could not run.
/// Generic in the value; the other variants encode the same for every `R`, so code that
/// does not know `R` sends a `Report<()>`.
#[derive(Serialize, Deserialize)]
pub(crate) enum Report<R> {
    Ok(R),
    Panic {
        message: String,
        location: Option<String>,
    },
    Failed {
        failure: Failure,
        message: String,
    },
    /// Not a report: progress of the running task (a pool worker sends any number of
    /// these before the task's report). Its encoding starts with [`PROGRESS_TAG`].
    Progress {
        done: u64,
        total: Option<u64>,
    },
}

/// The first byte of an encoded [`Report::Progress`] (its variant index), whatever `R`.
pub(crate) const PROGRESS_TAG: u8 = 3;

/// Sends a failure report (best effort: the parent may be gone).
pub(crate) fn send_failure(control: &Connection, failure: Failure, message: String) {
    let _ = control.send(&Report::<()>::Failed { failure, message });
}
