//! The calling thread's kernel thread id (`gettid`), cached per thread, and a cache
//! that forks cannot fool.
//!
//! Owners of process-shared locks are recorded by thread id, which is unique across
//! all processes of a PID namespace. `gettid` is a system call, so each thread caches
//! its id. A forked child's only thread inherits the forking thread's cache but has a
//! new id, so the cache is tagged with an *epoch* kept in a page marked
//! `MADV_WIPEONFORK`: the kernel zeroes that page in every child (however it was
//! forked), the child then picks a new epoch, and every stale cache entry misses.
//! Without `MADV_WIPEONFORK` (Linux < 4.14) every call asks the kernel.

use std::cell::Cell;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

/// The epoch page: null until first use; its first word is the epoch (0 = wiped).
static PAGE: AtomicPtr<AtomicU64> = AtomicPtr::new(ptr::null_mut());
/// Sentinel stored in `PAGE` when the page could not be set up.
static NO_PAGE: AtomicU64 = AtomicU64::new(0);
/// The last epoch handed out (inherited across forks, so children count on from it).
static EPOCHS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// (epoch, tid) of this thread's last lookup; epoch 0 never matches.
    static CACHE: Cell<(u64, u32)> = const { Cell::new((0, 0)) };
}

fn gettid() -> u32 {
    rustix::thread::gettid()
        .as_raw_nonzero()
        .get()
        .unsigned_abs()
}

fn page() -> Option<&'static AtomicU64> {
    let mut p = PAGE.load(Ordering::Acquire);
    if p.is_null() {
        p = setup_page();
    }
    if ptr::eq(p, &NO_PAGE) {
        return None;
    }
    // SAFETY: a non-sentinel pointer in `PAGE` points to a page mapped by
    // `setup_page` that is never unmapped, so it is valid for `'static`.
    Some(unsafe { &*p })
}

#[cold]
fn setup_page() -> *mut AtomicU64 {
    let len = rustix::param::page_size();
    // SAFETY: a fresh private anonymous mapping at an address the kernel picks
    // affects no existing object.
    let mapped = unsafe {
        rustix::mm::mmap_anonymous(
            ptr::null_mut(),
            len,
            rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
            rustix::mm::MapFlags::PRIVATE,
        )
    };
    let new = match mapped {
        Ok(p) => {
            // SAFETY: `p` is the page just mapped, owned by this function.
            let advised =
                unsafe { rustix::mm::madvise(p, len, rustix::mm::Advice::LinuxWipeOnFork) };
            if advised.is_err() {
                // SAFETY: unmapping the page just mapped, which nothing else knows of.
                let _ = unsafe { rustix::mm::munmap(p, len) };
                (&NO_PAGE as *const AtomicU64).cast_mut()
            } else {
                p.cast::<AtomicU64>()
            }
        }
        Err(_) => (&NO_PAGE as *const AtomicU64).cast_mut(),
    };
    match PAGE.compare_exchange(ptr::null_mut(), new, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => new,
        Err(winner) => {
            if !ptr::eq(new, &NO_PAGE) {
                // SAFETY: our page lost the race and was never published.
                let _ = unsafe { rustix::mm::munmap(new.cast(), len) };
            }
            winner
        }
    }
}

/// The calling thread's kernel thread id (never 0).
pub(crate) fn current() -> u32 {
    let Some(word) = page() else {
        return gettid();
    };
    let mut epoch = word.load(Ordering::Acquire);
    if epoch == 0 {
        // First use in this process, or a fork wiped the page: start a new epoch.
        let new = EPOCHS.fetch_add(1, Ordering::Relaxed) + 1;
        epoch = match word.compare_exchange(0, new, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => new,
            Err(other) => other,
        };
    }
    CACHE.with(|c| {
        let (e, tid) = c.get();
        if e == epoch {
            tid
        } else {
            let tid = gettid();
            c.set((epoch, tid));
            tid
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_kernel_and_differs_between_threads() {
        assert_eq!(current(), gettid());
        assert_eq!(current(), current());
        let other = std::thread::spawn(current).join().unwrap();
        assert_ne!(other, current());
    }

    #[test]
    fn a_forked_child_sees_its_own_id() {
        let parent = current();
        // SAFETY: the child only calls async-signal-safe system calls and `_exit`s.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let ok = current() == gettid() && current() != parent;
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waits for our own child; `status` is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(r, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    }
}
