//! The cluster pieces the CLI shares: the built-in demo tasks, `concur worker`, and a
//! local cluster (a private `redis-server` and worker processes of this binary) for the
//! tour and the benchmarks.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use concur::cluster::{LocalExecutor, RedisServer, Worker, WorkerStats};
use concur::process::{Process, StartMethod};
use serde::{Deserialize, Serialize};

use crate::{DeadLetterArgs, Outcome, PoolArgs, WorkerArgs};

/// The pool the demo tasks run in unless `--pool` says otherwise.
pub(crate) const DEMO_POOL: &str = "concur-demo";

/// A demo task: `x + 1` (the benchmarks' tiny task).
pub(crate) fn increment(x: u64) -> u64 {
    x.wrapping_add(1)
}

/// A demo task: the number of primes below `n`, by trial division (CPU-bound).
pub(crate) fn count_primes(n: u64) -> u64 {
    (2..n)
        .filter(|&k| is_prime(std::hint::black_box(k)))
        .count() as u64
}

/// A demo task: the number of primes in `lo..hi`.
pub(crate) fn count_primes_in((lo, hi): (u64, u64)) -> u64 {
    (lo.max(2)..hi)
        .filter(|&k| is_prime(std::hint::black_box(k)))
        .count() as u64
}

/// Whether `k` (≥ 2) is prime: no odd divisor up to its square root.
pub(crate) fn is_prime(k: u64) -> bool {
    if k < 4 {
        return k >= 2;
    }
    if k.is_multiple_of(2) {
        return false;
    }
    let mut d = 3;
    while d * d <= k {
        if k.is_multiple_of(d) {
            return false;
        }
        d += 2;
    }
    true
}

/// A demo task: the number of primes below `n`, reporting its progress (in percent)
/// through `concur::futures::progress` as it goes.
pub(crate) fn count_primes_reporting(n: u64) -> u64 {
    let step = (n / 100).max(1);
    let mut count = 0;
    let mut k = 2;
    while k < n {
        let end = (k + step).min(n);
        count += (k..end)
            .filter(|&x| is_prime(std::hint::black_box(x)))
            .count() as u64;
        k = end;
        concur::futures::progress((k * 100 / n) as usize, Some(100));
    }
    count
}

/// A demo task: sleeps `ms` milliseconds and returns them.
pub(crate) fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// Makes the demo tasks runnable by this binary's workers.
pub(crate) fn register_demo_tasks() {
    concur::cluster::register(increment);
    concur::cluster::register(count_primes);
    concur::cluster::register(count_primes_in);
    concur::cluster::register(sleep_ms);
    concur::cluster::register(count_primes_reporting);
}

/// How a worker process of this binary is set up.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct Spec {
    pub(crate) url: String,
    pub(crate) pool: String,
    pub(crate) slots: usize,
    pub(crate) threads: bool,
    pub(crate) lease_ms: Option<u64>,
}

impl Spec {
    fn worker(&self) -> Result<Worker, concur::cluster::ClusterError> {
        let mut b = Worker::builder(&self.url, &self.pool)
            .slots(self.slots)
            .local(if self.threads {
                LocalExecutor::Threads
            } else {
                LocalExecutor::Processes
            });
        if let Some(l) = self.lease_ms {
            b = b.lease(Duration::from_millis(l));
        }
        b.connect()
    }
}

/// The body of a worker process: serves until SIGTERM, then drains.
fn worker_process(spec: Spec) -> WorkerStats {
    register_demo_tasks();
    match spec.worker().and_then(Worker::run) {
        Ok(s) => s,
        Err(e) => panic!("concur worker: {e}"),
    }
}

/// A private `redis-server` and worker processes of this binary, stopped on drop.
pub(crate) struct LocalCluster {
    pub(crate) redis: RedisServer,
    pub(crate) pool: String,
    workers: Vec<Process<WorkerStats>>,
}

