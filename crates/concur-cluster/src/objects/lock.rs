//! [`Lock`]: a lease on Redis with a fencing token, the process tier's robust `Lock`
//! across machines.
//!
//! Keys (`concur:obj:lock:{name}:…`):
//!
//! | key | type | what |
//! |---|---|---|
//! | `owner` | string, TTL = lease | the holder's lease id (random per acquisition) |
//! | `state` | hash | `token` (the last fencing token), `holder` (the lease id of the last acquisition not released: present while held, and after a holder's lease lapsed), `released` (the last lease id released) |
//! | `wake` | list | at most one wake-up token, pushed by a release, popped (`BLPOP`) by one waiter |
//!
//! Learned from: Redlock and the single-instance `SET NX PX` lock of the Redis docs
//! (a random value per acquisition, so that only its holder can release or renew it);
//! Kleppmann, "How to do distributed locking" (2016): a lease alone is unsafe, since a
//! holder can be paused past its lease and still act, so every acquisition gets a
//! *fencing token*, strictly increasing, which the protected resource checks;
//! Redisson's `RLock` (a watchdog renewing the lease, waiters woken by the release
//! instead of polling); Dask's distributed `Lock` (whose leases may be overbooked:
//! here the owner key is the single source of truth, set only by a script that saw it
//! free).

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use concur_process::sync::{AcquireResult, OwnerDied, TryAcquireError, TryAcquireResult};
use redis::Script;
use serde::{Deserialize, Serialize};

use super::ctx::{self, Ctx, ObjKeys, lock};
use super::renew::{Held, Lease};
use crate::error::ClusterError;

/// The locks held by this process's threads: (URL, owner key, thread). A thread that
/// asks again for a lock it holds would wait for itself forever (its own renewer keeps
/// the lease): `acquire` panics instead, the other forms report `WouldBlock`, as the
/// process tier's `Lock` does.
static HELD: LazyLock<Mutex<HashSet<(String, String, ThreadId)>>> =
    LazyLock::new(|| Mutex::new(HashSet::new()));

fn held_here(i: &Inner, thread: ThreadId) -> (String, String, ThreadId) {
    (i.ctx.url().to_owned(), i.owner.clone(), thread)
}

/// The longest a waiter blocks before it looks at the lock again (it is woken sooner
/// by a release, or when the holder's lease ends).
const MAX_WAIT: Duration = Duration::from_secs(30);

/// Takes the lock if free. KEYS: owner, state, wake. ARGV: lease id, lease ms.
/// Returns `{'1', token, died}` (taken; `died` is `'1'` if the previous holder's lease
/// lapsed while it held the lock) or `{'0', pttl}` (held; the owner key's time left).
/// Run again with the same lease id (a retry after a lost reply), it answers as the
/// first time.
///
/// The token is the last one plus one, and never below the server's clock in
/// microseconds: a Redis that lost its data (restarted without persistence) still
/// hands out tokens above every earlier one, as long as its clock does not go back.
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  return {'1', redis.call('HGET', KEYS[2], 'token'), redis.call('HGET', KEYS[2], 'died') or '0'}
end
if cur then
  return {'0', tostring(redis.call('PTTL', KEYS[1]))}
end
local died = '0'
local h = redis.call('HGET', KEYS[2], 'holder')
if h and h ~= '' and h ~= ARGV[1] then died = '1' end
local t = redis.call('TIME')
local floor = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = tonumber(redis.call('HGET', KEYS[2], 'token') or '0')
local tok = string.format('%.0f', math.max(last + 1, floor))
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[2], 'token', tok, 'holder', ARGV[1], 'died', died)
redis.call('DEL', KEYS[3])
return {'1', tok, died}
",
    )
});

/// Releases the lock held under a lease id. KEYS: owner, state, wake. ARGV: lease id.
/// Returns 1 (released), 2 (the lease had lapsed but nobody took the lock since: it is
/// free now), 3 (released already: a retry) or 0 (the lease lapsed and another holder
/// took the lock).
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local function free()
  redis.call('HDEL', KEYS[2], 'holder')
  redis.call('HSET', KEYS[2], 'released', ARGV[1])
  redis.call('DEL', KEYS[3])
  redis.call('LPUSH', KEYS[3], '1')
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  free()
  return 1
