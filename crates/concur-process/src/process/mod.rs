//! [`Process`]: Python's `multiprocessing.Process`, returning its function's value.

pub(crate) mod child;
pub(crate) mod protocol;
mod reaper;
mod start;

use std::fmt;
use std::marker::PhantomData;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use concur_core::sync::Lock;
use rustix::event::{PollFd, PollFlags};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::connection::Connection;
use crate::error::ProcessError;
use crate::fds;
use crate::sys::proc::{self as sys, Exit};
use crate::sys::socket;
use child::{NoCaptures, Trampoline};
use protocol::{Failure, Identity, Report};
use start::{Launch, NO_EXIT, Started};

/// How a [`Process`] makes its child (Python's start methods).
///
/// ```
/// use concur::process::{Process, StartMethod};
/// let p = Process::builder().start_method(StartMethod::Spawn).spawn(|x: u8| x * 2, 21).unwrap();
/// assert_eq!(p.join().unwrap(), 42);
/// assert_eq!(StartMethod::default(), StartMethod::Spawn);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum StartMethod {
    /// Re-executes the current binary (`/proc/self/exe`); the child is recognized
    /// before `main` and runs only the function. The default: always safe, whatever
    /// threads the parent runs. Costs an `exec` (about a millisecond or two). As in
    /// Python, the child's standard input is `/dev/null`; its output goes where the
    /// parent's goes.
    #[default]
    Spawn,
    /// Forks the parent: fast, and the child starts with a copy of the parent's memory.
    /// A forked child gets only one thread; if another thread held a lock at that
    /// moment (stdout, a `Mutex` of yours, a logger), the child finds it held forever.
    /// So `start` refuses ([`ProcessError::is_fork_refused`]) while threads other than
    /// the caller and this crate's idle helpers are running, unless `force` is set:
    /// forcing says you know none of them holds anything the child will touch. (glibc's
    /// allocator is safe to use after a fork. A forced child does not flush Rust's
    /// stdout buffer when it ends, as that takes the stdout lock: end output lines with
    /// a newline, or flush, in a function run that way.)
    ///
    /// Like any `fork`, the child inherits every descriptor of the parent, including
    /// the parent's ends of pipes: a forked child waiting for end-of-stream on a
    /// [`Connection`] never sees it while its own copy of the other end is open (send an
    /// explicit last message instead, as with Python's fork method).
    ///
    /// The fork is made by this crate's launcher thread (see [`Process`]); the caller
    /// waits for it without holding any lock, so it is not among the threads that
    /// count.
    Fork {
        /// Fork even though other threads are running.
        force: bool,
    },
    /// Asks a fork server to fork the child: as fast as [`Fork`](StartMethod::Fork)
    /// (no `exec` per child), and as safe as [`Spawn`](StartMethod::Spawn) whatever
    /// threads the parent runs, because the server is a fresh, single-threaded `exec`
    /// of the current binary that does nothing but fork. The child starts with the
    /// server's memory (the binary as it is before `main`), not the parent's, and
    /// inherits none of the parent's descriptors; its standard input is `/dev/null`,
    /// its output goes where the parent's went when the server started.
    ///
    /// The server is started on the first `ForkServer` start in a process (one `exec`,
    /// a millisecond or two) and then serves every later one, one at a time: `start`
    /// blocks for one round trip to it. If it ever dies, the next start replaces it.
    /// It dies with its parent process, and its children with it (see [`Process`]).
    /// The children are the server's, not the parent's, so `pid` names a grandchild
    /// in `ps`; the server reaps them and tells the parent their exit status, and
    /// [`join`](Process::join), [`exitcode`](Process::exitcode),
    /// [`terminate`](Process::terminate) and [`kill`](Process::kill) work exactly as
    /// with the other methods.
    ///
    /// ```
    /// use concur::process::{Process, StartMethod};
    /// let p = Process::builder().start_method(StartMethod::ForkServer).spawn(|x: u32| x + 1, 41).unwrap();
    /// assert_eq!(p.join().unwrap(), 42);
    /// assert_eq!(p.exitcode(), Some(0));
    /// ```
    ForkServer,
}

