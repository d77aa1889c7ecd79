//! [`Worker`]: takes a pool's tasks from Redis and runs them on a local process (or
//! thread) pool.
//!
//! A worker is four threads around one table of the entries it holds:
//!
//! - the *dispatcher* (the thread that called [`Worker::run`]) reads entries for the
//!   free slots (`XREADGROUP`, never more than slots + prefetch held at once), checks
//!   each (readable, same build, known task, not cancelled, not past its deadline)
//!   and starts it on the local executor; every half second it also takes back the
//!   entries of workers whose lease lapsed (`XAUTOCLAIM`) and retries them (a new
//!   entry, one more attempt, after a backoff) or dead-letters them;
//! - the *heartbeat* renews the lease of every held entry well within the pool's lease
//!   (a script that resets the idle time of the entries this worker still owns and
//!   names the ones it lost: those are stopped here, their results will be dropped),
//!   refreshes the liveness key, and stops tasks past their deadline;
//! - the *canceller* listens on the pool's cancel channel and stops the named tasks;
//! - the *completer* sends outcomes (pipelined scripts that acknowledge the entry and
//!   send the result only if this is the entry's first settlement).

mod cancel;
mod complete;
mod lease;
mod local;

pub use local::LocalExecutor;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::Value;

use crate::conn::{self, Backoff, Conn, lock};
use crate::envelope::{BadEntry, Envelope, Fields, Outcome};
use crate::error::ClusterError;
use crate::executor::{DEFAULT_MAX_PAYLOAD, now_ms, random_hex, stream_entries};
use crate::keys::{GROUP, Keys};
use crate::scripts::Scripts;
use crate::task::{self, Run};
use local::{Abort, Init, Local};

/// The pool's lease when nobody set one.
pub(crate) const DEFAULT_LEASE: Duration = Duration::from_secs(10);
/// How often a worker looks for entries of lost workers.
const RECLAIM_EVERY: Duration = Duration::from_millis(500);
/// How long one XREADGROUP blocks.
const READ_BLOCK: Duration = Duration::from_millis(200);
/// Tasks shorter than this (on average) are prefetched.
const SHORT_TASK: Duration = Duration::from_millis(10);
/// The least time between two progress reports of one task sent to its caller.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// Configures a [`Worker`].
///
/// ```no_run
/// use concur::cluster::{LocalExecutor, Worker};
/// use std::time::Duration;
///
/// let w = Worker::builder("redis://10.0.0.5:6379/0", "render")
///     .slots(8)
///     .local(LocalExecutor::Processes)
///     .prefetch(16)
///     .drain_timeout(Duration::from_secs(60))
///     .connect()
///     .unwrap();
/// w.run().unwrap();
/// ```
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `connect`"]
pub struct WorkerBuilder {
    url: String,
    pool: String,
    slots: usize,
    local: LocalExecutor,
    prefetch: Option<usize>,
    lease: Option<Duration>,
    max_payload: usize,
    connect_timeout: Duration,
    drain_timeout: Duration,
    handle_sigterm: bool,
    fingerprint: Option<String>,
    init: Option<Init>,
    root_cert: Option<Vec<u8>>,
}

impl WorkerBuilder {
    fn new(url: &str, pool: &str) -> Self {
        WorkerBuilder {
            url: url.to_owned(),
            pool: pool.to_owned(),
            slots: std::thread::available_parallelism().map_or(1, |n| n.get()),
            local: LocalExecutor::default(),
            prefetch: None,
            lease: None,
            max_payload: DEFAULT_MAX_PAYLOAD,
            connect_timeout: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(30),
            handle_sigterm: true,
            fingerprint: None,
            init: None,
            root_cert: None,
        }
    }

    /// For a `rediss://` URL: trusts this CA certificate (PEM) instead of the system's
    /// roots. Feature `tls`.
    #[cfg(feature = "tls")]
    pub fn tls_root_cert(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_cert = Some(pem.into());
        self
    }

    /// Runs `f(args)` in each process of the local pool (or each thread) before its
    /// first task: Python's `initializer`/`initargs`, or Celery's
    /// `worker_process_init`. `f` captures nothing. If it panics, the worker's local
    /// executor is broken and every task this worker takes fails with
    /// [`is_broken_executor`](concur_core::futures::TaskError::is_broken_executor), as
    /// a broken pool's do (fail fast: the cause is in the error, not hidden in a log).
    pub fn initializer<F, A>(mut self, f: F, args: A) -> Self
    where
        F: Fn(A) + Copy + Send + Sync + 'static,
        A: serde::Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
    {
        self.init = Some(Init::new(f, args));
        self
    }

