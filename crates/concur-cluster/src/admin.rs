//! [`PoolAdmin`]: what an operator needs to watch a pool and mend it — its workers and
//! their heartbeats, queue depth, tasks in flight, counters, and the dead letters
//! (listed with their causes, and requeued one by one).

use std::collections::BTreeMap;
use std::time::Duration;

use redis::Value;

use crate::conn::{self, Conn};
use crate::envelope::{Envelope, Fields, field};
use crate::error::ClusterError;
use crate::executor::{entry, now_ms};
use crate::keys::{GROUP, Keys};

/// One worker of a pool, as its last heartbeat described it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct WorkerInfo {
    /// Its consumer name (`host:pid:random`).
    pub consumer: String,
    /// The host it runs on.
    pub host: String,
    /// Its process id there.
    pub pid: u32,
    /// Tasks it runs at once.
    pub slots: usize,
    /// Tasks started on its local executor at its last heartbeat.
    pub running: usize,
    /// Entries it held (running or waiting) at its last heartbeat.
    pub held: usize,
    /// Tasks it holds in the pool's pending list now.
    pub pending: u64,
    /// How long ago its last heartbeat was, in ms (`None`: its liveness key has
    /// expired; it died, or lost touch with Redis, more than a lease ago).
    pub last_beat_ms_ago: Option<u64>,
    /// Its build fingerprint.
    pub fingerprint: String,
}

/// A pool at a glance.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct PoolStatus {
    /// The pool's name.
    pub pool: String,
    /// Its lease, in ms.
    pub lease_ms: u64,
    /// Every worker seen, live ones first.
    pub workers: Vec<WorkerInfo>,
    /// Tasks not yet taken by any worker.
    pub queued: u64,
    /// Tasks taken and not settled (in the consumer group's pending list).
    pub in_flight: u64,
    /// Dead letters waiting in the dead-letter stream.
    pub dead_letters: u64,
    /// The pool's counters (`completed`, `failed`, `retried`, `dead`, `bad`, `late`,
    /// ...), as the workers report them.
    pub counters: BTreeMap<String, u64>,
}

/// A dead-lettered task.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct DeadLetter {
    /// Its id in the dead-letter stream (what [`PoolAdmin::requeue`] takes).
    pub id: String,
    /// The task's id, if the entry had a readable one.
    pub task: Option<String>,
    /// The task's function, if readable.
    pub name: Option<String>,
    /// Attempts made.
    pub attempt: Option<u32>,
    /// Why: `lost` (its worker was lost at its last attempt) or `bad` (a malformed
    /// entry).
    pub cause: String,
    /// The cause in words.
    pub message: String,
}

/// Watches and mends one pool.
///
/// ```no_run
/// let admin = concur::cluster::PoolAdmin::connect("redis://127.0.0.1:6379/0", "render").unwrap();
/// let s = admin.status().unwrap();
/// println!("{} workers, {} queued, {} in flight", s.workers.len(), s.queued, s.in_flight);
/// for d in admin.dead_letters(10).unwrap() {
///     println!("{}: {} ({})", d.id, d.cause, d.message);
/// }
/// ```
pub struct PoolAdmin {
    keys: Keys,
    pool: String,
    con: std::sync::Mutex<Conn>,
}

impl std::fmt::Debug for PoolAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolAdmin")
            .field("pool", &self.pool)
            .finish()
    }
}

fn as_str(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        v => as_str(v)?.parse().ok(),
    }
}

/// `name value name value ...` of an XINFO-style reply.
fn pairs(v: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    if let Value::Array(a) = v {
        for kv in a.chunks(2) {
            if let [k, v] = kv
                && let Some(k) = as_str(k)
            {
                out.insert(k, v.clone());
            }
        }
    }
    out
}

impl PoolAdmin {
    /// Connects to the Redis at `url` to watch pool `pool`.
    ///
    /// # Errors
    /// As [`RedisExecutor::connect`](crate::RedisExecutor::connect).
    pub fn connect(url: &str, pool: &str) -> Result<PoolAdmin, ClusterError> {
        let keys = Keys::new(pool)?;
        let mut con = Conn::new(conn::client(url)?, Duration::from_secs(5));
        con.call(|c| redis::cmd("PING").query::<()>(c))?;
        Ok(PoolAdmin {
            keys,
            pool: pool.to_owned(),
            con: std::sync::Mutex::new(con),
        })
    }

