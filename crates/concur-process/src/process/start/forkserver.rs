//! [`StartMethod::ForkServer`](crate::StartMethod::ForkServer), the parent's side: the
//! one fork server of this process (started on first use), the request that makes a
//! child, and the status pipe through which a served child's exit status arrives. The
//! server's side, and the whole protocol, are described in `forkserver/server.rs`.
//!
//! A served child is not our child but the server's, so `waitid` cannot tell its
//! status: the server reaps it and writes the status to a pipe whose read end is
//! [`Served`]. Signals go through the pidfd the server sent (a pidfd may signal any
//! process of the same user, child or not, and stays bound to that process even after
//! it is reaped, so a reused pid is never signalled).
//!
//! Fork servers in CPython (`multiprocessing/forkserver.py`) start one server per
//! parent and pass it the child's descriptors over a Unix socket; that shape is what is
//! followed here (the code is our own).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

mod server;

pub(super) use server::server_main;

use super::{Launch, NO_EXIT, Started, control, launcher};
use crate::code::FnOffset;
use crate::connection::Connection;
use crate::error::ProcessError;
use crate::process::child::Role;
use crate::process::protocol::{self, Failure, Hello, Identity, Reply, Request, Welcome};
use crate::sys::proc::{self as sys, Exit, StatusRead};
use crate::sys::socket;

/// How long a server may take to start (an `exec` and a hello) or to answer a request
/// (a `fork`) before it is taken for broken. Generous: only a wedged or stopped server
/// takes anywhere near this long.
const SERVER_PATIENCE: Duration = Duration::from_secs(60);

/// The exit status of a child made by the fork server, as the server reports it.
pub(crate) struct Status {
    /// The read end of the status pipe (non-blocking).
    status: OwnedFd,
    /// Makes reading the status and recording it one step, so a reader that finds the
    /// pipe empty and closed knows the status was recorded, not lost.
    reading: Mutex<()>,
}

impl Status {
    /// The status pipe, readable once the status arrived (or the server died).
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.status.as_fd()
    }

    /// The status if it arrived, recording it in `exit` (which it reads first: the
    /// pipe gives the status only once). Never blocks beyond another reader's read.
    pub(crate) fn try_exit(&self, exit: &AtomicI64) -> StatusRead {
        let _g = self.reading.lock().unwrap_or_else(PoisonError::into_inner);
        let code = exit.load(Ordering::Acquire);
        if code != NO_EXIT {
            return StatusRead::Exit(Exit::from_exitcode(i32::try_from(code).unwrap_or(-9)));
        }
        let read = sys::read_status(self.fd());
        if let StatusRead::Exit(e) = read {
            exit.store(i64::from(e.exitcode()), Ordering::Release);
        }
        read
    }
}

/// The parent's side of a start: ask the server for the child, then send the child its
/// arguments straight over its control socket.
pub(super) fn start(launch: Launch<'_>) -> Result<(Started, Connection), ProcessError> {
    let identity = (launch.identity)()?;
    let (parent_end, child_end) = socket::socketpair().map_err(ProcessError::spawn)?;
    let offset = FnOffset::of(launch.trampoline).raw();
    let started = fork(&identity, offset, launch.name, child_end.as_fd())?;
    drop(child_end);
    let control = control(parent_end);
    let borrowed: Vec<BorrowedFd<'_>> = launch.fds.iter().map(|f| f.as_fd()).collect();
    match control.send_frame(&launch.args, &borrowed) {
        // A child that died already is reported by join, with its status.
        Err(e) if !e.is_eof() => {
            let _ = sys::signal(started.pidfd(), true);
            return Err(if e.is_too_large() {
                ProcessError::serialization(format!("the arguments are too large: {e}"))
            } else {
                ProcessError::spawn(e.into())
            });
        }
        _ => {}
    }
    Ok((started, control))
}

/// This process's fork server.
struct Server {
    conn: Connection,
    pidfd: OwnedFd,
    /// The process that started it (a forked child has a copy of this static, but the
    /// server is not its child: it starts its own).
    owner: u32,
}

static SERVER: Mutex<Option<Server>> = Mutex::new(None);

/// Asks the fork server (started now if there is none, or restarted once if it has
/// died) for a child that runs the trampoline at `offset`, with `control` as its
/// control socket. Blocks for one round trip to the server (and its start, the first
/// time).
fn fork(
    identity: &Identity,
    offset: i64,
    name: &str,
    control: BorrowedFd<'_>,
) -> Result<Started, ProcessError> {
    let body = postcard::to_stdvec(&Request {
        offset,
        name: os_name(name).to_owned(),
    })
    .map_err(|e| ProcessError::serialization(format!("fork server request: {e}")))?;
    let (status_r, status_w) = sys::status_pipe().map_err(ProcessError::spawn)?;
    let mut g = SERVER.lock().unwrap_or_else(PoisonError::into_inner);
    let me = sys::getpid();
    let mut last = None;
    for _ in 0..2 {
        if g.as_ref().is_none_or(|s| s.owner != me) {
            // A copy inherited through a fork is only dropped (closing our copies of
            // its descriptors): the server belongs to the process that started it.
            *g = None;
            *g = Some(launch(identity)?);
        }
        let Some(server) = g.as_ref() else { break };
        match request(server, &body, control, status_w.as_fd()) {
            Ok(Ok((pid, pidfd))) => {
                return Ok(Started::Served {
                    pid,
                    pidfd,
                    status: Status {
                        status: status_r,
                        reading: Mutex::new(()),
                    },
                });
            }
            Ok(Err(message)) => return Err(ProcessError::spawn(io::Error::other(message))),
            Err(e) => {
                // The server died or broke the protocol: retire it and start another.
                tracing::warn!(error = %e, "concur fork server lost; restarting it");
                if let Some(old) = g.take() {
                    retire(old);
                }
                last = Some(e);
            }
        }
    }
    Err(ProcessError::spawn(last.unwrap_or_else(|| {
        io::Error::other("the fork server could not be started")
    })))
}

