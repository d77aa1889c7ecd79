//! [`Barrier`]: Python's `threading.Barrier` for parties on many machines.
//!
//! Keys (`concur:obj:barrier:{name}:…`):
//!
//! | key | type | what |
//! |---|---|---|
//! | `state` | hash | `parties`, `gen` (the generation filling now), `count` (parties arrived in it), `broken` (why it is broken: `timeout`, `aborted`; empty if not) |
//! | `outcomes` | hash | how each recent generation ended: `passed` or `reset` |
//! | `arrivals`, `arrivals-prev` | hash | arrival id → `gen:index`, for this generation and the one before (a retried arrival finds itself) |
//! | `sig` | stream, trimmed | one entry per change a waiter must see (a pass, a break, a reset) |
//!
//! The state machine is CPython's (`Lib/threading.py`), with generations in place of
//! its draining phase: the last party to arrive ends the generation as `passed` and
//! starts the next one; a waiter whose generation has ended reads its outcome, so a
//! party that is slow to wake never mistakes the next generation for its own. A
//! timeout breaks the barrier for everyone (unless the generation passed first), as
//! `abort` does; `reset` ends a generation with waiters as `reset` (they fail) and
//! clears the broken state.

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use concur_core::sync::{BrokenBarrierError, BrokenKind};
use redis::Script;
use serde::{Deserialize, Serialize};

use super::ctx::{self, Ctx, ObjKeys};
use crate::error::ClusterError;

/// The longest a waiter blocks before it looks again.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// KEYS: state, outcomes, arrivals, arrivals-prev, sig. ARGV: parties, then the
/// script's own.
const PRELUDE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'parties', ARGV[1], 'gen', 0, 'count', 0, 'broken', '')
end
local function signal()
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', '16', '*', 's', '1')
end
local function last()
  local l = redis.call('XREVRANGE', KEYS[5], '+', '-', 'COUNT', 1)
  if l[1] then return l[1][1] end
  return '0-0'
end
local function next_gen(outcome)
  local gen = redis.call('HGET', KEYS[1], 'gen')
  redis.call('HSET', KEYS[2], gen, outcome)
  redis.call('HDEL', KEYS[2], tostring(tonumber(gen) - 64))
  redis.call('HSET', KEYS[1], 'gen', tonumber(gen) + 1, 'count', 0)
  if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('RENAME', KEYS[3], KEYS[4]) end
end
local function outcome(g)
  return redis.call('HGET', KEYS[2], g) or 'reset'
end
";

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{body}"))
}

/// Returns the parties the barrier was made with.
static PARTIES: LazyLock<Script> =
    LazyLock::new(|| script("return tonumber(redis.call('HGET', KEYS[1], 'parties'))"));

/// A party arrives. ARGV 2: arrival id. Returns `{'2', index}` (the last: passed),
/// `{'1', index, gen, last id}` (wait for the others), `{'-1', cause}` (broken).
static ARRIVE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local mine = redis.call('HGET', KEYS[3], ARGV[2]) or redis.call('HGET', KEYS[4], ARGV[2])
if mine then
  local g, idx = string.match(mine, '^(%d+):(%d+)$')
  return {'1', idx, g, '0-0'}
end
local broken = redis.call('HGET', KEYS[1], 'broken')
if broken ~= '' then return {'-1', broken} end
local count = tonumber(redis.call('HGET', KEYS[1], 'count'))
local gen = redis.call('HGET', KEYS[1], 'gen')
redis.call('HSET', KEYS[3], ARGV[2], gen .. ':' .. count)
if count + 1 >= tonumber(redis.call('HGET', KEYS[1], 'parties')) then
  next_gen('passed')
  signal()
  return {'2', tostring(count)}
end
redis.call('HSET', KEYS[1], 'count', count + 1)
return {'1', tostring(count), gen, last()}
",
    )
});

/// Where a waiter of generation ARGV 2 stands: `{'passed'}`, `{'reset'}`,
/// `{'broken', cause}` or `{'wait', last id}`.
static CHECK: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
if tonumber(redis.call('HGET', KEYS[1], 'gen')) > tonumber(ARGV[2]) then return {outcome(ARGV[2])} end
local broken = redis.call('HGET', KEYS[1], 'broken')
if broken ~= '' then return {'broken', broken} end
return {'wait', last()}
",
    )
});