    /// Tasks run at once on this worker (at least 1; one per CPU by default).
    pub fn slots(mut self, n: usize) -> Self {
        self.slots = n.max(1);
        self
    }

    /// Where tasks run: a process pool (the default) or a thread pool.
    pub fn local(mut self, local: LocalExecutor) -> Self {
        self.local = local;
        self
    }

    /// Entries held beyond the slots, ready to start when a slot frees (default:
    /// `max(16, 2 × slots)`), while tasks are short (under 10 ms on average; none
    /// before the first task ends): that keeps tiny tasks flowing, and longer tasks
    /// spread over the workers (an entry held here would wait behind another while a
    /// peer is idle). Held entries are leased like running ones.
    pub fn prefetch(mut self, n: usize) -> Self {
        self.prefetch = Some(n);
        self
    }

    /// Sets the pool's lease (see [`RedisExecutorBuilder::lease`](crate::RedisExecutorBuilder::lease)).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = Some(lease.max(Duration::from_secs(1)));
        self
    }

    /// The largest argument accepted (8 MiB by default): a larger entry is
    /// dead-lettered as [`is_bad_entry`](concur_core::futures::TaskError::is_bad_entry).
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// How long to wait for a connection to Redis (5 s by default).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// On stop (SIGTERM or [`StopHandle::stop`]), how long to let running tasks finish
    /// before they are stopped and handed back to the pool (30 s by default).
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Whether SIGTERM drains the worker (true by default): it stops taking tasks,
    /// hands back those not started, lets the running ones finish (up to the drain
    /// timeout), and `run` returns.
    pub fn handle_sigterm(mut self, on: bool) -> Self {
        self.handle_sigterm = on;
        self
    }

    /// Runs tasks submitted with fingerprint `fingerprint` instead of this binary's
    /// own (see [`RedisExecutorBuilder::fingerprint`](crate::RedisExecutorBuilder::fingerprint)).
    pub fn fingerprint(mut self, fingerprint: impl Into<String>) -> Self {
        self.fingerprint = Some(fingerprint.into());
        self
    }

    /// Connects, makes the pool's consumer group if it is missing, and starts the
    /// local executor. Takes no task until [`Worker::run`].
    ///
    /// # Errors
    /// As [`RedisExecutorBuilder::connect`](crate::RedisExecutorBuilder::connect).
    pub fn connect(self) -> Result<Worker, ClusterError> {
        let keys = Keys::new(&self.pool)?;
        let client = conn::client_with(&self.url, self.root_cert.as_deref())?;
        let mut con = Conn::new(client.clone(), self.connect_timeout);
        con.call(|c| redis::cmd("PING").query::<()>(c))?;
        ensure_group(&mut con, &keys)?;
        let scripts = Scripts::new();
        con.call(|c| scripts.load(c))?;
        let lease = match self.lease {
            Some(l) => {
                con.call(|c| {
                    redis::cmd("HSET")
                        .arg(keys.config())
                        .arg("lease_ms")
                        .arg(l.as_millis() as u64)
                        .query::<()>(c)
                })?;
                l
            }
            None => pool_lease(&mut con, &keys)?,
        };
        let host = hostname();
        let consumer = format!("{host}:{}:{}", std::process::id(), &random_hex()[..8]);
        let stop = Arc::new(AtomicBool::new(false));
        if self.handle_sigterm {
            signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())
                .map_err(|e| ClusterError::local(format!("cannot handle SIGTERM: {e}")))?;
        }
        let (tx, rx) = mpsc::channel();
        let slots = self.slots;
        let shared = Arc::new(Shared {
            local: Local::new(
                self.local,
                slots,
                &format!("concur-worker-{}", self.pool),
                self.init.as_ref(),
            ),
            fingerprint: self
                .fingerprint
                .clone()
                .unwrap_or_else(|| task::fingerprint().to_owned()),
            prefetch: self.prefetch.unwrap_or((2 * slots).max(16)),
            task_us: AtomicU64::new(u64::MAX),
            cfg: self,
            keys,
            consumer,
            host,
            scripts,
            client,
            table: Mutex::new(Table::default()),
            room: Condvar::new(),
            stop,
            halt: AtomicBool::new(false),
            listening: AtomicBool::new(false),
            done: Mutex::new(tx),
            lease_ms: AtomicU64::new(lease.as_millis() as u64),
            stats: Stats::default(),
            late_lost: AtomicU64::new(0),
            started: now_ms(),
        });
        Ok(Worker {
            shared,
            con,
            done_rx: Some(rx),
        })
    }
}

