//! [`ThreadPool::map_slice`]: a parallel map over a borrowed slice whose workers write
//! straight into the output vector, for work too fine-grained for the lazy, ordered
//! `map` (whose consumer thread handles every result). The idea is rayon's
//! `par_iter().map().collect()` into a pre-sized vector (disjoint output ranges, one
//! per task) and `std::thread::scope`'s rule that borrowed work is waited for before
//! the borrow ends, even on unwind.

use super::error::TaskError;
use super::executor::{Executor, MapOptions, MapOptionsExt, Reporter};
use super::future::Future;
use super::pool::ThreadPool;
use crate::sync::Lock;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Below this much estimated work left, `map_slice`'s calling thread does it alone:
/// about what waking a sleeping worker costs on a loaded machine.
const ALONE_BELOW: std::time::Duration = std::time::Duration::from_micros(20);

/// What every chunk task of one `map_slice` shares; it lives on the caller's stack.
struct Ctx<'a, A, F, T> {
    items: &'a [A],
    f: &'a F,
    /// The output buffer (capacity `items.len()`); chunk `k` writes only its range.
    out: *mut T,
    chunksize: usize,
    /// How many chunks there are, and the next one nobody has claimed yet: every
    /// participant (the caller and the helper tasks) claims chunks from here until
    /// none is left, so a slow participant simply ends up with fewer.
    chunks: usize,
    next: AtomicUsize,
    /// How many items at the start of each chunk's range were written (kept for types
    /// with drop glue, whose values must be dropped after a failure; 0 otherwise).
    written: Box<[AtomicUsize]>,
    /// The first failure by position: (item index, error).
    failure: Lock<Option<(usize, TaskError)>>,
    reporter: Option<Reporter>,
}

impl<A, F, T> Ctx<'_, A, F, T> {
    fn range(&self, k: usize) -> std::ops::Range<usize> {
        let start = k * self.chunksize;
        start..(start + self.chunksize).min(self.items.len())
    }

    fn fail(&self, at: usize, e: TaskError) {
        let mut g = self.failure.acquire();
        if g.as_ref().is_none_or(|(p, _)| at < *p) {
            *g = Some((at, e));
        }
    }
}

/// Runs chunk `k` of the [`Ctx`] behind `ctx`: applies `f` to its items in order,
/// writing each result to its slot, and stops at the first panic (recorded with its
/// position, as Python fails a whole chunk).
///
/// # Safety
/// `ctx` points to a live `Ctx<A, F, T>` that outlives this call, and chunk `k` is run
/// at most once (so its output range has one writer).
unsafe fn run_chunk<A, F, T>(ctx: *const (), k: usize)
where
    A: Sync,
    F: Fn(&A) -> T + Sync,
    T: Send,
{
    // SAFETY: the caller guarantees `ctx` is a live `Ctx<A, F, T>`.
    let ctx = unsafe { &*ctx.cast::<Ctx<'_, A, F, T>>() };
    let range = ctx.range(k);
    let items = &ctx.items[range.clone()];
    // SAFETY: `range` lies within the buffer's capacity (`items.len()`), it belongs to
    // this chunk alone (chunks have disjoint ranges, each runs once), and the buffer
    // outlives the task; `MaybeUninit` makes no claim about the slots' contents.
    let out = unsafe {
        std::slice::from_raw_parts_mut(
            ctx.out.add(range.start).cast::<MaybeUninit<T>>(),
            range.len(),
        )
    };
    let (f, reporter) = (ctx.f, ctx.reporter.as_ref());
    let r = TaskError::catch(|| {
        if !std::mem::needs_drop::<T>() && reporter.is_none() {
            // Nothing to drop after a panic, and the chunk's start orders its failure
            // among the others just as well (a chunk fails at most once): a loop with
            // no counter, which the compiler can vectorise like a plain collect.
            for (slot, x) in out.iter_mut().zip(items) {
                slot.write(f(x));
            }
            return;
        }
        // Local slices and a drop guard (rather than a counter the unwinding path
        // reads) keep this loop tight while recording exactly what was written.
        let mut written = Written {
            count: 0,
            slot: &ctx.written[k],
        };
        match reporter {
            None => {
                for (slot, x) in out.iter_mut().zip(items) {
                    slot.write(f(x));
                    written.count += 1;
                }
            }
            Some(rep) => {
                for (slot, x) in out.iter_mut().zip(items) {
                    slot.write(f(x));
                    written.count += 1;
                    rep.item_done();
                }
            }
        }
    });
    if let Err(e) = r {
        ctx.fail(range.start + ctx.written[k].load(Ordering::Acquire), e);
    }
}

/// Claims and runs chunks of the [`Ctx`] behind `ctx` until none is left.
///
/// # Safety
/// `ctx` points to a live `Ctx<A, F, T>` that outlives this call.
unsafe fn run_claimed<A, F, T>(ctx: *const ())
where
    A: Sync,
    F: Fn(&A) -> T + Sync,
    T: Send,
{
    // SAFETY: the caller guarantees `ctx` is a live `Ctx<A, F, T>`.
    let c = unsafe { &*ctx.cast::<Ctx<'_, A, F, T>>() };
    loop {
        // Relaxed: the counter only hands out distinct indices; the results are
        // published to the caller by the helper task's completion.
        let k = c.next.fetch_add(1, Ordering::Relaxed);
        if k >= c.chunks {
            return;
        }
        // SAFETY: `ctx` is live, and the fetch-add gave chunk `k` to this call only.
        unsafe { run_chunk::<A, F, T>(ctx, k) };
    }
}

/// Publishes how many slots a chunk wrote, also when `f` panics part-way.
struct Written<'a> {
    count: usize,
    slot: &'a AtomicUsize,
}

impl Drop for Written<'_> {
    fn drop(&mut self) {
        self.slot.store(self.count, Ordering::Release);
    }
}

