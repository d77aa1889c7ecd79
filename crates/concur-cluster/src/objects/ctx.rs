//! What every shared object stands on: the objects' names and keys, one connection
//! context per Redis URL in a process (a small pool of connections and the lease
//! renewer), calls retried through transient failures, and the write sessions that
//! make those retries safe.
//!
//! **Retries never apply a write twice.** A call that fails with a transient error (a
//! broken connection, `LOADING` after a restart) is retried on a fresh connection; the
//! write may have happened before the reply was lost. Every write is therefore either
//! idempotent by construction (keyed by a lease id, an entry id or an arrival id, so a
//! second run sees the first and answers as it did), or runs under a *session*: each
//! pooled connection has a random session id and counts its calls; a write script
//! records the call's number (and its reply) under the session's key in the same
//! script, and a retry that finds its number recorded returns the recorded reply
//! without writing again (the client-id and sequence-number scheme of Kafka's
//! idempotent producer and of Raft's client sessions). Session keys expire after
//! [`SESSION_TTL`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use redis::{Connection, RedisResult};

use super::renew::Renewer;
use crate::conn::{self, Backoff, Conn};
pub(crate) use crate::conn::{CONNECT_TIMEOUT, lock};
use crate::error::ClusterError;

/// How long a call keeps retrying through transient failures before it gives up with
/// a connection error.
pub(crate) const RETRY_FOR: Duration = Duration::from_secs(30);

/// How long a guard's drop keeps retrying its release (the lease lapses anyway if the
/// release never arrives: a drop should not hang on an unreachable Redis).
pub(crate) const DROP_RETRY_FOR: Duration = Duration::from_secs(2);

/// How long a session's record of its last write is kept (a retry comes within
/// [`RETRY_FOR`]).
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(120);

/// The longest object name accepted.
pub(crate) const MAX_NAME: usize = 200;

/// Connections kept idle per context.
const MAX_IDLE: usize = 16;

/// The keys of one object: `concur:obj:<kind>:{<name>}:<part>`. The braces make the
/// name a hash tag, so that every key of one object lives in one slot of a Redis
/// Cluster and each script's keys are co-located.
#[derive(Clone, Debug)]
pub(crate) struct ObjKeys {
    prefix: String,
}

impl ObjKeys {
    /// The keys of the object `name` of `kind`: a non-empty name of at most
    /// [`MAX_NAME`] bytes with no whitespace, control characters, `:`, `{` or `}`.
    pub(crate) fn new(kind: &str, name: &str) -> Result<ObjKeys, ClusterError> {
        if name.is_empty()
            || name.len() > MAX_NAME
            || name
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, ':' | '{' | '}'))
        {
            return Err(ClusterError::invalid(format!(
                "an object name is 1 to {MAX_NAME} bytes without spaces, control characters, \
                 ':', '{{' or '}}' (got {name:?})"
            )));
        }
        Ok(ObjKeys {
            prefix: format!("concur:obj:{kind}:{{{name}}}:"),
        })
    }

    pub(crate) fn key(&self, part: &str) -> String {
        format!("{}{part}", self.prefix)
    }

    /// The key of one write session.
    pub(crate) fn session(&self, sid: &str) -> String {
        format!("{}s:{sid}", self.prefix)
    }
}

/// An id unique across processes and machines: 16 random hex digits drawn once per
/// process from the kernel's generator, then a counter (cheap enough for every
/// acquisition; lease ids need to be unique, not unguessable).
pub(crate) fn random_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: OnceLock<String> = OnceLock::new();
    static N: AtomicU64 = AtomicU64::new(0);
    let p = PREFIX.get_or_init(crate::executor::random_hex);
    format!("{p}{:x}", N.fetch_add(1, Ordering::Relaxed))
}

/// This machine's name (for consumer names), without `:`.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty() && !s.contains(':') && !s.chars().any(char::is_whitespace))
        .unwrap_or_else(|| "localhost".to_owned())
}

/// One pooled connection and its write session.
struct Slot {
    conn: Conn,
    sid: String,
    seq: u64,
    /// `CLIENT ID` of the current connection, once asked (cleared when it breaks).
    client_id: Option<i64>,
}

/// The session a write runs under: its id and the call's number, zero-padded so that
/// scripts compare numbers as strings.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) sid: String,
    pub(crate) seq: String,
}

