//! [`Semaphore`] and [`BoundedSemaphore`]: counting semaphores whose units are leased
//! like a [`Lock`](super::Lock), so a holder that dies gives its unit back.
//!
//! Keys (`concur:obj:sem:{name}:…`):
//!
//! | key | type | what |
//! |---|---|---|
//! | `state` | hash | `value` (free units), `init` (the initial value), `bounded` (`1` for a `BoundedSemaphore`), `leaked` (units taken by guards given up with `leak`, which only a `release` brings back) |
//! | `holders` | sorted set | the lease id of every unit held by a guard, scored by its expiry (server clock, ms) |
//! | `wake` | list | one wake-up token per free unit (at most 64): a waiter pops one (`BLPOP`) and tries again |
//! | `s:<session>` | string, TTL | the last write of a connection's session (see the module `ctx`) |
//!
//! Every script first gives back the units of lapsed leases (their holders died or
//! were cut off), then keeps the wake list as long as the free count (capped), so a
//! waiter that finds no unit blocks exactly while none is free.

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use concur_core::sync::ReleaseError;
use redis::Script;
use serde::{Deserialize, Serialize};

use super::ctx::{self, Ctx, ObjKeys};
use super::renew::{Held, Lease};
use crate::error::ClusterError;

/// The longest a waiter blocks before it looks again.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// The prelude of every script. KEYS: state, holders, wake (then the session). ARGV:
/// initial value, bounded (`0`/`1`), then the script's own.
const PRELUDE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'value', ARGV[1], 'init', ARGV[1], 'bounded', ARGV[2], 'leaked', 0)
end
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
if #dead > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  redis.call('HINCRBY', KEYS[1], 'value', #dead)
end
local function wake()
  local v = tonumber(redis.call('HGET', KEYS[1], 'value'))
  local want = math.min(v, 64)
  local have = redis.call('LLEN', KEYS[3])
  if have > want then
    if want == 0 then redis.call('DEL', KEYS[3]) else redis.call('LTRIM', KEYS[3], 0, want - 1) end
  else
    for i = have + 1, want do redis.call('LPUSH', KEYS[3], '1') end
  end
end
";

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{body}"))
}

/// Creates the semaphore if missing; returns its `init` and `bounded`.
static CHECK: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
return {redis.call('HGET', KEYS[1], 'init'), redis.call('HGET', KEYS[1], 'bounded')}
",
    )
});

/// Takes a unit. ARGV 3, 4: lease id, lease ms. `{1, value}` taken (also for a retry
/// of the same lease id), `{0, ms}` none free (ms until the first holder's lease ends,
/// -1 if no guard holds one).
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
if redis.call('ZSCORE', KEYS[2], ARGV[3]) then return {1, 0} end
local v = tonumber(redis.call('HGET', KEYS[1], 'value'))
if v > 0 then
  redis.call('HSET', KEYS[1], 'value', v - 1)
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[3])
  wake()
  return {1, v - 1}
end
wake()
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if first[2] then return {0, tonumber(first[2]) - now} end
return {0, -1}
",
    )
});

/// The free units (after giving back lapsed ones).
static VALUE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
wake()
return tonumber(redis.call('HGET', KEYS[1], 'value'))
",
    )
});

/// A guard gives its unit back (`keep` = `0`) or keeps it for good (`leak`, `1`).
/// KEYS 4: session. ARGV 3, 4, 5: lease id, keep, session seq. `{'ok', '1'}` done,
/// `{'ok', '0'}` the lease had lapsed (its unit came back already).
static PUT_BACK: LazyLock<Script> = LazyLock::new(|| {
    script(&format!(
        r"
{}
local r = '0'
if redis.call('ZREM', KEYS[2], ARGV[3]) == 1 then
  r = '1'
  if ARGV[4] == '1' then
    redis.call('HINCRBY', KEYS[1], 'leaked', 1)
  else
    redis.call('HINCRBY', KEYS[1], 'value', 1)
  end
end
wake()
{}
return {{'ok', r}}
",
        ctx::session_check(4, 5),
        ctx::session_record(4, 5, "r"),
    ))
});

