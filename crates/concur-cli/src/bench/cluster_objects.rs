//! The cluster-objects suite: the cluster tier's shared objects beside a bare Redis
//! client doing the same thing by hand, on one private `redis-server`.
//!
//! Cases (one client connection each, on loopback; every subject warmed before the
//! clock starts):
//! - `lock-acquire-release`: an uncontended `cluster::Lock` acquire and release (two
//!   scripts, the guard's lease registered with the renewer and dropped), against a
//!   bare `SET key value NX PX 10000` then `DEL key`. Goal: ≤ 2× the bare time
//!   (ratio ≥ 0.5).
//! - `dict-get`: `cluster::Dict<u64, u64>::get` of a present key (one `HGET`, the key
//!   encoded and the value decoded), against a bare `HGET` of the same field.
//!   Goal: ≤ 1.2× the bare time (ratio ≥ 0.83).
//! - `queue-put-get`: N items through a queue, a producer thread putting them one at
//!   a time and a consumer thread taking them with a prefetch of [`BATCH`]; time per
//!   item. concur: `Queue::put`, `get` and `task_done` (one acknowledgment per item,
//!   as a reliable consumer does). Bare, with the same batching: `XADD` per item and
//!   `XREADGROUP COUNT 64`, with `XACK` per entry (the same work) and without
//!   acknowledging at all (the anchor as the issue states it). Goal: ≥ 0.5× the bare
//!   throughput.

use super::Measurement;
use super::adapters::{Family, Origin};
use super::process::{Subject, per_op, run_subjects};
use concur::cluster::{Dict, Lock, Queue, RedisServer};
use indicatif::ProgressBar;
use serde::Serialize;
use std::time::{Duration, Instant};

/// What the operations are, for the JSON document.
pub(super) const OPERATION: &str = "lock-acquire-release: one uncontended cluster Lock acquire \
     and release (bare: SET NX PX then DEL); dict-get: one Dict::get of a present u64 key (bare: \
     HGET); queue-put-get: one item put by a producer thread and taken by a consumer thread with \
     a prefetch of 64 (concur: put, get, task_done; bare: XADD, XREADGROUP COUNT 64, with and \
     without an XACK per entry), time per item";

/// Items a consumer takes per read (concur's prefetch, the bare `COUNT`).
pub(super) const BATCH: usize = 64;

/// Sizes of the suite's cases.
#[derive(Debug, Clone, Serialize)]
pub(super) struct ClusterObjectsSizes {
    /// Acquire + release pairs per run.
    pub(super) locks: u64,
    /// Gets per run.
    pub(super) gets: u64,
    /// Items per run of `queue-put-get`.
    pub(super) items: u64,
}