/// Breaks the barrier for `cause` (ARGV 3) if generation ARGV 2 is still filling and
/// not broken. Returns `{'broke'}` (this call broke it), `{'broken', cause}`, or the
/// generation's outcome (`{'passed'}`, `{'reset'}`) if it ended first.
static BREAK: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
if ARGV[2] ~= '' and tonumber(redis.call('HGET', KEYS[1], 'gen')) > tonumber(ARGV[2]) then
  return {outcome(ARGV[2])}
end
local broken = redis.call('HGET', KEYS[1], 'broken')
if broken ~= '' then return {'broken', broken} end
redis.call('HSET', KEYS[1], 'broken', ARGV[3])
signal()
return {'broke'}
",
    )
});

/// Back to the initial state: waiters fail (`reset`), the broken state clears.
static RESET: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
if tonumber(redis.call('HGET', KEYS[1], 'count')) > 0 then next_gen('reset') end
redis.call('HSET', KEYS[1], 'count', 0, 'broken', '')
signal()
return 1
",
    )
});

/// `{count, broken}`.
static STATUS: LazyLock<Script> = LazyLock::new(|| {
    script(
        "return {tonumber(redis.call('HGET', KEYS[1], 'count')), redis.call('HGET', KEYS[1], 'broken')}",
    )
});

fn kind(cause: &str) -> BrokenKind {
    match cause {
        "timeout" => BrokenKind::Timeout,
        "reset" => BrokenKind::Reset,
        _ => BrokenKind::Aborted,
    }
}

fn broken(k: BrokenKind) -> Result<usize, BrokenBarrierError> {
    Err(BrokenBarrierError::new(k))
}

/// A barrier for parties on any machines: Python's `threading.Barrier` (and the
/// process tier's) on Redis, as a cheaply cloneable handle.
///
/// [`wait`](Self::wait) blocks until `parties` calls, from any processes, have
/// arrived, then releases them all; each gets its index in `0..parties` (0 for the
/// first to arrive), and the barrier is ready for the next round. A wait that times
/// out, an [`abort`](Self::abort) (from anywhere) or a [`reset`](Self::reset) while
/// parties wait *breaks* it for them ([`BrokenBarrierError`], whose
/// [`kind`](BrokenBarrierError::kind) says why), and it stays broken for later waits
/// until `reset`. Waiters block on the server and are woken by the last arrival, the
/// break or the reset.
///
/// Each call returns `Result<`*what the thread tier returns*`, ClusterError>`. There
/// is no action (run something in the last party's process after its `wait`
/// returns index `parties - 1`). A party that dies while it waits counts as arrived
/// (as at the process tier's barrier): the others pass without it, or time out.
///
/// ```
/// use concur::cluster::{Barrier, RedisServer};
///
/// let redis = RedisServer::start()?;
/// let b = Barrier::connect(&redis.url(), "start", 2)?;
/// let other = b.clone();
/// let t = std::thread::spawn(move || other.wait());
/// let mine = b.wait()?.expect("not broken");
/// let theirs = t.join().unwrap()?.expect("not broken");
/// assert_eq!(mine + theirs, 1); // 0 and 1
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Barrier {
    inner: Arc<Inner>,
}

struct Inner {
    ctx: Arc<Ctx>,
    name: String,
    keys: [String; 5],
    parties: usize,
    timeout: Option<Duration>,
}

/// Configures a [`Barrier`]: made by [`Barrier::builder`].
///
/// ```
/// use concur::sync::BrokenKind;
/// use std::time::Duration;
/// let redis = concur::cluster::RedisServer::start()?;
/// let b = concur::cluster::Barrier::builder(&redis.url(), "alone", 2)
///     .timeout(Duration::from_millis(20))
///     .connect()?;
/// // Nobody else comes: the default timeout breaks it.
/// assert_eq!(b.wait()?.unwrap_err().kind(), BrokenKind::Timeout);
/// assert!(b.broken()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `connect`"]
pub struct BarrierBuilder {
    url: String,
    name: String,
    parties: usize,
    timeout: Option<Duration>,
}

impl BarrierBuilder {
    /// The timeout of [`Barrier::wait`] (Python's `timeout=`); none by default.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Makes the handle: creates the barrier if it does not exist, or checks that the
    /// one there has as many parties.
    ///
    /// # Errors
    /// [`is_invalid`](ClusterError::is_invalid) for a bad URL or name, no parties, or
    /// a barrier of this name with another number of parties;
    /// [`is_connection`](ClusterError::is_connection) if Redis cannot be reached
    /// within 5 s.
    pub fn connect(self) -> Result<Barrier, ClusterError> {
        if self.parties == 0 {
            return Err(ClusterError::invalid("a barrier needs at least one party"));
        }
        let b = Barrier::open(&self.url, &self.name, self.parties, self.timeout)?;
        let there: usize = b.inner.ctx.call_within(ctx::CONNECT_TIMEOUT, |c, _| {
            b.invocation(&PARTIES).invoke(c)
        })?;
        if there != self.parties {
            return Err(ClusterError::invalid(format!(
                "barrier {:?} exists for {there} parties, not {}",
                self.name, self.parties
            )));
        }
        Ok(b)
    }
}

