//! The fork server's side: a re-executed copy of the binary, recognized before `main`
//! (role `2` in `CONCUR_PROCESS_CHILD`), that forks one child per request of its
//! parent and reaps them.
//!
//! It stays **single-threaded** for its whole life, so every fork copies a process
//! whose only thread is the one forking: no lock can be copied held, and the child may
//! do anything afterwards (start threads, allocate, print). All its waiting is one
//! `poll` on its socket to the parent, the pidfds of its running children and its
//! copies of their control sockets.
//!
//! Its life, in order:
//! 1. It is started by the parent's launcher thread with `PR_SET_PDEATHSIG(SIGKILL)`
//!    (see `launcher`), so it dies with the parent.
//! 2. It reads a [`Hello`] and checks the parent runs this very binary (the children
//!    look functions up by offset, as a spawned child does); it answers [`Welcome`].
//! 3. Per [`Request`] it forks. The child arms its own parent-death signal (bound to
//!    the server's only thread), closes every descriptor of the server's but its
//!    control socket, and then lives like a forked child: arguments read from the
//!    control socket, function, report, `_exit`. The server answers a [`Reply`] with
//!    the child's pid and a pidfd for it (the parent cannot open one safely itself:
//!    the server may reap the child at any moment, after which its pid could be
//!    reused).
//! 4. The server keeps its copy of the child's end of the control socket and polls
//!    it for the peer's hang-up: when the parent's end closes (the parent died, or
//!    gave the child up) it kills the child. That is the watcher thread of spawned
//!    and forked children, done here so that a served child starts no thread (which
//!    would cost about as much as the rest of its start).
//! 5. When a child's pidfd turns readable the server reaps it, writes its exit
//!    status to the status pipe that came with the request, and closes the pipe and
//!    its copy of the control socket (so the parent then sees its end of the stream).
//! 6. At the end of its socket (the parent closed it or died) it kills and reaps its
//!    remaining children and exits.
//!
//! Nothing here is an orphan: the children die with the server (parent-death signal)
//! and when their control socket's other end closes (the server's watch), and the
//! server dies with the parent.

use std::os::fd::{AsFd, OwnedFd};
use std::panic::{self, AssertUnwindSafe};
use std::time::Instant;

use rustix::event::{PollFd, PollFlags};

use crate::code::FnOffset;
use crate::connection::Connection;
use crate::process::child::{self, Trampoline};
use crate::process::protocol::{self, Failure, Hello, Identity, Reply, Request, Welcome};
use crate::sys::proc as sys;
use crate::sys::socket;

/// The largest request a server accepts (a request is a name and an offset).
const MAX_REQUEST: usize = 1 << 20;

/// A running child of the server.
struct Child {
    pidfd: OwnedFd,
    /// The write end of the child's status pipe.
    status: OwnedFd,
    /// The server's copy of the child's end of its control socket, watched for the
    /// parent's end closing; `None` once it did (and the child was killed).
    control: Option<OwnedFd>,
}

/// What one `poll` of the server reported.
struct Events {
    /// The parent sent a request (or closed its socket).
    parent: bool,
    /// Per child: it exited.
    exited: Vec<bool>,
    /// Per child: the parent's end of its control socket closed.
    orphaned: Vec<bool>,
}