/// The connection context of one Redis URL, shared by every object of this process
/// that uses the URL.
pub(crate) struct Ctx {
    url: String,
    client: redis::Client,
    idle: Mutex<Vec<Slot>>,
    renewer: Renewer,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("addr", &self.client.get_connection_info().addr)
            .finish_non_exhaustive()
    }
}

impl Ctx {
    /// The context of `url`: the one this process already has, or a new one (no I/O).
    pub(crate) fn of(url: &str) -> Result<Arc<Ctx>, ClusterError> {
        static ALL: OnceLock<Mutex<HashMap<String, Weak<Ctx>>>> = OnceLock::new();
        let mut all = lock(ALL.get_or_init(Default::default));
        if let Some(c) = all.get(url).and_then(Weak::upgrade) {
            return Ok(c);
        }
        let client = conn::client(url)?;
        let ctx = Arc::new(Ctx {
            url: url.to_owned(),
            renewer: Renewer::new(client.clone()),
            client,
            idle: Mutex::new(Vec::new()),
        });
        all.retain(|_, w| w.strong_count() > 0);
        all.insert(url.to_owned(), Arc::downgrade(&ctx));
        Ok(ctx)
    }

    /// The URL it connects to.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The lease renewer of this context.
    pub(crate) fn renewer(&self) -> &Renewer {
        &self.renewer
    }

    fn checkout(&self) -> Slot {
        lock(&self.idle).pop().unwrap_or_else(|| Slot {
            conn: Conn::new(self.client.clone(), CONNECT_TIMEOUT),
            sid: random_id(),
            seq: 0,
            client_id: None,
        })
    }

    fn checkin(&self, slot: Slot) {
        let mut idle = lock(&self.idle);
        if idle.len() < MAX_IDLE {
            idle.push(slot);
        }
    }

    /// Runs `f` on a pooled connection, retrying through transient failures for up to
    /// [`RETRY_FOR`]; `f` gets the call's write session (the same on every retry).
    pub(crate) fn call<T>(
        &self,
        f: impl FnMut(&mut Connection, &Session) -> RedisResult<T>,
    ) -> Result<T, ClusterError> {
        self.call_within(RETRY_FOR, f)
    }

    /// [`call`](Self::call), retrying for at most `window`.
    pub(crate) fn call_within<T>(
        &self,
        window: Duration,
        mut f: impl FnMut(&mut Connection, &Session) -> RedisResult<T>,
    ) -> Result<T, ClusterError> {
        let mut slot = self.checkout();
        slot.seq += 1;
        let session = Session {
            sid: slot.sid.clone(),
            seq: format!("{:020}", slot.seq),
        };
        let end = Instant::now() + window;
        let mut backoff = Backoff::default();
        let r = loop {
            match slot.conn.call(|c| f(c, &session)) {
                Ok(v) => break Ok(v),
                Err(e) => {
                    if conn::is_broken(&e) {
                        slot.client_id = None;
                    }
                    let now = Instant::now();
                    if conn::is_transient(&e) && now < end {
                        tracing::debug!(error = %e, "concur objects: transient Redis failure, retrying");
                        std::thread::sleep(backoff.step().min(end - now));
                    } else {
                        break Err(ClusterError::from(e));
                    }
                }
            }
        };
        self.checkin(slot);
        r
    }

    /// Runs one blocking command `f` (which blocks on the server for at most `wait`) on
    /// a pooled connection whose read timeout covers the wait. No retry: a waiting
    /// loop tries again itself. `f` also gets the connection's cached `CLIENT ID`.
    pub(crate) fn block<T>(
        &self,
        wait: Duration,
        f: impl FnOnce(&mut Connection, &mut Option<i64>) -> RedisResult<T>,
    ) -> RedisResult<T> {
        let mut slot = self.checkout();
        slot.conn.set_read_timeout(wait + conn::IO_TIMEOUT);
        let id = &mut slot.client_id;
        let r = slot.conn.call(|c| f(c, id));
        if let Err(e) = &r
            && conn::is_broken(e)
        {
            slot.client_id = None;
        }
        slot.conn.set_read_timeout(conn::IO_TIMEOUT);
        self.checkin(slot);
        r
    }
}

/// A waiting loop's retries through transient failures: a pause (backoff, never past
/// the loop's deadline) after each, until failures have gone on for [`RETRY_FOR`].
#[derive(Debug, Default)]
pub(crate) struct Retry {
    backoff: Backoff,
    failing_since: Option<Instant>,
}

