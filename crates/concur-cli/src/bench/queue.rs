//! The queue suite: concur's FIFO `Queue` (with and without `task_done`) beside
//! crossbeam-channel, kanal, flume, `std::sync::mpsc`, a naive `Mutex<VecDeque>` +
//! `Condvar` queue and CPython's `queue.Queue`.
//!
//! One case moves `items` distinct `u64`s from `producers` threads to `consumers`
//! threads through one bounded(1024) or unbounded FIFO. Each consumer takes an exact
//! quota, so no end-of-stream marker is needed, and the sum of what was received is
//! checked against the sum of what was sent. concur's consumers call `task_done` after
//! every `get` (task accounting on, as in Python), and `join` must return at the end;
//! the "no task_done" subject only gets, as the channels do.
//! `std::sync::mpsc` has a single receiver: it runs the cases with one consumer only.

use super::adapters::{Family, Origin};
use super::{Measurement, Stats};
use indicatif::ProgressBar;
use serde::Serialize;
use std::collections::VecDeque;
use std::process::Command;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// What one measured operation is, for the JSON document.
pub(super) const OPERATION: &str = "one item from a producer to a consumer (put + get; concur also \
                             task_done), many items per run, time per item";

/// Capacity of the bounded cases.
const CAP: usize = 1024;

/// One queue case.
#[derive(Debug, Clone, Serialize)]
pub(super) struct QueueCase {
    /// `spsc-bounded`, `mpmc-4-4-unbounded`...
    pub name: &'static str,
    /// Producer threads.
    pub producers: usize,
    /// Consumer threads.
    pub consumers: usize,
    /// Bounded(1024) or unbounded.
    pub bounded: bool,
    /// Items moved per run (a multiple of producers and of consumers).
    pub items: u64,
}

impl QueueCase {
    fn family(&self) -> Family {
        if self.bounded {
            Family::QueueBounded
        } else {
            Family::QueueUnbounded
        }
    }
}

/// The sweep: SPSC, MPSC 4→1, MPMC 2→2 and 4→4, bounded and unbounded.
pub(super) fn cases(quick: bool) -> Vec<QueueCase> {
    const SHAPES: [(usize, usize, &str, &str); 4] = [
        (1, 1, "spsc-bounded", "spsc-unbounded"),
        (4, 1, "mpsc-4-1-bounded", "mpsc-4-1-unbounded"),
        (2, 2, "mpmc-2-2-bounded", "mpmc-2-2-unbounded"),
        (4, 4, "mpmc-4-4-bounded", "mpmc-4-4-unbounded"),
    ];
    let items = if quick { 40_000 } else { 1_000_000 };
    let mut out = Vec::new();
    for (producers, consumers, bounded_name, unbounded_name) in SHAPES {
        for (bounded, name) in [(true, bounded_name), (false, unbounded_name)] {
            out.push(QueueCase {
                name,
                producers,
                consumers,
                bounded,
                items,
            });
        }
    }
    out
}

/// A queue as the harness sees it.
pub(super) trait QueueUnderTest: Send + Sync {
    /// Display name.
    fn name(&self) -> &'static str;
    /// Origin, for ratios.
    fn origin(&self) -> Origin;
    /// Whether this queue can run `case` (std mpsc: one consumer).
    fn supports(&self, case: &QueueCase) -> bool;
    /// One run of `case`: the time from the common start to the last join.
    ///
    /// # Errors
    /// A message if a thread could not be spawned, an operation failed, or the sum of
    /// the items received is not the sum of the items sent.
    fn run(&self, case: &QueueCase) -> Result<Duration, String>;
}

/// A channel-like FIFO with producer and consumer endpoints.
trait Chan: 'static {
    const NAME: &'static str;
    const ORIGIN: Origin;
    type Tx: Send;
    type Rx: Send;
    fn single_consumer() -> bool {
        false
    }
    fn endpoints(
        cap: Option<usize>,
        producers: usize,
        consumers: usize,
    ) -> (Vec<Self::Tx>, Vec<Self::Rx>);
    fn send(tx: &Self::Tx, v: u64) -> Result<(), String>;
    fn recv(rx: &Self::Rx) -> Result<u64, String>;
    /// After every consumer is done (concur: `join` must return at once).
    fn check_done(_rx: &[Self::Rx]) -> Result<(), String> {
        Ok(())
    }
}