/// One helper task, with the borrowed context's type and lifetime erased so it can be
/// queued as a `'static` job.
struct Erased {
    ctx: *const (),
    run: unsafe fn(*const ()),
}

// SAFETY: `ctx` points to a `Ctx` whose shared parts are `Sync` (`A: Sync`, `F: Sync`;
// the output is written through disjoint slots of a `T: Send`), and `map_slice_with`
// does not return (or unwind) before every task holding an `Erased` has finished or
// been dropped unrun, so the pointer never outlives the context.
unsafe impl Send for Erased {}

/// Waits for every future, on drop too: the borrowed context must outlive the tasks.
struct WaitAll(Vec<Future<()>>);

impl WaitAll {
    fn finish(&self) {
        for f in &self.0 {
            // `wait_done(None)` fails only for a self-wait, which cannot apply to these
            // tasks; loop anyway rather than let the context die under a running task.
            while !f.done() {
                let _ = f.wait_done(None);
            }
        }
    }
}

impl Drop for WaitAll {
    fn drop(&mut self) {
        self.finish();
    }
}

impl ThreadPool {
    /// Applies `f` to every element of `items` on the pool and returns the results in
    /// order, blocking until all are done: a parallel map over a borrowed slice, like
    /// rayon's `par_iter().map(f).collect()`. The workers write straight into the
    /// output, so this is the form for large inputs and cheap functions; `f` and the
    /// items may borrow from the caller (`f` need not be `'static`).
    ///
    /// The slice is cut into chunks of `len / (32 × workers)` (rounded up) items, or the
    /// [`MapOptions::chunksize`] given to [`map_slice_with`](Self::map_slice_with). A
    /// panic stops its chunk, as an exception fails a chunk in Python's `Pool.map`.
    /// The calling thread takes part: it queues one helper task per worker and then
    /// claims chunks itself, as the helpers do, until none is left (so a small input
    /// is done before a worker has even woken, and a busy pool, or one that was
    /// terminated meanwhile, only means the caller does more of the work).
    ///
    /// # Errors
    /// The first failure by position: a panic of `f` (with its message and location);
    /// results already made are dropped. [`is_shutdown`](TaskError::is_shutdown) once
    /// the pool is closed.
    ///
    /// ```
    /// let pool = concur::futures::ThreadPool::new(2);
    /// let words = vec!["a".to_string(), "bb".into(), "ccc".into()];
    /// let suffix = "!"; // borrowed by the function: no 'static needed
    /// let out = pool.map_slice(|w: &String| format!("{w}{suffix}"), &words).unwrap();
    /// assert_eq!(out, ["a!", "bb!", "ccc!"]);
    /// ```
    pub fn map_slice<A, F, T>(&self, f: F, items: &[A]) -> Result<Vec<T>, TaskError>
    where
        A: Sync,
        F: Fn(&A) -> T + Sync,
        T: Send,
    {
        self.map_slice_with(f, items, MapOptions::new())
    }

