//! The lease renewer: one thread per connection context, with a connection of its
//! own, that keeps alive the leases this process holds (lock ownerships, semaphore
//! units, queue entries taken). A user's critical section cannot hold it up: it runs
//! on no thread of the user's and shares no connection or lock with the objects'
//! calls (the only lock between them guards the list of leases, held for a push or a
//! scan). Each lease is renewed every third of its length; a renewal that finds the
//! lease gone (it lapsed while this process was stopped, cut off or starved) marks it
//! *lost*, which its guard reports.
//!
//! (Redisson's "watchdog" renews a lock's lease the same way; unlike a lease that is
//! only renewed from the holder's own calls, it keeps a long critical section safe.
//! Kleppmann's point stands: a holder paused for longer than its lease *will* lose
//! the lock while it still thinks it holds it; that is what fencing tokens are for.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant};

use redis::Script;

use crate::conn::{self, CONNECT_TIMEOUT, Conn, lock};

/// Keeps a lock's lease: KEYS: owner. ARGV: lease id, lease ms. 1 if renewed.
static RENEW_OWNER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
",
    )
});

/// Keeps a semaphore unit: KEYS: holders. ARGV: lease id, lease ms. 1 if renewed.
static RENEW_UNIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
  return 1
end
return 0
",
    )
});

/// Keeps the stream entries a queue consumer holds: resets their idle time if the
/// consumer still owns them (XCLAIM JUSTID keeps the delivery count). KEYS: items.
/// ARGV: group, consumer, entry ids... Returns the ids it no longer owns.
static RENEW_ENTRIES: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local mine, lost = {}, {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == ARGV[2] then
    mine[#mine + 1] = ARGV[i]
  else
    lost[#lost + 1] = ARGV[i]
  end
end
for i = 1, #mine, 500 do
  local args = {KEYS[1], ARGV[1], ARGV[2], 0}
  for j = i, math.min(i + 499, #mine) do args[#args + 1] = mine[j] end
  args[#args + 1] = 'JUSTID'
  redis.call('XCLAIM', unpack(args))
end
return lost
",
    )
});

/// What a lease keeps alive.
#[derive(Debug)]
pub(crate) enum Held {
    /// A lock's owner key, holding the lease id.
    Owner { key: String },
    /// A semaphore unit: the lease id's member of the holders set.
    Unit { holders: String },
    /// The entries (ids) a queue consumer was delivered and has not acknowledged.
    Entries {
        items: String,
        group: &'static str,
        consumer: String,
        taken: Arc<Mutex<Taken>>,
    },
}

/// The entries a queue consumer holds: delivered to it and not yet acknowledged, in
/// delivery order, and those of them whose lease was found lapsed.
#[derive(Debug, Default)]
pub(crate) struct Taken {
    pub(crate) ids: std::collections::VecDeque<String>,
    pub(crate) lost: std::collections::HashSet<String>,
}

/// One lease this process holds; renewed while a strong reference lives (its guard's
/// or handle's) and it is not lost.
#[derive(Debug)]
pub(crate) struct Lease {
    pub(crate) id: String,
    held: Held,
    ms: u64,
    lost: AtomicBool,
    /// Given up by its holder (released): no longer renewed, and a renewal that runs
    /// meanwhile and finds it gone is no news.
    ended: AtomicBool,
}

impl Lease {
    pub(crate) fn new(id: String, held: Held, ms: u64) -> Arc<Lease> {
        Arc::new(Lease {
            id,
            held,
            ms,
            lost: AtomicBool::new(false),
            ended: AtomicBool::new(false),
        })
    }

    /// Its holder gives it up (before releasing it).
    pub(crate) fn end(&self) {
        self.ended.store(true, Ordering::SeqCst);
    }

    fn is_ended(&self) -> bool {
        self.ended.load(Ordering::SeqCst)
    }

    /// True once a renewal found the lease gone.
    pub(crate) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    fn period(&self) -> Duration {
        Duration::from_millis((self.ms / 3).max(20))
    }

    /// Renews it once; `Ok(false)` if it is gone. Entries: the lost ones are marked so
    /// in the held list (and `true` returned: the lease itself goes on).
    fn renew(&self, con: &mut Conn) -> redis::RedisResult<bool> {
        match &self.held {
            Held::Owner { key } => {
                let n: i64 =
                    con.call(|c| RENEW_OWNER.key(key).arg(&self.id).arg(self.ms).invoke(c))?;
                Ok(n == 1)
            }
            Held::Unit { holders } => {
                let n: i64 =
                    con.call(|c| RENEW_UNIT.key(holders).arg(&self.id).arg(self.ms).invoke(c))?;
                Ok(n == 1)
            }
            Held::Entries {
                items,
                group,
                consumer,
                taken,
            } => {
                let now: Vec<String> = {
                    let t = lock(taken);
                    t.ids
                        .iter()
                        .filter(|i| !t.lost.contains(*i))
                        .cloned()
                        .collect()
                };
                for chunk in now.chunks(2000) {
                    let lost: Vec<String> = con.call(|c| {
                        RENEW_ENTRIES
                            .key(items)
                            .arg(*group)
                            .arg(consumer)
                            .arg(chunk)
                            .invoke(c)
                    })?;
                    if !lost.is_empty() {
                        tracing::warn!(
                            entries = lost.len(),
                            queue = %items,
                            "concur queue: the lease of taken items lapsed; another consumer may take them"
                        );
                        lock(taken).lost.extend(lost);
                    }
                }
                Ok(true)
            }
        }
    }
}

struct Shared {
    leases: Mutex<Leases>,
    changed: Condvar,
    stop: AtomicBool,
}

/// The leases kept, each with when it is next due, and when the renewer thread wakes
/// next (`None`: it is not waiting): a new lease due later needs no wake-up.
#[derive(Default)]
struct Leases {
    all: Vec<(Weak<Lease>, Instant)>,
    wakes_at: Option<Instant>,
}

/// The renewer of one connection context; its thread starts with the first lease and
/// ends when the context is dropped.
pub(crate) struct Renewer {
    client: redis::Client,
    shared: Arc<Shared>,
    started: Mutex<bool>,
}

impl Renewer {
    pub(crate) fn new(client: redis::Client) -> Renewer {
        Renewer {
            client,
            shared: Arc::new(Shared {
                leases: Mutex::new(Leases::default()),
                changed: Condvar::new(),
                stop: AtomicBool::new(false),
            }),
            started: Mutex::new(false),
        }
    }

    /// Keeps `lease` alive from now on, until it is dropped or lost.
    pub(crate) fn keep(&self, lease: &Arc<Lease>) {
        {
            let mut started = lock(&self.started);
            if !*started {
                let (client, shared) = (self.client.clone(), self.shared.clone());
                let spawned = std::thread::Builder::new()
                    .name("concur-lease-renewer".into())
                    .spawn(move || run(client, &shared));
                match spawned {
                    Ok(_) => *started = true,
                    Err(e) => {
                        tracing::error!(error = %e, "concur objects: cannot start the lease renewer")
                    }
                }
            }
        }
        let due = Instant::now() + lease.period();
        let mut leases = lock(&self.shared.leases);
        leases.all.push((Arc::downgrade(lease), due));
        if leases.wakes_at.is_some_and(|w| w > due) {
            leases.wakes_at = None;
            drop(leases);
            self.shared.changed.notify_one();
        }
    }
}

impl Drop for Renewer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.changed.notify_all();
    }
}

