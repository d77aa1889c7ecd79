//! The manager's synchronization tests, run on the manager's proxies and on the
//! cluster objects: one test body each (the functions below, generic over a
//! [`Backend`]), instantiated once per backend by `sync_tests!`. A program moves from
//! a `Manager` to a Redis by changing the constructor.
//!
//! Ported from `concur-process/tests/manager_sync.rs` (itself CPython 3.13's
//! `_TestSemaphore`, `_TestEvent` and `_TestBarrier`, manager flavour: the other
//! parties are child processes that get the objects as arguments, the result lists
//! are counters in the backend's dict) and `manager_sync_crash.rs`'s
//! `killed_semaphore_holder_returns_its_unit`. The adapters below map each backend's
//! calls onto the bodies' few verbs; the only difference they paper over is the shape
//! of the results (`Result<bool, ManagerError>` against `Result<Option<Guard>,
//! ClusterError>`, and so on). Timing checks are lower bounds only.

mod objects_common;
mod support;

use std::thread;
use std::time::{Duration, Instant};

use concur_cluster::RedisServer;
use concur_process::Manager;
use objects_common::{LIMIT, name, spawn};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// CPython's `TIMEOUT1`, `TIMEOUT2`, `TIMEOUT3`.
const TIMEOUT1: Duration = Duration::from_millis(100);
const TIMEOUT2: Duration = Duration::from_millis(200);
const TIMEOUT3: Duration = Duration::from_millis(300);

/// How soon a dead holder's unit must come back (the manager's bound; the cluster
/// semaphores of these tests have a 2 s lease).
const RELEASE_BOUND: Duration = Duration::from_secs(10);

// ---- the verbs the bodies use ----------------------------------------------------------

trait Shared: Clone + Serialize + DeserializeOwned + Send + 'static {}
impl<T: Clone + Serialize + DeserializeOwned + Send + 'static> Shared for T {}

/// A semaphore, Python style: `acquire` takes a unit for good, `release` gives one.
trait Sem: Shared {
    fn acquire(&self);
    fn try_acquire(&self) -> bool;
    fn acquire_timeout(&self, t: Duration) -> bool;
    fn acquire_deadline(&self, d: Instant) -> bool;
    /// `Err(())` if the release was refused (a bounded semaphore at its maximum).
    fn release(&self) -> Result<(), ()>;
    fn value(&self) -> usize;
    /// Takes a unit that stays with this process while it lives.
    fn hold(&self);
}

trait Ev: Shared {
    fn set(&self);
    fn clear(&self);
    fn is_set(&self) -> bool;
    fn wait(&self);
    fn wait_timeout(&self, t: Duration) -> bool;
}

/// Why a barrier wait failed.
#[derive(Debug, PartialEq)]
enum Broken {
    Timeout,
    Other,
}

trait Bar: Shared {
    fn wait(&self) -> Result<usize, Broken>;
    fn wait_timeout(&self, t: Duration) -> Result<usize, Broken>;
    fn abort(&self);
    fn reset(&self);
    fn n_waiting(&self) -> usize;
    fn broken(&self) -> bool;
    fn parties(&self) -> usize;
}

/// CPython's result lists: counters by key.
trait Counters: Shared {
    fn bump(&self, key: u8);
    fn count(&self, key: u8) -> u64;
}

trait Backend: Sized {
    type Sem: Sem;
    type BSem: Sem;
    type Ev: Ev;
    type Bar: Bar;
    type Counters: Counters;
    fn start() -> Self;
    fn semaphore(&self, v: usize) -> Self::Sem;
    fn bounded_semaphore(&self, v: usize) -> Self::BSem;
    fn event(&self) -> Self::Ev;
    fn barrier(&self, parties: usize) -> Self::Bar;
    fn counters(&self) -> Self::Counters;
}

// ---- the manager -----------------------------------------------------------------------

mod on_manager {
    use super::*;
    use concur_process::manager;

    pub(crate) struct M(Manager);

