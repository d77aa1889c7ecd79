//! One worker process as the dispatcher sees it: its tasks in flight, its socket's
//! pending writes, and how it is started and buried.

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use concur_core::futures::{TaskError, exec};
use rustix::io::IoSlice;

use super::policy::WorkerLoad;
use super::slots::{SlotState, Slots};
use super::task::{Completion, Config, Task};
use super::wire::{self, WorkerArgs};
use crate::connection::{Connection, FRAME_HEADER, frame_header};
use crate::process::Process;
use crate::sys::proc as sysproc;
use crate::sys::socket;

/// The largest frame between the dispatcher and a worker (they trust each other).
const MAX_FRAME: usize = u32::MAX as usize;

/// Where a task frame carries its sequence number (after the header and the offset).
const SEQ_AT: usize = FRAME_HEADER + 8;

/// A task handed to a worker: its frame (kept to be sent elsewhere if the worker dies
/// before starting it) and the rest of it, or `None` once taken back for another
/// worker (the worker will report it skipped).
pub(crate) struct Inflight {
    pub(crate) seq: u64,
    pub(crate) frame: Vec<u8>,
    pub(crate) task: Option<Handed>,
}

/// What a handed task keeps besides its frame.
pub(crate) struct Handed {
    pub(crate) fds: Vec<OwnedFd>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) done: Box<dyn Completion>,
    pub(crate) abort: Option<Arc<AtomicBool>>,
}

impl Inflight {
    /// Back to a queued task (its cancel guard reset: queued tasks are cancellable).
    pub(crate) fn into_task(self) -> Option<Task> {
        let mut h = self.task?;
        h.done.queued();
        Some(Task {
            frame: self.frame,
            fds: h.fds,
            timeout: h.timeout,
            done: h.done,
            abort: h.abort,
        })
    }
}

/// Why the dispatcher killed a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kill {
    Timeout(Duration),
    MemoryLimit(u64),
    Terminate,
    /// The running task's `AbortHandle` asked.
    Abort,
}

pub(crate) struct Worker {
    pub(crate) process: Process<()>,
    pub(crate) conn: Connection,
    pub(crate) slots: Slots,
    pub(crate) pid: u32,
    pub(crate) ready: bool,
    /// Handed over, without a report yet; `inflight[..sent]` are fully written.
    pub(crate) inflight: VecDeque<Inflight>,
    pub(crate) sent: usize,
    /// Bytes of `inflight[sent]` already written.
    pub(crate) partial: usize,
    /// Tasks handed to this worker in its life (the next one's sequence number).
    pub(crate) given: u64,
    /// When the oldest task in flight started, roughly (its predecessor's report).
    pub(crate) head_since: Option<Instant>,
    pub(crate) killed: Option<Kill>,
    /// No more tasks: it exits once its last report is in.
    pub(crate) retiring: bool,
    /// The exit frame (an empty frame) has been written.
    pub(crate) exit_written: bool,
    /// The kernel's OOM-kill count when the worker started.
    pub(crate) oom_base: Option<u64>,
}

impl Worker {
    /// Starts a worker process.
    pub(crate) fn start(cfg: &Config, n: u64) -> Result<Worker, String> {
        let (mine, theirs) = crate::Pipe::duplex().map_err(|e| e.to_string())?;
        mine.set_max_frame(MAX_FRAME);
        theirs.set_max_frame(MAX_FRAME);
        let slots = Slots::new().map_err(|e| e.to_string())?;
        let args = WorkerArgs {
            conn: theirs,
            slots: slots.clone(),
            init: cfg.init.clone(),
        };
        let process = Process::builder()
            .name(format!("{}-{n}", cfg.name))
            .daemon(true)
            .start_method(cfg.method)
            .spawn(wire::worker_main, args)
            .map_err(|e| e.to_string())?;
        let pid = process.pid().unwrap_or(0);
        Ok(Worker {
            process,
            conn: mine,
            slots,
            pid,
            ready: false,
            inflight: VecDeque::new(),
            sent: 0,
            partial: 0,
            given: 0,
            head_since: None,
            killed: None,
            retiring: false,
            exit_written: false,
            oom_base: sysproc::oom_kills(),
        })
    }

