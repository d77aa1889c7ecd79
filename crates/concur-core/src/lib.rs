//! # concur-core: the thread tier of concur
//!
//! Python's `threading`, `queue` and `concurrent.futures` modules, rebuilt in Rust with
//! no heavy dependencies. Most users depend
//! on the `concur` umbrella crate, which re-exports everything here.
//!
//! ## A tour
//!
//! Threads return their value, or their panic, from `join`:
//!
//! ```
//! use concur::thread;
//!
//! let h = thread::Builder::new().name("adder").spawn(|| 2 + 2).unwrap();
//! assert_eq!(h.join().unwrap(), 4);
//!
//! let bad = thread::Builder::new().name("bad").spawn(|| -> u8 { panic!("boom") }).unwrap();
//! let err = bad.join().unwrap_err();
//! assert_eq!(err.panic_message(), Some("boom"));
//! ```
//!
//! Locks are cheap cloneable handles, as Python's are passed around by reference; a
//! lock may also guard a value:
//!
//! ```
//! use concur::sync::{Event, Lock};
//! use concur::thread;
//!
//! let ready = Event::new();
//! let counter = Lock::with_value(0);
//! let t = thread::spawn({
//!     let (ready, counter) = (ready.clone(), counter.clone());
//!     move || {
//!         *counter.acquire() += 1;
//!         ready.set();
//!     }
//! });
//! assert!(ready.wait_timeout(std::time::Duration::from_secs(10)));
//! t.join().unwrap();
//! assert_eq!(*counter.acquire(), 1);
//! ```
//!
//! ## Python → concur-core
//!
//! | Python | here |
//! |---|---|
//! | `threading.Thread(target=f, name=..., daemon=...).start()` | [`thread::Builder`]`::new().name(..).daemon(..).spawn(f)` |
//! | `t.join(timeout)` | [`thread::JoinHandle::join`], `join_timeout`, `join_deadline` |
//! | `threading.current_thread()`, `main_thread()`, `enumerate()`, `active_count()`, `get_ident()` | [`thread::current_thread`], [`thread::main_thread`], [`thread::enumerate`], [`thread::active_count`], [`thread::get_ident`] |
//! | `threading.excepthook = f` | [`thread::set_excepthook`] |
//! | `threading.Timer(t, f)`, `threading.local()` | [`thread::Timer`], [`thread::Local`] |
//! | `Lock`, `RLock`, `Condition`, `Semaphore`, `BoundedSemaphore`, `Event`, `Barrier` | [`sync::Lock`], [`sync::RLock`], [`sync::Condition`], [`sync::Semaphore`], [`sync::BoundedSemaphore`], [`sync::Event`], [`sync::Barrier`] |
//! | `lock.acquire(blocking=False)` / `acquire(timeout=t)` | `try_acquire()` / `acquire_timeout(t)` (and `acquire_deadline(instant)`) |
//! | `queue.Queue(maxsize)`, `LifoQueue`, `PriorityQueue`, `SimpleQueue` | [`queue::Queue`], [`queue::LifoQueue`], [`queue::PriorityQueue`], [`queue::SimpleQueue`] |
//! | `q.put_nowait(x)` / `q.get(timeout=t)` / `q.task_done()` / `q.join()` / `q.shutdown()` | `try_put(x)` / `get_timeout(t)` / `task_done()` / `join()` / `shutdown(immediate)` |
//! | `ThreadPoolExecutor(n)`, `submit`, `map`, `as_completed`, `wait`, `asyncio.to_thread` | [`futures::ThreadPoolExecutor`], [`futures::Executor`], [`futures::as_completed`], [`futures::wait`], [`futures::to_thread`] |
//!
//! Beyond Python: [`deadlock`] detection (lock-order inversions and wait-for cycles,
//! `CONCUR_DEADLOCK=warn|panic`).
//!
//! ## Feature flags and cfgs
//!
//! No cargo features. `RUSTFLAGS="--cfg concur_loom"` swaps every atomic, `Arc`,
//! thread-local and the parking layer for [loom](https://docs.rs/loom)'s model-checked
//! versions; the loom models live in `tests/loom_*.rs`.
//!
//! ## Platform support
//!
//! Everything here is portable Rust over `std` threads and `parking_lot_core`'s parking
//! (futex on Linux). `thread::Thread::native_id` is the OS thread id where the platform
//! has one.
//!
//! ## Testing inside `cargo test`
//!
//! Nothing to set up. Deadlock detection is process-wide, so tests that turn it on are
//! best kept in their own integration-test file (one process each).

// Examples in the docs are held to the same bar as the code: a warning fails them.
#![doc(test(attr(deny(warnings))))]

pub mod deadlock;
pub mod futures;
mod ident;
pub mod queue;
pub(crate) mod shim;
pub mod sync;
mod sys;
pub mod thread;
pub mod time;