    impl Sem for manager::Semaphore {
        fn acquire(&self) {
            manager::Semaphore::acquire(self).unwrap()
        }
        fn try_acquire(&self) -> bool {
            manager::Semaphore::try_acquire(self).unwrap()
        }
        fn acquire_timeout(&self, t: Duration) -> bool {
            manager::Semaphore::acquire_timeout(self, t).unwrap()
        }
        fn acquire_deadline(&self, d: Instant) -> bool {
            manager::Semaphore::acquire_deadline(self, d).unwrap()
        }
        fn release(&self) -> Result<(), ()> {
            manager::Semaphore::release(self).map_err(|e| assert!(e.is_invalid_state(), "{e}"))
        }
        fn value(&self) -> usize {
            manager::Semaphore::value(self).unwrap()
        }
        fn hold(&self) {
            manager::Semaphore::acquire(self).unwrap()
        }
    }

    impl Sem for manager::BoundedSemaphore {
        fn acquire(&self) {
            manager::BoundedSemaphore::acquire(self).unwrap()
        }
        fn try_acquire(&self) -> bool {
            manager::BoundedSemaphore::try_acquire(self).unwrap()
        }
        fn acquire_timeout(&self, t: Duration) -> bool {
            manager::BoundedSemaphore::acquire_timeout(self, t).unwrap()
        }
        fn acquire_deadline(&self, d: Instant) -> bool {
            manager::BoundedSemaphore::acquire_deadline(self, d).unwrap()
        }
        fn release(&self) -> Result<(), ()> {
            manager::BoundedSemaphore::release(self)
                .map_err(|e| assert!(e.is_invalid_state(), "{e}"))
        }
        fn value(&self) -> usize {
            manager::BoundedSemaphore::value(self).unwrap()
        }
        fn hold(&self) {
            manager::BoundedSemaphore::acquire(self).unwrap()
        }
    }

    impl Ev for manager::Event {
        fn set(&self) {
            manager::Event::set(self).unwrap()
        }
        fn clear(&self) {
            manager::Event::clear(self).unwrap()
        }
        fn is_set(&self) -> bool {
            manager::Event::is_set(self).unwrap()
        }
        fn wait(&self) {
            manager::Event::wait(self).unwrap()
        }
        fn wait_timeout(&self, t: Duration) -> bool {
            manager::Event::wait_timeout(self, t).unwrap()
        }
    }

    fn broken(e: concur_process::ManagerError) -> Broken {
        if e.is_timeout() {
            Broken::Timeout
        } else {
            assert!(e.is_invalid_state(), "{e:?}");
            Broken::Other
        }
    }

    impl Bar for manager::Barrier {
        fn wait(&self) -> Result<usize, Broken> {
            manager::Barrier::wait(self).map_err(broken)
        }
        fn wait_timeout(&self, t: Duration) -> Result<usize, Broken> {
            manager::Barrier::wait_timeout(self, t).map_err(broken)
        }
        fn abort(&self) {
            manager::Barrier::abort(self).unwrap()
        }
        fn reset(&self) {
            manager::Barrier::reset(self).unwrap()
        }
        fn n_waiting(&self) -> usize {
            manager::Barrier::n_waiting(self).unwrap()
        }
        fn broken(&self) -> bool {
            manager::Barrier::broken(self).unwrap()
        }
        fn parties(&self) -> usize {
            manager::Barrier::parties(self).unwrap()
        }
    }

    impl Counters for manager::Dict<u8, u64> {
        fn bump(&self, key: u8) {
            self.update(key, |n: Option<u64>| n.unwrap_or(0) + 1)
                .unwrap();
        }
        fn count(&self, key: u8) -> u64 {
            self.get(&key).unwrap().unwrap_or(0)
        }
    }

    impl Backend for M {
        type Sem = manager::Semaphore;
        type BSem = manager::BoundedSemaphore;
        type Ev = manager::Event;
        type Bar = manager::Barrier;
        type Counters = manager::Dict<u8, u64>;
        fn start() -> Self {
            M(Manager::start().unwrap())
        }
        fn semaphore(&self, v: usize) -> Self::Sem {
            self.0.semaphore(v).unwrap()
        }
        fn bounded_semaphore(&self, v: usize) -> Self::BSem {
            self.0.bounded_semaphore(v).unwrap()
        }
        fn event(&self) -> Self::Ev {
            self.0.event().unwrap()
        }
        fn barrier(&self, parties: usize) -> Self::Bar {
            self.0.barrier(parties).unwrap()
        }
        fn counters(&self) -> Self::Counters {
            self.0.dict().unwrap()
        }
    }
}