/// Python's `release(n)`: brings back `n` units, first those given up with `leak`; a
/// bounded semaphore refuses (`'-1'`, nothing added) to add more than were leaked.
/// KEYS 4: session. ARGV 3, 4: n, session seq. `{'ok', '1' | '-1'}`.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    script(&format!(
        r"
{}
local n = tonumber(ARGV[3])
local leaked = tonumber(redis.call('HGET', KEYS[1], 'leaked'))
local give = math.min(n, leaked)
local r = '1'
if redis.call('HGET', KEYS[1], 'bounded') == '1' and n > give then
  r = '-1'
else
  -- (no HINCRBY by a Lua -0: Redis reads it as '-0', not an integer)
  if give > 0 then redis.call('HINCRBY', KEYS[1], 'leaked', -give) end
  redis.call('HINCRBY', KEYS[1], 'value', n)
end
wake()
{}
return {{'ok', r}}
",
        ctx::session_check(4, 4),
        ctx::session_record(4, 4, "r"),
    ))
});

struct Inner {
    ctx: Arc<Ctx>,
    name: String,
    keys: ObjKeys,
    state: String,
    holders: String,
    wake: String,
    init: u64,
    bounded: bool,
    lease_ms: u64,
}

impl Inner {
    fn open(
        url: &str,
        name: &str,
        init: u64,
        bounded: bool,
        lease_ms: u64,
    ) -> Result<Inner, ClusterError> {
        let keys = ObjKeys::new("sem", name)?;
        Ok(Inner {
            ctx: Ctx::of(url)?,
            name: name.to_owned(),
            state: keys.key("state"),
            holders: keys.key("holders"),
            wake: keys.key("wake"),
            keys,
            init,
            bounded,
            lease_ms,
        })
    }

    fn invocation<'s>(&self, s: &'s Script) -> redis::ScriptInvocation<'s> {
        let mut inv = s.prepare_invoke();
        inv.key(&self.state)
            .key(&self.holders)
            .key(&self.wake)
            .arg(self.init)
            .arg(u8::from(self.bounded));
        inv
    }

    /// Creates it, or checks that the one there has this value and kind.
    fn check(&self) -> Result<(), ClusterError> {
        let (init, bounded): (u64, String) =
            self.ctx.call_within(ctx::CONNECT_TIMEOUT, |c, _| {
                self.invocation(&CHECK).invoke(c)
            })?;
        if init != self.init || (bounded == "1") != self.bounded {
            let kind = |b: bool| if b { "BoundedSemaphore" } else { "Semaphore" };
            return Err(ClusterError::invalid(format!(
                "semaphore {:?} exists as a {} of value {init}, not a {} of value {}",
                self.name,
                kind(bounded == "1"),
                kind(self.bounded),
                self.init
            )));
        }
        Ok(())
    }

    fn acquire_until(
        &self,
        wait: bool,
        deadline: Option<Instant>,
    ) -> Result<Option<Arc<Lease>>, ClusterError> {
        let id = ctx::random_id();
        let mut retry = ctx::Retry::default();
        loop {
            let (taken, ms): (i64, i64) = self.ctx.call(|c, _| {
                self.invocation(&ACQUIRE)
                    .arg(&id)
                    .arg(self.lease_ms)
                    .invoke(c)
            })?;
            if taken == 1 {
                let lease = Lease::new(
                    id,
                    Held::Unit {
                        holders: self.holders.clone(),
                    },
                    self.lease_ms,
                );
                self.ctx.renewer().keep(&lease);
                return Ok(Some(lease));
            }
            if !wait || concur_core::time::expired(deadline) {
                return Ok(None);
            }
            let until_lapse = if ms >= 0 {
                Duration::from_millis(ms as u64 + 5)
            } else {
                MAX_WAIT
            };
            let block = ctx::block_for(deadline, until_lapse.min(MAX_WAIT));
            let woke = self.ctx.block(block, |c, _| {
                redis::cmd("BLPOP")
                    .arg(&self.wake)
                    .arg(ctx::secs(block))
                    .query::<Option<(String, String)>>(c)
            });
            retry.after(woke, deadline)?;
        }
    }

    fn value(&self) -> Result<usize, ClusterError> {
        let v: u64 = self.ctx.call(|c, _| self.invocation(&VALUE).invoke(c))?;
        Ok(v as usize)
    }

    fn put_back(&self, lease: &Lease, keep: bool, window: Duration) -> Result<bool, ClusterError> {
        lease.end();
        let (_, r): (String, String) = self.ctx.call_within(window, |c, s| {
            self.invocation(&PUT_BACK)
                .key(self.keys.session(&s.sid))
                .arg(&lease.id)
                .arg(u8::from(keep))
                .arg(&s.seq)
                .invoke(c)
        })?;
        Ok(r == "1")
    }

    fn release_n(&self, n: usize) -> Result<Result<(), ReleaseError>, ClusterError> {
        if n == 0 {
            return Ok(Ok(()));
        }
        let (_, r): (String, String) = self.ctx.call(|c, s| {
            self.invocation(&RELEASE)
                .key(self.keys.session(&s.sid))
                .arg(n as u64)
                .arg(&s.seq)
                .invoke(c)
        })?;
        Ok(if r == "-1" {
            Err(ReleaseError::TooManyReleases)
        } else {
            Ok(())
        })
    }
}

