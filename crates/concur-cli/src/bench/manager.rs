//! The manager suite: round trips through a `Manager`'s `Dict` proxy beside a raw
//! Unix-socket ping-pong between two processes and beside CPython's
//! `multiprocessing.Manager().dict()`.
//!
//! Two cases, each timed per `get` (one request to the server process and its reply):
//!
//! - `dict-get`: one client. Subjects: concur `Dict<u64, u64>::get` through a
//!   `Manager::start()` server (the default abstract Unix socket); the raw anchor, 8
//!   bytes both ways over a Unix stream socketpair with a bare echo child (the same
//!   child and loop as the process suite's `pipe-round-trip`: `write`/`read`, no
//!   framing, no serialization); and Python's `Manager().dict()` `d.get(k)`.
//! - `dict-get-aggregate`: gets with more than one request in flight. Subjects: 4
//!   client processes doing gets on one dict at once, timed from releasing them (a
//!   barrier: process start, connection and a warm-up are not timed) to the last one
//!   finishing, over all their gets (so `ops/s` is the aggregate) — concur (4 `Process`
//!   children, each with its own proxy clone, so its own connection and server thread)
//!   and Python with 4 forked clients; one concur client pipelining its gets
//!   (`Dict::get_many` of [`BATCH`] keys: requests sent back to back, answered in
//!   turn), per get; and Python's single client again (the issue's goal compares the
//!   aggregate with Python's single-client figure; it is re-measured in this case so
//!   that the ratio is computed like every other).
//!
//! The server of every subject is started, and every client warmed by a few gets,
//! before the clock starts. Python runs from a script in a `python3` child and times
//! itself; without `python3` its subjects are skipped with a note. The reference
//! anchors are the raw ping-pong and Python.

use super::Measurement;
use super::adapters::{Family, Origin};
use super::process::{PythonScript, Subject, per_op, python_ns, raw_round_trips, run_with_python};
use concur::process::manager::Dict;
use concur::process::sync::Barrier;
use concur::process::{Manager, Process};
use indicatif::ProgressBar;
use serde::Serialize;
use std::time::{Duration, Instant};

/// What the operations are, for the JSON document.
pub(super) const OPERATION: &str = "dict-get: one get of a u64 key through a manager dict proxy \
     (a request to the server process and its reply; raw: 8 bytes to an echo process and \
     back); dict-get-aggregate: the same from 4 client processes at once (wall time / all \
     gets: aggregate), or pipelined by one client (get_many)";

/// Keys per `get_many` of the pipelined subject.
const BATCH: usize = 256;

/// Client processes of the concurrent case.
const CLIENTS: usize = 4;

/// Gets each client does before the clock starts.
const WARM_UP: u64 = 100;

/// How long a barrier may wait for the clients before the run counts as failed.
const BARRIER_LIMIT: Duration = Duration::from_secs(60);

/// The key every get reads, and its value.
const KEY: u64 = 7;
const VALUE: u64 = 49;

/// Sizes of the suite's cases.
#[derive(Debug, Clone, Serialize)]
pub(super) struct ManagerSizes {
    /// Gets per run of one concur client (and raw round trips).
    pub gets: u64,
    /// Gets per run of Python's single client (about 19 k/s).
    pub python_gets: u64,
    /// Gets per client per run in the 4-client case (concur).
    pub gets_per_client: u64,
    /// Gets per client per run in the 4-client case (Python).
    pub python_gets_per_client: u64,
}

impl ManagerSizes {
    /// Full or `--quick` sizes.
    pub(super) fn new(quick: bool) -> Self {
        if quick {
            ManagerSizes {
                gets: 5_000,
                python_gets: 2_000,
                gets_per_client: 2_500,
                python_gets_per_client: 500,
            }
        } else {
            ManagerSizes {
                gets: 100_000,
                python_gets: 40_000,
                gets_per_client: 50_000,
                python_gets_per_client: 10_000,
            }
        }
    }
}

/// Runs the suite into `results`; failures go to `errors`, skipped anchors to `notes`.
pub(super) fn run_suite(
    sizes: &ManagerSizes,
    runs: u32,
    bar: &ProgressBar,
    results: &mut Vec<Measurement>,
    errors: &mut Vec<String>,
    notes: &mut Vec<String>,
) {
    let make = |py: Option<&PythonScript>| subjects(sizes, py);
    run_with_python("manager", PYTHON, make, runs, bar, (results, errors, notes));
}