// ---- the cluster -----------------------------------------------------------------------

mod on_cluster {
    use super::*;
    use concur_cluster as cluster;

    pub(crate) struct C {
        url: String,
        _redis: RedisServer,
    }

    macro_rules! sem {
        ($ty:ty, $released:expr) => {
            impl Sem for $ty {
                fn acquire(&self) {
                    assert!(<$ty>::acquire(self).unwrap().leak().unwrap());
                }
                fn try_acquire(&self) -> bool {
                    <$ty>::try_acquire(self)
                        .unwrap()
                        .map(|g| assert!(g.leak().unwrap()))
                        .is_some()
                }
                fn acquire_timeout(&self, t: Duration) -> bool {
                    <$ty>::acquire_timeout(self, t)
                        .unwrap()
                        .map(|g| assert!(g.leak().unwrap()))
                        .is_some()
                }
                fn acquire_deadline(&self, d: Instant) -> bool {
                    <$ty>::acquire_deadline(self, d)
                        .unwrap()
                        .map(|g| assert!(g.leak().unwrap()))
                        .is_some()
                }
                fn release(&self) -> Result<(), ()> {
                    let f: fn(&$ty) -> Result<(), ()> = $released;
                    f(self)
                }
                fn value(&self) -> usize {
                    <$ty>::value(self).unwrap()
                }
                fn hold(&self) {
                    // Leased: renewed while this process lives.
                    std::mem::forget(<$ty>::acquire(self).unwrap());
                }
            }
        };
    }

    sem!(cluster::Semaphore, |s| {
        s.release().unwrap();
        Ok(())
    });
    sem!(cluster::BoundedSemaphore, |s| s.release().unwrap().map_err(
        |e| assert_eq!(e, concur_core::sync::ReleaseError::TooManyReleases)
    ));

    impl Ev for cluster::Event {
        fn set(&self) {
            cluster::Event::set(self).unwrap()
        }
        fn clear(&self) {
            cluster::Event::clear(self).unwrap()
        }
        fn is_set(&self) -> bool {
            cluster::Event::is_set(self).unwrap()
        }
        fn wait(&self) {
            assert!(cluster::Event::wait(self).unwrap())
        }
        fn wait_timeout(&self, t: Duration) -> bool {
            cluster::Event::wait_timeout(self, t).unwrap()
        }
    }

    fn broken(e: concur_core::sync::BrokenBarrierError) -> Broken {
        if e.is_timeout() {
            Broken::Timeout
        } else {
            Broken::Other
        }
    }

    impl Bar for cluster::Barrier {
        fn wait(&self) -> Result<usize, Broken> {
            cluster::Barrier::wait(self).unwrap().map_err(broken)
        }
        fn wait_timeout(&self, t: Duration) -> Result<usize, Broken> {
            cluster::Barrier::wait_timeout(self, t)
                .unwrap()
                .map_err(broken)
        }
        fn abort(&self) {
            cluster::Barrier::abort(self).unwrap()
        }
        fn reset(&self) {
            cluster::Barrier::reset(self).unwrap()
        }
        fn n_waiting(&self) -> usize {
            cluster::Barrier::n_waiting(self).unwrap()
        }
        fn broken(&self) -> bool {
            cluster::Barrier::broken(self).unwrap()
        }
        fn parties(&self) -> usize {
            cluster::Barrier::parties(self)
        }
    }

    impl Counters for cluster::Dict<u8, u64> {
        fn bump(&self, key: u8) {
            self.update(key, |n: Option<u64>| n.unwrap_or(0) + 1)
                .unwrap();
        }
        fn count(&self, key: u8) -> u64 {
            self.get(&key).unwrap().unwrap_or(0)
        }
    }

