//! [`RedisExecutor`]: the [`Executor`] trait and [`Future`]s of the thread and process
//! pools, with the tasks run by workers anywhere, through one Redis.
//!
//! The caller's side is two threads and a table:
//!
//! - `submit` registers the task's function (see `task`), encodes the argument, puts a
//!   [`Promise`] in the table of tasks in flight under a fresh task id, and queues the
//!   entry; it blocks only while the in-flight bound is reached;
//! - the *writer* thread sends queued entries (pipelined `XADD`s) and cancel requests,
//!   retrying with backoff while Redis is unreachable, so nothing queued is lost;
//! - the *reader* thread reads this caller's result stream (`XREAD BLOCK`), completes
//!   each task's promise from its result (the first result of a task wins; a later one
//!   finds no entry in the table and is dropped), trims what it read, and fails the
//!   tasks whose deadline passed with no result.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use concur_core::futures::exec::{Call, Chunk, ChunkProgress, MapChunk, Runs};
use concur_core::futures::{
    Executor, Future, Progress, ProgressReporter, Promise, TaskError, exec,
};
use redis::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::conn::{self, Backoff, Conn, lock};
use crate::envelope::{Envelope, Fields, Outcome, TaskKind};
use crate::error::ClusterError;
use crate::keys::Keys;
use crate::task::{self, Item};

/// Default bound on tasks in flight per executor.
const DEFAULT_MAX_IN_FLIGHT: usize = 10_000;
/// Default cap on an encoded argument.
pub(crate) const DEFAULT_MAX_PAYLOAD: usize = 8 << 20;
/// How long the reader blocks in one XREAD (and so how often it looks at deadlines).
const READ_BLOCK: Duration = Duration::from_millis(200);
/// Entries per pipelined write.
const WRITE_BATCH: usize = 512;

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `deadline` on the wall clock, in Unix ms (what travels in an entry).
fn wall_ms(deadline: Instant) -> u64 {
    let left = deadline.saturating_duration_since(Instant::now());
    now_ms().saturating_add(left.as_millis() as u64).max(1)
}

