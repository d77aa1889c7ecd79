//! Hostile and mistaken input: malformed entries written by a raw client, a worker of
//! another build, credentials in the URL.

mod support;

use std::time::Duration;

use concur_cluster::{RedisExecutor, RedisServer};
use concur_core::futures::Executor;
use support::{WorkerSpec, eventually, pool, pool_stat, raw, redis, within};

const BOUND: Duration = Duration::from_secs(180);

fn double(x: u64) -> u64 {
    x * 2
}

fn xlen(con: &mut redis::Connection, key: &str) -> u64 {
    redis::cmd("XLEN").arg(key).query(con).unwrap()
}

/// Entry number `i` of 1,000 malformed ones, each broken in one of a dozen ways.
fn malformed(i: usize, pool: &str, name: &str, fp: &str) -> Vec<(String, Vec<u8>)> {
    let reply = format!("concur:{pool}:r:attacker");
    let good = |id: String| -> Vec<(String, Vec<u8>)> {
        vec![
            ("v".into(), b"1".to_vec()),
            ("id".into(), id.into_bytes()),
            ("kind".into(), b"call".to_vec()),
            ("name".into(), name.as_bytes().to_vec()),
            ("fp".into(), fp.as_bytes().to_vec()),
            ("enc".into(), b"postcard".to_vec()),
            ("deadline".into(), b"0".to_vec()),
            ("attempt".into(), b"1".to_vec()),
            ("nbf".into(), b"0".to_vec()),
            ("tries".into(), b"3".to_vec()),
            ("backoff".into(), b"0".to_vec()),
            ("ttl".into(), b"60000".to_vec()),
            ("reply".into(), reply.clone().into_bytes()),
            ("args".into(), postcard::to_stdvec(&7u64).unwrap()),
        ]
    };
    let set = |mut f: Vec<(String, Vec<u8>)>, k: &str, v: &[u8]| {
        f.retain(|(x, _)| x != k);
        f.push((k.to_owned(), v.to_vec()));
        f
    };
    let id = format!("evil-{i}");
    match i % 12 {
        0 => vec![("x".into(), b"y".to_vec())],
        1 => good(id).into_iter().filter(|(k, _)| k != "args").collect(),
        2 => set(good(id), "v", b"2"),
        3 => set(good(id), "kind", b"jump"),
        4 => set(good(id), "name", &[0xff, 0xfe, 0x00]),
        5 => set(good(id), "args", &vec![0u8; 4096]), // over the worker's 1 KiB limit
        6 => set(good(id), "name", b"app::no_such_function"),
        7 => set(good(id), "args", &[0xff; 9]), // not a u64 in postcard
        8 => set(good(id), "attempt", b"many"),
        9 => set(good(id), "id", b"spaces are not ids"),
        10 => set(good(id), "deadline", &[0x80; 40]),
        _ => (0..20)
            .map(|j| (format!("f{j}"), vec![(i * j) as u8; (i + j) % 64]))
            .collect(),
    }
}

#[test]
fn a_thousand_malformed_entries_are_dead_lettered_and_the_workers_keep_serving() {
    within(BOUND, "malformed entries", || {
        let redis = redis();
        let (url, pool) = (redis.url(), pool("bad"));
        let name = concur_cluster::register(double);
        let fp = concur_cluster::build_fingerprint().to_owned();
        let mut spec = WorkerSpec::new(&url, &pool).slots(2);
        spec.max_payload = Some(1024);
        let worker = spec.spawn();
        let ex = RedisExecutor::connect(&url, &pool).unwrap();
        assert_eq!(ex.call(double, 1).unwrap().result().unwrap(), 2);
        let mut con = raw(&url);
        let tasks = format!("concur:{pool}:tasks");
        for i in 0..1000 {
            let mut cmd = redis::cmd("XADD");
            cmd.arg(&tasks).arg("*");
            for (k, v) in malformed(i, &pool, &name, &fp) {
                cmd.arg(k).arg(v);
            }
            let _: String = cmd.query(&mut con).unwrap();
            if i % 100 == 0 {
                // Good work interleaved with the garbage is served all along.
                assert_eq!(
                    ex.call(double, i as u64).unwrap().result().unwrap(),
                    2 * i as u64
                );
            }
        }
        let dead = format!("concur:{pool}:dead");
        eventually(Duration::from_secs(60), "all 1,000 dead-lettered", || {
            xlen(&mut con, &dead) == 1000
        });
        assert!(
            support::all_settled(&mut con, &pool),
            "every entry delivered and settled"
        );
        assert_eq!(pool_stat(&mut con, &pool, "bad"), 1000);
        assert!(
            support::pending_consumers(&mut con, &pool)
                .iter()
                .all(|(_, n)| *n == 0)
        );
        // Those with a readable id and a reply stream of this pool told their caller.
        let told: u64 = xlen(&mut con, &format!("concur:{pool}:r:attacker"));
        assert!(told >= 400, "callers told: {told}");
        // Each dead letter says why.
        let first: redis::Value = redis::cmd("XRANGE")
            .arg(&dead)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(12)
            .query(&mut con)
            .unwrap();
        let text = format!("{first:?}");
        assert!(text.contains("cause_msg"), "{text}");
        assert_eq!(ex.call(double, 50).unwrap().result().unwrap(), 100);
        let s = worker.stop();
        assert_eq!(s.bad_entries, 1000, "{s:?}");
    });
}

#[test]
fn a_worker_of_another_build_refuses_with_build_mismatch() {
    within(BOUND, "build mismatch", || {
        let redis = redis();
        let (url, pool) = (redis.url(), pool("mismatch"));
        let worker = WorkerSpec::new(&url, &pool)
            .fingerprint("0123456789abcdef")
            .spawn();
        let ex = RedisExecutor::connect(&url, &pool).unwrap();
        let e = ex.call(double, 1).unwrap().result().unwrap_err();
        assert!(e.is_build_mismatch(), "{e}");
        assert!(e.to_string().contains("0123456789abcdef"), "{e}");
        let s = worker.stop();
        assert_eq!((s.mismatched, s.completed), (1, 0), "{s:?}");
    });
}

#[test]
fn credentials_come_from_the_url_and_a_wrong_password_is_refused() {
    within(BOUND, "auth", || {
        let redis = RedisServer::builder().password("s3cret").start().unwrap();
        let url = redis.url();
        assert!(url.contains(":s3cret@"));
        let pool = pool("auth");
        let bad = url.replace("s3cret", "wrong");
        let e = RedisExecutor::connect(&bad, &pool).unwrap_err();
        assert!(e.is_auth_failed(), "{e}");
        let none = url.replace(":s3cret@", "");
        let e = RedisExecutor::connect(&none, &pool).unwrap_err();
        assert!(e.is_auth_failed(), "{e}");
        let worker = WorkerSpec::new(&url, &pool).spawn();
        let ex = RedisExecutor::connect(&url, &pool).unwrap();
        assert_eq!(ex.call(double, 4).unwrap().result().unwrap(), 8);
        worker.stop();
    });
}
