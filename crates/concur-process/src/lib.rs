//! # concur-process
//!
//! Python's `multiprocessing`, rebuilt in Rust: the process tier of `concur`, used as
//! `concur::process` (the paths in these docs are the ones a user of `concur` writes).
//! Linux is the target. The OS calls are made where the state they act on lives (the
//! start methods beside `Process`, the futex beside the locks, `mmap` beside shared
//! memory); the small wrappers several of them share are in the private `sys` module.
//!
//! ## Processes and pipes
//!
//! A [`Process`] runs a Rust function in a child process and returns its value from
//! `join`; a [`Pipe`] makes two [`Connection`]s that carry serde values (and the file
//! descriptors inside them) between processes:
//!
//! ```
//! use concur::process::{Connection, Pipe, Process};
//!
//! fn square(x: u64) -> u64 { x * x }
//!
//! let p = Process::spawn(square, 7).unwrap();
//! assert_eq!(p.join().unwrap(), 49);
//!
//! let (parent, child) = Pipe::duplex().unwrap();
//! let echo = Process::spawn(|c: Connection| { let s: String = c.recv().unwrap(); s.len() }, child).unwrap();
//! parent.send(&"hello").unwrap();
//! assert_eq!(echo.join().unwrap(), 5);
//! ```
//!
//! | Python | here |
//! |---|---|
//! | `Process(target=f, args=a, name=.., daemon=..)` | [`Process::new`]`(f, a)`, [`Process::builder`]`().name(..).daemon(..).build(f, a)` |
//! | `p.start()`, `p.join()`, `p.join(t)` | [`Process::start`], [`Process::join`] (returns `f`'s value), `join_timeout`, `join_deadline` |
//! | `p.is_alive()`, `p.pid`, `p.name`, `p.exitcode` | [`Process::is_alive`], [`Process::pid`], [`Process::name`], [`Process::exitcode`] |
//! | `p.terminate()`, `p.kill()` | [`Process::terminate`], [`Process::kill`] |
//! | `set_start_method("spawn" / "fork" / "forkserver")` | [`ProcessBuilder::start_method`]`(`[`StartMethod`]`::Spawn / Fork { force } / ForkServer)` |
//! | `Pipe(duplex)` | [`Pipe::new`]`(duplex)`, [`Pipe::duplex`], [`Pipe::one_way`] |
//! | `conn.send(x)`, `conn.recv()`, `send_bytes`, `recv_bytes`, `poll(t)` | [`Connection::send`], [`Connection::recv`] (+ `try_`, `_timeout`, `_deadline`), [`Connection::send_bytes`], [`Connection::recv_bytes`], [`Connection::poll`] |
//! | `EOFError`, an exception raised in the child | [`ConnectionError::is_eof`], [`ProcessError::is_panic`] with the message and location |
//!
//! ## Process pools
//!
//! [`ProcessPoolExecutor`] is Python's `concurrent.futures.ProcessPoolExecutor` behind
//! the same `Executor` trait and `Future` as the thread pools of `concur-core`:
//! switching a program from threads to processes is a change of the executor's type,
//! as long as its functions capture nothing and their arguments and results are serde
//! types. `ProcessPool` is Python's `multiprocessing.Pool` on the same engine.
//!
//! ```
//! use concur::futures::{Executor, MapOptions};
//! use concur::process::ProcessPoolExecutor;
//!
//! fn collatz_steps(mut n: u64) -> u32 {
//!     let mut steps = 0;
//!     while n != 1 { n = if n % 2 == 0 { n / 2 } else { 3 * n + 1 }; steps += 1 }
//!     steps
//! }
//! let pool = ProcessPoolExecutor::new(2);
//! assert_eq!(pool.call(collatz_steps, 27).unwrap().result().unwrap(), 111);
//! let longest = pool
//!     .map(collatz_steps, 1..10_000, MapOptions::new().chunksize(500))
//!     .unwrap()
//!     .map(Result::unwrap)
//!     .max();
//! assert_eq!(longest, Some(261));
//! ```
//!
//! Unlike Python's, a pool never breaks because a worker died: a worker that
//! segfaults, aborts, calls `exit`, is killed from outside or by the kernel's OOM
//! killer fails only the task it was running (the error names the signal, exit status
//! or "out of memory"), the tasks it had been handed but not started go to other
//! workers, and a new worker takes its place. A worker that cannot be started (out of
//! descriptors, processes or memory) does not break it either: the pool serves on the
//! workers it has, says why ([`ProcessPoolExecutor::last_start_error`], a `tracing`
//! warning) and tries again with backoff; only a pool with no worker at all fails its
//! tasks, each with the cause. A task over its time limit has its
//! worker killed and replaced. Workers are recycled after `max_tasks_per_child` tasks
//! or above a memory threshold, and killed above a memory limit. How: one dispatcher
//! thread feeds each worker tasks ahead over a socket, and each worker reports every
//! task as it ends, in order, so the dispatcher always knows which task a worker is
//! running (see the `pool` module's source).
//!
//! ## Managers (feature `manager`, on by default)
//!
//! A `Manager` is Python's `multiprocessing.Manager`: a server process owning shared
//! dicts, lists, namespaces, values, queues and locks, reached through typed proxies
//! from any process that holds its address and key (a Unix socket by default, TCP on
//! request; every connection authenticated by HMAC). See the `manager` module (built
//! with the cargo feature `manager`, which brings the HMAC and ordered-map
//! dependencies; without it the rest of the crate is unchanged).
//!
//! ### How a child finds the function: no set-up in `main`, tests or examples
//!
//! The default start method, [`StartMethod::Spawn`], re-executes the running binary
//! (`/proc/self/exe`). The child is recognized **before `main` runs**, by a
//! constructor this crate places in the binary's `.init_array` (linked whenever
//! `Process::start` is): it finds the `CONCUR_PROCESS_CHILD` environment variable
//! naming its inherited control socket, removes it, reads the start message, runs the
//! function, sends back the result, and `_exit`s. So `main` never runs in a child, and
//! the same works unchanged in `cargo test` test binaries, doctests and examples: no
//! call to add anywhere.
//!
//! The function must capture nothing (a `fn` or a non-capturing closure; a capturing
//! closure does not compile), because the child receives no code, only an address:
//! `Process::new` monomorphizes a trampoline for the function's type, and the parent
//! sends its offset from a fixed anchor function, which the child adds to its own
//! anchor (both processes run the same binary, so ASLR moves both alike). Before using
//! it, the child checks that it runs the same binary as the parent (device, inode, size
//! and modification time of the executable, and a layout fingerprint of the build) and
//! refuses otherwise ([`ProcessError::is_identity_mismatch`]). The arguments and the
//! result travel serialized (postcard) on the control socket, with their file
//! descriptors (`SCM_RIGHTS`), so a `Connection`, shared memory or a process-shared lock
//! passed as an argument arrives usable.
//!
//! [`StartMethod::Fork`] forks instead: faster, refused while other threads run unless
//! forced (see its docs).
//!
//! [`StartMethod::ForkServer`] is as fast as a fork and as safe as a spawn. The first
//! such start in a process spawns a *fork server*: the same binary again, recognized
//! before `main` like a spawned child (by the role in `CONCUR_PROCESS_CHILD`), which
//! stays single-threaded and does nothing but fork. Each start then sends it one
//! request over a Unix socket (the child's control socket and a status pipe travel with
//! it as `SCM_RIGHTS`; the function goes as its trampoline offset, the server having
//! checked the binary's identity once when it started); the server forks, answers with
//! the child's pid and a pidfd for it, and the parent sends the arguments straight to
//! the child, which then lives like a forked one. The server reaps its children and
//! writes each one's exit status to its status pipe, so `join`, `exitcode`,
//! `is_alive`, `terminate` and `kill` behave exactly as with the other methods. No
//! `exec` and no copy of the parent's memory per child: a start and join takes well
//! under a millisecond in release builds. A server that dies is replaced at the next
//! start.
//!
//! ```
//! use concur::process::{Process, StartMethod};
//!
//! let ps: Vec<Process<u64>> = (0..4)
//!     .map(|i| Process::builder().start_method(StartMethod::ForkServer).spawn(|x: u64| x * 10, i).unwrap())
//!     .collect();
//! let total: u64 = ps.iter().map(|p| p.join().unwrap()).sum();
//! assert_eq!(total, 60);
//! ```
//!
//! ### No orphans, no zombies
//!
//! Every child is made by a long-lived launcher thread and arms
//! `PR_SET_PDEATHSIG(SIGKILL)` (which Linux ties to the creating *thread*), checking
//! its parent is still there afterwards; the child also kills itself when the parent's
//! end of its control socket closes (the socket is in signal-driven mode and a `SIGIO`
//! handler checks for the end of stream: no extra thread; a child that installs its own
//! `SIGIO` handler keeps the parent-death signal only). If the parent dies, even by
//! SIGKILL, its children die with it. A fork server is such a child too (made by the
//! launcher thread, with the parent-death signal), its children arm the signal bound
//! to the server (which has only one thread), and the server watches their control
//! sockets for the parent's end closing (the job of the `SIGIO` handler elsewhere): a
//! dead parent takes its server and all the server's children with it. The server
//! reaps its children itself, and exits (killing any left) at the end of its socket.
//! Joining reaps a child; a `Process` dropped while its child runs hands it to a
//! reaper thread (killing it first if it is a daemon).
//!
//! ### Testing inside `cargo test`
//!
//! Nothing to set up. A spawned or fork-server child's output goes straight to the
//! terminal (it is not captured by the test harness). A *forked* child inherits the capture buffer of the
//! thread that first started a process, so its output is lost unless the tests run
//! with `--nocapture`.