/// Sixteen random hex digits (from the kernel's generator).
pub(crate) fn random_hex() -> String {
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .is_err()
    {
        // Unique enough without the generator: time, pid and a counter.
        static N: AtomicU64 = AtomicU64::new(0);
        let x =
            now_ms() ^ (u64::from(std::process::id()) << 40) ^ N.fetch_add(1, Ordering::Relaxed);
        b = x.to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Configures a [`RedisExecutor`].
///
/// ```no_run
/// use concur::cluster::RedisExecutor;
/// use std::time::Duration;
///
/// let ex = RedisExecutor::builder("redis://:secret@10.0.0.5:6379/0", "render")
///     .result_ttl(Duration::from_secs(3600))
///     .lease(Duration::from_secs(10))
///     .max_attempts(3)
///     .retry_backoff(Duration::from_secs(1))
///     .task_timeout(Duration::from_secs(300))
///     .max_in_flight(1_000)
///     .max_payload(1 << 20)
///     .connect()
///     .unwrap();
/// # drop(ex);
/// ```
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `connect`"]
pub struct RedisExecutorBuilder {
    url: String,
    pool: String,
    result_ttl: Duration,
    lease: Option<Duration>,
    max_attempts: u32,
    backoff: Duration,
    task_timeout: Option<Duration>,
    max_in_flight: usize,
    max_payload: usize,
    connect_timeout: Duration,
    fingerprint: Option<String>,
    root_cert: Option<Vec<u8>>,
}

impl RedisExecutorBuilder {
    fn new(url: &str, pool: &str) -> Self {
        RedisExecutorBuilder {
            url: url.to_owned(),
            pool: pool.to_owned(),
            result_ttl: Duration::from_secs(3600),
            lease: None,
            max_attempts: 3,
            backoff: Duration::from_secs(1),
            task_timeout: None,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_payload: DEFAULT_MAX_PAYLOAD,
            connect_timeout: Duration::from_secs(5),
            fingerprint: None,
            root_cert: None,
        }
    }

    /// For a `rediss://` URL: trusts this CA certificate (PEM) instead of the system's
    /// roots (a private CA, or a self-signed server certificate). Feature `tls`.
    #[cfg(feature = "tls")]
    pub fn tls_root_cert(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_cert = Some(pem.into());
        self
    }

    /// How long a result waits in Redis for this caller to read it (its result stream
    /// expires this long after the last result, and is trimmed by this age): one hour
    /// by default.
    pub fn result_ttl(mut self, ttl: Duration) -> Self {
        self.result_ttl = ttl.max(Duration::from_secs(1));
        self
    }

    /// The pool's lease (at least 1 s; 10 s unless some executor or worker of the
    /// pool set it): a worker renews the lease on every task it holds well within it,
    /// and a task whose worker stopped renewing is taken back by a peer once its
    /// lease has lapsed. A pool-wide setting kept in Redis: the last to set it wins.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = Some(lease.max(Duration::from_secs(1)));
        self
    }

    /// The most attempts at a task (at least 1; 3 by default): a task whose worker was
    /// lost is retried until then, and then dead-lettered
    /// ([`is_dead_lettered`](TaskError::is_dead_lettered)).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// The pause before the second attempt at a task (1 s by default), doubled for
    /// each attempt after it.
    pub fn retry_backoff(mut self, pause: Duration) -> Self {
        self.backoff = pause;
        self
    }

    /// The default deadline of every task, counted from its submission: a task not
    /// started by then is not started, one running past it is stopped on its worker,
    /// and its future fails with
    /// [`is_deadline_exceeded`](TaskError::is_deadline_exceeded). None by default;
    /// per task, see [`RedisExecutor::call_with_timeout`].
    pub fn task_timeout(mut self, timeout: Duration) -> Self {
        self.task_timeout = Some(timeout);
        self
    }

    /// At most this many tasks in flight (submitted and not settled; at least 1;
    /// 10,000 by default): `submit` blocks beyond it, `try_submit` fails with
    /// [`is_full`](TaskError::is_full). The task stream itself is never trimmed, so
    /// this bound is what keeps Redis's memory bounded.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// The largest encoded argument accepted (8 MiB by default); a larger one fails
    /// its `submit` before anything is sent.
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// How long to wait for a connection to Redis (5 s by default).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Vouches that workers whose fingerprint is `fingerprint` run the same code as
    /// this program, instead of this binary's own fingerprint (a hash of its
    /// executable). For builds that are known to be equal but are not the same file.
    pub fn fingerprint(mut self, fingerprint: impl Into<String>) -> Self {
        self.fingerprint = Some(fingerprint.into());
        self
    }

    /// Connects (checking that Redis answers), and starts the writer and reader
    /// threads.
    ///
    /// # Errors
    /// [`ClusterError::is_invalid`] for a bad URL or pool name;
    /// [`ClusterError::is_connection`] if Redis does not answer;
    /// [`ClusterError::is_auth_failed`] if it refuses the credentials.
    pub fn connect(self) -> Result<RedisExecutor, ClusterError> {
        let keys = Keys::new(&self.pool)?;
        let client = conn::client_with(&self.url, self.root_cert.as_deref())?;
        let mut con = Conn::new(client.clone(), self.connect_timeout);
        con.call(|c| redis::cmd("PING").query::<()>(c))?;
        if let Some(lease) = self.lease {
            con.call(|c| {
                redis::cmd("HSET")
                    .arg(keys.config())
                    .arg("lease_ms")
                    .arg(lease.as_millis() as u64)
                    .query::<()>(c)
            })?;
        }
        let caller = random_hex();
        let shared = Arc::new(Shared {
            results: keys.results(&caller),
            keys,
            caller,
            fingerprint: self
                .fingerprint
                .clone()
                .unwrap_or_else(|| task::fingerprint().to_owned()),
            cfg: self.clone(),
            seq: AtomicU64::new(0),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            ops: Mutex::new(Ops::default()),
            conn: Mutex::new(con),
            ops_ready: Condvar::new(),
            stop: AtomicBool::new(false),
            reader: OnceLock::new(),
            late: AtomicU64::new(0),
        });
        let writer = {
            let s = shared.clone();
            std::thread::Builder::new()
                .name("concur-cluster-writer".into())
                .spawn(move || writer(&s))
                .map_err(|e| ClusterError::local(format!("cannot start a thread: {e}")))?
        };
        let reader = {
            let s = shared.clone();
            let c = Conn::new(client, self.connect_timeout);
            std::thread::Builder::new()
                .name("concur-cluster-reader".into())
                .spawn(move || reader(&s, c))
                .map_err(|e| ClusterError::local(format!("cannot start a thread: {e}")))?
        };
        let _ = shared.reader.set(reader.thread().id());
        Ok(RedisExecutor {
            inner: Arc::new(Inner {
                shared,
                threads: Mutex::new(vec![writer, reader]),
            }),
        })
    }
}

/// How a task's future learns its outcome (per result type).
trait Completion: Send {
    fn complete(self: Box<Self>, outcome: Outcome);
    fn fail(self: Box<Self>, error: TaskError);
    /// Cancels the future (its cancel guard tells the workers).
    fn cancel(self: Box<Self>);
}

/// A task in flight.
struct Pending {
    done: Box<dyn Completion>,
    deadline: Option<Instant>,
    /// Where the task's progress reports go (its future).
    progress: ProgressReporter,
}

#[derive(Default)]
struct State {
    pending: HashMap<String, Pending>,
    shutdown: bool,
    /// Threads waiting on `changed` (so that settling a task signals only if someone
    /// waits: a syscall saved per task).
    waiters: usize,
    /// Tasks taken out of `pending` whose futures are being completed right now: a
    /// `shutdown(wait)` waits for them too (their futures are not done yet).
    settling: usize,
}

/// The writer's queue.
#[derive(Default)]
struct Ops {
    q: VecDeque<Op>,
    /// The writer sleeps on `ops_ready` (a queued op must wake it).
    writer_waiting: bool,
}

/// What the writer sends.
enum Op {
    Add(Envelope),
    Cancel(String),
}

struct Shared {
    cfg: RedisExecutorBuilder,
    keys: Keys,
    caller: String,
    results: String,
    fingerprint: String,
    seq: AtomicU64,
    state: Mutex<State>,
    /// Signalled when a task settles or the executor shuts down.
    changed: Condvar,
    ops: Mutex<Ops>,
    ops_ready: Condvar,
    /// The writer's connection (also used by a submit that finds nothing in flight and
    /// the writer idle: it sends its entry itself, saving the writer's wake-up).
    conn: Mutex<Conn>,
    /// The threads stop (after the writer's queue is empty).
    stop: AtomicBool,
    reader: OnceLock<ThreadId>,
    /// Results that found no task in flight (duplicates, or after a cancel).
    late: AtomicU64,
}

impl Shared {
    fn queue(&self, op: Op) {
        let mut o = lock(&self.ops);
        o.q.push_back(op);
        if o.writer_waiting {
            o.writer_waiting = false;
            self.ops_ready.notify_one();
        }
    }

    /// Takes the task `id` out of the table to settle its future, which the caller
    /// then does, and says so with [`settled`](Self::settled).
    fn take(&self, id: &str) -> Option<Pending> {
        let mut st = lock(&self.state);
        let p = st.pending.remove(id);
        if p.is_some() {
            st.settling += 1;
        }
        p
    }

    /// A future taken with [`take`](Self::take) is settled.
    fn settled(&self) {
        let mut st = lock(&self.state);
        st.settling -= 1;
        if st.waiters > 0 {
            self.changed.notify_all();
        }
    }

    /// Settles the future of task `id` with `f` (if it is in flight); true if it was.
    fn settle(&self, id: &str, f: impl FnOnce(Pending)) -> bool {
        match self.take(id) {
            Some(p) => {
                f(p);
                self.settled();
                true
            }
            None => false,
        }
    }

    /// Sends `env` from this thread if the writer is idle with nothing queued (one
    /// task at a time: no batch to gain, and one wake-up less on its way). False if
    /// the writer should send it (it is busy, or this send failed and it retries).
    fn send_direct(&self, env: &Envelope) -> bool {
        {
            let o = lock(&self.ops);
            if !(o.q.is_empty() && o.writer_waiting) {
                return false;
            }
        }
        let Ok(mut con) = self.conn.try_lock() else {
            return false;
        };
        let mut pipe = redis::pipe();
        pipe.cmd("XADD").arg(self.keys.tasks()).arg("*");
        env.write_fields(&mut pipe);
        con.call(|c| pipe.query::<()>(c)).is_ok()
    }

    /// Waits on `changed` (counted as a waiter).
    fn wait_changed<'a>(&self, mut st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        st.waiters += 1;
        st = self
            .changed
            .wait(st)
            .unwrap_or_else(PoisonError::into_inner);
        st.waiters -= 1;
        st
    }

    fn on_reader_thread(&self) -> bool {
        self.reader.get() == Some(&std::thread::current().id())
    }
}

