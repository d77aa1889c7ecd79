//! [`Queue`]: Python's `queue.Queue` (bounded, `task_done`/`join`, `shutdown`) on a
//! Redis Stream with a consumer group, where an item taken by a consumer that dies is
//! given to another, never lost.
//!
//! Keys (`concur:obj:queue:{name}:…`):
//!
//! | key | type | what |
//! |---|---|---|
//! | `items` | stream, group `consumers` | one entry per item not yet done (field `d`: the item, postcard-encoded); an entry is deleted when its consumer calls `task_done` |
//! | `state` | hash | `maxsize`, `type` (the item type's name), `shutdown` (`drain` or `now`, once shut down) |
//! | `room`, `done` | streams, trimmed | signals: an item was taken (for putters waiting on a full queue); the queue became empty of unfinished items (for `join`) |
//! | `blocked` | set | `CLIENT ID`s of connections that blocked in a `get` (`shutdown` unblocks them) |
//! | `dead` | stream | entries whose item did not decode, with the cause |
//! | `s:<session>` | string, TTL | the last put of a connection's session (a retried put is not queued twice) |
//!
//! **Delivery.** `get` takes entries with `XREADGROUP` (blocking on the server while
//! there are none: a put wakes one waiting consumer). The entries a consumer holds
//! (taken, not yet done) stay in the group's pending list under its consumer name,
//! and this process's renewer resets their idle time every third of the lease. An
//! entry idle for longer than the lease (its consumer died, or was stopped or cut off
//! that long) is taken over by the next `get` of any consumer (`XAUTOCLAIM`), so it
//! is delivered again. `task_done` acknowledges the oldest entry this handle holds,
//! in the same script that checks it still holds it: an entry is acknowledged
//! exactly once, and a consumer that lost one is told ([`AckError::LeaseLost`]).
//! Unfinished items (for `join`) are the stream's entries: put and not yet done.
//!
//! Learned from the "reliable queue" pattern of the Redis docs (`RPOPLPUSH` into a
//! processing list) and from Redis Streams' consumer groups with `XAUTOCLAIM`, as
//! used by Celery's and Dramatiq's late acknowledgment; SQS's visibility timeout is
//! the same lease.

