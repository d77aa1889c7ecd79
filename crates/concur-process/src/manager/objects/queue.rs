//! [`Queue`]: a shared FIFO queue (Python's `Manager().Queue(maxsize)`), and the
//! server side it shares with [`JoinableQueue`](super::joinable_queue::JoinableQueue).
//!
//! Blocking happens on the server, in the thread of the caller's connection: a `get`
//! on an empty queue waits there on a condition variable (until an item comes, the
//! op's timeout passes or the server stops), so it holds up no other client.

use concur_core::time::deadline_after;
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::manager::Manager;
use crate::manager::client::Handle;
use crate::manager::error::{Kind, ManagerError};
use crate::manager::object::{Ctx, Object};
use crate::manager::protocol::{ObjKind, decode, decode_op, encode};

/// How long an op may block, relative to when the server receives it (the server
/// computes its own deadline, so the two clocks need not agree).
#[derive(Serialize, Deserialize, Clone, Copy, Debug)]
pub(super) enum Wait {
    /// Not at all (`try_` forms): a full or empty queue is an invalid-state error.
    No,
    /// At most this long: then a timeout error.
    For(Duration),
    /// Until the op can complete or the server stops.
    Forever,
}

impl Wait {
    /// The wait for an op that must complete by `deadline` (`None`: no deadline).
    pub(super) fn until(deadline: Option<Instant>) -> Wait {
        match deadline {
            Some(d) => Wait::For(d.saturating_duration_since(Instant::now())),
            None => Wait::Forever,
        }
    }
}

#[derive(Serialize, Deserialize)]
pub(super) enum QueueOp {
    Put(Vec<u8>, Wait),
    Get(Wait),
    Qsize,
    Empty,
    Full,
    Maxsize,
    TaskDone,
    Join(Wait),
}

struct State {
    items: VecDeque<Vec<u8>>,
    /// Items put and not yet marked done (joinable queues).
    unfinished: u64,
    /// The server is stopping: blocked callers give up.
    stopped: bool,
}

/// The server side of a queue, joinable or not.
pub(crate) struct QueueObject {
    tag: String,
    maxsize: usize,
    joinable: bool,
    state: Mutex<State>,
    not_empty: Condvar,
    not_full: Condvar,
    all_done: Condvar,
}

impl QueueObject {
    pub(crate) fn new(tag: String, maxsize: usize, joinable: bool) -> Self {
        QueueObject {
            tag,
            maxsize,
            joinable,
            state: Mutex::new(State {
                items: VecDeque::new(),
                unfinished: 0,
                stopped: false,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            all_done: Condvar::new(),
        }
    }

    fn is_full(&self, s: &State) -> bool {
        self.maxsize > 0 && s.items.len() >= self.maxsize
    }

    /// Waits on `cv` while `blocked` holds, as `wait` allows; returns the guard once
    /// it does not. The mutex is released only inside `Condvar::wait*`.
    fn wait_while<'a>(
        &self,
        ctx: &Ctx<'_>,
        cv: &Condvar,
        mut g: MutexGuard<'a, State>,
        wait: Wait,
        blocked: impl Fn(&Self, &State) -> bool,
        what: &str,
    ) -> Result<MutexGuard<'a, State>, ManagerError> {
        let deadline = match wait {
            Wait::For(d) => deadline_after(d),
            Wait::No | Wait::Forever => None,
        };
        while blocked(self, &g) {
            if g.stopped || ctx.server_stopping() {
                return Err(ManagerError::shutdown(format!(
                    "the manager shut down while waiting: the queue {what}"
                )));
            }
            g = match (wait, deadline) {
                (Wait::No, _) => {
                    return Err(ManagerError::new(
                        Kind::InvalidState,
                        format!("the queue {what}"),
                    ));
                }
                // A timeout too large for the clock is no timeout.
                (Wait::For(_) | Wait::Forever, d) => {
                    let Some(slice) = Ctx::wait_slice(d) else {
                        return Err(ManagerError::new(
                            Kind::Timeout,
                            format!("timed out: the queue {what}"),
                        ));
                    };
                    let (g2, t) = cv
                        .wait_timeout(g, slice)
                        .unwrap_or_else(PoisonError::into_inner);
                    // A dead client's `get` must not take an item later.
                    if t.timed_out() && ctx.peer_gone() {
                        return Err(ctx.gone_error());
                    }
                    g2
                }
            };
        }
        Ok(g)
    }
}

impl Object for QueueObject {
    fn tag(&self) -> &str {
        &self.tag
    }

