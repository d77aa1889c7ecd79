//! The shared-memory ring every process queue is made of: a header and a byte ring of
//! variable-length records, in one anonymous `memfd` block.
//!
//! # Layout
//!
//! | part | what | written by |
//! |---|---|---|
//! | `meta` | magic, joinable flag, item type hash, byte capacity, maxsize, shutdown | creator; `shutdown` by `shutdown` |
//! | `prod` | producers' robust mutex, `pos` (tail, bytes), `count` (items put), repair marks | producers, under their mutex |
//! | `cons` | consumers' robust mutex, `pos` (head, bytes), `count` (items taken), repair marks | consumers, under their mutex |
//! | `wait` | futex event words for not-empty, not-full, all-done | waiters and wakers |
//! | `done` | `task_done` count | `task_done` |
//! | data | `cap` bytes of records | producers at the tail, read by consumers at the head |
//!
//! Every part starts a 64-byte cache line; each side's `pos` and each event word have
//! a line of their own, so the other side polling them does not steal the line its
//! writer's mutex and bookkeeping live on.
//!
//! `pos` values are monotonic byte counters (never wrapped); the physical offset is
//! `pos % cap`. A record is an 8-byte header (payload length, `u32`, then 4 zero
//! bytes) and the payload padded to 8 bytes; `cap` is a multiple of 8, so a header
//! never straddles the end, while a payload may (it is copied in two pieces).
//!
//! # Protocol
//!
//! Producers serialize among themselves with the producer mutex, consumers with the
//! consumer mutex, so one producer and one consumer never contend for a lock (the
//! two-lock ring of Michael & Scott's two-lock queue, on a bounded buffer). A producer,
//! under its mutex, checks room (`tail + need - head <= cap`, `puts - gets <
//! maxsize`), copies the record in, then publishes: `count += 1` (Relaxed) and
//! `pos = tail + need` (Release). A consumer, under its mutex, loads the tail
//! (Acquire), copies the record at the head out, then `pos = head + size`
//! (Release: a producer that reads it with Acquire may overwrite the bytes) and
//! `count += 1`. Each side keeps a process-local lower bound of the other side's
//! position ([`Ring`]'s caches) and reads the shared one only when the bound says
//! "full" or "empty", so the fast path touches the other side's cache line rarely.
//!
//! # Waiting
//!
//! Each condition (not empty, not full, all done) has an event word in shared memory
//! whose low bit says "a sleeper announced itself". A waiter spins briefly, then sets
//! the bit (`fetch_or`, `SeqCst`), issues a `SeqCst` fence, re-checks its condition,
//! and only then sleeps on the word (futex) with the value it set. A waker changes
//! the state, issues a `SeqCst` fence and reads the word: only if the bit is set does
//! it bump the word (clearing the bit, by compare-exchange) and wake every sleeper.
//! So the fast path makes no system call, a sleep episode costs one wake however many
//! items arrive before the sleeper runs, and no wake is lost: either the waker sees
//! the bit, or the waiter's re-check sees the change; a bump between the waiter's
//! `fetch_or` and its sleep makes the futex return at once. (An event count in the
//! style of Dmitry Vyukov's and of futex-based condition variables, learned from
//! their descriptions; written here from scratch.)
//!
//! # Dying processes
//!
//! Both mutexes are robust (see `crate::sync::robust`). A record becomes visible only
//! through the final `pos` store, so a producer that dies mid-copy leaves nothing
//! behind: the next producer takes the mutex with "owner died" and overwrites the
//! partial bytes. A consumer that dies before its `pos` store leaves the record in
//! place for the next consumer; one that dies after it has taken the item, which is
//! lost with it (as in Python). Each side writes a repair mark (`pend_pos` = old
//! position + 1, `pend_count` = old count) before publishing and clears it after, so
//! the next locker can make `count` agree with `pos` if the owner died between the two
//! stores. A process killed while *waiting* leaves the sleeper bit set, which only
//! costs the next waker one needless `futex` wake.
//!
//! # Model checking
//!
//! The atomics, the futex and the side mutexes come through `crate::shim`, and under
//! `--cfg concur_loom` the header and the data bytes live in loom's cells beside the
//! block (see [`Block`]): the `loom_models` below check the publication of records,
//! both waits and the shutdown against lost wake-ups, on the protocol code itself.