use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use concur_core::queue::{
    GetTimeoutError, PutTimeoutError, TaskDoneError, TryGetError, TryPutError,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::ctx::{self, Ctx, ObjKeys, lock};
use super::renew::{Held, Lease, Taken};
use crate::error::ClusterError;

pub use super::queue_errors::{AckError, GetError, PutError};
use super::queue_scripts::{ACK, GET, INIT, JOINED, MOVE, PUT, QSIZE, SHUTDOWN};

/// The consumer group of every queue.
const GROUP: &str = "consumers";

/// The largest encoded item accepted.
pub(crate) const MAX_ITEM: usize = 64 << 20;

/// The longest a waiter blocks before it looks again.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// An entry taken from the stream and not yet handed out.
struct Entry {
    id: String,
    item: Option<Vec<u8>>,
}

struct Inner {
    ctx: Arc<Ctx>,
    name: String,
    keys: ObjKeys,
    items: String,
    state: String,
    room: String,
    done: String,
    blocked: String,
    dead: String,
    maxsize: usize,
    lease_ms: u64,
    prefetch: usize,
    consumer: String,
    /// Every entry this handle holds, for the renewer (in delivery order: those
    /// handed out first, then `buffer`'s).
    taken: Arc<Mutex<Taken>>,
    /// How many of `taken`'s first entries were handed out, and what was taken and
    /// not handed out yet.
    local: Mutex<(usize, VecDeque<Entry>)>,
    _lease: Arc<Lease>,
}

/// Configures a [`Queue`]: made by [`Queue::builder`].
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `connect`"]
pub struct QueueBuilder<T> {
    url: String,
    name: String,
    maxsize: usize,
    lease: Duration,
    prefetch: usize,
    _t: PhantomData<fn(T) -> T>,
}

impl<T: Serialize + DeserializeOwned> QueueBuilder<T> {
    /// How long a consumer keeps a taken item without renewal (default 10 s; 100 ms
    /// to 24 h): the item of a consumer that dies is delivered again after this long
    /// (and up to half of it more, until a waiting consumer looks).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How many items one `get` takes from Redis at once (default 1). The extra ones
    /// wait in this handle for its next `get`s (held, renewed, delivered again if this
    /// process dies), which saves round trips but keeps them from other consumers,
    /// and a `shutdown(true)` elsewhere does not take them back.
    pub fn prefetch(mut self, n: usize) -> Self {
        self.prefetch = n.clamp(1, 10_000);
        self
    }

    /// Makes the handle: creates the queue if it does not exist, or checks that the
    /// one there has this `maxsize` and item type.
    ///
    /// # Errors
    /// [`is_invalid`](ClusterError::is_invalid) for a bad URL, name or lease, or a
    /// queue of this name with another `maxsize` or item type;
    /// [`is_connection`](ClusterError::is_connection) if Redis cannot be reached
    /// within 5 s.
    pub fn connect(self) -> Result<Queue<T>, ClusterError> {
        let lease = ctx::check_lease("queue", self.lease)?;
        let q = Queue::<T>::open(&self.url, &self.name, self.maxsize, lease, self.prefetch)?;
        let i = &*q.inner;
        let (maxsize, ty): (usize, String) = i.ctx.call_within(ctx::CONNECT_TIMEOUT, |c, _| {
            INIT.key(&i.items)
                .key(&i.state)
                .arg(GROUP)
                .arg(i.maxsize)
                .arg(std::any::type_name::<T>())
                .invoke(c)
        })?;
        if maxsize != i.maxsize || ty != std::any::type_name::<T>() {
            return Err(ClusterError::invalid(format!(
                "queue {:?} exists with maxsize {maxsize} and items of type {ty}, not {} and {}",
                i.name,
                i.maxsize,
                std::any::type_name::<T>()
            )));
        }
        Ok(q)
    }
}

/// A FIFO queue shared by every process, on any machine, that connects to it by name:
/// Python's `queue.Queue` (with `task_done`, `join` and `shutdown`) on a Redis Stream,
/// as a cheaply cloneable handle. Items are serde values (postcard-encoded).
///
/// `put` and `get` come in the four forms of [`concur::queue::Queue`](concur_core::queue::Queue), with its
/// error types: those of a put hand the item back, and their last parameter (the
/// process tier's reason for an item that cannot go through) is a [`ClusterError`]:
/// Redis failed, or the item does not encode. A bounded queue (`maxsize > 0`) counts
/// the items queued and not yet taken.
///
/// **An item is its consumer's until [`task_done`](Self::task_done)**: taken items
/// stay held (leased, renewed by this process) until the handle that took them calls
/// `task_done` (which acknowledges the oldest one it holds), and if the consumer dies
/// or is cut off for longer than the lease, another consumer's `get` takes the item
/// again. So nothing put is ever lost, and nothing acknowledged is delivered again;
/// an item whose consumer died after processing it but before `task_done` is
/// processed twice. Call `task_done` for every item, as for [`join`](Self::join).
///
/// ```
/// use concur::cluster::{Queue, RedisServer};
///
/// let redis = RedisServer::start()?;
/// let q = Queue::<String>::connect(&redis.url(), "urls", 100)?;
/// let worker = std::thread::spawn({
///     let q = q.clone();
///     move || {
///         let mut seen = 0;
///         while let Ok(_url) = q.get() {
///             seen += 1; // fetch(&url)
///             q.task_done().unwrap();
///         }
///         seen
///     }
/// });
/// for u in ["a", "b", "c"] {
///     q.put(u.to_string())?;
/// }
/// q.join()?; // all three done
/// q.shutdown(false)?; // the worker's loop ends
/// assert_eq!(worker.join().unwrap(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Queue<T> {
    inner: Arc<Inner>,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            inner: self.inner.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.inner.name)
            .field("maxsize", &self.inner.maxsize)
            .field("consumer", &self.inner.consumer)
            .finish_non_exhaustive()
    }
}

enum Put {
    Queued,
    Full,
}

enum Got<T> {
    Item(T),
    Empty,
    ShutDown,
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// A handle to the queue `name` on the Redis at `url`, made with `maxsize` (0:
    /// unbounded) if it does not exist (lease 10 s, prefetch 1).
    ///
    /// # Errors
    /// As [`QueueBuilder::connect`].
    pub fn connect(url: &str, name: &str, maxsize: usize) -> Result<Queue<T>, ClusterError> {
        Queue::builder(url, name, maxsize).connect()
    }