struct Inner {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = shutdown(&self.shared, true, false);
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.ops_ready.notify_all();
        for t in lock(&self.threads).drain(..) {
            let _ = t.join();
        }
    }
}

/// Python's `concurrent.futures` executor with the work done by
/// [workers](crate::Worker) on any machine, through one Redis: the same [`Executor`]
/// trait as [`ThreadPoolExecutor`](concur_core::futures::ThreadPoolExecutor) and
/// [`ProcessPoolExecutor`](concur_process::ProcessPoolExecutor), the same [`Future`],
/// so a program moves from threads to processes to machines by changing the executor.
///
/// Functions are as for the process pool: `f` captures nothing (a function or a
/// non-capturing closure), arguments and results are serde types. Workers must run
/// the same build of the program: a worker of another build refuses with
/// [`is_build_mismatch`](TaskError::is_build_mismatch).
///
/// Each future gets exactly one outcome: the value; the task's panic (message and
/// location); [`is_cancelled`](TaskError::is_cancelled);
/// [`is_deadline_exceeded`](TaskError::is_deadline_exceeded) (not started before its
/// deadline, or stopped at it); [`is_worker_died`](TaskError::is_worker_died) (the
/// worker process running it crashed, with its signal); a worker lost at every
/// attempt, as [`is_dead_lettered`](TaskError::is_dead_lettered) with the last cause;
/// [`is_build_mismatch`](TaskError::is_build_mismatch);
/// [`is_bad_entry`](TaskError::is_bad_entry).
///
/// `cancel` on a cluster future always succeeds unless the future is done: a task not
/// yet started never starts, and one that runs is stopped on its worker (a process
/// pool worker is killed and replaced; on a thread pool worker the task finishes and
/// its result is dropped). Futures complete, and their done-callbacks run, on the
/// executor's reader thread. Dropping the executor waits for the tasks in flight, as
/// Python's `with` block does: with no worker running, call `shutdown(false, true)`
/// first to give them up.
///
/// ```no_run
/// use concur::cluster::RedisExecutor;
/// use concur::futures::{as_completed, Executor, MapOptions};
///
/// fn square(x: u64) -> u64 { x * x }
/// let ex = RedisExecutor::connect("redis://127.0.0.1:6379/0", "squares").unwrap();
/// assert_eq!(ex.call(square, 7).unwrap().result().unwrap(), 49);
/// let total: u64 = ex
///     .map(square, 0..1000, MapOptions::new().chunksize(100))
///     .unwrap()
///     .map(Result::unwrap)
///     .sum();
/// # let _ = total;
/// ```
#[derive(Clone)]
pub struct RedisExecutor {
    inner: Arc<Inner>,
}