#[derive(Serialize, Deserialize)]
struct Spec {
    url: String,
    name: String,
    value: u64,
    lease_ms: u64,
}

macro_rules! semaphore {
    ($ty:ident, $builder:ident, $bounded:expr, $doc_name:literal) => {
        #[doc = concat!("Configures a [`", $doc_name, "`]: made by [`", $doc_name, "::builder`].")]
        #[derive(Clone, Debug)]
        #[must_use = "a builder does nothing until `connect`"]
        pub struct $builder {
            url: String,
            name: String,
            value: usize,
            lease: Duration,
        }

        impl $builder {
            /// How long a guard keeps its unit without renewal (default 10 s; 100 ms to
            /// 24 h): a holder that dies or is cut off keeps it this long at most.
            pub fn lease(mut self, lease: Duration) -> Self {
                self.lease = lease;
                self
            }

            #[doc = concat!("Makes the handle: creates the ", $doc_name, " with its value if it does not exist yet, or checks that the one there has this value and kind.")]
            ///
            /// # Errors
            /// [`is_invalid`](ClusterError::is_invalid) for a bad URL, name or lease,
            /// or a semaphore of this name with another value or kind;
            /// [`is_connection`](ClusterError::is_connection) if Redis cannot be
            /// reached within 5 s.
            pub fn connect(self) -> Result<$ty, ClusterError> {
                let lease = ctx::check_lease("semaphore", self.lease)?;
                let inner = Inner::open(&self.url, &self.name, self.value as u64, $bounded, lease)?;
                inner.check()?;
                Ok($ty { inner: Arc::new(inner) })
            }
        }

        impl $ty {
            #[doc = concat!("A handle to the ", $doc_name, " `name` on the Redis at `url`, made with `value` units if it does not exist (lease 10 s).")]
            ///
            /// # Errors
            #[doc = concat!("As [`", stringify!($builder), "::connect`].")]
            pub fn connect(url: &str, name: &str, value: usize) -> Result<$ty, ClusterError> {
                $ty::builder(url, name, value).connect()
            }

            /// A builder, to set the lease.
            pub fn builder(url: &str, name: &str, value: usize) -> $builder {
                $builder {
                    url: url.to_owned(),
                    name: name.to_owned(),
                    value,
                    lease: Duration::from_secs(10),
                }
            }

            /// Blocks until a unit is free and takes it; the guard gives it back.
            ///
            /// # Errors
            /// If Redis failed (nothing is taken then).
            pub fn acquire(&self) -> Result<SemaphoreGuard<'_>, ClusterError> {
                let lease = self.inner.acquire_until(true, None)?.expect("an unbounded wait ends with a unit");
                Ok(SemaphoreGuard { inner: &self.inner, lease, done: false })
            }

            /// Takes a unit if one is free right now (`None` if not).
            ///
            /// # Errors
            /// If Redis failed.
            pub fn try_acquire(&self) -> Result<Option<SemaphoreGuard<'_>>, ClusterError> {
                self.acquire_until(false, None)
            }

            /// Blocks for at most `timeout` (`None` if no unit came free in time). A
            /// timeout too large to represent waits forever.
            ///
            /// # Errors
            /// If Redis failed.
            pub fn acquire_timeout(&self, timeout: Duration) -> Result<Option<SemaphoreGuard<'_>>, ClusterError> {
                self.acquire_until(true, concur_core::time::deadline_after(timeout))
            }

            /// Blocks until `deadline` at the latest.
            ///
            /// # Errors
            /// If Redis failed.
            pub fn acquire_deadline(&self, deadline: Instant) -> Result<Option<SemaphoreGuard<'_>>, ClusterError> {
                self.acquire_until(true, Some(deadline))
            }

            fn acquire_until(&self, wait: bool, deadline: Option<Instant>) -> Result<Option<SemaphoreGuard<'_>>, ClusterError> {
                Ok(self.inner.acquire_until(wait, deadline)?.map(|lease| SemaphoreGuard {
                    inner: &self.inner,
                    lease,
                    done: false,
                }))
            }

            /// The free units right now (after taking back those of lapsed leases).
            ///
            /// # Errors
            /// If Redis failed.
            pub fn value(&self) -> Result<usize, ClusterError> {
                self.inner.value()
            }

            /// The value it was made with.
            pub fn initial_value(&self) -> usize {
                self.inner.init as usize
            }

            /// Its name.
            pub fn name(&self) -> &str {
                &self.inner.name
            }
        }

        impl Clone for $ty {
            fn clone(&self) -> Self {
                $ty { inner: self.inner.clone() }
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct($doc_name)
                    .field("name", &self.inner.name)
                    .field("initial_value", &self.inner.init)
                    .finish_non_exhaustive()
            }
        }

        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                Spec {
                    url: self.inner.ctx.url().to_owned(),
                    name: self.inner.name.clone(),
                    value: self.inner.init,
                    lease_ms: self.inner.lease_ms,
                }
                .serialize(s)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = Spec::deserialize(d)?;
                let inner = Inner::open(&s.url, &s.name, s.value, $bounded, s.lease_ms)
                    .map_err(serde::de::Error::custom)?;
                Ok($ty { inner: Arc::new(inner) })
            }
        }
    };
}