    fn call(&self, ctx: &Ctx<'_>, op: &[u8]) -> Result<Vec<u8>, ManagerError> {
        let op = decode_op::<QueueOp>(op)?;
        let g = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match op {
            QueueOp::Put(item, wait) => {
                let mut g =
                    self.wait_while(ctx, &self.not_full, g, wait, Self::is_full, "is full")?;
                g.items.push_back(item);
                g.unfinished += 1;
                drop(g);
                self.not_empty.notify_one();
                encode(&())
            }
            QueueOp::Get(wait) => {
                let mut g = self.wait_while(
                    ctx,
                    &self.not_empty,
                    g,
                    wait,
                    |_, s| s.items.is_empty(),
                    "is empty",
                )?;
                let item = g.items.pop_front();
                drop(g);
                self.not_full.notify_one();
                encode(&item.unwrap_or_default())
            }
            QueueOp::Qsize => encode(&(g.items.len() as u64)),
            QueueOp::Empty => encode(&g.items.is_empty()),
            QueueOp::Full => encode(&self.is_full(&g)),
            QueueOp::Maxsize => encode(&(self.maxsize as u64)),
            QueueOp::TaskDone if self.joinable => {
                let mut g = g;
                if g.unfinished == 0 {
                    return Err(ManagerError::new(
                        Kind::InvalidState,
                        "task_done() called more times than there were items",
                    ));
                }
                g.unfinished -= 1;
                if g.unfinished == 0 {
                    self.all_done.notify_all();
                }
                encode(&())
            }
            QueueOp::Join(wait) if self.joinable => {
                let g = self.wait_while(
                    ctx,
                    &self.all_done,
                    g,
                    wait,
                    |_, s| s.unfinished > 0,
                    "has unfinished items",
                )?;
                drop(g);
                encode(&())
            }
            QueueOp::TaskDone | QueueOp::Join(_) => Err(ManagerError::bad_request(
                "task_done and join are for joinable queues",
            )),
        }
    }

    fn stop(&self) {
        let mut g = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        g.stopped = true;
        drop(g);
        self.not_empty.notify_all();
        self.not_full.notify_all();
        self.all_done.notify_all();
    }
}

/// A FIFO queue held by a [`Manager`]'s server and shared by every process that holds
/// a proxy to it: Python's `Manager().Queue(maxsize)`. Items are serde types, stored
/// serialized. `maxsize` 0 means unbounded.
///
/// Blocking calls wait on the server, in the thread that serves this proxy's
/// connection: other clients are not held up, and a blocked call ends with
/// [`is_shutdown`](ManagerError::is_shutdown) if the manager shuts down. Each form
/// comes four ways: `put` (waits as long as it takes), `try_put` (never waits: a full
/// queue is [`is_invalid_state`](ManagerError::is_invalid_state), Python's
/// `queue.Full` from `put_nowait`), `put_timeout` and `put_deadline` (a timeout is
/// [`is_timeout`](ManagerError::is_timeout)); likewise `get` (an empty queue is
/// `is_invalid_state` for `try_get`, Python's `queue.Empty`).
///
/// One proxy makes one call at a time: threads that block on the same queue should
/// each use their own clone (each has its own connection). If a client process dies
/// while blocked in `get`, its server thread waits on until its op's deadline and may
/// take one item that nobody then receives (as in Python).
///
/// ```
/// use concur::process::Manager;
/// use std::time::Duration;
///
/// let m = Manager::start().unwrap();
/// let q = m.queue::<String>(2).unwrap();
/// q.put("a".into()).unwrap();
/// q.put("b".into()).unwrap();
/// assert!(q.full().unwrap());
/// assert!(q.put_timeout("c".into(), Duration::from_millis(10)).unwrap_err().is_timeout());
/// assert_eq!(q.get().unwrap(), "a");
/// assert_eq!(q.try_get().unwrap(), "b");
/// assert!(q.try_get().unwrap_err().is_invalid_state());
/// ```
pub struct Queue<T> {
    h: Handle,
    _t: PhantomData<fn(T) -> T>,
}

super::typed_proxy!(Queue);