/// Configures a [`Process`]: name, daemon flag, start method (Python's `Process(...)`
/// keyword arguments).
///
/// ```
/// use concur::process::{Process, StartMethod};
/// let p = Process::builder()
///     .name("doubler")
///     .daemon(true)
///     .start_method(StartMethod::Spawn)
///     .spawn(|x: u64| x * 2, 21)
///     .unwrap();
/// assert_eq!(p.name(), "doubler");
/// assert!(p.daemon());
/// assert_eq!(p.join().unwrap(), 42);
/// ```
#[derive(Clone, Debug, Default)]
#[must_use = "a builder does nothing until `build` or `spawn`"]
pub struct ProcessBuilder {
    name: Option<String>,
    daemon: bool,
    method: StartMethod,
}

static NEXT_NUMBER: AtomicUsize = AtomicUsize::new(1);

impl ProcessBuilder {
    /// A builder with the defaults: name `Process-N`, not a daemon, `Spawn`.
    ///
    /// ```
    /// let p = concur::process::ProcessBuilder::new().build(|x: u8| x, 0);
    /// assert!(p.name().starts_with("Process-"));
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The process's name (Python's `name`); the child also takes it (its first 15
    /// bytes) as its OS-visible name, as `ps` shows it.
    ///
    /// ```
    /// let p = concur::process::Process::builder().name("w1").build(|x: u8| x, 0);
    /// assert_eq!(p.name(), "w1");
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Python's `daemon`. Every child dies with its parent whatever this says (see
    /// [`Process`]); a daemon child is also killed when its `Process` handle is
    /// dropped, where a non-daemon child keeps running until it finishes.
    ///
    /// ```
    /// let p = concur::process::Process::builder().daemon(true).build(|x: u8| x, 0);
    /// assert!(p.daemon());
    /// ```
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = daemon;
        self
    }

    /// How the child is made; [`StartMethod::Spawn`] by default.
    ///
    /// ```
    /// use concur::process::{Process, StartMethod};
    /// let p = Process::builder().start_method(StartMethod::Fork { force: true }).build(|x: u8| x, 0);
    /// assert_eq!(p.start_method(), StartMethod::Fork { force: true });
    /// ```
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.method = method;
        self
    }

    /// Makes an unstarted [`Process`] that will run `f(args)` in a child. Never blocks.
    ///
    /// `f` must capture nothing (a `fn` item or a non-capturing closure): the child
    /// finds it by its address in the same binary, with no data. A capturing closure is
    /// a compile-time error; pass what it needs in `args` (a tuple for several).
    /// The arguments are serialized here; a serialization error is reported by
    /// [`start`](Process::start).
    ///
    /// ```compile_fail,E0080
    /// let y = 5u32;
    /// let p = concur::process::Process::new(move |x: u32| x + y, 1u32);
    /// ```
    ///
    /// ```
    /// fn add((a, b): (u32, u32)) -> u32 { a + b }
    /// let p = concur::process::Process::builder().build(add, (2, 3));
    /// p.start().unwrap();
    /// assert_eq!(p.join().unwrap(), 5);
    /// ```
    pub fn build<F, A, R>(self, f: F, args: A) -> Process<R>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let () = NoCaptures::<F>::CHECK;
        let _ = f;
        let trampoline: Trampoline = child::trampoline::<F, A, R>;
        let (encoded, fds) = fds::collect_fds(|| {
            postcard::to_stdvec(&args).map_err(|e| crate::why::explain(&e, &args))
        });
        let args = encoded
            .map(|bytes| (bytes, fds))
            .map_err(|e| format!("the arguments could not be serialized: {e}"));
        let name = self
            .name
            .unwrap_or_else(|| format!("Process-{}", NEXT_NUMBER.fetch_add(1, Ordering::Relaxed)));
        Process {
            name,
            daemon: self.daemon,
            method: self.method,
            started: OnceLock::new(),
            exit: AtomicI64::new(NO_EXIT),
            state: Lock::with_value(State::Unstarted(Box::new(Pending { trampoline, args }))),
            #[cfg(test)]
            corrupt_identity: false,
            _result: PhantomData,
        }
    }

    /// [`build`](ProcessBuilder::build), then [`start`](Process::start).
    ///
    /// # Errors
    /// As [`Process::start`].
    ///
    /// ```
    /// let p = concur::process::Process::builder().spawn(|s: String| s.len(), "four".to_owned()).unwrap();
    /// assert_eq!(p.join().unwrap(), 4);
    /// ```
    pub fn spawn<F, A, R>(self, f: F, args: A) -> Result<Process<R>, ProcessError>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let p = self.build(f, args);
        p.start()?;
        Ok(p)
    }
}

