//! `cluster::Lock` against a private redis-server: the four forms of acquiring,
//! mutual exclusion across 4 processes (1,000 read-modify-write increments each of a
//! plain Redis key), a holder stopped (SIGSTOP) past its lease losing the lock to a
//! higher fencing token and having its stale write refused by a fenced resource, a
//! holder killed (SIGKILL) reported to the next acquirer as `OwnerDied`, and a long
//! critical section kept by the renewer.

mod objects_common;
mod support;

use std::time::{Duration, Instant};

use concur_cluster::Lock;
use concur_process::sync::{OwnerDied, TryAcquireError};
use objects_common::{LIMIT, name, spawn};
use support::{eventually, raw, redis, within};

fn get(url: &str, key: &str) -> Option<String> {
    redis::cmd("GET").arg(key).query(&mut raw(url)).unwrap()
}

fn set(url: &str, key: &str, v: impl redis::ToRedisArgs) {
    redis::cmd("SET")
        .arg(key)
        .arg(v)
        .query::<()>(&mut raw(url))
        .unwrap()
}

#[test]
fn the_four_forms_and_the_guard() {
    within(LIMIT, "lock forms", || {
        let redis = redis();
        let url = redis.url();
        let lock = Lock::connect(&url, &name("forms")).unwrap();
        assert!(!lock.locked().unwrap());
        let g = lock.acquire().unwrap().expect("nobody died");
        assert!(lock.locked().unwrap());
        let t1 = g.fencing_token();
        assert!(matches!(
            lock.try_acquire().unwrap(),
            Err(TryAcquireError::WouldBlock)
        ));
        for wait in [Duration::ZERO, Duration::from_millis(100)] {
            let start = Instant::now();
            assert!(lock.acquire_timeout(wait).unwrap().is_err());
            assert!(start.elapsed() >= wait);
        }
        let start = Instant::now();
        let d = start + Duration::from_millis(100);
        assert!(lock.acquire_deadline(d).unwrap().is_err());
        assert!(Instant::now() >= d);
        assert!(g.release().unwrap(), "held to the end");
        assert!(!lock.locked().unwrap());

        let g = lock.try_acquire().unwrap().expect("free");
        assert!(g.fencing_token() > t1, "tokens only go up");
        drop(g);
        let g = lock
            .acquire_deadline(Instant::now() + Duration::from_secs(5))
            .unwrap()
            .unwrap();
        drop(g);
        // Another handle of the same name is the same lock; other names are not.
        let same = Lock::connect(&url, lock.name()).unwrap();
        let other = Lock::connect(&url, &name("other")).unwrap();
        let _g = same.acquire().unwrap().unwrap();
        assert!(lock.try_acquire().unwrap().is_err());
        assert!(other.try_acquire().unwrap().is_ok());
        assert!(same.same(&lock) && !other.same(&lock));
    });
}

#[test]
fn the_holding_thread_asking_again_is_refused_not_hung() {
    within(LIMIT, "lock self-deadlock", || {
        let redis = redis();
        let lock = Lock::connect(&redis.url(), &name("self")).unwrap();
        let g = lock.acquire().unwrap().unwrap();
        assert!(matches!(
            lock.try_acquire().unwrap(),
            Err(TryAcquireError::WouldBlock)
        ));
        let start = Instant::now();
        assert!(
            lock.acquire_timeout(Duration::from_millis(50))
                .unwrap()
                .is_err()
        );
        assert!(start.elapsed() >= Duration::from_millis(50));
        let again = Lock::connect(&redis.url(), lock.name()).unwrap();
        let p = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = again.acquire();
        }));
        let msg = p.unwrap_err();
        let msg = msg.downcast_ref::<String>().unwrap();
        assert!(msg.contains("deadlock"), "{msg}");
        // A guard dropped on another thread frees the lock for this one.
        std::thread::scope(|s| {
            s.spawn(move || drop(g));
        });
        assert!(lock.try_acquire().unwrap().is_ok());
    });
}

