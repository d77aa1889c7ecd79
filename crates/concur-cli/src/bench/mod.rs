//! `concur bench`: concur side by side with its anchors, in one process, one run.
//!
//! Suites (`--suite`, default all):
//! - `lock`: two cases — `uncontended` (1 thread) and `contended-2` (2 threads on one
//!   lock) — over every lock of [`adapters::all`]; the reference anchor is parking_lot.
//! - `queue`: SPSC, MPSC 4→1, MPMC 2→2 and 4→4 through bounded(1024) and unbounded
//!   FIFOs (see [`queue`]); the reference anchors are crossbeam-channel, kanal and flume.
//! - `futures`: `ThreadPoolExecutor` submit + result of many trivial tasks, and a parallel
//!   map collected into a `Vec` (see [`futures`]); the reference anchor is rayon (and
//!   Python's executor for submit + result).
//! - `process`: `Process` start + join per start method, `Connection` round trips and
//!   bulk `Array` writes (see [`process`]); the reference anchors are the bare OS
//!   mechanism (an exec of this binary, a socketpair ping-pong, a memcpy) and Python's
//!   `multiprocessing`.
//! - `pool`: `ProcessPoolExecutor` submit + result of tiny tasks and `ProcessPool::map`
//!   with default chunking (see [`pool`]); the reference anchors are Python's
//!   `ProcessPoolExecutor` and `multiprocessing.Pool`, and procspawn's pool.
//! - `manager`: `Dict::get` round trips through a `Manager`, with one client and with 4
//!   client processes at once (see [`manager`]); the reference anchors are a raw Unix
//!   socket ping-pong between two processes and Python's `Manager().dict()`.
//! - `cluster`: `RedisExecutor` submit + result, one-at-a-time round trips, a chunked
//!   map and the reclaim of a killed worker's task, on a private `redis-server` with 2
//!   workers (see [`cluster`]); the reference anchors are a bare `redis` client doing the
//!   same round by hand, and Celery, Dramatiq and RQ.
//! - `cluster-objects`: the cluster tier's `Lock`, `Dict::get` and `Queue` put + get on
//!   a private `redis-server` (see [`cluster_objects`]); the reference anchor is a bare
//!   `redis` client doing the same commands by hand.
//! - `scaling`: cost against work size — maps of 10⁴…10⁷ items, I/O-bound pools of
//!   1…64 workers, process start from a parent of 10 MiB … 1 GiB (see [`scaling`]);
//!   SVG charts with `--charts DIR`. Not part of `all` (it runs for minutes).
//!
//! Every case runs every subject `--runs` times. Runs are interleaved (run 1 of every
//! subject, then run 2...) so that a burst of load on a shared machine spreads over all
//! subjects instead of hitting one. The median of the runs is reported, and the ratio
//! of concur to the reference anchor as a throughput ratio: `anchor ns/op ÷ concur
//! ns/op` (≥ 1 means concur is faster).

mod adapters;
mod cluster;
mod cluster_objects;
mod futures;
mod manager;
mod pool;
mod process;
mod queue;
mod report;
mod scaling;

pub(crate) use process::child_mode;

use crate::machine::Machine;
use crate::progress::Bars;
use crate::tour::{COLUMNS, wrap};
use crate::{BenchArgs, Outcome, Suite};
use adapters::{Family, LockUnderTest, Origin};
use serde::Serialize;
use std::io::{self, Write};

/// One benchmark case: how many threads, and how many operations each does.
#[derive(Debug, Clone, Serialize)]
struct Case {
    name: &'static str,
    threads: usize,
    iters_per_thread: u64,
}

