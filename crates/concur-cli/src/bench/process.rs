//! The process suite: `concur::process` beside the bare OS mechanism it is built on and
//! beside CPython's `multiprocessing`.
//!
//! Four cases, each timed per operation:
//! - `start-join`: start a child that runs an empty function, and join it. Subjects:
//!   `Process` with each start method (Spawn, Fork, ForkServer: the first start of a
//!   run also starts the server, counted in), a bare `std::process::Command` exec of this same binary that exits at
//!   once (the floor under Spawn, which also re-executes this binary), and Python's
//!   `multiprocessing.Process` with the fork and spawn start methods.
//! - `pipe-round-trip`: one small value to a child that echoes it back. Subjects: a
//!   `Connection` (a `u64`, serialized and framed), a raw ping-pong of 8 bytes over a
//!   Unix socketpair with a bare child (`write`/`read`, no framing), and Python's
//!   `multiprocessing.Pipe` with a forked child. Starting the child is not timed.
//! - `queue-stream`: items from one producer process to this one through a queue.
//!   Subjects: `process::Queue<u64>` with a spawned producer, and Python's `mp.Queue`
//!   with a forked one; the clock starts at the first item.
//! - `array-write`: one bulk write of a large buffer into shared memory. Subjects:
//!   `Array<u8>::copy_from_slice` (with its own lock, taken once per write) and
//!   `copy_from_slice` into a `Vec<u8>` (a plain `memcpy`). Both destinations are
//!   written once before timing, so page faults are not measured. One operation is one
//!   MiB written (`ops/s` is MiB/s).
//!
//! Every child the suite starts is joined (or waited for) before the run ends.

use super::adapters::{Family, Origin};
use super::{Measurement, Stats};
use concur::process::{Array, Connection, Pipe, Process, Queue, StartMethod};
use indicatif::ProgressBar;
use serde::Serialize;
use std::cell::OnceCell;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Command, ExitCode, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// What the operations are, for the JSON document.
pub(super) const OPERATION: &str = "start-join: start a child running an empty function and join it; \
     pipe-round-trip: a u64 (8 bytes raw) to a child and back; array-write: one MiB written \
     in bulk (a 64 MiB buffer per write)";

/// The environment variable that makes this binary a bench child (see [`child_mode`]).
const CHILD_ENV: &str = "CONCUR_BENCH_CHILD";

/// How long a bench child may take before it counts as hung.
const CHILD_LIMIT: Duration = Duration::from_secs(60);

/// Sizes of the suite's cases.
#[derive(Debug, Clone, Serialize)]
pub(super) struct ProcessSizes {
    /// Children started and joined per run (concur, bare exec).
    pub starts: u64,
    /// Children per run for Python's fork start method.
    pub python_fork_starts: u64,
    /// Children per run for Python's spawn start method (about 70 ms each).
    pub python_spawn_starts: u64,
    /// Round trips per run.
    pub round_trips: u64,
    /// Items one producer process puts through a queue per run.
    pub queue_items: u64,
    /// Items per run for Python's `mp.Queue`.
    pub python_queue_items: u64,
    /// Bytes of the bulk buffer.
    pub array_bytes: usize,
    /// Bulk writes per run.
    pub array_writes: u64,
}

impl ProcessSizes {
    /// Full or `--quick` sizes.
    pub(super) fn new(quick: bool) -> Self {
        if quick {
            ProcessSizes {
                starts: 5,
                python_fork_starts: 3,
                python_spawn_starts: 2,
                round_trips: 2_000,
                queue_items: 20_000,
                python_queue_items: 5_000,
                array_bytes: 16 << 20,
                array_writes: 2,
            }
        } else {
            ProcessSizes {
                starts: 50,
                python_fork_starts: 20,
                python_spawn_starts: 6,
                round_trips: 20_000,
                queue_items: 2_000_000,
                python_queue_items: 200_000,
                array_bytes: 64 << 20,
                array_writes: 8,
            }
        }
    }
}