type Frame = (Vec<u8>, Vec<OwnedFd>);

struct Pending {
    trampoline: Trampoline,
    args: Result<Frame, String>,
}

struct Running {
    control: Connection,
    report: Option<Frame>,
    eof: bool,
}

struct Finished {
    report: Option<Frame>,
    exit: Exit,
    taken: bool,
}

/// The lifecycle, behind the state lock: `Unstarted` → (`start`) `Running` or
/// `StartFailed` → (a join sees the exit and reaps) `Finished`.
enum State {
    Unstarted(Box<Pending>),
    StartFailed,
    Running(Running),
    Finished(Finished),
}

/// A child process running a Rust function: Python's `multiprocessing.Process`, whose
/// `join` also returns the function's value (or its panic).
///
/// ```
/// use concur::process::Process;
///
/// fn square(x: u64) -> u64 { x * x }
///
/// let p = Process::spawn(square, 12).unwrap();
/// assert!(p.pid().is_some());
/// assert_eq!(p.join().unwrap(), 144);
/// assert_eq!(p.exitcode(), Some(0));
/// assert!(!p.is_alive());
/// ```
///
/// **The function** is a `fn` or a closure that captures nothing, with one
/// serde-serializable argument (a tuple for several) and a serializable result; values
/// that own file descriptors ([`Connection`], shared memory, process-shared locks)
/// travel with their descriptors and arrive usable. A panic comes back as
/// [`ProcessError::is_panic`] with its message and location, `std::process::exit(n)`
/// as [`ProcessError::is_exited`] with `n`, a signal as [`ProcessError::is_signaled`].
/// [`exitcode`](Process::exitcode) is Python's: `None` while running, then the status,
/// or minus the signal number (1 after a panic).
///
/// **Waiting** comes in the four forms: [`join`](Process::join),
/// [`join_timeout`](Process::join_timeout), [`join_deadline`](Process::join_deadline),
/// and [`is_alive`](Process::is_alive) / [`exitcode`](Process::exitcode), which never
/// block. Every method takes `&self`: one thread may `join` while another calls
/// [`terminate`](Process::terminate) or [`kill`](Process::kill). Signals go through a
/// pidfd, so they can never hit an unrelated process that reused the pid.
///
/// **No orphans, no zombies.** Each child has `PR_SET_PDEATHSIG(SIGKILL)` armed against
/// a launcher thread that lives as long as the parent process, and a watch on its
/// control socket (a `SIGIO` handler, or a watcher thread) that kills it when its control socket reports the parent's end closed: if the
/// parent dies, even by SIGKILL, its children die too. A join reaps the child; a
/// `Process` dropped while its child runs hands the child to a reaper thread, which
/// reaps it when it ends (a [daemon](ProcessBuilder::daemon) child is killed first).
/// A [`ForkServer`](StartMethod::ForkServer) child is bound the same way to the fork
/// server, which is bound to the launcher thread; the server reaps it, so it is never
/// a zombie even before a join. Unlike Python, the parent's exit does not wait for
/// non-daemon children: they are killed with it, so join the ones whose work matters.
///
/// **How a spawned child finds the function** (and why no set-up is needed in `main`,
/// in tests or in examples): see the crate documentation.
pub struct Process<R> {
    name: String,
    daemon: bool,
    method: StartMethod,
    started: OnceLock<Started>,
    /// Python's exitcode once the child was reaped, else `NO_EXIT`.
    exit: AtomicI64,
    state: Lock<State>,
    #[cfg(test)]
    corrupt_identity: bool,
    _result: PhantomData<fn() -> R>,
}