/// Every subject, in display order.
fn subjects(sizes: &ManagerSizes, python: Option<&PythonScript>) -> Vec<Subject> {
    let mut out = Vec::new();
    let n = sizes.gets;
    out.push(Subject {
        case: "dict-get",
        name: "concur Manager Dict::get",
        origin: Origin::Concur,
        family: Family::ManagerRoundTrip,
        threads: 1,
        ops: n,
        run: Box::new(move || one_client(n)),
    });
    out.push(Subject {
        case: "dict-get",
        name: "raw unix socket ping-pong 8 B",
        origin: Origin::Os,
        family: Family::ManagerRoundTrip,
        threads: 1,
        ops: n,
        run: Box::new(move || raw_round_trips(n)),
    });
    let py_single = |case: &'static str| {
        python.map(|py| {
            let path = py.path.clone();
            let n = sizes.python_gets;
            Subject {
                case,
                name: "python3 Manager().dict() get",
                origin: Origin::Python,
                family: Family::ManagerRoundTrip,
                threads: 1,
                ops: n,
                run: Box::new(move || python_ns(&path, &["1", &n.to_string()])),
            }
        })
    };
    out.extend(py_single("dict-get"));

    let per = sizes.gets_per_client;
    out.push(Subject {
        case: "dict-get-aggregate",
        name: "concur Manager Dict::get x4",
        origin: Origin::Concur,
        family: Family::ManagerRoundTrip,
        threads: CLIENTS,
        ops: per * CLIENTS as u64,
        run: Box::new(move || many_clients(per)),
    });
    let n = sizes.gets;
    out.push(Subject {
        case: "dict-get-aggregate",
        name: "concur Dict::get_many pipelined",
        origin: Origin::Concur,
        family: Family::ManagerRoundTrip,
        threads: 1,
        ops: n,
        run: Box::new(move || pipelined(n)),
    });
    if let Some(py) = python {
        let path = py.path.clone();
        let per = sizes.python_gets_per_client;
        out.push(Subject {
            case: "dict-get-aggregate",
            name: "python3 Manager().dict() get x4",
            origin: Origin::Python,
            family: Family::ManagerRoundTrip,
            threads: CLIENTS,
            ops: per * CLIENTS as u64,
            run: Box::new(move || python_ns(&path, &[&CLIENTS.to_string(), &per.to_string()])),
        });
    }
    out.extend(py_single("dict-get-aggregate"));
    out
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A started manager with one dict holding `KEY → VALUE`.
fn server() -> Result<(Manager, Dict<u64, u64>), String> {
    let m = Manager::start().map_err(err)?;
    let d = m.dict::<u64, u64>().map_err(err)?;
    d.insert(KEY, VALUE).map_err(err)?;
    Ok((m, d))
}

/// `n` gets of `KEY`, checked; the sum of what they read must be `n × VALUE`.
fn gets(d: &Dict<u64, u64>, n: u64) -> Result<(), String> {
    let mut sum = 0u64;
    for _ in 0..n {
        sum += d.get(&KEY).map_err(err)?.unwrap_or(0);
    }
    if sum == n * VALUE {
        Ok(())
    } else {
        Err(format!("{n} gets read a sum of {sum}, not {}", n * VALUE))
    }
}

/// One client: `n` gets through a warmed proxy; ns per get.
fn one_client(n: u64) -> Result<f64, String> {
    let (m, d) = server()?;
    gets(&d, WARM_UP)?;
    let start = Instant::now();
    gets(&d, n)?;
    let elapsed = start.elapsed();
    m.shutdown().map_err(err)?;
    Ok(per_op(elapsed, n))
}