impl LocalCluster {
    /// Starts Redis and `workers` worker processes of `slots` slots each, and waits
    /// until every worker has joined the pool.
    pub(crate) fn start(pool: &str, workers: usize, slots: usize) -> io::Result<LocalCluster> {
        let redis = RedisServer::start()?;
        let mut c = LocalCluster {
            redis,
            pool: pool.to_owned(),
            workers: Vec::new(),
        };
        for _ in 0..workers {
            c.add_worker(slots, None)?;
        }
        Ok(c)
    }

    /// Starts one more worker process and waits until it has joined the pool.
    pub(crate) fn add_worker(&mut self, slots: usize, lease_ms: Option<u64>) -> io::Result<u32> {
        let spec = Spec {
            url: self.redis.url(),
            pool: self.pool.clone(),
            slots,
            threads: false,
            lease_ms,
        };
        let p = Process::builder()
            .start_method(StartMethod::Spawn)
            .daemon(true)
            .name("concur-worker")
            .spawn(worker_process, spec)
            .map_err(io::Error::other)?;
        let pid = p.pid().unwrap_or(0);
        self.workers.push(p);
        self.wait_joined(pid)?;
        Ok(pid)
    }

    fn wait_joined(&self, pid: u32) -> io::Result<()> {
        let client = redis::Client::open(self.redis.url()).map_err(io::Error::other)?;
        let mut con = client.get_connection().map_err(io::Error::other)?;
        let tag = format!(":{pid}:");
        let key = format!("concur:{}:workers", self.pool);
        for _ in 0..3000 {
            let members: Vec<String> = redis::cmd("SMEMBERS")
                .arg(&key)
                .query(&mut con)
                .map_err(io::Error::other)?;
            if members.iter().any(|m| m.contains(&tag)) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(io::Error::other(
            "a worker did not join the pool within 60 s",
        ))
    }

    /// Kills worker process `pid` (SIGKILL) and reaps it.
    pub(crate) fn kill_worker(&mut self, pid: u32) {
        if let Some(i) = self.workers.iter().position(|p| p.pid() == Some(pid)) {
            let p = self.workers.remove(i);
            let _ = p.kill();
            let _ = p.join_timeout(Duration::from_secs(30));
        }
    }

    /// Stops every worker (SIGTERM: they drain) and returns their counters.
    pub(crate) fn stop(&mut self) -> Vec<WorkerStats> {
        for p in &self.workers {
            let _ = p.terminate();
        }
        self.workers
            .drain(..)
            .filter_map(|p| p.join_timeout(Duration::from_secs(60)).ok())
            .collect()
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for p in &self.workers {
            let _ = p.kill();
        }
        for p in self.workers.drain(..) {
            let _ = p.join_timeout(Duration::from_secs(30));
        }
    }
}

/// `concur worker`: serves the demo tasks of a pool until SIGTERM or Ctrl-C, showing
/// live counts.
pub(crate) fn run_worker(args: &WorkerArgs) -> io::Result<Outcome> {
    register_demo_tasks();
    let spec = Spec {
        url: args.redis.clone(),
        pool: args.pool.clone(),
        slots: args
            .slots
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        threads: args.threads,
        lease_ms: args.lease_ms,
    };
    let worker = spec.worker().map_err(io::Error::other)?;
    // Ctrl-C drains like SIGTERM.
    let interrupted = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, interrupted.clone())?;
    let stop = worker.stop_handle();
    let stats = worker.stats_handle();
    let consumer = worker.consumer().to_owned();
    let done = Arc::new(AtomicBool::new(false));
    let show = {
        let (done, quiet) = (done.clone(), args.quiet);
        std::thread::spawn(move || {
            let mut err = io::stderr();
            if !quiet {
                let _ = writeln!(
                    err,
                    "concur worker {consumer}: pool {}, {} slots; Ctrl-C or SIGTERM drains and stops",
                    spec.pool, spec.slots
                );
            }
            while !done.load(Ordering::SeqCst) {
                if interrupted.load(Ordering::SeqCst) {
                    stop.stop();
                }
                if !quiet {
                    let s = stats.stats();
                    let _ = write!(
                        err,
                        "\r  held {:>4}  done {:>8}  failed {:>6}  retried {:>5}  dead {:>4}  late {:>4}  ",
                        stats.held(),
                        s.completed,
                        s.failed,
                        s.retried,
                        s.dead_lettered,
                        s.late
                    );
                    let _ = err.flush();
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let r = worker.run();
    done.store(true, Ordering::SeqCst);
    let _ = show.join();
    let s = r.map_err(io::Error::other)?;
    let mut out = io::stdout();
    if args.json {
        serde_json::to_writer(&mut out, &s)?;
        writeln!(out)?;
    } else if !args.quiet {
        writeln!(io::stderr())?;
        writeln!(
            out,
            "stopped: {} done, {} failed, {} retried, {} dead-lettered, {} late",
            s.completed, s.failed, s.retried, s.dead_lettered, s.late
        )?;
    }
    Ok(Outcome::Passed)
}

/// The age of a heartbeat, short.
fn ago(ms: Option<u64>) -> String {
    match ms {
        None => "gone".to_owned(),
        Some(ms) if ms < 10_000 => format!("{:.1} s ago", ms as f64 / 1e3),
        Some(ms) => format!("{} s ago", ms / 1000),
    }
}

/// `concur cluster status`.
pub(crate) fn status(args: &PoolArgs) -> io::Result<Outcome> {
    let admin =
        concur::cluster::PoolAdmin::connect(&args.redis, &args.pool).map_err(io::Error::other)?;
    let s = admin.status().map_err(io::Error::other)?;
    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &s)?;
        writeln!(out)?;
        return Ok(Outcome::Passed);
    }
    let count = |k: &str| s.counters.get(k).copied().unwrap_or(0);
    writeln!(out, "pool {} (lease {} ms)", s.pool, s.lease_ms)?;
    writeln!(
        out,
        "  queued {}  in flight {}  dead letters {}",
        s.queued, s.in_flight, s.dead_letters
    )?;
    writeln!(
        out,
        "  completed {}  failed {}  retried {}  late {}  bad {}",
        count("completed"),
        count("failed"),
        count("retried"),
        count("late"),
        count("bad")
    )?;
    writeln!(out, "workers ({}):", s.workers.len())?;
    writeln!(
        out,
        "  {:<28} {:>7} {:>5} {:>7} {:>7}  last heartbeat",
        "host", "pid", "slots", "running", "pending"
    )?;
    for w in &s.workers {
        let host: String = w.host.chars().take(28).collect();
        writeln!(
            out,
            "  {host:<28} {:>7} {:>5} {:>7} {:>7}  {}",
            w.pid,
            w.slots,
            w.running,
            w.pending,
            ago(w.last_beat_ms_ago)
        )?;
    }
    Ok(Outcome::Passed)
}

/// `concur cluster dead-letters`.
pub(crate) fn dead_letters(args: &DeadLetterArgs) -> io::Result<Outcome> {
    let p = &args.pool;
    let admin = concur::cluster::PoolAdmin::connect(&p.redis, &p.pool).map_err(io::Error::other)?;
    let mut out = io::stdout().lock();
    if let Some(id) = &args.requeue {
        admin.requeue(id).map_err(io::Error::other)?;
        writeln!(out, "requeued {id}")?;
        return Ok(Outcome::Passed);
    }
    let list = admin.dead_letters(args.count).map_err(io::Error::other)?;
    if p.json {
        serde_json::to_writer_pretty(&mut out, &list)?;
        writeln!(out)?;
        return Ok(Outcome::Passed);
    }
    writeln!(out, "{} dead letter(s) in pool {}", list.len(), p.pool)?;
    for d in &list {
        let name: String = d.name.as_deref().unwrap_or("?").chars().take(40).collect();
        writeln!(
            out,
            "  {}  {}  {}  attempt {}",
            d.id,
            d.task.as_deref().unwrap_or("?"),
            name,
            d.attempt.map_or("?".to_owned(), |a| a.to_string())
        )?;
        let msg: String = d.message.chars().take(90).collect();
        writeln!(out, "      {}: {msg}", d.cause)?;
    }
    Ok(Outcome::Passed)
}
