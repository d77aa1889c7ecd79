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
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use concur_core::futures::TaskError;
use rustix::event::{EventfdFlags, PollFd, PollFlags};
use rustix::io::IoSlice;

use super::wire::{self, Hello, Init, WorkerArgs};
use crate::connection::Connection;
use crate::process::{Process, StartMethod};
use crate::sys::proc as sysproc;
use crate::sys::socket;

/// Tasks handed to one worker ahead of its reports, at most.
pub(crate) const MAX_INFLIGHT: usize = 64;

/// Tasks that take less than this on average (nanoseconds) are handed to a worker
/// [`MAX_INFLIGHT`] ahead; slower ones two at a time.
const SHORT_TASK_NS: u64 = 200_000;

/// The largest frame between the manager and a worker (they trust each other).
const MAX_FRAME: usize = u32::MAX as usize;

/// How a task's future learns its outcome (implemented per result type).
pub(crate) trait Completion: Send {
    /// Marks the task running; false if its future was cancelled (then it is dropped).
    fn start(&mut self) -> bool;
    /// Completes the future from the worker's report (body and descriptors) or error.
    fn complete(self: Box<Self>, outcome: Result<(&[u8], Vec<OwnedFd>), TaskError>);
    /// Cancels the future of a task that never started.
    fn cancel(self: Box<Self>);
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

/// A task handed to a worker.
struct Inflight {
    frame: Vec<u8>,
    fds: Vec<OwnedFd>,
    timeout: Option<Duration>,
    done: Box<dyn Completion>,
}

/// Why the manager killed a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kill {
    Timeout(Duration),
    MemoryLimit(u64),
    Terminate,
}

struct Worker {
    process: Process<()>,
    conn: Connection,
    pid: u32,
    ready: bool,
    /// Handed over, without a report yet; `inflight[..sent]` are fully written.
    inflight: VecDeque<Inflight>,
    sent: usize,
    /// Bytes of `inflight[sent]` already written.
    partial: usize,
    /// Tasks handed to this worker in its life.
    given: usize,
    /// When the running task (the front of `inflight`) started, roughly.
    head_since: Option<Instant>,
    killed: Option<Kill>,
    /// No more tasks: it exits once its last report is in.
    retiring: bool,
    /// The exit frame has been queued (written once everything before it is).
    exit_written: bool,
    oom_base: Option<u64>,
    /// Average time between a task's start and its report, once known.
    avg_task_ns: Option<u64>,
}

impl Worker {
    fn accepting(&self, cfg: &Config) -> usize {
        if self.retiring || self.killed.is_some() {
            return 0;
        }
        let budget = cfg
            .max_tasks_per_child
            .map_or(usize::MAX, |m| m.saturating_sub(self.given));
        self.depth().saturating_sub(self.inflight.len()).min(budget)
    }

    /// How many tasks this worker is handed ahead: deep for tiny tasks (the pipeline
    /// hides the round trips), shallow for slow ones (one running, one waiting, as in
    /// Python's call queue), so that slow tasks spread over the workers and stay
    /// cancellable until a worker is about to take them. Until its first report a
    /// worker counts as slow.
    fn depth(&self) -> usize {
        match self.avg_task_ns {
            Some(ns) if ns < SHORT_TASK_NS => MAX_INFLIGHT,
            _ => 2,
        }
    }

    fn wants_write(&self) -> bool {
        // A killed worker is written to no more (its end of stream is what we wait for).
        self.killed.is_none()
            && (self.sent < self.inflight.len()
                || (self.retiring && self.inflight.is_empty() && !self.exit_written))
    }
}

struct Manager {
    shared: Arc<Shared>,
    cfg: Config,
    workers: Vec<Worker>,
    /// Worker starts that failed in a row (the pool breaks after a few).
    failed_starts: u32,
    next_memory_check: Option<Instant>,
}

