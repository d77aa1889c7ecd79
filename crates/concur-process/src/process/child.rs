//! The child's side: the constructor that recognizes a spawned child before `main`,
//! the entry of a forked child, the trampoline that runs the user's function, and the
//! watch that ends the child when its parent goes away (a `SIGIO` handler on the
//! control socket, or a watcher thread where that cannot be armed).

use std::cell::RefCell;
use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::panic::{self, AssertUnwindSafe};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::protocol::{self, Failure, Identity, Report, Start};
use crate::code::FnOffset;
use crate::connection::Connection;
use crate::fds;
use crate::sys::proc as sys;

/// The environment variable that tells a re-executed binary it is a spawned child:
/// `<role>:<fd>`, its [`Role`] (`1` a child, `2` a fork server) and the inherited
/// control socket.
pub(crate) const ENV: &str = "CONCUR_PROCESS_CHILD";

/// What a re-executed binary is to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// A spawned child: runs one function and exits.
    Child,
    /// A fork server: forks children on request (see `server`).
    ForkServer,
}

impl Role {
    /// The value of [`ENV`] for this role and control socket.
    pub(crate) fn env_value(self, fd: RawFd) -> String {
        match self {
            Role::Child => format!("1:{fd}"),
            Role::ForkServer => format!("2:{fd}"),
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

/// Records panic locations for the report, then lets the previous hook print as usual.
fn install_panic_hook() {
    let prev = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if let Some(l) = info.location() {
            let _ = LOCATION.try_with(|c| *c.borrow_mut() = Some(l.to_string()));
        }
        prev(info);
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

#[used]
#[unsafe(link_section = ".init_array")]
static CHILD_HOOK: extern "C" fn() = child_hook;

/// Makes sure the constructor is linked into any binary that starts processes.
pub(crate) fn ensure_linked() {
    std::hint::black_box(&CHILD_HOOK);
}

/// The constructor's address (part of the build's layout fingerprint).
pub(crate) fn child_hook_address() -> usize {
    child_hook as extern "C" fn() as usize
}

/// Runs before `main` in every process of a binary that links this crate's process
/// support. In a spawned child it runs the function and exits, so `main` never runs;
/// anywhere else it returns at once.
extern "C" fn child_hook() {
    let Some(value) = std::env::var_os(ENV) else {
        return;
    };
    // SAFETY: constructors run before `main`, on the only thread there is, so nothing
    // reads the environment concurrently. Removing the variable keeps grandchildren
    // started with `std::process::Command` from taking themselves for children.
    unsafe { std::env::remove_var(ENV) };
    sys::ignore_sigpipe();
    let Some((role, raw)) = parse_env(&value) else {
        // Not started by concur (someone set the variable by hand): say so and stop
        // rather than run `main` as a child.
        eprintln!("{ENV} is set but does not name a control socket; exiting");
        sys::exit_now(2);
    };
    // SAFETY: the parent made this descriptor (checked open and a socket by
    // `parse_env`) for this process image alone; nothing else here owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let _ = sys::set_cloexec(fd.as_fd());
    match role {
        Role::Child => spawned_main(fd),
        Role::ForkServer => super::server::server_main(fd),
    }
}

fn parse_env(value: &OsStr) -> Option<(Role, RawFd)> {
    let s = value.to_str()?;
    let (role, fd) = s.split_once(':')?;
    let role = match role {
        "1" => Role::Child,
        "2" => Role::ForkServer,
        _ => return None,
    };
    let fd: RawFd = fd.parse().ok()?;
    // The descriptor must be open and a socket before anything takes ownership of it.
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `fstat` writes a `stat` into the buffer on success and only reads the
    // integer descriptor (an unopened number is EBADF, not undefined behaviour).
    let ok = unsafe { libc::fstat(fd, st.as_mut_ptr()) } == 0;
    // SAFETY: initialized by the successful `fstat` just above.
    let is_socket = ok && (unsafe { st.assume_init() }.st_mode & libc::S_IFMT) == libc::S_IFSOCK;
    is_socket.then_some((role, fd))
}

/// The whole life of a spawned child, before `main`.
fn spawned_main(fd: OwnedFd) -> ! {
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
    spawn_watcher(control);
    // SAFETY: this process runs the very binary the parent runs (identity checked
    // just above), and the parent made the offset with `FnOffset::of` from a
    // `Trampoline`.
    let t: Trampoline = unsafe { FnOffset::<Trampoline>::from_raw(start.offset).resolve() };
    run(t, &start.args, fds, control, &start.name)
}

/// What a forked child needs, moved into it by the fork itself.
pub(crate) struct ForkPayload {
    pub(crate) trampoline: Trampoline,
    pub(crate) args: Vec<u8>,
    pub(crate) fds: Vec<OwnedFd>,
    /// The child's end of the control socket.
    pub(crate) control: OwnedFd,
    /// The parent's end, which the child must close so that the parent's death is an
    /// end of stream for it.
    pub(crate) parent_end: RawFd,
    pub(crate) parent_pid: u32,
    pub(crate) name: String,
    /// Whether other threads may have run at the fork (a forced fork): then the child
    /// leaves Rust's stdout buffer unflushed at exit rather than risk its lock.
    pub(crate) forced: bool,
}

/// The whole life of a forked child, on the copy of the launcher thread.
pub(crate) fn fork_child_main(p: ForkPayload) -> ! {
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
    spawn_watcher(&control);
    let (t, args, fds, name) = (p.trampoline, p.args, p.fds, p.name);
    let code = panic::catch_unwind(AssertUnwindSafe(|| run(t, &args, fds, &control, &name)))
        .unwrap_or(101);
    if p.forced {
        sys::exit_unflushed(code)
    }
    sys::exit_now(code)
}