impl<T> Queue<T>
where
    T: Serialize + DeserializeOwned,
{
    /// The type tag of a `Queue<T>`.
    pub(crate) fn tag() -> String {
        super::tag("queue", &[std::any::type_name::<T>()])
    }

    pub(crate) fn from_handle(h: Handle) -> Self {
        Queue { h, _t: PhantomData }
    }

    pub(super) fn handle(&self) -> &Handle {
        &self.h
    }

    /// The object's id on its manager (to attach to it with
    /// [`Manager::queue_by_id`]).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let q = m.queue::<u8>(0).unwrap();
    /// let again = m.queue_by_id::<u8>(q.id()).unwrap();
    /// q.put(5).unwrap();
    /// assert_eq!(again.get().unwrap(), 5);
    /// ```
    pub fn id(&self) -> u64 {
        self.h.id
    }

    fn put_wait(&self, item: T, wait: Wait) -> Result<(), ManagerError> {
        self.h.call(&QueueOp::Put(encode(&item)?, wait))
    }

    fn get_wait(&self, wait: Wait) -> Result<T, ManagerError> {
        let b: Vec<u8> = self.h.call(&QueueOp::Get(wait))?;
        decode(&b)
    }

    /// Appends `item`, waiting on the server while the queue is full (Python's
    /// `q.put(x)`).
    ///
    /// # Errors
    /// [`is_shutdown`](ManagerError::is_shutdown) if the manager is gone or shuts
    /// down while this waits; [`is_serialization`](ManagerError::is_serialization) if
    /// `item` does not serialize; an I/O error.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let q = m.queue::<u8>(0).unwrap();
    /// q.put(1).unwrap();
    /// assert_eq!(q.qsize().unwrap(), 1);
    /// ```
    pub fn put(&self, item: T) -> Result<(), ManagerError> {
        self.put_wait(item, Wait::Forever)
    }

    /// Appends `item` if there is room now (Python's `q.put_nowait(x)`).
    ///
    /// # Errors
    /// [`is_invalid_state`](ManagerError::is_invalid_state) if the queue is full
    /// (Python's `queue.Full`); otherwise as [`put`](Self::put).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let q = m.queue::<u8>(1).unwrap();
    /// q.try_put(1).unwrap();
    /// assert!(q.try_put(2).unwrap_err().is_invalid_state());
    /// ```
    pub fn try_put(&self, item: T) -> Result<(), ManagerError> {
        self.put_wait(item, Wait::No)
    }

    /// Appends `item`, waiting at most `timeout` for room (through
    /// [`put_deadline`](Self::put_deadline); a timeout too large for the clock waits
    /// as long as it takes).
    ///
    /// # Errors
    /// [`is_timeout`](ManagerError::is_timeout) if the queue stayed full (Python's
    /// `queue.Full` after `put(x, timeout=t)`); otherwise as [`put`](Self::put).
    ///
    /// ```
    /// use std::time::Duration;
    /// let m = concur::process::Manager::start().unwrap();
    /// let q = m.queue::<u8>(1).unwrap();
    /// q.put_timeout(1, Duration::from_secs(1)).unwrap();
    /// assert!(q.put_timeout(2, Duration::from_millis(20)).unwrap_err().is_timeout());
    /// ```
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), ManagerError> {
        match deadline_after(timeout) {
            Some(d) => self.put_deadline(item, d),
            None => self.put(item),
        }
    }

    /// Appends `item`, waiting for room until `deadline` (measured here; the server
    /// receives what remains of it).
    ///
    /// # Errors
    /// As [`put_timeout`](Self::put_timeout).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let m = concur::process::Manager::start().unwrap();
    /// let q = m.queue::<u8>(1).unwrap();
    /// q.put(1).unwrap();
    /// let e = q.put_deadline(2, Instant::now() + Duration::from_millis(20)).unwrap_err();
    /// assert!(e.is_timeout());
    /// ```
    pub fn put_deadline(&self, item: T, deadline: Instant) -> Result<(), ManagerError> {
        self.put_wait(item, Wait::until(Some(deadline)))
    }

    /// Removes and returns the first item, waiting on the server while the queue is
    /// empty (Python's `q.get()`).
    ///
    /// # Errors
    /// [`is_shutdown`](ManagerError::is_shutdown) if the manager is gone or shuts
    /// down while this waits; [`is_wrong_type`](ManagerError::is_wrong_type) if the
    /// item does not decode as a `T`; an I/O error.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let q = m.queue::<char>(0).unwrap();
    /// q.put('x').unwrap();
    /// assert_eq!(q.get().unwrap(), 'x');
    /// ```
    pub fn get(&self) -> Result<T, ManagerError> {
        self.get_wait(Wait::Forever)
    }

    /// Removes and returns the first item if there is one now (Python's
    /// `q.get_nowait()`).
    ///
    /// # Errors
    /// [`is_invalid_state`](ManagerError::is_invalid_state) if the queue is empty
    /// (Python's `queue.Empty`); otherwise as [`get`](Self::get).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let q = m.queue::<u8>(0).unwrap();
    /// assert!(q.try_get().unwrap_err().is_invalid_state());
    /// ```
    pub fn try_get(&self) -> Result<T, ManagerError> {
        self.get_wait(Wait::No)
    }

    /// Removes and returns the first item, waiting at most `timeout` for one (through
    /// [`get_deadline`](Self::get_deadline); a timeout too large for the clock waits
    /// as long as it takes).
    ///
    /// # Errors
    /// [`is_timeout`](ManagerError::is_timeout) if the queue stayed empty (Python's
    /// `queue.Empty` after `get(timeout=t)`); otherwise as [`get`](Self::get).
    ///
    /// ```
    /// use std::time::Duration;
    /// let m = concur::process::Manager::start().unwrap();
    /// let q = m.queue::<u8>(0).unwrap();
    /// assert!(q.get_timeout(Duration::from_millis(20)).unwrap_err().is_timeout());
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, ManagerError> {
        match deadline_after(timeout) {
            Some(d) => self.get_deadline(d),
            None => self.get(),
        }
    }

    /// Removes and returns the first item, waiting for one until `deadline`.
    ///
    /// # Errors
    /// As [`get_timeout`](Self::get_timeout).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let m = concur::process::Manager::start().unwrap();
    /// let q = m.queue::<u8>(0).unwrap();
    /// q.put(3).unwrap();
    /// assert_eq!(q.get_deadline(Instant::now() + Duration::from_secs(5)).unwrap(), 3);
    /// ```
    pub fn get_deadline(&self, deadline: Instant) -> Result<T, ManagerError> {
        self.get_wait(Wait::until(Some(deadline)))
    }

    /// The number of items now (Python's `q.qsize()`).
    ///
    /// # Errors
    /// [`is_shutdown`](ManagerError::is_shutdown) if the manager is gone; an I/O
    /// error.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let q = m.queue::<u8>(0).unwrap();
    /// q.put(1).unwrap();
    /// q.put(2).unwrap();
    /// assert_eq!(q.qsize().unwrap(), 2);
    /// ```
    pub fn qsize(&self) -> Result<usize, ManagerError> {
        let n: u64 = self.h.call(&QueueOp::Qsize)?;
        Ok(n as usize)
    }

    /// Whether the queue is empty now (Python's `q.empty()`).
    ///
    /// # Errors
    /// As [`qsize`](Self::qsize).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// assert!(m.queue::<u8>(0).unwrap().empty().unwrap());
    /// ```
    pub fn empty(&self) -> Result<bool, ManagerError> {
        self.h.call(&QueueOp::Empty)
    }

    /// Whether the queue is full now (Python's `q.full()`; never for an unbounded
    /// queue).
    ///
    /// # Errors
    /// As [`qsize`](Self::qsize).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let q = m.queue::<u8>(1).unwrap();
    /// q.put(0).unwrap();
    /// assert!(q.full().unwrap());
    /// ```
    pub fn full(&self) -> Result<bool, ManagerError> {
        self.h.call(&QueueOp::Full)
    }

    /// The queue's bound, 0 for unbounded (Python's `q.maxsize`).
    ///
    /// # Errors
    /// As [`qsize`](Self::qsize).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// assert_eq!(m.queue::<u8>(7).unwrap().maxsize().unwrap(), 7);
    /// ```
    pub fn maxsize(&self) -> Result<usize, ManagerError> {
        let n: u64 = self.h.call(&QueueOp::Maxsize)?;
        Ok(n as usize)
    }
}

