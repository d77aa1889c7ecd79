//! A robust, process-shared, error-checking pthread mutex living in shared memory.
//!
//! This is the one place the crate leans on the C library for locking, because only
//! it can register a held mutex in the calling thread's *robust list*: the kernel walks
//! that list when a thread dies (exit, crash, `SIGKILL` of its process) and marks every
//! mutex still on it "owner died" (`FUTEX_OWNER_DIED`), waking one waiter. The next
//! locker then gets `EOWNERDEAD`, owns the mutex, and must call
//! `pthread_mutex_consistent` before unlocking or the mutex becomes unusable
//! (`ENOTRECOVERABLE`). We always call it at once and report the death upwards, so a
//! mutex here never becomes unrecoverable.
//!
//! Attributes: `PTHREAD_PROCESS_SHARED` (usable from any process mapping it),
//! `PTHREAD_MUTEX_ROBUST`, and `PTHREAD_MUTEX_ERRORCHECK`, which makes relocking by the
//! owner fail with `EDEADLK` (our "held by the caller") and unlocking by a non-owner
//! fail with `EPERM`. Only the owning thread may unlock: guards are `!Send`.
//!
//! Deadlines use `pthread_mutex_timedlock`, which takes an absolute `CLOCK_REALTIME`
//! time; the caller's `Instant` deadline is converted on each attempt and re-checked
//! after a timeout, so a wall-clock step can only cut a wait into several attempts,
//! never end it early. (A step backwards can make one attempt overrun by the step.)

use std::cell::UnsafeCell;
use std::io;
use std::mem::MaybeUninit;
use std::time::{Duration, Instant};

/// The mutex, stored in shared memory. Valid for any bytes as far as Rust is
/// concerned (the C library interprets them); initialised once by [`init`].
///
/// [`init`]: RobustMutex::init
#[repr(C)]
pub(crate) struct RobustMutex {
    m: UnsafeCell<libc::pthread_mutex_t>,
}

/// The outcome of one locking attempt.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// The caller now holds the mutex.
    Acquired,
    /// The caller now holds the mutex, whose previous owner died holding it; it has
    /// been made consistent again.
    OwnerDied,
    /// The calling thread already holds it (nothing changed).
    HeldByCaller,
    /// Held by another thread until the deadline (or, for `try_lock`, now).
    Busy,
}

fn check(what: &str, r: libc::c_int) -> io::Result<()> {
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::new(
            io::Error::from_raw_os_error(r).kind(),
            format!("{what}: {}", io::Error::from_raw_os_error(r)),
        ))
    }
}

impl RobustMutex {
    /// Initialises the mutex in place.
    ///
    /// Must be called exactly once, on fresh (zeroed) shared memory, before any
    /// handle to it is given out; the constructors in this crate guarantee that.
    pub(crate) fn init(&self) -> io::Result<()> {
        let mut attr = MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        // SAFETY: `attr` is valid for writes; `init` fills it in.
        check("pthread_mutexattr_init", unsafe {
            libc::pthread_mutexattr_init(attr.as_mut_ptr())
        })?;
        let a = attr.as_mut_ptr();
        // SAFETY: `a` was initialised above and is destroyed below; the mutex pointer
        // is valid, aligned (the state is `repr(C)` at a checked offset) and not yet
        // in use by anyone.
        let r = unsafe {
            check(
                "pthread_mutexattr_settype",
                libc::pthread_mutexattr_settype(a, libc::PTHREAD_MUTEX_ERRORCHECK),
            )
            .and_then(|()| {
                check(
                    "pthread_mutexattr_setpshared",
                    libc::pthread_mutexattr_setpshared(a, libc::PTHREAD_PROCESS_SHARED),
                )
            })
            .and_then(|()| {
                check(
                    "pthread_mutexattr_setrobust",
                    libc::pthread_mutexattr_setrobust(a, libc::PTHREAD_MUTEX_ROBUST),
                )
            })
            .and_then(|()| {
                check(
                    "pthread_mutex_init",
                    libc::pthread_mutex_init(self.m.get(), a),
                )
            })
        };
        // SAFETY: `a` is initialised; a mutex initialised from it does not need it.
        unsafe { libc::pthread_mutexattr_destroy(a) };
        r
    }

    /// One attempt without waiting.
    pub(crate) fn try_lock(&self) -> Attempt {
        // SAFETY: the mutex was initialised by `init` before this handle existed and
        // stays mapped while `self` is borrowed.
        self.classify(unsafe { libc::pthread_mutex_trylock(self.m.get()) })
    }

    /// Waits until the mutex is acquired or `deadline` passes (`None`: no limit).
    pub(crate) fn lock(&self, deadline: Option<Instant>) -> Attempt {
        let Some(deadline) = deadline else {
            // SAFETY: as in `try_lock`.
            return self.classify(unsafe { libc::pthread_mutex_lock(self.m.get()) });
        };
        loop {
            let now = Instant::now();
            if now >= deadline {
                return self.try_lock();
            }
            let abs = realtime_after(deadline - now);
            // SAFETY: as in `try_lock`; `abs` is a valid timespec.
            let r = unsafe { libc::pthread_mutex_timedlock(self.m.get(), &abs) };
            if r == libc::ETIMEDOUT && Instant::now() < deadline {
                continue; // the wall clock moved; our deadline has not passed
            }
            return self.classify(r);
        }
    }

    /// Unlocks; false if the calling thread does not hold the mutex (`EPERM`).
    pub(crate) fn unlock(&self) -> bool {
        // SAFETY: as in `try_lock`.
        unsafe { libc::pthread_mutex_unlock(self.m.get()) == 0 }
    }

    #[track_caller]
    fn classify(&self, r: libc::c_int) -> Attempt {
        match r {
            0 => Attempt::Acquired,
            libc::EOWNERDEAD => {
                // SAFETY: we hold the mutex (EOWNERDEAD means acquired), as
                // `pthread_mutex_consistent` requires.
                let c = unsafe { libc::pthread_mutex_consistent(self.m.get()) };
                assert_eq!(c, 0, "pthread_mutex_consistent failed");
                Attempt::OwnerDied
            }
            libc::EDEADLK => Attempt::HeldByCaller,
            libc::EBUSY | libc::ETIMEDOUT => Attempt::Busy,
            e => panic!(
                "process-shared mutex is unusable ({}): its shared memory was corrupted",
                io::Error::from_raw_os_error(e)
            ),
        }
    }
}

/// `CLOCK_REALTIME` now plus `d`, saturating.
fn realtime_after(d: Duration) -> libc::timespec {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
    let mut sec = now
        .tv_sec
        .saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2));
    let mut nsec = now.tv_nsec + i64::from(d.subsec_nanos());
    if nsec >= 1_000_000_000 {
        nsec -= 1_000_000_000;
        sec = sec.saturating_add(1);
    }
    libc::timespec {
        tv_sec: sec.min(i64::MAX / 2) as libc::time_t,
        tv_nsec: nsec as libc::c_long,
    }
}