/// One client pipelining `n` gets in `get_many` batches of `BATCH`; ns per get.
fn pipelined(n: u64) -> Result<f64, String> {
    let (m, d) = server()?;
    let keys = vec![KEY; BATCH];
    gets(&d, WARM_UP)?;
    let start = Instant::now();
    let mut done = 0u64;
    let mut sum = 0u64;
    while done < n {
        let k = (n - done).min(BATCH as u64) as usize;
        for v in d.get_many(&keys[..k]).map_err(err)? {
            sum += v.unwrap_or(0);
        }
        done += k as u64;
    }
    let elapsed = start.elapsed();
    m.shutdown().map_err(err)?;
    if sum != n * VALUE {
        return Err(format!(
            "{n} pipelined gets read a sum of {sum}, not {}",
            n * VALUE
        ));
    }
    Ok(per_op(elapsed, n))
}

/// A client process of the 4-client case: connects and warms up, waits for the
/// others, then does its gets. Returns how many succeeded (all, or it panics).
fn client((d, n, go): (Dict<u64, u64>, u64, Barrier)) -> u64 {
    gets(&d, WARM_UP).expect("warm-up gets");
    go.wait().expect("the start barrier");
    gets(&d, n).expect("gets");
    n
}

/// `CLIENTS` processes × `per` gets at once; wall time / all gets.
fn many_clients(per: u64) -> Result<f64, String> {
    let (m, d) = server()?;
    let go = Barrier::builder(CLIENTS + 1)
        .timeout(BARRIER_LIMIT)
        .build()
        .map_err(err)?;
    let ps = (0..CLIENTS)
        .map(|_| Process::spawn(client, (d.clone(), per, go.clone())))
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    let timed = go.wait().map_err(err).map(|_| Instant::now());
    let mut done = 0;
    let mut failure = None;
    for p in &ps {
        match p.join_timeout(BARRIER_LIMIT) {
            Ok(k) => done += k,
            Err(e) => {
                let _ = p.kill();
                let _ = p.join_timeout(BARRIER_LIMIT);
                failure.get_or_insert(format!("a client failed: {e}"));
            }
        }
    }
    let elapsed = timed?.elapsed();
    m.shutdown().map_err(err)?;
    if let Some(f) = failure {
        return Err(f);
    }
    let total = per * CLIENTS as u64;
    if done != total {
        return Err(format!("the clients did {done} gets, not {total}"));
    }
    Ok(per_op(elapsed, total))
}

/// CPython's side: `python3 script CLIENTS N` — one client in this process, or
/// `CLIENTS` forked client processes released together by a barrier (the same timing
/// as concur's: from the release to the last client's end, over all gets).
const PYTHON: &str = r#"
import multiprocessing as mp, sys, time

KEY, VALUE = 7, 49

def gets(d, n):
    s = 0
    for _ in range(n):
        s += d.get(KEY)
    assert s == n * VALUE, s

def client(d, n, go):
    gets(d, 100)  # warm-up, not timed
    go.wait()
    gets(d, n)

if __name__ == "__main__":
    clients, n = int(sys.argv[1]), int(sys.argv[2])
    ctx = mp.get_context("fork")
    with ctx.Manager() as m:
        d = m.dict()
        d[KEY] = VALUE
        if clients == 1:
            gets(d, 100)  # warm-up, not timed
            t = time.perf_counter()
            gets(d, n)
            el = time.perf_counter() - t
        else:
            go = ctx.Barrier(clients + 1)
            ps = [ctx.Process(target=client, args=(d, n, go)) for _ in range(clients)]
            for p in ps:
                p.start()
            go.wait()
            t = time.perf_counter()
            for p in ps:
                p.join()
            el = time.perf_counter() - t
            assert all(p.exitcode == 0 for p in ps), [p.exitcode for p in ps]
    print(el * 1e9 / (n * clients))
"#;

#[cfg(test)]
mod tests {
    use super::*;

    use crate::bench::within_a_minute as within;

    #[test]
    fn one_client_checks_every_get() {
        let ns = within("one_client", || one_client(200)).expect("one client");
        assert!(ns > 0.0);
    }

    #[test]
    fn pipelined_checks_every_get() {
        let ns = within("pipelined", || pipelined(BATCH as u64 * 2 + 3)).expect("pipelined");
        assert!(ns > 0.0);
    }

    #[test]
    fn gets_notices_a_wrong_value() {
        let (m, d) = within("server", server).expect("server");
        d.insert(KEY, VALUE + 1).expect("insert");
        assert!(gets(&d, 3).is_err());
        m.shutdown().expect("shutdown");
    }
}
