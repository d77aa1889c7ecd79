//! The launcher: one long-lived thread per process that makes every child.
//!
//! Linux sends the parent-death signal when the *thread* that created a child exits,
//! not the process. Children made by a short-lived thread (a test, a pool worker that
//! is replaced) would be killed with it. So every `fork` (and the clone inside
//! `posix_spawn`) happens on this thread, which never exits: a child's
//! `PR_SET_PDEATHSIG(SIGKILL)` then fires exactly when the parent process dies.
//! A panic in a job is caught so the thread survives it.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Mutex, PoisonError};

use crate::process::child;
use crate::sys::proc as sys;

type Job = Box<dyn FnOnce() + Send>;

struct Launcher {
    jobs: mpsc::Sender<Job>,
    /// The process the thread runs in (a forked child has no launcher thread, whatever
    /// its copy of this static says).
    owner: u32,
}

static LAUNCHER: Mutex<Option<Launcher>> = Mutex::new(None);

fn jobs() -> io::Result<mpsc::Sender<Job>> {
    let mut g = LAUNCHER.lock().unwrap_or_else(PoisonError::into_inner);
    let me = sys::getpid();
    if let Some(l) = g.as_ref().filter(|l| l.owner == me) {
        return Ok(l.jobs.clone());
    }
    let (tx, rx) = mpsc::channel::<Job>();
    sys::spawn_helper(sys::LAUNCHER_THREAD, move || {
        // The sender lives in a static, so this loop never ends.
        for job in rx {
            let _ = panic::catch_unwind(AssertUnwindSafe(job));
        }
    })?;
    *g = Some(Launcher {
        jobs: tx.clone(),
        owner: me,
    });
    Ok(tx)
}

/// Runs `f` on the launcher thread and returns its result.
fn on_launcher<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> io::Result<T> {
    let jobs = jobs()?;
    let (tx, rx) = mpsc::sync_channel(1);
    jobs.send(Box::new(move || {
        let _ = tx.send(f());
    }))
    .map_err(|_| io::Error::other("the process launcher thread is gone"))?;
    // The caller holds none of this crate's locks while it waits here, so a fork on
    // the launcher thread copies nothing the child could need and find locked.
    rx.recv()
        .map_err(|_| io::Error::other("the process launcher failed while starting a child"))
}

/// Starts `/proc/self/exe` as a spawned child (or a fork server, by `role`) that
/// inherits `child_end` as its control socket. Returns its pid.
pub(super) fn spawn_exec(child_end: OwnedFd, role: child::Role) -> io::Result<u32> {
    on_launcher(move || exec_child(&child_end, role))?
}

/// The descriptor number the control socket has in a spawned child: the first after
/// the standard three. Everything above it is closed at the exec.
const CHILD_CONTROL_FD: RawFd = 3;