    /// What the dispatch policy needs to know of this worker.
    pub(crate) fn load(&self) -> WorkerLoad {
        WorkerLoad {
            in_flight: self.inflight.len(),
            given: self.given,
            retiring: self.retiring,
            killed: self.killed.is_some(),
        }
    }

    /// Hands `task` over (not yet written); false if its future was cancelled (the
    /// task is dropped).
    pub(crate) fn hand(&mut self, task: Task) -> bool {
        let Task {
            mut frame,
            fds,
            timeout,
            mut done,
            abort,
        } = task;
        let seq = self.given;
        self.slots.hand(seq);
        let slots = self.slots.clone();
        if !done.handed(Box::new(move || slots.try_revoke(seq))) {
            return false;
        }
        self.given += 1;
        frame[SEQ_AT..SEQ_AT + 8].copy_from_slice(&seq.to_le_bytes());
        if self.inflight.is_empty() {
            self.head_since = Some(Instant::now());
            done.running();
        }
        self.inflight.push_back(Inflight {
            seq,
            frame,
            task: Some(Handed {
                fds,
                timeout,
                done,
                abort,
            }),
        });
        true
    }

    /// Takes back up to `want` tasks that have not started, newest first (for an idle
    /// worker). Tasks not yet written are simply removed; written ones become
    /// placeholders that the worker reports skipped.
    pub(crate) fn take_back(&mut self, want: usize) -> Vec<Task> {
        let mut out = Vec::new();
        let mut i = self.inflight.len();
        while out.len() < want && i > 1 {
            i -= 1;
            let written = i < self.sent;
            let last = i == self.inflight.len() - 1;
            let unwritten = i > self.sent || (i == self.sent && self.partial == 0);
            // Written ones become placeholders; unwritten ones (always the newest) are
            // removed; one partly written, or a placeholder already, stays.
            if self.inflight[i].task.is_none() || !(written || (unwritten && last)) {
                continue;
            }
            let seq = self.inflight[i].seq;
            if !self.slots.try_revoke(seq) {
                break; // it started: so did everything before it
            }
            if written {
                let e = &mut self.inflight[i];
                let t = Inflight {
                    seq,
                    frame: std::mem::take(&mut e.frame),
                    task: e.task.take(),
                };
                out.extend(t.into_task());
            } else {
                out.extend(self.inflight.pop_back().and_then(Inflight::into_task));
            }
        }
        out.reverse();
        out
    }

    /// A report arrived for the oldest task in flight: returns it (`None` for a
    /// placeholder) and marks the next one running. (A function of the fields it
    /// uses, so that it can run while the connection is borrowed.)
    pub(crate) fn reported(
        inflight: &mut VecDeque<Inflight>,
        sent: &mut usize,
        head_since: &mut Option<Instant>,
    ) -> Option<Inflight> {
        let t = inflight.pop_front()?;
        *sent = sent.saturating_sub(1);
        *head_since = (!inflight.is_empty()).then(Instant::now);
        if let Some(h) = inflight.front_mut().and_then(|t| t.task.as_mut()) {
            h.done.running();
        }
        Some(t)
    }

    /// The time limit of the running task and when it started.
    pub(crate) fn head_deadline(&self) -> Option<Instant> {
        if self.killed.is_some() || self.sent == 0 {
            return None;
        }
        let t = self.inflight.front()?.task.as_ref()?.timeout?;
        self.head_since?.checked_add(t)
    }

    /// Stops the oldest task in flight if its `AbortHandle` asked: takes it back if it
    /// has not started (the worker reports it skipped), else kills the worker. True if
    /// it killed the worker.
    pub(crate) fn abort_head(&mut self) -> bool {
        let Some(head) = self.inflight.front() else {
            return false;
        };
        let asked = head
            .task
            .as_ref()
            .and_then(|h| h.abort.as_ref())
            .is_some_and(|a| a.load(Ordering::SeqCst));
        if !asked
            || self.slots.try_revoke(head.seq)
            || self.slots.state(head.seq) == SlotState::Revoked
        {
            return false;
        }
        self.kill(Kill::Abort);
        true
    }