#[derive(Debug, Serialize)]
struct Config {
    quick: bool,
    runs: u32,
    suites: Vec<&'static str>,
    /// The lock suite's cases.
    cases: Vec<Case>,
    /// The queue suite's cases.
    queue_cases: Vec<queue::QueueCase>,
    /// The futures suite's cases.
    futures_cases: Vec<futures::FuturesCase>,
    /// The process suite's sizes (absent when it did not run).
    process_sizes: Option<process::ProcessSizes>,
    /// The pool suite's sizes (absent when it did not run).
    pool_sizes: Option<pool::PoolSizes>,
    /// The manager suite's sizes (absent when it did not run).
    manager_sizes: Option<manager::ManagerSizes>,
    /// The cluster suite's sizes (absent when it did not run).
    cluster_sizes: Option<cluster::ClusterSizes>,
    /// The cluster-objects suite's sizes (absent when it did not run).
    cluster_objects_sizes: Option<cluster_objects::ClusterObjectsSizes>,
    /// The scaling suite's sizes (absent when it did not run).
    scaling_sizes: Option<scaling::ScalingSizes>,
    /// The deadlock-detection mode the locks ran under (the goal is stated for `Off`).
    deadlock_mode: String,
    operation: &'static str,
    queue_operation: &'static str,
    futures_operation: &'static str,
    process_operation: &'static str,
    pool_operation: &'static str,
    manager_operation: &'static str,
    cluster_operation: &'static str,
    cluster_objects_operation: &'static str,
    scaling_operation: &'static str,
}

#[derive(Debug, Serialize)]
struct Measurement {
    suite: &'static str,
    case: &'static str,
    subject: &'static str,
    family: Family,
    origin: Origin,
    threads: usize,
    ops_per_run: u64,
    /// ns per operation, one entry per run, in run order.
    runs_ns_per_op: Vec<f64>,
    median_ns_per_op: f64,
    median_ops_per_sec: f64,
    min_ns_per_op: f64,
    max_ns_per_op: f64,
}

#[derive(Debug, Serialize)]
struct Ratio {
    suite: &'static str,
    case: &'static str,
    family: Family,
    concur: &'static str,
    anchor: &'static str,
    /// `anchor median ns/op ÷ concur median ns/op`: ≥ 1 means concur is faster.
    throughput_ratio: f64,
}

#[derive(Debug, Serialize)]
struct BenchReport {
    machine: Machine,
    config: Config,
    results: Vec<Measurement>,
    ratios: Vec<Ratio>,
    /// Errors met while measuring (wrong counts, failed spawns); empty when all is well.
    errors: Vec<String>,
    /// Things worth knowing that are not errors (e.g. an anchor that is not installed).
    notes: Vec<String>,
}