/// If this process was started by the suite as a bare child, does the child's job and
/// says how to exit; `None` in every other process (called first thing in `main`).
///
/// - `exit`: exits at once (the bare-exec floor of `start-join`);
/// - `echo`: echoes 8-byte messages on its standard input (one end of a socketpair)
///   until the stream ends (the raw ping-pong of `pipe-round-trip`).
pub(crate) fn child_mode() -> Option<ExitCode> {
    let mode = std::env::var_os(CHILD_ENV)?;
    Some(match mode.to_str() {
        Some("exit") => ExitCode::SUCCESS,
        Some("echo") => match raw_echo() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("concur bench child: echo failed: {e}");
                ExitCode::from(1)
            }
        },
        _ => {
            eprintln!("concur bench child: unknown mode {mode:?}");
            ExitCode::from(2)
        }
    })
}

/// The raw echo loop on fd 0: read 8 bytes, write them back, until end of stream.
fn raw_echo() -> std::io::Result<()> {
    let fd: OwnedFd = std::io::stdin().as_fd().try_clone_to_owned()?;
    let mut sock = UnixStream::from(fd);
    let mut buf = [0u8; 8];
    loop {
        match sock.read_exact(&mut buf) {
            Ok(()) => sock.write_all(&buf)?,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// One subject of a case: how to run it once, in ns per operation (shared by the
/// process, pool and manager suites).
pub(super) struct Subject {
    pub(super) case: &'static str,
    pub(super) name: &'static str,
    pub(super) family: Family,
    pub(super) origin: Origin,
    /// Threads or processes it runs on (reported with the figure).
    pub(super) threads: usize,
    /// Operations per run.
    pub(super) ops: u64,
    pub(super) run: Box<dyn Fn() -> Result<f64, String>>,
}

/// Runs every subject `runs` times into `results`, interleaved by case (run 1 of
/// every subject of the case, then run 2...); failures go to `errors`. A subject that
/// failed every run leaves no measurement behind.
pub(super) fn run_subjects(
    suite: &'static str,
    subjects: &[Subject],
    runs: u32,
    bar: &ProgressBar,
    results: &mut Vec<Measurement>,
    errors: &mut Vec<String>,
) {
    bar.inc_length(u64::from(runs) * subjects.len() as u64);
    let first = results.len();
    for s in subjects {
        results.push(Measurement {
            suite,
            case: s.case,
            subject: s.name,
            family: s.family,
            origin: s.origin,
            threads: s.threads,
            ops_per_run: s.ops,
            runs_ns_per_op: Vec::with_capacity(runs as usize),
            median_ns_per_op: f64::NAN,
            median_ops_per_sec: f64::NAN,
            min_ns_per_op: f64::NAN,
            max_ns_per_op: f64::NAN,
        });
    }
    let mut cases: Vec<&'static str> = subjects.iter().map(|s| s.case).collect();
    cases.dedup();
    for case in cases {
        for run in 0..runs {
            for (i, s) in subjects.iter().enumerate().filter(|(_, s)| s.case == case) {
                bar.set_message(format!("{} {} run {}/{runs}", s.case, s.name, run + 1));
                match (s.run)() {
                    Ok(ns) => results[first + i].runs_ns_per_op.push(ns),
                    Err(e) => errors.push(format!("{suite}/{}/{}: {e}", s.case, s.name)),
                }
                bar.inc(1);
            }
        }
    }
    let mut i = first;
    while i < results.len() {
        if Stats::of(&results[i].runs_ns_per_op).is_none() {
            results.remove(i);
        } else {
            i += 1;
        }
    }
}

/// Runs the suite into `results`; failures go to `errors`, skipped anchors to `notes`.
pub(super) fn run_suite(
    sizes: &ProcessSizes,
    runs: u32,
    bar: &ProgressBar,
    results: &mut Vec<Measurement>,
    errors: &mut Vec<String>,
    notes: &mut Vec<String>,
) {
    let make = |py: Option<&PythonScript>| subjects(sizes, py);
    run_with_python("process", PYTHON, make, runs, bar, (results, errors, notes));
}

/// Writes the suite's Python script (a note if `python3` is missing), makes the
/// subjects (the Python ones only with a script), runs them and removes the script.
pub(super) fn run_with_python(
    suite: &'static str,
    script: &str,
    make: impl FnOnce(Option<&PythonScript>) -> Vec<Subject>,
    runs: u32,
    bar: &ProgressBar,
    (results, errors, notes): (&mut Vec<Measurement>, &mut Vec<String>, &mut Vec<String>),
) {
    let python = PythonScript::write(suite, script, notes);
    let subjects = make(python.as_ref());
    run_subjects(suite, &subjects, runs, bar, results, errors);
    if let Some(py) = python {
        py.remove();
    }
}

/// Every subject, in display order.
fn subjects(sizes: &ProcessSizes, python: Option<&PythonScript>) -> Vec<Subject> {
    let mut out = Vec::new();
    let starts = sizes.starts;
    out.push(Subject {
        case: "start-join",
        name: "concur Process (Spawn)",
        family: Family::ProcessStart,
        origin: Origin::Concur,
        threads: 1,
        ops: starts,
        run: Box::new(move || start_join(StartMethod::Spawn, starts)),
    });
    out.push(Subject {
        case: "start-join",
        name: "concur Process (Fork)",
        family: Family::ProcessStart,
        origin: Origin::Concur,
        threads: 1,
        ops: starts,
        run: Box::new(move || start_join(StartMethod::Fork { force: false }, starts)),
    });
    out.push(Subject {
        case: "start-join",
        name: "concur Process (ForkServer)",
        family: Family::ProcessStart,
        origin: Origin::Concur,
        threads: 1,
        ops: starts,
        run: Box::new(move || start_join(StartMethod::ForkServer, starts)),
    });
    out.push(Subject {
        case: "start-join",
        name: "bare exec of this binary",
        family: Family::ProcessStart,
        origin: Origin::Os,
        threads: 1,
        ops: starts,
        run: Box::new(move || bare_exec(starts)),
    });
    if let Some(py) = python {
        for (name, method, n) in [
            (
                "python3 mp.Process (fork)",
                "fork",
                sizes.python_fork_starts,
            ),
            (
                "python3 mp.Process (spawn)",
                "spawn",
                sizes.python_spawn_starts,
            ),
        ] {
            let path = py.path.clone();
            out.push(Subject {
                case: "start-join",
                name,
                family: Family::ProcessStart,
                origin: Origin::Python,
                threads: 1,
                ops: n,
                run: Box::new(move || python_ns(&path, &["start", method, &n.to_string()])),
            });
        }
    }

    let trips = sizes.round_trips;
    out.push(Subject {
        case: "pipe-round-trip",
        name: "concur Connection (u64)",
        family: Family::PipeRoundTrip,
        origin: Origin::Concur,
        threads: 1,
        ops: trips,
        run: Box::new(move || connection_round_trips(trips)),
    });
    out.push(Subject {
        case: "pipe-round-trip",
        name: "raw socketpair 8 B",
        family: Family::PipeRoundTrip,
        origin: Origin::Os,
        threads: 1,
        ops: trips,
        run: Box::new(move || raw_round_trips(trips)),
    });
    if let Some(py) = python {
        let path = py.path.clone();
        out.push(Subject {
            case: "pipe-round-trip",
            name: "python3 mp.Pipe (fork)",
            family: Family::PipeRoundTrip,
            origin: Origin::Python,
            threads: 1,
            ops: trips,
            run: Box::new(move || python_ns(&path, &["pipe", &trips.to_string()])),
        });
    }

    let items = sizes.queue_items;
    out.push(Subject {
        case: "queue-stream",
        name: "concur process::Queue (u64)",
        family: Family::ProcessQueue,
        origin: Origin::Concur,
        threads: 1,
        ops: items,
        run: Box::new(move || queue_stream(items)),
    });
    if let Some(py) = python {
        let (path, n) = (py.path.clone(), sizes.python_queue_items);
        out.push(Subject {
            case: "queue-stream",
            name: "python3 mp.Queue (fork)",
            family: Family::ProcessQueue,
            origin: Origin::Python,
            threads: 1,
            ops: n,
            run: Box::new(move || python_ns(&path, &["queue", &n.to_string()])),
        });
    }

    let (bytes, writes) = (sizes.array_bytes, sizes.array_writes);
    let mib = (bytes >> 20) as u64 * writes;
    // Allocated at the first array-write run, not before: 3 x 64 MiB resident while the
    // start-join case runs would slow every fork (page tables are copied) and measure
    // the bench's memory instead of the start method.
    let targets: Rc<OnceCell<Result<BulkTargets, String>>> = Rc::default();
    for (name, origin, vec) in [
        ("concur Array<u8>::copy_from_slice", Origin::Concur, false),
        ("memcpy into a Vec<u8>", Origin::Os, true),
    ] {
        let targets = targets.clone();
        out.push(Subject {
            case: "array-write",
            name,
            family: Family::BulkWrite,
            origin,
            threads: 1,
            ops: mib,
            run: Box::new(move || {
                let t = targets
                    .get_or_init(|| {
                        BulkTargets::new(bytes).map_err(|e| format!("shared memory: {e}"))
                    })
                    .as_ref()
                    .map_err(Clone::clone)?;
                if vec {
                    t.vec_write(writes)
                } else {
                    t.array_write(writes)
                }
            }),
        });
    }
    out
}

/// The function the `start-join` children run: nothing.
fn nothing(_: ()) {}

/// `n` start + join of a child running [`nothing`]; ns per child.
pub(super) fn start_join(method: StartMethod, n: u64) -> Result<f64, String> {
    let start = Instant::now();
    for _ in 0..n {
        let p = Process::builder()
            .start_method(method)
            .spawn(nothing, ())
            .map_err(|e| e.to_string())?;
        p.join_timeout(CHILD_LIMIT).map_err(|e| e.to_string())?;
    }
    Ok(per_op(start.elapsed(), n))
}

/// `n` exec + wait of this binary in its immediate-exit mode; ns per child.
pub(super) fn bare_exec(n: u64) -> Result<f64, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let start = Instant::now();
    for _ in 0..n {
        let status = Command::new(&exe)
            .env(CHILD_ENV, "exit")
            .stdin(Stdio::null())
            .status()
            .map_err(|e| format!("exec: {e}"))?;
        if !status.success() {
            return Err(format!("the bare child exited with {status}"));
        }
    }
    Ok(per_op(start.elapsed(), n))
}

/// The child end of the `Connection` round trips: echoes `u64`s until `u64::MAX`.
fn echo(c: Connection) -> u64 {
    let mut n = 0;
    while let Ok(x) = c.recv::<u64>() {
        if x == u64::MAX || c.send(&x).is_err() {
            break;
        }
        n += 1;
    }
    n
}

/// `n` round trips through a `Connection` with a spawned echo child; ns per trip.
fn connection_round_trips(n: u64) -> Result<f64, String> {
    let (mine, theirs) = Pipe::duplex().map_err(|e| format!("pipe: {e}"))?;
    let child = Process::spawn(echo, theirs).map_err(|e| e.to_string())?;
    let timed = (|| -> Result<f64, String> {
        let trip = |i: u64| -> Result<(), String> {
            mine.send(&i).map_err(|e| e.to_string())?;
            // A blocking `recv`, as Python's `conn.recv()` and the raw anchor's `read`:
            // it cannot hang on a dead child, whose end closes (end of stream).
            match mine.recv::<u64>() {
                Ok(back) if back == i => Ok(()),
                Ok(back) => Err(format!("sent {i}, got {back} back")),
                Err(e) => Err(e.to_string()),
            }
        };
        trip(0)?; // the child is up: not timed
        let start = Instant::now();
        for i in 1..=n {
            trip(i)?;
        }
        Ok(per_op(start.elapsed(), n))
    })();
    // Always end and join the child, even after an error.
    let _ = mine.send(&u64::MAX);
    drop(mine);
    let echoed = child.join_timeout(CHILD_LIMIT).map_err(|e| e.to_string())?;
    let ns = timed?;
    if echoed != n + 1 {
        return Err(format!("the child echoed {echoed} values, not {}", n + 1));
    }
    Ok(ns)
}

/// The producer of `queue-stream`: puts `0..=n` (0 says "up"); how many it put.
fn produce((q, n): (Queue<u64>, u64)) -> u64 {
    for i in 0..=n {
        if q.put(i).is_err() {
            return i;
        }
    }
    n + 1
}

/// `n` items from a spawned producer process through a `process::Queue`; ns per item
/// (the child's start is not timed: the clock starts at its first item).
fn queue_stream(n: u64) -> Result<f64, String> {
    let q = Queue::<u64>::new(0).map_err(|e| format!("queue: {e}"))?;
    let child = Process::spawn(produce, (q.clone(), n)).map_err(|e| e.to_string())?;
    let timed = (|| -> Result<f64, String> {
        q.get_timeout(CHILD_LIMIT).map_err(|e| e.to_string())?;
        let start = Instant::now();
        let mut sum = 0u64;
        for _ in 0..n {
            sum += q.get_timeout(CHILD_LIMIT).map_err(|e| e.to_string())?;
        }
        let ns = per_op(start.elapsed(), n);
        if sum != n * (n + 1) / 2 {
            return Err(format!("queue-stream: wrong sum {sum}"));
        }
        Ok(ns)
    })();
    q.shutdown(true);
    let put = child.join_timeout(CHILD_LIMIT).map_err(|e| e.to_string())?;
    let ns = timed?;
    if put != n + 1 {
        return Err(format!("the producer put {put} items, not {}", n + 1));
    }
    Ok(ns)
}

/// `n` 8-byte round trips over a socketpair with a bare echo child; ns per trip.
pub(super) fn raw_round_trips(n: u64) -> Result<f64, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let (mut mine, theirs) = UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
    let mut child = Command::new(exe)
        .env(CHILD_ENV, "echo")
        .stdin(Stdio::from(OwnedFd::from(theirs)))
        .spawn()
        .map_err(|e| format!("exec: {e}"))?;
    mine.set_read_timeout(Some(CHILD_LIMIT))
        .map_err(|e| e.to_string())?;
    let mut trip = |i: u64| -> Result<(), String> {
        mine.write_all(&i.to_ne_bytes())
            .map_err(|e| e.to_string())?;
        let mut back = [0u8; 8];
        mine.read_exact(&mut back).map_err(|e| e.to_string())?;
        if u64::from_ne_bytes(back) == i {
            Ok(())
        } else {
            Err(format!("sent {i}, got {back:?} back"))
        }
    };
    let timed = trip(0).and_then(|()| {
        let start = Instant::now();
        for i in 1..=n {
            trip(i)?;
        }
        Ok(per_op(start.elapsed(), n))
    });
    drop(mine); // end of stream: the child's loop ends
    let status = child.wait().map_err(|e| format!("wait: {e}"))?;
    let ns = timed?;
    if !status.success() {
        return Err(format!("the raw echo child exited with {status}"));
    }
    Ok(ns)
}

/// The destinations of the bulk writes and the source buffer, allocated once.
struct BulkTargets {
    source: Vec<u8>,
    array: Array<u8>,
    vec: std::cell::RefCell<Vec<u8>>,
}

impl BulkTargets {
    fn new(bytes: usize) -> std::io::Result<Self> {
        let source: Vec<u8> = (0..bytes).map(|i| (i * 31 % 251) as u8).collect();
        let array = Array::<u8>::zeroed(bytes)?;
        array
            .copy_from_slice(&source)
            .map_err(std::io::Error::from)?; // fault the pages in
        let vec = source.clone(); // written once: its pages are in too
        Ok(BulkTargets {
            source,
            array,
            vec: std::cell::RefCell::new(vec),
        })
    }

    fn mib(&self) -> u64 {
        (self.source.len() >> 20) as u64
    }

    fn array_write(&self, writes: u64) -> Result<f64, String> {
        let start = Instant::now();
        for _ in 0..writes {
            self.array
                .copy_from_slice(std::hint::black_box(&self.source))
                .map_err(|e| e.to_string())?;
        }
        let elapsed = start.elapsed();
        let last = self.source.len() - 1;
        if self.array.get(last) != Some(self.source[last]) {
            return Err("the array does not hold what was written".into());
        }
        Ok(per_op(elapsed, writes * self.mib()))
    }

    fn vec_write(&self, writes: u64) -> Result<f64, String> {
        let mut vec = self.vec.borrow_mut();
        let start = Instant::now();
        for _ in 0..writes {
            vec.copy_from_slice(std::hint::black_box(&self.source));
            std::hint::black_box(&mut *vec);
        }
        let elapsed = start.elapsed();
        if *vec != self.source {
            return Err("the vector does not hold what was written".into());
        }
        Ok(per_op(elapsed, writes * self.mib()))
    }
}

pub(super) fn per_op(elapsed: Duration, ops: u64) -> f64 {
    elapsed.as_secs_f64() * 1e9 / ops.max(1) as f64
}

/// CPython's side: `multiprocessing.Process` start + join and `Pipe` round trips,
/// timed inside Python. Run from a file (not `-c`): the spawn start method re-imports
/// the main module in the child.
const PYTHON: &str = r#"
import multiprocessing as mp, sys, time

def nothing():
    pass

def produce(q, n):
    for i in range(n + 1):
        q.put(i)

def echo(conn):
    while True:
        x = conn.recv()
        if x is None:
            break
        conn.send(x)

if __name__ == "__main__":
    if sys.argv[1] == "start":
        ctx, n = mp.get_context(sys.argv[2]), int(sys.argv[3])
        p = ctx.Process(target=nothing); p.start(); p.join()  # warm-up, not timed
        t = time.perf_counter()
        for _ in range(n):
            p = ctx.Process(target=nothing)
            p.start()
            p.join()
        print((time.perf_counter() - t) * 1e9 / n)
    elif sys.argv[1] == "queue":
        ctx, n = mp.get_context("fork"), int(sys.argv[2])
        q = ctx.Queue()
        p = ctx.Process(target=produce, args=(q, n)); p.start()
        q.get()  # the producer is up, not timed
        t = time.perf_counter()
        s = 0
        for _ in range(n):
            s += q.get()
        el = time.perf_counter() - t
        assert s == n * (n + 1) // 2
        p.join()
        print(el * 1e9 / n)
    else:
        ctx, n = mp.get_context("fork"), int(sys.argv[2])
        a, b = ctx.Pipe()
        p = ctx.Process(target=echo, args=(b,)); p.start()
        a.send(0); a.recv()  # the child is up, not timed
        t = time.perf_counter()
        for i in range(n):
            a.send(i)
            assert a.recv() == i
        el = time.perf_counter() - t
        a.send(None); p.join()
        print(el * 1e9 / n)
"#;

/// A suite's Python script, written to a temporary file while the suite runs.
pub(super) struct PythonScript {
    /// Where the script is.
    pub(super) path: std::path::PathBuf,
}

impl PythonScript {
    /// Writes `source` (the script of suite `suite`) if `python3` runs; otherwise
    /// leaves a note and returns None.
    pub(super) fn write(suite: &str, source: &str, notes: &mut Vec<String>) -> Option<Self> {
        match Command::new("python3").arg("--version").output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                notes.push(format!(
                    "python3 --version failed ({}): Python anchors skipped",
                    o.status
                ));
                return None;
            }
            Err(e) => {
                notes.push(format!(
                    "python3 not available, Python anchors skipped: {e}"
                ));
                return None;
            }
        }
        let path =
            std::env::temp_dir().join(format!("concur-bench-{suite}-{}.py", std::process::id()));
        match std::fs::write(&path, source) {
            Ok(()) => Some(PythonScript { path }),
            Err(e) => {
                notes.push(format!(
                    "could not write the Python script, Python anchors skipped: {e}"
                ));
                None
            }
        }
    }

    /// Deletes the script.
    pub(super) fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Runs the script with `args`; the ns per operation it prints.
pub(super) fn python_ns(path: &std::path::Path, args: &[&str]) -> Result<f64, String> {
    let out = Command::new("python3")
        .arg(path)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "python3 exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse::<f64>()
        .map_err(|e| format!("python3 printed no timing: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_round_trips_check_the_echo() {
        let ns = connection_round_trips(20).expect("round trips");
        assert!(ns > 0.0);
    }

    #[test]
    fn bulk_writes_land() {
        let t = BulkTargets::new(2 << 20).expect("shared memory");
        assert!(t.array_write(2).expect("array") > 0.0);
        assert!(t.vec_write(2).expect("vec") > 0.0);
        assert_eq!(t.array.to_vec(), t.source);
    }

    #[test]
    fn concur_start_join_runs() {
        assert!(start_join(StartMethod::Spawn, 2).expect("spawn") > 0.0);
    }
}
