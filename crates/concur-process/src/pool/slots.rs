//! The start-or-cancel handshake of the tasks handed ahead to one worker.
//!
//! The dispatcher hands a worker up to [`MAX_INFLIGHT`] tasks ahead, so that tiny tasks
//! never wait for a round trip; a task handed over must still be cancellable (by its
//! future, by `shutdown(cancel_futures)`, by a map's timeout) and movable to an idle
//! worker until the moment it starts. Each worker shares with the dispatcher a page of
//! `MAX_INFLIGHT` atomic words; the task with sequence number `seq` uses word
//! `seq % MAX_INFLIGHT` (free again by then: at most `MAX_INFLIGHT` tasks are in
//! flight), whose value is `seq << 2 | state`:
//!
//! - the dispatcher stores `PENDING` when it hands the task over;
//! - the worker, just before running it, swaps `PENDING → STARTED`; if that fails the
//!   task was taken back and it reports it skipped;
//! - a cancel, or the dispatcher taking the task back for another worker, swaps
//!   `PENDING → REVOKED`; if that fails the task has started and runs to its end.
//!
//! One compare-and-swap decides each task, so a task either runs once or is taken
//! back, never both; and when a worker dies, the states say which of its tasks had
//! started (the one that fails) and which had not (they go to another worker).

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::block::SharedMemory;

/// Tasks handed to one worker ahead of its reports, at most (the words of its page).
pub(crate) const MAX_INFLIGHT: usize = 64;

const PENDING: u64 = 0;
const STARTED: u64 = 1;
const REVOKED: u64 = 2;

/// The state of one handed-over task, as read from its word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlotState {
    Pending,
    Started,
    Revoked,
    /// The word belongs to another task (or was never written).
    Other,
}

/// One worker's page of task words (shared with the worker process).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Slots {
    mem: SharedMemory,
}

impl Slots {
    pub(crate) fn new() -> io::Result<Slots> {
        Ok(Slots {
            mem: SharedMemory::anonymous("concur-pool-slots", MAX_INFLIGHT * 8)?,
        })
    }

    fn word(&self, seq: u64) -> &AtomicU64 {
        let i = (seq % MAX_INFLIGHT as u64) as usize;
        assert!(self.mem.len() >= MAX_INFLIGHT * 8, "a task page too small");
        // SAFETY: the mapping is page-aligned and at least `MAX_INFLIGHT * 8` bytes
        // long (checked above), so word `i` is in bounds and 8-byte aligned; it lives
        // as long as `self.mem`, which the returned reference borrows. Other processes
        // touch these words only through atomic operations, as this one does.
        unsafe { &*self.mem.as_ptr().cast::<AtomicU64>().add(i) }
    }

    /// The dispatcher hands task `seq` over.
    pub(crate) fn hand(&self, seq: u64) {
        self.word(seq).store(seq << 2 | PENDING, Ordering::SeqCst);
    }

    /// The worker is about to run task `seq`: true if it may.
    pub(crate) fn try_start(&self, seq: u64) -> bool {
        self.word(seq)
            .compare_exchange(
                seq << 2 | PENDING,
                seq << 2 | STARTED,
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .is_ok()
    }

    /// Takes task `seq` back before it starts: true if it will not run.
    pub(crate) fn try_revoke(&self, seq: u64) -> bool {
        self.word(seq)
            .compare_exchange(
                seq << 2 | PENDING,
                seq << 2 | REVOKED,
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .is_ok()
    }

    /// What became of task `seq`.
    pub(crate) fn state(&self, seq: u64) -> SlotState {
        let v = self.word(seq).load(Ordering::SeqCst);
        if v >> 2 != seq {
            return SlotState::Other;
        }
        match v & 3 {
            PENDING => SlotState::Pending,
            STARTED => SlotState::Started,
            REVOKED => SlotState::Revoked,
            _ => SlotState::Other,
        }
    }
}