end
if redis.call('HGET', KEYS[2], 'released') == ARGV[1] then return 3 end
if redis.call('HGET', KEYS[2], 'holder') == ARGV[1] then
  free()
  return 2
end
return 0
",
    )
});

/// A lock shared by every process, on any machine, that connects to it by name: the
/// process tier's robust [`Lock`](concur_process::sync::Lock) on Redis, as a cheaply
/// cloneable handle.
///
/// Holding it is a **lease**: the owner key expires after the lease (10 s unless
/// [`LockBuilder::lease`] says otherwise), and a thread of this process renews it
/// every third of the lease while the guard lives, so a long critical section keeps
/// it and a holder that dies, is stopped or is cut off loses it when its lease lapses.
/// The next acquirer then gets it with [`OwnerDied`] (the guard inside), as from a
/// process-shared lock whose owner died.
///
/// Every acquisition carries a **fencing token** ([`LockGuard::fencing_token`]),
/// strictly increasing per lock. A holder that was paused past its lease does not know
/// it lost the lock; a resource that remembers the highest token it has seen and
/// refuses writes carrying a lower one is safe against it (Kleppmann 2016). The lock
/// alone is not.
///
/// Acquiring comes in the four forms of every concur lock; each returns
/// `Result<`*what the process tier returns*`, ClusterError>`: the outer error is
/// Redis failing (after retrying through transient failures for 30 s), the inner
/// result is [`AcquireResult`] or [`TryAcquireResult`]. Waiters block on the server
/// (`BLPOP` on the lock's wake list, for as long as the holder's lease has left), are
/// woken by the release, and look again when the lease ends; the lock is not fair
/// (a newcomer may take it before a woken waiter).
///
/// A handle serializes to its URL, name and lease: pass it to a
/// [`Process`](concur_process::Process) or a cluster task as an argument.
///
/// ```
/// use concur::cluster::{Lock, RedisServer};
/// use concur::process::sync::OwnerDied;
///
/// let redis = RedisServer::start()?;
/// let lock = Lock::connect(&redis.url(), "ledger")?;
/// let g = lock.acquire()?.unwrap_or_else(OwnerDied::into_inner);
/// assert!(lock.locked()?);
/// assert!(lock.try_acquire()?.is_err()); // held (by anyone, this thread included)
/// let first = g.fencing_token();
/// drop(g);
/// let g = lock.try_acquire()?.expect("free again");
/// assert!(g.fencing_token() > first);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Lock {
    inner: Arc<Inner>,
}

struct Inner {
    ctx: Arc<Ctx>,
    name: String,
    owner: String,
    state: String,
    wake: String,
    lease_ms: u64,
}

/// Configures a [`Lock`]: made by [`Lock::builder`].
///
/// ```
/// use std::time::Duration;
/// let redis = concur::cluster::RedisServer::start()?;
/// let lock = concur::cluster::Lock::builder(&redis.url(), "short")
///     .lease(Duration::from_secs(2))
///     .connect()?;
/// assert_eq!(lock.lease(), Duration::from_secs(2));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `connect`"]
pub struct LockBuilder {
    url: String,
    name: String,
    lease: Duration,
}

impl LockBuilder {
    /// How long a holder keeps the lock without renewing it (default 10 s; 100 ms to
    /// 24 h). A holder that dies or is cut off keeps others out this long at most.
    /// Every handle of one lock should use the same lease.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Makes the handle and checks that Redis answers.
    ///
    /// # Errors
    /// [`is_invalid`](ClusterError::is_invalid) for a bad URL, name or lease;
    /// [`is_connection`](ClusterError::is_connection) if Redis cannot be reached
    /// within 5 s; [`is_auth_failed`](ClusterError::is_auth_failed).
    pub fn connect(self) -> Result<Lock, ClusterError> {
        let lock = Lock::open(&self.url, &self.name, ctx::check_lease("lock", self.lease)?)?;
        lock.inner.ctx.call_within(ctx::CONNECT_TIMEOUT, |c, _| {
            redis::cmd("PING").query::<()>(c)
        })?;
        Ok(lock)
    }
}

