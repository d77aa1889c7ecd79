//! The engine under both process pools: a queue of encoded tasks, worker processes, and
//! one manager thread that moves tasks to workers, results back to futures, and
//! replaces workers that die.
//!
//! Submitters encode a task (trampoline offset and argument) into a frame and push it
//! onto the shared queue; they wake the manager (an eventfd) only when it sleeps
//! waiting for work. The manager polls the eventfd and every worker's socket:
//!
//! - it hands each worker up to [`MAX_INFLIGHT`] tasks ahead (a share of the queue, so
//!   a few tasks spread over all workers), written without blocking;
//! - a worker reports each task as it ends and in order (see `wire`), so the oldest
//!   task without a report is the one it is running: its start is known to within the
//!   time of one report, which is what per-task timeouts are measured from;
//! - a worker whose socket ends has died: its running task fails with the cause (exit
//!   status, signal, out of memory, or the timeout or memory limit that made the
//!   manager kill it), the tasks it had not started go back to the front of the queue,
//!   and a new worker is started when there is work for it;
//! - workers are retired (and replaced) after `max_tasks_per_child` tasks or when their
//!   memory grew past the recycling threshold.
//!
//! Like Python's `concurrent.futures.process` (whose manager thread this follows in
//! spirit), one thread does all of this; unlike it, a dead worker does not break the
//! pool.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use concur_core::futures::TaskError;
use rustix::event::{EventfdFlags, PollFd, PollFlags};

use super::slots::SlotState;
use super::wire::{Hello, Init};
use super::worker::{Inflight, Kill, Worker};
use crate::process::StartMethod;
use crate::sys::proc as sysproc;
use crate::sys::socket;

/// Tasks handed to one worker ahead of its reports, at most.
pub(crate) const MAX_INFLIGHT: usize = 64;

/// A cancel guard: true if it took the task back before it started.
pub(crate) type CancelGuard = Box<dyn FnMut() -> bool + Send>;

/// How a task's future learns its outcome (implemented per result type).
pub(crate) trait Completion: Send {
    /// The task was handed to a worker: from now on a cancel asks `guard`. False if
    /// the future was cancelled meanwhile (the task must not run).
    fn handed(&mut self, guard: CancelGuard) -> bool;
    /// The task is back in the queue: a cancel needs to ask nobody.
    fn queued(&mut self);
    /// The task is (about to be) running in its worker.
    fn running(&mut self);
    /// Completes the future from the worker's report (body and descriptors) or error.
    fn complete(self: Box<Self>, outcome: Result<(&[u8], Vec<OwnedFd>), TaskError>);
    /// Cancels the future of a task that will not run.
    fn cancel(self: Box<Self>);
    /// Cancels the future if its task has not started (through the guard).
    fn try_cancel(&self);
}

/// An encoded task waiting for a worker.
pub(crate) struct Task {
    /// The whole frame: header, trampoline offset, argument.
    pub(crate) frame: Vec<u8>,
    pub(crate) fds: Vec<OwnedFd>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) done: Box<dyn Completion>,
}

/// The pool's settings, fixed at construction.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) max_workers: usize,
    pub(crate) method: StartMethod,
    pub(crate) name: String,
    pub(crate) init: Option<Init>,
    pub(crate) max_tasks_per_child: Option<usize>,
    pub(crate) task_timeout: Option<Duration>,
    pub(crate) memory_limit: Option<u64>,
    pub(crate) recycle_above: Option<u64>,
    pub(crate) memory_check: Duration,
}