/// Runs the sweep and prints the table (or the JSON document).
pub(crate) fn run(args: &BenchArgs) -> io::Result<Outcome> {
    let runs = args.runs.unwrap_or(if args.quick { 2 } else { 7 });
    let cases = vec![
        Case {
            name: "uncontended",
            threads: 1,
            iters_per_thread: if args.quick { 1_000_000 } else { 10_000_000 },
        },
        Case {
            name: "contended-2",
            threads: 2,
            iters_per_thread: if args.quick { 200_000 } else { 2_000_000 },
        },
    ];
    let suites: Vec<&'static str> = match args.suite {
        Suite::All => vec![
            "lock", "queue", "futures", "process", "pool", "manager", "cluster",
        ],
        Suite::Lock => vec!["lock"],
        Suite::Queue => vec!["queue"],
        Suite::Futures => vec!["futures"],
        Suite::Process => vec!["process"],
        Suite::Pool => vec!["pool"],
        Suite::Manager => vec!["manager"],
        Suite::Cluster => vec!["cluster"],
        Suite::ClusterObjects => vec!["cluster-objects"],
        Suite::Scaling => vec!["scaling"],
    };
    let mut suites = suites;
    if args.suite == Suite::All {
        suites.push("cluster-objects");
    }
    let process_sizes = suites
        .contains(&"process")
        .then(|| process::ProcessSizes::new(args.quick));
    let pool_sizes = suites
        .contains(&"pool")
        .then(|| pool::PoolSizes::new(args.quick));
    let manager_sizes = suites
        .contains(&"manager")
        .then(|| manager::ManagerSizes::new(args.quick));
    let cluster_sizes = suites
        .contains(&"cluster")
        .then(|| cluster::ClusterSizes::new(args.quick));
    let cluster_objects_sizes = suites
        .contains(&"cluster-objects")
        .then(|| cluster_objects::ClusterObjectsSizes::new(args.quick));
    let scaling_sizes = suites
        .contains(&"scaling")
        .then(|| scaling::ScalingSizes::new(args.quick));
    let locks = if suites.contains(&"lock") {
        adapters::all()
    } else {
        Vec::new()
    };
    let cases = if suites.contains(&"lock") {
        cases
    } else {
        Vec::new()
    };
    let queue_cases = if suites.contains(&"queue") {
        queue::cases(args.quick)
    } else {
        Vec::new()
    };
    let queues = queue::subjects();
    let futures_cases = if suites.contains(&"futures") {
        futures::cases(args.quick)
    } else {
        Vec::new()
    };
    let machine = Machine::probe();

    let mut results: Vec<Measurement> = Vec::new();
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    let total = u64::from(runs)
        * (cases.len() * locks.len()
            + queue::measurement_count(&queue_cases, &queues)
            + futures::measurement_count(&futures_cases)) as u64;
    let bar = Bars::new(args.json).bar(total, "bench");
    for case in &cases {
        let first = results.len();
        for lock in &locks {
            results.push(Measurement {
                suite: "lock",
                case: case.name,
                subject: lock.name(),
                family: lock.family(),
                origin: lock.origin(),
                threads: case.threads,
                ops_per_run: case.iters_per_thread * case.threads as u64,
                runs_ns_per_op: Vec::with_capacity(runs as usize),
                median_ns_per_op: f64::NAN,
                median_ops_per_sec: f64::NAN,
                min_ns_per_op: f64::NAN,
                max_ns_per_op: f64::NAN,
            });
        }
        for run in 0..runs {
            for (i, lock) in locks.iter().enumerate() {
                bar.set_message(format!(
                    "{} {} run {}/{runs}",
                    case.name,
                    lock.name(),
                    run + 1
                ));
                match measure(lock.as_ref(), case) {
                    Ok(ns) => results[first + i].runs_ns_per_op.push(ns),
                    Err(e) => errors.push(e),
                }
                bar.inc(1);
            }
        }
    }
    queue::run_suite(&queue_cases, &queues, runs, &bar, &mut results, &mut errors);
    if suites.contains(&"queue") {
        queue::python_anchor(args.quick, runs, &bar, &mut results, &mut notes);
    }
    futures::run_suite(
        &futures_cases,
        runs,
        &bar,
        &mut results,
        &mut errors,
        &mut notes,
    );
    if let Some(sizes) = &process_sizes {
        process::run_suite(sizes, runs, &bar, &mut results, &mut errors, &mut notes);
    }
    if let Some(sizes) = &pool_sizes {
        pool::run_suite(sizes, runs, &bar, &mut results, &mut errors, &mut notes);
    }
    if let Some(sizes) = &manager_sizes {
        manager::run_suite(sizes, runs, &bar, &mut results, &mut errors, &mut notes);
    }
    if let Some(sizes) = &cluster_sizes {
        cluster::run_suite(sizes, runs, &bar, &mut results, &mut errors, &mut notes);
    }
    if let Some(sizes) = &cluster_objects_sizes {
        cluster_objects::run_suite(sizes, runs, &bar, &mut results, &mut errors, &mut notes);
    }
    if let Some(sizes) = &scaling_sizes {
        scaling::run_suite(sizes, runs, &bar, &mut results, &mut errors, &mut notes);
    }
    bar.finish_and_clear();

    for m in &mut results {
        if let Some(stats) = Stats::of(&m.runs_ns_per_op) {
            m.median_ns_per_op = stats.median;
            m.median_ops_per_sec = 1e9 / stats.median;
            m.min_ns_per_op = stats.min;
            m.max_ns_per_op = stats.max;
        }
    }
    let ratios = ratios(&results);
    if let (Some(sizes), Some(dir)) = (&scaling_sizes, &args.charts) {
        match scaling::write_charts(dir, sizes, &results) {
            Ok(files) => notes.push(format!(
                "scaling charts written: {}",
                files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Err(e) => errors.push(format!("scaling charts into {}: {e}", dir.display())),
        }
    }
    let report = BenchReport {
        machine,
        config: Config {
            quick: args.quick,
            runs,
            suites,
            cases,
            queue_cases,
            futures_cases,
            deadlock_mode: format!("{:?}", concur::deadlock::mode()),
            operation: "acquire, increment the guarded u64, release",
            queue_operation: queue::OPERATION,
            futures_operation: futures::OPERATION,
            process_sizes,
            process_operation: process::OPERATION,
            pool_sizes,
            pool_operation: pool::OPERATION,
            manager_sizes,
            manager_operation: manager::OPERATION,
            cluster_sizes,
            cluster_operation: cluster::OPERATION,
            cluster_objects_sizes,
            cluster_objects_operation: cluster_objects::OPERATION,
            scaling_sizes,
            scaling_operation: scaling::OPERATION,
        },
        results,
        ratios,
        errors,
        notes,
    };

    let stdout = io::stdout();
    let mut out = stdout.lock();
    if let Some(path) = &args.report {
        let doc = serde_json::to_value(&report).map_err(io::Error::other)?;
        std::fs::write(path, report::html(&doc)).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
        })?;
    }
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        write_table(&mut out, &report)?;
    }
    out.flush()?;
    for e in &report.errors {
        eprintln!("concur bench: {e}");
    }
    Ok(if report.errors.is_empty() {
        Outcome::Passed
    } else {
        Outcome::Failed
    })
}