fn run(client: redis::Client, shared: &Shared) {
    let mut con = Conn::new(client, CONNECT_TIMEOUT);
    loop {
        let due: Vec<Arc<Lease>> = {
            let mut leases = lock(&shared.leases);
            loop {
                if shared.stop.load(Ordering::SeqCst) {
                    return;
                }
                leases
                    .all
                    .retain(|(w, _)| w.upgrade().is_some_and(|l| !l.is_lost() && !l.is_ended()));
                let now = Instant::now();
                let next = leases.all.iter().map(|(_, t)| *t).min();
                let wait = match next {
                    Some(t) if t <= now => break,
                    Some(t) => t - now,
                    None => Duration::from_secs(1),
                };
                leases.wakes_at = Some(now + wait);
                leases = shared
                    .changed
                    .wait_timeout(leases, wait)
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
            }
            leases.wakes_at = None;
            let now = Instant::now();
            leases
                .all
                .iter_mut()
                .filter(|(_, t)| *t <= now)
                .filter_map(|(w, t)| {
                    let l = w.upgrade()?;
                    *t = now + l.period();
                    Some(l)
                })
                .collect()
        };
        for l in due {
            match l.renew(&mut con) {
                Ok(true) => {}
                Ok(false) if l.is_ended() => {}
                Ok(false) => {
                    tracing::warn!(lease = %l.id, "concur objects: a lease was found lapsed at renewal");
                    l.lost.store(true, Ordering::SeqCst);
                }
                Err(e) if conn::is_transient(&e) => {
                    // Tried again at its next period; if Redis stays away longer than
                    // the lease, the next renewal finds it lost.
                    tracing::warn!(error = %e, "concur objects: cannot renew a lease now");
                }
                Err(e) => {
                    tracing::error!(error = %e, lease = %l.id, "concur objects: renewal refused");
                }
            }
        }
    }
}
