//! The reaper: a helper thread that adopts children whose `Process` handle was dropped
//! while they still ran, keeps their control socket open (so they are not taken for
//! orphans) and drained (so a large result cannot block them), and reaps each one
//! when it exits, so no zombie is left behind.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use rustix::event::{EventfdFlags, PollFd, PollFlags};

use crate::connection::Connection;
use crate::sys::proc as sys;
use crate::sys::socket;

struct Entry {
    pidfd: OwnedFd,
    control: Option<Connection>,
}

struct Reaper {
    entries: mpsc::Sender<Entry>,
    wake: std::sync::Arc<OwnedFd>,
    owner: u32,
}

static REAPER: Mutex<Option<Reaper>> = Mutex::new(None);

/// Hands a running child to the reaper. If the reaper thread cannot be started, the
/// child is killed and reaped here instead: a zombie or an unwatched child is worse.
pub(crate) fn adopt(pidfd: OwnedFd, control: Option<Connection>) {
    let entry = Entry { pidfd, control };
    let entry = match reaper() {
        Ok((tx, wake)) => match tx.send(entry) {
            Ok(()) => {
                let _ = rustix::io::write(&*wake, &1u64.to_ne_bytes());
                return;
            }
            Err(mpsc::SendError(e)) => e,
        },
        Err(_) => entry,
    };
    let _ = sys::signal(entry.pidfd.as_fd(), true);
    let _ = sys::wait(entry.pidfd.as_fd(), true, true);
}

type Handles = (mpsc::Sender<Entry>, std::sync::Arc<OwnedFd>);

fn reaper() -> std::io::Result<Handles> {
    let mut g = REAPER.lock().unwrap_or_else(PoisonError::into_inner);
    let me = sys::getpid();
    if let Some(r) = g.as_ref().filter(|r| r.owner == me) {
        return Ok((r.entries.clone(), r.wake.clone()));
    }
    let wake = std::sync::Arc::new(rustix::event::eventfd(
        0,
        EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK,
    )?);
    let (tx, rx) = mpsc::channel();
    let w = wake.clone();
    sys::spawn_helper(sys::REAPER_THREAD, move || run(&rx, &w))?;
    *g = Some(Reaper {
        entries: tx.clone(),
        wake: wake.clone(),
        owner: me,
    });
    Ok((tx, wake))
}

fn run(rx: &mpsc::Receiver<Entry>, wake: &OwnedFd) {
    let mut entries: Vec<Entry> = Vec::new();
    loop {
        while let Ok(e) = rx.try_recv() {
            entries.push(e);
        }
        let ready = {
            let mut fds = Vec::with_capacity(1 + 2 * entries.len());
            fds.push(PollFd::new(wake, PollFlags::IN));
            for e in &entries {
                fds.push(PollFd::new(&e.pidfd, PollFlags::IN));
                if let Some(c) = &e.control {
                    fds.push(PollFd::from_borrowed_fd(c.as_fd(), PollFlags::IN));
                }
            }
            if socket::poll_until(&mut fds, None).is_err() {
                // Only EINVAL/ENOMEM can get here; try again rather than spin hard.
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            fds.iter()
                .map(|p| !p.revents().is_empty())
                .collect::<Vec<bool>>()
        };
        if ready[0] {
            let mut b = [0u8; 8];
            let _ = rustix::io::read(wake, &mut b);
        }
        let mut flags = ready[1..].iter().copied();
        let mut keep = Vec::with_capacity(entries.len());
        for mut e in entries.drain(..) {
            let exited = flags.next().unwrap_or(false);
            let talking = e.control.is_some() && flags.next().unwrap_or(false);
            if talking {
                drain(&mut e.control);
            }
            if exited {
                // Readable pidfd: the child has exited, so this does not block.
                if !matches!(sys::wait(e.pidfd.as_fd(), true, true), Ok(None)) {
                    continue;
                }
            }
            keep.push(e);
        }
        entries = keep;
    }
}

/// Reads and drops whatever the child sent; closes the connection at its end.
fn drain(control: &mut Option<Connection>) {
    let Some(c) = control else { return };
    loop {
        match c.recv_frame_with(Some(Instant::now()), |_, _| ()) {
            Ok(()) => {}
            Err(e) if e.is_timeout() => return,
            Err(_) => {
                *control = None;
                return;
            }
        }
    }
}