use crate::block::SharedMemory;
use crate::shim::atomic::{AtomicU32, AtomicU64, Ordering, fence};
use crate::shim::{SPINS, SideLock, futex};
use crate::sync::robust::Attempt;
use std::io;
use std::time::Instant;

/// How long an operation may wait.
#[derive(Copy, Clone, Debug)]
pub(crate) enum Wait {
    /// Not at all.
    Now,
    /// Until the deadline (`None`: forever).
    Until(Option<Instant>),
}

impl Wait {
    fn deadline(self) -> Option<Instant> {
        match self {
            Wait::Now => None,
            Wait::Until(d) => d,
        }
    }

    /// Whether no more waiting is allowed.
    fn expired(self) -> bool {
        match self {
            Wait::Now => true,
            Wait::Until(None) => false,
            Wait::Until(Some(d)) => Instant::now() >= d,
        }
    }
}

const MAGIC: u32 = 0x636f_7175; // "coqu"
const HEADER_BYTES: u64 = 8;
/// Smallest and largest byte capacity of the ring.
pub(crate) const MIN_CAPACITY: usize = 64;
pub(crate) const MAX_CAPACITY: usize = 1 << 30;
/// The low bit of an event word: a sleeper announced itself since the last bump.
const SLEEPER: u32 = 1;

#[repr(C, align(64))]
struct Meta {
    magic: AtomicU32,
    joinable: AtomicU32,
    type_hash: AtomicU64,
    cap: AtomicU64,
    maxsize: AtomicU64,
    /// 0 open, 1 shut down (set under both mutexes).
    shutdown: AtomicU32,
}

/// One value on a cache line of its own, so that polling it does not steal the
/// line holding its writer's lock and bookkeeping (or another hot value).
#[repr(C, align(64))]
struct Line<T>(T);

impl<T> std::ops::Deref for Line<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// One side (producers or consumers): its mutex and bookkeeping, written only by
/// the holder, and the published position, which the other side polls.
#[repr(C, align(64))]
struct Side {
    lock: SideLock,
    count: AtomicU64,
    pend_pos: AtomicU64,
    pend_count: AtomicU64,
    pos: Line<AtomicU64>,
}

#[repr(C, align(64))]
struct Waits {
    not_empty: Line<AtomicU32>,
    not_full: Line<AtomicU32>,
    all_done: Line<AtomicU32>,
}

#[repr(C, align(64))]
struct Done {
    done: AtomicU64,
}

/// The header at offset 0 of the block. Only atomics and the `UnsafeCell`-based
/// mutex: every byte pattern is a valid value, so a shared reference to it is sound
/// while other processes write it.
#[repr(C)]
struct Header {
    meta: Meta,
    prod: Side,
    cons: Side,
    wait: Waits,
    done: Done,
}

const DATA_OFFSET: usize = size_of::<Header>();

/// Where a ring's header and data live: the shared-memory block. Under loom (whose
/// atomics cannot live in shared memory) the header and each data byte are loom
/// objects beside the block; the block then only travels, as in a real build.
#[derive(Clone)]
struct Block {
    mem: SharedMemory,
    #[cfg(concur_loom)]
    model: std::sync::Arc<model::Cells>,
}

#[cfg(not(concur_loom))]
impl Block {
    fn new(mem: SharedMemory, _cap: usize) -> Self {
        Block { mem }
    }

    fn header(&self) -> &Header {
        // SAFETY: the block is at least `DATA_OFFSET` bytes (checked by `create`'s
        // size and `attach`) and page-aligned (more than `Header`'s 64), and stays
        // mapped while `self.mem` lives; `Header` is valid for any bytes and only
        // interior-mutable (see its docs).
        unsafe { &*self.mem.as_ptr().cast::<Header>() }
    }

