//! Criterion throughput benchmarks: concur's `Queue` beside crossbeam-channel, kanal,
//! flume, `std::sync::mpsc` and a naive `Mutex<VecDeque>` + `Condvar` queue, in one run.
//!
//! Groups (producers → consumers): `queue/spsc` (1→1), `queue/mpsc-4-1`,
//! `queue/mpmc-2-2`, `queue/mpmc-4-4`; in each, every implementation runs `bounded`
//! (capacity 1024) and `unbounded`. One iteration moves [`ITEMS`] `u64`s from the
//! producers to the consumers (threads spawned per iteration; the spawn cost is small
//! beside 100k items). concur's consumers call `task_done` after every `get`
//! ("accounting on"). `std::sync::mpsc` has a single consumer, so it sits out MPMC.
//!
//! Measurement times are short so the whole file runs in about two minutes; CI only
//! smoke-runs it with `cargo bench -p concur-core --bench queue -- --test`.

// `criterion_group!` generates an undocumented `pub fn benches`.
#![allow(missing_docs)]

use concur_core::queue::Queue;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Items moved per iteration.
const ITEMS: usize = 100_000;
/// The bound of the bounded variants.
const CAP: usize = 1024;

/// One channel implementation: a sending handle and a receiving handle.
trait Chan {
    const NAME: &'static str;
    /// Whether the receiver can be shared by several consumers.
    const MULTI_CONSUMER: bool = true;
    type Tx: Send + 'static;
    type Rx: Send + 'static;
    fn make(cap: Option<usize>) -> (Self::Tx, Self::Rx);
    fn clone_tx(tx: &Self::Tx) -> Self::Tx;
    fn clone_rx(rx: &Self::Rx) -> Self::Rx;
    fn send(tx: &Self::Tx, v: u64);
    fn recv(rx: &Self::Rx) -> u64;
}

struct Concur;
impl Chan for Concur {
    const NAME: &'static str = "concur";
    type Tx = Queue<u64>;
    type Rx = Queue<u64>;
    fn make(cap: Option<usize>) -> (Queue<u64>, Queue<u64>) {
        let q = Queue::new(cap.unwrap_or(0));
        (q.clone(), q)
    }
    fn clone_tx(tx: &Queue<u64>) -> Queue<u64> {
        tx.clone()
    }
    fn clone_rx(rx: &Queue<u64>) -> Queue<u64> {
        rx.clone()
    }
    #[inline]
    fn send(tx: &Queue<u64>, v: u64) {
        tx.put(v).unwrap();
    }
    #[inline]
    fn recv(rx: &Queue<u64>) -> u64 {
        let v = rx.get().unwrap();
        rx.task_done().unwrap();
        v
    }
}

struct Crossbeam;
impl Chan for Crossbeam {
    const NAME: &'static str = "crossbeam-channel";
    type Tx = crossbeam_channel::Sender<u64>;
    type Rx = crossbeam_channel::Receiver<u64>;
    fn make(cap: Option<usize>) -> (Self::Tx, Self::Rx) {
        match cap {
            Some(n) => crossbeam_channel::bounded(n),
            None => crossbeam_channel::unbounded(),
        }
    }
    fn clone_tx(tx: &Self::Tx) -> Self::Tx {
        tx.clone()
    }
    fn clone_rx(rx: &Self::Rx) -> Self::Rx {
        rx.clone()
    }
    #[inline]
    fn send(tx: &Self::Tx, v: u64) {
        tx.send(v).unwrap();
    }
    #[inline]
    fn recv(rx: &Self::Rx) -> u64 {
        rx.recv().unwrap()
    }
}

struct Kanal;
impl Chan for Kanal {
    const NAME: &'static str = "kanal";
    type Tx = kanal::Sender<u64>;
    type Rx = kanal::Receiver<u64>;
    fn make(cap: Option<usize>) -> (Self::Tx, Self::Rx) {
        match cap {
            Some(n) => kanal::bounded(n),
            None => kanal::unbounded(),
        }
    }
    fn clone_tx(tx: &Self::Tx) -> Self::Tx {
        tx.clone()
    }
    fn clone_rx(rx: &Self::Rx) -> Self::Rx {
        rx.clone()
    }
    #[inline]
    fn send(tx: &Self::Tx, v: u64) {
        tx.send(v).unwrap();
    }
    #[inline]
    fn recv(rx: &Self::Rx) -> u64 {
        rx.recv().unwrap()
    }
}

struct Flume;
impl Chan for Flume {
    const NAME: &'static str = "flume";
    type Tx = flume::Sender<u64>;
    type Rx = flume::Receiver<u64>;
    fn make(cap: Option<usize>) -> (Self::Tx, Self::Rx) {
        match cap {
            Some(n) => flume::bounded(n),
            None => flume::unbounded(),
        }
    }
    fn clone_tx(tx: &Self::Tx) -> Self::Tx {
        tx.clone()
    }
    fn clone_rx(rx: &Self::Rx) -> Self::Rx {
        rx.clone()
    }
    #[inline]
    fn send(tx: &Self::Tx, v: u64) {
        tx.send(v).unwrap();
    }
    #[inline]
    fn recv(rx: &Self::Rx) -> u64 {
        rx.recv().unwrap()
    }
}