/// One run of `case` for `lock`, in ns per operation.
fn measure(lock: &dyn LockUnderTest, case: &Case) -> Result<f64, String> {
    let elapsed = if case.threads == 1 {
        lock.run_uncontended(case.iters_per_thread)?
    } else {
        lock.run_contended(case.threads, case.iters_per_thread)?
    };
    let ops = case.iters_per_thread * case.threads as u64;
    Ok(elapsed.as_secs_f64() * 1e9 / ops as f64)
}

struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

impl Stats {
    fn of(samples: &[f64]) -> Option<Stats> {
        if samples.is_empty() {
            return None;
        }
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let median = if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2.0
        };
        Some(Stats {
            median,
            min: s[0],
            max: s[n - 1],
        })
    }
}

/// For each case and family, concur against its reference anchors: parking_lot for
/// locks; crossbeam-channel, kanal and flume, and Python's `queue.Queue` where measured, for queues;
/// rayon, and Python's `ThreadPoolExecutor` where measured, for futures; Python's pools
/// and procspawn for process pools; a raw socket ping-pong and Python's manager for
/// manager round trips.
fn ratios(results: &[Measurement]) -> Vec<Ratio> {
    let mut out = Vec::new();
    for c in results.iter().filter(|m| m.origin == Origin::Concur) {
        let anchors = results.iter().filter(|m| {
            m.suite == c.suite
                && m.case == c.case
                && m.family == c.family
                && m.origin.is_reference()
        });
        for a in anchors {
            if c.median_ns_per_op.is_finite() && a.median_ns_per_op.is_finite() {
                out.push(Ratio {
                    suite: c.suite,
                    case: c.case,
                    family: c.family,
                    concur: c.subject,
                    anchor: a.subject,
                    throughput_ratio: a.median_ns_per_op / c.median_ns_per_op,
                });
            }
        }
    }
    out
}

fn write_table(out: &mut impl Write, r: &BenchReport) -> io::Result<()> {
    // Every paragraph below goes through `wrap`, to 100 columns.
    let mut buf = Vec::new();
    write_table_unwrapped(&mut buf, r)?;
    let text = String::from_utf8_lossy(&buf);
    for line in text.lines() {
        if line.chars().count() <= COLUMNS {
            writeln!(out, "{line}")?;
        } else {
            let indent = line.len() - line.trim_start().len();
            writeln!(
                out,
                "{}{}",
                &line[..indent],
                wrap(line.trim_start(), COLUMNS, indent, indent + 2)
            )?;
        }
    }
    Ok(())
}