struct ConcurQueue;

impl Chan for ConcurQueue {
    const NAME: &'static str = "concur::queue::Queue";
    const ORIGIN: Origin = Origin::Concur;
    type Tx = concur::queue::Queue<u64>;
    type Rx = concur::queue::Queue<u64>;
    fn endpoints(cap: Option<usize>, p: usize, c: usize) -> (Vec<Self::Tx>, Vec<Self::Rx>) {
        let q = match cap {
            Some(n) => concur::queue::Queue::bounded(n),
            None => concur::queue::Queue::unbounded(),
        };
        (
            (0..p).map(|_| q.clone()).collect(),
            (0..c).map(|_| q.clone()).collect(),
        )
    }
    #[inline]
    fn send(tx: &Self::Tx, v: u64) -> Result<(), String> {
        tx.put(v).map_err(|e| e.to_string())
    }
    #[inline]
    fn recv(rx: &Self::Rx) -> Result<u64, String> {
        let v = rx.get().map_err(|e| e.to_string())?;
        rx.task_done().map_err(|e| e.to_string())?;
        Ok(v)
    }
    fn check_done(rx: &[Self::Rx]) -> Result<(), String> {
        match rx.first() {
            Some(q) if !q.join_timeout(Duration::from_secs(10)) => {
                Err("join did not return after every task_done".into())
            }
            _ => Ok(()),
        }
    }
}

struct Crossbeam;

impl Chan for Crossbeam {
    const NAME: &'static str = "crossbeam-channel";
    const ORIGIN: Origin = Origin::Crossbeam;
    type Tx = crossbeam_channel::Sender<u64>;
    type Rx = crossbeam_channel::Receiver<u64>;
    fn endpoints(cap: Option<usize>, p: usize, c: usize) -> (Vec<Self::Tx>, Vec<Self::Rx>) {
        let (tx, rx) = match cap {
            Some(n) => crossbeam_channel::bounded(n),
            None => crossbeam_channel::unbounded(),
        };
        (
            (0..p).map(|_| tx.clone()).collect(),
            (0..c).map(|_| rx.clone()).collect(),
        )
    }
    #[inline]
    fn send(tx: &Self::Tx, v: u64) -> Result<(), String> {
        tx.send(v).map_err(|e| e.to_string())
    }
    #[inline]
    fn recv(rx: &Self::Rx) -> Result<u64, String> {
        rx.recv().map_err(|e| e.to_string())
    }
}

/// concur's `Queue` without task accounting: the consumers only `get` (like the
/// channels beside it), and `join` is not checked.
struct ConcurQueueNoTaskDone;

impl Chan for ConcurQueueNoTaskDone {
    const NAME: &'static str = "concur Queue (no task_done)";
    const ORIGIN: Origin = Origin::Concur;
    type Tx = concur::queue::Queue<u64>;
    type Rx = concur::queue::Queue<u64>;
    fn endpoints(cap: Option<usize>, p: usize, c: usize) -> (Vec<Self::Tx>, Vec<Self::Rx>) {
        ConcurQueue::endpoints(cap, p, c)
    }
    #[inline]
    fn send(tx: &Self::Tx, v: u64) -> Result<(), String> {
        tx.put(v).map_err(|e| e.to_string())
    }
    #[inline]
    fn recv(rx: &Self::Rx) -> Result<u64, String> {
        rx.get().map_err(|e| e.to_string())
    }
}

struct Kanal;

impl Chan for Kanal {
    const NAME: &'static str = "kanal";
    const ORIGIN: Origin = Origin::Kanal;
    type Tx = kanal::Sender<u64>;
    type Rx = kanal::Receiver<u64>;
    fn endpoints(cap: Option<usize>, p: usize, c: usize) -> (Vec<Self::Tx>, Vec<Self::Rx>) {
        let (tx, rx) = match cap {
            Some(n) => kanal::bounded(n),
            None => kanal::unbounded(),
        };
        (
            (0..p).map(|_| tx.clone()).collect(),
            (0..c).map(|_| rx.clone()).collect(),
        )
    }
    #[inline]
    fn send(tx: &Self::Tx, v: u64) -> Result<(), String> {
        tx.send(v).map_err(|e| e.to_string())
    }
    #[inline]
    fn recv(rx: &Self::Rx) -> Result<u64, String> {
        rx.recv().map_err(|e| e.to_string())
    }
}

