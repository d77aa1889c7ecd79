//! [`StartMethod::Spawn`](crate::StartMethod::Spawn): the parent re-executes this
//! binary with the child's end of the control socket inherited and named in
//! `CONCUR_PROCESS_CHILD`, then sends it a [`Start`] message; the child, recognized
//! before `main` (`start::child_hook`), checks it runs the same binary, resolves the
//! trampoline and runs it.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::panic::{self, AssertUnwindSafe};

use super::{Launch, Started, control, launcher, own_child};
use crate::code::FnOffset;
use crate::connection::Connection;
use crate::error::ProcessError;
use crate::process::child::{self, Role, Trampoline};
use crate::process::protocol::{self, Failure, Identity, Start};
use crate::sys::proc as sys;
use crate::sys::socket;

/// The parent's side: exec the child, send it the start message.
pub(super) fn start(launch: Launch<'_>) -> Result<(Started, Connection), ProcessError> {
    let identity = (launch.identity)()?;
    let start = Start {
        magic: protocol::MAGIC,
        identity,
        offset: FnOffset::of(launch.trampoline).raw(),
        name: launch.name.to_owned(),
        args: launch.args,
    };
    let body = postcard::to_stdvec(&start)
        .map_err(|e| ProcessError::serialization(format!("start message: {e}")))?;
    let (parent_end, child_end) = socket::socketpair().map_err(ProcessError::spawn)?;
    let pid = launcher::spawn_exec(child_end, Role::Child).map_err(ProcessError::spawn)?;
    let started = own_child(pid)?;
    let control = control(parent_end);
    let borrowed: Vec<BorrowedFd<'_>> = launch.fds.iter().map(|f| f.as_fd()).collect();
    match control.send_frame(&body, &borrowed) {
        // A child that died already is reported by join, with its status.
        Err(e) if !e.is_eof() => {
            let _ = sys::signal(started.pidfd(), true);
            let _ = sys::wait(started.pidfd(), true, true);
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

/// The whole life of a spawned child, before `main`.
pub(super) fn spawned_main(fd: OwnedFd) -> ! {
    let control = Connection::from_fd(fd);
    control.set_max_frame(usize::MAX);
    let code = panic::catch_unwind(AssertUnwindSafe(|| spawned_run(&control))).unwrap_or(101);
    // `control` is still open here, so the watcher cannot mistake our own exit for the
    // parent's death.
    sys::exit_now(code)
}

fn spawned_run(control: &Connection) -> i32 {
    let start = control.recv_frame_with(None, |body, fds| {
        postcard::from_bytes::<Start>(body).map(|s| (s, fds))
    });
    let (start, fds) = match start {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let msg = format!("malformed start message: {e}");
            protocol::send_failure(control, Failure::BadStart, msg);
            return 1;
        }
        // The parent is gone before telling us anything.
        Err(_) => return 1,
    };
    if start.magic != protocol::MAGIC {
        let msg = format!("start message of unknown version {:#x}", start.magic);
        protocol::send_failure(control, Failure::BadStart, msg);
        return 1;
    }
    match Identity::current() {
        Ok(mine) if mine == start.identity => {}
        Ok(mine) => {
            let msg = format!("parent's binary {:?}, child's {:?}", start.identity, mine);
            protocol::send_failure(control, Failure::Identity, msg);
            return 1;
        }
        Err(e) => {
            let msg = format!("the child cannot identify its binary: {e}");
            protocol::send_failure(control, Failure::Identity, msg);
            return 1;
        }
    }
    child::spawn_watcher(control);
    // SAFETY: this process runs the very binary the parent runs (identity checked
    // just above), and the parent made the offset with `FnOffset::of` from a
    // `Trampoline`.
    let t: Trampoline = unsafe { FnOffset::<Trampoline>::from_raw(start.offset).resolve() };
    child::run(t, &start.args, fds, control, &start.name)
}