impl<R: Serialize + DeserializeOwned> Process<R> {
    /// Makes an unstarted process running `f(args)` with the default settings
    /// (Python's `Process(target=f, args=...)`). Never blocks.
    ///
    /// See [`ProcessBuilder::build`] for what `f` may be.
    ///
    /// ```
    /// let p = concur::process::Process::new(|v: Vec<i32>| v.iter().sum::<i32>(), vec![1, 2, 3]);
    /// assert!(!p.is_alive());
    /// p.start().unwrap();
    /// assert_eq!(p.join().unwrap(), 6);
    /// ```
    pub fn new<F, A>(f: F, args: A) -> Self
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Serialize + DeserializeOwned,
    {
        ProcessBuilder::new().build(f, args)
    }

    /// Makes and starts a process with the default settings.
    ///
    /// # Errors
    /// As [`start`](Process::start).
    ///
    /// ```
    /// let p = concur::process::Process::spawn(|(a, b): (String, String)| a + &b, ("con".into(), "cur".into())).unwrap();
    /// assert_eq!(p.join().unwrap(), "concur");
    /// ```
    pub fn spawn<F, A>(f: F, args: A) -> Result<Self, ProcessError>
    where
        F: Fn(A) -> R + Copy + 'static,
        A: Serialize + DeserializeOwned,
    {
        ProcessBuilder::new().spawn(f, args)
    }
}

impl Process<()> {
    /// A [`ProcessBuilder`] with the defaults (the same as [`ProcessBuilder::new`]; the
    /// builder decides the result type, whatever `Process<_>` this is called on).
    ///
    /// ```
    /// let p = concur::process::Process::builder().name("n").build(|x: u8| x, 1);
    /// assert_eq!(p.name(), "n");
    /// ```
    pub fn builder() -> ProcessBuilder {
        ProcessBuilder::new()
    }
}

impl<R> Process<R> {
    /// The process's name.
    ///
    /// ```
    /// let p = concur::process::Process::builder().name("indexer").build(|x: u8| x, 1);
    /// assert_eq!(p.name(), "indexer");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the child is a daemon (see [`ProcessBuilder::daemon`]).
    ///
    /// ```
    /// assert!(!concur::process::Process::new(|x: u8| x, 1).daemon());
    /// ```
    pub fn daemon(&self) -> bool {
        self.daemon
    }

    /// The start method this process uses.
    ///
    /// ```
    /// use concur::process::{Process, StartMethod};
    /// assert_eq!(Process::new(|x: u8| x, 1).start_method(), StartMethod::Spawn);
    /// ```
    pub fn start_method(&self) -> StartMethod {
        self.method
    }

    /// The child's process id, once started (Python's `pid`).
    ///
    /// ```
    /// let p = concur::process::Process::new(|x: u8| x, 1);
    /// assert_eq!(p.pid(), None);
    /// p.start().unwrap();
    /// assert!(p.pid().unwrap() > 0);
    /// # p.join().unwrap();
    /// ```
    pub fn pid(&self) -> Option<u32> {
        self.started.get().map(Started::pid)
    }