/// A counting semaphore shared by every process, on any machine, that connects to it
/// by name: Python's `threading.Semaphore` (and the process tier's) on Redis.
///
/// [`acquire`](Self::acquire) takes a unit (blocking while none is free, woken by a
/// release) and returns a guard that gives it back. A unit held by a guard is
/// *leased* like a [`Lock`](super::Lock): renewed by this process while the guard
/// lives, given back when its holder dies or is cut off and the lease lapses. A guard
/// given up with [`SemaphoreGuard::leak`] keeps its unit for good (Python style: no
/// lease); [`release`](Self::release), from any process, brings such units back, or
/// adds units beyond the initial value when none were leaked (as Python's does).
///
/// ```
/// use concur::cluster::{RedisServer, Semaphore};
///
/// let redis = RedisServer::start()?;
/// let slots = Semaphore::connect(&redis.url(), "gpu", 2)?;
/// let a = slots.acquire()?;
/// let _b = slots.acquire()?;
/// assert!(slots.try_acquire()?.is_none());
/// drop(a);
/// assert_eq!(slots.value()?, 1);
/// slots.release()?; // Python style: one more unit
/// assert_eq!(slots.value()?, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Semaphore {
    inner: Arc<Inner>,
}

semaphore!(Semaphore, SemaphoreBuilder, false, "Semaphore");

impl Semaphore {
    /// Brings back one unit given up with [`SemaphoreGuard::leak`], or (none being
    /// leaked) adds one: Python's `release()`. Wakes a waiter.
    ///
    /// # Errors
    /// If Redis failed.
    pub fn release(&self) -> Result<(), ClusterError> {
        self.release_n(1)
    }

