//! The completer: turns what happened to held entries into pipelined scripts
//! (`COMPLETE` or `MOVE`, see `scripts`), retrying while Redis is away so that no
//! outcome is lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use redis::Value;

use super::{Done, Held, Shared, lock};
use crate::conn::{self, Backoff, Conn};
use crate::envelope::{BadEntry, Outcome, Status};
use crate::executor::now_ms;
use crate::keys::GROUP;
use crate::task::Run;

/// Outcomes per pipeline, at most.
const BATCH: usize = 256;

/// One script call.
enum Step {
    /// `COMPLETE`: the entry's result.
    Complete {
        entry: String,
        task: String,
        reply: String,
        ttl: u64,
        outcome: Outcome,
    },
    /// `MOVE`: back into the stream, or into the dead letters.
    Move(Move),
    /// The running task's progress, to its caller (a plain XADD: not an outcome).
    Progress {
        reply: String,
        fields: Vec<(&'static str, Vec<u8>)>,
    },
}

/// One `MOVE` script call.
pub(crate) struct Move {
    pub(crate) entry: String,
    /// `retry`, `handback`, `dead` or `bad`.
    pub(crate) mode: &'static str,
    /// The new entry (retry, hand-back) or the dead letter.
    pub(crate) entry_fields: Vec<(String, Vec<u8>)>,
    /// Where to tell the caller (dead, bad), if anywhere.
    pub(crate) reply: Option<String>,
    pub(crate) ttl: u64,
    /// The caller's result (dead, bad), if any.
    pub(crate) result: Vec<(&'static str, Vec<u8>)>,
}

pub(crate) fn run(s: &Arc<Shared>, rx: Receiver<Done>) {
    let mut con = s.conn();
    let mut backoff = Backoff::default();
    loop {
        let first = match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(d) => d,
            Err(RecvTimeoutError::Timeout) => {
                if s.halt.load(Ordering::SeqCst) {
                    return;
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(d) => batch.push(d),
                Err(_) => break,
            }
        }
        let steps: Vec<Step> = batch.into_iter().filter_map(|d| step(s, d)).collect();
        s.room.notify_all();
        // Slots freed: start what waits for one.
        s.start_due();
        if steps.is_empty() {
            continue;
        }
        let mut tries = 0;
        loop {
            match apply(s, &mut con, &steps) {
                Ok(results) => {
                    backoff.reset();
                    count(s, &steps, &results);
                    break;
                }
                Err(e) if conn::is_noscript(&e) => {
                    let _ = con.call(|c| s.scripts.load(c));
                }
                Err(e) if conn::is_transient(&e) => {
                    tries += 1;
                    if s.halt.load(Ordering::SeqCst) && tries > 5 {
                        // Stopping, and Redis stays away: the leases will lapse and
                        // peers will retry these entries.
                        tracing::error!(
                            "concur worker: stopping with outcomes unsent; their entries will be retried"
                        );
                        return;
                    }
                    tracing::warn!(error = %e, "concur worker: cannot send outcomes, retrying");
                    std::thread::sleep(backoff.step());
                }
                Err(e) => {
                    tracing::error!(error = %e, "concur worker: Redis refused outcomes; their entries will be retried");
                    break;
                }
            }
        }
    }
}

/// What to do for `d` (taking the entry out of the table), or nothing if the entry is
/// no longer held (its lease was lost, or it was settled already).
fn step(s: &Shared, d: Done) -> Option<Step> {
    match d {
        Done::Complete { entry, outcome } => {
            let h = take_live(s, &entry)?;
            Some(complete(entry, h, outcome))
        }
        Done::Ran { entry, result } => {
            let mut t = lock(&s.table);
            let h = t.held.get(&entry)?;
            if h.lost {
                // Its lease went elsewhere: this late result is dropped, and counted.
                t.remove(&entry);
                s.stats.late.fetch_add(1, Ordering::Relaxed);
                s.late_lost.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            if h.settled {
                return None;
            }
            let h = t.remove(&entry)?;
            drop(t);
            let a = h.env.attempt;
            if let Some(t) = h.started_at {
                s.ran_for(t.elapsed());
            }
            let outcome = match result {
                Ok(Some(Run::Ok(v))) => Outcome::ok(v, a),
                Ok(Some(Run::Panic { message, location })) => Outcome::panic(message, location, a),
                Ok(Some(Run::Codec(m))) => Outcome::error(m, a),
                Ok(Some(Run::BadArgs(m))) => {
                    let bad = BadEntry {
                        id: Some(h.env.id.clone()),
                        reply: Some(h.env.reply.clone()),
                        reason: m,
                    };
                    return Some(bad_move(s, entry, owned(h.env.fields()), bad));
                }
                Ok(None) => {
                    let bad = BadEntry {
                        id: Some(h.env.id.clone()),
                        reply: Some(h.env.reply.clone()),
                        reason: format!("this build has no task {:?}", h.env.table_key()),
                    };
                    return Some(bad_move(s, entry, owned(h.env.fields()), bad));
                }
                // The local executor gave it up without running it (it is shutting
                // down): back to the pool.
                Err(e) if e.is_shutdown() || e.is_cancelled() => return Some(hand_back(entry, h)),
                Err(e) => Outcome::from_local_error(&e, a),
            };
            Some(complete(entry, h, outcome))
        }
        Done::HandBack { entry } => {
            let h = take_live(s, &entry)?;
            s.stats.handed_back.fetch_add(1, Ordering::Relaxed);
            Some(hand_back(entry, h))
        }
        Done::Bad { entry, fields, bad } => {
            let _ = take_live(s, &entry);
            Some(bad_move(s, entry, fields, bad))
        }
        Done::Progress { entry, progress } => {
            let t = lock(&s.table);
            let h = t.held.get(&entry).filter(|h| !h.settled)?;
            let o = Outcome::progress(
                progress.done as u64,
                progress.total.map(|t| t as u64),
                h.env.attempt,
            );
            Some(Step::Progress {
                reply: h.env.reply.clone(),
                fields: o.fields(&h.env.id),
            })
        }
    }
}

/// Takes `entry` out of the table unless its lease was lost (then it stays until its
/// local task ends).
fn take_live(s: &Shared, entry: &str) -> Option<Held> {
    let mut t = lock(&s.table);
    if t.held.get(entry)?.lost {
        return None;
    }
    t.remove(entry)
}

/// The `MOVE` of a malformed entry to the dead letters, telling its caller if it has a
/// readable id and a reply stream of this pool.
fn bad_move(s: &Shared, entry: String, mut fields: Vec<(String, Vec<u8>)>, bad: BadEntry) -> Step {
    let _span = tracing::warn_span!("dead_letter", entry = %entry, task = ?bad.id).entered();
    tracing::warn!(reason = %bad.reason, "concur worker: dead-lettering a malformed entry");
    fields.push(("cause_status".into(), b"bad".to_vec()));
    fields.push(("cause_msg".into(), bad.reason.clone().into_bytes()));
    let reply = bad.reply.filter(|r| s.keys.is_results(r));
    let result = match (&bad.id, &reply) {
        (Some(id), Some(_)) if !id.is_empty() && !id.contains(char::is_whitespace) => {
            Outcome::bad(bad.reason.clone(), 1).fields(id)
        }
        _ => Vec::new(),
    };
    Step::Move(Move {
        entry,
        mode: "bad",
        entry_fields: fields,
        reply,
        ttl: 3_600_000,
        result,
    })
}

fn complete(entry: String, h: Held, outcome: Outcome) -> Step {
    Step::Complete {
        entry,
        task: h.env.id,
        reply: h.env.reply,
        ttl: h.env.ttl_ms,
        outcome,
    }
}

fn hand_back(entry: String, h: Held) -> Step {
    let mut env = h.env;
    env.not_before_ms = 0;
    Step::Move(Move {
        entry,
        mode: "handback",
        entry_fields: owned(env.fields()),
        reply: None,
        ttl: env.ttl_ms,
        result: Vec::new(),
    })
}

pub(crate) fn owned(f: Vec<(&'static str, Vec<u8>)>) -> Vec<(String, Vec<u8>)> {
    f.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// The trim point of a result stream: entries older than `ttl` ms.
pub(crate) fn min_id(ttl: u64) -> String {
    format!("{}-0", now_ms().saturating_sub(ttl))
}

/// Adds one `MOVE` call to `pipe`.
pub(crate) fn push_move(s: &Shared, pipe: &mut redis::Pipeline, m: &Move) {
    let dead = s.keys.dead();
    pipe.cmd("EVALSHA")
        .arg(s.scripts.moved.get_hash())
        .arg(4)
        .arg(s.keys.tasks())
        .arg(&dead)
        .arg(m.reply.as_deref().unwrap_or(&dead))
        .arg(s.keys.stats())
        .arg(GROUP)
        .arg(&m.entry)
        .arg(m.mode)
        .arg(m.ttl)
        .arg(m.entry_fields.len() * 2);
    for (k, v) in &m.entry_fields {
        pipe.arg(k).arg(v);
    }
    for (k, v) in &m.result {
        pipe.arg(*k).arg(v);
    }
}

fn apply(s: &Shared, con: &mut Conn, steps: &[Step]) -> redis::RedisResult<Vec<i64>> {
    let mut pipe = redis::pipe();
    for st in steps {
        match st {
            Step::Complete {
                entry,
                task,
                reply,
                outcome,
                ..
            } => {
                pipe.cmd("EVALSHA")
                    .arg(s.scripts.complete.get_hash())
                    .arg(3)
                    .arg(s.keys.tasks())
                    .arg(reply)
                    .arg(s.keys.stats())
                    .arg(GROUP)
                    .arg(entry);
                for (k, v) in outcome.fields(task) {
                    pipe.arg(k).arg(v);
                }
            }
            Step::Move(m) => push_move(s, &mut pipe, m),
            Step::Progress { reply, fields } => {
                pipe.cmd("XADD").arg(reply).arg("*");
                for (k, v) in fields {
                    pipe.arg(*k).arg(v);
                }
            }
        }
    }
    // Once per reply stream of the batch: keep it alive for the TTL, trim it by age
    // (a caller that died leaves nothing behind once its TTL passed).
    let mut replies: Vec<(&str, u64)> = Vec::new();
    for st in steps {
        if let Step::Complete { reply, ttl, .. } = st {
            match replies.iter_mut().find(|(r, _)| *r == reply.as_str()) {
                Some((_, t)) => *t = (*t).max(*ttl),
                None => replies.push((reply, *ttl)),
            }
        }
    }
    for (reply, ttl) in &replies {
        pipe.cmd("PEXPIRE").arg(*reply).arg(*ttl).ignore();
        pipe.cmd("XTRIM")
            .arg(*reply)
            .arg("MINID")
            .arg("~")
            .arg(min_id(*ttl))
            .ignore();
    }
    let values: Vec<Value> = con.call(|c| pipe.query(c))?;
    Ok(values
        .into_iter()
        .map(|v| match v {
            Value::Int(i) => i,
            _ => 0,
        })
        .collect())
}

fn count(s: &Shared, steps: &[Step], results: &[i64]) {
    let bump = |a: &AtomicU64| {
        a.fetch_add(1, Ordering::Relaxed);
    };
    for (st, r) in steps.iter().zip(results) {
        match (st, r) {
            (Step::Complete { outcome, task, .. }, 1) => {
                tracing::debug_span!("complete", task = %task)
                    .in_scope(|| tracing::debug!(status = ?outcome.status, "result sent"));
                match outcome.status {
                    Status::Ok => bump(&s.stats.completed),
                    Status::Cancelled => bump(&s.stats.cancelled),
                    Status::Deadline => bump(&s.stats.deadline),
                    Status::Mismatch => bump(&s.stats.mismatched),
                    Status::Bad => bump(&s.stats.bad),
                    _ => bump(&s.stats.failed),
                }
            }
            (Step::Move(Move { mode: "bad", .. }), 1) => bump(&s.stats.bad),
            (Step::Progress { .. }, _) => {}
            (_, 1) => {}
            _ => {
                tracing::debug!("late completion dropped");
                bump(&s.stats.late);
            }
        }
    }
}