    /// Copies `data` to byte `off` of the data region and on from its start
    /// (`off < cap`, `data.len() <= cap`).
    fn write(&self, off: usize, cap: usize, data: &[u8]) {
        let first = data.len().min(cap - off);
        let base = self.mem.as_ptr().wrapping_add(DATA_OFFSET);
        // SAFETY: `off + first <= cap` and the rest (`data.len() - first <= cap`,
        // as a record never exceeds `cap`) starts at 0: both ranges lie inside the
        // data region of the mapping. The bytes belong to the producer holding the
        // producer mutex (between tail and head + cap) and nobody reads them until
        // the tail is published. Raw copies: no reference to shared memory is made.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), base.add(off), first);
            std::ptr::copy_nonoverlapping(data.as_ptr().add(first), base, data.len() - first);
        }
    }

    /// Copies `out.len()` bytes from byte `off` of the data region (wrapping).
    fn read(&self, off: usize, cap: usize, out: &mut [u8]) {
        let first = out.len().min(cap - off);
        let base = self.mem.as_ptr().wrapping_add(DATA_OFFSET);
        // SAFETY: as in `write` (lengths never exceed `cap`); the bytes lie between
        // head and tail, published by a producer (Acquire on the tail) and owned by
        // the consumer holding the consumer mutex.
        unsafe {
            std::ptr::copy_nonoverlapping(base.add(off), out.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(base, out.as_mut_ptr().add(first), out.len() - first);
        }
    }
}

/// The loom block: the header as loom atomics, each data byte a loom cell (so that a
/// read of bytes not yet published is a data race loom reports).
#[cfg(concur_loom)]
mod model {
    use super::*;
    use loom::cell::UnsafeCell;

    pub(super) struct Cells {
        pub(super) header: Header,
        pub(super) data: Vec<UnsafeCell<u8>>,
    }

    fn line<T>(v: T) -> Line<T> {
        Line(v)
    }

    fn side() -> Side {
        Side {
            lock: SideLock::new(),
            count: AtomicU64::new(0),
            pend_pos: AtomicU64::new(0),
            pend_count: AtomicU64::new(0),
            pos: line(AtomicU64::new(0)),
        }
    }

    impl Cells {
        pub(super) fn new(cap: usize) -> Self {
            Cells {
                header: Header {
                    meta: Meta {
                        magic: AtomicU32::new(0),
                        joinable: AtomicU32::new(0),
                        type_hash: AtomicU64::new(0),
                        cap: AtomicU64::new(0),
                        maxsize: AtomicU64::new(0),
                        shutdown: AtomicU32::new(0),
                    },
                    prod: side(),
                    cons: side(),
                    wait: Waits {
                        not_empty: line(AtomicU32::new(0)),
                        not_full: line(AtomicU32::new(0)),
                        all_done: line(AtomicU32::new(0)),
                    },
                    done: Done {
                        done: AtomicU64::new(0),
                    },
                },
                data: (0..cap).map(|_| UnsafeCell::new(0)).collect(),
            }
        }
    }
}

#[cfg(concur_loom)]
impl Block {
    fn new(mem: SharedMemory, cap: usize) -> Self {
        Block {
            mem,
            model: std::sync::Arc::new(model::Cells::new(cap)),
        }
    }

    fn header(&self) -> &Header {
        &self.model.header
    }

    fn write(&self, off: usize, cap: usize, data: &[u8]) {
        for (i, b) in data.iter().enumerate() {
            // SAFETY: loom checks the access (a race with a reader is its report).
            self.model.data[(off + i) % cap].with_mut(|p| unsafe { *p = *b });
        }
    }

    fn read(&self, off: usize, cap: usize, out: &mut [u8]) {
        for (i, b) in out.iter_mut().enumerate() {
            // SAFETY: as in `write`.
            *b = self.model.data[(off + i) % cap].with(|p| unsafe { *p });
        }
    }
}

/// What a put could not do.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum PutFail {
    Full,
    ShutDown,
}

/// What a get could not do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum GetFail {
    Empty,
    ShutDown,
    Corrupt(String),
}

/// Items up to this many encoded bytes are encoded and decoded on the stack.
pub(crate) const SMALL: usize = 256;

/// A record's bytes, copied out of the ring: on the stack when small. (No thread-local
/// buffer: a forked child could deadlock registering its destructor.)
pub(crate) struct Buf {
    small: [u8; SMALL],
    big: Vec<u8>,
    len: usize,
}

impl Buf {
    pub(crate) fn new() -> Self {
        Buf {
            small: [0; SMALL],
            big: Vec::new(),
            len: 0,
        }
    }

