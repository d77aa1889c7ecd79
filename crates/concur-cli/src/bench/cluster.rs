//! The cluster suite: concur's `RedisExecutor` beside a bare Redis client doing the same
//! round by hand, and beside Celery, Dramatiq and RQ, all on one private
//! `redis-server` with 2 workers.
//!
//! Cases:
//! - `submit-result`: N tiny tasks (`x + 1`) submitted, then every result read and
//!   checked. concur: a `RedisExecutor` and 2 worker processes of this binary (one slot
//!   each, the default process-pool local executor). The bare harness (the engine's
//!   ceiling), in two forms: pipelined `XADD`s of the tasks, 2 worker threads each
//!   `XREADGROUP COUNT 16` and answering every entry with `MULTI { XADD result; XACK }`,
//!   the caller reading the result stream; the MULTIs sent one round trip each (the
//!   harness the issue measured at ~17,700 tasks/s) or all of a batch's in one round
//!   trip (the strongest form). Celery (2 prefork processes), Dramatiq (2 processes)
//!   and RQ (2 workers) through `cluster_anchors.py` in the bench's virtual environment
//!   (`scripts/bench-venv.sh`; skipped with a note without it, and in `--quick` runs).
//! - `round-trip`: one task at a time, submit → result; the median of K round trips.
//!   Same subjects.
//! - `map`: a lazy `Executor::map` of M tiny items with chunks of 10,000 through the
//!   cluster; ns per item (the goal is absolute: ≥ 500,000 items/s).
//! - `reclaim`: a worker SIGKILLed while it runs a 300 ms task; the time until the task's
//!   result arrives from another worker, with the pool's lease at 1 s.

use super::Measurement;
use super::adapters::{Family, Origin};
use super::process::{Subject, per_op, run_subjects};
use crate::cluster::{LocalCluster, increment, sleep_ms};
use concur::cluster::RedisExecutor;
use concur::futures::{Executor, MapOptions, TaskError};
use indicatif::ProgressBar;
use serde::Serialize;
use std::cell::RefCell;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What the operations are, for the JSON document.
pub(crate) const OPERATION: &str = "submit-result: one tiny task (x + 1) submitted to a Redis pool \
     served by 2 workers and its result read (time per task); round-trip: one task at a time, \
     submit to result (median); map: one item of a lazy map in chunks of 10,000 (time per \
     item); reclaim: a worker killed mid-task, to the result from another worker (lease 1 s)";

/// Workers serving every subject.
const WORKERS: usize = 2;
/// The chunk size of the map case.
const MAP_CHUNK: usize = 10_000;
/// The pool's lease in the reclaim case.
const RECLAIM_LEASE_MS: u64 = 1000;

/// Sizes of the suite's cases.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ClusterSizes {
    /// Tasks per run of `submit-result` (concur and the bare harness).
    pub(crate) tasks: u64,
    /// Tasks per run of `submit-result` for Celery and Dramatiq.
    pub(crate) python_tasks: u64,
    /// Tasks per run of `submit-result` for RQ (about 50/s).
    pub(crate) rq_tasks: u64,
    /// Round trips per run of `round-trip` (concur and the bare harness).
    pub(crate) round_trips: u64,
    /// Round trips per run of `round-trip` for the Python task queues.
    pub(crate) python_round_trips: u64,
    /// Items per run of `map`.
    pub(crate) map_items: u64,
    /// Whether the Python task queues run (not in `--quick` runs).
    pub(crate) python: bool,
}

impl ClusterSizes {
    /// Full or `--quick` sizes.
    pub(crate) fn new(quick: bool) -> Self {
        if quick {
            ClusterSizes {
                tasks: 2_000,
                python_tasks: 0,
                rq_tasks: 0,
                round_trips: 200,
                python_round_trips: 0,
                map_items: 100_000,
                python: false,
            }
        } else {
            ClusterSizes {
                tasks: 50_000,
                python_tasks: 2_000,
                rq_tasks: 500,
                round_trips: 2_000,
                python_round_trips: 200,
                map_items: 1_000_000,
                python: true,
            }
        }
    }
}

