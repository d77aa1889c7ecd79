//! The engine under both process pools: a queue of encoded tasks, worker processes, and
//! one dispatcher thread that moves tasks to workers, results back to futures, and
//! replaces workers that die.
//!
//! Submitters encode a task (trampoline offset and argument) into a frame and push it
//! onto the shared queue; they wake the dispatcher (an eventfd) only when it sleeps
//! waiting for work. The dispatcher polls the eventfd and every worker's socket:
//!
//! - it hands each worker up to `slots::MAX_INFLIGHT` tasks ahead (a share of the
//!   queue, so a few tasks spread over all workers), written without blocking, and
//!   takes tasks that have not started back from a busy worker for an idle one: what
//!   to do when is the dispatch policy, one pure function in `policy`;
//! - a worker reports each task as it ends and in order (see `wire`), so the oldest
//!   task without a report is the one it is running: its start is known to within the
//!   time of one report, which is what per-task timeouts are measured from;
//! - a worker whose socket ends has died: its running task fails with the cause (exit
//!   status, signal, out of memory, or the timeout or memory limit that made the
//!   dispatcher kill it), the tasks it had not started go back to the front of the
//!   queue, and a new worker is started when there is work for it;
//! - workers are retired (and replaced) after `max_tasks_per_child` tasks or when their
//!   memory grew past the recycling threshold.
//!
//! Like Python's `concurrent.futures.process` (whose executor manager thread this
//! follows in spirit), one thread does all of this; unlike it, a dead worker does not
//! break the pool.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use concur_core::futures::{Progress, TaskError};
use rustix::event::{EventfdFlags, PollFd, PollFlags};

use super::policy::{self, Decision, Limits};
use super::slots::SlotState;
use super::task::{Config, Task};
use super::wire::Hello;
use super::worker::{Inflight, Kill, Worker};
use crate::process::protocol::{PROGRESS_TAG, Report};
use crate::sys::proc as sysproc;
use crate::sys::socket;