    /// [`map_slice`](Self::map_slice) with a chunk size and progress hook (the timeout
    /// and read-ahead bound of [`MapOptions`] do not apply: every chunk is queued at
    /// once and waited for).
    ///
    /// # Errors
    /// As `map_slice`.
    ///
    /// ```
    /// use concur::futures::{MapOptions, ThreadPool};
    /// let pool = ThreadPool::new(2);
    /// let xs: Vec<u64> = (0..1000).collect();
    /// let out = pool.map_slice_with(|x| x * 2, &xs, MapOptions::new().chunksize(64)).unwrap();
    /// assert_eq!(out[999], 1998);
    /// let e = pool.map_slice(|x: &u64| if *x == 500 { panic!("at 500") } else { *x }, &xs);
    /// assert_eq!(e.unwrap_err().panic_message(), Some("at 500"));
    /// ```
    pub fn map_slice_with<A, F, T>(
        &self,
        f: F,
        items: &[A],
        options: MapOptions,
    ) -> Result<Vec<T>, TaskError>
    where
        A: Sync,
        F: Fn(&A) -> T + Sync,
        T: Send,
    {
        self.check_running()?;
        let n = items.len();
        // Finer than `Pool.map`'s `len / (4 × workers)`: when a worker is slowed (a
        // busy machine), the other takes over more chunks, which measured 10% faster
        // at 10 M items on 2 workers; the queueing cost of 64 chunks is negligible.
        let chunksize = options
            .get_chunksize_opt()
            .unwrap_or_else(|| n.div_ceil(32 * self.processes()).max(1));
        let chunks = n.div_ceil(chunksize);
        let mut out: Vec<T> = Vec::with_capacity(n);
        let ctx = Ctx {
            items,
            f: &f,
            out: out.as_mut_ptr(),
            chunksize,
            chunks,
            next: AtomicUsize::new(0),
            written: (0..chunks).map(|_| AtomicUsize::new(0)).collect(),
            failure: Lock::with_value(None),
            reporter: options.reporter(Some(n)),
        };
        let ctx_ptr = (&raw const ctx).cast::<()>();
        // The caller is one participant: a helper per worker beside it, never more
        // helpers than chunks left for them. It first runs one chunk alone and times
        // it: when the rest would take less than waking a worker costs, it does the
        // rest alone too.
        let mut helpers = self.processes().min(chunks.saturating_sub(1));
        if helpers > 0 {
            let begin = std::time::Instant::now();
            let k = ctx.next.fetch_add(1, Ordering::Relaxed);
            // SAFETY: `ctx` is live, and the fetch-add gave chunk `k` to this call only.
            unsafe { run_chunk::<A, F, T>(ctx_ptr, k) };
            let rest = u32::try_from(chunks - 1).unwrap_or(u32::MAX);
            if begin.elapsed().saturating_mul(rest) < ALONE_BELOW {
                helpers = 0;
            }
        }
        let mut wait = WaitAll(Vec::with_capacity(helpers));
        for _ in 0..helpers {
            let job = Erased {
                ctx: ctx_ptr,
                run: run_claimed::<A, F, T>,
            };
            let task = move || {
                let job = job;
                // SAFETY: `ctx` outlives this task (`wait` waits for it before `ctx`
                // is dropped, on every path).
                unsafe { (job.run)(job.ctx) }
            };
            match self.executor().submit(task) {
                Ok(fut) => wait.0.push(fut),
                // The caller claims what the missing helpers would have.
                Err(_) => break,
            }
        }
        // SAFETY: `ctx` is live for this call; `run_claimed` catches `f`'s panics.
        unsafe { run_claimed::<A, F, T>(ctx_ptr) };
        // Every chunk is claimed now. A helper that has not started would find nothing
        // to do: cancel it (a worker need not wake for it, and a nested call on a
        // busy pool need not wait for it); wait for those running their last chunk.
        for fut in &wait.0 {
            fut.cancel();
        }
        wait.finish();
        if let Some((_, e)) = ctx.failure.acquire().take() {
            for k in 0..chunks {
                let start = k * chunksize;
                for i in start..start + ctx.written[k].load(Ordering::Acquire) {
                    // SAFETY: slot `i` was written by chunk `k` (its written prefix),
                    // and every task has finished: nothing else touches it.
                    unsafe { ctx.out.add(i).drop_in_place() };
                }
            }
            return Err(e);
        }
        drop(ctx);
        // SAFETY: no failure, so every chunk was claimed, ran to its end and wrote all
        // of its range: all `n` slots are initialized, and every task has finished.
        unsafe { out.set_len(n) };
        Ok(out)
    }
}