fn task_err(e: TaskError) -> String {
    e.to_string()
}

/// Runs the suite into `results`; failures go to `errors`, skipped anchors to `notes`.
pub(crate) fn run_suite(
    sizes: &ClusterSizes,
    runs: u32,
    bar: &ProgressBar,
    results: &mut Vec<Measurement>,
    errors: &mut Vec<String>,
    notes: &mut Vec<String>,
) {
    let cluster = match LocalCluster::start("bench", WORKERS, 1) {
        Ok(c) => c,
        Err(e) => {
            let msg = format!("cluster suite not run: {e}");
            if std::env::var_os("CI").is_some() {
                errors.push(msg);
            } else {
                notes.push(msg);
            }
            return;
        }
    };
    let url = cluster.redis.url();
    let cluster = Rc::new(RefCell::new(cluster));
    let venv = if sizes.python {
        venv_python(notes)
    } else {
        None
    };
    let script = venv.as_ref().and_then(|_| AnchorScript::write(notes));
    let mut subjects = vec![
        Subject {
            case: "submit-result",
            name: "concur RedisExecutor (2 workers)",
            family: Family::Submit,
            origin: Origin::Concur,
            threads: WORKERS,
            ops: sizes.tasks,
            run: Box::new({
                let (url, n) = (url.clone(), sizes.tasks);
                move || concur_submit(&url, n)
            }),
        },
        Subject {
            case: "submit-result",
            name: "bare redis, MULTI per task",
            family: Family::Submit,
            origin: Origin::RedisBare,
            threads: WORKERS,
            ops: sizes.tasks,
            run: Box::new({
                let (url, n) = (url.clone(), sizes.tasks);
                move || bare::submit(&url, n, false)
            }),
        },
        Subject {
            case: "submit-result",
            name: "bare redis, MULTIs pipelined",
            family: Family::Submit,
            origin: Origin::RedisBare,
            threads: WORKERS,
            ops: sizes.tasks,
            run: Box::new({
                let (url, n) = (url.clone(), sizes.tasks);
                move || bare::submit(&url, n, true)
            }),
        },
    ];
    let frameworks = [
        ("python3 Celery", "celery", sizes.python_tasks),
        ("python3 Dramatiq", "dramatiq", sizes.python_tasks),
        ("python3 RQ", "rq", sizes.rq_tasks),
    ];
    if let (Some(py), Some(script)) = (&venv, &script) {
        for (name, fw, n) in frameworks {
            subjects.push(Subject {
                case: "submit-result",
                name,
                family: Family::Submit,
                origin: Origin::TaskQueue,
                threads: WORKERS,
                ops: n,
                run: Box::new({
                    let (py, path, url) = (py.clone(), script.path.clone(), url.clone());
                    move || anchor_ns(&py, &path, fw, &url, &["--tasks", &n.to_string()])
                }),
            });
        }
    }
    subjects.push(Subject {
        case: "round-trip",
        name: "concur RedisExecutor call+result",
        family: Family::Submit,
        origin: Origin::Concur,
        threads: WORKERS,
        ops: 1,
        run: Box::new({
            let (url, k) = (url.clone(), sizes.round_trips);
            move || concur_round_trip(&url, k)
        }),
    });
    subjects.push(Subject {
        case: "round-trip",
        name: "bare redis, MULTI per task",
        family: Family::Submit,
        origin: Origin::RedisBare,
        threads: WORKERS,
        ops: 1,
        run: Box::new({
            let (url, k) = (url.clone(), sizes.round_trips);
            move || bare::round_trip(&url, k, false)
        }),
    });
    if let (Some(py), Some(script)) = (&venv, &script) {
        for (name, fw, _) in frameworks {
            let k = sizes.python_round_trips;
            subjects.push(Subject {
                case: "round-trip",
                name,
                family: Family::Submit,
                origin: Origin::TaskQueue,
                threads: WORKERS,
                ops: 1,
                run: Box::new({
                    let (py, path, url) = (py.clone(), script.path.clone(), url.clone());
                    move || anchor_ns(&py, &path, fw, &url, &["--latency", &k.to_string()])
                }),
            });
        }
    }
    subjects.push(Subject {
        case: "map",
        name: "concur RedisExecutor::map (chunks of 10,000)",
        family: Family::Map,
        origin: Origin::Concur,
        threads: WORKERS,
        ops: sizes.map_items,
        run: Box::new({
            let (url, m) = (url.clone(), sizes.map_items);
            move || concur_map(&url, m)
        }),
    });
    subjects.push(Subject {
        case: "reclaim",
        name: "concur worker SIGKILLed mid-task (lease 1 s)",
        family: Family::Reclaim,
        origin: Origin::Concur,
        threads: WORKERS,
        ops: 1,
        run: Box::new({
            let c = cluster.clone();
            move || reclaim(&mut c.borrow_mut())
        }),
    });
    run_subjects("cluster", &subjects, runs, bar, results, errors);
    drop(subjects);
    if let Some(s) = script {
        s.remove();
    }
    if let Ok(c) = Rc::try_unwrap(cluster) {
        c.into_inner().stop();
    }
}