    fn call<T>(
        &self,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, ClusterError> {
        let mut con = self
            .con
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(con.call(f)?)
    }

    /// The pool's workers, queue depth, tasks in flight, counters and dead letters.
    ///
    /// # Errors
    /// [`ClusterError::is_connection`] if Redis cannot be reached.
    pub fn status(&self) -> Result<PoolStatus, ClusterError> {
        let k = &self.keys;
        let (members, counters, lease, dead): (
            Vec<String>,
            BTreeMap<String, u64>,
            Option<u64>,
            u64,
        ) = self.call(|c| {
            redis::pipe()
                .cmd("SMEMBERS")
                .arg(k.workers())
                .cmd("HGETALL")
                .arg(k.stats())
                .cmd("HGET")
                .arg(k.config())
                .arg("lease_ms")
                .cmd("XLEN")
                .arg(k.dead())
                .query(c)
        })?;
        let groups: Value = self
            .call(|c| redis::cmd("XINFO").arg("GROUPS").arg(k.tasks()).query(c))
            .unwrap_or(Value::Nil);
        let mut queued = 0;
        let mut in_flight = 0;
        if let Value::Array(gs) = &groups {
            for g in gs {
                let g = pairs(g);
                if g.get("name").and_then(as_str).as_deref() == Some(GROUP) {
                    queued = g.get("lag").and_then(as_u64).unwrap_or(0);
                    in_flight = g.get("pending").and_then(as_u64).unwrap_or(0);
                }
            }
        }
        let consumers: Value = self
            .call(|c| {
                redis::cmd("XINFO")
                    .arg("CONSUMERS")
                    .arg(k.tasks())
                    .arg(GROUP)
                    .query(c)
            })
            .unwrap_or(Value::Nil);
        let mut pending_of = BTreeMap::new();
        if let Value::Array(cs) = &consumers {
            for c in cs {
                let c = pairs(c);
                if let (Some(name), Some(p)) = (
                    c.get("name").and_then(as_str),
                    c.get("pending").and_then(as_u64),
                ) {
                    pending_of.insert(name, p);
                }
            }
        }
        let infos: Vec<Option<String>> = if members.is_empty() {
            Vec::new()
        } else {
            self.call(|c| {
                let mut cmd = redis::cmd("MGET");
                for m in &members {
                    cmd.arg(k.worker(m));
                }
                cmd.query(c)
            })?
        };
        let now = now_ms();
        let mut workers: Vec<WorkerInfo> = members
            .iter()
            .zip(infos)
            .map(|(m, info)| worker_info(m, info.as_deref(), now, &pending_of))
            .collect();
        workers.sort_by_key(|w| (w.last_beat_ms_ago.is_none(), w.consumer.clone()));
        Ok(PoolStatus {
            pool: self.pool.clone(),
            lease_ms: lease.unwrap_or(crate::worker::DEFAULT_LEASE.as_millis() as u64),
            workers,
            queued,
            in_flight,
            dead_letters: dead,
            counters,
        })
    }

    /// The oldest `count` dead letters, with their causes.
    ///
    /// # Errors
    /// [`ClusterError::is_connection`] if Redis cannot be reached.
    pub fn dead_letters(&self, count: usize) -> Result<Vec<DeadLetter>, ClusterError> {
        let v: Value = self.call(|c| {
            redis::cmd("XRANGE")
                .arg(self.keys.dead())
                .arg("-")
                .arg("+")
                .arg("COUNT")
                .arg(count.max(1))
                .query(c)
        })?;
        let Value::Array(es) = v else {
            return Ok(Vec::new());
        };
        Ok(es.into_iter().filter_map(entry).map(dead_letter).collect())
    }

    /// Puts dead letter `id` back in the pool's task stream as a fresh task (first
    /// attempt, no backoff, its deadline cleared), and removes it from the dead
    /// letters. Its caller, if still waiting, gets the new attempt's result; one whose
    /// future already settled (as dead-lettered) drops it.
    ///
    /// # Errors
    /// [`ClusterError::is_invalid`] if there is no such dead letter or it is not a
    /// readable task entry (a `bad` one); [`ClusterError::is_connection`].
    pub fn requeue(&self, id: &str) -> Result<(), ClusterError> {
        let v: Value = self.call(|c| {
            redis::cmd("XRANGE")
                .arg(self.keys.dead())
                .arg(id)
                .arg(id)
                .query(c)
        })?;
        let found = match v {
            Value::Array(mut es) if !es.is_empty() => entry(es.remove(0)),
            _ => None,
        };
        let Some((_, mut fields)) = found else {
            return Err(ClusterError::invalid(format!(
                "no dead letter {id:?} in pool {}",
                self.pool
            )));
        };
        let mut env = Envelope::decode(&mut fields, usize::MAX).map_err(|b| {
            ClusterError::invalid(format!(
                "dead letter {id:?} is not a readable task: {}",
                b.reason
            ))
        })?;
        env.attempt = 1;
        env.not_before_ms = 0;
        env.deadline_ms = 0;
        self.call(|c| {
            let mut pipe = redis::pipe();
            pipe.atomic();
            pipe.cmd("XADD").arg(self.keys.tasks()).arg("*");
            env.write_fields(&mut pipe);
            pipe.ignore();
            pipe.cmd("XDEL").arg(self.keys.dead()).arg(id).ignore();
            pipe.query::<()>(c)
        })
    }
}

fn worker_info(
    consumer: &str,
    info: Option<&str>,
    now: u64,
    pending_of: &BTreeMap<String, u64>,
) -> WorkerInfo {
    let kv: BTreeMap<&str, &str> = info
        .unwrap_or("")
        .lines()
        .filter_map(|l| l.split_once('='))
        .collect();
    let mut parts = consumer.split(':');
    let host = parts.next().unwrap_or("").to_owned();
    let pid = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let num = |k: &str| kv.get(k).and_then(|v| v.parse::<u64>().ok());
    WorkerInfo {
        consumer: consumer.to_owned(),
        host: kv.get("host").map_or(host, |h| (*h).to_owned()),
        pid: num("pid").map_or(pid, |p| p as u32),
        slots: num("slots").unwrap_or(0) as usize,
        running: num("running").unwrap_or(0) as usize,
        held: num("held").unwrap_or(0) as usize,
        pending: pending_of.get(consumer).copied().unwrap_or(0),
        last_beat_ms_ago: info.and(num("beat_ms")).map(|b| now.saturating_sub(b)),
        fingerprint: kv
            .get("fingerprint")
            .map(|f| (*f).to_owned())
            .unwrap_or_default(),
    }
}

fn dead_letter((id, fields): (String, Fields)) -> DeadLetter {
    let text = |k: &str| field(&fields, k).map(|b| String::from_utf8_lossy(b).into_owned());
    DeadLetter {
        id,
        task: text("id"),
        name: text("name"),
        attempt: text("attempt").and_then(|a| a.parse().ok()),
        cause: text("cause_status").unwrap_or_else(|| "unknown".into()),
        message: text("cause_msg").unwrap_or_default(),
    }
}