impl Barrier {
    /// A handle to the barrier `name` for `parties` on the Redis at `url`.
    ///
    /// # Errors
    /// As [`BarrierBuilder::connect`].
    pub fn connect(url: &str, name: &str, parties: usize) -> Result<Barrier, ClusterError> {
        Barrier::builder(url, name, parties).connect()
    }

    /// A builder, to set a default timeout.
    pub fn builder(url: &str, name: &str, parties: usize) -> BarrierBuilder {
        BarrierBuilder {
            url: url.to_owned(),
            name: name.to_owned(),
            parties,
            timeout: None,
        }
    }

    fn open(
        url: &str,
        name: &str,
        parties: usize,
        timeout: Option<Duration>,
    ) -> Result<Barrier, ClusterError> {
        let k = ObjKeys::new("barrier", name)?;
        Ok(Barrier {
            inner: Arc::new(Inner {
                ctx: Ctx::of(url)?,
                name: name.to_owned(),
                keys: ["state", "outcomes", "arrivals", "arrivals-prev", "sig"].map(|p| k.key(p)),
                parties,
                timeout,
            }),
        })
    }

    fn invocation<'s>(&self, s: &'s Script) -> redis::ScriptInvocation<'s> {
        let mut inv = s.prepare_invoke();
        for k in &self.inner.keys {
            inv.key(k);
        }
        inv.arg(self.inner.parties);
        inv
    }

    /// Blocks until every party has arrived (or the builder's default timeout
    /// passed); returns this party's index in `0..parties`.
    ///
    /// # Errors
    /// The outer error if Redis failed; the inner [`BrokenBarrierError`] if the
    /// barrier is or becomes broken (a timeout, this party's or another's;
    /// [`abort`](Self::abort)) or is [`reset`](Self::reset) while this party waits.
    pub fn wait(&self) -> Result<Result<usize, BrokenBarrierError>, ClusterError> {
        self.wait_until(
            self.inner
                .timeout
                .and_then(concur_core::time::deadline_after),
        )
    }

    /// Like [`wait`](Self::wait) with this timeout instead of the default; a timeout
    /// breaks the barrier for everyone, as in Python.
    ///
    /// # Errors
    /// As [`wait`](Self::wait); [`BrokenKind::Timeout`] for the party whose timeout
    /// broke it.
    pub fn wait_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Result<usize, BrokenBarrierError>, ClusterError> {
        self.wait_until(concur_core::time::deadline_after(timeout))
    }

    /// Like [`wait`](Self::wait) until `deadline` at the latest.
    ///
    /// # Errors
    /// As [`wait_timeout`](Self::wait_timeout).
    pub fn wait_deadline(
        &self,
        deadline: Instant,
    ) -> Result<Result<usize, BrokenBarrierError>, ClusterError> {
        self.wait_until(Some(deadline))
    }

    fn wait_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Result<usize, BrokenBarrierError>, ClusterError> {
        let ctx = &self.inner.ctx;
        let arrival = ctx::random_id();
        let r: Vec<String> = ctx.call(|c, _| self.invocation(&ARRIVE).arg(&arrival).invoke(c))?;
        let field = |i: usize| r.get(i).cloned().unwrap_or_default();
        let index: usize = match r.first().map(String::as_str) {
            Some("2") => return Ok(Ok(field(1).parse().map_err(|_| malformed())?)),
            Some("1") => field(1).parse().map_err(|_| malformed())?,
            _ => return Ok(broken(kind(&field(1)))),
        };
        let generation = field(2);
        let mut last = field(3);
        let mut retry = ctx::Retry::default();
        loop {
            let block = ctx::block_for(deadline, MAX_WAIT);
            let woke = ctx.block(block, |c, _| {
                redis::cmd("XREAD")
                    .arg("BLOCK")
                    .arg(block.as_millis() as u64)
                    .arg("STREAMS")
                    .arg(&self.inner.keys[4])
                    .arg(&last)
                    .query::<redis::Value>(c)
            });
            retry.after(woke, deadline)?;
            let s: Vec<String> =
                ctx.call(|c, _| self.invocation(&CHECK).arg(&generation).invoke(c))?;
            match s.first().map(String::as_str) {
                Some("passed") => return Ok(Ok(index)),
                Some("reset") => return Ok(broken(BrokenKind::Reset)),
                Some("broken") => return Ok(broken(kind(s.get(1).map_or("", String::as_str)))),
                _ => {}
            }
            if let Some(l) = s.get(1) {
                last.clone_from(l);
            }
            if concur_core::time::expired(deadline) {
                let b: Vec<String> = ctx.call(|c, _| {
                    self.invocation(&BREAK)
                        .arg(&generation)
                        .arg("timeout")
                        .invoke(c)
                })?;
                return Ok(match b.first().map(String::as_str) {
                    Some("passed") => Ok(index),
                    Some("reset") => broken(BrokenKind::Reset),
                    Some("broken") => broken(kind(b.get(1).map_or("", String::as_str))),
                    _ => broken(BrokenKind::Timeout),
                });
            }
        }
    }

    /// Breaks the barrier: every party waiting, and every later `wait`, fails with
    /// [`BrokenKind::Aborted`] until [`reset`](Self::reset).
    ///
    /// # Errors
    /// If Redis failed.
    pub fn abort(&self) -> Result<(), ClusterError> {
        self.inner.ctx.call(|c, _| {
            self.invocation(&BREAK)
                .arg("")
                .arg("aborted")
                .invoke::<redis::Value>(c)
        })?;
        Ok(())
    }

    /// Returns the barrier to its initial, unbroken state; parties waiting in it fail
    /// with [`BrokenKind::Reset`].
    ///
    /// # Errors
    /// If Redis failed.
    ///
    /// ```
    /// let redis = concur::cluster::RedisServer::start()?;
    /// let b = concur::cluster::Barrier::connect(&redis.url(), "r", 1)?;
    /// b.abort()?;
    /// assert!(b.wait()?.is_err());
    /// b.reset()?;
    /// assert_eq!(b.wait()?, Ok(0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reset(&self) -> Result<(), ClusterError> {
        self.inner
            .ctx
            .call(|c, _| self.invocation(&RESET).invoke::<()>(c))
    }

    fn status(&self) -> Result<(usize, String), ClusterError> {
        self.inner
            .ctx
            .call(|c, _| self.invocation(&STATUS).invoke(c))
    }

    /// The parties waiting for the others now (0 while broken).
    ///
    /// # Errors
    /// If Redis failed.
    pub fn n_waiting(&self) -> Result<usize, ClusterError> {
        let (count, broken) = self.status()?;
        Ok(if broken.is_empty() { count } else { 0 })
    }

    /// Whether the barrier is broken.
    ///
    /// # Errors
    /// If Redis failed.
    pub fn broken(&self) -> Result<bool, ClusterError> {
        Ok(!self.status()?.1.is_empty())
    }

    /// The number of parties needed to pass it.
    pub fn parties(&self) -> usize {
        self.inner.parties
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }
}