    /// Makes the contents `len` bytes long (unspecified values) and returns them.
    fn resize(&mut self, len: usize) -> &mut [u8] {
        self.len = len;
        if len <= SMALL {
            &mut self.small[..len]
        } else {
            self.big.clear();
            self.big.resize(len, 0);
            &mut self.big
        }
    }

    /// The contents.
    pub(crate) fn as_slice(&self) -> &[u8] {
        if self.len <= SMALL {
            &self.small[..self.len]
        } else {
            &self.big
        }
    }
}

/// A process-local handle to a ring. Cloning shares the block (caches start afresh).
pub(crate) struct Ring {
    block: Block,
    cap: u64,
    maxsize: u64,
    /// Lower bounds of the consumers' `pos` and `count` (see the module docs). The
    /// position caches are raised with `AcqRel` and read with `Acquire`, so a thread
    /// trusting a position another thread of this process read from shared memory
    /// (with `Acquire`) also sees what that position published.
    head_cache: AtomicU64,
    gets_cache: AtomicU64,
    /// Lower bound of the producers' `pos`.
    tail_cache: AtomicU64,
}

impl Clone for Ring {
    fn clone(&self) -> Self {
        Ring::with_block(self.block.clone(), self.cap, self.maxsize)
    }
}

/// Rounds `n` up to a multiple of 8.
fn pad8(n: u64) -> u64 {
    n.div_ceil(8) * 8
}

/// A guard of one side's mutex.
struct SideGuard<'a>(&'a Side);

impl Drop for SideGuard<'_> {
    fn drop(&mut self) {
        self.0.lock.unlock();
    }
}

fn lock(side: &Side, wait: Wait) -> Option<SideGuard<'_>> {
    let mut a = side.lock.try_lock();
    match wait {
        // Another process's copy takes well under a microsecond: spin briefly before
        // calling the lock busy, so `try_` forms do not fail just for contention.
        Wait::Now => {
            for _ in 0..SPINS {
                if a != Attempt::Busy {
                    break;
                }
                std::hint::spin_loop();
                a = side.lock.try_lock();
            }
        }
        Wait::Until(d) => {
            if a == Attempt::Busy {
                a = side.lock.lock(d);
            }
        }
    }
    match a {
        Attempt::Acquired => Some(SideGuard(side)),
        Attempt::OwnerDied => {
            repair(side);
            Some(SideGuard(side))
        }
        // Never held across calls, so "held by the caller" cannot happen; treat it as
        // busy rather than trusting a state we did not create.
        Attempt::HeldByCaller | Attempt::Busy => None,
    }
}

/// Makes `count` agree with `pos` after the previous owner died (module docs).
fn repair(side: &Side) {
    let mark = side.pend_pos.load(Ordering::Relaxed);
    if mark != 0 {
        let before = side.pend_count.load(Ordering::Relaxed);
        let published = side.pos.load(Ordering::Relaxed) != mark - 1;
        side.count
            .store(before + u64::from(published), Ordering::Relaxed);
        side.pend_pos.store(0, Ordering::Relaxed);
    }
}

/// Publishes a move of `side` from `(pos, count)` by `size` bytes and one item.
/// `count_first`: producers count an item before it becomes visible, consumers after.
fn publish(side: &Side, pos: u64, count: u64, size: u64, count_first: bool) {
    side.pend_count.store(count, Ordering::Relaxed);
    side.pend_pos.store(pos + 1, Ordering::Relaxed);
    if count_first {
        side.count.store(count + 1, Ordering::Relaxed);
        side.pos.store(pos + size, Ordering::Release);
    } else {
        side.pos.store(pos + size, Ordering::Release);
        side.count.store(count + 1, Ordering::Relaxed);
    }
    side.pend_pos.store(0, Ordering::Relaxed);
}

