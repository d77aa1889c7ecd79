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

/// What every chunk task of one `map_slice` shares; it lives on the caller's stack.
struct Ctx<'a, A, F, T> {
    items: &'a [A],
    f: &'a F,
    /// The output buffer (capacity `items.len()`); chunk `k` writes only its range.
    out: *mut T,
    chunksize: usize,
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

/// One chunk task, with the borrowed context's type and lifetime erased so it can be
/// queued as a `'static` job.
struct Erased {
    ctx: *const (),
    run: unsafe fn(*const (), usize),
    k: usize,
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
    ///
    /// # Errors
    /// The first failure by position: a panic of `f` (with its message and location),
    /// or a chunk that never ran (the pool was terminated: cancelled); results already
    /// made are dropped. [`is_shutdown`](TaskError::is_shutdown) once the pool is closed.
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
            written: (0..chunks).map(|_| AtomicUsize::new(0)).collect(),
            failure: Lock::with_value(None),
            reporter: options.reporter(Some(n)),
        };
        let ctx_ptr = (&raw const ctx).cast::<()>();
        let mut wait = WaitAll(Vec::with_capacity(chunks));
        for k in 0..chunks {
            let job = Erased {
                ctx: ctx_ptr,
                run: run_chunk::<A, F, T>,
                k,
            };
            let task = move || {
                let job = job;
                // SAFETY: `ctx` outlives this task (`wait` waits for it before `ctx`
                // is dropped, on every path), and chunk `k` is queued once.
                unsafe { (job.run)(job.ctx, job.k) }
            };
            match self.executor().submit(task) {
                Ok(fut) => wait.0.push(fut),
                Err(e) => {
                    ctx.fail(k * chunksize, e);
                    break;
                }
            }
        }
        wait.finish();
        // A chunk whose task never ran (cancelled by `terminate`, or a broken pool)
        // wrote nothing: it fails at its first item.
        for (k, fut) in wait.0.iter().enumerate() {
            if let Err(e) | Ok(Some(e)) = fut.exception(Some(std::time::Duration::ZERO)) {
                ctx.fail(k * chunksize, e);
            }
        }
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
        // SAFETY: no failure, so every chunk ran to its end and wrote all of its range:
        // all `n` slots are initialized, and every task has finished.
        unsafe { out.set_len(n) };
        Ok(out)
    }
}