impl fmt::Debug for RedisExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.inner.shared;
        f.debug_struct("RedisExecutor")
            .field("pool", &s.cfg.pool)
            .field("caller", &s.caller)
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}

impl RedisExecutor {
    /// Connects to the Redis at `url` (`redis://[user:password@]host:port/db`, or
    /// `rediss://` with the `tls` feature) as a caller of pool `pool`, with the
    /// defaults of [`RedisExecutorBuilder`].
    ///
    /// # Errors
    /// As [`RedisExecutorBuilder::connect`].
    ///
    /// ```
    /// assert!(concur::cluster::RedisExecutor::connect("redis://127.0.0.1:1/0", "a b").unwrap_err().is_invalid());
    /// ```
    pub fn connect(url: &str, pool: &str) -> Result<RedisExecutor, ClusterError> {
        Self::builder(url, pool).connect()
    }

    /// A builder for the other settings.
    ///
    /// ```
    /// let _ = concur::cluster::RedisExecutor::builder("redis://127.0.0.1:6379/0", "pool").max_in_flight(64);
    /// ```
    pub fn builder(url: &str, pool: &str) -> RedisExecutorBuilder {
        RedisExecutorBuilder::new(url, pool)
    }

    /// The pool this executor submits to.
    pub fn pool(&self) -> &str {
        &self.inner.shared.cfg.pool
    }

    /// This caller's id (its result stream is `concur:<pool>:r:<id>`).
    pub fn caller_id(&self) -> &str {
        &self.inner.shared.caller
    }

    /// The build fingerprint this executor's tasks carry.
    pub fn fingerprint(&self) -> &str {
        &self.inner.shared.fingerprint
    }

    /// Tasks submitted and not yet settled.
    pub fn in_flight(&self) -> usize {
        lock(&self.inner.shared.state).pending.len()
    }

    /// Results that arrived for tasks no longer in flight (a duplicate, or a task
    /// cancelled or past its deadline here): dropped, and counted.
    pub fn late_results(&self) -> u64 {
        self.inner.shared.late.load(Ordering::Relaxed)
    }