impl Manager {
    /// A new shared queue holding at most `maxsize` items, 0 for unbounded (Python's
    /// `m.Queue(maxsize)`).
    ///
    /// # Errors
    /// [`is_shutdown`](ManagerError::is_shutdown) if the manager is gone.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let q = m.queue::<u32>(0).unwrap();
    /// q.put(1).unwrap();
    /// assert_eq!(q.get().unwrap(), 1);
    /// ```
    pub fn queue<T>(&self, maxsize: usize) -> Result<Queue<T>, ManagerError>
    where
        T: Serialize + DeserializeOwned,
    {
        Ok(Queue::from_handle(self.create(
            ObjKind::Queue { maxsize },
            Queue::<T>::tag(),
            Vec::new(),
        )?))
    }

    /// A proxy to the existing queue `id` of this manager (made by any client).
    ///
    /// # Errors
    /// [`is_missing`](ManagerError::is_missing) if there is no such object;
    /// [`is_wrong_type`](ManagerError::is_wrong_type) if it is not a `Queue<T>` (a
    /// joinable queue is attached with
    /// [`joinable_queue_by_id`](Manager::joinable_queue_by_id)).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let q = m.queue::<u8>(0).unwrap();
    /// assert!(m.queue_by_id::<u8>(q.id()).is_ok());
    /// assert!(m.queue_by_id::<String>(q.id()).unwrap_err().is_wrong_type());
    /// ```
    pub fn queue_by_id<T>(&self, id: u64) -> Result<Queue<T>, ManagerError>
    where
        T: Serialize + DeserializeOwned,
    {
        Ok(Queue::from_handle(self.attach(id, Queue::<T>::tag())?))
    }
}
