//! What the server and the objects it keeps share: the [`Object`] trait every kind
//! implements and the [`Ctx`] an op runs with. Below both the server (which keeps a
//! table of objects) and the objects (one module per kind).

use std::sync::atomic::{AtomicBool, Ordering};

use super::error::ManagerError;
use crate::connection::Connection;

/// What an object's op runs with.
pub(crate) struct Ctx<'a> {
    /// The connection the request came on (owner of what it acquires).
    pub(crate) client: u64,
    /// Whether the client runs this server's binary (functions may be sent).
    pub(crate) same_binary: bool,
    /// The server's stopping flag (a blocked op gives up when it is set).
    pub(crate) stopping: &'a AtomicBool,
    /// The client's connection (to notice it hang up during a long wait).
    pub(crate) conn: &'a Connection,
}

/// How often a blocked call checks that its client is still connected.
pub(crate) const HANGUP_CHECK: std::time::Duration = std::time::Duration::from_millis(100);

impl Ctx<'_> {
    /// Whether the server is stopping.
    pub(crate) fn server_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Whether the client has hung up (closed its end: died, or dropped its proxy).
    /// A blocked call checks it every [`HANGUP_CHECK`] and gives up, so that a dead
    /// client's `get` or `acquire` never takes an item or a lock later.
    pub(crate) fn peer_gone(&self) -> bool {
        use rustix::event::{PollFd, PollFlags};
        let mut fds = [PollFd::new(self.conn, PollFlags::RDHUP)];
        match rustix::event::poll(&mut fds, Some(&rustix::time::Timespec::default())) {
            Ok(n) if n > 0 => fds[0]
                .revents()
                .intersects(PollFlags::RDHUP | PollFlags::HUP | PollFlags::ERR),
            _ => false,
        }
    }

    /// The error of a call abandoned because its client hung up.
    pub(crate) fn gone_error(&self) -> ManagerError {
        ManagerError::shutdown("the client went away while the call was waiting")
    }

    /// How long a wait may block before checking on the client: up to `deadline`, at
    /// most [`HANGUP_CHECK`].
    pub(crate) fn wait_slice(deadline: Option<std::time::Instant>) -> Option<std::time::Duration> {
        let now = std::time::Instant::now();
        match deadline {
            Some(d) if d <= now => None,
            Some(d) => Some((d - now).min(HANGUP_CHECK)),
            None => Some(HANGUP_CHECK),
        }
    }
}

/// A shared object on the server.
pub(crate) trait Object: Send + Sync {
    /// The kind and type names it was made with.
    fn tag(&self) -> &str;
    /// Runs one op (serialized by the object's kind); may block until the op's own
    /// deadline or the server's shutdown.
    fn call(&self, ctx: &Ctx<'_>, op: &[u8]) -> Result<Vec<u8>, ManagerError>;
    /// Client `client` disconnected: release what it held.
    fn client_gone(&self, _client: u64) {}
    /// The server is stopping: wake blocked callers (they get a shut-down error).
    fn stop(&self) {}
}