    /// [`Executor::call`] with a deadline of its own, `timeout` from now.
    ///
    /// # Errors
    /// As [`Executor::submit`].
    pub fn call_with_timeout<F, A, T>(
        &self,
        f: F,
        args: A,
        timeout: Duration,
    ) -> Result<Future<T>, TaskError>
    where
        F: Fn(A) -> T + Copy + 'static,
        A: Serialize + DeserializeOwned + 'static,
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        let _ = f;
        let name = task::name_call::<F, A, T>();
        let deadline = Instant::now().checked_add(timeout);
        self.push(TaskKind::Call, name, &args, deadline, true, Typed)
    }

    /// [`Executor::call`] that fails at once with [`is_full`](TaskError::is_full)
    /// instead of waiting when the in-flight bound is reached.
    ///
    /// # Errors
    /// As [`Executor::submit`], and `is_full`.
    pub fn try_call<F, A, T>(&self, f: F, args: A) -> Result<Future<T>, TaskError>
    where
        F: Fn(A) -> T + Copy + 'static,
        A: Serialize + DeserializeOwned + 'static,
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        let _ = f;
        let name = task::name_call::<F, A, T>();
        self.push(TaskKind::Call, name, &args, None, false, Typed)
    }

    /// Encodes a task, waits for room in flight, and queues it.
    fn push<A: Serialize, T: Send + 'static, C: Completion + 'static>(
        &self,
        kind: TaskKind,
        name: String,
        args: &A,
        deadline: Option<Instant>,
        block: bool,
        completion: impl FnOnce(Promise<T>) -> C,
    ) -> Result<Future<T>, TaskError> {
        let s = &self.inner.shared;
        let args = encode_args(args, s.cfg.max_payload)?;
        let deadline = deadline.or_else(|| {
            s.cfg
                .task_timeout
                .and_then(|t| Instant::now().checked_add(t))
        });
        let id = format!("{}-{}", s.caller, s.seq.fetch_add(1, Ordering::Relaxed));
        let env = Envelope {
            id: id.clone(),
            kind,
            name,
            fingerprint: s.fingerprint.clone(),
            deadline_ms: deadline.map_or(0, wall_ms),
            attempt: 1,
            not_before_ms: 0,
            max_attempts: s.cfg.max_attempts,
            backoff_ms: s.cfg.backoff.as_millis() as u64,
            ttl_ms: s.cfg.result_ttl.as_millis() as u64,
            reply: s.results.clone(),
            args,
        };
        let promise = Promise::new();
        let fut = promise.future();
        let alone;
        {
            let mut st = lock(&s.state);
            loop {
                if st.shutdown {
                    return Err(TaskError::shutdown());
                }
                // The reader thread frees room: a callback on it never waits for room.
                if st.pending.len() < s.cfg.max_in_flight || s.on_reader_thread() {
                    break;
                }
                if !block {
                    return Err(exec::full("the executor's in-flight bound is reached"));
                }
                st = s.wait_changed(st);
            }
            let weak: Weak<Shared> = Arc::downgrade(s);
            let cancel_id = id.clone();
            promise.set_cancel_guard(move || {
                if let Some(s) = weak.upgrade() {
                    s.queue(Op::Cancel(cancel_id.clone()));
                }
                true
            });
            st.pending.insert(
                id,
                Pending {
                    progress: promise.progress_reporter(),
                    done: Box::new(completion(promise)),
                    deadline,
                },
            );
            alone = st.pending.len() == 1;
        }
        tracing::debug_span!("submit", pool = %s.cfg.pool, task = %env.id)
            .in_scope(|| tracing::debug!(kind = kind.as_str(), name = %env.name, "queued"));
        if alone && s.send_direct(&env) {
            return Ok(fut);
        }
        s.queue(Op::Add(env));
        Ok(fut)
    }
}

/// Encodes a task's argument, refusing one over `max` bytes as soon as its encoding
/// passes the limit, without encoding (or allocating) the rest (the process tier's
/// capped encoder, shared with `Connection::send` and the manager).
fn encode_args<A: Serialize>(args: &A, max: usize) -> Result<Vec<u8>, TaskError> {
    use concur_process::exec::{CappedError, encode_capped};
    encode_capped(args, Vec::with_capacity(64), max).map_err(|e| match e {
        CappedError::TooLarge { .. } => TaskError::user(format!(
            "the task's argument is over the executor's {max}-byte payload limit"
        )),
        CappedError::Encode(e) => {
            TaskError::user(format!("the task's argument could not be serialized: {e}"))
        }
    })
}