impl Retry {
    /// A step failed with `e`: a transient failure is slept off and the loop goes on
    /// (`Ok`); any other, or one that goes on too long, is returned.
    pub(crate) fn failed(
        &mut self,
        e: redis::RedisError,
        deadline: Option<Instant>,
    ) -> Result<(), ClusterError> {
        if !conn::is_transient(&e) {
            return Err(e.into());
        }
        let now = Instant::now();
        let end = *self.failing_since.get_or_insert(now) + RETRY_FOR;
        if now >= end {
            return Err(e.into());
        }
        let mut pause = self.backoff.step().min(end - now);
        if let Some(d) = deadline {
            pause = pause.min(d.saturating_duration_since(now));
        }
        std::thread::sleep(pause);
        Ok(())
    }

    /// A step succeeded: failures count from zero again.
    pub(crate) fn ok(&mut self) {
        self.failing_since = None;
        self.backoff.reset();
    }

    /// [`ok`](Self::ok) or [`failed`](Self::failed), by `r`.
    pub(crate) fn after<T>(
        &mut self,
        r: redis::RedisResult<T>,
        deadline: Option<Instant>,
    ) -> Result<(), ClusterError> {
        match r {
            Ok(_) => {
                self.ok();
                Ok(())
            }
            Err(e) => self.failed(e, deadline),
        }
    }
}

/// How long a wait may block on the server now: until `deadline` (forever: `cap`),
/// and never more than `cap`; at least 1 ms (0 would mean forever to Redis).
pub(crate) fn block_for(deadline: Option<Instant>, cap: Duration) -> Duration {
    let left = deadline.map_or(cap, |d| d.saturating_duration_since(Instant::now()));
    left.min(cap).max(Duration::from_millis(1))
}

/// A server-side block time in seconds, as `BLPOP` takes it.
pub(crate) fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64().max(0.001))
}

/// Checks a lease length: at least 100 ms, at most a day.
pub(crate) fn check_lease(what: &str, d: Duration) -> Result<u64, ClusterError> {
    let ms = d.as_millis();
    if !(100..=86_400_000).contains(&ms) {
        return Err(ClusterError::invalid(format!(
            "a {what} lease is 100 ms to 24 h (got {d:?})"
        )));
    }
    Ok(ms as u64)
}

/// The Lua of a session's check at the start of a write script: returns the recorded
/// reply if this call already ran. Session key at `KEYS[k]`, sequence at `ARGV[a]`.
pub(crate) fn session_check(k: usize, a: usize) -> String {
    format!(
        "local __s = redis.call('GET', KEYS[{k}])\n\
         if __s and string.sub(__s, 1, 20) >= ARGV[{a}] then return {{'dup', string.sub(__s, 22)}} end\n"
    )
}

/// The Lua that records a session's write and its reply `reply` (a Lua string
/// expression): session key at `KEYS[k]`, sequence at `ARGV[a]`.
pub(crate) fn session_record(k: usize, a: usize, reply: &str) -> String {
    format!(
        "redis.call('SET', KEYS[{k}], ARGV[{a}] .. ':' .. ({reply}), 'PX', {})\n",
        SESSION_TTL.as_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_keys_tagged() {
        for bad in ["", "a b", "a:b", "a{b", "a}b", "x\u{7}"] {
            assert!(
                ObjKeys::new("lock", bad).unwrap_err().is_invalid(),
                "{bad:?}"
            );
        }
        assert!(ObjKeys::new("lock", &"x".repeat(MAX_NAME + 1)).is_err());
        let k = ObjKeys::new("lock", "jobs").unwrap();
        assert_eq!(k.key("owner"), "concur:obj:lock:{jobs}:owner");
        assert_eq!(k.session("ab"), "concur:obj:lock:{jobs}:s:ab");
    }

    #[test]
    fn leases_are_checked() {
        assert!(check_lease("lock", Duration::from_millis(99)).is_err());
        assert_eq!(check_lease("lock", Duration::from_secs(1)).unwrap(), 1000);
        assert!(check_lease("lock", Duration::from_secs(90_000)).is_err());
    }

    #[test]
    fn block_times_are_bounded_and_never_zero() {
        assert_eq!(
            block_for(None, Duration::from_secs(2)),
            Duration::from_secs(2)
        );
        let past = Instant::now() - Duration::from_secs(1);
        assert_eq!(
            block_for(Some(past), Duration::from_secs(2)),
            Duration::from_millis(1)
        );
        assert_eq!(secs(Duration::ZERO), "0.001");
        assert_eq!(secs(Duration::from_millis(1500)), "1.500");
    }
}
