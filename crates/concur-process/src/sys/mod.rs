//! Operating-system glue (Linux). Everything here is a thin, documented wrapper over a
//! system call; the policy lives in the modules that use it.
//!
//! - [`hangup`]: a child ends itself when its control socket's peer closes (`SIGIO`).
//! - [`socket`]: Unix socket pairs, `sendmsg`/`recvmsg` with `SCM_RIGHTS`, `poll`.
//! - [`proc`]: pidfds, `waitid`, signals, the parent-death signal, `fork`, thread
//!   counting and the identity of the running binary.
//!
//! Other Unixes can follow by adding siblings chosen here; until then the crate says
//! plainly that it needs Linux.

#[cfg(not(target_os = "linux"))]
compile_error!(
    "concur-process supports Linux only for now: processes and pipes rely on pidfds, \
     PR_SET_PDEATHSIG and SCM_RIGHTS on Unix sockets"
);

pub(crate) mod hangup;
pub(crate) mod proc;
pub(crate) mod socket;
