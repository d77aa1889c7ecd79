//! `concur`: the command-line face of the concur project.
//!
//! - `concur tour` runs the project's live experiments and checks what they show;
//! - `concur bench` measures concur side by side with its anchors;
//! - `concur worker` serves a cluster pool's demo tasks (the built-in worker);
//! - `concur cluster status` / `dead-letters` watch a cluster pool.
//!
//! Exit codes: 0 everything passed, 1 a step or check failed (or the run itself
//! failed, e.g. stdout was closed), 2 bad usage (clap).

mod bench;
mod cluster;
mod machine;
mod progress;
mod tour;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Python's concurrency stack, rebuilt in Rust: live tour and benchmarks.
#[derive(Debug, Parser)]
#[command(name = "concur", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the live experiments ("steps") and check what each one shows.
    Tour(TourArgs),
    /// Measure concur side by side with its anchors (std, parking_lot, crossbeam, Python).
    Bench(BenchArgs),
    /// Serve a cluster pool: take its tasks from Redis and run them here (the demo tasks
    /// of this binary), until Ctrl-C or SIGTERM.
    Worker(WorkerArgs),
    /// Watch a cluster pool: its workers, queue, counters and dead letters.
    #[command(subcommand)]
    Cluster(ClusterCommand),
}

/// `concur cluster ...`.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// The pool's workers (host, pid, slots, running tasks, last heartbeat), queue
    /// depth, tasks in flight, retries and dead letters.
    Status(PoolArgs),
    /// The pool's dead letters with their causes; `--requeue ID` puts one back.
    DeadLetters(DeadLetterArgs),
}

/// Which pool, on which Redis.
#[derive(Debug, clap::Args)]
pub struct PoolArgs {
    /// The Redis: redis://[user:password@]host:port/db.
    #[arg(long)]
    pub redis: String,
    /// The pool.
    #[arg(long, default_value = cluster::DEMO_POOL)]
    pub pool: String,
    /// One JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Options of `concur cluster dead-letters`.
#[derive(Debug, clap::Args)]
pub struct DeadLetterArgs {
    /// Which pool.
    #[command(flatten)]
    pub pool: PoolArgs,
    /// How many to list (oldest first).
    #[arg(long, default_value_t = 20)]
    pub count: usize,
    /// Put this dead letter back in the task stream (a fresh first attempt).
    #[arg(long)]
    pub requeue: Option<String>,
}

/// Options of `concur worker`.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// The Redis to serve from: redis://[user:password@]host:port/db.
    #[arg(long)]
    pub redis: String,
    /// The pool whose tasks to take.
    #[arg(long, default_value = cluster::DEMO_POOL)]
    pub pool: String,
    /// Tasks run at once (default: one per CPU).
    #[arg(long)]
    pub slots: Option<usize>,
    /// Run tasks on threads instead of worker processes.
    #[arg(long)]
    pub threads: bool,
    /// Set the pool's lease, in milliseconds (at least 1000).
    #[arg(long)]
    pub lease_ms: Option<u64>,
    /// Print nothing but the final counters, as JSON.
    #[arg(long)]
    pub json: bool,
    /// No live counts.
    #[arg(long)]
    pub quiet: bool,
}

/// Options of `concur tour`.
#[derive(Debug, clap::Args)]
pub struct TourArgs {
    /// Shrink every step to a smoke size (the whole tour takes a few seconds).
    #[arg(long)]
    pub quick: bool,
    /// Print one JSON document with every step's figures and verdicts, nothing else.
    #[arg(long)]
    pub json: bool,
    /// Also write the results as one self-contained HTML page (inline SVG pictures, no
    /// network).
    #[arg(long, value_name = "PATH")]
    pub report: Option<std::path::PathBuf>,
}

/// Options of `concur bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Print one JSON document with all raw runs, medians and the machine description.
    #[arg(long)]
    pub json: bool,
    /// Smoke sizes: fewer iterations and 2 runs (unless --runs is given).
    #[arg(long)]
    pub quick: bool,
    /// How many times each measurement is repeated (default 7; with --quick, 2).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub runs: Option<u32>,
    /// Which suite to run.
    #[arg(long, value_enum, default_value_t = Suite::All)]
    pub suite: Suite,
    /// Also write the ratios as one self-contained HTML page (a chart per suite).
    #[arg(long, value_name = "PATH")]
    pub report: Option<std::path::PathBuf>,
    /// Write the scaling suite's SVG charts (`map.svg`, `io.svg`, `start.svg`) into this
    /// directory (e.g. `docs/scaling`).
    #[arg(long, value_name = "DIR")]
    pub charts: Option<std::path::PathBuf>,
}

/// The benchmark suites of `concur bench`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Suite {
    /// Every suite.
    All,
    /// `Lock` and `RLock` against std and parking_lot.
    Lock,
    /// `Queue` against crossbeam-channel, std mpsc, a naive queue and Python.
    Queue,
    /// `ThreadPoolExecutor` submit/result and map against rayon, threadpool, std threads,
    /// sequential code and Python.
    Futures,
    /// `Process` start, `Pipe` round trips and `Array` writes against the bare OS
    /// mechanisms and Python's `multiprocessing`.
    Process,
    /// `ProcessPoolExecutor` submit/result and `ProcessPool::map` against Python's
    /// process pools and procspawn's pool.
    Pool,
    /// `Manager` dict-proxy round trips (one client, 4 client processes) against a raw
    /// Unix socket ping-pong and Python's `Manager().dict()`.
    Manager,
    /// `RedisExecutor` against a bare Redis client doing the same round, and Celery,
    /// Dramatiq and RQ, on a private `redis-server` with 2 workers.
    Cluster,
    /// The cluster tier's shared objects (`Lock`, `Dict::get`, `Queue` put + get) against
    /// a bare Redis client doing the same commands, on a private `redis-server`.
    ClusterObjects,
    /// Cost against work size: maps of 10^4…10^7 items (thread and process pools, rayon,
    /// Python), I/O-bound pools of 1…64 workers against the ideal, and process start
    /// against the parent's resident size (10 MiB … 1 GiB). Not part of `all`.
    Scaling,
}

/// What a subcommand concluded: whether every check it made passed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every step / check passed.
    Passed,
    /// At least one step / check failed (exit code 1).
    Failed,
}

fn main() -> ExitCode {
    // A worker of procspawn's pool (an anchor of `concur bench --suite pool`) is this
    // binary re-executed: in one, this call runs the worker and never returns. It comes
    // first, since everything before it also runs in every such worker.
    procspawn::init();
    // A child started by `concur bench --suite process` (a bare exec or a raw echo).
    if let Some(code) = bench::child_mode() {
        return code;
    }
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Tour(args) => tour::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Worker(args) => cluster::run_worker(args),
        Command::Cluster(ClusterCommand::Status(args)) => cluster::status(args),
        Command::Cluster(ClusterCommand::DeadLetters(args)) => cluster::dead_letters(args),
    };
    match result {
        Ok(Outcome::Passed) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(1),
        Err(e) => {
            eprintln!("concur: error: {e}");
            ExitCode::from(1)
        }
    }
}
