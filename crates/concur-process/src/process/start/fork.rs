//! [`StartMethod::Fork`](crate::StartMethod::Fork): the launcher thread forks, and the
//! child (a copy of the process with only that thread) runs the trampoline it finds
//! in its copy of the parent's memory.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::panic::{self, AssertUnwindSafe};

use super::{Launch, Started, control, launcher, own_child};
use crate::connection::Connection;
use crate::error::ProcessError;
use crate::process::child::{self, Trampoline};
use crate::sys::proc as sys;
use crate::sys::socket;

/// The parent's side: refuse while other threads run (unless forced), fork.
pub(super) fn start(
    force: bool,
    launch: Launch<'_>,
) -> Result<(Started, Connection), ProcessError> {
    if !force {
        let others = sys::other_threads().map_err(ProcessError::spawn)?;
        if others > 0 {
            return Err(ProcessError::fork_refused(others));
        }
    }
    let (parent_end, child_end) = socket::socketpair().map_err(ProcessError::spawn)?;
    let payload = ForkPayload {
        trampoline: launch.trampoline,
        args: launch.args,
        fds: launch.fds,
        control: child_end,
        parent_end: parent_end.as_raw_fd(),
        parent_pid: sys::getpid(),
        name: launch.name.to_owned(),
        forced: force,
    };
    let pid = launcher::fork(move || fork_child_main(payload)).map_err(ProcessError::spawn)?;
    let started = own_child(pid)?;
    Ok((started, control(parent_end)))
}

/// What a forked child needs, moved into it by the fork itself.
struct ForkPayload {
    trampoline: Trampoline,
    args: Vec<u8>,
    fds: Vec<OwnedFd>,
    /// The child's end of the control socket.
    control: OwnedFd,
    /// The parent's end, which the child must close so that the parent's death is an
    /// end of stream for it.
    parent_end: RawFd,
    parent_pid: u32,
    name: String,
    /// Whether other threads may have run at the fork (a forced fork): then the child
    /// leaves Rust's stdout buffer unflushed at exit rather than risk its lock.
    forced: bool,
}

/// The whole life of a forked child, on the copy of the launcher thread.
fn fork_child_main(p: ForkPayload) -> ! {
    if sys::set_parent_death_kill().is_err() || sys::getppid() != p.parent_pid {
        // The parent died between the fork and the line above.
        sys::kill_self();
    }
    // SAFETY: `parent_end` is this process's copy of the parent's end of the control
    // socket. The `OwnedFd` that owns it lives in memory of a thread that does not exist
    // in this process and is never dropped here (this function ends with `exit_now`).
    unsafe { libc::close(p.parent_end) };
    let control = Connection::from_fd(p.control);
    control.set_max_frame(usize::MAX);
    child::spawn_watcher(&control);
    let (t, args, fds, name) = (p.trampoline, p.args, p.fds, p.name);
    let code = panic::catch_unwind(AssertUnwindSafe(|| {
        child::run(t, &args, fds, &control, &name)
    }))
    .unwrap_or(101);
    if p.forced {
        sys::exit_unflushed(code)
    }
    sys::exit_now(code)
}