fn malformed() -> ClusterError {
    ClusterError::invalid("a barrier script answered with a malformed index")
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("name", &self.inner.name)
            .field("parties", &self.inner.parties)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct Spec {
    url: String,
    name: String,
    parties: usize,
    timeout_ms: Option<u64>,
}

impl Serialize for Barrier {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Spec {
            url: self.inner.ctx.url().to_owned(),
            name: self.inner.name.clone(),
            parties: self.inner.parties,
            timeout_ms: self.inner.timeout.map(|t| t.as_millis() as u64),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Barrier {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spec::deserialize(d)?;
        Barrier::open(
            &s.url,
            &s.name,
            s.parties,
            s.timeout_ms.map(Duration::from_millis),
        )
        .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RedisServer;

    /// An arrival retried with the same arrival id counts once.
    #[test]
    fn an_arrival_retried_counts_once() {
        let redis = RedisServer::start().unwrap();
        let b = Barrier::connect(&redis.url(), "retry", 3).unwrap();
        let mut con = redis::Client::open(redis.url())
            .unwrap()
            .get_connection()
            .unwrap();
        for _ in 0..2 {
            let r: Vec<String> = b.invocation(&ARRIVE).arg("a1").invoke(&mut con).unwrap();
            assert_eq!((r[0].as_str(), r[1].as_str()), ("1", "0"));
        }
        assert_eq!(b.n_waiting().unwrap(), 1);
    }
}
