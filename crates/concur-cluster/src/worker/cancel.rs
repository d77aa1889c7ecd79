//! The canceller: hears cancel requests on the pool's channel and stops the named
//! tasks this worker holds; a request for a task not (yet) held is remembered for a
//! minute, so an entry read just after its cancel was published never starts.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Done, Shared, lock};
use crate::conn::{self, Backoff};
use crate::envelope::Outcome;

/// How long a cancel for a task not held here is remembered.
const REMEMBER: Duration = Duration::from_secs(60);

pub(crate) fn listen(s: &Shared) {
    let mut backoff = Backoff::default();
    while !s.halt.load(Ordering::SeqCst) {
        let mut con = s.conn();
        let r = con.call(|c| {
            let mut ps = c.as_pubsub();
            ps.subscribe(s.keys.cancel_channel())?;
            ps.set_read_timeout(Some(Duration::from_millis(200)))?;
            // Subscribed: any cancel from now on is heard. Those sent before are
            // found by their keys.
            pending_cancels(s)?;
            s.listening.store(true, Ordering::SeqCst);
            loop {
                if s.halt.load(Ordering::SeqCst) {
                    return Ok(());
                }
                match ps.get_message() {
                    Ok(msg) => {
                        if let Ok(id) = msg.get_payload::<String>() {
                            cancel(s, &id);
                        }
                    }
                    Err(e) if e.is_timeout() => {}
                    Err(e) => return Err(e),
                }
            }
        });
        match r {
            Ok(()) => return,
            Err(e) if conn::is_transient(&e) => {
                if !s.nap(backoff.step()) {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "concur worker: the cancel subscription failed");
                if !s.nap(backoff.step()) {
                    return;
                }
            }
        }
    }
}

/// The cancel requests waiting in Redis (their keys), taken as if just heard.
fn pending_cancels(s: &Shared) -> redis::RedisResult<()> {
    let mut con = s.conn();
    let prefix = s.keys.cancel("");
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = con.call(|c| {
            redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}*"))
                .arg("COUNT")
                .arg(1000)
                .query(c)
        })?;
        for k in keys {
            if let Some(id) = k.strip_prefix(&prefix) {
                cancel(s, id);
            }
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// Stops task `id` if held here; otherwise remembers the request.
pub(crate) fn cancel(s: &Shared, id: &str) {
    let mut t = lock(&s.table);
    let now = Instant::now();
    t.recent_cancels
        .retain(|_, at| now.duration_since(*at) < REMEMBER);
    let Some(entry) = t.by_task.get(id).cloned() else {
        t.recent_cancels.insert(id.to_owned(), now);
        return;
    };
    let Some(h) = t.held.get_mut(&entry) else {
        return;
    };
    if h.settled {
        return;
    }
    h.settled = true;
    h.stop();
    let attempt = h.env.attempt;
    drop(t);
    tracing::debug!(task = id, "cancel");
    s.send(Done::Complete {
        entry,
        outcome: Outcome::cancelled(attempt),
    });
}