impl ClusterObjectsSizes {
    /// Full or `--quick` sizes.
    pub(super) fn new(quick: bool) -> Self {
        if quick {
            ClusterObjectsSizes {
                locks: 1_000,
                gets: 2_000,
                items: 2_000,
            }
        } else {
            ClusterObjectsSizes {
                locks: 20_000,
                gets: 50_000,
                items: 50_000,
            }
        }
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Runs the suite into `results`; failures go to `errors`, a missing `redis-server`
/// to `notes` (to `errors` under CI).
pub(super) fn run_suite(
    sizes: &ClusterObjectsSizes,
    runs: u32,
    bar: &ProgressBar,
    results: &mut Vec<Measurement>,
    errors: &mut Vec<String>,
    notes: &mut Vec<String>,
) {
    let redis = match RedisServer::start() {
        Ok(r) => r,
        Err(e) => {
            let msg = format!("cluster-objects suite not run: {e}");
            if std::env::var_os("CI").is_some() {
                errors.push(msg);
            } else {
                notes.push(msg);
            }
            return;
        }
    };
    let url = redis.url();
    let subject =
        |case, name, family, origin, ops, run: Box<dyn Fn() -> Result<f64, String>>| Subject {
            case,
            name,
            family,
            origin,
            threads: 1,
            ops,
            run,
        };
    let (u, n) = (url.clone(), sizes.locks);
    let mut subjects = vec![
        subject(
            "lock-acquire-release",
            "concur cluster::Lock acquire+release",
            Family::Lock,
            Origin::Concur,
            n,
            Box::new(move || concur_lock(&u, n)),
        ),
        subject(
            "lock-acquire-release",
            "bare redis SET NX PX + DEL",
            Family::Lock,
            Origin::RedisBare,
            n,
            Box::new({
                let u = url.clone();
                move || bare::lock(&u, n)
            }),
        ),
    ];
    let n = sizes.gets;
    subjects.push(subject(
        "dict-get",
        "concur cluster::Dict::get",
        Family::ManagerRoundTrip,
        Origin::Concur,
        n,
        Box::new({
            let u = url.clone();
            move || concur_dict_get(&u, n)
        }),
    ));
    subjects.push(subject(
        "dict-get",
        "bare redis HGET",
        Family::ManagerRoundTrip,
        Origin::RedisBare,
        n,
        Box::new({
            let u = url.clone();
            move || bare::hget(&u, n)
        }),
    ));
    let n = sizes.items;
    subjects.push(subject(
        "queue-put-get",
        "concur cluster::Queue put+get+task_done",
        Family::QueueUnbounded,
        Origin::Concur,
        n,
        Box::new({
            let u = url.clone();
            move || concur_queue(&u, n)
        }),
    ));
    for ack in [true, false] {
        subjects.push(subject(
            "queue-put-get",
            if ack {
                "bare redis XADD+XREADGROUP+XACK"
            } else {
                "bare redis XADD+XREADGROUP"
            },
            Family::QueueUnbounded,
            Origin::RedisBare,
            n,
            Box::new({
                let u = url.clone();
                move || bare::stream(&u, n, ack)
            }),
        ));
    }
    for s in &mut subjects {
        if s.case == "queue-put-get" {
            s.threads = 2;
        }
    }
    run_subjects("cluster-objects", &subjects, runs, bar, results, errors);
    drop(subjects);
    drop(redis);
}

/// A name no other run uses (each run starts from fresh keys).
fn fresh(what: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("bench-{what}-{}", N.fetch_add(1, Ordering::Relaxed))
}

fn concur_lock(url: &str, n: u64) -> Result<f64, String> {
    let lock = Lock::connect(url, &fresh("lock")).map_err(err)?;
    for _ in 0..100 {
        lock.acquire()
            .map_err(err)?
            .map_err(err)?
            .release()
            .map_err(err)?;
    }
    let begin = Instant::now();
    for _ in 0..n {
        let g = lock.acquire().map_err(err)?.map_err(err)?;
        drop(g);
    }
    Ok(per_op(begin.elapsed(), n))
}

const KEY: u64 = 7;
const VALUE: u64 = 49;

fn concur_dict_get(url: &str, n: u64) -> Result<f64, String> {
    let d = Dict::<u64, u64>::connect(url, &fresh("dict")).map_err(err)?;
    d.insert(KEY, VALUE).map_err(err)?;
    for _ in 0..100 {
        d.get(&KEY).map_err(err)?;
    }
    let begin = Instant::now();
    let mut sum = 0u64;
    for _ in 0..n {
        sum = sum.wrapping_add(d.get(&KEY).map_err(err)?.ok_or("the key is gone")?);
    }
    let elapsed = begin.elapsed();
    if sum != VALUE.wrapping_mul(n) {
        return Err(format!("Dict::get returned a wrong value (sum {sum})"));
    }
    Ok(per_op(elapsed, n))
}

fn concur_queue(url: &str, n: u64) -> Result<f64, String> {
    let name = fresh("queue");
    let q = Queue::<u64>::builder(url, &name, 0)
        .prefetch(BATCH)
        .connect()
        .map_err(err)?;
    // Warm: the scripts loaded, both connections made.
    q.put(0).map_err(err)?;
    q.get().map_err(err)?;
    q.task_done().map_err(err)?;
    let producer = q.clone();
    let begin = Instant::now();
    let t = std::thread::spawn(move || -> Result<(), String> {
        for i in 0..n {
            producer.put(i).map_err(err)?;
        }
        Ok(())
    });
    let mut sum = 0u64;
    for _ in 0..n {
        sum = sum.wrapping_add(q.get().map_err(err)?);
        q.task_done().map_err(err)?;
    }
    let elapsed = begin.elapsed();
    t.join().map_err(|_| "the producer panicked")??;
    if sum != n * (n - 1) / 2 {
        return Err(format!("the queue delivered a wrong sum ({sum})"));
    }
    Ok(per_op(elapsed, n))
}

/// The same rounds by hand, with a bare `redis` client.
mod bare {
    use super::*;

    pub(super) fn connect(url: &str) -> Result<redis::Connection, String> {
        let c = redis::Client::open(url).map_err(err)?;
        let con = c.get_connection().map_err(err)?;
        con.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(err)?;
        Ok(con)
    }

    pub(super) fn lock(url: &str, n: u64) -> Result<f64, String> {
        let mut con = connect(url)?;
        let key = fresh("bare-lock");
        let once = |con: &mut redis::Connection| -> Result<(), String> {
            let ok: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg("0123456789abcdef")
                .arg("NX")
                .arg("PX")
                .arg(10_000)
                .query(con)
                .map_err(err)?;
            if ok.is_none() {
                return Err("the bare lock was held".into());
            }
            redis::cmd("DEL").arg(&key).query::<()>(con).map_err(err)
        };
        for _ in 0..100 {
            once(&mut con)?;
        }
        let begin = Instant::now();
        for _ in 0..n {
            once(&mut con)?;
        }
        Ok(per_op(begin.elapsed(), n))
    }

    pub(super) fn hget(url: &str, n: u64) -> Result<f64, String> {
        let mut con = connect(url)?;
        let h = fresh("bare-hash");
        // Bytes of the same length as the encoded key and value (one byte each).
        let field = [KEY as u8];
        redis::cmd("HSET")
            .arg(&h)
            .arg(&field[..])
            .arg(&[VALUE as u8][..])
            .query::<()>(&mut con)
            .map_err(err)?;
        let get = |con: &mut redis::Connection| -> Result<Vec<u8>, String> {
            let v: Option<Vec<u8>> = redis::cmd("HGET")
                .arg(&h)
                .arg(&field[..])
                .query(con)
                .map_err(err)?;
            v.ok_or_else(|| "the field is gone".to_string())
        };
        for _ in 0..100 {
            get(&mut con)?;
        }
        let begin = Instant::now();
        let mut bytes = 0;
        for _ in 0..n {
            bytes += get(&mut con)?.len();
        }
        let elapsed = begin.elapsed();
        if bytes == 0 {
            return Err("HGET returned nothing".into());
        }
        Ok(per_op(elapsed, n))
    }

    pub(super) fn stream(url: &str, n: u64, ack: bool) -> Result<f64, String> {
        let key = fresh("bare-stream");
        let mut con = connect(url)?;
        redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&key)
            .arg("g")
            .arg("0")
            .arg("MKSTREAM")
            .query::<()>(&mut con)
            .map_err(err)?;
        let mut producer = connect(url)?;
        let begin = Instant::now();
        let k2 = key.clone();
        let t = std::thread::spawn(move || -> Result<(), String> {
            for i in 0..n {
                redis::cmd("XADD")
                    .arg(&k2)
                    .arg("*")
                    .arg("d")
                    .arg(&i.to_le_bytes()[..])
                    .query::<String>(&mut producer)
                    .map_err(err)?;
            }
            Ok(())
        });
        let mut got = 0u64;
        let mut sum = 0u64;
        while got < n {
            let r: Option<redis::streams::StreamReadReply> = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg("g")
                .arg("c")
                .arg("COUNT")
                .arg(BATCH)
                .arg("BLOCK")
                .arg(1000)
                .arg("STREAMS")
                .arg(&key)
                .arg(">")
                .query(&mut con)
                .map_err(err)?;
            for k in r.map(|r| r.keys).unwrap_or_default() {
                for e in k.ids {
                    if let Some(redis::Value::BulkString(b)) = e.map.get("d") {
                        let b: [u8; 8] = b.as_slice().try_into().map_err(err)?;
                        sum = sum.wrapping_add(u64::from_le_bytes(b));
                    }
                    got += 1;
                    if ack {
                        redis::cmd("XACK")
                            .arg(&key)
                            .arg("g")
                            .arg(&e.id)
                            .query::<()>(&mut con)
                            .map_err(err)?;
                    }
                }
            }
        }
        let elapsed = begin.elapsed();
        t.join().map_err(|_| "the producer panicked")??;
        redis::cmd("DEL")
            .arg(&key)
            .query::<()>(&mut con)
            .map_err(err)?;
        if sum != n * (n - 1) / 2 {
            return Err(format!("the bare stream delivered a wrong sum ({sum})"));
        }
        Ok(per_op(elapsed, n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subject_runs_and_checks_its_result() {
        super::super::within_a_minute("the cluster-objects subjects", || {
            let redis = RedisServer::start().expect("redis-server");
            let url = redis.url();
            for ns in [
                concur_lock(&url, 50),
                bare::lock(&url, 50),
                concur_dict_get(&url, 50),
                bare::hget(&url, 50),
                concur_queue(&url, 200),
                bare::stream(&url, 200, true),
                bare::stream(&url, 200, false),
            ] {
                assert!(ns.unwrap() > 0.0);
            }
        });
    }
}