fn write_table_unwrapped(out: &mut impl Write, r: &BenchReport) -> io::Result<()> {
    let m = &r.machine;
    writeln!(
        out,
        "machine: {} ({} cores), Linux {}",
        m.cpu_model, m.cores, m.kernel
    )?;
    writeln!(
        out,
        "build:   {}, {} build, commit {}{}",
        m.rustc,
        if m.release_build {
            "release"
        } else {
            "DEBUG (numbers are meaningless)"
        },
        m.git_commit,
        if m.git_dirty == Some(true) {
            " (dirty)"
        } else {
            ""
        }
    )?;
    writeln!(
        out,
        "runs:    {} per measurement, median shown; deadlock detection {}\n",
        r.config.runs, r.config.deadlock_mode
    )?;
    // Two lines per measurement, so that every line fits 100 columns: what was
    // measured, then its figures and its ratios against the anchors.
    for res in &r.results {
        let ratio = r
            .ratios
            .iter()
            .filter(|x| x.suite == res.suite && x.case == res.case && x.concur == res.subject)
            .map(|x| format!("{:.2}x vs {}", x.throughput_ratio, x.anchor))
            .collect::<Vec<_>>()
            .join(", ");
        let head = format!("{} / {}: {}", res.suite, res.case, res.subject);
        writeln!(out, "{}", wrap(&head, COLUMNS, 0, 4))?;
        let figures = format!(
            "median {:.2} ns/op (min {:.2}, max {:.2}), {} ops/s{}{}",
            res.median_ns_per_op,
            res.min_ns_per_op,
            res.max_ns_per_op,
            crate::tour::group_thousands(&format!("{:.0}", res.median_ops_per_sec)),
            if ratio.is_empty() { "" } else { "; " },
            ratio
        );
        writeln!(out, "    {}", wrap(&figures, COLUMNS, 4, 6))?;
    }
    writeln!(
        out,
        "\nvs anchor = anchor ns/op / concur ns/op (>= 1: concur is faster). Goals: Lock >= 0.9x \
         parking_lot; bounded Queue >= 1.0x crossbeam SPSC, >= 0.8x MPMC, >= 30x Python; \
         ThreadPoolExecutor submit+result >= 1.0x rayon spawn+oneshot, map >= 1.0x rayon collect."
    )?;
    if r.config.suites.contains(&"process") {
        writeln!(
            out,
            "Process goals: ForkServer >= 5x Python fork start; Spawn >= 0.67x bare exec \
             (<= 1.5x its time); Connection >= 0.9x raw socketpair; process::Queue >= 20x Python mp.Queue; Array >= 0.8x memcpy \
             (array-write: one op = one MiB)."
        )?;
    }
    if r.config.suites.contains(&"pool") {
        writeln!(
            out,
            "Pool goals: ProcessPoolExecutor submit+result >= 30x Python ProcessPoolExecutor \
             and >= 1.0x procspawn; ProcessPool::map >= 2x Python mp.Pool.map (default \
             chunking)."
        )?;
    }
    if r.config.suites.contains(&"manager") {
        writeln!(
            out,
            "Manager goals: one client's Dict::get >= 0.9x the raw unix socket ping-pong; \
             4 clients' (or one pipelining client's) aggregate >= 5x Python's \
             single-client Manager().dict() get (dict-get-aggregate rows, vs \"python3 \
             Manager().dict() get\")."
        )?;
    }
    if r.config.suites.contains(&"cluster-objects") {
        writeln!(
            out,
            "Cluster-objects goals: Lock acquire+release <= 2x the bare SET NX PX + DEL \
             (>= 0.5x); Dict::get <= 1.2x a bare HGET (>= 0.83x); Queue put+get >= 0.5x the \
             bare XADD+XREADGROUP throughput (same batching)."
        )?;
    }
    if r.config.suites.contains(&"scaling") {
        writeln!(
            out,
            "Scaling goals: ProcessPool::map ns/item at 1e7 <= 1.5x at 1e5, >= 5x python3 \
             mp.Pool.map at every N; Spawn from a 1 GiB parent <= 1.3x a bare exec from a \
             small parent, Spawn from a small parent <= 1.2x a bare exec."
        )?;
    }
    for n in &r.notes {
        writeln!(out, "note: {n}")?;
    }
    Ok(())
}

/// Runs `f` on a thread; panics naming `what` if it takes longer than a minute (the
/// bound of the suites' unit tests that start pools or managers).
#[cfg(test)]
pub(crate) fn within_a_minute<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("{what} did not finish within 60 s (a hung pool or manager?)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(Stats::of(&[3.0, 1.0, 2.0]).map(|s| s.median), Some(2.0));
        assert_eq!(
            Stats::of(&[4.0, 1.0, 2.0, 3.0]).map(|s| s.median),
            Some(2.5)
        );
        assert!(Stats::of(&[]).is_none());
    }

    #[test]
    fn every_adapter_counts_correctly() {
        for lock in adapters::all() {
            lock.run_uncontended(1_000).expect("uncontended count");
            lock.run_contended(2, 1_000).expect("contended count");
        }
    }
}
