//! Criterion micro-benchmarks: concur's `Lock` beside `std::sync::Mutex` and
//! `parking_lot::Mutex`.
//!
//! Groups:
//! - `lock/uncontended`: one thread, one acquire / increment / release per iteration;
//! - `lock/contended-2`: two threads hammering one lock; one iteration is one
//!   acquire / increment / release *per thread* (time is wall-clock for both).
//!
//! Measurement times are short so the whole file runs in well under a minute; CI only
//! smoke-runs it with `cargo bench -p concur-core --bench lock -- --test`. For the
//! side-by-side table with medians and machine info, use `concur bench --json`.

// `criterion_group!` generates an undocumented `pub fn benches`.
#![allow(missing_docs)]

use concur_core::sync::{Lock, RLock};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The one operation every lock is measured on: acquire, increment, release.
trait Increment: Sync {
    fn make() -> Self;
    fn increment(&self);
}

impl Increment for Lock<u64> {
    fn make() -> Self {
        Lock::with_value(0)
    }
    #[inline]
    fn increment(&self) {
        *self.acquire() += 1;
    }
}

impl Increment for std::sync::Mutex<u64> {
    fn make() -> Self {
        std::sync::Mutex::new(0)
    }
    #[inline]
    fn increment(&self) {
        *self
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
    }
}

impl Increment for parking_lot::Mutex<u64> {
    fn make() -> Self {
        parking_lot::Mutex::new(0)
    }
    #[inline]
    fn increment(&self) {
        *self.lock() += 1;
    }
}

/// `RLock` guards no data (like Python's): count in a relaxed atomic under it, and the
/// same for its anchor, so the comparison is lock against lock.
struct ConcurRLock(RLock, AtomicU64);

impl Increment for ConcurRLock {
    fn make() -> Self {
        ConcurRLock(RLock::new(), AtomicU64::new(0))
    }
    #[inline]
    fn increment(&self) {
        let _g = self.0.acquire();
        self.1
            .store(self.1.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
}

struct PlReentrant(parking_lot::ReentrantMutex<()>, AtomicU64);

impl Increment for PlReentrant {
    fn make() -> Self {
        PlReentrant(parking_lot::ReentrantMutex::new(()), AtomicU64::new(0))
    }
    #[inline]
    fn increment(&self) {
        let _g = self.0.lock();
        self.1
            .store(self.1.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
}

const WAIT: u8 = 0;
const GO: u8 = 1;

/// `iters` increments on each of 2 threads started together; wall-clock time.
fn contended_2<L: Increment>(iters: u64) -> Duration {
    let lock = L::make();
    let start = AtomicU8::new(WAIT);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let (lock, start) = (&lock, &start);
                s.spawn(move || {
                    while start.load(Ordering::Acquire) == WAIT {
                        std::thread::yield_now();
                    }
                    for _ in 0..iters {
                        black_box(lock).increment();
                    }
                })
            })
            .collect();
        let begin = Instant::now();
        start.store(GO, Ordering::Release);
        for w in workers {
            w.join().expect("bench thread panicked");
        }
        begin.elapsed()
    })
}

fn uncontended(c: &mut Criterion) {
    let mut group = c.benchmark_group("lock/uncontended");
    fn one<L: Increment>(
        group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
        name: &str,
    ) {
        let lock = L::make();
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| black_box(&lock).increment());
        });
    }
    one::<Lock<u64>>(&mut group, "concur::Lock");
    one::<std::sync::Mutex<u64>>(&mut group, "std::Mutex");
    one::<parking_lot::Mutex<u64>>(&mut group, "parking_lot::Mutex");
    one::<ConcurRLock>(&mut group, "concur::RLock");
    one::<PlReentrant>(&mut group, "parking_lot::ReentrantMutex");
    group.finish();
}

fn contended(c: &mut Criterion) {
    let mut group = c.benchmark_group("lock/contended-2");
    group.bench_function(BenchmarkId::from_parameter("concur::Lock"), |b| {
        b.iter_custom(contended_2::<Lock<u64>>);
    });
    group.bench_function(BenchmarkId::from_parameter("std::Mutex"), |b| {
        b.iter_custom(contended_2::<std::sync::Mutex<u64>>);
    });
    group.bench_function(BenchmarkId::from_parameter("parking_lot::Mutex"), |b| {
        b.iter_custom(contended_2::<parking_lot::Mutex<u64>>);
    });
    group.bench_function(BenchmarkId::from_parameter("concur::RLock"), |b| {
        b.iter_custom(contended_2::<ConcurRLock>);
    });
    group.bench_function(
        BenchmarkId::from_parameter("parking_lot::ReentrantMutex"),
        |b| {
            b.iter_custom(contended_2::<PlReentrant>);
        },
    );
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = uncontended, contended
}
criterion_main!(benches);