    impl Backend for C {
        type Sem = cluster::Semaphore;
        type BSem = cluster::BoundedSemaphore;
        type Ev = cluster::Event;
        type Bar = cluster::Barrier;
        type Counters = cluster::Dict<u8, u64>;
        fn start() -> Self {
            let redis = support::redis();
            C {
                url: redis.url(),
                _redis: redis,
            }
        }
        fn semaphore(&self, v: usize) -> Self::Sem {
            cluster::Semaphore::builder(&self.url, &name("sem"), v)
                .lease(Duration::from_secs(2))
                .connect()
                .unwrap()
        }
        fn bounded_semaphore(&self, v: usize) -> Self::BSem {
            cluster::BoundedSemaphore::builder(&self.url, &name("bsem"), v)
                .lease(Duration::from_secs(2))
                .connect()
                .unwrap()
        }
        fn event(&self) -> Self::Ev {
            cluster::Event::connect(&self.url, &name("event")).unwrap()
        }
        fn barrier(&self, parties: usize) -> Self::Bar {
            cluster::Barrier::connect(&self.url, &name("barrier"), parties).unwrap()
        }
        fn counters(&self) -> Self::Counters {
            cluster::Dict::connect(&self.url, &name("counters")).unwrap()
        }
    }
}

// ---- _TestSemaphore --------------------------------------------------------------------

/// CPython's `_test_semaphore` on a semaphore of 2.
fn check_semaphore(sem: &impl Sem) {
    assert_eq!(sem.value(), 2);
    sem.acquire();
    assert_eq!(sem.value(), 1);
    sem.acquire();
    assert_eq!(sem.value(), 0);
    assert!(!sem.try_acquire());
    assert_eq!(sem.value(), 0);
    sem.release().unwrap();
    assert_eq!(sem.value(), 1);
    sem.release().unwrap();
    assert_eq!(sem.value(), 2);
}

fn test_semaphore<B: Backend>() {
    let b = B::start();
    let sem = b.semaphore(2);
    check_semaphore(&sem);
    sem.release().unwrap();
    assert_eq!(sem.value(), 3);
    sem.release().unwrap();
    assert_eq!(sem.value(), 4);
}

fn test_bounded_semaphore<B: Backend>() {
    let b = B::start();
    let sem = b.bounded_semaphore(2);
    check_semaphore(&sem);
    // The check CPython leaves commented out ("currently fails on OS/X").
    assert_eq!(sem.release(), Err(()));
    assert_eq!(sem.value(), 2);
}

fn test_semaphore_timeout<B: Backend>() {
    let b = B::start();
    let sem = b.semaphore(0);
    assert!(!sem.try_acquire());
    for t in [TIMEOUT2, TIMEOUT3] {
        let start = Instant::now();
        assert!(!sem.acquire_timeout(t));
        assert!(start.elapsed() >= t);
    }
    let start = Instant::now();
    assert!(!sem.acquire_deadline(start + TIMEOUT1));
    assert!(start.elapsed() >= TIMEOUT1);
}

/// Releases a unit after a while (another process wakes the waiter).
fn release_later<S: Sem>(sem: S) {
    thread::sleep(TIMEOUT2);
    sem.release().unwrap();
}

fn test_semaphore_wakes_a_waiter<B: Backend>() {
    let b = B::start();
    let sem = b.semaphore(0);
    let p = spawn(release_later::<B::Sem>, sem.clone());
    assert!(sem.acquire_timeout(LIMIT), "the child's release woke us");
    assert_eq!(sem.value(), 0);
    p.join();
}

/// Takes a unit, says so, and sleeps until killed.
fn hold_unit<S: Sem, E: Ev>((sem, held): (S, E)) {
    sem.hold();
    held.set();
    thread::sleep(LIMIT);
}

fn killed_semaphore_holder_returns_its_unit<B: Backend>() {
    let b = B::start();
    let sem = b.semaphore(1);
    let held = b.event();
    let p = spawn(hold_unit::<B::Sem, B::Ev>, (sem.clone(), held.clone()));
    assert!(held.wait_timeout(LIMIT));
    assert!(!sem.try_acquire(), "the child holds the unit");
    p.kill();
    assert!(
        sem.acquire_timeout(RELEASE_BOUND),
        "the dead holder's unit came back"
    );
    assert_eq!(sem.value(), 0);
}