    /// A builder, to set the lease and the prefetch.
    pub fn builder(url: &str, name: &str, maxsize: usize) -> QueueBuilder<T> {
        QueueBuilder {
            url: url.to_owned(),
            name: name.to_owned(),
            maxsize,
            lease: Duration::from_secs(10),
            prefetch: 1,
            _t: PhantomData,
        }
    }

    fn open(
        url: &str,
        name: &str,
        maxsize: usize,
        lease_ms: u64,
        prefetch: usize,
    ) -> Result<Queue<T>, ClusterError> {
        let keys = ObjKeys::new("queue", name)?;
        let ctx = Ctx::of(url)?;
        let consumer = format!(
            "{}:{}:{}",
            ctx::hostname(),
            std::process::id(),
            ctx::random_id()
        );
        let taken = Arc::new(Mutex::new(Taken::default()));
        let items = keys.key("items");
        let lease = Lease::new(
            consumer.clone(),
            Held::Entries {
                items: items.clone(),
                group: GROUP,
                consumer: consumer.clone(),
                taken: taken.clone(),
            },
            lease_ms,
        );
        ctx.renewer().keep(&lease);
        Ok(Queue {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                items,
                state: keys.key("state"),
                room: keys.key("room"),
                done: keys.key("done"),
                blocked: keys.key("blocked"),
                dead: keys.key("dead"),
                keys,
                ctx,
                maxsize,
                lease_ms,
                prefetch,
                consumer,
                taken,
                local: Mutex::new((0, VecDeque::new())),
                _lease: lease,
            }),
            _t: PhantomData,
        })
    }

    // ---- put ---------------------------------------------------------------------------

    fn put_until(
        &self,
        item: &T,
        wait: bool,
        deadline: Option<Instant>,
    ) -> Result<Put, Result<(), ClusterError>> {
        let i = &*self.inner;
        let bytes = postcard::to_stdvec(item).map_err(|e| {
            Err(ClusterError::invalid(format!(
                "queue {:?}: the item could not be encoded: {e}",
                i.name
            )))
        })?;
        if bytes.len() > MAX_ITEM {
            return Err(Err(ClusterError::invalid(format!(
                "queue {:?}: the item takes {} bytes encoded, more than the limit of {MAX_ITEM}",
                i.name,
                bytes.len()
            ))));
        }
        let mut retry = ctx::Retry::default();
        loop {
            let r: Vec<String> = i
                .ctx
                .call(|c, s| {
                    PUT.key(&i.items)
                        .key(&i.state)
                        .key(&i.room)
                        .key(i.keys.session(&s.sid))
                        .arg(GROUP)
                        .arg(i.maxsize)
                        .arg(&bytes)
                        .arg(&s.seq)
                        .invoke(c)
                })
                .map_err(Err)?;
            match r.first().map(String::as_str) {
                Some("shut") => return Err(Ok(())),
                Some("full") => {}
                _ => return Ok(Put::Queued),
            }
            if !wait || concur_core::time::expired(deadline) {
                return Ok(Put::Full);
            }
            let last = r.get(1).cloned().unwrap_or_else(|| "0-0".into());
            retry
                .after(self.wait_signal(&i.room, &last, deadline), deadline)
                .map_err(Err)?;
        }
    }

    /// Blocks until an entry after `last` appears on the signal stream `key` (or the
    /// deadline, or [`MAX_WAIT`]).
    fn wait_signal(
        &self,
        key: &str,
        last: &str,
        deadline: Option<Instant>,
    ) -> redis::RedisResult<()> {
        let block = ctx::block_for(deadline, MAX_WAIT);
        self.inner.ctx.block(block, |c, _| {
            redis::cmd("XREAD")
                .arg("BLOCK")
                .arg(block.as_millis() as u64)
                .arg("STREAMS")
                .arg(key)
                .arg(last)
                .query::<redis::Value>(c)
                .map(|_| ())
        })
    }

    /// Puts `item`, blocking while the queue is full.
    ///
    /// # Errors
    /// [`PutError::ShutDown`] (with the item) once the queue is shut down;
    /// [`PutError::Rejected`] (with the item) if it does not encode or Redis failed.
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        match self.put_until(&item, true, None) {
            Ok(_) => Ok(()),
            Err(Ok(())) => Err(PutError::ShutDown(item)),
            Err(Err(e)) => Err(PutError::Rejected(item, e)),
        }
    }

    /// Puts `item` if there is room right now (Python's `put_nowait`).
    ///
    /// # Errors
    /// `Full` (with the item) if the queue is full; otherwise as [`put`](Self::put).
    ///
    /// ```
    /// use concur::queue::TryPutError;
    /// let redis = concur::cluster::RedisServer::start()?;
    /// let q = concur::cluster::Queue::<u32>::connect(&redis.url(), "one", 1)?;
    /// q.try_put(1).unwrap();
    /// assert!(matches!(q.try_put(2), Err(TryPutError::Full(2))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_put(&self, item: T) -> Result<(), TryPutError<T, ClusterError>> {
        match self.put_until(&item, false, None) {
            Ok(Put::Queued) => Ok(()),
            Ok(Put::Full) => Err(TryPutError::Full(item)),
            Err(Ok(())) => Err(TryPutError::ShutDown(item)),
            Err(Err(e)) => Err(TryPutError::Rejected(item, e)),
        }
    }

    /// Puts `item`, blocking for at most `timeout` while the queue is full.
    ///
    /// # Errors
    /// `Full` (with the item) if it stayed full; otherwise as [`put`](Self::put).
    pub fn put_timeout(
        &self,
        item: T,
        timeout: Duration,
    ) -> Result<(), PutTimeoutError<T, ClusterError>> {
        self.put_deadline_opt(item, concur_core::time::deadline_after(timeout))
    }

    /// Puts `item`, blocking until `deadline` at the latest while the queue is full.
    ///
    /// # Errors
    /// As [`put_timeout`](Self::put_timeout).
    pub fn put_deadline(
        &self,
        item: T,
        deadline: Instant,
    ) -> Result<(), PutTimeoutError<T, ClusterError>> {
        self.put_deadline_opt(item, Some(deadline))
    }

    fn put_deadline_opt(
        &self,
        item: T,
        deadline: Option<Instant>,
    ) -> Result<(), PutTimeoutError<T, ClusterError>> {
        match self.put_until(&item, true, deadline) {
            Ok(Put::Queued) => Ok(()),
            Ok(Put::Full) => Err(PutTimeoutError::Full(item)),
            Err(Ok(())) => Err(PutTimeoutError::ShutDown(item)),
            Err(Err(e)) => Err(PutTimeoutError::Rejected(item, e)),
        }
    }

    // ---- get ---------------------------------------------------------------------------

    fn get_until(&self, wait: bool, deadline: Option<Instant>) -> Result<Got<T>, ClusterError> {
        let i = &*self.inner;
        let mut retry = ctx::Retry::default();
        loop {
            if let Some(e) = self.hand_out() {
                return self.decode(e).map(Got::Item);
            }
            let block = ctx::block_for(deadline, self.recheck());
            let blocking = wait && !concur_core::time::expired(deadline);
            let r = i.ctx.block(block, |c, client_id| {
                let id = match (blocking, *client_id) {
                    (false, _) => String::new(),
                    (true, Some(id)) => id.to_string(),
                    (true, None) => {
                        let id: i64 = redis::cmd("CLIENT").arg("ID").query(c)?;
                        *client_id = Some(id);
                        id.to_string()
                    }
                };
                let got: Vec<Vec<u8>> = GET
                    .key(&i.items)
                    .key(&i.state)
                    .key(&i.room)
                    .key(&i.blocked)
                    .arg(GROUP)
                    .arg(&i.consumer)
                    .arg(i.prefetch)
                    .arg(i.lease_ms)
                    .arg(u8::from(i.maxsize > 0))
                    .arg(&id)
                    .invoke(c)?;
                if got.first().map(Vec::as_slice) != Some(b"empty") || !blocking {
                    return Ok(got);
                }
                let reply: Option<redis::streams::StreamReadReply> = redis::cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg(GROUP)
                    .arg(&i.consumer)
                    .arg("COUNT")
                    .arg(i.prefetch)
                    .arg("BLOCK")
                    .arg(block.as_millis() as u64)
                    .arg("STREAMS")
                    .arg(&i.items)
                    .arg(">")
                    .query(c)?;
                let mut out = vec![b"ok".to_vec(), b"0".to_vec()];
                for k in reply.map(|r| r.keys).unwrap_or_default() {
                    for e in k.ids {
                        out.push(e.id.into_bytes());
                        match e.map.get("d") {
                            Some(redis::Value::BulkString(b)) => {
                                out.push(b"1".to_vec());
                                out.push(b.clone());
                            }
                            _ => {
                                out.push(b"0".to_vec());
                                out.push(Vec::new());
                            }
                        }
                    }
                }
                Ok(if out.len() > 2 {
                    out
                } else {
                    vec![b"empty".to_vec()]
                })
            });
            let got = match r {
                Ok(g) => {
                    retry.ok();
                    g
                }
                Err(e) if is_nogroup(&e) => {
                    self.make_group()?;
                    continue;
                }
                Err(e) => {
                    retry.failed(e, deadline)?;
                    continue;
                }
            };
            match got.first().map(Vec::as_slice) {
                Some(b"shut") => return Ok(Got::ShutDown),
                Some(b"ok") => self.take_in(&got[2..]),
                _ => {
                    if !blocking {
                        return Ok(Got::Empty);
                    }
                }
            }
        }
    }

    /// How long a waiting `get` blocks before it looks again, for the items of dead
    /// consumers whose lease lapsed.
    fn recheck(&self) -> Duration {
        Duration::from_millis(self.inner.lease_ms / 2).clamp(Duration::from_millis(50), MAX_WAIT)
    }

    fn make_group(&self) -> Result<(), ClusterError> {
        let i = &*self.inner;
        i.ctx.call(|c, _| {
            INIT.key(&i.items)
                .key(&i.state)
                .arg(GROUP)
                .arg(i.maxsize)
                .arg(std::any::type_name::<T>())
                .invoke::<redis::Value>(c)
        })?;
        Ok(())
    }

    /// Records entries just taken (id, has item, item triples).
    fn take_in(&self, triples: &[Vec<u8>]) {
        let mut local = lock(&self.inner.local);
        let mut taken = lock(&self.inner.taken);
        for t in triples.chunks_exact(3) {
            let id = String::from_utf8_lossy(&t[0]).into_owned();
            taken.ids.push_back(id.clone());
            local.1.push_back(Entry {
                id,
                item: (t[1] == b"1").then(|| t[2].clone()),
            });
        }
    }

    /// The next taken entry, now handed out (held until `task_done`).
    fn hand_out(&self) -> Option<Entry> {
        let mut local = lock(&self.inner.local);
        let e = local.1.pop_front()?;
        local.0 += 1;
        Some(e)
    }

    /// Decodes a handed-out entry; one that does not decode is moved to the dead
    /// letters (and counts as done).
    fn decode(&self, e: Entry) -> Result<T, ClusterError> {
        let i = &*self.inner;
        let err = match &e.item {
            Some(b) => match postcard::from_bytes::<T>(b) {
                Ok(v) => return Ok(v),
                Err(err) => format!(
                    "the item does not decode as {}: {err}",
                    std::any::type_name::<T>()
                ),
            },
            None => "the entry holds no item (written by something else than a Queue)".to_owned(),
        };
        tracing::error!(queue = %i.name, entry = %e.id, cause = %err, "concur queue: moving a bad entry to the dead letters");
        {
            let mut local = lock(&i.local);
            let mut taken = lock(&i.taken);
            if let Some(p) = taken.ids.iter().position(|x| *x == e.id) {
                taken.ids.remove(p);
                local.0 = local.0.saturating_sub(1);
            }
        }
        let moved = self.move_entries("dead", &err, &[e]);
        Err(match moved {
            Ok(()) => ClusterError::invalid(format!("queue {:?}: {err}", i.name)),
            Err(m) => m,
        })
    }

    fn move_entries(&self, mode: &str, cause: &str, es: &[Entry]) -> Result<(), ClusterError> {
        let i = &*self.inner;
        i.ctx.call(|c, _| {
            let mut inv = MOVE.prepare_invoke();
            inv.key(&i.items)
                .key(&i.dead)
                .key(&i.done)
                .arg(GROUP)
                .arg(&i.consumer)
                .arg(mode)
                .arg(cause);
            for e in es {
                inv.arg(&e.id)
                    .arg(if e.item.is_some() { "1" } else { "0" })
                    .arg(e.item.as_deref().unwrap_or(&[]));
            }
            inv.invoke::<redis::Value>(c)
        })?;
        Ok(())
    }

    /// Takes an item, blocking while the queue is empty.
    ///
    /// # Errors
    /// [`GetError::ShutDown`] once the queue is shut down and drained (at once after
    /// an immediate shutdown); [`GetError::Decode`] if Redis failed, or if the item
    /// taken did not decode as a `T` (it is moved to the dead letters).
    pub fn get(&self) -> Result<T, GetError> {
        match self.get_until(true, None) {
            Ok(Got::Item(v)) => Ok(v),
            Ok(Got::ShutDown) => Err(GetError::ShutDown),
            Ok(Got::Empty) => unreachable!("an unbounded get ends with an item"),
            Err(e) => Err(GetError::Decode(e)),
        }
    }

    /// Takes an item if one is there right now (Python's `get_nowait`).
    ///
    /// # Errors
    /// `Empty`; otherwise as [`get`](Self::get).
    pub fn try_get(&self) -> Result<T, TryGetError<ClusterError>> {
        match self.get_until(false, None) {
            Ok(Got::Item(v)) => Ok(v),
            Ok(Got::ShutDown) => Err(TryGetError::ShutDown),
            Ok(Got::Empty) => Err(TryGetError::Empty),
            Err(e) => Err(TryGetError::Decode(e)),
        }
    }

    /// Takes an item, blocking for at most `timeout` while the queue is empty.
    ///
    /// # Errors
    /// `Empty` if it stayed empty; otherwise as [`get`](Self::get).
    ///
    /// ```
    /// use concur::queue::GetTimeoutError;
    /// use std::time::{Duration, Instant};
    /// let redis = concur::cluster::RedisServer::start()?;
    /// let q = concur::cluster::Queue::<u8>::connect(&redis.url(), "empty", 0)?;
    /// let start = Instant::now();
    /// assert!(matches!(q.get_timeout(Duration::from_millis(50)), Err(GetTimeoutError::Empty)));
    /// assert!(start.elapsed() >= Duration::from_millis(50));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError<ClusterError>> {
        self.get_deadline_opt(concur_core::time::deadline_after(timeout))
    }

    /// Takes an item, blocking until `deadline` at the latest while the queue is empty.
    ///
    /// # Errors
    /// As [`get_timeout`](Self::get_timeout).
    pub fn get_deadline(&self, deadline: Instant) -> Result<T, GetTimeoutError<ClusterError>> {
        self.get_deadline_opt(Some(deadline))
    }

    fn get_deadline_opt(
        &self,
        deadline: Option<Instant>,
    ) -> Result<T, GetTimeoutError<ClusterError>> {
        match self.get_until(true, deadline) {
            Ok(Got::Item(v)) => Ok(v),
            Ok(Got::ShutDown) => Err(GetTimeoutError::ShutDown),
            Ok(Got::Empty) => Err(GetTimeoutError::Empty),
            Err(e) => Err(GetTimeoutError::Decode(e)),
        }
    }

    // ---- task_done, join ---------------------------------------------------------------

    /// Marks the oldest item this handle took (and has not marked) done: acknowledges
    /// it, so it is never delivered again, and counts it for [`join`](Self::join).
    ///
    /// # Errors
    /// [`AckError::TooMany`] if this handle holds no item taken and not done;
    /// [`AckError::LeaseLost`] if the item's lease lapsed and another consumer took it
    /// over (it will be, or was, processed there too); [`AckError::Failed`] if Redis
    /// failed (the item stays held: call again).
    pub fn task_done(&self) -> Result<(), AckError> {
        let i = &*self.inner;
        let (id, was_lost) = {
            let mut local = lock(&i.local);
            if local.0 == 0 {
                return Err(AckError::TooMany(TaskDoneError::new()));
            }
            let mut taken = lock(&i.taken);
            let Some(id) = taken.ids.pop_front() else {
                return Err(AckError::TooMany(TaskDoneError::new()));
            };
            local.0 -= 1;
            let lost = taken.lost.remove(&id);
            (id, lost)
        };
        let mut attempts = 0;
        let r = i.ctx.call(|c, _| {
            attempts += 1;
            ACK.key(&i.items)
                .key(&i.done)
                .arg(GROUP)
                .arg(&i.consumer)
                .arg(&id)
                .invoke::<i64>(c)
        });
        match r {
            Ok(1) => Ok(()),
            Ok(2) if attempts > 1 && !was_lost => Ok(()),
            Ok(_) => Err(AckError::LeaseLost),
            Err(e) => {
                let mut local = lock(&i.local);
                let mut taken = lock(&i.taken);
                taken.ids.push_front(id);
                local.0 += 1;
                Err(AckError::Failed(e))
            }
        }
    }

    /// Blocks until every item put has been marked done (by whichever consumers took
    /// it), Python's `join`.
    ///
    /// # Errors
    /// If Redis failed.
    pub fn join(&self) -> Result<(), ClusterError> {
        self.join_until(None).map(|_| ())
    }

    /// [`join`](Self::join) for at most `timeout`; `false` if items were still
    /// unfinished.
    ///
    /// # Errors
    /// If Redis failed.
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool, ClusterError> {
        self.join_until(concur_core::time::deadline_after(timeout))
    }

    /// [`join`](Self::join) until `deadline` at the latest.
    ///
    /// # Errors
    /// If Redis failed.
    pub fn join_deadline(&self, deadline: Instant) -> Result<bool, ClusterError> {
        self.join_until(Some(deadline))
    }

    fn join_until(&self, deadline: Option<Instant>) -> Result<bool, ClusterError> {
        let i = &*self.inner;
        let mut retry = ctx::Retry::default();
        loop {
            let r: Vec<String> = i
                .ctx
                .call(|c, _| JOINED.key(&i.items).key(&i.done).invoke(c))?;
            if r.first().map(String::as_str) == Some("1") {
                return Ok(true);
            }
            if concur_core::time::expired(deadline) {
                return Ok(false);
            }
            let last = r.get(1).cloned().unwrap_or_else(|| "0-0".into());
            retry.after(self.wait_signal(&i.done, &last, deadline), deadline)?;
        }
    }

    // ---- size, shutdown ----------------------------------------------------------------

    /// The number of items queued and not taken (Python's approximate `qsize`).
    ///
    /// # Errors
    /// If Redis failed.
    pub fn qsize(&self) -> Result<usize, ClusterError> {
        let i = &*self.inner;
        let n: i64 = i
            .ctx
            .call(|c, _| QSIZE.key(&i.items).arg(GROUP).invoke(c))?;
        Ok(n.max(0) as usize)
    }

    /// Whether no item is queued (and not taken).
    ///
    /// # Errors
    /// If Redis failed.
    pub fn empty(&self) -> Result<bool, ClusterError> {
        Ok(self.qsize()? == 0)
    }

    /// Whether a bounded queue has `maxsize` items queued.
    ///
    /// # Errors
    /// If Redis failed.
    pub fn full(&self) -> Result<bool, ClusterError> {
        Ok(self.inner.maxsize > 0 && self.qsize()? >= self.inner.maxsize)
    }

    /// Its bound (0: unbounded).
    pub fn maxsize(&self) -> usize {
        self.inner.maxsize
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Shuts the queue down for every handle, as Python 3.13's `shutdown`: puts fail
    /// with `ShutDown` from now on, blocked putters and getters wake, and `get`
    /// drains what is queued, then fails with `ShutDown`. `immediate` also drops the
    /// items not taken yet (each counts as done; those this handle took and did not
    /// hand out included), and `get` fails at once. Items taken and not done still
    /// need their `task_done` before `join` returns. A queue shut down stays so.
    ///
    /// # Errors
    /// If Redis failed.
    pub fn shutdown(&self, immediate: bool) -> Result<(), ClusterError> {
        let i = &*self.inner;
        let ids: Vec<i64> = i.ctx.call(|c, _| {
            SHUTDOWN
                .key(&i.items)
                .key(&i.state)
                .key(&i.room)
                .key(&i.done)
                .key(&i.blocked)
                .arg(GROUP)
                .arg(u8::from(immediate))
                .arg(i.lease_ms)
                .invoke(c)
        })?;
        if immediate {
            let drop: Vec<Entry> = {
                let mut local = lock(&i.local);
                let mut taken = lock(&i.taken);
                let out: Vec<Entry> = local.1.drain(..).collect();
                taken.ids.retain(|x| !out.iter().any(|e| e.id == *x));
                out
            };
            for e in drop {
                let _ = i.ctx.call(|c, _| {
                    ACK.key(&i.items)
                        .key(&i.done)
                        .arg(GROUP)
                        .arg(&i.consumer)
                        .arg(&e.id)
                        .invoke::<i64>(c)
                });
            }
        }
        for id in ids {
            // Best effort: without the right to CLIENT UNBLOCK, a blocked getter
            // notices at its next look.
            let _ = i.ctx.call_within(Duration::ZERO, |c, _| {
                redis::cmd("CLIENT").arg("UNBLOCK").arg(id).query::<i64>(c)
            });
        }
        Ok(())
    }

    /// Whether the queue has been shut down.
    ///
    /// # Errors
    /// If Redis failed.
    pub fn is_shutdown(&self) -> Result<bool, ClusterError> {
        let i = &*self.inner;
        i.ctx.call(|c, _| {
            redis::cmd("HEXISTS")
                .arg(&i.state)
                .arg("shutdown")
                .query::<bool>(c)
        })
    }

    /// This handle's consumer name in the stream's group (`host:pid:random`).
    pub fn consumer(&self) -> &str {
        &self.inner.consumer
    }
}