#[test]
fn bad_input_is_a_typed_error() {
    within(LIMIT, "lock bad input", || {
        let redis = redis();
        let url = redis.url();
        for bad in ["", "a b", "a:b", "{x}"] {
            assert!(
                Lock::connect(&url, bad).unwrap_err().is_invalid(),
                "{bad:?}"
            );
        }
        assert!(Lock::connect("http://x", "n").unwrap_err().is_invalid());
        let e = Lock::builder(&url, "n")
            .lease(Duration::from_millis(5))
            .connect()
            .unwrap_err();
        assert!(e.is_invalid(), "{e}");
        let nobody = Lock::connect("redis://127.0.0.1:1/0", "n").unwrap_err();
        assert!(nobody.is_connection(), "{nobody}");
    });
}

#[test]
fn a_release_wakes_a_blocked_waiter() {
    within(LIMIT, "lock wake-up", || {
        let redis = redis();
        // A lease far longer than the test: the waiter can only get the lock from
        // the release, not from a lapse (a lapse would also say OwnerDied).
        let lock = Lock::builder(&redis.url(), &name("wake"))
            .lease(Duration::from_secs(600))
            .connect()
            .unwrap();
        let g = lock.acquire().unwrap().unwrap();
        let l2 = lock.clone();
        let waiter = std::thread::spawn(move || {
            let g = l2.acquire().unwrap().expect("released, not lapsed");
            g.fencing_token()
        });
        std::thread::sleep(Duration::from_millis(200));
        let t1 = g.fencing_token();
        drop(g);
        assert!(waiter.join().unwrap() > t1);
    });
}

/// 1,000 increments of a plain Redis key, each a GET then a SET (not atomic: only the
/// lock makes them exact). Also checks the fencing tokens seen inside the lock only
/// go up.
fn increment((lock, url, key, n): (Lock, String, String, u32)) -> u32 {
    let mut con = raw(&url);
    for _ in 0..n {
        let g = lock
            .acquire()
            .unwrap()
            .unwrap_or_else(OwnerDied::into_inner);
        let v: Option<u64> = redis::cmd("GET").arg(&key).query(&mut con).unwrap();
        let last: Option<u64> = redis::cmd("GET")
            .arg(format!("{key}:token"))
            .query(&mut con)
            .unwrap();
        assert!(
            last.is_none_or(|t| g.fencing_token() > t),
            "a token went down"
        );
        redis::cmd("SET")
            .arg(&key)
            .arg(v.unwrap_or(0) + 1)
            .query::<()>(&mut con)
            .unwrap();
        redis::cmd("SET")
            .arg(format!("{key}:token"))
            .arg(g.fencing_token())
            .query::<()>(&mut con)
            .unwrap();
        assert!(g.release().unwrap(), "the lease held");
    }
    n
}

#[test]
fn four_processes_times_a_thousand_locked_increments_are_exact() {
    within(LIMIT, "4 x 1000 locked increments", || {
        let redis = redis();
        let url = redis.url();
        let lock = Lock::connect(&url, &name("counter")).unwrap();
        let children: Vec<_> = (0..4)
            .map(|_| {
                spawn(
                    increment,
                    (lock.clone(), url.clone(), "counter".to_owned(), 1000),
                )
            })
            .collect();
        let done: u32 = children.into_iter().map(|c| c.join()).sum();
        assert_eq!(done, 4000);
        assert_eq!(get(&url, "counter").as_deref(), Some("4000"));
    });
}

/// The protected resource of Kleppmann's example: it remembers the highest fencing
/// token it has seen and refuses a write carrying a lower one. Returns whether the
/// write was accepted.
fn fenced_write(url: &str, token: u64, value: &str) -> bool {
    let script = redis::Script::new(
        r"
local max = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) < max then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
return 1
",
    );
    let n: i64 = script
        .key("resource:max-token")
        .key("resource:data")
        .arg(token)
        .arg(value)
        .invoke(&mut raw(url))
        .unwrap();
    n == 1
}

/// Takes the lock, writes under it, says so, then waits for "go" (the test stops
/// this process meanwhile), writes again with its (now stale) token and reports.
fn paused_holder((lock, url): (Lock, String)) {
    let g = lock.acquire().unwrap().expect("the first holder");
    assert!(fenced_write(&url, g.fencing_token(), "first holder"));
    set(&url, "held", g.fencing_token());
    let end = Instant::now() + Duration::from_secs(120);
    while get(&url, "go").is_none() {
        assert!(Instant::now() < end, "never told to go on");
        std::thread::sleep(Duration::from_millis(10));
    }
    let accepted = fenced_write(&url, g.fencing_token(), "stale holder");
    set(&url, "stale-accepted", u8::from(accepted));
    let exclusive = g.release().unwrap();
    set(&url, "stale-release", u8::from(exclusive));
}