/// Waits until the parent writes, a child exits or a child's parent end closes.
fn wait_events(conn: &Connection, children: &[Child]) -> Events {
    let mut fds = Vec::with_capacity(1 + 2 * children.len());
    let mut slots = Vec::with_capacity(2 * children.len());
    fds.push(PollFd::from_borrowed_fd(conn.as_fd(), PollFlags::IN));
    for (i, c) in children.iter().enumerate() {
        fds.push(PollFd::new(&c.pidfd, PollFlags::IN));
        slots.push((i, false));
        if let Some(control) = &c.control {
            // Only the peer's hang-up: the data on it is the child's to read.
            fds.push(PollFd::new(control, PollFlags::RDHUP));
            slots.push((i, true));
        }
    }
    if socket::poll_until(&mut fds, None).is_err() {
        // Only EINVAL/ENOMEM can get here; try again rather than spin hard.
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let mut ev = Events {
        parent: !fds[0].revents().is_empty(),
        exited: vec![false; children.len()],
        orphaned: vec![false; children.len()],
    };
    for (p, &(i, is_control)) in fds[1..].iter().zip(&slots) {
        if !p.revents().is_empty() {
            if is_control {
                ev.orphaned[i] = true;
            } else {
                ev.exited[i] = true;
            }
        }
    }
    ev
}

/// The whole life of a fork server, before `main`. `fd` is its socket to the parent.
pub(crate) fn server_main(fd: OwnedFd) -> ! {
    sys::set_thread_name(sys::FORK_SERVER_NAME);
    // An ignored SIGCHLD survives `exec` and would make the kernel reap the children
    // itself, taking their exit status with them.
    sys::default_sigchld();
    let conn = Connection::from_fd(fd);
    conn.set_max_frame(MAX_REQUEST);
    if !greet(&conn) {
        sys::exit_now(1);
    }
    let mut children: Vec<Child> = Vec::new();
    loop {
        let ev = wait_events(&conn, &children);
        for (c, _) in children.iter_mut().zip(&ev.orphaned).filter(|(_, o)| **o) {
            // What a child's watcher thread would do, done here so that the child
            // needs no thread: its parent is gone (or gave it up).
            let _ = sys::signal(c.pidfd.as_fd(), true);
            c.control = None;
        }
        let mut exited = ev.exited.into_iter();
        children.retain(|c| !(exited.next().unwrap_or(false) && reap(c)));
        let parent_ready = ev.parent;
        if parent_ready && !serve(&conn, &mut children) {
            break;
        }
    }
    for c in &children {
        let _ = sys::signal(c.pidfd.as_fd(), true);
        let _ = sys::wait(c.pidfd.as_fd(), true, true);
    }
    sys::exit_now(0)
}

/// Reads the parent's [`Hello`] and answers it; false if the server must not serve.
fn greet(conn: &Connection) -> bool {
    let hello = conn.recv_frame_with(None, |body, _| postcard::from_bytes::<Hello>(body));
    let refusal = match hello {
        Err(_) => return false, // the parent is gone
        Ok(Err(e)) => Some((Failure::BadStart, format!("malformed hello: {e}"))),
        Ok(Ok(h)) if h.magic != protocol::MAGIC => Some((
            Failure::BadStart,
            format!("fork server request of unknown version {:#x}", h.magic),
        )),
        Ok(Ok(h)) => match Identity::current() {
            Ok(mine) if mine == h.identity => None,
            Ok(mine) => Some((
                Failure::Identity,
                format!("parent's binary {:?}, fork server's {:?}", h.identity, mine),
            )),
            Err(e) => Some((
                Failure::Identity,
                format!("the fork server cannot identify its binary: {e}"),
            )),
        },
    };
    let welcome = match refusal {
        None => Welcome::Ready,
        Some((failure, message)) => Welcome::Refused { failure, message },
    };
    conn.send(&welcome).is_ok() && matches!(welcome, Welcome::Ready)
}

/// Reaps an exited child and passes its status on. True when it was reaped.
fn reap(c: &Child) -> bool {
    match sys::wait(c.pidfd.as_fd(), false, true) {
        Ok(None) => false,
        Ok(Some(exit)) => {
            sys::write_status(c.status.as_fd(), exit);
            true
        }
        // Not our child any more (cannot happen: only this loop reaps). Drop it,
        // leaving its status unknown to the parent rather than spinning on it.
        Err(_) => true,
    }
}

/// Serves every request the parent has sent. False at the end of the stream (or a
/// broken one): the server then ends.
fn serve(conn: &Connection, children: &mut Vec<Child>) -> bool {
    loop {
        let got = conn.recv_frame_with(Some(Instant::now()), |body, fds| {
            (postcard::from_bytes::<Request>(body), fds)
        });
        let reply = match got {
            Ok((Ok(req), fds)) => fork_child(req, fds, children),
            Ok((Err(e), _)) => Err(format!("malformed fork server request: {e}")),
            Err(e) if e.is_timeout() => return true,
            Err(_) => return false,
        };
        let sent = match reply {
            Ok((pid, pidfd)) => conn.send_frame(&encode(&Reply::Forked { pid }), &[pidfd.as_fd()]),
            Err(message) => conn.send_frame(&encode(&Reply::Failed { message }), &[]),
        };
        if sent.is_err() {
            return false;
        }
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // A reply is an enum of integers and strings: its encoding cannot fail.
    postcard::to_stdvec(value).unwrap_or_default()
}

/// Forks the child a request asks for; returns its pid and a pidfd for the parent.
fn fork_child(
    req: Request,
    fds: Vec<OwnedFd>,
    children: &mut Vec<Child>,
) -> Result<(u32, OwnedFd), String> {
    let mut fds = fds.into_iter();
    let (Some(control), Some(status), None) = (fds.next(), fds.next(), fds.next()) else {
        return Err("a fork server request carries exactly two descriptors".to_owned());
    };
    let server = sys::getpid();
    // SAFETY: this process is single-threaded (see the module docs), so the child is a
    // complete copy of it; it only runs `worker_main`, which ends with `_exit`.
    match unsafe { sys::fork() } {
        Ok(None) => worker_main(control, server, req),
        Ok(Some(pid)) => {
            let pidfd = match sys::pidfd_open(pid) {
                Ok(p) => p,
                Err(e) => {
                    // Our unreaped child: its pid is still its own.
                    let _ = sys::kill_pid(pid);
                    sys::reap_pid(pid);
                    return Err(format!("pidfd_open on the new child failed: {e}"));
                }
            };
            let copy = pidfd
                .try_clone()
                .map_err(|e| format!("could not duplicate the child's pidfd: {e}"));
            children.push(Child {
                pidfd,
                status,
                control: Some(control),
            });
            // Without a copy for the parent the child still runs and is reaped; the
            // parent is told the start failed and closes the control socket, which
            // ends the child.
            copy.map(|c| (pid, c))
        }
        Err(e) => Err(format!("fork failed: {e}")),
    }
}

/// The whole life of a child of the fork server.
fn worker_main(control: OwnedFd, server: u32, req: Request) -> ! {
    if sys::set_parent_death_kill().is_err() || sys::getppid() != server {
        // The server died between the fork and the line above.
        sys::kill_self();
    }
    // SAFETY: the descriptors closed here are the server's: its socket to the parent,
    // its children's pidfds and status pipes, this request's status pipe. The
    // `OwnedFd`s that own them live in frames of the server's loop, which this
    // process never returns to (it ends with `exit_now` below), so none is used or
    // dropped again.
    if unsafe { sys::close_all_but(control.as_fd()) }.is_err() {
        sys::exit_now(1);
    }
    let control = Connection::from_fd(control);
    control.set_max_frame(usize::MAX);
    // No watcher thread: the server watches the control socket for this process.
    let args = control.recv_frame_with(None, |body, fds| (body.to_vec(), fds));
    let Ok((args, fds)) = args else {
        // The parent went away before sending the arguments.
        sys::exit_now(1);
    };
    // SAFETY: the server runs the very binary its parent runs (checked by `greet`),
    // this process is a copy of the server, and the parent made the offset with
    // `FnOffset::of` from a `Trampoline`.
    let t: Trampoline = unsafe { FnOffset::<Trampoline>::from_raw(req.offset).resolve() };
    let code = panic::catch_unwind(AssertUnwindSafe(|| {
        child::run(t, &args, fds, &control, &req.name)
    }))
    .unwrap_or(101);
    sys::exit_now(code)
}