/// What submitters and the manager share.
pub(crate) struct Shared {
    state: Mutex<State>,
    wake: OwnedFd,
    /// Signalled when the manager thread has exited.
    exited: Condvar,
    manager: Mutex<Option<(JoinHandle<()>, ThreadId)>>,
    /// Workers started so far (for statistics and tests).
    pub(crate) started_workers: AtomicU64,
    /// The pids of the live workers (kept by the manager).
    pub(crate) pids: Mutex<Vec<u32>>,
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
    /// The manager waits in `poll` and wants a wake-up for new tasks.
    sleeping: bool,
    /// `shutdown(cancel_futures)` asks the manager to cancel handed tasks too.
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
            manager: Mutex::new(None),
            started_workers: AtomicU64::new(0),
            pids: Mutex::new(Vec::new()),
        }))
    }

    fn poke(&self) {
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
    }

    /// Queues `task`, starting the manager thread on first use.
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
            return self.start_manager(cfg);
        }
        let wake = std::mem::take(&mut st.sleeping);
        drop(st);
        if wake {
            self.poke();
        }
        Ok(())
    }

    fn start_manager(self: &Arc<Self>, cfg: &Config) -> Result<(), TaskError> {
        let shared = self.clone();
        let cfg = cfg.clone();
        let r = std::thread::Builder::new()
            .name(format!("{}-manager", cfg.name))
            .spawn(move || Manager::new(shared, cfg).run());
        match r {
            Ok(h) => {
                let id = h.thread().id();
                *lock(&self.manager) = Some((h, id));
                Ok(())
            }
            Err(e) => {
                let msg = format!("could not start the pool's manager thread: {e}");
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
    /// waits for the manager to finish everything and exit.
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

    /// Kills the workers and fails every task not finished; waits for the manager.
    pub(crate) fn terminate(&self) -> Result<(), TaskError> {
        {
            let mut st = lock(&self.state);
            st.shutdown = true;
            st.terminate = true;
        }
        self.poke();
        self.wait_exit()
    }

    /// Waits for the manager thread to exit (at once if it never started).
    pub(crate) fn wait_exit(&self) -> Result<(), TaskError> {
        let handle = {
            let mut m = lock(&self.manager);
            if let Some((_, id)) = m.as_ref()
                && *id == std::thread::current().id()
            {
                return Err(TaskError::self_wait(
                    "a process pool cannot wait for its own shutdown from its manager thread \
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

/// Consecutive failed worker starts after which the pool is broken.
const MAX_FAILED_STARTS: u32 = 5;

struct Manager {
    shared: Arc<Shared>,
    cfg: Config,
    workers: Vec<Worker>,
    /// Worker starts that failed in a row (the pool breaks after a few).
    failed_starts: u32,
    next_memory_check: Option<Instant>,
}

/// What `dispatch` found.
enum Round {
    Go,
    Terminate,
    Finished,
}

impl Manager {
    fn new(shared: Arc<Shared>, cfg: Config) -> Self {
        let next_memory_check = cfg.memory_limit.map(|_| Instant::now() + cfg.memory_check);
        Manager {
            shared,
            cfg,
            workers: Vec::new(),
            failed_starts: 0,
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
                "the pool's manager thread panicked: {}",
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

    fn live(&self) -> usize {
        self.workers
            .iter()
            .filter(|w| !w.retiring && w.killed.is_none())
            .count()
    }

    /// Moves queued tasks to workers, starting workers as needed and moving tasks
    /// from busy workers to idle ones.
    fn dispatch(&mut self) -> Round {
        let shared = self.shared.clone();
        loop {
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
            // Another worker helps while there are more tasks than live workers.
            let live = self.live();
            let in_flight: usize = self.workers.iter().map(|w| w.inflight.len()).sum();
            if !st.queue.is_empty()
                && st.queue.len() + in_flight > live
                && live < self.cfg.max_workers
            {
                drop(st);
                self.start_worker();
                continue;
            }
            // Least loaded first, each taking its share of the queue.
            let mut order: Vec<usize> = (0..self.workers.len())
                .filter(|&i| self.workers[i].accepting(&self.cfg) > 0)
                .collect();
            order.sort_by_key(|&i| self.workers[i].inflight.len());
            let n = order.len().max(1);
            let share = st.queue.len().div_ceil(n).max(1);
            for &i in &order {
                let w = &mut self.workers[i];
                let mut take = w.accepting(&self.cfg).min(share);
                while take > 0 {
                    let Some(t) = st.queue.pop_front() else {
                        break;
                    };
                    if w.hand(t) {
                        take -= 1;
                    }
                }
            }
            if st.queue.is_empty() && self.rebalance(&mut st) {
                continue;
            }
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
            // The manager wants a wake-up for new tasks only if it could hand them out.
            st.sleeping = self.workers.iter().any(|w| w.accepting(&self.cfg) > 0)
                || self.live() < self.cfg.max_workers;
            return Round::Go;
        }
    }

    /// With an idle worker and another holding tasks it has not started, moves half
    /// of those to the queue. True if it moved any.
    fn rebalance(&mut self, st: &mut State) -> bool {
        let idle = self
            .workers
            .iter()
            .any(|w| w.inflight.is_empty() && w.accepting(&self.cfg) > 0);
        if !idle {
            return false;
        }
        let Some(busiest) = (0..self.workers.len())
            .filter(|&i| self.workers[i].killed.is_none())
            .max_by_key(|&i| self.workers[i].inflight.len())
        else {
            return false;
        };
        let w = &mut self.workers[busiest];
        if w.inflight.len() < 2 {
            return false;
        }
        let moved = w.take_back(w.inflight.len() / 2);
        let any = !moved.is_empty();
        for t in moved.into_iter().rev() {
            st.queue.push_front(t);
        }
        any
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

    fn start_worker(&mut self) {
        let n = self.shared.started_workers.fetch_add(1, Ordering::Relaxed) + 1;
        match Worker::start(&self.cfg, n) {
            Ok(w) => {
                lock(&self.shared.pids).push(w.pid);
                self.workers.push(w);
            }
            Err(e) => {
                let msg = format!("could not start a worker process: {e}");
                // With no worker at all, nothing would ever run: break at once.
                let fatal = self.workers.is_empty();
                self.start_failed(msg, fatal);
            }
        }
    }

    /// A worker could not be started, or died before it was ready.
    fn start_failed(&mut self, msg: String, fatal: bool) {
        self.failed_starts += 1;
        tracing::error!(pool = %self.cfg.name, error = %msg, "worker start failed");
        if fatal || self.failed_starts >= MAX_FAILED_STARTS {
            let mut st = lock(&self.shared.state);
            if st.broken.is_none() {
                st.broken = Some(msg);
            }
        }
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
            .min()
    }

    /// Reads every report worker `i` has sent; handles its death.
    fn read(&mut self, i: usize) {
        loop {
            let w = &mut self.workers[i];
            let r = w.conn.try_recv_frame_with(|body, fds| {
                if !w.ready {
                    let hello: Result<Hello, _> = postcard::from_bytes(body);
                    return Some(hello.map_err(|e| e.to_string()));
                }
                let Some(t) = Worker::reported(&mut w.inflight, &mut w.sent, &mut w.head_since)
                else {
                    return Some(Err("a report with no task".to_owned()));
                };
                match t.task {
                    // Skipped: it was cancelled (its future says so already) or moved.
                    Some(h) if body.is_empty() => h.done.complete(Err(TaskError::cancelled())),
                    Some(h) => h.done.complete(Ok((body, fds))),
                    None => {}
                }
                None
            });
            match r {
                Ok(Some(None)) => self.after_report(i),
                Ok(Some(Some(Ok(hello)))) => {
                    w.ready = true;
                    self.failed_starts = 0;
                    if let Some((msg, loc)) = hello.init_failed {
                        let at = loc.map(|l| format!(" at {l}")).unwrap_or_default();
                        let msg = format!("the initializer panicked in a worker: {msg}{at}");
                        tracing::error!(pool = %self.cfg.name, "{msg}");
                        lock(&self.shared.state).broken.get_or_insert(msg);
                    }
                }
                Ok(Some(Some(Err(e)))) => {
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

    /// Kills workers over their task's deadline or the memory limit.
    fn enforce_limits(&mut self) {
        let now = Instant::now();
        for w in &mut self.workers {
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