// ---- _TestEvent ------------------------------------------------------------------------

fn event_f<E: Ev>(e: E) {
    thread::sleep(TIMEOUT2);
    e.set();
}

fn test_event<B: Backend>() {
    let b = B::start();
    let event = b.event();
    assert!(!event.is_set());
    assert!(!event.wait_timeout(Duration::ZERO));
    let start = Instant::now();
    assert!(!event.wait_timeout(TIMEOUT1));
    assert!(start.elapsed() >= TIMEOUT1);

    event.set();
    assert!(event.is_set());
    event.wait();
    assert!(event.wait_timeout(TIMEOUT1));

    event.clear();
    assert!(!event.is_set());
    let p = spawn(event_f::<B::Ev>, event.clone());
    let start = Instant::now();
    assert!(event.wait_timeout(LIMIT));
    assert!(start.elapsed() >= TIMEOUT2 / 2, "woken by the child's set");
    p.join();
}

// ---- _TestBarrier ----------------------------------------------------------------------

/// CPython's `N` (5 there; 3 processes here: the test process and two children).
const N: usize = 3;

/// Runs `f(args)` in `N - 1` children and in this process, then joins them.
fn run_parties<F, A>(f: F, args: impl Fn() -> A)
where
    F: Fn(A) + Copy + 'static,
    A: Serialize + DeserializeOwned,
{
    let ps: Vec<_> = (0..N - 1).map(|_| spawn(f, args())).collect();
    f(args());
    ps.into_iter().for_each(|p| p.join());
}

fn multipass<Br: Bar, C: Counters>((barrier, results, n): (Br, C, u64)) {
    let m = barrier.parties() as u64;
    assert_eq!(m, N as u64);
    for i in 0..n {
        results.bump(0);
        assert_eq!(results.count(1), i * m);
        barrier.wait_timeout(LIMIT).unwrap();
        results.bump(1);
        assert_eq!(results.count(0), (i + 1) * m);
        barrier.wait_timeout(LIMIT).unwrap();
    }
    assert_eq!(barrier.n_waiting(), 0);
    assert!(!barrier.broken());
}

fn test_barrier<B: Backend>() {
    let b = B::start();
    for passes in [1, 10] {
        let bar = b.barrier(N);
        let results = b.counters();
        run_parties(multipass::<B::Bar, B::Counters>, || {
            (bar.clone(), results.clone(), passes)
        });
    }
}

fn wait_return_f<Br: Bar, C: Counters>((barrier, results): (Br, C)) {
    let i = barrier.wait_timeout(LIMIT).unwrap();
    results.bump(i as u8);
}

fn test_barrier_wait_return<B: Backend>() {
    let b = B::start();
    let bar = b.barrier(N);
    let results = b.counters();
    run_parties(wait_return_f::<B::Bar, B::Counters>, || {
        (bar.clone(), results.clone())
    });
    // Every index 0..N exactly once.
    for i in 0..N as u8 {
        assert_eq!(results.count(i), 1);
    }
}

fn abort_f<Br: Bar, C: Counters>((barrier, results): (Br, C)) {
    let r = barrier.wait_timeout(LIMIT).and_then(|i| {
        if i == N / 2 {
            barrier.abort();
            return Ok(false);
        }
        barrier.wait_timeout(LIMIT).map(|_| true)
    });
    match r {
        Ok(true) => results.bump(1),
        Ok(false) => {}
        Err(e) => {
            assert_eq!(e, Broken::Other);
            results.bump(2);
        }
    }
}

fn test_barrier_abort<B: Backend>() {
    let b = B::start();
    let bar = b.barrier(N);
    let results = b.counters();
    run_parties(abort_f::<B::Bar, B::Counters>, || {
        (bar.clone(), results.clone())
    });
    assert_eq!(results.count(1), 0);
    assert_eq!(results.count(2), N as u64 - 1);
    assert!(bar.broken());
}