/// Makes the pool's consumer group (reading the stream from its start) if missing.
pub(crate) fn ensure_group(con: &mut Conn, keys: &Keys) -> Result<(), ClusterError> {
    match con.call(|c| {
        redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(keys.tasks())
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query::<()>(c)
    }) {
        Err(e) if e.code() != Some("BUSYGROUP") => Err(e.into()),
        _ => Ok(()),
    }
}

/// The pool's lease as kept in Redis (or the default).
fn pool_lease(con: &mut Conn, keys: &Keys) -> Result<Duration, ClusterError> {
    let ms: Option<u64> = con.call(|c| {
        redis::cmd("HGET")
            .arg(keys.config())
            .arg("lease_ms")
            .query(c)
    })?;
    Ok(ms.map_or(DEFAULT_LEASE, |ms| Duration::from_millis(ms.max(1000))))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty() && !s.contains(':'))
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Counters of what a worker did, since it started.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct WorkerStats {
    /// Entries taken from the stream (retries of lost workers' entries included).
    pub taken: u64,
    /// Tasks that returned a value.
    pub completed: u64,
    /// Tasks that panicked, whose worker process died, or whose argument did not
    /// decode.
    pub failed: u64,
    /// Tasks cancelled (before or while running).
    pub cancelled: u64,
    /// Tasks whose deadline passed (before or while running).
    pub deadline_exceeded: u64,
    /// Tasks refused for another build's fingerprint.
    pub mismatched: u64,
    /// Malformed entries dead-lettered.
    pub bad_entries: u64,
    /// Entries of lost workers retried by this one.
    pub retried: u64,
    /// Entries of lost workers dead-lettered by this one (out of attempts).
    pub dead_lettered: u64,
    /// Entries this worker lost its lease on (stopped here, taken over elsewhere).
    pub leases_lost: u64,
    /// Completions dropped because the entry had been settled elsewhere first.
    pub late: u64,
    /// Entries handed back to the pool unfinished (on stop, or when the local executor
    /// could not run them).
    pub handed_back: u64,
}

#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) taken: AtomicU64,
    pub(crate) completed: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    pub(crate) deadline: AtomicU64,
    pub(crate) mismatched: AtomicU64,
    pub(crate) bad: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) dead: AtomicU64,
    pub(crate) lost: AtomicU64,
    pub(crate) late: AtomicU64,
    pub(crate) handed_back: AtomicU64,
    /// The values of the mirrored counters last sent to the pool's stats hash.
    flushed: Mutex<[u64; 5]>,
}

/// The counters mirrored into the pool's stats hash, by their names there.
const MIRRORED: [&str; 5] = ["completed", "failed", "cancelled", "deadline", "mismatch"];

impl Stats {
    fn mirrored(&self) -> [&AtomicU64; 5] {
        [
            &self.completed,
            &self.failed,
            &self.cancelled,
            &self.deadline,
            &self.mismatched,
        ]
    }

