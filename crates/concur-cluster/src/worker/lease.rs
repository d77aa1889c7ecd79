//! Leases: the heartbeat that renews this worker's (and stops tasks it lost or that
//! ran past their deadline), and the reclaim of entries whose worker stopped renewing.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use redis::Value;

use super::complete::{Move, owned, push_move};
use super::{Done, Shared, lock};
use crate::conn::{self, Conn};
use crate::envelope::{Envelope, Outcome};
use crate::executor::{entry, now_ms};
use crate::keys::GROUP;

/// Entries renewed per script call.
const RENEW_BATCH: usize = 512;

/// How often the heartbeat beats: a quarter of the lease, between 100 ms and 2.5 s.
fn beat_every(lease: Duration) -> Duration {
    (lease / 4).clamp(Duration::from_millis(100), Duration::from_millis(2500))
}

pub(crate) fn heartbeat(s: &Arc<Shared>) {
    let mut con = s.conn();
    loop {
        if let Err(e) = beat(s, &mut con) {
            tracing::warn!(error = %e, "concur worker: heartbeat failed");
        }
        stop_overdue(s);
        s.start_due();
        if !s.nap(beat_every(s.lease())) {
            return;
        }
    }
}

/// One beat: the liveness key, the pool's lease, and the leases of held entries.
fn beat(s: &Shared, con: &mut Conn) -> redis::RedisResult<()> {
    let lease = s.lease();
    let (ids, running): (Vec<String>, usize) = {
        let t = lock(&s.table);
        (
            t.held
                .iter()
                .filter(|(_, h)| !h.lost)
                .map(|(e, _)| e.clone())
                .collect(),
            t.held.values().filter(|h| h.running).count(),
        )
    };
    let info = format!(
        "host={}\npid={}\nslots={}\nrunning={running}\nheld={}\nstarted_ms={}\nbeat_ms={}\nfingerprint={}\n",
        s.host,
        std::process::id(),
        s.cfg.slots,
        ids.len(),
        s.started,
        now_ms(),
        s.fingerprint,
    );
    let mut pipe = redis::pipe();
    // The pool's counters: what this worker did since the last beat.
    let deltas = s.stats.unflushed(s.late_lost.swap(0, Ordering::Relaxed));
    for (name, n) in &deltas {
        if *n > 0 {
            pipe.cmd("HINCRBY")
                .arg(s.keys.stats())
                .arg(*name)
                .arg(*n)
                .ignore();
        }
    }
    pipe.cmd("SET")
        .arg(s.keys.worker(&s.consumer))
        .arg(info)
        .arg("PX")
        .arg(lease.as_millis() as u64)
        .ignore()
        .cmd("SADD")
        .arg(s.keys.workers())
        .arg(&s.consumer)
        .ignore()
        .cmd("HGET")
        .arg(s.keys.config())
        .arg("lease_ms");
    let (lease_ms,): (Option<u64>,) = match con.call(|c| pipe.query(c)) {
        Ok(v) => v,
        Err(e) => {
            s.stats.unflush(&deltas);
            if let Some((_, late)) = deltas.iter().find(|(n, _)| *n == "late") {
                s.late_lost.fetch_add(*late, Ordering::Relaxed);
            }
            return Err(e);
        }
    };
    if let Some(ms) = lease_ms {
        s.lease_ms.store(ms.max(1000), Ordering::Relaxed);
    }
    let _span = tracing::trace_span!("renew", entries = ids.len()).entered();
    let mut lost = Vec::new();
    for chunk in ids.chunks(RENEW_BATCH) {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(s.scripts.renew.get_hash())
            .arg(1)
            .arg(s.keys.tasks())
            .arg(GROUP)
            .arg(&s.consumer)
            .arg(chunk);
        let r: Vec<String> = match con.call(|c| cmd.query(c)) {
            Err(e) if conn::is_noscript(&e) => {
                con.call(|c| s.scripts.load(c))?;
                con.call(|c| cmd.query(c))?
            }
            r => r?,
        };
        lost.extend(r);
    }
    if !lost.is_empty() {
        let mut t = lock(&s.table);
        for e in &lost {
            let Some(h) = t.held.get_mut(e) else { continue };
            tracing::warn!(entry = %e, task = %h.env.id, "concur worker: lease lost; stopping the task here");
            s.stats.lost.fetch_add(1, Ordering::Relaxed);
            if h.running && !h.take_back() {
                // Running here: stopped, and kept until the local task ends; its
                // result is then dropped as late.
                h.stop();
                h.lost = true;
                h.settled = true;
            } else {
                t.remove(e);
            }
        }
        drop(t);
        s.room.notify_all();
    }
    Ok(())
}

/// Stops running tasks past their deadline and settles them as such.
fn stop_overdue(s: &Shared) {
    let now = Instant::now();
    let mut overdue = Vec::new();
    {
        let mut t = lock(&s.table);
        for (e, h) in t.held.iter_mut() {
            if !h.settled && h.deadline.is_some_and(|d| d <= now) {
                h.settled = true;
                h.stop();
                overdue.push((e.clone(), h.env.attempt));
            }
        }
    }
    for (entry, attempt) in overdue {
        s.send(Done::Complete {
            entry,
            outcome: Outcome::deadline(
                "the task's deadline passed while it ran, and it was stopped",
                attempt,
            ),
        });
    }
}