fn is_nogroup(e: &redis::RedisError) -> bool {
    crate::conn::is_nogroup(e) || e.to_string().contains("NOGROUP")
}

impl Drop for Inner {
    fn drop(&mut self) {
        let buffered: Vec<Entry> = lock(&self.local).1.drain(..).collect();
        let held = lock(&self.local).0;
        if held > 0 {
            tracing::warn!(queue = %self.name, items = held, "concur queue: a handle dropped holding items not done; they will be delivered again after the lease");
        }
        // Hand back what was taken and never handed out; forget the consumer if it
        // holds nothing.
        let r = self.ctx.call_within(Duration::from_secs(2), |c, _| {
            let mut inv = MOVE.prepare_invoke();
            inv.key(&self.items)
                .key(&self.dead)
                .key(&self.done)
                .arg(GROUP)
                .arg(&self.consumer)
                .arg("back")
                .arg("");
            for e in &buffered {
                inv.arg(&e.id)
                    .arg(if e.item.is_some() { "1" } else { "0" })
                    .arg(e.item.as_deref().unwrap_or(&[]));
            }
            inv.invoke::<redis::Value>(c)
        });
        if let Err(e) = r {
            tracing::debug!(error = %e, queue = %self.name, "concur queue: could not hand back taken items; they come back after the lease");
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Spec {
    url: String,
    name: String,
    maxsize: usize,
    lease_ms: u64,
    prefetch: usize,
}

impl<T> Serialize for Queue<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let i = &*self.inner;
        Spec {
            url: i.ctx.url().to_owned(),
            name: i.name.clone(),
            maxsize: i.maxsize,
            lease_ms: i.lease_ms,
            prefetch: i.prefetch,
        }
        .serialize(s)
    }
}

/// A deserialized handle is a new consumer (in the receiving process).
impl<'de, T: Serialize + DeserializeOwned> Deserialize<'de> for Queue<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spec::deserialize(d)?;
        Queue::open(&s.url, &s.name, s.maxsize, s.lease_ms, s.prefetch)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RedisServer;

    /// A put whose reply was lost is retried under the same session and number: the
    /// second run finds the first and queues nothing.
    #[test]
    fn a_put_retried_under_its_session_is_queued_once() {
        let redis = RedisServer::start().unwrap();
        let q = Queue::<u32>::connect(&redis.url(), "retry", 0).unwrap();
        let i = &*q.inner;
        let mut con = redis::Client::open(redis.url())
            .unwrap()
            .get_connection()
            .unwrap();
        let item = postcard::to_stdvec(&7u32).unwrap();
        let mut put = |seq: u64| -> String {
            let r: Vec<String> = PUT
                .key(&i.items)
                .key(&i.state)
                .key(&i.room)
                .key(i.keys.session("s1"))
                .arg(GROUP)
                .arg(0)
                .arg(&item)
                .arg(format!("{seq:020}"))
                .invoke(&mut con)
                .unwrap();
            r[0].clone()
        };
        assert_eq!(put(1), "ok");
        assert_eq!(put(1), "dup", "the retry");
        assert_eq!(put(2), "ok", "the session's next put");
        assert_eq!(q.get().unwrap(), 7);
        assert_eq!(q.get().unwrap(), 7);
        assert!(matches!(q.try_get(), Err(TryGetError::Empty)));
    }
}