    /// Whether the oldest task in flight has started (not waiting for an initializer).
    pub(crate) fn head_started(&self) -> bool {
        self.inflight
            .front()
            .is_some_and(|h| self.slots.state(h.seq) == SlotState::Started)
    }

    pub(crate) fn wants_write(&self) -> bool {
        // A killed worker is written to no more (its end of stream is what we wait for).
        self.killed.is_none()
            && (self.sent < self.inflight.len()
                || (self.retiring && self.inflight.is_empty() && !self.exit_written))
    }

    /// Writes what is pending, without blocking.
    pub(crate) fn flush(&mut self) {
        if self.killed.is_some() {
            return;
        }
        while self.sent < self.inflight.len() {
            let first = &self.inflight[self.sent];
            let fds: &[OwnedFd] = first.task.as_ref().map_or(&[], |h| &h.fds);
            let r = if !fds.is_empty() {
                // A frame with descriptors goes alone, with them on its first byte.
                let fds: Vec<BorrowedFd<'_>> = if self.partial == 0 {
                    fds.iter().map(AsFd::as_fd).collect()
                } else {
                    Vec::new()
                };
                let iov = [IoSlice::new(&first.frame[self.partial..])];
                socket::send_some(self.conn.as_fd(), &iov, &fds)
            } else {
                let mut iov = Vec::with_capacity(16);
                iov.push(IoSlice::new(&first.frame[self.partial..]));
                for t in self.inflight.iter().skip(self.sent + 1).take(15) {
                    if t.task.as_ref().is_some_and(|h| !h.fds.is_empty()) {
                        break;
                    }
                    iov.push(IoSlice::new(&t.frame));
                }
                socket::send_some(self.conn.as_fd(), &iov, &[])
            };
            match r {
                Ok(Some(mut n)) => {
                    while n > 0 && self.sent < self.inflight.len() {
                        let left = self.inflight[self.sent].frame.len() - self.partial;
                        if n >= left {
                            n -= left;
                            self.sent += 1;
                            self.partial = 0;
                        } else {
                            self.partial += n;
                            n = 0;
                        }
                    }
                }
                // Full, or the worker is gone (its end of stream comes next).
                Ok(None) | Err(_) => return,
            }
        }
        if self.retiring && self.inflight.is_empty() && !self.exit_written {
            let h = frame_header(0, 0);
            if let Ok(Some(n)) = socket::send_some(self.conn.as_fd(), &[IoSlice::new(&h)], &[]) {
                debug_assert_eq!(n, h.len());
                self.exit_written = true;
            }
        }
    }

    /// Kills the worker, remembering why.
    pub(crate) fn kill(&mut self, why: Kill) {
        self.killed.get_or_insert(why);
        let _ = self.process.kill();
    }

    /// Waits for the dead (or dying) worker and returns its exit code.
    pub(crate) fn bury(&self) -> Option<i32> {
        let _ = self.process.join_timeout(Duration::from_secs(2));
        if self.process.exitcode().is_none() {
            let _ = self.process.kill();
            let _ = self.process.join_timeout(Duration::from_secs(2));
        }
        self.process.exitcode()
    }

    /// The error of the task this worker was running when it died with `code`.
    pub(crate) fn death_error(&self, code: Option<i32>) -> TaskError {
        match self.killed {
            Some(Kill::Timeout(t)) => TaskError::timeout(format!(
                "the task ran longer than its time limit of {t:?}: its worker was killed"
            )),
            Some(Kill::MemoryLimit(limit)) => exec::out_of_memory(
                Some(9),
                format!("the worker used more than the pool's memory limit of {limit} bytes"),
            ),
            Some(Kill::Terminate) => TaskError::cancelled(),
            Some(Kill::Abort) => {
                exec::aborted("the task was aborted while it ran: its worker was killed")
            }
            None => match code {
                Some(c) if c < 0 => {
                    let sig = -c;
                    if sig == 9
                        && let (Some(before), Some(now)) = (self.oom_base, sysproc::oom_kills())
                        && now > before
                    {
                        return exec::out_of_memory(Some(9), "killed by the kernel's OOM killer");
                    }
                    exec::worker_died(None, Some(sig))
                }
                Some(c) => exec::worker_died(Some(c), None),
                None => exec::worker_died(None, None),
            },
        }
    }
}