/// What submitters and the dispatcher share.
pub(crate) struct Shared {
    state: Mutex<State>,
    wake: OwnedFd,
    /// Signalled when the dispatcher thread has exited.
    exited: Condvar,
    dispatcher: Mutex<Option<(JoinHandle<()>, ThreadId)>>,
    /// Workers started so far (for statistics and tests).
    pub(crate) started_workers: AtomicU64,
    /// The pids of the live workers (kept by the dispatcher).
    pub(crate) pids: Mutex<Vec<u32>>,
    /// Why the last worker start failed, if one ever did (kept by the dispatcher).
    pub(crate) last_start_error: Mutex<Option<String>>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Task>,
    /// No new tasks; finish the queued ones (unless cancelled) and stop.
    shutdown: bool,
    /// Stop now: kill the workers, cancel everything.
    terminate: bool,
    /// Why the pool cannot run tasks any more.
    broken: Option<String>,
    /// The dispatcher waits in `poll` and wants a wake-up for new tasks.
    sleeping: bool,
    /// `shutdown(cancel_futures)` asks the dispatcher to cancel handed tasks too.
    cancel_handed: bool,
    running: bool,
    done: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn new() -> std::io::Result<Arc<Shared>> {
        Ok(Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?,
            exited: Condvar::new(),
            dispatcher: Mutex::new(None),
            started_workers: AtomicU64::new(0),
            pids: Mutex::new(Vec::new()),
            last_start_error: Mutex::new(None),
        }))
    }

    /// Wakes the dispatcher from its `poll`.
    pub(crate) fn poke(&self) {
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
    }

    /// Queues `task`, starting the dispatcher thread on first use.
    ///
    /// # Errors
    /// Shutdown or broken pool (the task is dropped, its future untouched).
    pub(crate) fn push(self: &Arc<Self>, cfg: &Config, task: Task) -> Result<(), TaskError> {
        let mut st = lock(&self.state);
        check_open(&st)?;
        st.queue.push_back(task);
        if !st.running {
            st.running = true;
            drop(st);
            return self.start_dispatcher(cfg);
        }
        let wake = std::mem::take(&mut st.sleeping);
        drop(st);
        if wake {
            self.poke();
        }
        Ok(())
    }

    fn start_dispatcher(self: &Arc<Self>, cfg: &Config) -> Result<(), TaskError> {
        let shared = self.clone();
        let cfg = cfg.clone();
        let r = std::thread::Builder::new()
            .name(format!("{}-dispatcher", cfg.name))
            .spawn(move || Dispatcher::new(shared, cfg).run());
        match r {
            Ok(h) => {
                let id = h.thread().id();
                *lock(&self.dispatcher) = Some((h, id));
                Ok(())
            }
            Err(e) => {
                let msg = format!("could not start the pool's dispatcher thread: {e}");
                let mut st = lock(&self.state);
                st.broken = Some(msg.clone());
                st.done = true;
                let tasks: Vec<Task> = st.queue.drain(..).collect();
                drop(st);
                for t in tasks {
                    t.done
                        .complete(Err(TaskError::broken_executor(msg.clone())));
                }
                Err(TaskError::broken_executor(msg))
            }
        }
    }

    /// Stops accepting tasks; with `cancel`, cancels the queued ones; with `wait`,
    /// waits for the dispatcher to finish everything and exit.
    pub(crate) fn shutdown(&self, wait: bool, cancel: bool) -> Result<(), TaskError> {
        let cancelled: Vec<Task> = {
            let mut st = lock(&self.state);
            st.shutdown = true;
            if cancel {
                st.cancel_handed = true;
                st.queue.drain(..).collect()
            } else {
                Vec::new()
            }
        };
        for t in cancelled {
            t.done.cancel();
        }
        self.poke();
        if wait { self.wait_exit() } else { Ok(()) }
    }

    /// Kills the workers and fails every task not finished; waits for the dispatcher.
    pub(crate) fn terminate(&self) -> Result<(), TaskError> {
        {
            let mut st = lock(&self.state);
            st.shutdown = true;
            st.terminate = true;
        }
        self.poke();
        self.wait_exit()
    }

    /// Waits for the dispatcher thread to exit (at once if it never started).
    pub(crate) fn wait_exit(&self) -> Result<(), TaskError> {
        let handle = {
            let mut m = lock(&self.dispatcher);
            if let Some((_, id)) = m.as_ref()
                && *id == std::thread::current().id()
            {
                return Err(TaskError::self_wait(
                    "a process pool cannot wait for its own shutdown from its dispatcher thread \
                     (in a done-callback of one of its futures)",
                ));
            }
            m.take()
        };
        match handle {
            Some((h, _)) => {
                let _ = h.join();
                let mut st = lock(&self.state);
                st.done = true;
                drop(st);
                self.exited.notify_all();
            }
            None => {
                // Not started, or another caller is joining it: wait for `done`.
                let mut st = lock(&self.state);
                while st.running && !st.done {
                    st = self.exited.wait(st).unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
        Ok(())
    }

    /// The error a submit gets now, if any.
    pub(crate) fn closed_error(&self) -> Option<TaskError> {
        check_open(&lock(&self.state)).err()
    }
}

fn check_open(st: &State) -> Result<(), TaskError> {
    if let Some(b) = &st.broken {
        return Err(TaskError::broken_executor(b.clone()));
    }
    if st.shutdown {
        return Err(TaskError::shutdown());
    }
    Ok(())
}

/// Consecutive failed worker starts after which a pool with no ready worker is broken.
const MAX_FAILED_STARTS: u32 = 5;

/// The first wait before starting a worker again after a failed start; it doubles with
/// each failure in a row, up to [`MAX_START_BACKOFF`].
const START_BACKOFF: Duration = Duration::from_millis(20);

/// The longest wait between two attempts to start a missing worker.
const MAX_START_BACKOFF: Duration = Duration::from_secs(2);

struct Dispatcher {
    shared: Arc<Shared>,
    cfg: Config,
    workers: Vec<Worker>,
    /// Worker starts that failed in a row (a pool with no ready worker breaks after a
    /// few).
    failed_starts: u32,
    /// After a failed start, no new worker is started before this instant (while the
    /// pool has workers to serve on): the pool degrades to the workers it has and
    /// retries with backoff instead of breaking.
    retry_start_at: Option<Instant>,
    next_memory_check: Option<Instant>,
}

/// What `dispatch` found.
enum Round {
    Go,
    Terminate,
    Finished,
}

impl Dispatcher {
    fn new(shared: Arc<Shared>, cfg: Config) -> Self {
        let next_memory_check = cfg.memory_limit.map(|_| Instant::now() + cfg.memory_check);
        Dispatcher {
            shared,
            cfg,
            workers: Vec::new(),
            failed_starts: 0,
            retry_start_at: None,
            next_memory_check,
        }
    }

    fn run(mut self) {
        let crashed =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| while !self.step() {}));
        if let Err(p) = crashed {
            // A bug here must not leave futures pending forever: break the pool, fail
            // everything, kill the workers.
            let msg = format!(
                "the pool's dispatcher thread panicked: {}",
                p.downcast_ref::<&str>()
                    .copied()
                    .or(p.downcast_ref::<String>().map(String::as_str))
                    .unwrap_or("Box<dyn Any>")
            );
            tracing::error!(pool = %self.cfg.name, "{msg}");
            lock(&self.shared.state).broken.get_or_insert(msg.clone());
            self.fail_everything(&TaskError::broken_executor(msg));
        }
        // Every worker has exited or been killed; reap them all.
        for w in self.workers.drain(..) {
            w.bury();
        }
        lock(&self.shared.pids).clear();
        let mut st = lock(&self.shared.state);
        st.done = true;
        drop(st);
        self.shared.exited.notify_all();
    }

    /// One round: dispatch, write, wait, read, enforce limits. True when finished.
    fn step(&mut self) -> bool {
        match self.dispatch() {
            Round::Terminate => {
                self.fail_everything(&TaskError::cancelled());
                return true;
            }
            Round::Finished => return true,
            Round::Go => {}
        }
        for w in &mut self.workers {
            w.flush();
        }
        self.wait();
        for i in (0..self.workers.len()).rev() {
            self.read(i);
        }
        self.enforce_limits();
        false
    }

    /// Moves queued tasks to workers, starting workers as needed and moving tasks
    /// from busy workers to idle ones, as the dispatch policy (`policy::decide`) says.
    fn dispatch(&mut self) -> Round {
        let shared = self.shared.clone();
        let mut st = lock(&shared.state);
        if st.terminate {
            return Round::Terminate;
        }
        if let Some(msg) = st.broken.clone() {
            let tasks: Vec<Task> = st.queue.drain(..).collect();
            drop(st);
            let e = TaskError::broken_executor(msg);
            for t in tasks {
                t.done.complete(Err(e.clone()));
            }
            self.fail_in_flight(&e);
            return self.retire_all();
        }
        if std::mem::take(&mut st.cancel_handed) {
            // `shutdown(cancel_futures)`: the handed tasks not started are pending
            // too; their cancel guard takes them back.
            for w in &self.workers {
                for t in w.inflight.iter().skip(1) {
                    if let Some(h) = &t.task {
                        h.done.try_cancel();
                    }
                }
            }
        }
        let limits = Limits {
            max_workers: self.worker_cap(),
            max_tasks_per_child: self.cfg.max_tasks_per_child,
        };
        loop {
            let loads: Vec<_> = self.workers.iter().map(Worker::load).collect();
            match policy::decide(st.queue.len(), &loads, &limits) {
                Decision::StartWorker => {
                    drop(st);
                    let started = self.start_worker();
                    st = lock(&shared.state);
                    if st.broken.is_some() || st.terminate {
                        // The start broke the pool (or it is being terminated): the
                        // checks at the top settle that.
                        drop(st);
                        return self.dispatch();
                    }
                    if !started {
                        // Serve on the workers there are; the next attempt waits for
                        // the backoff (`worker_cap` says no more until then).
                        drop(st);
                        return self.dispatch();
                    }
                }
                Decision::Hand(plan) => {
                    for (i, n) in plan {
                        self.hand_out(i, n, &mut st.queue);
                    }
                }
                Decision::TakeBack { worker, count } => {
                    let back = self.workers[worker].take_back(count);
                    if back.is_empty() {
                        // They had started after all: nothing to move this round.
                        break;
                    }
                    for t in back.into_iter().rev() {
                        st.queue.push_front(t);
                    }
                }
                Decision::Settled => break,
            }
        }
        // Workers whose budget of tasks is spent retire (after this round: their
        // replacements start at the next one).
        if let Some(m) = self.cfg.max_tasks_per_child {
            for w in &mut self.workers {
                if w.given >= m as u64 {
                    w.retiring = true;
                }
            }
        }
        if st.shutdown && st.queue.is_empty() {
            drop(st);
            return self.retire_all();
        }
        // The dispatcher wants a wake-up for new tasks only if it could act on them.
        let loads: Vec<_> = self.workers.iter().map(Worker::load).collect();
        st.sleeping = policy::wants_new_tasks(&loads, &limits);
        Round::Go
    }

    /// Hands worker `i` up to `n` tasks from the front of the queue (fewer if the
    /// queue runs out; cancelled ones are dropped on the way).
    fn hand_out(&mut self, i: usize, n: usize, queue: &mut VecDeque<Task>) {
        let w = &mut self.workers[i];
        let mut handed = 0;
        while handed < n {
            let Some(t) = queue.pop_front() else {
                break;
            };
            if w.hand(t) {
                handed += 1;
            }
        }
    }

    fn retire_all(&mut self) -> Round {
        for w in &mut self.workers {
            w.retiring = true;
        }
        if self.workers.is_empty() {
            Round::Finished
        } else {
            Round::Go
        }
    }

    /// How many workers the policy may ask for now: `max_workers`, or just the workers
    /// there are while a failed start's backoff runs (unless there are none: then the
    /// next start is tried at once, and its failure breaks the pool).
    fn worker_cap(&mut self) -> usize {
        match self.retry_start_at {
            Some(at) if Instant::now() < at && !self.workers.is_empty() => {
                // The open workers (as `policy` counts them): never one more.
                let open = self
                    .workers
                    .iter()
                    .filter(|w| !w.retiring && w.killed.is_none())
                    .count();
                open.min(self.cfg.max_workers)
            }
            Some(_) => {
                self.retry_start_at = None;
                self.cfg.max_workers
            }
            None => self.cfg.max_workers,
        }
    }

    /// Starts one worker; false if it could not be started.
    fn start_worker(&mut self) -> bool {
        let n = self.shared.started_workers.fetch_add(1, Ordering::Relaxed) + 1;
        match Worker::start(&self.cfg, n) {
            Ok(w) => {
                lock(&self.shared.pids).push(w.pid);
                self.workers.push(w);
                true
            }
            Err(e) => {
                let msg = format!("could not start a worker process: {e}");
                // With no worker at all, nothing would ever run: break at once.
                let fatal = self.workers.is_empty();
                self.start_failed(msg, fatal);
                false
            }
        }
    }

    /// A worker could not be started, or died before it was ready. With workers to
    /// serve on, the pool goes on with them and tries again after a backoff (the
    /// `StartWorker` decisions wait for it); with none ready, it breaks at once
    /// (`fatal`) or after a few failures in a row, and every task fails with `msg`.
    fn start_failed(&mut self, msg: String, fatal: bool) {
        self.failed_starts += 1;
        *lock(&self.shared.last_start_error) = Some(msg.clone());
        let any_ready = self.workers.iter().any(|w| w.ready && w.killed.is_none());
        if fatal || (!any_ready && self.failed_starts >= MAX_FAILED_STARTS) {
            tracing::error!(pool = %self.cfg.name, error = %msg, "worker start failed; the pool has no worker and is broken");
            let mut st = lock(&self.shared.state);
            if st.broken.is_none() {
                st.broken = Some(msg);
            }
            return;
        }
        let shift = self.failed_starts.saturating_sub(1).min(16);
        let backoff = START_BACKOFF
            .saturating_mul(1 << shift)
            .min(MAX_START_BACKOFF);
        self.retry_start_at = Some(Instant::now() + backoff);
        tracing::warn!(
            pool = %self.cfg.name,
            error = %msg,
            workers = self.workers.len(),
            retry_in_ms = backoff.as_millis() as u64,
            "worker start failed; serving on the workers the pool has and retrying"
        );
    }

    /// Polls the eventfd and the workers until something happens or a deadline passes.
    fn wait(&mut self) {
        let deadline = self.next_deadline();
        let mut fds = Vec::with_capacity(1 + self.workers.len());
        fds.push(PollFd::new(&self.shared.wake, PollFlags::IN));
        for w in &self.workers {
            let mut ev = PollFlags::IN;
            if w.wants_write() {
                ev |= PollFlags::OUT;
            }
            fds.push(PollFd::new(&w.conn, ev));
        }
        let _ = socket::poll_until(&mut fds, deadline);
        let woke = fds[0].revents().contains(PollFlags::IN);
        drop(fds);
        if woke {
            let mut buf = [0u8; 8];
            let _ = rustix::io::read(&self.shared.wake, &mut buf);
        }
        lock(&self.shared.state).sleeping = false;
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.workers
            .iter()
            .filter_map(Worker::head_deadline)
            .chain(self.next_memory_check)
            .chain(self.retry_start_at)
            .min()
    }

    /// Reads every report worker `i` has sent; handles its death.
    fn read(&mut self, i: usize) {
        /// What one frame from a worker was.
        enum Frame {
            Hello(Hello),
            Report,
            Progress,
            Broken(String),
        }
        loop {
            let w = &mut self.workers[i];
            let r = w.conn.try_recv_frame_with(|body, fds| {
                if !w.ready {
                    return match postcard::from_bytes::<Hello>(body) {
                        Ok(h) => Frame::Hello(h),
                        Err(e) => Frame::Broken(e.to_string()),
                    };
                }
                if body.first() == Some(&PROGRESS_TAG) {
                    // Progress of the running task (the oldest in flight), not its
                    // report.
                    if let Ok(Report::<()>::Progress { done, total }) = postcard::from_bytes(body)
                        && let Some(h) = w.inflight.front().and_then(|t| t.task.as_ref())
                    {
                        h.done.progress(Progress {
                            done: usize::try_from(done).unwrap_or(usize::MAX),
                            total: total.and_then(|t| usize::try_from(t).ok()),
                        });
                    }
                    return Frame::Progress;
                }
                let Some(t) = Worker::reported(&mut w.inflight, &mut w.sent, &mut w.head_since)
                else {
                    return Frame::Broken("a report with no task".to_owned());
                };
                match t.task {
                    // Skipped: it was cancelled (its future says so already) or moved.
                    Some(h) if body.is_empty() => h.done.complete(Err(TaskError::cancelled())),
                    Some(h) => h.done.complete(Ok((body, fds))),
                    None => {}
                }
                Frame::Report
            });
            match r {
                Ok(Some(Frame::Report)) => self.after_report(i),
                Ok(Some(Frame::Progress)) => {}
                Ok(Some(Frame::Hello(hello))) => {
                    w.ready = true;
                    self.failed_starts = 0;
                    if let Some((msg, loc)) = hello.init_failed {
                        let at = loc.map(|l| format!(" at {l}")).unwrap_or_default();
                        let msg = format!("the initializer panicked in a worker: {msg}{at}");
                        tracing::error!(pool = %self.cfg.name, "{msg}");
                        lock(&self.shared.state).broken.get_or_insert(msg);
                    }
                }
                Ok(Some(Frame::Broken(e))) => {
                    tracing::error!(pool = %self.cfg.name, error = %e, "a worker broke the protocol");
                    w.kill(Kill::Terminate);
                    self.died(i);
                    return;
                }
                Ok(None) => return,
                Err(_) => {
                    self.died(i);
                    return;
                }
            }
        }
    }

    /// After a report from worker `i`: recycle it if its memory grew too much.
    fn after_report(&mut self, i: usize) {
        let w = &mut self.workers[i];
        if let Some(limit) = self.cfg.recycle_above
            && !w.retiring
            && sysproc::resident_bytes(w.pid).is_some_and(|rss| rss > limit)
        {
            tracing::debug!(pool = %self.cfg.name, pid = w.pid, "recycling a worker above its memory threshold");
            // No new tasks; those not started go to the others.
            w.retiring = true;
            let back = w.take_back(usize::MAX);
            let mut st = lock(&self.shared.state);
            for t in back.into_iter().rev() {
                st.queue.push_front(t);
            }
        }
    }

    /// Worker `i`'s stream ended: find out why, settle its tasks, drop it.
    fn died(&mut self, i: usize) {
        let mut w = self.workers.swap_remove(i);
        lock(&self.shared.pids).retain(|&p| p != w.pid);
        let code = w.bury();
        if !w.ready && w.killed.is_none() {
            let msg = format!(
                "a worker died before it was ready (exit status {})",
                code.map_or_else(|| "unknown".to_owned(), |c| c.to_string())
            );
            self.start_failed(msg, false);
        }
        let broken = lock(&self.shared.state).broken.clone();
        let pool_broken = broken.is_some();
        let error = match broken {
            // The pool broke (its initializer failed): nothing more runs anywhere.
            Some(msg) => TaskError::broken_executor(msg),
            None => w.death_error(code),
        };
        // Its words say which task had started (it fails) and which had not (they go
        // to other workers, unless the pool is broken).
        let mut requeue = Vec::new();
        for t in w.inflight.drain(..) {
            let state = w.slots.state(t.seq);
            match t.task {
                None => {} // taken back for another worker already
                Some(h) if pool_broken || state == SlotState::Started => {
                    h.done.complete(Err(error.clone()));
                }
                // Cancelled by its future (through the guard): already done.
                Some(h) if state == SlotState::Revoked => h.done.try_cancel(),
                Some(h) => requeue.extend(
                    Inflight {
                        seq: t.seq,
                        frame: t.frame,
                        task: Some(h),
                    }
                    .into_task(),
                ),
            }
        }
        if !requeue.is_empty() {
            let mut st = lock(&self.shared.state);
            for t in requeue.into_iter().rev() {
                st.queue.push_front(t);
            }
        }
    }

    /// Kills workers over their task's deadline or the memory limit, and those whose
    /// running task was aborted.
    fn enforce_limits(&mut self) {
        let now = Instant::now();
        for w in &mut self.workers {
            if w.killed.is_none() && w.abort_head() {
                tracing::debug!(pool = %self.cfg.name, pid = w.pid, "a running task was aborted; its worker was killed");
                continue;
            }
            if let Some(d) = w.head_deadline()
                && d <= now
                && let Some(t) = w.inflight.front().and_then(|t| t.task.as_ref()?.timeout)
            {
                if !w.head_started() {
                    // Its worker has not taken it yet (an initializer still runs): the
                    // clock starts again.
                    w.head_since = Some(now);
                    continue;
                }
                tracing::warn!(pool = %self.cfg.name, pid = w.pid, "a task overran its time limit; killing its worker");
                w.kill(Kill::Timeout(t));
            }
        }
        if let (Some(limit), Some(at)) = (self.cfg.memory_limit, self.next_memory_check)
            && at <= now
        {
            for w in &mut self.workers {
                if w.killed.is_none()
                    && sysproc::resident_bytes(w.pid).is_some_and(|rss| rss > limit)
                {
                    tracing::warn!(pool = %self.cfg.name, pid = w.pid, "a worker exceeded the memory limit; killing it");
                    w.kill(Kill::MemoryLimit(limit));
                }
            }
            self.next_memory_check = Some(now + self.cfg.memory_check);
        }
    }

    /// Fails every task handed to a worker with `e`, killing the workers that hold
    /// any (so that none completes later).
    fn fail_in_flight(&mut self, e: &TaskError) {
        for w in &mut self.workers {
            if !w.inflight.is_empty() {
                w.kill(Kill::Terminate);
            }
            for t in w.inflight.drain(..) {
                if let Some(h) = t.task {
                    h.done.complete(Err(e.clone()));
                }
            }
            w.sent = 0;
            w.partial = 0;
        }
    }

    /// Terminate: cancels the queue, fails what is in flight with `e`, kills every
    /// worker.
    fn fail_everything(&mut self, e: &TaskError) {
        let tasks: Vec<Task> = lock(&self.shared.state).queue.drain(..).collect();
        for t in tasks {
            t.done.cancel();
        }
        self.fail_in_flight(e);
        for w in &mut self.workers {
            w.kill(Kill::Terminate);
        }
    }
}