struct Flume;

impl Chan for Flume {
    const NAME: &'static str = "flume";
    const ORIGIN: Origin = Origin::Flume;
    type Tx = flume::Sender<u64>;
    type Rx = flume::Receiver<u64>;
    fn endpoints(cap: Option<usize>, p: usize, c: usize) -> (Vec<Self::Tx>, Vec<Self::Rx>) {
        let (tx, rx) = match cap {
            Some(n) => flume::bounded(n),
            None => flume::unbounded(),
        };
        (
            (0..p).map(|_| tx.clone()).collect(),
            (0..c).map(|_| rx.clone()).collect(),
        )
    }
    #[inline]
    fn send(tx: &Self::Tx, v: u64) -> Result<(), String> {
        tx.send(v).map_err(|e| e.to_string())
    }
    #[inline]
    fn recv(rx: &Self::Rx) -> Result<u64, String> {
        rx.recv().map_err(|e| e.to_string())
    }
}

struct StdMpsc;

enum StdTx {
    Bounded(std::sync::mpsc::SyncSender<u64>),
    Unbounded(std::sync::mpsc::Sender<u64>),
}

impl Chan for StdMpsc {
    const NAME: &'static str = "std::sync::mpsc";
    const ORIGIN: Origin = Origin::Std;
    type Tx = StdTx;
    type Rx = std::sync::mpsc::Receiver<u64>;
    fn single_consumer() -> bool {
        true
    }
    fn endpoints(cap: Option<usize>, p: usize, _c: usize) -> (Vec<Self::Tx>, Vec<Self::Rx>) {
        match cap {
            Some(n) => {
                let (tx, rx) = std::sync::mpsc::sync_channel(n);
                (
                    (0..p).map(|_| StdTx::Bounded(tx.clone())).collect(),
                    vec![rx],
                )
            }
            None => {
                let (tx, rx) = std::sync::mpsc::channel();
                (
                    (0..p).map(|_| StdTx::Unbounded(tx.clone())).collect(),
                    vec![rx],
                )
            }
        }
    }
    #[inline]
    fn send(tx: &Self::Tx, v: u64) -> Result<(), String> {
        match tx {
            StdTx::Bounded(t) => t.send(v).map_err(|e| e.to_string()),
            StdTx::Unbounded(t) => t.send(v).map_err(|e| e.to_string()),
        }
    }
    #[inline]
    fn recv(rx: &Self::Rx) -> Result<u64, String> {
        rx.recv().map_err(|e| e.to_string())
    }
}

/// The baseline every queue should beat: one mutex, two condition variables.
struct NaiveQueue {
    items: Mutex<VecDeque<u64>>,
    not_empty: Condvar,
    not_full: Condvar,
    cap: Option<usize>,
}

struct Naive;

impl Chan for Naive {
    const NAME: &'static str = "naive Mutex<VecDeque>+Condvar";
    const ORIGIN: Origin = Origin::Naive;
    type Tx = std::sync::Arc<NaiveQueue>;
    type Rx = std::sync::Arc<NaiveQueue>;
    fn endpoints(cap: Option<usize>, p: usize, c: usize) -> (Vec<Self::Tx>, Vec<Self::Rx>) {
        let q = std::sync::Arc::new(NaiveQueue {
            items: Mutex::new(VecDeque::new()),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            cap,
        });
        (
            (0..p).map(|_| q.clone()).collect(),
            (0..c).map(|_| q.clone()).collect(),
        )
    }
    fn send(q: &Self::Tx, v: u64) -> Result<(), String> {
        let mut items = q.items.lock().map_err(|e| e.to_string())?;
        while q.cap.is_some_and(|c| items.len() >= c) {
            items = q.not_full.wait(items).map_err(|e| e.to_string())?;
        }
        items.push_back(v);
        drop(items);
        q.not_empty.notify_one();
        Ok(())
    }
    fn recv(q: &Self::Rx) -> Result<u64, String> {
        let mut items = q.items.lock().map_err(|e| e.to_string())?;
        loop {
            if let Some(v) = items.pop_front() {
                drop(items);
                q.not_full.notify_one();
                return Ok(v);
            }
            items = q.not_empty.wait(items).map_err(|e| e.to_string())?;
        }
    }
}

