//! [`Event`]: Python's `threading.Event` on Redis.
//!
//! Keys (`concur:obj:event:{name}:…`): `flag` (a string, present while set) and `sig`
//! (a stream, trimmed to its last entries: one entry per `set` that found the flag
//! clear). A waiter reads the flag and the stream's last id in one script, then blocks
//! on the stream after that id (`XREAD BLOCK`): every waiter is woken by the next
//! entry, and none can miss one (the stream keeps it until the waiter reads).

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use redis::Script;
use serde::{Deserialize, Serialize};

use super::ctx::{self, Ctx, ObjKeys};
use crate::error::ClusterError;

/// The longest a waiter blocks before it looks again.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// Sets the flag; signals the waiters if it was clear. KEYS: flag, sig.
static SET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('SET', KEYS[1], '1', 'NX') then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', '16', '*', 's', '1')
end
return 1
",
    )
});

/// The flag, or the signal stream's last id to wait after. KEYS: flag, sig. Returns
/// `{'1'}` or `{'0', id}`.
static CHECK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then return {'1'} end
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if last[1] then return {'0', last[1][1]} end
return {'0', '0-0'}
",
    )
});

/// An event shared by every process, on any machine, that connects to it by name:
/// Python's `threading.Event` (and the process tier's) on Redis, as a cheaply
/// cloneable handle.
///
/// [`wait`](Self::wait) blocks on the server until the event is set (every waiter is
/// woken by a `set`, none polls); as in Python, it returns `true` once woken by a
/// `set` even if the event was cleared again in between. The four forms of waiting:
/// [`wait`](Self::wait), [`try_wait`](Self::try_wait),
/// [`wait_timeout`](Self::wait_timeout), [`wait_deadline`](Self::wait_deadline).
///
/// ```
/// use concur::cluster::{Event, RedisServer};
/// use std::time::Duration;
///
/// let redis = RedisServer::start()?;
/// let ready = Event::connect(&redis.url(), "ready")?;
/// assert!(!ready.is_set()?);
/// let other = ready.clone();
/// let t = std::thread::spawn(move || other.wait_timeout(Duration::from_secs(10)));
/// ready.set()?;
/// assert!(t.join().unwrap()?);
/// ready.clear()?;
/// assert!(!ready.try_wait()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Event {
    inner: Arc<Inner>,
}

struct Inner {
    ctx: Arc<Ctx>,
    name: String,
    flag: String,
    sig: String,
}

impl Event {
    /// A handle to the event `name` on the Redis at `url` (clear until someone sets
    /// it), checking that Redis answers.
    ///
    /// # Errors
    /// [`is_invalid`](ClusterError::is_invalid) for a bad URL or name;
    /// [`is_connection`](ClusterError::is_connection) if Redis cannot be reached
    /// within 5 s.
    pub fn connect(url: &str, name: &str) -> Result<Event, ClusterError> {
        let e = Event::open(url, name)?;
        e.inner.ctx.call_within(ctx::CONNECT_TIMEOUT, |c, _| {
            redis::cmd("PING").query::<()>(c)
        })?;
        Ok(e)
    }

    fn open(url: &str, name: &str) -> Result<Event, ClusterError> {
        let keys = ObjKeys::new("event", name)?;
        Ok(Event {
            inner: Arc::new(Inner {
                ctx: Ctx::of(url)?,
                name: name.to_owned(),
                flag: keys.key("flag"),
                sig: keys.key("sig"),
            }),
        })
    }

    /// Sets the event and wakes every waiter.
    ///
    /// # Errors
    /// If Redis failed.
    pub fn set(&self) -> Result<(), ClusterError> {
        let i = &*self.inner;
        i.ctx
            .call(|c, _| SET.key(&i.flag).key(&i.sig).invoke::<()>(c))
    }

    /// Clears the event.
    ///
    /// # Errors
    /// If Redis failed.
    pub fn clear(&self) -> Result<(), ClusterError> {
        let i = &*self.inner;
        i.ctx
            .call(|c, _| redis::cmd("DEL").arg(&i.flag).query::<()>(c))
    }

    /// Whether the event is set.
    ///
    /// # Errors
    /// If Redis failed.
    pub fn is_set(&self) -> Result<bool, ClusterError> {
        let i = &*self.inner;
        i.ctx
            .call(|c, _| redis::cmd("EXISTS").arg(&i.flag).query::<bool>(c))
    }

    /// Blocks until the event is set; returns `true`.
    ///
    /// # Errors
    /// If Redis failed (for longer than 30 s of retrying).
    pub fn wait(&self) -> Result<bool, ClusterError> {
        self.wait_until(None)
    }

    /// Whether the event is set, without blocking.
    ///
    /// # Errors
    /// If Redis failed.
    pub fn try_wait(&self) -> Result<bool, ClusterError> {
        self.is_set()
    }

    /// Blocks for at most `timeout`; `false` if the event was not set in time. A
    /// timeout too large to represent waits forever.
    ///
    /// # Errors
    /// If Redis failed.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let redis = concur::cluster::RedisServer::start()?;
    /// let e = concur::cluster::Event::connect(&redis.url(), "never")?;
    /// let start = Instant::now();
    /// assert!(!e.wait_timeout(Duration::from_millis(50))?);
    /// assert!(start.elapsed() >= Duration::from_millis(50));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, ClusterError> {
        self.wait_until(concur_core::time::deadline_after(timeout))
    }

    /// Blocks until `deadline` at the latest; `false` if the event was not set.
    ///
    /// # Errors
    /// If Redis failed.
    pub fn wait_deadline(&self, deadline: Instant) -> Result<bool, ClusterError> {
        self.wait_until(Some(deadline))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<bool, ClusterError> {
        let i = &*self.inner;
        let mut retry = ctx::Retry::default();
        loop {
            let r: Vec<String> = i
                .ctx
                .call(|c, _| CHECK.key(&i.flag).key(&i.sig).invoke(c))?;
            if r.first().map(String::as_str) == Some("1") {
                return Ok(true);
            }
            if concur_core::time::expired(deadline) {
                return Ok(false);
            }
            let last = r.get(1).cloned().unwrap_or_else(|| "0-0".into());
            let block = ctx::block_for(deadline, MAX_WAIT);
            let woke = i.ctx.block(block, |c, _| {
                redis::cmd("XREAD")
                    .arg("BLOCK")
                    .arg(block.as_millis() as u64)
                    .arg("STREAMS")
                    .arg(&i.sig)
                    .arg(&last)
                    .query::<redis::Value>(c)
            });
            match woke {
                Ok(redis::Value::Nil) => retry.ok(),
                Ok(_) => return Ok(true), // a set since the check
                Err(e) => retry.failed(e, deadline)?,
            }
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct Spec {
    url: String,
    name: String,
}

impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Spec {
            url: self.inner.ctx.url().to_owned(),
            name: self.inner.name.clone(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spec::deserialize(d)?;
        Event::open(&s.url, &s.name).map_err(serde::de::Error::custom)
    }
}