/// Consecutive failed worker starts after which the pool is broken.
const MAX_FAILED_STARTS: u32 = 5;

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
            let tasks: Vec<Task> = lock(&self.shared.state).queue.drain(..).collect();
            for t in tasks {
                t.done
                    .complete(Err(TaskError::broken_executor(msg.clone())));
            }
            self.fail_all_inflight(&TaskError::broken_executor(msg));
            for w in &self.workers {
                let _ = w.process.kill();
            }
        }
        // Every worker has exited or been killed; reap them all.
        for w in self.workers.drain(..) {
            reap(w);
        }
        lock(&self.shared.pids).clear();
        let mut st = lock(&self.shared.state);
        st.done = true;
        drop(st);
        self.shared.exited.notify_all();
    }

    /// One round: dispatch, write, wait, read, enforce limits. True when finished.
    fn step(&mut self) -> bool {
        let (terminate, finished) = self.dispatch();
        if terminate {
            self.terminate_all();
            return true;
        }
        if finished {
            return true;
        }
        for i in 0..self.workers.len() {
            self.flush(i);
        }
        self.wait();
        for i in (0..self.workers.len()).rev() {
            self.read(i);
        }
        self.enforce_limits();
        false
    }

    /// Moves queued tasks to workers, starting workers as needed. Returns (terminate,
    /// finished).
    fn dispatch(&mut self) -> (bool, bool) {
        loop {
            let mut st = lock(&self.shared.state);
            if st.terminate {
                return (true, false);
            }
            if st.broken.is_some() {
                let tasks: Vec<Task> = st.queue.drain(..).collect();
                let msg = st.broken.clone().unwrap_or_default();
                drop(st);
                for t in tasks {
                    t.done
                        .complete(Err(TaskError::broken_executor(msg.clone())));
                }
                self.fail_all_inflight(&TaskError::broken_executor(msg));
                self.retire_all();
                return (false, self.workers.is_empty());
            }
            let accepting: Vec<usize> = (0..self.workers.len())
                .filter(|&i| self.workers[i].accepting(&self.cfg) > 0)
                .collect();
            let live = self
                .workers
                .iter()
                .filter(|w| !w.retiring && w.killed.is_none())
                .count();
            // Another worker helps while there are more tasks than live workers.
            let tasks =
                st.queue.len() + self.workers.iter().map(|w| w.inflight.len()).sum::<usize>();
            if !st.queue.is_empty() && tasks > live && live < self.cfg.max_workers {
                drop(st);
                self.start_worker();
                continue;
            }
            let n = accepting.len().max(1);
            for &i in &accepting {
                if st.queue.is_empty() {
                    break;
                }
                let w = &mut self.workers[i];
                let share = st.queue.len().div_ceil(n).max(1);
                let take = w.accepting(&self.cfg).min(share);
                for _ in 0..take {
                    let Some(mut t) = st.queue.pop_front() else {
                        break;
                    };
                    if !t.done.start() {
                        continue; // cancelled while queued
                    }
                    if w.inflight.is_empty() {
                        w.head_since = Some(Instant::now());
                    }
                    w.given += 1;
                    w.inflight.push_back(Inflight {
                        frame: t.frame,
                        fds: t.fds,
                        timeout: t.timeout.or(self.cfg.task_timeout),
                        done: t.done,
                    });
                }
            }
            let finished = st.shutdown && st.queue.is_empty();
            if finished {
                drop(st);
                self.retire_all();
                return (false, self.workers.is_empty());
            }
            // Retire workers that used up their task budget.
            for w in &mut self.workers {
                if let Some(m) = self.cfg.max_tasks_per_child
                    && w.given >= m
                {
                    w.retiring = true;
                }
            }
            // Sleep wants a wake-up for new tasks only if some worker could take one.
            st.sleeping = self.workers.iter().any(|w| w.accepting(&self.cfg) > 0)
                || self.live() < self.cfg.max_workers;
            return (false, false);
        }
    }

    fn live(&self) -> usize {
        self.workers
            .iter()
            .filter(|w| !w.retiring && w.killed.is_none())
            .count()
    }

    fn retire_all(&mut self) {
        for w in &mut self.workers {
            w.retiring = true;
        }
    }

    fn start_worker(&mut self) {
        let n = self.shared.started_workers.fetch_add(1, Ordering::Relaxed) + 1;
        let started = (|| {
            let (mine, theirs) = crate::Pipe::duplex().map_err(|e| e.to_string())?;
            mine.set_max_frame(MAX_FRAME);
            theirs.set_max_frame(MAX_FRAME);
            let args = WorkerArgs {
                conn: theirs,
                init: self.cfg.init.clone(),
            };
            let process = Process::builder()
                .name(format!("{}-{n}", self.cfg.name))
                .daemon(true)
                .start_method(self.cfg.method)
                .spawn(wire::worker_main, args)
                .map_err(|e| e.to_string())?;
            let pid = process.pid().unwrap_or(0);
            Ok::<_, String>((process, mine, pid))
        })();
        match started {
            Ok((process, conn, pid)) => {
                lock(&self.shared.pids).push(pid);
                self.workers.push(Worker {
                    process,
                    conn,
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
                    avg_task_ns: None,
                });
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

    /// Writes what worker `i` has pending, without blocking.
    fn flush(&mut self, i: usize) {
        let w = &mut self.workers[i];
        if w.killed.is_some() {
            return;
        }
        while w.sent < w.inflight.len() {
            let first = &w.inflight[w.sent];
            let r = if !first.fds.is_empty() {
                // A frame with descriptors goes alone, with them on its first byte.
                let fds: Vec<BorrowedFd<'_>> = if w.partial == 0 {
                    first.fds.iter().map(|f| f.as_fd()).collect()
                } else {
                    Vec::new()
                };
                socket::send_some(
                    w.conn.as_fd(),
                    &[IoSlice::new(&first.frame[w.partial..])],
                    &fds,
                )
            } else {
                let mut iov = Vec::with_capacity(16);
                iov.push(IoSlice::new(&first.frame[w.partial..]));
                for t in w.inflight.iter().skip(w.sent + 1).take(15) {
                    if !t.fds.is_empty() {
                        break;
                    }
                    iov.push(IoSlice::new(&t.frame));
                }
                socket::send_some(w.conn.as_fd(), &iov, &[])
            };
            match r {
                Ok(Some(mut n)) => {
                    while n > 0 && w.sent < w.inflight.len() {
                        let left = w.inflight[w.sent].frame.len() - w.partial;
                        if n >= left {
                            n -= left;
                            w.sent += 1;
                            w.partial = 0;
                        } else {
                            w.partial += n;
                            n = 0;
                        }
                    }
                }
                Ok(None) => return,
                // The worker is gone: its end of stream will be read shortly.
                Err(_) => return,
            }
        }
        if w.retiring && w.inflight.is_empty() && !w.exit_written {
            // The exit message: an empty frame.
            let h = crate::connection::frame_header(0, 0);
            if let Ok(Some(n)) = socket::send_some(w.conn.as_fd(), &[IoSlice::new(&h)], &[]) {
                debug_assert_eq!(n, h.len());
                w.exit_written = true;
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
        let mut d = self.next_memory_check;
        for w in &self.workers {
            if let (Some(t), Some(since)) =
                (w.inflight.front().and_then(|t| t.timeout), w.head_since)
                && w.sent > 0
                && w.killed.is_none()
            {
                let dl = since.checked_add(t);
                d = match (d, dl) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        d
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
                let Some(t) = w.inflight.pop_front() else {
                    return Some(Err("a report with no task".to_owned()));
                };
                w.sent = w.sent.saturating_sub(1);
                t.done.complete(Ok((body, fds)));
                let now = Instant::now();
                if let Some(since) = w.head_since {
                    let ns = now.saturating_duration_since(since).as_nanos();
                    let ns = u64::try_from(ns).unwrap_or(u64::MAX);
                    w.avg_task_ns = Some(w.avg_task_ns.map_or(ns, |a| a - a / 8 + ns / 8));
                }
                w.head_since = (!w.inflight.is_empty()).then_some(now);
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
                        let mut st = lock(&self.shared.state);
                        if st.broken.is_none() {
                            st.broken = Some(msg);
                        }
                    }
                }
                Ok(Some(Some(Err(e)))) => {
                    tracing::error!(pool = %self.cfg.name, error = %e, "a worker broke the protocol");
                    let _ = w.process.kill();
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
            // Tasks already written to it still run there; no new ones are given.
            w.retiring = true;
        }
    }

    /// Worker `i`'s stream ended: find out why, settle its tasks, drop it.
    fn died(&mut self, i: usize) {
        let w = self.workers.swap_remove(i);
        lock(&self.shared.pids).retain(|&p| p != w.pid);
        let clean = w.retiring && w.inflight.is_empty();
        let Worker {
            process,
            mut inflight,
            killed,
            oom_base,
            ready,
            sent,
            ..
        } = w;
        let _ = process.join_timeout(Duration::from_secs(2));
        if process.exitcode().is_none() {
            let _ = process.kill();
            let _ = process.join_timeout(Duration::from_secs(2));
        }
        let code = process.exitcode();
        drop(process);
        if clean {
            return;
        }
        if !ready && killed.is_none() {
            let msg = format!(
                "a worker died before it was ready (exit status {})",
                code.map_or_else(|| "unknown".to_owned(), |c| c.to_string())
            );
            self.start_failed(msg, false);
        }
        let broken = lock(&self.shared.state).broken.clone();
        if let Some(msg) = broken {
            // The pool broke (its initializer failed): nothing more runs anywhere.
            let e = TaskError::broken_executor(msg);
            for t in inflight.drain(..) {
                t.done.complete(Err(e.clone()));
            }
            return;
        }
        let error = match killed {
            Some(Kill::Timeout(t)) => TaskError::timeout(format!(
                "the task ran longer than its time limit of {t:?}: its worker was killed"
            )),
            Some(Kill::MemoryLimit(limit)) => TaskError::out_of_memory(
                Some(9),
                format!("the worker used more than the pool's memory limit of {limit} bytes"),
            ),
            Some(Kill::Terminate) => TaskError::cancelled(),
            None => cause_of(code, oom_base),
        };
        // The running task fails; the ones never written or not started are requeued.
        let running = if ready && sent > 0 {
            inflight.pop_front()
        } else {
            None
        };
        if let Some(t) = running {
            t.done.complete(Err(error));
        }
        if !inflight.is_empty() {
            let mut st = lock(&self.shared.state);
            for t in inflight.drain(..).rev() {
                st.queue.push_front(Task {
                    frame: t.frame,
                    fds: t.fds,
                    timeout: t.timeout,
                    done: Box::new(Restarted(Some(t.done))),
                });
            }
        }
    }

    /// Kills workers over their task's deadline or the memory limit.
    fn enforce_limits(&mut self) {
        let now = Instant::now();
        for w in &mut self.workers {
            if w.killed.is_some() || w.sent == 0 {
                continue;
            }
            if let (Some(t), Some(since)) =
                (w.inflight.front().and_then(|t| t.timeout), w.head_since)
                && since.checked_add(t).is_some_and(|d| d <= now)
            {
                tracing::warn!(pool = %self.cfg.name, pid = w.pid, "a task overran its time limit; killing its worker");
                w.killed = Some(Kill::Timeout(t));
                let _ = w.process.kill();
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
                    w.killed = Some(Kill::MemoryLimit(limit));
                    let _ = w.process.kill();
                }
            }
            self.next_memory_check = Some(now + self.cfg.memory_check);
        }
    }

    fn fail_all_inflight(&mut self, e: &TaskError) {
        for w in &mut self.workers {
            // Written tasks may be running: kill the worker so none completes later.
            if !w.inflight.is_empty() {
                w.killed.get_or_insert(Kill::Terminate);
                let _ = w.process.kill();
            }
            for t in w.inflight.drain(..) {
                t.done.complete(Err(e.clone()));
            }
            w.sent = 0;
            w.partial = 0;
        }
    }

    fn terminate_all(&mut self) {
        let tasks: Vec<Task> = lock(&self.shared.state).queue.drain(..).collect();
        for t in tasks {
            t.done.cancel();
        }
        for w in &mut self.workers {
            w.killed = Some(Kill::Terminate);
            let _ = w.process.kill();
            for t in w.inflight.drain(..) {
                t.done.complete(Err(TaskError::cancelled()));
            }
        }
    }
}

/// Reaps a worker: waits briefly for it to exit, kills it if it does not.
fn reap(w: Worker) {
    if w.process.join_timeout(Duration::from_secs(2)).is_err() && w.process.exitcode().is_none() {
        let _ = w.process.kill();
        let _ = w.process.join_timeout(Duration::from_secs(2));
    }
}

/// The error of a task whose worker exited with `code` (None: unknown) on its own.
fn cause_of(code: Option<i32>, oom_base: Option<u64>) -> TaskError {
    match code {
        Some(c) if c < 0 => {
            let sig = -c;
            if sig == 9
                && let (Some(before), Some(now)) = (oom_base, sysproc::oom_kills())
                && now > before
            {
                return TaskError::out_of_memory(Some(9), "killed by the kernel's OOM killer");
            }
            TaskError::worker_died(None, Some(sig))
        }
        Some(c) => TaskError::worker_died(Some(c), None),
        None => TaskError::worker_died(None, None),
    }
}

/// A requeued task's completion: it is already marked running, so `start` is true.
struct Restarted(Option<Box<dyn Completion>>);

impl Completion for Restarted {
    fn start(&mut self) -> bool {
        true
    }

    fn complete(mut self: Box<Self>, outcome: Result<(&[u8], Vec<OwnedFd>), TaskError>) {
        if let Some(d) = self.0.take() {
            d.complete(outcome);
        }
    }

    fn cancel(mut self: Box<Self>) {
        // It was running when its worker died: it ends as cancelled, not pending.
        if let Some(d) = self.0.take() {
            d.complete(Err(TaskError::cancelled()));
        }
    }
}