struct StdMpsc;
enum StdTx {
    Sync(std::sync::mpsc::SyncSender<u64>),
    Async(std::sync::mpsc::Sender<u64>),
}
impl Chan for StdMpsc {
    const NAME: &'static str = "std-mpsc";
    const MULTI_CONSUMER: bool = false;
    type Tx = StdTx;
    type Rx = std::sync::mpsc::Receiver<u64>;
    fn make(cap: Option<usize>) -> (Self::Tx, Self::Rx) {
        match cap {
            Some(n) => {
                let (t, r) = std::sync::mpsc::sync_channel(n);
                (StdTx::Sync(t), r)
            }
            None => {
                let (t, r) = std::sync::mpsc::channel();
                (StdTx::Async(t), r)
            }
        }
    }
    fn clone_tx(tx: &Self::Tx) -> Self::Tx {
        match tx {
            StdTx::Sync(t) => StdTx::Sync(t.clone()),
            StdTx::Async(t) => StdTx::Async(t.clone()),
        }
    }
    fn clone_rx(_: &Self::Rx) -> Self::Rx {
        unreachable!("std::sync::mpsc has one consumer")
    }
    #[inline]
    fn send(tx: &Self::Tx, v: u64) {
        match tx {
            StdTx::Sync(t) => t.send(v).unwrap(),
            StdTx::Async(t) => t.send(v).unwrap(),
        }
    }
    #[inline]
    fn recv(rx: &Self::Rx) -> u64 {
        rx.recv().unwrap()
    }
}

/// The textbook blocking queue: one mutex, two condition variables.
struct Naive {
    items: Mutex<VecDeque<u64>>,
    not_empty: Condvar,
    not_full: Condvar,
    cap: usize,
}
impl Chan for Naive {
    const NAME: &'static str = "mutex-vecdeque-condvar";
    type Tx = Arc<Naive>;
    type Rx = Arc<Naive>;
    fn make(cap: Option<usize>) -> (Self::Tx, Self::Rx) {
        let q = Arc::new(Naive {
            items: Mutex::new(VecDeque::new()),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            cap: cap.unwrap_or(usize::MAX),
        });
        (q.clone(), q)
    }
    fn clone_tx(tx: &Self::Tx) -> Self::Tx {
        tx.clone()
    }
    fn clone_rx(rx: &Self::Rx) -> Self::Rx {
        rx.clone()
    }
    fn send(tx: &Self::Tx, v: u64) {
        let mut g = tx.items.lock().unwrap();
        while g.len() >= tx.cap {
            g = tx.not_full.wait(g).unwrap();
        }
        g.push_back(v);
        drop(g);
        tx.not_empty.notify_one();
    }
    fn recv(rx: &Self::Rx) -> u64 {
        let mut g = rx.items.lock().unwrap();
        loop {
            if let Some(v) = g.pop_front() {
                drop(g);
                rx.not_full.notify_one();
                return v;
            }
            g = rx.not_empty.wait(g).unwrap();
        }
    }
}

/// Moves `ITEMS` from `producers` to `consumers` threads; returns the wall time.
fn run<C: Chan>(cap: Option<usize>, producers: usize, consumers: usize) -> Duration {
    let (tx, rx) = C::make(cap);
    let per_p = ITEMS / producers;
    let per_c = ITEMS / consumers;
    let start = Instant::now();
    let ps: Vec<_> = (0..producers)
        .map(|_| {
            let tx = C::clone_tx(&tx);
            thread::spawn(move || {
                for i in 0..per_p {
                    C::send(&tx, i as u64);
                }
            })
        })
        .collect();
    let mut rx = Some(rx);
    let cs: Vec<_> = (0..consumers)
        .map(|c| {
            let rx = if c + 1 == consumers {
                rx.take().unwrap()
            } else {
                C::clone_rx(rx.as_ref().unwrap())
            };
            thread::spawn(move || {
                let mut sum = 0u64;
                for _ in 0..per_c {
                    sum = sum.wrapping_add(C::recv(&rx));
                }
                black_box(sum)
            })
        })
        .collect();
    for p in ps {
        p.join().unwrap();
    }
    for c in cs {
        c.join().unwrap();
    }
    let t = start.elapsed();
    drop(tx);
    t
}

fn case<C: Chan>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    producers: usize,
    consumers: usize,
) {
    if consumers > 1 && !C::MULTI_CONSUMER {
        return;
    }
    for (label, cap) in [("bounded", Some(CAP)), ("unbounded", None)] {
        g.bench_function(BenchmarkId::new(C::NAME, label), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| run::<C>(cap, producers, consumers))
                    .sum()
            });
        });
    }
}

fn groups(c: &mut Criterion) {
    for (name, p, q) in [
        ("queue/spsc", 1, 1),
        ("queue/mpsc-4-1", 4, 1),
        ("queue/mpmc-2-2", 2, 2),
        ("queue/mpmc-4-4", 4, 4),
    ] {
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Elements(ITEMS as u64))
            .sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_millis(1500));
        case::<Concur>(&mut g, p, q);
        case::<Crossbeam>(&mut g, p, q);
        case::<Kanal>(&mut g, p, q);
        case::<Flume>(&mut g, p, q);
        case::<StdMpsc>(&mut g, p, q);
        case::<Naive>(&mut g, p, q);
        g.finish();
    }
}

criterion_group!(benches, groups);
criterion_main!(benches);