/// Waits on the event word `seq` until `ready` or the deadline (module docs).
/// Returns after one sleep at most; the caller re-checks.
fn wait_for(seq: &AtomicU32, deadline: Option<Instant>, ready: impl Fn() -> bool) {
    for i in 0..SPINS {
        if ready() {
            return;
        }
        if i + 4 < SPINS {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
    // Announce a sleeper, then look again: a waker that published before our look
    // is seen by it; one that publishes after it sees the flag (both sides SeqCst).
    let s = seq.fetch_or(SLEEPER, Ordering::SeqCst) | SLEEPER;
    fence(Ordering::SeqCst);
    if !ready() {
        futex::wait(seq, s, deadline);
    }
}

/// The waker's half of [`wait_for`], after changing the state: if a sleeper was
/// announced, bumps the word (clearing the flag) and wakes every sleeper. One system
/// call per sleep, however many wakers come before the sleepers run again.
fn wake(seq: &AtomicU32) {
    fence(Ordering::SeqCst);
    let v = seq.load(Ordering::Relaxed);
    if v & SLEEPER != 0
        && seq
            .compare_exchange(v, v.wrapping_add(1), Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
    {
        futex::wake_all(seq);
    }
}

impl Ring {
    fn with_block(block: Block, cap: u64, maxsize: u64) -> Self {
        Ring {
            block,
            cap,
            maxsize,
            head_cache: AtomicU64::new(0),
            gets_cache: AtomicU64::new(0),
            tail_cache: AtomicU64::new(0),
        }
    }

    /// A new ring of `cap` data bytes (a multiple of 8, within the limits) holding at
    /// most `maxsize` items.
    pub(crate) fn create(
        cap: usize,
        maxsize: u64,
        joinable: bool,
        type_hash: u64,
    ) -> io::Result<Self> {
        debug_assert!(cap.is_multiple_of(8) && (MIN_CAPACITY..=MAX_CAPACITY).contains(&cap));
        let mem = SharedMemory::anonymous("concur-queue", DATA_OFFSET + cap)?;
        let ring = Ring::with_block(Block::new(mem, cap), cap as u64, maxsize);
        let h = ring.header();
        h.prod.lock.init()?;
        h.cons.lock.init()?;
        h.meta
            .joinable
            .store(u32::from(joinable), Ordering::Relaxed);
        h.meta.type_hash.store(type_hash, Ordering::Relaxed);
        h.meta.cap.store(cap as u64, Ordering::Relaxed);
        h.meta.maxsize.store(maxsize, Ordering::Relaxed);
        h.meta.magic.store(MAGIC, Ordering::Release);
        Ok(ring)
    }

    /// Attaches to a received block, checking that it holds a queue of this item type
    /// (and, if `need_joinable`, a joinable one).
    pub(crate) fn attach(
        mem: SharedMemory,
        type_hash: u64,
        need_joinable: bool,
    ) -> io::Result<Self> {
        let bad = |what: &str| Err(io::Error::new(io::ErrorKind::InvalidData, what.to_string()));
        if mem.len() < DATA_OFFSET + MIN_CAPACITY || !(mem.as_ptr() as usize).is_multiple_of(64) {
            return bad("shared memory is too small to hold a queue");
        }
        if cfg!(concur_loom) {
            return bad("a received queue cannot be attached under loom");
        }
        let probe = Ring::with_block(Block::new(mem, 0), 0, 0);
        let m = &probe.header().meta;
        if m.magic.load(Ordering::Acquire) != MAGIC {
            return bad("shared memory does not hold a concur process queue");
        }
        if m.type_hash.load(Ordering::Relaxed) != type_hash {
            return bad("the queue carries items of a different type");
        }
        if need_joinable && m.joinable.load(Ordering::Relaxed) == 0 {
            return bad("the queue is not a JoinableQueue");
        }
        let cap = m.cap.load(Ordering::Relaxed);
        let maxsize = m.maxsize.load(Ordering::Relaxed);
        let fits = usize::try_from(cap)
            .ok()
            .and_then(|c| c.checked_add(DATA_OFFSET))
            .is_some_and(|n| n <= probe.block.mem.len());
        if !fits || !cap.is_multiple_of(8) || cap < MIN_CAPACITY as u64 || maxsize == 0 {
            return bad("queue header is corrupted");
        }
        Ok(Ring::with_block(probe.block, cap, maxsize))
    }

    fn header(&self) -> &Header {
        self.block.header()
    }

    /// Overwrites the ring as a process writing the block outside the protocol could:
    /// `data` at the head, then both sides' positions and counts. For the fuzz target
    /// of the ring's records (`crate::fuzzing`); nothing else calls it.
    pub(crate) fn scribble(&self, data: &[u8], [tail, puts, head, gets]: [u64; 4]) {
        let h = self.header();
        let n = data.len().min(self.cap as usize);
        self.write_at(h.cons.pos.load(Ordering::Relaxed), &data[..n]);
        h.prod.pos.store(tail, Ordering::Release);
        h.prod.count.store(puts, Ordering::Release);
        h.cons.pos.store(head, Ordering::Release);
        h.cons.count.store(gets, Ordering::Release);
    }

    /// The block, for serialization.
    pub(crate) fn mem(&self) -> &SharedMemory {
        &self.block.mem
    }

    pub(crate) fn maxsize(&self) -> u64 {
        self.maxsize
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.cap
    }

    /// The largest payload a record can carry.
    pub(crate) fn max_payload(&self) -> usize {
        usize::try_from(self.cap - HEADER_BYTES)
            .unwrap_or(usize::MAX)
            .min(u32::MAX as usize)
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.header().meta.shutdown.load(Ordering::Acquire) != 0
    }

    /// Items put and not yet taken (approximate while others operate).
    pub(crate) fn qsize(&self) -> u64 {
        let h = self.header();
        let gets = h.cons.count.load(Ordering::Acquire);
        h.prod.count.load(Ordering::Acquire).saturating_sub(gets)
    }

    /// Copies `data` into the ring at byte position `pos` (wrapping).
    fn write_at(&self, pos: u64, data: &[u8]) {
        self.block
            .write((pos % self.cap) as usize, self.cap as usize, data);
    }

    /// Copies `out.len()` bytes from the ring at byte position `pos` (wrapping).
    fn read_at(&self, pos: u64, out: &mut [u8]) {
        self.block
            .read((pos % self.cap) as usize, self.cap as usize, out);
    }

    /// Whether a record of `need` bytes fits after `tail` with `puts` items put,
    /// refreshing the caches of the consumers' side when they say no.
    fn has_room(&self, tail: u64, puts: u64, need: u64) -> bool {
        let fits = |head: u64, gets: u64| {
            (tail + need).saturating_sub(head) <= self.cap
                && puts.saturating_sub(gets) < self.maxsize
        };
        if fits(
            self.head_cache.load(Ordering::Acquire),
            self.gets_cache.load(Ordering::Relaxed),
        ) {
            return true;
        }
        let c = &self.header().cons;
        let head = c.pos.load(Ordering::Acquire);
        let gets = c.count.load(Ordering::Acquire);
        self.head_cache.fetch_max(head, Ordering::AcqRel);
        self.gets_cache.fetch_max(gets, Ordering::Relaxed);
        fits(head, gets)
    }

    /// Puts one record with `payload` (at most [`max_payload`](Ring::max_payload)
    /// bytes), waiting as `wait` allows for room.
    pub(crate) fn put(&self, payload: &[u8], wait: Wait) -> Result<(), PutFail> {
        debug_assert!(payload.len() <= self.max_payload());
        let h = self.header();
        let need = HEADER_BYTES + pad8(payload.len() as u64);
        loop {
            if self.is_shutdown() {
                return Err(PutFail::ShutDown);
            }
            let Some(g) = lock(&h.prod, wait) else {
                return Err(PutFail::Full);
            };
            // Checked under the mutex: `shutdown` sets the flag holding it, so a put
            // that passes this check is published before the queue counts as shut.
            if self.is_shutdown() {
                return Err(PutFail::ShutDown);
            }
            let tail = h.prod.pos.load(Ordering::Relaxed);
            let puts = h.prod.count.load(Ordering::Relaxed);
            if self.has_room(tail, puts, need) {
                let mut head = [0u8; HEADER_BYTES as usize];
                head[..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
                self.write_at(tail, &head);
                self.write_at(tail + HEADER_BYTES, payload);
                publish(&h.prod, tail, puts, need, true);
                drop(g);
                wake(&h.wait.not_empty);
                return Ok(());
            }
            drop(g);
            if wait.expired() {
                return Err(PutFail::Full);
            }
            wait_for(&h.wait.not_full, wait.deadline(), || {
                self.is_shutdown() || {
                    let p = &h.prod;
                    self.has_room(
                        p.pos.load(Ordering::Relaxed),
                        p.count.load(Ordering::Relaxed),
                        need,
                    )
                }
            });
        }
    }

    /// Whether a record may be waiting at `head` (refreshing the tail cache).
    fn has_item(&self, head: u64) -> bool {
        if self.tail_cache.load(Ordering::Acquire) > head {
            return true;
        }
        let tail = self.header().prod.pos.load(Ordering::Acquire);
        if tail > head {
            // Only when there is news: polling an empty queue stays read-only.
            self.tail_cache.fetch_max(tail, Ordering::AcqRel);
            true
        } else {
            false
        }
    }

    /// Takes the record at the head into `out` (replacing its contents), waiting as
    /// `wait` allows for one.
    pub(crate) fn get(&self, out: &mut Buf, wait: Wait) -> Result<(), GetFail> {
        let h = self.header();
        loop {
            // Read before looking: once the flag is seen, every put that will ever
            // succeed is already published (see `put`), so "empty" is final.
            let shut = self.is_shutdown();
            let Some(g) = lock(&h.cons, wait) else {
                return Err(GetFail::Empty);
            };
            let head = h.cons.pos.load(Ordering::Relaxed);
            if self.has_item(head) {
                let r = self.take(head, out);
                drop(g);
                wake(&h.wait.not_full);
                return r;
            }
            drop(g);
            if shut {
                return Err(GetFail::ShutDown);
            }
            if wait.expired() {
                return Err(GetFail::Empty);
            }
            wait_for(&h.wait.not_empty, wait.deadline(), || {
                self.is_shutdown() || self.has_item(h.cons.pos.load(Ordering::Relaxed))
            });
        }
    }

    /// Copies out and removes the record at `head`; the caller holds the consumer
    /// mutex and has seen the tail beyond `head` (Acquire).
    fn take(&self, head: u64, out: &mut Buf) -> Result<(), GetFail> {
        let h = self.header();
        let gets = h.cons.count.load(Ordering::Relaxed);
        let tail = self.tail_cache.load(Ordering::Acquire);
        let mut hdr = [0u8; HEADER_BYTES as usize];
        self.read_at(head, &mut hdr);
        let len = u64::from(u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]));
        let size = HEADER_BYTES + pad8(len);
        // A record never holds more than the ring's largest payload: a larger length
        // (only a writer outside the protocol makes one) is refused before the copy
        // allocates it, whatever the published positions claim.
        if size > tail - head || len > self.max_payload() as u64 {
            // Only a process writing the block outside this protocol can cause this.
            // Drop everything published so far so the queue stays usable.
            let puts = h.prod.count.load(Ordering::Acquire);
            h.cons.pos.store(tail, Ordering::Release);
            h.cons.count.store(puts.max(gets), Ordering::Relaxed);
            return Err(GetFail::Corrupt(format!(
                "corrupted queue record: length {len} at byte {head} overruns the {} \
                 published bytes or the ring's {}-byte records; the queue was emptied",
                tail - head,
                self.max_payload()
            )));
        }
        self.read_at(head + HEADER_BYTES, out.resize(len as usize));
        publish(&h.cons, head, gets, size, false);
        Ok(())
    }

    /// Shuts the queue down: later puts fail; gets drain what is left (or, if
    /// `immediate`, nothing: the queued items are dropped and counted as done).
    /// Wakes every waiter. Returns the number of items dropped.
    pub(crate) fn shutdown(&self, immediate: bool) -> u64 {
        let h = self.header();
        let mut dropped = 0;
        {
            let gp = lock(&h.prod, Wait::Until(None));
            h.meta.shutdown.store(1, Ordering::Release);
            if immediate {
                let gc = lock(&h.cons, Wait::Until(None));
                let tail = h.prod.pos.load(Ordering::Relaxed);
                let puts = h.prod.count.load(Ordering::Relaxed);
                let gets = h.cons.count.load(Ordering::Relaxed);
                dropped = puts.saturating_sub(gets);
                h.cons.pos.store(tail, Ordering::Release);
                h.cons.count.store(puts.max(gets), Ordering::Relaxed);
                h.done.done.fetch_add(dropped, Ordering::SeqCst);
                drop(gc);
            }
            drop(gp);
        }
        let w = &h.wait;
        for seq in [&w.not_empty, &w.not_full, &w.all_done] {
            wake(seq);
        }
        dropped
    }

    /// Counts one task done. False if every item put is already done.
    pub(crate) fn task_done(&self) -> bool {
        let h = self.header();
        let mut d = h.done.done.load(Ordering::SeqCst);
        loop {
            let puts = h.prod.count.load(Ordering::SeqCst);
            if d >= puts {
                return false;
            }
            match h
                .done
                .done
                .compare_exchange_weak(d, d + 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => {
                    if d + 1 >= h.prod.count.load(Ordering::SeqCst) {
                        wake(&h.wait.all_done);
                    }
                    return true;
                }
                Err(now) => d = now,
            }
        }
    }

    fn all_done(&self) -> bool {
        let h = self.header();
        let d = h.done.done.load(Ordering::SeqCst);
        d >= h.prod.count.load(Ordering::SeqCst)
    }

    /// Waits until every item put has been marked done; false on timeout.
    pub(crate) fn join(&self, deadline: Option<Instant>) -> bool {
        let w = &self.header().wait;
        loop {
            if self.all_done() {
                return true;
            }
            if Wait::Until(deadline).expired() {
                return false;
            }
            wait_for(&w.all_done, deadline, || self.all_done());
        }
    }
}

#[cfg(test)]
#[path = "ring_tests.rs"]
mod tests;

/// Loom models of the ring's protocol (module docs): `RUSTFLAGS="--cfg concur_loom"
/// cargo test -p concur-process --release --lib loom_`.
#[cfg(all(test, concur_loom))]
mod loom_models {
    use super::*;
    use loom::thread;

    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut b = loom::model::Builder::new();
        b.preemption_bound = Some(2);
        b.check(f);
    }

    fn ring(maxsize: u64) -> Ring {
        Ring::create(MIN_CAPACITY, maxsize, true, 7).unwrap()
    }

    /// A record is published whole: a consumer that finds it (woken, or not having
    /// slept) reads exactly the bytes put, never bytes still being written (loom's
    /// cells would report the race), and the wake-up of a sleeping consumer is not
    /// lost (a lost one is a deadlock loom reports).
    #[test]
    fn loom_a_blocked_get_receives_a_whole_record() {
        model(|| {
            let r = ring(4);
            let p = r.clone();
            let producer = thread::spawn(move || {
                p.put(&[1, 2, 3, 4, 5, 6, 7, 8, 9], Wait::Now).unwrap();
            });
            let mut out = Buf::new();
            r.get(&mut out, Wait::Until(None)).unwrap();
            assert_eq!(out.as_slice(), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
            producer.join().unwrap();
        });
    }

    /// A put waiting for room (the ring holds one item) is woken by the get that
    /// makes it, and the items come out in order.
    #[test]
    fn loom_a_blocked_put_is_woken_by_a_get() {
        model(|| {
            let r = ring(1);
            r.put(&[1], Wait::Now).unwrap();
            let p = r.clone();
            let producer = thread::spawn(move || {
                p.put(&[2], Wait::Until(None)).unwrap();
            });
            let mut out = Buf::new();
            r.get(&mut out, Wait::Until(None)).unwrap();
            assert_eq!(out.as_slice(), [1]);
            r.get(&mut out, Wait::Until(None)).unwrap();
            assert_eq!(out.as_slice(), [2]);
            producer.join().unwrap();
        });
    }

    /// A shutdown wakes a get blocked on an empty ring, which then reports it.
    #[test]
    fn loom_shutdown_wakes_a_blocked_get() {
        model(|| {
            let r = ring(4);
            let c = r.clone();
            let consumer = thread::spawn(move || {
                let mut out = Buf::new();
                c.get(&mut out, Wait::Until(None))
            });
            assert_eq!(r.shutdown(false), 0);
            assert_eq!(consumer.join().unwrap(), Err(GetFail::ShutDown));
        });
    }

    /// `join` returns once the item taken is marked done, however the `task_done`
    /// races it.
    #[test]
    fn loom_join_hears_the_last_task_done() {
        model(|| {
            let r = ring(4);
            r.put(&[5], Wait::Now).unwrap();
            let c = r.clone();
            let worker = thread::spawn(move || {
                let mut out = Buf::new();
                c.get(&mut out, Wait::Until(None)).unwrap();
                assert!(c.task_done());
            });
            assert!(r.join(None));
            assert!(!r.task_done(), "nothing left to mark done");
            worker.join().unwrap();
        });
    }
}