// Examples in the docs are held to the same bar as the code: a warning fails them.
#![doc(test(attr(deny(warnings))))]
#![cfg_attr(docsrs, feature(doc_cfg))]
mod block;
mod capped;
mod code;
pub mod exec;
mod fds;
#[doc(hidden)]
pub mod fuzzing;
mod shim;
mod sys;
mod why;

// Processes and connections.
mod connection;
mod error;
mod process;
pub use connection::{Connection, ConnectionError, DEFAULT_MAX_FRAME, Pipe};
pub use error::ProcessError;
pub use process::{Process, ProcessBuilder, StartMethod};

#[cfg(feature = "manager")]
#[cfg_attr(docsrs, doc(cfg(feature = "manager")))]
pub mod manager;
#[cfg(feature = "manager")]
#[cfg_attr(docsrs, doc(cfg(feature = "manager")))]
pub use manager::{Address, AuthKey, Manager, ManagerBuilder, ManagerError};

mod pool;
pub use pool::{AbortHandle, IMapUnordered, ProcessPool, ProcessPoolBuilder, ProcessPoolExecutor};

// Shared memory and process-shared synchronisation (`shm`, `sync`).
pub mod shm;
pub mod sync;
pub use shm::{Array, FrozenArray, SharedMemory, Value};
pub use sync::{Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore};

// Process queues on a shared-memory ring (`queue`).
pub mod queue;
pub use queue::{JoinableQueue, Queue, SimpleQueue};