struct Adapter<C>(std::marker::PhantomData<fn() -> C>);

const WAIT: u8 = 0;
const GO: u8 = 1;
const ABORT: u8 = 2;

fn wait_for_go(start: &AtomicU8) -> bool {
    loop {
        match start.load(Ordering::Acquire) {
            WAIT => std::thread::yield_now(),
            s => return s == GO,
        }
    }
}

impl<C: Chan> QueueUnderTest for Adapter<C> {
    fn name(&self) -> &'static str {
        C::NAME
    }

    fn origin(&self) -> Origin {
        C::ORIGIN
    }

    fn supports(&self, case: &QueueCase) -> bool {
        !C::single_consumer() || case.consumers == 1
    }

    fn run(&self, case: &QueueCase) -> Result<Duration, String> {
        let (txs, rxs) = C::endpoints(case.bounded.then_some(CAP), case.producers, case.consumers);
        let per_producer = case.items / case.producers as u64;
        let per_consumer = case.items / case.consumers as u64;
        let start = AtomicU8::new(WAIT);
        let outcome = std::thread::scope(|s| {
            let mut producers = Vec::new();
            let mut consumers = Vec::new();
            let mut spawn_error = None;
            for (p, tx) in txs.into_iter().enumerate() {
                let start = &start;
                let base = p as u64 * per_producer;
                let spawned = std::thread::Builder::new()
                    .name(format!("producer-{p}"))
                    .spawn_scoped(s, move || -> Result<(), String> {
                        if !wait_for_go(start) {
                            return Ok(());
                        }
                        for v in base..base + per_producer {
                            C::send(&tx, v)?;
                        }
                        Ok(())
                    });
                match spawned {
                    Ok(h) => producers.push(h),
                    Err(e) => spawn_error = Some(e.to_string()),
                }
            }
            for (c, rx) in rxs.into_iter().enumerate() {
                let start = &start;
                let spawned = std::thread::Builder::new()
                    .name(format!("consumer-{c}"))
                    .spawn_scoped(s, move || -> Result<(u64, C::Rx), String> {
                        if !wait_for_go(start) {
                            return Ok((0, rx));
                        }
                        let mut sum = 0u64;
                        for _ in 0..per_consumer {
                            sum = sum.wrapping_add(C::recv(&rx)?);
                        }
                        Ok((sum, rx))
                    });
                match spawned {
                    Ok(h) => consumers.push(h),
                    Err(e) => spawn_error = Some(e.to_string()),
                }
            }
            if let Some(e) = spawn_error {
                start.store(ABORT, Ordering::Release);
                return Err(format!("{}: could not spawn: {e}", C::NAME));
            }
            let begin = Instant::now();
            start.store(GO, Ordering::Release);
            let mut sum = 0u64;
            let mut rxs = Vec::new();
            for h in consumers {
                let (part, rx) = h.join().map_err(|_| "a consumer panicked".to_owned())??;
                sum = sum.wrapping_add(part);
                rxs.push(rx);
            }
            for h in producers {
                h.join().map_err(|_| "a producer panicked".to_owned())??;
            }
            Ok((begin.elapsed(), sum, rxs))
        });
        let (elapsed, sum, rxs) = outcome?;
        let n = case.items;
        let expected = (n.wrapping_mul(n.wrapping_sub(1))) / 2;
        if sum != expected {
            return Err(format!(
                "{} {}: items lost or duplicated (sum {sum}, expected {expected})",
                C::NAME,
                case.name
            ));
        }
        C::check_done(&rxs)?;
        Ok(elapsed)
    }
}

/// Every Rust queue under test, concur first.
pub(super) fn subjects() -> Vec<Box<dyn QueueUnderTest>> {
    vec![
        Box::new(Adapter::<ConcurQueue>(std::marker::PhantomData)),
        Box::new(Adapter::<ConcurQueueNoTaskDone>(std::marker::PhantomData)),
        Box::new(Adapter::<Crossbeam>(std::marker::PhantomData)),
        Box::new(Adapter::<Kanal>(std::marker::PhantomData)),
        Box::new(Adapter::<Flume>(std::marker::PhantomData)),
        Box::new(Adapter::<StdMpsc>(std::marker::PhantomData)),
        Box::new(Adapter::<Naive>(std::marker::PhantomData)),
    ]
}

