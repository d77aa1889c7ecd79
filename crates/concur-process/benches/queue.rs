//! Criterion benchmark: one producer process → one consumer (this process) through a
//! process queue, in items per second.
//!
//! Groups (throughput in elements: one element is one item):
//! - `process_queue/u64`: `Queue<u64>`;
//! - `process_queue/bytes_1k`: `Queue<Vec<u8>>` of 1 KiB vectors (serde encodes a
//!   `Vec<u8>` element by element, which dominates);
//! - `process_queue/bytes_1k_serialize_bytes`: the same kilobyte as one serde byte
//!   string (as `serde_bytes` does);
//! - `process_queue/same_thread_u64`: a put and a get of a `u64` by one thread (the
//!   cost of the two operations without any cross-process traffic);
//! - `pipe/u64`, `pipe/bytes_1k`: the same items over a one-way `Pipe`, as a baseline
//!   (Python's `multiprocessing.Queue` is a pipe fed by a thread).
//!
//! A long-lived child produces on request: each measurement sends it the count `n`
//! on a control queue, then times receiving `n` items. CI only smoke-runs it with
//! `cargo bench -p concur-process --bench queue -- --test`.

// `criterion_group!` generates an undocumented `pub fn benches`.
#![allow(missing_docs)]

use concur_process::{Connection, Pipe, Process, Queue, SimpleQueue};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// The items measured, made cheaply from a counter.
trait Item: Serialize + DeserializeOwned + 'static {
    fn make(i: u64) -> Self;
}

impl Item for u64 {
    fn make(i: u64) -> Self {
        i
    }
}

impl Item for Vec<u8> {
    fn make(i: u64) -> Self {
        vec![i as u8; 1024]
    }
}

/// 1 KiB encoded as one byte string (`serialize_bytes`, what the `serde_bytes` crate
/// does) instead of serde's element-by-element `Vec<u8>`: a copy on each side.
struct Bytes(Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
        }
        d.deserialize_bytes(V)
    }
}

impl Item for Bytes {
    fn make(i: u64) -> Self {
        Bytes(vec![i as u8; 1024])
    }
}

/// The child: for each count `n` on `control` (0 ends it), puts `n` items.
fn queue_producer<T: Item>((control, q): (SimpleQueue<u64>, Queue<T>)) {
    while let Ok(n) = control.get() {
        if n == 0 {
            return;
        }
        for i in 0..n {
            q.put(T::make(i)).unwrap();
        }
    }
}

/// The child: for each count `n` on `control` (0 ends it), sends `n` items.
fn pipe_producer<T: Item>((control, tx): (SimpleQueue<u64>, Connection)) {
    while let Ok(n) = control.get() {
        if n == 0 {
            return;
        }
        for i in 0..n {
            tx.send(&T::make(i)).unwrap();
        }
    }
}

fn bench_queue<T: Item>(c: &mut Criterion, name: &str) {
    let control = SimpleQueue::<u64>::new().unwrap();
    let q = Queue::<T>::new(0).unwrap();
    let child = Process::spawn(queue_producer::<T>, (control.clone(), q.clone())).unwrap();
    let mut g = c.benchmark_group("process_queue");
    g.throughput(Throughput::Elements(1));
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            control.put(iters).unwrap();
            for _ in 0..iters {
                black_box(q.get().unwrap());
            }
            start.elapsed()
        });
    });
    g.finish();
    control.put(0).unwrap();
    child.join().unwrap();
}

fn bench_pipe<T: Item>(c: &mut Criterion, name: &str) {
    let control = SimpleQueue::<u64>::new().unwrap();
    let (rx, tx) = Pipe::one_way().unwrap();
    let child = Process::spawn(pipe_producer::<T>, (control.clone(), tx)).unwrap();
    let mut g = c.benchmark_group("pipe");
    g.throughput(Throughput::Elements(1));
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            control.put(iters).unwrap();
            for _ in 0..iters {
                black_box(rx.recv::<T>().unwrap());
            }
            start.elapsed()
        });
    });
    g.finish();
    control.put(0).unwrap();
    child.join().unwrap();
}

fn bench_same_thread(c: &mut Criterion) {
    let q = Queue::<u64>::new(0).unwrap();
    let mut g = c.benchmark_group("process_queue");
    g.throughput(Throughput::Elements(1));
    g.bench_function("same_thread_u64", |b| {
        let mut i = 0u64;
        b.iter(|| {
            q.put(i).unwrap();
            i += 1;
            black_box(q.get().unwrap())
        });
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    bench_same_thread(c);
    bench_queue::<u64>(c, "u64");
    bench_queue::<Vec<u8>>(c, "bytes_1k");
    bench_queue::<Bytes>(c, "bytes_1k_serialize_bytes");
    bench_pipe::<u64>(c, "u64");
    bench_pipe::<Vec<u8>>(c, "bytes_1k");
}

criterion_group! {
    name = group;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = benches
}
criterion_main!(group);