    /// Starts the child (Python's `start()`); returns once the child exists and has
    /// been sent its arguments (blocks only for that).
    ///
    /// # Errors
    /// [`is_already_started`](ProcessError::is_already_started) on a second call;
    /// [`is_serialization`](ProcessError::is_serialization) if the arguments could not
    /// be serialized; [`is_fork_refused`](ProcessError::is_fork_refused) for an unforced
    /// `Fork` while other threads run; [`is_spawn_failed`](ProcessError::is_spawn_failed)
    /// if the OS could not make the child. After a failed start the process cannot be
    /// started again.
    ///
    /// ```
    /// let p = concur::process::Process::new(|x: i8| -x, 5);
    /// p.start().unwrap();
    /// assert!(p.start().unwrap_err().is_already_started());
    /// assert_eq!(p.join().unwrap(), -5);
    /// ```
    pub fn start(&self) -> Result<(), ProcessError> {
        let mut st = self.state.acquire();
        let pending = match std::mem::replace(&mut *st, State::StartFailed) {
            State::Unstarted(p) => p,
            other => {
                *st = other;
                return Err(ProcessError::already_started());
            }
        };
        let Pending { trampoline, args } = *pending;
        let (args, fds) = args.map_err(ProcessError::serialization)?;
        let launch = Launch {
            name: &self.name,
            trampoline,
            args,
            fds,
            identity: &|| self.identity(),
        };
        let (started, control) = start::start(self.method, launch)?;
        tracing::debug!(name = %self.name, pid = started.pid(), "process started");
        let _ = self.started.set(started);
        *st = State::Running(Running {
            control,
            report: None,
            eof: false,
        });
        Ok(())
    }