/// How many measurements one run of the suite makes (for the progress bar).
pub(super) fn measurement_count(cases: &[QueueCase], queues: &[Box<dyn QueueUnderTest>]) -> usize {
    cases
        .iter()
        .map(|c| queues.iter().filter(|q| q.supports(c)).count())
        .sum()
}

/// Runs every supported (case, queue) pair `runs` times, interleaved, into `results`.
pub(super) fn run_suite(
    cases: &[QueueCase],
    queues: &[Box<dyn QueueUnderTest>],
    runs: u32,
    bar: &ProgressBar,
    results: &mut Vec<Measurement>,
    errors: &mut Vec<String>,
) {
    for case in cases {
        let first = results.len();
        let live: Vec<&dyn QueueUnderTest> = queues
            .iter()
            .filter(|q| q.supports(case))
            .map(|q| q.as_ref())
            .collect();
        for q in &live {
            results.push(measurement(case, q.name(), q.origin()));
        }
        for run in 0..runs {
            for (i, q) in live.iter().enumerate() {
                bar.set_message(format!("{} {} run {}/{runs}", case.name, q.name(), run + 1));
                match q.run(case) {
                    Ok(t) => results[first + i]
                        .runs_ns_per_op
                        .push(t.as_secs_f64() * 1e9 / case.items as f64),
                    Err(e) => errors.push(e),
                }
                bar.inc(1);
            }
        }
    }
}

fn measurement(case: &QueueCase, subject: &'static str, origin: Origin) -> Measurement {
    Measurement {
        suite: "queue",
        case: case.name,
        subject,
        family: case.family(),
        origin,
        threads: case.producers + case.consumers,
        ops_per_run: case.items,
        runs_ns_per_op: Vec::new(),
        median_ns_per_op: f64::NAN,
        median_ops_per_sec: f64::NAN,
        min_ns_per_op: f64::NAN,
        max_ns_per_op: f64::NAN,
    }
}

/// CPython's `queue.Queue(maxsize=1024)`, SPSC with `task_done`, timed inside Python.
const PYTHON_SPSC: &str = r#"
import queue, sys, threading, time
n = int(sys.argv[1])
q = queue.Queue(maxsize=1024)
def consume():
    for _ in range(n):
        q.get()
        q.task_done()
c = threading.Thread(target=consume)
c.start()
t = time.perf_counter()
for i in range(n):
    q.put(i)
c.join()
q.join()
print((time.perf_counter() - t) * 1e9 / n)
"#;

/// Measures Python's `queue.Queue` SPSC (bounded) with `python3`, if it is installed;
/// otherwise leaves a note.
pub(super) fn python_anchor(
    quick: bool,
    runs: u32,
    bar: &ProgressBar,
    results: &mut Vec<Measurement>,
    notes: &mut Vec<String>,
) {
    let items: u64 = if quick { 20_000 } else { 200_000 };
    let case = QueueCase {
        name: "spsc-bounded",
        producers: 1,
        consumers: 1,
        bounded: true,
        items,
    };
    let mut m = measurement(&case, "python3 queue.Queue", Origin::Python);
    for _ in 0..runs {
        bar.set_message("spsc-bounded python3 queue.Queue");
        let out = Command::new("python3")
            .args(["-c", PYTHON_SPSC, &items.to_string()])
            .output();
        match out {
            Ok(o) if o.status.success() => {
                match String::from_utf8_lossy(&o.stdout).trim().parse::<f64>() {
                    Ok(ns) => m.runs_ns_per_op.push(ns),
                    Err(e) => notes.push(format!("python3 printed no timing: {e}")),
                }
            }
            Ok(o) => notes.push(format!("python3 failed: {}", o.status)),
            Err(e) => {
                notes.push(format!("python3 not available, Python anchor skipped: {e}"));
                break;
            }
        }
    }
    if Stats::of(&m.runs_ns_per_op).is_some() {
        results.push(m);
    }
}