    /// What the pool's stats hash has not been told yet (and `late`, from elsewhere),
    /// marked as told.
    pub(crate) fn unflushed(&self, late: u64) -> Vec<(&'static str, u64)> {
        let mut told = lock(&self.flushed);
        let mut out: Vec<(&'static str, u64)> = MIRRORED
            .iter()
            .zip(self.mirrored())
            .zip(told.iter_mut())
            .map(|((name, now), told)| {
                let now = now.load(Ordering::Relaxed);
                let d = now.saturating_sub(*told);
                *told = now;
                (*name, d)
            })
            .collect();
        out.push(("late", late));
        out
    }

    /// Undoes [`unflushed`](Self::unflushed) after a failed send.
    pub(crate) fn unflush(&self, deltas: &[(&'static str, u64)]) {
        let mut told = lock(&self.flushed);
        for (i, name) in MIRRORED.iter().enumerate() {
            if let Some((_, d)) = deltas.iter().find(|(n, _)| n == name) {
                told[i] -= d;
            }
        }
    }

    fn snapshot(&self) -> WorkerStats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        WorkerStats {
            taken: g(&self.taken),
            completed: g(&self.completed),
            failed: g(&self.failed),
            cancelled: g(&self.cancelled),
            deadline_exceeded: g(&self.deadline),
            mismatched: g(&self.mismatched),
            bad_entries: g(&self.bad),
            retried: g(&self.retried),
            dead_lettered: g(&self.dead),
            leases_lost: g(&self.lost),
            late: g(&self.late),
            handed_back: g(&self.handed_back),
        }
    }
}

/// An entry this worker holds.
pub(crate) struct Held {
    pub(crate) env: Envelope,
    /// Not started before this Unix time in ms (a retry's backoff); 0 once started.
    pub(crate) not_before: u64,
    pub(crate) running: bool,
    /// When it was started on the local executor.
    pub(crate) started_at: Option<Instant>,
    pub(crate) abort: Option<Abort>,
    /// Its future on the local executor, once started there.
    pub(crate) local: Option<concur_core::futures::Future<Option<Run>>>,
    pub(crate) deadline: Option<Instant>,
    /// An outcome was decided here (cancelled, deadline): the task's own result, when
    /// it comes, is dropped.
    pub(crate) settled: bool,
    /// Its lease went to another worker: kept only until the local task ends, whose
    /// result is then dropped as late.
    pub(crate) lost: bool,
}

impl Held {
    /// Stops the task if it runs (a process pool kills its process).
    pub(crate) fn stop(&mut self) {
        if self.take_back() {
            return;
        }
        if let Some(a) = self.abort.take() {
            a();
        }
    }

    /// Takes the task back from the local executor if it has not started there: true
    /// if it never will (it can be handed back to the pool).
    pub(crate) fn take_back(&self) -> bool {
        self.local.as_ref().is_some_and(|f| f.cancel())
    }
}

#[derive(Default)]
pub(crate) struct Table {
    /// By stream entry id.
    pub(crate) held: HashMap<String, Held>,
    /// Task id → stream entry id.
    pub(crate) by_task: HashMap<String, String>,
    /// Cancels heard for tasks not held here (yet), with when.
    pub(crate) recent_cancels: HashMap<String, Instant>,
}

impl Table {
    pub(crate) fn remove(&mut self, entry: &str) -> Option<Held> {
        let h = self.held.remove(entry)?;
        self.by_task.remove(&h.env.id);
        Some(h)
    }
}

/// What the completer is asked to do with an entry.
pub(crate) enum Done {
    /// Send this outcome (if the entry is still held), raising `stat`.
    Complete { entry: String, outcome: Outcome },
    /// The task's own result (dropped if an outcome was already decided).
    Ran {
        entry: String,
        result: Result<Option<Run>, concur_core::futures::TaskError>,
    },
    /// Put the entry back in the stream as it is (same attempt).
    HandBack { entry: String },
    /// Tell the caller the running task's progress.
    Progress {
        entry: String,
        progress: concur_core::futures::Progress,
    },
    /// Dead-letter a malformed entry (its fields as read).
    Bad {
        entry: String,
        fields: Vec<(String, Vec<u8>)>,
        bad: BadEntry,
    },
}

pub(crate) struct Shared {
    pub(crate) cfg: WorkerBuilder,
    pub(crate) keys: Keys,
    pub(crate) consumer: String,
    pub(crate) host: String,
    pub(crate) fingerprint: String,
    /// Entries held beyond the slots while tasks are short (see `capacity`).
    pub(crate) prefetch: usize,
    /// A moving average of how long a task takes here, in µs (`u64::MAX`: none ran).
    pub(crate) task_us: AtomicU64,
    pub(crate) scripts: Scripts,
    pub(crate) client: redis::Client,
    pub(crate) local: Local,
    pub(crate) table: Mutex<Table>,
    /// Signalled when an entry leaves the table.
    pub(crate) room: Condvar,
    /// Stop taking tasks and drain (SIGTERM, `StopHandle`).
    pub(crate) stop: Arc<AtomicBool>,
    /// The helper threads end.
    pub(crate) halt: AtomicBool,
    /// The canceller is subscribed and has taken the cancel requests already waiting.
    pub(crate) listening: AtomicBool,
    pub(crate) done: Mutex<mpsc::Sender<Done>>,
    pub(crate) lease_ms: AtomicU64,
    pub(crate) stats: Stats,
    /// Late results of lost leases not yet added to the pool's `late` counter.
    pub(crate) late_lost: AtomicU64,
    pub(crate) started: u64,
}

impl Shared {
    pub(crate) fn send(&self, d: Done) {
        let _ = lock(&self.done).send(d);
    }

    /// Starts the held entries whose backoff is over, oldest first, on the local
    /// executor, which runs `slots` at a time and queues the rest (at most the
    /// prefetch): a queued one can still be taken back from it (on stop, on cancel) and
    /// handed back to the pool.
    pub(crate) fn start_due(self: &Arc<Self>) {
        if self.stop.load(Ordering::SeqCst) {
            return;
        }
        let now = now_ms();
        let due: Vec<String> = {
            let t = lock(&self.table);
            let mut waiting: Vec<(u64, u64, &String)> = t
                .held
                .iter()
                .filter(|(_, h)| !h.running && !h.settled && h.not_before <= now)
                .map(|(e, _)| {
                    let (ms, seq) = e.split_once('-').unwrap_or((e, "0"));
                    (ms.parse().unwrap_or(u64::MAX), seq.parse().unwrap_or(0), e)
                })
                .collect();
            if waiting.is_empty() {
                return;
            }
            waiting.sort_unstable();
            waiting.into_iter().map(|(_, _, e)| e.clone()).collect()
        };
        for e in due {
            self.start(&e);
        }
    }

    /// Starts held entry `entry` on the local executor.
    fn start(self: &Arc<Self>, entry: &str) {
        let s = self;
        let (key, args, timeout) = {
            let mut t = lock(&s.table);
            let Some(h) = t.held.get_mut(entry) else {
                return;
            };
            if h.running || h.settled {
                return;
            }
            h.running = true;
            h.started_at = Some(Instant::now());
            h.not_before = 0;
            (
                h.env.table_key(),
                h.env.args.clone(),
                h.deadline
                    .map(|d| d.saturating_duration_since(Instant::now())),
            )
        };
        let _span = tracing::debug_span!("start", entry).entered();
        tracing::debug!("on the local executor");
        match s.local.start(key, args, timeout) {
            Ok(started) => {
                {
                    let mut t = lock(&s.table);
                    match t.held.get_mut(entry) {
                        Some(h) if !h.settled => {
                            h.abort = started.abort;
                            h.local = Some(started.future.clone());
                        }
                        // Settled (cancelled) meanwhile: stop it now.
                        _ => {
                            if !started.future.cancel()
                                && let Some(a) = started.abort
                            {
                                a();
                            }
                        }
                    }
                }
                // Progress the task reports goes to its caller, at most every 100 ms.
                let ptx = Mutex::new((lock(&s.done).clone(), None::<Instant>));
                let pentry = entry.to_owned();
                started.future.add_progress_callback(move |p| {
                    let mut g = lock(&ptx);
                    let now = Instant::now();
                    if g.1.is_some_and(|t| now.duration_since(t) < PROGRESS_EVERY) {
                        return;
                    }
                    g.1 = Some(now);
                    let _ = g.0.send(Done::Progress {
                        entry: pentry.clone(),
                        progress: p,
                    });
                });
                let tx = lock(&s.done).clone();
                let entry = entry.to_owned();
                started.future.add_done_callback(move |f| {
                    let _ = tx.send(Done::Ran {
                        entry,
                        result: f.result(),
                    });
                });
            }
            Err(e) if e.is_broken_executor() => {
                let attempt = lock(&s.table).held.get(entry).map_or(1, |h| h.env.attempt);
                s.send(Done::Complete {
                    entry: entry.to_owned(),
                    outcome: Outcome::from_local_error(&e, attempt),
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, entry, "concur worker: the local executor refused a task; handing it back");
                s.send(Done::HandBack {
                    entry: entry.to_owned(),
                });
            }
        }
    }

    /// How many entries to hold: the slots, plus the prefetch while tasks are short
    /// (under [`SHORT_TASK`]): then reading one by one would cost more than the tasks,
    /// while for longer tasks an entry held here waits behind another when a peer may
    /// be idle. Before any task ran, no prefetch.
    pub(crate) fn capacity(&self) -> usize {
        let short = self.task_us.load(Ordering::Relaxed) < SHORT_TASK.as_micros() as u64;
        self.cfg.slots + if short { self.prefetch } else { 0 }
    }

    /// A task ran for `took`: into the moving average (weight 1/8).
    pub(crate) fn ran_for(&self, took: Duration) {
        let us = took.as_micros().min(u128::from(u64::MAX / 2)) as u64;
        let old = self.task_us.load(Ordering::Relaxed);
        let new = if old == u64::MAX {
            us
        } else {
            old - old / 8 + us / 8
        };
        self.task_us.store(new, Ordering::Relaxed);
    }

    pub(crate) fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms.load(Ordering::Relaxed))
    }

    pub(crate) fn conn(&self) -> Conn {
        Conn::new(self.client.clone(), self.cfg.connect_timeout)
    }

    /// Sleeps up to `d`, in steps, returning early (false) once the threads halt.
    pub(crate) fn nap(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        while !self.halt.load(Ordering::SeqCst) {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
        false
    }
}

/// The fields of an entry as read, sorted (kept as evidence in a dead letter).
pub(crate) fn raw_fields(fields: &Fields) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = fields
        .keys()
        .filter_map(|k| crate::envelope::field(fields, k).map(|b| (k.clone(), b.to_vec())))
        .collect();
    v.sort();
    v
}

/// Stops a running [`Worker`] from any thread: it drains as on SIGTERM.
#[derive(Clone, Debug)]
pub struct StopHandle(Arc<AtomicBool>);

impl StopHandle {
    /// Asks the worker to stop taking tasks, finish (or hand back) what it holds, and
    /// return from [`Worker::run`].
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Takes tasks of one pool from Redis and runs them on a local process pool: the
/// worker side of [`RedisExecutor`](crate::RedisExecutor). Run it from your own
/// binary (the same build as the submitting program: tasks name their functions, and a
/// worker only runs functions compiled into it):
///
/// ```no_run
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     if std::env::args().nth(1).as_deref() == Some("worker") {
///         concur::cluster::Worker::connect("redis://10.0.0.5:6379/0", "render")?.run()?;
///         return Ok(());
///     }
///     // ... the program itself, submitting to RedisExecutor::connect(url, "render")
///     Ok(())
/// }
/// ```
pub struct Worker {
    shared: Arc<Shared>,
    con: Conn,
    done_rx: Option<mpsc::Receiver<Done>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("pool", &self.shared.cfg.pool)
            .field("consumer", &self.shared.consumer)
            .field("slots", &self.shared.cfg.slots)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// Connects to the Redis at `url` as a worker of pool `pool`, with the defaults of
    /// [`WorkerBuilder`] (one slot per CPU, a process pool).
    ///
    /// # Errors
    /// As [`WorkerBuilder::connect`].
    pub fn connect(url: &str, pool: &str) -> Result<Worker, ClusterError> {
        Self::builder(url, pool).connect()
    }

    /// A builder for the other settings.
    pub fn builder(url: &str, pool: &str) -> WorkerBuilder {
        WorkerBuilder::new(url, pool)
    }

    /// This worker's consumer name in the pool's group (`host:pid:random`, unique to
    /// this incarnation).
    pub fn consumer(&self) -> &str {
        &self.shared.consumer
    }

    /// A handle that stops [`run`](Self::run) from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(self.shared.stop.clone())
    }

    /// What the worker did so far.
    pub fn stats(&self) -> WorkerStats {
        self.shared.stats.snapshot()
    }

    /// A handle to read [`stats`](Self::stats) while `run` runs.
    pub fn stats_handle(&self) -> StatsHandle {
        StatsHandle(self.shared.clone())
    }

    /// Takes and runs tasks until stopped (SIGTERM or [`StopHandle::stop`]), then
    /// drains: entries not started are handed back, running tasks get the drain
    /// timeout to finish, and what is left is stopped and handed back. A Redis that
    /// goes away is waited for (reconnecting with backoff), never a reason to return.
    ///
    /// # Errors
    /// [`ClusterError::is_local`] if a helper thread cannot be started.
    pub fn run(mut self) -> Result<WorkerStats, ClusterError> {
        let s = self.shared.clone();
        tracing::info!(pool = %s.cfg.pool, consumer = %s.consumer, slots = s.cfg.slots, "concur worker: start");
        let rx = self.done_rx.take().expect("run is called once");
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(format!("concur-worker-{name}"))
                .spawn(f)
                .map_err(|e| ClusterError::local(format!("cannot start a thread: {e}")))
        };
        let threads = vec![
            spawn(
                "heartbeat",
                Box::new({
                    let s = s.clone();
                    move || lease::heartbeat(&s)
                }),
            )?,
            spawn(
                "cancel",
                Box::new({
                    let s = s.clone();
                    move || cancel::listen(&s)
                }),
            )?,
            spawn(
                "complete",
                Box::new({
                    let s = s.clone();
                    move || complete::run(&s, rx)
                }),
            )?,
        ];
        // Read nothing before the canceller listens (a cancel sent before this worker
        // started must not be missed); bounded, in case Redis is away.
        let end = Instant::now() + Duration::from_secs(5);
        while !s.listening.load(Ordering::SeqCst) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(2));
        }
        self.con.set_read_timeout(READ_BLOCK + conn::IO_TIMEOUT);
        let mut backoff = Backoff::default();
        let mut reclaimed = Instant::now();
        let mut cursor = "0-0".to_owned();
        while !s.stop.load(Ordering::SeqCst) {
            s.start_due();
            let free = s.capacity().saturating_sub(lock(&s.table).held.len());
            if free == 0 {
                let t = lock(&s.table);
                let _ = s.room.wait_timeout(t, READ_BLOCK);
            } else {
                match self.read(free) {
                    Ok(()) => backoff.reset(),
                    Err(e) => {
                        tracing::warn!(error = %e, "concur worker: reading tasks failed, retrying");
                        std::thread::sleep(backoff.step());
                    }
                }
            }
            if reclaimed.elapsed() >= RECLAIM_EVERY {
                reclaimed = Instant::now();
                if let Err(e) = lease::reclaim(&s, &mut self.con, &mut cursor) {
                    tracing::warn!(error = %e, "concur worker: reclaiming failed");
                }
                if let Err(e) = lease::trim(&s, &mut self.con) {
                    tracing::warn!(error = %e, "concur worker: trimming the task stream failed");
                }
            }
        }
        self.drain();
        s.halt.store(true, Ordering::SeqCst);
        for t in threads {
            let _ = t.join();
        }
        self.farewell();
        s.local.shutdown(false);
        tracing::info!(pool = %s.cfg.pool, consumer = %s.consumer, "concur worker: stopped");
        Ok(s.stats.snapshot())
    }

    /// Reads up to `n` entries and dispatches them.
    fn read(&mut self, n: usize) -> redis::RedisResult<()> {
        let s = &self.shared;
        let r = self.con.call(|c| {
            redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(GROUP)
                .arg(&s.consumer)
                .arg("COUNT")
                .arg(n)
                .arg("BLOCK")
                .arg(READ_BLOCK.as_millis() as u64)
                .arg("STREAMS")
                .arg(s.keys.tasks())
                .arg(">")
                .query::<Value>(c)
        });
        let v = match r {
            Err(e) if conn::is_nogroup(&e) => {
                ensure_group(&mut self.con, &s.keys).map_err(|_| e)?;
                return Ok(());
            }
            r => r?,
        };
        let entries = stream_entries(v);
        if entries.is_empty() {
            return Ok(());
        }
        s.stats
            .taken
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        let mut good = Vec::with_capacity(entries.len());
        for (entry, mut fields) in entries {
            match Envelope::decode(&mut fields, s.cfg.max_payload) {
                Ok(env) => good.push((entry, env)),
                Err(bad) => s.send(Done::Bad {
                    entry,
                    fields: raw_fields(&fields),
                    bad,
                }),
            }
        }
        for (entry, env) in good {
            self.dispatch(entry, env);
        }
        Ok(())
    }

    /// Checks one entry and starts it (or settles it at once). A cancel requested for
    /// it is known from the canceller (which heard it on the channel, or found its key
    /// when it subscribed).
    fn dispatch(&mut self, entry: String, env: Envelope) {
        let s = self.shared.clone();
        let now = now_ms();
        let verdict = if env.fingerprint != s.fingerprint {
            Some(Outcome::mismatch(
                format!(
                    "the worker {} runs build {}, the task was submitted by build {}; \
                     it was not run (run workers from the same build as the caller)",
                    s.consumer, s.fingerprint, env.fingerprint
                ),
                env.attempt,
            ))
        } else if task::lookup(&env.table_key()).is_none() {
            let bad = BadEntry {
                id: Some(env.id.clone()),
                reply: Some(env.reply.clone()),
                reason: format!("this build has no task {:?}", env.table_key()),
            };
            let fields = crate::worker::complete::owned(env.fields());
            s.send(Done::Bad { entry, fields, bad });
            return;
        } else if env.deadline_ms != 0 && env.deadline_ms <= now {
            Some(Outcome::deadline(
                "the task's deadline passed before a worker could start it",
                env.attempt,
            ))
        } else {
            None
        };
        let deadline = (env.deadline_ms != 0)
            .then(|| Instant::now() + Duration::from_millis(env.deadline_ms.saturating_sub(now)));
        let id = env.id.clone();
        let not_before = env.not_before_ms;
        tracing::debug_span!("claim", task = %id, entry = %entry)
            .in_scope(|| tracing::debug!(attempt = env.attempt, name = %env.name, "taken"));
        {
            let mut t = lock(&s.table);
            let cancelled = t.recent_cancels.remove(&id).is_some();
            let verdict = verdict.or_else(|| cancelled.then(|| Outcome::cancelled(env.attempt)));
            t.by_task.insert(id, entry.clone());
            t.held.insert(
                entry.clone(),
                Held {
                    env,
                    not_before,
                    running: false,
                    abort: None,
                    local: None,
                    started_at: None,
                    deadline,
                    settled: verdict.is_some(),
                    lost: false,
                },
            );
            if let Some(outcome) = verdict {
                drop(t);
                s.send(Done::Complete { entry, outcome });
                return;
            }
        }
        if not_before <= now {
            s.start_due();
        }
    }

    /// Stops taking work: hands back what has not started, lets the rest finish up to
    /// the drain timeout, then stops and hands back what is left.
    fn drain(&mut self) {
        let s = self.shared.clone();
        tracing::info!(consumer = %s.consumer, "concur worker: draining");
        // Not started, here or on the local executor: back to the pool at once.
        let waiting: Vec<String> = lock(&s.table)
            .held
            .iter_mut()
            .filter(|(_, h)| !h.settled && (!h.running || h.take_back()))
            .map(|(e, h)| {
                h.settled = true;
                e.clone()
            })
            .collect();
        for entry in waiting {
            s.send(Done::HandBack { entry });
        }
        let end = Instant::now() + s.cfg.drain_timeout;
        let mut t = lock(&s.table);
        while !t.held.is_empty() && Instant::now() < end {
            t = s
                .room
                .wait_timeout(t, Duration::from_millis(50))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        let left: Vec<String> = t.held.keys().cloned().collect();
        for e in &left {
            if let Some(h) = t.held.get_mut(e) {
                h.settled = true;
                h.stop();
            }
        }
        drop(t);
        for entry in left {
            s.send(Done::HandBack { entry });
        }
        // Let the completer send the hand-backs.
        let end = Instant::now() + Duration::from_secs(10);
        let mut t = lock(&s.table);
        while !t.held.is_empty() && Instant::now() < end {
            t = s
                .room
                .wait_timeout(t, Duration::from_millis(50))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Leaves the pool: its last counters sent, liveness key and consumer removed.
    fn farewell(&mut self) {
        let s = &self.shared;
        let mut pipe = redis::pipe();
        for (name, n) in s.stats.unflushed(s.late_lost.swap(0, Ordering::Relaxed)) {
            if n > 0 {
                pipe.cmd("HINCRBY")
                    .arg(s.keys.stats())
                    .arg(name)
                    .arg(n)
                    .ignore();
            }
        }
        let _ = self.con.call(|c| {
            pipe.cmd("DEL")
                .arg(s.keys.worker(&s.consumer))
                .ignore()
                .cmd("SREM")
                .arg(s.keys.workers())
                .arg(&s.consumer)
                .ignore()
                .cmd("XGROUP")
                .arg("DELCONSUMER")
                .arg(s.keys.tasks())
                .arg(GROUP)
                .arg(&s.consumer)
                .ignore()
                .query::<()>(c)
        });
    }
}

/// Reads a running worker's [`WorkerStats`] from another thread.
#[derive(Clone)]
pub struct StatsHandle(Arc<Shared>);

impl std::fmt::Debug for StatsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("StatsHandle")
            .field(&self.0.consumer)
            .finish()
    }
}

impl StatsHandle {
    /// The worker's counters now.
    pub fn stats(&self) -> WorkerStats {
        self.0.stats.snapshot()
    }

    /// Tasks the worker holds now (running, or waiting for a slot or a backoff).
    pub fn held(&self) -> usize {
        lock(&self.0.table).held.len()
    }
}