    /// The identity of this binary that children are checked against; refuses to start
    /// anything when this process is a child whose hook did not run.
    fn identity(&self) -> Result<Identity, ProcessError> {
        if std::env::var_os(child::ENV).is_some() {
            // Only possible if this binary's child hook did not run: re-executing it
            // would run `main` again instead of the function.
            return Err(ProcessError::spawn(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "this process was started as a concur child but the child hook did not \
                 run (is the binary's .init_array honoured?); refusing to spawn",
            )));
        }
        static IDENTITY: OnceLock<Identity> = OnceLock::new();
        let identity = match IDENTITY.get() {
            Some(i) => i.clone(),
            None => IDENTITY
                .get_or_init(|| Identity::current().unwrap_or_else(|_| Identity::unknown()))
                .clone(),
        };
        #[cfg(test)]
        let identity = if self.corrupt_identity {
            identity.corrupted()
        } else {
            identity
        };
        Ok(identity)
    }

    /// Waits for the child to end and returns its function's value (Python's
    /// `join()`, plus the value). Blocks until the child exits.
    ///
    /// # Errors
    /// How the child failed ([`is_panic`](ProcessError::is_panic),
    /// [`is_exited`](ProcessError::is_exited), [`is_signaled`](ProcessError::is_signaled),
    /// [`is_serialization`](ProcessError::is_serialization),
    /// [`is_identity_mismatch`](ProcessError::is_identity_mismatch)), or
    /// [`is_not_started`](ProcessError::is_not_started), or
    /// [`is_already_joined`](ProcessError::is_already_joined) once the value was taken.
    ///
    /// ```
    /// let p = concur::process::Process::spawn(|n: u32| (1..=n).product::<u32>(), 5).unwrap();
    /// assert_eq!(p.join().unwrap(), 120);
    /// ```
    pub fn join(&self) -> Result<R, ProcessError>
    where
        R: DeserializeOwned,
    {
        self.join_until(None)
    }

    /// [`join`](Process::join), blocking at most `timeout` (a timeout too large to
    /// represent waits forever).
    ///
    /// # Errors
    /// [`is_timeout`](ProcessError::is_timeout) if the child is still running (join
    /// again later); otherwise as [`join`](Process::join).
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = concur::process::Process::spawn(|ms: u64| std::thread::sleep(Duration::from_millis(ms)), 20_000).unwrap();
    /// assert!(p.join_timeout(Duration::from_millis(50)).unwrap_err().is_timeout());
    /// assert!(p.is_alive());
    /// p.terminate().unwrap();
    /// assert_eq!(p.join_timeout(Duration::from_secs(10)).unwrap_err().signal(), Some(15));
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<R, ProcessError>
    where
        R: DeserializeOwned,
    {
        self.join_until(concur_core::time::deadline_after(timeout))
    }

    /// [`join`](Process::join), blocking until `deadline` at the latest.
    ///
    /// # Errors
    /// As [`join_timeout`](Process::join_timeout).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let p = concur::process::Process::spawn(|x: u8| x, 7).unwrap();
    /// assert_eq!(p.join_deadline(Instant::now() + Duration::from_secs(30)).unwrap(), 7);
    /// ```
    pub fn join_deadline(&self, deadline: Instant) -> Result<R, ProcessError>
    where
        R: DeserializeOwned,
    {
        self.join_until(Some(deadline))
    }

    fn join_until(&self, deadline: Option<Instant>) -> Result<R, ProcessError>
    where
        R: DeserializeOwned,
    {
        let mut st = match deadline {
            None => self.state.acquire(),
            Some(d) => self
                .state
                .acquire_deadline(d)
                .ok_or_else(ProcessError::timeout)?,
        };
        if let State::Running(run) = &mut *st {
            let Some(started) = self.started.get() else {
                return Err(ProcessError::not_started());
            };
            let exit = self.wait_exit(run, started, deadline)?;
            let report = run.report.take();
            *st = State::Finished(Finished {
                report,
                exit,
                taken: false,
            });
        }
        match &mut *st {
            State::Unstarted(_) | State::StartFailed => Err(ProcessError::not_started()),
            State::Running(_) => Err(ProcessError::timeout()),
            State::Finished(fin) => outcome(fin),
        }
    }

    /// Waits for the child's exit while reading its report; reaps it (or, for a child
    /// of the fork server, takes the status the server sends once it reaped it).
    fn wait_exit(
        &self,
        run: &mut Running,
        started: &Started,
        deadline: Option<Instant>,
    ) -> Result<Exit, ProcessError> {
        let ends = started.exit_fd();
        loop {
            let listen = !run.eof && run.report.is_none();
            let mut pfds = [
                PollFd::from_borrowed_fd(ends, PollFlags::IN),
                PollFd::from_borrowed_fd(run.control.as_fd(), PollFlags::IN),
            ];
            let n = if listen { 2 } else { 1 };
            let ready = socket::poll_until(&mut pfds[..n], deadline).map_err(ProcessError::io)?;
            let exited = !pfds[0].revents().is_empty();
            let talking = listen && !pfds[1].revents().is_empty();
            if talking {
                read_report(run);
            }
            if exited && let Some(exit) = started.collect_exit(&self.exit, deadline, &self.name)? {
                self.exit
                    .store(i64::from(exit.exitcode()), Ordering::Release);
                tracing::debug!(name = %self.name, code = exit.exitcode(), "process exited");
                if run.report.is_none() && !run.eof {
                    read_report(run);
                }
                return Ok(exit);
            }
            if ready == 0 {
                return Err(ProcessError::timeout());
            }
        }
    }

    /// Whether the child is running (Python's `is_alive()`): started and not exited.
    /// Never blocks; does not reap (join does).
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = concur::process::Process::new(|ms: u64| std::thread::sleep(Duration::from_millis(ms)), 20_000);
    /// assert!(!p.is_alive());
    /// p.start().unwrap();
    /// assert!(p.is_alive());
    /// p.kill().unwrap();
    /// let _ = p.join();
    /// assert!(!p.is_alive());
    /// ```
    pub fn is_alive(&self) -> bool {
        self.started.get().is_some() && self.exitcode().is_none()
    }

    /// Python's `exitcode`: `None` before the start and while running; then the exit
    /// status (0 after the function returned, 1 after a panic, `n` after `exit(n)`), or
    /// minus the number of the signal that killed the child. Never blocks.
    ///
    /// ```
    /// let p = concur::process::Process::spawn(|_: ()| -> () { std::process::exit(8) }, ()).unwrap();
    /// let _ = p.join();
    /// assert_eq!(p.exitcode(), Some(8));
    /// ```
    pub fn exitcode(&self) -> Option<i32> {
        self.started.get()?.exitcode(&self.exit)
    }

    /// Sends SIGTERM to the child (Python's `terminate()`); its exit code becomes -15
    /// unless it handles the signal. Never blocks; does nothing if it already exited.
    ///
    /// # Errors
    /// [`is_not_started`](ProcessError::is_not_started) before the start, or the OS
    /// error.
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = concur::process::Process::spawn(|_: ()| std::thread::sleep(Duration::from_secs(30)), ()).unwrap();
    /// p.terminate().unwrap();
    /// let _ = p.join();
    /// assert_eq!(p.exitcode(), Some(-15));
    /// ```
    pub fn terminate(&self) -> Result<(), ProcessError> {
        self.signal(false)
    }

    /// Sends SIGKILL to the child (Python's `kill()`); its exit code becomes -9.
    /// Never blocks; does nothing if it already exited.
    ///
    /// # Errors
    /// As [`terminate`](Process::terminate).
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = concur::process::Process::spawn(|_: ()| std::thread::sleep(Duration::from_secs(30)), ()).unwrap();
    /// p.kill().unwrap();
    /// let _ = p.join();
    /// assert_eq!(p.exitcode(), Some(-9));
    /// ```
    pub fn kill(&self) -> Result<(), ProcessError> {
        self.signal(true)
    }

    fn signal(&self, kill: bool) -> Result<(), ProcessError> {
        let started = self.started.get().ok_or_else(ProcessError::not_started)?;
        sys::signal(started.pidfd(), kill).map_err(ProcessError::io)
    }
}