/// Completes a `Future<T>`.
struct Typed<T>(Promise<T>);

impl<T: DeserializeOwned + Send + 'static> Completion for Typed<T> {
    // A future that already has an outcome (cancelled or past its deadline here)
    // keeps it: the `false` of a second one is expected and dropped.
    fn complete(self: Box<Self>, o: Outcome) {
        let _ = match decode_value::<T>(o) {
            Ok(v) => self.0.set_result(v),
            Err(e) => self.0.set_error(e),
        };
    }

    fn fail(self: Box<Self>, e: TaskError) {
        let _ = self.0.set_error(e);
    }

    fn cancel(self: Box<Self>) {
        if !self.0.future().cancel() {
            let _ = self.0.set_error(TaskError::cancelled());
        }
    }
}

fn decode_value<T: DeserializeOwned>(o: Outcome) -> Result<T, TaskError> {
    if o.status != crate::envelope::Status::Ok {
        return Err(o.to_task_error());
    }
    postcard::from_bytes(&o.value)
        .map_err(|e| TaskError::user(format!("the task's result could not be decoded: {e}")))
}

/// Completes a map chunk's future.
struct ChunkDone<T> {
    promise: Promise<Chunk<T>>,
    progress: ChunkProgress,
    items: usize,
}

impl<T: DeserializeOwned + Send + 'static> Completion for ChunkDone<T> {
    fn complete(self: Box<Self>, o: Outcome) {
        let r = decode_value::<Vec<Item<T>>>(o);
        if !matches!(&r, Err(e) if e.is_cancelled()) {
            self.progress.items_done(self.items);
        }
        match r {
            Ok(items) => {
                let _ = self.promise.set_result(
                    items
                        .into_iter()
                        .map(|i| match i {
                            Item::Ok(v) => Ok(v),
                            Item::Panic(m, l) => Err(TaskError::panic(m, l)),
                        })
                        .collect(),
                );
            }
            Err(e) => {
                let _ = self.promise.set_error(e);
            }
        }
    }

    fn fail(self: Box<Self>, e: TaskError) {
        let _ = self.promise.set_error(e);
    }

    fn cancel(self: Box<Self>) {
        if !self.promise.future().cancel() {
            let _ = self.promise.set_error(TaskError::cancelled());
        }
    }
}

/// `|| value`: a closure that captures nothing.
impl<F, T> Runs<F> for RedisExecutor
where
    F: Fn() -> T + Copy + 'static,
    T: Serialize + DeserializeOwned + Send + 'static,
{
    type Output = T;

    fn submit_job(&self, f: F) -> Result<Future<T>, TaskError> {
        let _ = f;
        let name = task::name_call0::<F, T>();
        self.push(TaskKind::Call0, name, &(), None, true, Typed)
    }
}

/// `f(args)`: `executor.call(f, args)`.
impl<F, A, T> Runs<Call<F, A>> for RedisExecutor
where
    F: Fn(A) -> T + Copy + 'static,
    A: Serialize + DeserializeOwned + 'static,
    T: Serialize + DeserializeOwned + Send + 'static,
{
    type Output = T;

    fn submit_job(&self, call: Call<F, A>) -> Result<Future<T>, TaskError> {
        let (_f, args) = call.into_parts();
        let name = task::name_call::<F, A, T>();
        self.push(TaskKind::Call, name, &args, None, true, Typed)
    }
}

/// The chunks of [`Executor::map`]: one task entry per chunk, each item's panic caught
/// at its item; progress is reported when a chunk's results arrive.
impl<F, A, T> Runs<MapChunk<F, A>> for RedisExecutor
where
    F: Fn(A) -> T + Copy + 'static,
    A: Serialize + DeserializeOwned + 'static,
    T: Serialize + DeserializeOwned + Send + 'static,
{
    type Output = Chunk<T>;

    fn submit_job(&self, chunk: MapChunk<F, A>) -> Result<Future<Chunk<T>>, TaskError> {
        let (_f, items, progress) = chunk.into_parts();
        let name = task::name_map::<F, A, T>();
        let n = items.len();
        self.push(TaskKind::Map, name, &items, None, true, move |promise| {
            ChunkDone {
                promise,
                progress,
                items: n,
            }
        })
    }
}

impl Executor for RedisExecutor {
    fn shutdown(&self, wait: bool, cancel_futures: bool) -> Result<(), TaskError> {
        shutdown(&self.inner.shared, wait, cancel_futures)
    }
}