/// A connected executor whose 2 workers have each run a task (not timed).
fn warm_executor(url: &str) -> Result<RedisExecutor, String> {
    let ex = RedisExecutor::connect(url, "bench").map_err(|e| e.to_string())?;
    let warm = (0..WORKERS as u64)
        .map(|i| ex.call(increment, i))
        .collect::<Result<Vec<_>, _>>()
        .map_err(task_err)?;
    for f in warm {
        f.result().map_err(task_err)?;
    }
    Ok(ex)
}

/// `n` tiny tasks through the cluster: all submitted, then every result read in
/// order; ns per task.
fn concur_submit(url: &str, n: u64) -> Result<f64, String> {
    let ex = warm_executor(url)?;
    let begin = Instant::now();
    let fs = (0..n)
        .map(|i| ex.call(increment, i))
        .collect::<Result<Vec<_>, _>>()
        .map_err(task_err)?;
    let mut sum = 0u64;
    for f in &fs {
        sum = sum.wrapping_add(f.result().map_err(task_err)?);
    }
    let elapsed = begin.elapsed();
    check_sum(sum, n)?;
    Ok(per_op(elapsed, n))
}

/// `k` tasks one at a time: the median submit → result, in ns.
fn concur_round_trip(url: &str, k: u64) -> Result<f64, String> {
    let ex = warm_executor(url)?;
    let mut times = Vec::with_capacity(k as usize);
    for i in 0..k {
        let t = Instant::now();
        let v = ex
            .call(increment, i)
            .and_then(|f| f.result())
            .map_err(task_err)?;
        times.push(t.elapsed().as_secs_f64() * 1e9);
        if v != i + 1 {
            return Err(format!("round trip {i} returned {v}"));
        }
    }
    Ok(median(&mut times))
}

/// A lazy map of `m` items in chunks of [`MAP_CHUNK`]; ns per item.
fn concur_map(url: &str, m: u64) -> Result<f64, String> {
    let ex = warm_executor(url)?;
    let begin = Instant::now();
    let opts = MapOptions::new().chunksize(MAP_CHUNK).buffersize(8);
    let mut n = 0u64;
    for (i, r) in ex.map(increment, 0..m, opts).map_err(task_err)?.enumerate() {
        let v = r.map_err(task_err)?;
        if v != i as u64 + 1 {
            return Err(format!("map item {i} is {v}"));
        }
        n += 1;
    }
    let elapsed = begin.elapsed();
    if n != m {
        return Err(format!("map returned {n} items, expected {m}"));
    }
    Ok(per_op(elapsed, m))
}