/// The part of a process's name a served child uses (the OS keeps 15 bytes of it): a
/// request stays small whatever the name.
fn os_name(name: &str) -> &str {
    let mut end = name.len().min(64);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// One request and its reply: `Ok(Err(why))` if the server made no child, `Err` if the
/// server is unusable.
fn request(
    server: &Server,
    body: &[u8],
    control: BorrowedFd<'_>,
    status: BorrowedFd<'_>,
) -> io::Result<Result<(u32, OwnedFd), String>> {
    server
        .conn
        .send_frame(body, &[control, status])
        .map_err(io::Error::from)?;
    let deadline = Instant::now() + SERVER_PATIENCE;
    let reply = server
        .conn
        .recv_frame_with(Some(deadline), |body, fds| {
            (postcard::from_bytes::<Reply>(body), fds)
        })
        .map_err(io::Error::from)?;
    match reply {
        (Ok(Reply::Forked { pid }), fds) => {
            let mut fds = fds.into_iter();
            match (fds.next(), fds.next()) {
                (Some(pidfd), None) => Ok(Ok((pid, pidfd))),
                _ => Err(io::Error::other(
                    "fork server reply without exactly one pidfd",
                )),
            }
        }
        (Ok(Reply::Failed { message }), _) => Ok(Err(message)),
        (Err(e), _) => Err(io::Error::other(format!(
            "malformed fork server reply: {e}"
        ))),
    }
}

/// Starts a fork server and greets it.
fn launch(identity: &Identity) -> Result<Server, ProcessError> {
    let (mine, theirs) = socket::socketpair().map_err(ProcessError::spawn)?;
    let pid = launcher::spawn_exec(theirs, Role::ForkServer).map_err(ProcessError::spawn)?;
    let pidfd = match sys::pidfd_open(pid) {
        Ok(p) => p,
        Err(e) => {
            // Our unreaped child: its pid is still its own.
            let _ = sys::kill_pid(pid);
            sys::reap_pid(pid);
            return Err(ProcessError::spawn(e));
        }
    };
    let conn = Connection::from_fd(mine);
    conn.set_max_frame(1 << 20);
    let server = Server {
        conn,
        pidfd,
        owner: sys::getpid(),
    };
    match greet(&server.conn, identity) {
        Ok(()) => {
            tracing::debug!(pid, "concur fork server started");
            Ok(server)
        }
        Err(e) => {
            retire(server);
            Err(e)
        }
    }
}

/// Sends the [`Hello`] and reads the [`Welcome`].
fn greet(conn: &Connection, identity: &Identity) -> Result<(), ProcessError> {
    let hello = Hello {
        magic: protocol::MAGIC,
        identity: identity.clone(),
    };
    let broken = |e: crate::connection::ConnectionError| {
        ProcessError::spawn(io::Error::other(format!(
            "the fork server did not start: {e}"
        )))
    };
    conn.send(&hello).map_err(broken)?;
    let welcome: Welcome = conn
        .recv_deadline(Instant::now() + SERVER_PATIENCE)
        .map_err(broken)?;
    match welcome {
        Welcome::Ready => Ok(()),
        Welcome::Refused {
            failure: Failure::Identity,
            message,
        } => Err(ProcessError::identity_mismatch(message)),
        Welcome::Refused { message, .. } => Err(ProcessError::spawn(io::Error::other(message))),
    }
}

/// Ends a server: closes its socket (it then kills its children and exits), makes
/// sure with SIGKILL if it does not go within a moment, and reaps it.
fn retire(server: Server) {
    let Server { conn, pidfd, owner } = server;
    drop(conn);
    if owner != sys::getpid() {
        return;
    }
    if !socket::wait_for(
        pidfd.as_fd(),
        rustix::event::PollFlags::IN,
        Some(Instant::now() + Duration::from_millis(500)),
    )
    .unwrap_or(false)
    {
        let _ = sys::signal(pidfd.as_fd(), true);
    }
    let _ = sys::wait(pidfd.as_fd(), true, true);
}

#[cfg(test)]
pub(crate) fn greet_for_test(identity: &Identity) -> Result<(), ProcessError> {
    launch(identity).map(retire)
}