/// Starts the child with `posix_spawn`, which glibc runs as `clone(CLONE_VM |
/// CLONE_VFORK)` + `execve`: no copy of the parent's page tables, so the cost does not
/// grow with the parent's size or thread count (a `Command` with a `pre_exec` hook must
/// `fork`). What the hook did moves to where it needs no code between clone and exec:
///
/// - descriptor hand-over: file actions `dup2` the control socket to fd 3 (which also
///   clears close-on-exec), open `/dev/null` as stdin and close every descriptor above
///   3, so nothing the parent left inheritable leaks into the child (as Python's spawn
///   closes all descriptors but the ones it passes);
/// - parent-death binding: the child arms `PR_SET_PDEATHSIG(SIGKILL)` first thing in
///   its constructor and checks that its parent is still the pid named in the
///   environment (`start::child_hook`); a parent that died before that is seen there;
/// - the identity check is unchanged (the child compares binaries when the start
///   message comes).
///
/// The signal mask is emptied and SIGPIPE set back to its default, as std's `Command`
/// does. Learned from std's own `posix_spawn` path (library/std/src/sys/process/unix)
/// and glibc's `posix_spawn_file_actions_addclosefrom_np` documentation.
fn exec_child(child_end: &OwnedFd, role: child::Role) -> io::Result<u32> {
    let parent = sys::getpid();
    let raw = child_end.as_raw_fd();
    let cstr =
        |b: Vec<u8>| CString::new(b).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput));
    let arg0 = std::env::args_os()
        .next()
        .map_or_else(|| b"/proc/self/exe".to_vec(), |a| a.into_vec());
    let argv_owned = [cstr(arg0)?, cstr(role.arg().as_bytes().to_vec())?];
    let mut envp_owned = Vec::new();
    for (k, v) in std::env::vars_os() {
        if k == child::ENV {
            continue;
        }
        let mut kv = k.into_vec();
        kv.push(b'=');
        kv.extend_from_slice(v.as_bytes());
        // A variable with a NUL cannot be passed; std's `Command` drops it too.
        if let Ok(c) = CString::new(kv) {
            envp_owned.push(c);
        }
    }
    let ours = format!(
        "{}={}",
        child::ENV,
        role.env_value(CHILD_CONTROL_FD, parent)
    );
    envp_owned.push(cstr(ours.into_bytes())?);
    let argv: Vec<*mut libc::c_char> = argv_owned
        .iter()
        .map(|c| c.as_ptr().cast_mut())
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect();
    let envp: Vec<*mut libc::c_char> = envp_owned
        .iter()
        .map(|c| c.as_ptr().cast_mut())
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect();
    let actions = FileActions::new()?;
    actions.check(
        // SAFETY: `actions` is initialized; the descriptors are plain integers.
        unsafe { libc::posix_spawn_file_actions_adddup2(actions.as_ptr(), raw, CHILD_CONTROL_FD) },
    )?;
    actions.check(
        // SAFETY: as above; the path is a NUL-terminated literal.
        unsafe {
            libc::posix_spawn_file_actions_addopen(
                actions.as_ptr(),
                0,
                c"/dev/null".as_ptr(),
                libc::O_RDONLY,
                0,
            )
        },
    )?;
    actions.check(
        // SAFETY: as above.
        unsafe {
            libc::posix_spawn_file_actions_addclosefrom_np(actions.as_ptr(), CHILD_CONTROL_FD + 1)
        },
    )?;
    let attr = SpawnAttr::new()?;
    // SAFETY: `attr` is initialized; the sets are local and initialized by
    // `sigemptyset` before use.
    unsafe {
        let mut empty = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&raw mut empty);
        let mut default = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&raw mut default);
        libc::sigaddset(&raw mut default, libc::SIGPIPE);
        attr.check(libc::posix_spawnattr_setsigmask(
            attr.as_ptr(),
            &raw const empty,
        ))?;
        attr.check(libc::posix_spawnattr_setsigdefault(
            attr.as_ptr(),
            &raw const default,
        ))?;
        let flags = libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF;
        // The flags fit a `c_short` (they are 0x04 and 0x08).
        #[allow(clippy::cast_possible_truncation)]
        attr.check(libc::posix_spawnattr_setflags(
            attr.as_ptr(),
            flags as libc::c_short,
        ))?;
    }
    let mut pid: libc::pid_t = 0;
    // SAFETY: every pointer is valid for the call: the path is a literal, the file
    // actions and attributes are initialized, `argv` and `envp` are NULL-terminated
    // arrays of NUL-terminated strings that outlive the call (`*_owned` above).
    let rc = unsafe {
        libc::posix_spawn(
            &raw mut pid,
            c"/proc/self/exe".as_ptr(),
            actions.as_ptr(),
            attr.as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    u32::try_from(pid).map_err(|_| io::Error::other("posix_spawn returned a negative pid"))
}

/// `posix_spawn_file_actions_t`, destroyed on drop.
struct FileActions(Box<libc::posix_spawn_file_actions_t>);

impl FileActions {
    fn new() -> io::Result<Self> {
        // SAFETY: an all-zero value is only storage; `init` initializes it.
        let mut a = Box::new(unsafe { std::mem::zeroed::<libc::posix_spawn_file_actions_t>() });
        // SAFETY: `a` points to writable storage for the object.
        let rc = unsafe { libc::posix_spawn_file_actions_init(&raw mut *a) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(Self(a))
    }

    fn as_ptr(&self) -> *mut libc::posix_spawn_file_actions_t {
        std::ptr::from_ref(&*self.0).cast_mut()
    }

    fn check(&self, rc: libc::c_int) -> io::Result<()> {
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(rc))
        }
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: initialized in `new`, destroyed once.
        unsafe { libc::posix_spawn_file_actions_destroy(self.as_ptr()) };
    }
}

/// `posix_spawnattr_t`, destroyed on drop.
struct SpawnAttr(Box<libc::posix_spawnattr_t>);

impl SpawnAttr {
    fn new() -> io::Result<Self> {
        // SAFETY: an all-zero value is only storage; `init` initializes it.
        let mut a = Box::new(unsafe { std::mem::zeroed::<libc::posix_spawnattr_t>() });
        // SAFETY: `a` points to writable storage for the object.
        let rc = unsafe { libc::posix_spawnattr_init(&raw mut *a) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(Self(a))
    }

    fn as_ptr(&self) -> *mut libc::posix_spawnattr_t {
        std::ptr::from_ref(&*self.0).cast_mut()
    }

    fn check(&self, rc: libc::c_int) -> io::Result<()> {
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(rc))
        }
    }
}

impl Drop for SpawnAttr {
    fn drop(&mut self) {
        // SAFETY: initialized in `new`, destroyed once.
        unsafe { libc::posix_spawnattr_destroy(self.as_ptr()) };
    }
}

/// Forks a child that runs `child_main` (which never returns: it ends with `_exit`,
/// hence its uninhabited return type). Returns its pid.
///
/// The fork happens on the launcher thread, so the child is a copy of the process with
/// only that thread, whose state at the fork is known: it is running this job.
pub(super) fn fork(
    child_main: impl FnOnce() -> std::convert::Infallible + Send + 'static,
) -> io::Result<u32> {
    on_launcher(move || {
        // SAFETY: the child only runs `child_main`, which ends with `_exit` (fork.rs's
        // `fork_child_main`). At the fork, the caller that asked for it waits on a
        // channel holding no lock, and the other threads are either this crate's idle
        // helpers or ones the caller accepted by forcing the fork (see
        // `StartMethod::Fork`).
        match unsafe { sys::fork() } {
            Ok(None) => match child_main() {},
            Ok(Some(pid)) => Ok(pid),
            Err(e) => Err(e),
        }
    })?
}