    /// Python's `release(n)`.
    ///
    /// # Errors
    /// If Redis failed.
    pub fn release_n(&self, n: usize) -> Result<(), ClusterError> {
        self.inner.release_n(n).map(|_| ())
    }
}

/// A semaphore that never rises above its initial value: Python's
/// `threading.BoundedSemaphore` on Redis. Units held by guards come back with their
/// guards (or their leases); [`release`](Self::release) only brings back units given
/// up with [`SemaphoreGuard::leak`], and refuses, with
/// [`ReleaseError::TooManyReleases`], to add any other.
///
/// ```
/// use concur::cluster::{BoundedSemaphore, RedisServer};
/// use concur::sync::ReleaseError;
///
/// let redis = RedisServer::start()?;
/// let s = BoundedSemaphore::connect(&redis.url(), "one", 1)?;
/// s.acquire()?.leak()?;
/// assert_eq!(s.release()?, Ok(()));
/// assert_eq!(s.release()?, Err(ReleaseError::TooManyReleases));
/// assert_eq!(s.value()?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct BoundedSemaphore {
    inner: Arc<Inner>,
}

semaphore!(
    BoundedSemaphore,
    BoundedSemaphoreBuilder,
    true,
    "BoundedSemaphore"
);

impl BoundedSemaphore {
    /// Brings back one unit given up with [`SemaphoreGuard::leak`]. Wakes a waiter.
    ///
    /// # Errors
    /// The outer error if Redis failed; the inner
    /// [`ReleaseError::TooManyReleases`] if no leaked unit is out (nothing changes).
    pub fn release(&self) -> Result<Result<(), ReleaseError>, ClusterError> {
        self.release_n(1)
    }

    /// Brings back `n` leaked units at once.
    ///
    /// # Errors
    /// As [`release`](Self::release), if fewer than `n` are out.
    pub fn release_n(&self, n: usize) -> Result<Result<(), ReleaseError>, ClusterError> {
        self.inner.release_n(n)
    }
}

/// A unit of a [`Semaphore`] or [`BoundedSemaphore`], leased: renewed while the guard
/// lives, given back when it is dropped (a drop that cannot reach Redis gives up after
/// 2 s; the lease then lapses).
#[must_use = "the unit is given back as soon as the guard is dropped"]
pub struct SemaphoreGuard<'a> {
    inner: &'a Inner,
    lease: Arc<Lease>,
    done: bool,
}

impl SemaphoreGuard<'_> {
    /// Gives the unit back. `Ok(false)` if its lease had lapsed (the unit came back
    /// then, and another holder may have used it).
    ///
    /// # Errors
    /// If Redis failed (the unit comes back when its lease lapses).
    pub fn release(mut self) -> Result<bool, ClusterError> {
        self.done = true;
        self.inner.put_back(&self.lease, false, ctx::RETRY_FOR)
    }

    /// Keeps the unit for good, without a lease (Python style): a later `release`
    /// from any process brings it back; if this process dies, it stays taken.
    /// `Ok(false)` if the lease had lapsed (the unit is not this guard's to keep).
    ///
    /// # Errors
    /// If Redis failed (the unit comes back when its lease lapses).
    pub fn leak(mut self) -> Result<bool, ClusterError> {
        self.done = true;
        self.inner.put_back(&self.lease, true, ctx::RETRY_FOR)
    }

    /// True if a renewal found the lease lapsed.
    pub fn is_lost(&self) -> bool {
        self.lease.is_lost()
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        if !self.done
            && let Err(e) = self.inner.put_back(&self.lease, false, ctx::DROP_RETRY_FOR)
        {
            tracing::warn!(error = %e, semaphore = %self.inner.name, "concur semaphore: release failed; the lease will lapse");
        }
    }
}

impl fmt::Debug for SemaphoreGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphoreGuard")
            .field("semaphore", &self.inner.name)
            .field("lost", &self.is_lost())
            .finish()
    }
}