fn reset_f<Br: Bar, C: Counters>((barrier, results): (Br, C)) {
    let i = barrier.wait_timeout(LIMIT).unwrap();
    if i == N / 2 {
        // Wait until the others are all in the barrier.
        let end = Instant::now() + LIMIT;
        while barrier.n_waiting() < N - 1 {
            assert!(Instant::now() < end, "the others never arrived");
            thread::sleep(Duration::from_millis(1));
        }
        barrier.reset();
    } else {
        match barrier.wait_timeout(LIMIT) {
            Ok(_) => results.bump(1),
            Err(e) => {
                assert_eq!(e, Broken::Other);
                results.bump(2);
            }
        }
    }
    // Pass the barrier again.
    barrier.wait_timeout(LIMIT).unwrap();
    results.bump(3);
}

fn test_barrier_reset<B: Backend>() {
    let b = B::start();
    let bar = b.barrier(N);
    let results = b.counters();
    run_parties(reset_f::<B::Bar, B::Counters>, || {
        (bar.clone(), results.clone())
    });
    assert_eq!(results.count(1), 0);
    assert_eq!(results.count(2), N as u64 - 1);
    assert_eq!(results.count(3), N as u64);
}

fn abort_and_reset_f<Br: Bar, C: Counters>((barrier, barrier2, results): (Br, Br, C)) {
    abort_f((barrier.clone(), results.clone()));
    // Everyone leaves the barrier before the reset, and nobody enters it before.
    if barrier2.wait_timeout(LIMIT).unwrap() == N / 2 {
        barrier.reset();
    }
    barrier2.wait_timeout(LIMIT).unwrap();
    barrier.wait_timeout(LIMIT).unwrap();
    results.bump(3);
}

fn test_barrier_abort_and_reset<B: Backend>() {
    let b = B::start();
    let bar = b.barrier(N);
    let bar2 = b.barrier(N);
    let results = b.counters();
    run_parties(abort_and_reset_f::<B::Bar, B::Counters>, || {
        (bar.clone(), bar2.clone(), results.clone())
    });
    assert_eq!(results.count(1), 0);
    assert_eq!(results.count(2), N as u64 - 1);
    assert_eq!(results.count(3), N as u64);
}

fn timeout_f<Br: Bar, C: Counters>((barrier, results): (Br, C)) {
    let i = barrier.wait_timeout(LIMIT).unwrap();
    if i == N / 2 {
        thread::sleep(Duration::from_secs(1)); // one party is late
    }
    // Python's BrokenBarrierError for all: the one that timed out is told so.
    if barrier.wait_timeout(Duration::from_millis(500)).is_err() {
        results.bump(1);
    }
}

fn test_barrier_timeout<B: Backend>() {
    let b = B::start();
    let bar = b.barrier(N);
    let results = b.counters();
    run_parties(timeout_f::<B::Bar, B::Counters>, || {
        (bar.clone(), results.clone())
    });
    assert_eq!(results.count(1), N as u64);
    assert!(bar.broken());
}

fn test_barrier_single_thread<B: Backend>() {
    let b = B::start();
    let bar = b.barrier(1);
    assert_eq!(bar.wait().unwrap(), 0);
    assert_eq!(bar.wait().unwrap(), 0);
}

// ---- one instantiation per backend -----------------------------------------------------

macro_rules! sync_tests {
    ($m:ident, $backend:ty) => {
        mod $m {
            use super::*;
            sync_tests!(@each $backend;
                test_semaphore,
                test_bounded_semaphore,
                test_semaphore_timeout,
                test_semaphore_wakes_a_waiter,
                killed_semaphore_holder_returns_its_unit,
                test_event,
                test_barrier,
                test_barrier_wait_return,
                test_barrier_abort,
                test_barrier_reset,
                test_barrier_abort_and_reset,
                test_barrier_timeout,
                test_barrier_single_thread,
            );
        }
    };
    (@each $backend:ty; $($t:ident),* $(,)?) => {
        $(
            #[test]
            fn $t() {
                support::within(LIMIT, stringify!($t), super::$t::<$backend>);
            }
        )*
    };
}

sync_tests!(manager, on_manager::M);
sync_tests!(cluster, on_cluster::C);
