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
//! Modelled with loom in `loom_models` below (through `crate::shim`).

use std::io;

use serde::{Deserialize, Serialize};

use crate::block::SharedMemory;
use crate::shim::atomic::{AtomicU64, Ordering};

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

// ---- the protocol, on one word (model-checked in `loom_models` below) -------------------

/// The dispatcher hands task `seq` over (its word is free: the task `MAX_INFLIGHT`
/// before it has been reported).
fn hand(word: &AtomicU64, seq: u64) {
    word.store(seq << 2 | PENDING, Ordering::SeqCst);
}

/// The worker is about to run task `seq`: true if it may.
fn try_start(word: &AtomicU64, seq: u64) -> bool {
    word.compare_exchange(
        seq << 2 | PENDING,
        seq << 2 | STARTED,
        Ordering::SeqCst,
        Ordering::SeqCst,
    )
    .is_ok()
}

/// Takes task `seq` back before it starts: true if it will not run.
fn try_revoke(word: &AtomicU64, seq: u64) -> bool {
    word.compare_exchange(
        seq << 2 | PENDING,
        seq << 2 | REVOKED,
        Ordering::SeqCst,
        Ordering::SeqCst,
    )
    .is_ok()
}

/// What became of task `seq`.
fn state(word: &AtomicU64, seq: u64) -> SlotState {
    let v = word.load(Ordering::SeqCst);
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

// ---- the page ----------------------------------------------------------------------------

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

    #[cfg(not(concur_loom))]
    fn word(&self, seq: u64) -> &AtomicU64 {
        let i = (seq % MAX_INFLIGHT as u64) as usize;
        assert!(self.mem.len() >= MAX_INFLIGHT * 8, "a task page too small");
        // SAFETY: the mapping is page-aligned and at least `MAX_INFLIGHT * 8` bytes
        // long (checked above), so word `i` is in bounds and 8-byte aligned; it lives
        // as long as `self.mem`, which the returned reference borrows. Other processes
        // touch these words only through atomic operations, as this one does.
        unsafe { &*self.mem.as_ptr().cast::<AtomicU64>().add(i) }
    }

    /// Under loom the words are loom's, which cannot live in shared memory: the page is
    /// not used there (the models run the protocol on words of their own).
    #[cfg(concur_loom)]
    fn word(&self, _seq: u64) -> &AtomicU64 {
        unreachable!(
            "the task page is not used under loom ({} bytes)",
            self.mem.len()
        )
    }

    /// The dispatcher hands task `seq` over.
    pub(crate) fn hand(&self, seq: u64) {
        hand(self.word(seq), seq);
    }

    /// The worker is about to run task `seq`: true if it may.
    pub(crate) fn try_start(&self, seq: u64) -> bool {
        try_start(self.word(seq), seq)
    }

    /// Takes task `seq` back before it starts: true if it will not run.
    pub(crate) fn try_revoke(&self, seq: u64) -> bool {
        try_revoke(self.word(seq), seq)
    }

    /// What became of task `seq`.
    pub(crate) fn state(&self, seq: u64) -> SlotState {
        state(self.word(seq), seq)
    }
}

/// Loom models of the protocol: `RUSTFLAGS="--cfg concur_loom" cargo test -p
/// concur-process --release --lib loom_`.
#[cfg(all(test, concur_loom))]
mod loom_models {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// The worker starting a task and the dispatcher taking it back (for an idle
    /// worker, or a cancel) race: exactly one wins, and the word says which.
    #[test]
    fn loom_start_and_take_back_race_one_winner() {
        loom::model(|| {
            let word = Arc::new(AtomicU64::new(0));
            hand(&word, 5);
            let w = word.clone();
            let worker = thread::spawn(move || try_start(&w, 5));
            let revoked = try_revoke(&word, 5);
            let started = worker.join().unwrap();
            assert!(started != revoked, "started {started}, revoked {revoked}");
            let want = if started {
                SlotState::Started
            } else {
                SlotState::Revoked
            };
            assert_eq!(state(&word, 5), want);
        });
    }

    /// A word is reused `MAX_INFLIGHT` tasks later: a late take-back aimed at the old
    /// task never touches the new one, and the new one starts.
    #[test]
    fn loom_a_stale_take_back_cannot_hit_the_next_task_of_the_word() {
        loom::model(|| {
            let old = 3;
            let new = old + MAX_INFLIGHT as u64;
            let word = Arc::new(AtomicU64::new(0));
            hand(&word, old);
            assert!(try_start(&word, old));
            let w = word.clone();
            let dispatcher = thread::spawn(move || {
                // The old task reported; the word is handed again.
                hand(&w, new);
            });
            let stale = try_revoke(&word, old);
            dispatcher.join().unwrap();
            assert!(!stale, "the old task had started");
            assert!(try_start(&word, new));
            assert_eq!(state(&word, new), SlotState::Started);
            assert_eq!(state(&word, old), SlotState::Other);
        });
    }

    /// Two take-backs (a cancel and the dispatcher) and the start, all at once: one
    /// winner; a take-back that wins is the only one that does.
    #[test]
    fn loom_two_take_backs_and_a_start() {
        loom::model(|| {
            let word = Arc::new(AtomicU64::new(0));
            hand(&word, 9);
            let (a, b) = (word.clone(), word.clone());
            let cancel = thread::spawn(move || try_revoke(&a, 9));
            let worker = thread::spawn(move || try_start(&b, 9));
            let mine = try_revoke(&word, 9);
            let (theirs, started) = (cancel.join().unwrap(), worker.join().unwrap());
            assert_eq!(u8::from(mine) + u8::from(theirs) + u8::from(started), 1);
        });
    }
}
