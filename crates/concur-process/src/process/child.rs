//! What every child runs, however it was started (see `start`): the trampoline that
//! decodes the arguments, runs the user's function and reports, the panic hook that
//! records where a panic happened, and the watch that ends the child when its parent
//! goes away (a `SIGIO` handler on the control socket, or a watcher thread where that
//! cannot be armed). Also how a re-executed binary is told what it is to be
//! ([`ENV`], [`Role`]).

use std::cell::RefCell;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::panic::{self, AssertUnwindSafe};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::protocol::{self, Failure, Report};
use crate::connection::Connection;
use crate::fds;
use crate::sys::proc as sys;

/// The environment variable that tells a re-executed binary it is a spawned child:
/// `<role>:<fd>:<parent pid>`, its [`Role`] (`1` a child, `2` a fork server), the
/// inherited control socket, and the pid of the process that started it (which the
/// child checks is still its parent once it has armed its parent-death signal).
pub(crate) const ENV: &str = "CONCUR_PROCESS_CHILD";

/// What a re-executed binary is to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// A spawned child: runs one function and exits.
    Child,
    /// A fork server: forks children on request (see `start::forkserver::server`).
    ForkServer,
}

impl Role {
    /// The value of [`ENV`] for this role, control socket and parent.
    pub(crate) fn env_value(self, fd: RawFd, parent: u32) -> String {
        match self {
            Role::Child => format!("1:{fd}:{parent}"),
            Role::ForkServer => format!("2:{fd}:{parent}"),
        }
    }

    /// The argument the process is given (visible in `ps`; and should the hook ever
    /// not run, a test harness takes it as a filter that matches no test).
    pub(crate) fn arg(self) -> &'static str {
        match self {
            Role::Child => "--concur-process-child",
            Role::ForkServer => "--concur-fork-server",
        }
    }
}

/// A monomorphized entry point: decodes the arguments, runs the function, reports, and
/// returns the exit status.
pub(crate) type Trampoline = fn(&[u8], Vec<OwnedFd>, &Connection) -> i32;

/// The trampoline for the function type `F`.
///
/// `F` is a zero-sized `Copy` type (a function item or a closure that captures
/// nothing; `ProcessBuilder::build` checks the size at compile time), so every value
/// of it is the same empty value, and the one the parent was given can be made again
/// here without any data.
pub(crate) fn trampoline<F, A, R>(args: &[u8], fds: Vec<OwnedFd>, control: &Connection) -> i32
where
    F: Fn(A) -> R + Copy + 'static,
    A: DeserializeOwned,
    R: Serialize,
{
    let args: A = match fds::provide_fds(fds, || postcard::from_bytes(args)) {
        Ok(a) => a,
        Err(e) => {
            let msg = format!("the child could not decode its arguments: {e}");
            protocol::send_failure(control, Failure::DecodeArgs, msg);
            return 1;
        }
    };
    let () = NoCaptures::<F>::CHECK;
    // SAFETY: `F` is zero-sized (checked above at compile time) and `Copy`, and the
    // parent owned a value of it (so it is inhabited): a zero-sized value has no bytes,
    // so making one from no data is the same as copying the parent's.
    let f: F = unsafe { std::mem::zeroed() };
    match panic::catch_unwind(AssertUnwindSafe(move || f(args))) {
        Ok(value) => match control.send(&Report::Ok(&value)) {
            Ok(()) => 0,
            Err(e) if e.is_eof() => 1,
            Err(e) => {
                let msg = format!("the result could not be sent: {e}");
                protocol::send_failure(control, Failure::EncodeResult, msg);
                1
            }
        },
        Err(payload) => {
            let message = payload_message(&*payload);
            let location = LOCATION.with(|l| l.borrow_mut().take());
            // A payload whose destructor panics must not take the report with it.
            let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(payload)));
            let _ = control.send(&Report::<()>::Panic { message, location });
            1
        }
    }
}

/// A compile-time check that `F` captures nothing (is zero-sized): evaluating `CHECK`
/// for a capturing closure fails the build with the message below.
pub(crate) struct NoCaptures<F>(std::marker::PhantomData<F>);

impl<F> NoCaptures<F> {
    pub(crate) const CHECK: () = assert!(
        size_of::<F>() == 0,
        "a Process runs a function or a closure that captures nothing: pass the values \
         it needs as its argument instead of capturing them"
    );
}

/// Makes the value of a zero-sized function type `F` from nothing: how code that
/// received only a function's address (a pool worker, a manager server) gets the
/// function to call.
pub(crate) fn conjure<F: Copy + 'static>() -> F {
    let () = NoCaptures::<F>::CHECK;
    // SAFETY: `F` is zero-sized (checked above at compile time) and `Copy`, and the
    // process that sent its address owned a value of it (so it is inhabited): a
    // zero-sized value has no bytes, so making one from no data is the same as copying
    // it.
    unsafe { std::mem::zeroed() }
}

/// Runs `f`, turning a panic into its message and location (as a child reports them).
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, (String, Option<String>)> {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => Ok(v),
        Err(payload) => {
            let message = payload_message(&*payload);
            let location = LOCATION.with(|l| l.borrow_mut().take());
            // A payload whose destructor panics must not take the report with it.
            let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(payload)));
            Err((message, location))
        }
    }
}

fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_owned()
    }
}

thread_local! {
    /// Where the last panic on this thread happened, recorded by the child's hook.
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Records panic locations for the report. The panic of the child's function itself
/// travels to the parent, message and location, as the `join` error
/// ([`ProcessError::is_panic`](crate::ProcessError::is_panic)), so it is not printed
/// here too (a test suite's intentional child panics would bury real failures); set
/// `CONCUR_CHILD_PANICS=print` to have children print every panic as well. Panics on
/// the child's other threads are printed as usual.
fn install_panic_hook() {
    let print_all = std::env::var_os("CONCUR_CHILD_PANICS").is_some_and(|v| v == "print");
    let main = std::thread::current().id();
    let prev = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if let Some(l) = info.location() {
            let _ = LOCATION.try_with(|c| *c.borrow_mut() = Some(l.to_string()));
        }
        if print_all || std::thread::current().id() != main {
            prev(info);
        }
    }));
}

/// Runs the function through its trampoline with the process set up as a child.
pub(crate) fn run(
    t: Trampoline,
    args: &[u8],
    fds: Vec<OwnedFd>,
    control: &Connection,
    name: &str,
) -> i32 {
    sys::set_thread_name(name);
    install_panic_hook();
    t(args, fds, control)
}

/// Makes this process end when the parent's end of the control socket closes (the
/// parent died, even in a way the parent-death signal missed): through `SIGIO` on the
/// socket, or a watcher thread where that cannot be set up.
pub(crate) fn spawn_watcher(control: &Connection) {
    let raw: RawFd = control.as_fd().as_raw_fd();
    // Signal-driven first (no thread to start); a watcher thread if that fails.
    if crate::sys::hangup::arm(raw).is_ok() {
        return;
    }
    let r = sys::spawn_helper(sys::WATCHER_THREAD, move || {
        // SAFETY: the control connection stays open until the process exits: the
        // entry points below end the process with `exit_now` while it is in scope.
        let fd = unsafe { BorrowedFd::borrow_raw(raw) };
        crate::sys::socket::wait_hangup(fd);
        sys::kill_self();
    });
    if r.is_err() {
        // Without a watcher the parent-death signal still binds us to the parent.
        tracing::warn!("concur child: could not start its watcher thread");
    }
}