/// Takes back entries idle past the lease from their (lost) workers: each is retried
/// with one more attempt after its backoff, or dead-lettered once out of attempts.
pub(crate) fn reclaim(s: &Shared, con: &mut Conn, cursor: &mut String) -> redis::RedisResult<()> {
    let lease = s.lease().as_millis() as u64;
    let v: Value = con.call(|c| {
        redis::cmd("XAUTOCLAIM")
            .arg(s.keys.tasks())
            .arg(GROUP)
            .arg(&s.consumer)
            .arg(lease)
            .arg(cursor.as_str())
            .arg("COUNT")
            .arg(64)
            .query(c)
    })?;
    let Value::Array(parts) = v else {
        return Ok(());
    };
    let mut parts = parts.into_iter();
    if let Some(Value::BulkString(next)) = parts.next() {
        *cursor = String::from_utf8_lossy(&next).into_owned();
    }
    let claimed = parts.next();
    let deleted = parts.next();
    let mut pipe = redis::pipe();
    let mut n = 0;
    if let Some(Value::Array(entries)) = claimed {
        for e in entries {
            let Some((id, mut fields)) = entry(e) else {
                continue;
            };
            if lock(&s.table).held.contains_key(&id) {
                // One of ours that the heartbeat could not renew in time (Redis was
                // away): it runs here, keep it.
                continue;
            }
            n += 1;
            match Envelope::decode(&mut fields, usize::MAX) {
                Ok(env) => retry_or_bury(s, &mut pipe, &id, env),
                Err(bad) => {
                    s.send(Done::Bad {
                        entry: id,
                        fields: super::raw_fields(&fields),
                        bad,
                    });
                    n -= 1;
                }
            }
        }
    }
    // Entries deleted from the stream but left pending: acknowledge them away.
    if let Some(Value::Array(ids)) = deleted {
        for id in ids {
            if let Value::BulkString(b) = id {
                pipe.cmd("XACK")
                    .arg(s.keys.tasks())
                    .arg(GROUP)
                    .arg(b)
                    .ignore();
                n += 1;
            }
        }
    }
    if n > 0 {
        let r = con.call(|c| pipe.query::<Vec<Value>>(c));
        if let Err(e) = &r
            && conn::is_noscript(e)
        {
            con.call(|c| s.scripts.load(c))?;
            con.call(|c| pipe.query::<Vec<Value>>(c))?;
        } else {
            r?;
        }
    }
    Ok(())
}

/// Cuts settled entries off the task stream (see `scripts`).
pub(crate) fn trim(s: &Shared, con: &mut Conn) -> redis::RedisResult<()> {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(s.scripts.trim.get_hash())
        .arg(1)
        .arg(s.keys.tasks())
        .arg(GROUP);
    match con.call(|c| cmd.query::<i64>(c)) {
        Err(e) if conn::is_noscript(&e) => {
            con.call(|c| s.scripts.load(c))?;
            con.call(|c| cmd.query::<i64>(c)).map(drop)
        }
        r => r.map(drop),
    }
}

/// Adds the `MOVE` of a lost worker's entry: a retry, or a dead letter.
fn retry_or_bury(s: &Shared, pipe: &mut redis::Pipeline, id: &str, env: Envelope) {
    let attempt = env.attempt;
    let _span = tracing::info_span!("reclaim", task = %env.id, entry = id).entered();
    if attempt >= env.max_attempts.max(1) {
        let _dead = tracing::warn_span!("dead_letter", task = %env.id).entered();
        tracing::warn!(
            attempt,
            "concur worker: dead-lettering a task whose worker was lost at its last attempt"
        );
        let outcome = Outcome::dead(attempt, Outcome::lost(attempt));
        let mut fields = owned(env.fields());
        fields.push(("cause_status".into(), b"lost".to_vec()));
        let why = format!(
            "the worker holding it was lost at attempt {attempt} of {}",
            env.max_attempts.max(1)
        );
        fields.push(("cause_msg".into(), why.into_bytes()));
        push_move(
            s,
            pipe,
            &Move {
                entry: id.to_owned(),
                mode: "dead",
                entry_fields: fields,
                reply: Some(env.reply.clone()),
                ttl: env.ttl_ms,
                result: outcome.fields(&env.id),
            },
        );
        s.stats.dead.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let mut next = env.clone();
    next.attempt = attempt + 1;
    let pause = env.backoff_ms.saturating_mul(1u64 << (attempt - 1).min(20));
    next.not_before_ms = now_ms().saturating_add(pause);
    tracing::info!(task = %env.id, attempt = next.attempt, "concur worker: retrying a task whose worker was lost");
    push_move(
        s,
        pipe,
        &Move {
            entry: id.to_owned(),
            mode: "retry",
            entry_fields: owned(next.fields()),
            reply: None,
            ttl: env.ttl_ms,
            result: Vec::new(),
        },
    );
    s.stats.retried.fetch_add(1, Ordering::Relaxed);
}