fn shutdown(s: &Arc<Shared>, wait: bool, cancel_futures: bool) -> Result<(), TaskError> {
    let cancelled: Vec<Pending> = {
        let mut st = lock(&s.state);
        st.shutdown = true;
        let v: Vec<Pending> = if cancel_futures {
            st.pending.drain().map(|(_, p)| p).collect()
        } else {
            Vec::new()
        };
        st.settling += v.len();
        v
    };
    s.changed.notify_all();
    // Outside the lock: cancelling runs the futures' callbacks (and their cancel
    // guards queue the cancel requests to the workers).
    for p in cancelled {
        p.done.cancel();
        s.settled();
    }
    if !wait {
        return Ok(());
    }
    if s.on_reader_thread() {
        return Err(TaskError::self_wait(
            "shutdown(wait) from a callback of this executor's futures would wait for itself",
        ));
    }
    let mut st = lock(&s.state);
    while !st.pending.is_empty() || st.settling > 0 {
        st = s.wait_changed(st);
    }
    Ok(())
}

// ---- the writer ------------------------------------------------------------------------------

fn writer(s: &Arc<Shared>) {
    let mut backoff = Backoff::default();
    loop {
        let batch: Vec<Op> = {
            let mut o = lock(&s.ops);
            loop {
                if !o.q.is_empty() {
                    break;
                }
                if s.stop.load(Ordering::SeqCst) {
                    return;
                }
                o.writer_waiting = true;
                o = s
                    .ops_ready
                    .wait_timeout(o, Duration::from_millis(200))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
                o.writer_waiting = false;
            }
            let n = o.q.len().min(WRITE_BATCH);
            o.q.drain(..n).collect()
        };
        let mut pipe = redis::pipe();
        let tasks = s.keys.tasks();
        let ttl = s.cfg.result_ttl.as_millis() as u64;
        for op in &batch {
            match op {
                Op::Add(env) => {
                    pipe.cmd("XADD").arg(&tasks).arg("*");
                    env.write_fields(&mut pipe);
                    pipe.ignore();
                }
                Op::Cancel(id) => {
                    pipe.cmd("SET")
                        .arg(s.keys.cancel(id))
                        .arg(1)
                        .arg("PX")
                        .arg(ttl)
                        .ignore();
                    pipe.cmd("PUBLISH")
                        .arg(s.keys.cancel_channel())
                        .arg(id)
                        .ignore();
                }
            }
        }
        loop {
            let sent = lock(&s.conn).call(|c| pipe.query::<()>(c));
            match sent {
                Ok(()) => {
                    backoff.reset();
                    break;
                }
                Err(e) if conn::is_transient(&e) => {
                    tracing::warn!(error = %e, "concur cluster: Redis unreachable, retrying the write");
                    std::thread::sleep(backoff.step());
                }
                Err(e) => {
                    // Redis refused (out of memory, a key of the wrong type): the
                    // tasks of this batch cannot be submitted; say so on each.
                    tracing::error!(error = %e, "concur cluster: Redis refused a write");
                    for op in &batch {
                        if let Op::Add(env) = op {
                            s.settle(&env.id, |p| {
                                p.done.fail(TaskError::broken_executor(format!(
                                    "Redis refused the task: {e}"
                                )));
                            });
                        }
                    }
                    break;
                }
            }
        }
        for op in &batch {
            if let Op::Cancel(id) = op {
                // The future is cancelled already; free its place in flight.
                s.settle(id, drop);
            }
        }
    }
}

// ---- the reader ------------------------------------------------------------------------------