#[test]
fn a_holder_stopped_past_its_lease_loses_the_lock_and_its_stale_write_is_refused() {
    within(LIMIT, "SIGSTOP past the lease", || {
        let redis = redis();
        let url = redis.url();
        let lock = Lock::builder(&url, &name("fenced"))
            .lease(Duration::from_secs(1))
            .connect()
            .unwrap();
        let child = spawn(paused_holder, (lock.clone(), url.clone()));
        eventually(Duration::from_secs(60), "the child holds the lock", || {
            get(&url, "held").is_some()
        });
        let t1: u64 = get(&url, "held").unwrap().parse().unwrap();
        child.signal(libc::SIGSTOP);
        // Its renewer is stopped with it: the lease lapses, and we get the lock,
        // told that its previous holder did not release it.
        let g = match lock.acquire_timeout(Duration::from_secs(60)).unwrap() {
            Err(TryAcquireError::OwnerDied(e)) => e.into_inner(),
            Ok(_) => panic!("the stopped holder's lapse must be reported as OwnerDied"),
            Err(TryAcquireError::WouldBlock) => panic!("the lease never lapsed"),
        };
        let t2 = g.fencing_token();
        assert!(
            t2 > t1,
            "the new holder's token {t2} is above the stale {t1}"
        );
        assert!(fenced_write(&url, t2, "second holder"));
        // The stale holder wakes up still holding its guard, and writes.
        set(&url, "go", 1);
        child.signal(libc::SIGCONT);
        eventually(Duration::from_secs(60), "the stale holder reports", || {
            get(&url, "stale-release").is_some()
        });
        assert_eq!(
            get(&url, "stale-accepted").as_deref(),
            Some("0"),
            "the resource refused the stale token"
        );
        assert_eq!(
            get(&url, "stale-release").as_deref(),
            Some("0"),
            "its release says another holder came in"
        );
        assert_eq!(get(&url, "resource:data").as_deref(), Some("second holder"));
        assert!(
            lock.locked().unwrap(),
            "the stale release did not free our lock"
        );
        assert!(g.release().unwrap());
        child.join();
    });
}

/// Takes the lock, says so, and sleeps until killed.
fn doomed_holder((lock, url): (Lock, String)) {
    let g = lock.acquire().unwrap().expect("the first holder");
    set(&url, "held", g.fencing_token());
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn a_holder_killed_is_reported_to_the_next_acquirer() {
    within(LIMIT, "SIGKILL of the holder", || {
        let redis = redis();
        let url = redis.url();
        let lock = Lock::builder(&url, &name("robust"))
            .lease(Duration::from_secs(1))
            .connect()
            .unwrap();
        let child = spawn(doomed_holder, (lock.clone(), url.clone()));
        eventually(Duration::from_secs(60), "the child holds the lock", || {
            get(&url, "held").is_some()
        });
        assert!(lock.try_acquire().unwrap().is_err(), "the child holds it");
        child.kill();
        let g = match lock.acquire_timeout(Duration::from_secs(60)).unwrap() {
            Err(TryAcquireError::OwnerDied(e)) => e.into_inner(),
            other => panic!("expected OwnerDied, got {other:?}"),
        };
        let t1: u64 = get(&url, "held").unwrap().parse().unwrap();
        assert!(g.fencing_token() > t1);
        drop(g);
        // Only that acquirer is told.
        assert!(lock.acquire().unwrap().is_ok());
    });
}

#[test]
fn the_renewer_keeps_a_long_critical_section() {
    within(LIMIT, "renewal", || {
        let redis = redis();
        let url = redis.url();
        let lease = Duration::from_secs(2);
        let lock = Lock::builder(&url, &name("long"))
            .lease(lease)
            .connect()
            .unwrap();
        let other = Lock::builder(&url, lock.name())
            .lease(lease)
            .connect()
            .unwrap();
        let g = lock.acquire().unwrap().unwrap();
        let end = Instant::now() + lease * 3;
        while Instant::now() < end {
            assert!(other.try_acquire().unwrap().is_err(), "still held");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(!g.is_lost());
        assert!(g.release().unwrap(), "held throughout");
        assert!(other.acquire().unwrap().is_ok(), "released, not lapsed");
    });
}