impl Lock {
    /// A handle to the lock `name` on the Redis at `url` (made on first use), with the
    /// default lease of 10 s.
    ///
    /// # Errors
    /// As [`LockBuilder::connect`].
    ///
    /// ```
    /// let redis = concur::cluster::RedisServer::start()?;
    /// let lock = concur::cluster::Lock::connect(&redis.url(), "jobs")?;
    /// assert_eq!(lock.name(), "jobs");
    /// assert!(concur::cluster::Lock::connect(&redis.url(), "no spaces").unwrap_err().is_invalid());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect(url: &str, name: &str) -> Result<Lock, ClusterError> {
        Lock::builder(url, name).connect()
    }

    /// A builder, to set the lease.
    pub fn builder(url: &str, name: &str) -> LockBuilder {
        LockBuilder {
            url: url.to_owned(),
            name: name.to_owned(),
            lease: Duration::from_secs(10),
        }
    }

    fn open(url: &str, name: &str, lease_ms: u64) -> Result<Lock, ClusterError> {
        let keys = ObjKeys::new("lock", name)?;
        Ok(Lock {
            inner: Arc::new(Inner {
                ctx: Ctx::of(url)?,
                name: name.to_owned(),
                owner: keys.key("owner"),
                state: keys.key("state"),
                wake: keys.key("wake"),
                lease_ms,
            }),
        })
    }

    /// Blocks until the lock is acquired; returns the guard that releases it.
    ///
    /// # Errors
    /// The outer [`ClusterError`] if Redis failed (the lock is then not held). The
    /// inner [`OwnerDied`] (holding the guard: the lock *is* acquired) if the previous
    /// holder's lease lapsed while it held the lock: it died, was stopped or was cut
    /// off, and what the lock protects may be half-updated.
    ///
    /// ```
    /// let redis = concur::cluster::RedisServer::start()?;
    /// let lock = concur::cluster::Lock::connect(&redis.url(), "a")?;
    /// let g = lock.acquire()?.expect("nobody died holding it");
    /// drop(g);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Panics
    /// If the calling thread holds this lock already: waiting would never end.
    #[track_caller]
    pub fn acquire(&self) -> Result<AcquireResult<LockGuard<'_>>, ClusterError> {
        if lock(&HELD).contains(&held_here(&self.inner, std::thread::current().id())) {
            panic!(
                "deadlock: the calling thread already holds the cluster Lock {:?} \
                 (it is not reentrant)",
                self.inner.name
            );
        }
        Ok(match self.acquire_until(true, None)? {
            Ok(g) => Ok(g),
            Err(TryAcquireError::OwnerDied(e)) => Err(e),
            Err(TryAcquireError::WouldBlock) => unreachable!("an unbounded wait ends acquired"),
        })
    }

    /// Acquires the lock if it is free right now.
    ///
    /// # Errors
    /// As [`acquire`](Self::acquire), with [`TryAcquireError::WouldBlock`] inside if it
    /// is held (by anyone, this very thread included: a cluster lock is not reentrant).
    ///
    /// ```
    /// let redis = concur::cluster::RedisServer::start()?;
    /// let lock = concur::cluster::Lock::connect(&redis.url(), "b")?;
    /// let _g = lock.try_acquire()?.unwrap();
    /// assert!(lock.try_acquire()?.is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_acquire(&self) -> Result<TryAcquireResult<LockGuard<'_>>, ClusterError> {
        self.acquire_until(false, None)
    }

    /// Blocks for at most `timeout`. A timeout too large to represent waits forever.
    ///
    /// # Errors
    /// As [`try_acquire`](Self::try_acquire), `WouldBlock` meaning "not within the
    /// timeout".
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let redis = concur::cluster::RedisServer::start()?;
    /// let lock = concur::cluster::Lock::connect(&redis.url(), "c")?;
    /// let _g = lock.acquire()?.unwrap();
    /// let start = Instant::now();
    /// assert!(lock.acquire_timeout(Duration::from_millis(50))?.is_err());
    /// assert!(start.elapsed() >= Duration::from_millis(50));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> Result<TryAcquireResult<LockGuard<'_>>, ClusterError> {
        match concur_core::time::deadline_after(timeout) {
            Some(d) => self.acquire_until(true, Some(d)),
            None => self
                .acquire()
                .map(|r| r.map_err(TryAcquireError::OwnerDied)),
        }
    }

    /// Blocks until `deadline` at the latest.
    ///
    /// # Errors
    /// As [`acquire_timeout`](Self::acquire_timeout).
    pub fn acquire_deadline(
        &self,
        deadline: Instant,
    ) -> Result<TryAcquireResult<LockGuard<'_>>, ClusterError> {
        self.acquire_until(true, Some(deadline))
    }

    fn acquire_until(
        &self,
        wait: bool,
        deadline: Option<Instant>,
    ) -> Result<TryAcquireResult<LockGuard<'_>>, ClusterError> {
        let i = &*self.inner;
        let me = std::thread::current().id();
        if lock(&HELD).contains(&held_here(i, me)) {
            // Held by this very thread: it cannot become free before the deadline.
            if wait && let Some(d) = deadline {
                std::thread::sleep(d.saturating_duration_since(Instant::now()));
            }
            return Ok(Err(TryAcquireError::WouldBlock));
        }
        let id = ctx::random_id();
        let mut retry = ctx::Retry::default();
        loop {
            let r: Vec<String> = i.ctx.call(|c, _| {
                ACQUIRE
                    .key(&i.owner)
                    .key(&i.state)
                    .key(&i.wake)
                    .arg(&id)
                    .arg(i.lease_ms)
                    .invoke(c)
            })?;
            if r.first().map(String::as_str) == Some("1") {
                let token = r.get(1).and_then(|t| t.parse().ok()).ok_or_else(|| {
                    ClusterError::invalid(format!("lock {:?}: a malformed fencing token", i.name))
                })?;
                let died = r.get(2).map(String::as_str) == Some("1");
                let lease = Lease::new(
                    id,
                    Held::Owner {
                        key: i.owner.clone(),
                    },
                    i.lease_ms,
                );
                i.ctx.renewer().keep(&lease);
                lock(&HELD).insert(held_here(i, me));
                let g = LockGuard {
                    lock: self,
                    lease,
                    token,
                    thread: me,
                    done: false,
                };
                tracing::trace!(lock = %i.name, token, died, "acquired");
                return Ok(if died {
                    Err(TryAcquireError::OwnerDied(OwnerDied::new(g)))
                } else {
                    Ok(g)
                });
            }
            if !wait || concur_core::time::expired(deadline) {
                return Ok(Err(TryAcquireError::WouldBlock));
            }
            // Held: wait for a release, or for the holder's lease to end.
            let pttl: i64 = r.get(1).and_then(|t| t.parse().ok()).unwrap_or(-1);
            let until_lapse = match pttl {
                -2 => continue, // gone in between
                p if p >= 0 => Duration::from_millis(p as u64 + 5),
                _ => MAX_WAIT,
            };
            let block = ctx::block_for(deadline, until_lapse.min(MAX_WAIT));
            let woke = i.ctx.block(block, |c, _| {
                redis::cmd("BLPOP")
                    .arg(&i.wake)
                    .arg(ctx::secs(block))
                    .query::<Option<(String, String)>>(c)
            });
            retry.after(woke, deadline)?;
        }
    }

    /// Whether the lock is held at this instant, by anyone (a holder whose lease
    /// lapsed does not hold it).
    ///
    /// # Errors
    /// If Redis failed.
    pub fn locked(&self) -> Result<bool, ClusterError> {
        let i = &*self.inner;
        i.ctx
            .call(|c, _| redis::cmd("EXISTS").arg(&i.owner).query::<bool>(c))
    }

    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The lease of this handle's acquisitions.
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.inner.lease_ms)
    }

    /// True if both handles name the same lock on the same Redis.
    ///
    /// ```
    /// let redis = concur::cluster::RedisServer::start()?;
    /// let a = concur::cluster::Lock::connect(&redis.url(), "x")?;
    /// assert!(a.same(&a.clone()));
    /// assert!(!a.same(&concur::cluster::Lock::connect(&redis.url(), "y")?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn same(&self, other: &Lock) -> bool {
        self.inner.ctx.url() == other.inner.ctx.url() && self.inner.owner == other.inner.owner
    }

    fn release_lease(
        &self,
        lease: &Lease,
        thread: ThreadId,
        window: Duration,
    ) -> Result<bool, ClusterError> {
        lease.end();
        lock(&HELD).remove(&held_here(&self.inner, thread));
        let i = &*self.inner;
        let n: i64 = i.ctx.call_within(window, |c, _| {
            RELEASE
                .key(&i.owner)
                .key(&i.state)
                .key(&i.wake)
                .arg(&lease.id)
                .invoke(c)
        })?;
        Ok(n != 0)
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("name", &self.inner.name)
            .field("lease_ms", &self.inner.lease_ms)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct Spec {
    url: String,
    name: String,
    lease_ms: u64,
}

impl Serialize for Lock {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Spec {
            url: self.inner.ctx.url().to_owned(),
            name: self.inner.name.clone(),
            lease_ms: self.inner.lease_ms,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Lock {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spec::deserialize(d)?;
        Lock::open(&s.url, &s.name, s.lease_ms).map_err(serde::de::Error::custom)
    }
}

/// A held [`Lock`]: renewed while it lives, released when dropped (or by
/// [`release`](Self::release), which reports whether the lease held to the end). A
/// drop that cannot reach Redis gives up after 2 s (logged); the lease then lapses.
///
/// ```
/// let redis = concur::cluster::RedisServer::start()?;
/// let lock = concur::cluster::Lock::connect(&redis.url(), "guarded")?;
/// let g = lock.acquire()?.unwrap();
/// assert!(!g.is_lost());
/// assert!(g.release()?, "held to the end");
/// assert!(!lock.locked()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
    lease: Arc<Lease>,
    token: u64,
    /// The thread that acquired it (which may not acquire it again meanwhile).
    thread: ThreadId,
    done: bool,
}

impl LockGuard<'_> {
    /// This acquisition's fencing token: higher than every earlier acquisition's of
    /// this lock. Send it with every write to what the lock protects, and have that
    /// refuse a token lower than one it has seen.
    pub fn fencing_token(&self) -> u64 {
        self.token
    }

    /// True if a renewal found the lease lapsed: this guard no longer holds the lock
    /// (another may). Checked every third of the lease; `false` does not promise the
    /// lease is still held at this instant (only a fencing token check can).
    pub fn is_lost(&self) -> bool {
        self.lease.is_lost()
    }

    /// The lock this guard holds.
    pub fn lock(&self) -> &Lock {
        self.lock
    }

    /// Releases the lock. `Ok(true)` if nobody else could have held it since this
    /// acquisition; `Ok(false)` if the lease lapsed and another holder took it (this
    /// critical section was not exclusive: the fencing token is what tells the writes
    /// apart).
    ///
    /// # Errors
    /// If Redis failed: the lock stays held until the lease lapses (the next acquirer
    /// is then told [`OwnerDied`]).
    pub fn release(mut self) -> Result<bool, ClusterError> {
        self.done = true;
        self.lock
            .release_lease(&self.lease, self.thread, ctx::RETRY_FOR)
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        if !self.done
            && let Err(e) = self
                .lock
                .release_lease(&self.lease, self.thread, ctx::DROP_RETRY_FOR)
        {
            tracing::warn!(error = %e, lock = %self.lock.inner.name, "concur lock: release failed; the lease will lapse");
        }
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("lock", &self.lock.inner.name)
            .field("fencing_token", &self.token)
            .field("lost", &self.is_lost())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RedisServer;

    /// An acquisition or a release retried with the same lease id answers as the
    /// first run: the same token; "released".
    #[test]
    fn acquire_and_release_are_idempotent_by_lease_id() {
        let redis = RedisServer::start().unwrap();
        let lock = Lock::connect(&redis.url(), "retry").unwrap();
        let i = &*lock.inner;
        let mut con = redis::Client::open(redis.url())
            .unwrap()
            .get_connection()
            .unwrap();
        let mut acquire = || -> Vec<String> {
            ACQUIRE
                .key(&i.owner)
                .key(&i.state)
                .key(&i.wake)
                .arg("lease-1")
                .arg(10_000)
                .invoke(&mut con)
                .unwrap()
        };
        let first = acquire();
        assert_eq!(first[0], "1");
        assert_eq!(acquire(), first, "the retry gets the same token");
        let mut release = || -> i64 {
            RELEASE
                .key(&i.owner)
                .key(&i.state)
                .key(&i.wake)
                .arg("lease-1")
                .invoke(&mut con)
                .unwrap()
        };
        assert_eq!(release(), 1);
        assert_eq!(release(), 3, "a retried release is known as done");
        assert!(!lock.locked().unwrap());
    }
}