/// Kills the worker running a task and times until another worker's result arrives;
/// then starts a replacement worker. In ns.
fn reclaim(cluster: &mut LocalCluster) -> Result<f64, String> {
    let url = cluster.redis.url();
    let ex = RedisExecutor::builder(&url, "bench")
        .lease(Duration::from_millis(RECLAIM_LEASE_MS))
        .retry_backoff(Duration::ZERO)
        .connect()
        .map_err(|e| e.to_string())?;
    // Let the workers see the new lease (they read it at every beat).
    std::thread::sleep(Duration::from_millis(3000));
    let f = ex.call(sleep_ms, 300).map_err(task_err)?;
    let owner = wait_owner(&url, "bench")?;
    let began = Instant::now();
    cluster.kill_worker(owner);
    let v = f
        .result_timeout(Duration::from_secs(60))
        .map_err(task_err)?;
    let took = began.elapsed();
    if v != 300 {
        return Err(format!("the task returned {v}"));
    }
    cluster
        .add_worker(1, None)
        .map_err(|e| format!("replacing the killed worker: {e}"))?;
    Ok(took.as_secs_f64() * 1e9)
}

/// The pid of the worker holding the pool's one pending entry.
fn wait_owner(url: &str, pool: &str) -> Result<u32, String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut con = client.get_connection().map_err(|e| e.to_string())?;
    for _ in 0..1000 {
        let v: redis::Value = redis::cmd("XPENDING")
            .arg(format!("concur:{pool}:tasks"))
            .arg("workers")
            .arg("-")
            .arg("+")
            .arg(1)
            .query(&mut con)
            .map_err(|e| e.to_string())?;
        if let redis::Value::Array(rows) = v
            && let Some(redis::Value::Array(row)) = rows.first()
            && let Some(redis::Value::BulkString(consumer)) = row.get(1)
        {
            let consumer = String::from_utf8_lossy(consumer);
            if let Some(pid) = consumer.split(':').nth(1).and_then(|p| p.parse().ok()) {
                return Ok(pid);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Err("no worker took the task".into())
}

fn check_sum(got: u64, n: u64) -> Result<(), String> {
    let want = n.wrapping_mul(n.wrapping_add(1)) / 2;
    if got == want {
        Ok(())
    } else {
        Err(format!("wrong sum {got}, expected {want}"))
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

// ---- the Python task queues ------------------------------------------------------------

/// The venv's python (`CONCUR_BENCH_VENV`, or `target/bench-venv`), if it was made.
fn venv_python(notes: &mut Vec<String>) -> Option<PathBuf> {
    let venv = std::env::var_os("CONCUR_BENCH_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/bench-venv"));
    let py = venv.join("bin/python");
    if py.exists() {
        Some(py)
    } else {
        notes.push(format!(
            "no bench virtual environment at {}: Celery, Dramatiq and RQ skipped \
             (make it with scripts/bench-venv.sh)",
            venv.display()
        ));
        None
    }
}

/// The anchors' harness, written to a temporary file while the suite runs.
struct AnchorScript {
    path: PathBuf,
}

impl AnchorScript {
    fn write(notes: &mut Vec<String>) -> Option<Self> {
        let path = std::env::temp_dir().join(format!(
            "concur-bench-cluster-anchors-{}.py",
            std::process::id()
        ));
        match std::fs::write(&path, include_str!("cluster_anchors.py")) {
            Ok(()) => Some(AnchorScript { path }),
            Err(e) => {
                notes.push(format!("cannot write the anchors' harness: {e}"));
                None
            }
        }
    }

    fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One run of framework `fw`: ns per task (throughput) or the median round trip.
fn anchor_ns(
    py: &PathBuf,
    script: &PathBuf,
    fw: &str,
    url: &str,
    args: &[&str],
) -> Result<f64, String> {
    let out = Command::new(py)
        .arg(script)
        .args(["--framework", fw, "--redis", url, "--workers", "2"])
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("{fw}: {e}"))?;
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(line.trim())
        .map_err(|e| format!("{fw} printed no result ({e}): {line}"))?;
    if let Some(e) = v.get("error") {
        return Err(format!("{fw}: {e}"));
    }
    if let Some(us) = v
        .get("median_round_trip_us")
        .and_then(serde_json::Value::as_f64)
    {
        return Ok(us * 1e3);
    }
    v.get("tasks_per_sec")
        .and_then(serde_json::Value::as_f64)
        .map(|tps| 1e9 / tps)
        .ok_or_else(|| format!("{fw}: no tasks_per_sec in {line}"))
}

// ---- the bare harness ------------------------------------------------------------------

/// The same round as concur's, written by hand with the bare `redis` client: the
/// engine's ceiling on this machine.
mod bare {
    use super::*;

    const GROUP: &str = "g";

    struct Keys {
        tasks: String,
        results: String,
    }

    fn keys() -> Keys {
        let tag = format!("{}-{}", std::process::id(), concur_now_ns());
        Keys {
            tasks: format!("bare:{tag}:tasks"),
            results: format!("bare:{tag}:results"),
        }
    }

    fn concur_now_ns() -> u128 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    }

    fn connect(url: &str) -> Result<redis::Connection, String> {
        let c = redis::Client::open(url).map_err(|e| e.to_string())?;
        let con = c.get_connection().map_err(|e| e.to_string())?;
        con.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        Ok(con)
    }

    /// Two worker threads: `XREADGROUP COUNT 16`, then per entry `MULTI { XADD
    /// result; XACK }`: each its own round trip (the harness as first measured), or
    /// with `pipelined` all of a batch's in one round trip (the strongest form), until
    /// `stop`.
    fn workers(
        url: &str,
        k: &Keys,
        stop: &Arc<AtomicBool>,
        pipelined: bool,
    ) -> Result<Vec<std::thread::JoinHandle<()>>, String> {
        let mut con = connect(url)?;
        redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&k.tasks)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query::<()>(&mut con)
            .map_err(|e| e.to_string())?;
        let mut handles = Vec::new();
        for w in 0..WORKERS {
            let mut con = connect(url)?;
            let (tasks, results, stop) = (k.tasks.clone(), k.results.clone(), stop.clone());
            handles.push(std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let v: redis::Value = match redis::cmd("XREADGROUP")
                        .arg("GROUP")
                        .arg(GROUP)
                        .arg(format!("w{w}"))
                        .arg("COUNT")
                        .arg(16)
                        .arg("BLOCK")
                        .arg(100)
                        .arg("STREAMS")
                        .arg(&tasks)
                        .arg(">")
                        .query(&mut con)
                    {
                        Ok(v) => v,
                        Err(_) => return,
                    };
                    // One MULTI { XADD result; XACK } per entry, all of the batch's
                    // in one round trip.
                    let es = entries(v);
                    if es.is_empty() {
                        continue;
                    }
                    let mut pipe = redis::pipe();
                    for (id, x) in es {
                        pipe.cmd("MULTI").ignore();
                        pipe.cmd("XADD")
                            .arg(&results)
                            .arg("*")
                            .arg("v")
                            .arg(x + 1)
                            .ignore();
                        pipe.cmd("XACK").arg(&tasks).arg(GROUP).arg(&id).ignore();
                        pipe.cmd("EXEC").ignore();
                        if !pipelined {
                            if pipe.query::<()>(&mut con).is_err() {
                                return;
                            }
                            pipe.clear();
                        }
                    }
                    if pipelined && pipe.query::<()>(&mut con).is_err() {
                        return;
                    }
                }
            }));
        }
        Ok(handles)
    }

    /// `(entry id, x)` of each entry of a stream reply.
    fn entries(v: redis::Value) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        let redis::Value::Array(streams) = v else {
            return out;
        };
        for s in streams {
            let redis::Value::Array(mut kv) = s else {
                continue;
            };
            let Some(redis::Value::Array(es)) = kv.pop() else {
                continue;
            };
            for e in es {
                let redis::Value::Array(pair) = e else {
                    continue;
                };
                let (Some(redis::Value::BulkString(id)), Some(redis::Value::Array(f))) =
                    (pair.first(), pair.get(1))
                else {
                    continue;
                };
                let x = match f.get(1) {
                    Some(redis::Value::BulkString(b)) => {
                        String::from_utf8_lossy(b).parse().unwrap_or(0)
                    }
                    _ => 0,
                };
                out.push((String::from_utf8_lossy(id).into_owned(), x));
            }
        }
        out
    }

    fn cleanup(con: &mut redis::Connection, k: &Keys) {
        let _ = redis::cmd("DEL")
            .arg(&k.tasks)
            .arg(&k.results)
            .query::<()>(con);
    }

    /// Reads results until `n` arrived, from after `last`; their sum.
    fn collect(
        con: &mut redis::Connection,
        k: &Keys,
        n: u64,
        last: &mut String,
    ) -> Result<u64, String> {
        let mut got = 0;
        let mut sum = 0u64;
        while got < n {
            let v: redis::Value = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(1000)
                .arg("BLOCK")
                .arg(5000)
                .arg("STREAMS")
                .arg(&k.results)
                .arg(last.as_str())
                .query(con)
                .map_err(|e| e.to_string())?;
            let es = entries(v);
            if es.is_empty() {
                return Err("results stopped arriving".into());
            }
            for (id, x) in es {
                sum = sum.wrapping_add(x);
                got += 1;
                *last = id;
            }
        }
        Ok(sum)
    }

    pub(super) fn submit(url: &str, n: u64, pipelined: bool) -> Result<f64, String> {
        let k = keys();
        let stop = Arc::new(AtomicBool::new(false));
        let handles = workers(url, &k, &stop, pipelined)?;
        let mut con = connect(url)?;
        let begin = Instant::now();
        for chunk in (0..n).collect::<Vec<_>>().chunks(512) {
            let mut pipe = redis::pipe();
            for &i in chunk {
                pipe.cmd("XADD")
                    .arg(&k.tasks)
                    .arg("*")
                    .arg("x")
                    .arg(i)
                    .ignore();
            }
            pipe.query::<()>(&mut con).map_err(|e| e.to_string())?;
        }
        let mut last = "0-0".to_owned();
        let sum = collect(&mut con, &k, n, &mut last);
        let elapsed = begin.elapsed();
        stop.store(true, Ordering::SeqCst);
        for h in handles {
            let _ = h.join();
        }
        cleanup(&mut con, &k);
        check_sum(sum?, n)?;
        Ok(per_op(elapsed, n))
    }

    pub(super) fn round_trip(url: &str, k_trips: u64, pipelined: bool) -> Result<f64, String> {
        let k = keys();
        let stop = Arc::new(AtomicBool::new(false));
        let handles = workers(url, &k, &stop, pipelined)?;
        let mut con = connect(url)?;
        let mut last = "0-0".to_owned();
        let mut times = Vec::with_capacity(k_trips as usize);
        let mut failure = None;
        for i in 0..k_trips {
            let t = Instant::now();
            let r = redis::cmd("XADD")
                .arg(&k.tasks)
                .arg("*")
                .arg("x")
                .arg(i)
                .query::<String>(&mut con)
                .map_err(|e| e.to_string())
                .and_then(|_| collect(&mut con, &k, 1, &mut last));
            match r {
                Ok(v) if v == i + 1 => times.push(t.elapsed().as_secs_f64() * 1e9),
                Ok(v) => {
                    failure = Some(format!("round trip {i} returned {v}"));
                    break;
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        stop.store(true, Ordering::SeqCst);
        for h in handles {
            let _ = h.join();
        }
        cleanup(&mut con, &k);
        match failure {
            Some(e) => Err(e),
            None => Ok(median(&mut times)),
        }
    }
}