fn reader(s: &Arc<Shared>, mut con: Conn) {
    con.set_read_timeout(READ_BLOCK + conn::IO_TIMEOUT);
    let mut last = "0-0".to_owned();
    let mut backoff = Backoff::default();
    let mut expired_at = Instant::now();
    loop {
        {
            let st = lock(&s.state);
            if st.shutdown && st.pending.is_empty() && st.settling == 0 {
                drop(st);
                s.stop.store(true, Ordering::SeqCst);
                s.ops_ready.notify_all();
                return;
            }
        }
        if s.stop.load(Ordering::SeqCst) {
            return;
        }
        let r = con.call(|c| {
            redis::cmd("XREAD")
                .arg("COUNT")
                .arg(WRITE_BATCH)
                .arg("BLOCK")
                .arg(READ_BLOCK.as_millis() as u64)
                .arg("STREAMS")
                .arg(&s.results)
                .arg(&last)
                .query::<Value>(c)
        });
        match r {
            Ok(v) => {
                backoff.reset();
                let entries = stream_entries(v);
                if let Some((id, _)) = entries.last() {
                    last = id.clone();
                }
                let n = entries.len();
                for (_, fields) in entries {
                    deliver(s, &fields);
                }
                if n > 0 {
                    // What was read is done with: trim it (best effort).
                    let _ = con.call(|c| {
                        redis::cmd("XTRIM")
                            .arg(&s.results)
                            .arg("MINID")
                            .arg(&last)
                            .query::<()>(c)
                    });
                }
            }
            Err(e) if conn::is_transient(&e) => {
                std::thread::sleep(backoff.step());
            }
            Err(e) => {
                tracing::error!(error = %e, "concur cluster: reading results failed");
                std::thread::sleep(backoff.step());
            }
        }
        if expired_at.elapsed() >= Duration::from_millis(100) {
            expired_at = Instant::now();
            expire(s);
        }
    }
}

/// Completes the task a result entry is for (or tells it the progress reported).
fn deliver(s: &Shared, fields: &Fields) {
    match Outcome::decode(fields) {
        Ok((id, o)) if o.status == crate::envelope::Status::Progress => {
            let p = Progress {
                done: usize::try_from(o.done).unwrap_or(usize::MAX),
                total: o.total.and_then(|t| usize::try_from(t).ok()),
            };
            let reporter = lock(&s.state).pending.get(&id).map(|p| p.progress.clone());
            // Outside the lock: the future's progress callbacks run here.
            if let Some(r) = reporter {
                r.report(p);
            }
        }
        Ok((id, outcome)) => {
            let settled = s.settle(&id, |p| {
                tracing::debug_span!("result", task = %id)
                    .in_scope(|| tracing::debug!(status = ?outcome.status, attempt = outcome.attempt, "settled"));
                p.done.complete(outcome);
            });
            if !settled {
                s.late.fetch_add(1, Ordering::Relaxed);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "concur cluster: an unreadable result entry was dropped")
        }
    }
}

/// Fails the tasks whose deadline passed without a result (and asks their workers to
/// stop them).
fn expire(s: &Shared) {
    let now = Instant::now();
    let expired: Vec<(String, Pending)> = {
        let mut st = lock(&s.state);
        let ids: Vec<String> = st
            .pending
            .iter()
            .filter(|(_, p)| p.deadline.is_some_and(|d| d <= now))
            .map(|(id, _)| id.clone())
            .collect();
        let expired: Vec<(String, Pending)> = ids
            .into_iter()
            .filter_map(|id| st.pending.remove(&id).map(|p| (id, p)))
            .collect();
        st.settling += expired.len();
        expired
    };
    for (id, p) in expired {
        p.done.fail(exec::deadline_exceeded(
            "the task's deadline passed before its result arrived",
        ));
        s.queue(Op::Cancel(id));
        s.settled();
    }
}

/// The entries of an XREAD/XREADGROUP reply (one stream): `(id, fields)` in order.
pub(crate) fn stream_entries(v: Value) -> Vec<(String, Fields)> {
    let mut out = Vec::new();
    let streams = match v {
        Value::Array(a) => a,
        Value::Map(m) => m
            .into_iter()
            .map(|(k, v)| Value::Array(vec![k, v]))
            .collect(),
        _ => return out,
    };
    for stream in streams {
        let Value::Array(mut kv) = stream else {
            continue;
        };
        if kv.len() != 2 {
            continue;
        }
        let Value::Array(entries) = kv.pop().expect("two items") else {
            continue;
        };
        for e in entries {
            if let Some(x) = entry(e) {
                out.push(x);
            }
        }
    }
    out
}

/// One `[id, [field, value, ...]]` of a stream reply.
pub(crate) fn entry(e: Value) -> Option<(String, Fields)> {
    let Value::Array(mut pair) = e else {
        return None;
    };
    if pair.len() != 2 {
        return None;
    }
    let fields = pair.pop()?;
    let id = match pair.pop()? {
        Value::BulkString(b) => String::from_utf8(b).ok()?,
        Value::SimpleString(s) => s,
        _ => return None,
    };
    let mut map = Fields::new();
    if let Value::Array(kv) = fields {
        let mut it = kv.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            let k = match k {
                Value::BulkString(b) => String::from_utf8(b).ok()?,
                Value::SimpleString(s) => s,
                _ => continue,
            };
            map.insert(k, v);
        }
    }
    Some((id, map))
}