/// Reads whatever is available of the child's report without blocking.
fn read_report(run: &mut Running) {
    match run
        .control
        .recv_frame_with(Some(Instant::now()), |body, fds| (body.to_vec(), fds))
    {
        Ok(frame) => run.report = Some(frame),
        Err(e) if e.is_timeout() => {}
        Err(_) => run.eof = true,
    }
}

/// Turns a finished child's report and exit into the join result (once).
fn outcome<R: DeserializeOwned>(fin: &mut Finished) -> Result<R, ProcessError> {
    if fin.taken {
        return Err(ProcessError::already_joined());
    }
    fin.taken = true;
    let Some((bytes, fds)) = fin.report.take() else {
        return Err(match fin.exit {
            Exit::Code(c) => ProcessError::exited(c),
            Exit::Signal(s) => ProcessError::signaled(s),
        });
    };
    match fds::provide_fds(fds, || postcard::from_bytes::<Report<R>>(&bytes)) {
        Ok(Report::Ok(value)) => Ok(value),
        Ok(Report::Panic { message, location }) => Err(ProcessError::panic(message, location)),
        Ok(Report::Failed { failure, message }) => Err(match failure {
            Failure::Identity => ProcessError::identity_mismatch(message),
            Failure::BadStart | Failure::DecodeArgs | Failure::EncodeResult => {
                ProcessError::serialization(message)
            }
        }),
        Ok(Report::Progress { .. }) => Err(ProcessError::serialization(
            "the child sent progress where its result belongs",
        )),
        Err(e) => Err(ProcessError::serialization(format!(
            "the child's result could not be decoded: {e}"
        ))),
    }
}

impl<R> Drop for Process<R> {
    fn drop(&mut self) {
        let Some(started) = self.started.take() else {
            return;
        };
        let state = std::mem::replace(&mut *self.state.acquire(), State::StartFailed);
        let State::Running(run) = state else {
            return; // already reaped by a join
        };
        if started.reaped_if_exited(&self.exit) {
            return; // it had exited: reaped (by us just now, or by the fork server)
        }
        if self.daemon {
            let _ = sys::signal(started.pidfd(), true);
        }
        reaper::adopt(started.into_pidfd(), Some(run.control));
    }
}

impl<R> fmt::Debug for Process<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("name", &self.name)
            .field("pid", &self.pid())
            .field("daemon", &self.daemon)
            .field("start_method", &self.method)
            .field("exitcode", &self.exitcode())
            .finish()
    }
}

#[cfg(test)]
mod tests;
