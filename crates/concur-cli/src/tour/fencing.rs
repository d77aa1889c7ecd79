//! `fencing`: a cluster lock's fencing token stops a stale holder, live.
//!
//! A child process takes a `concur::cluster::Lock` (lease 1 s) and is then frozen
//! (SIGSTOP) — a GC pause, a swapped-out VM, a network partition: its lease lapses. This
//! process acquires the lock and is told the previous holder did not release it
//! (`OwnerDied`), with a higher fencing token, and writes to a toy resource that keeps
//! the highest token it has seen. The child is thawed and, still holding its guard,
//! writes with its stale token: the resource refuses it. Without fencing (Redlock) that
//! write would have overwritten the new holder's (Kleppmann, "How to do distributed
//! locking", 2016).

use super::{Ctx, Figure, Step, StepOutcome};
use concur::cluster::{Lock, RedisServer};
use concur::process::sync::TryAcquireError;
use concur::process::{Process, StartMethod};
use std::time::{Duration, Instant};

/// The `fencing` step.
pub(super) struct Fencing;

/// The toy resource: a write with `token` is accepted only if no higher token was seen.
const FENCED_WRITE: &str = r"
local seen = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) < seen then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
return 1
";

fn con(url: &str) -> redis::Connection {
    let c = redis::Client::open(url).expect("a valid URL");
    c.get_connection_with_timeout(Duration::from_secs(5))
        .expect("Redis answers")
}

fn fenced_write(url: &str, token: u64, data: &str) -> bool {
    redis::Script::new(FENCED_WRITE)
        .key("tour:resource:token")
        .key("tour:resource:data")
        .arg(token)
        .arg(data)
        .invoke::<i64>(&mut con(url))
        .is_ok_and(|r| r == 1)
}

fn get(url: &str, key: &str) -> Option<String> {
    redis::cmd("GET")
        .arg(key)
        .query(&mut con(url))
        .ok()
        .flatten()
}

fn set(url: &str, key: &str, v: impl redis::ToRedisArgs) {
    let _: Result<(), _> = redis::cmd("SET").arg(key).arg(v).query(&mut con(url));
}

/// The child: takes the lock, says its token, waits for "go" (frozen meanwhile), then
/// writes with its token and says whether the resource took it.
fn stale_holder((lock, url): (Lock, String)) {
    let Ok(Ok(g)) = lock.acquire() else { return };
    set(&url, "tour:held", g.fencing_token());
    while get(&url, "tour:go").is_none() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let accepted = fenced_write(&url, g.fencing_token(), "stale holder");
    set(&url, "tour:stale-accepted", u8::from(accepted));
    std::mem::forget(g);
}

fn wait_for(url: &str, key: &str, limit: Duration) -> Option<String> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if let Some(v) = get(url, key) {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

impl Step for Fencing {
    fn name(&self) -> &'static str {
        "fencing"
    }

    fn shows(&self) -> &'static str {
        "A cluster Lock holder frozen past its lease loses the lock; the next holder gets \
         a higher fencing token, and the stale holder's late write is refused."
    }

    fn run(&self, _ctx: &Ctx) -> StepOutcome {
        let redis = match RedisServer::start() {
            Ok(r) => r,
            Err(e) => {
                let ci = std::env::var_os("CI").is_some();
                return StepOutcome::new(
                    vec![],
                    "needs redis-server",
                    !ci,
                    format!("not run: {e}. Install Redis with `sudo apt-get install redis-server`"),
                );
            }
        };
        let url = redis.url();
        let fail = |why: String| StepOutcome::new(vec![], "error", false, why);
        let lock = match Lock::builder(&url, "tour")
            .lease(Duration::from_secs(1))
            .connect()
        {
            Ok(l) => l,
            Err(e) => return fail(e.to_string()),
        };
        let child = match Process::builder()
            .start_method(StartMethod::Spawn)
            .daemon(true)
            .spawn(stale_holder, (lock.clone(), url.clone()))
        {
            Ok(c) => c,
            Err(e) => return fail(e.to_string()),
        };
        let Some(t1) = wait_for(&url, "tour:held", Duration::from_secs(30)) else {
            return fail("the child never took the lock".into());
        };
        let t1: u64 = t1.parse().unwrap_or(0);
        let pid = child.pid().unwrap_or(0) as libc::pid_t;
        // SAFETY: signals our own child, not yet reaped.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        let frozen = Instant::now();
        let (g, told) = match lock.acquire_timeout(Duration::from_secs(30)) {
            Ok(Ok(g)) => (g, false),
            Ok(Err(TryAcquireError::OwnerDied(e))) => (e.into_inner(), true),
            Ok(Err(e)) => return fail(format!("the lock was not taken over: {e}")),
            Err(e) => return fail(e.to_string()),
        };
        let waited = frozen.elapsed();
        let t2 = g.fencing_token();
        let new_ok = fenced_write(&url, t2, "new holder");
        set(&url, "tour:go", 1);
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGCONT) };
        let stale = wait_for(&url, "tour:stale-accepted", Duration::from_secs(30));
        let _ = child.terminate();
        let _ = child.join_timeout(Duration::from_secs(10));
        let released = g.release().unwrap_or(false);
        let data = get(&url, "tour:resource:data").unwrap_or_default();
        let stale_refused = stale.as_deref() == Some("0");
        let figures = vec![
            Figure::int("lease", 1000, "ms"),
            Figure::int("stale holder's token", t1, ""),
            Figure::int("new holder's token", t2, ""),
            Figure::float("taken over after", waited.as_secs_f64() * 1e3, "ms"),
            Figure::text("new holder told the owner died", told.to_string()),
            Figure::text("stale write refused", stale_refused.to_string()),
            Figure::text("resource holds", data.clone()),
        ];
        let passed = t2 > t1 && told && new_ok && stale_refused && data == "new holder" && released;
        let verdict = if passed {
            format!("token {t2} > {t1}: the frozen holder's late write was refused")
        } else {
            format!(
                "tokens {t1} -> {t2}, owner died told {told}, new write {new_ok}, stale \
                 {stale:?}, resource {data:?}, released {released}"
            )
        };
        StepOutcome::new(figures, "stale write refused", passed, verdict)
    }
}
