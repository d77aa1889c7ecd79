//! Test support for the cluster tier: a private `redis-server` per test, worker
//! processes (children of the test binary running `Worker::run`), a raw Redis client,
//! and `within`, which bounds every wait so that a hang fails the test with a message.
#![allow(dead_code)] // each test binary uses a different part

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use concur_cluster::{LocalExecutor, RedisServer, Worker, WorkerStats};
use concur_process::{Process, StartMethod};
use serde::{Deserialize, Serialize};

/// Runs `f` on a thread and fails the test if it takes longer than `limit`.
pub(crate) fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let h = std::thread::Builder::new()
        .name(format!("within: {what}"))
        .spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.send(r);
        })
        .expect("spawn test thread");
    match rx.recv_timeout(limit) {
        Ok(Ok(v)) => {
            let _ = h.join();
            v
        }
        Ok(Err(p)) => std::panic::resume_unwind(p),
        Err(_) => panic!("probable deadlock: `{what}` did not finish within {limit:?}"),
    }
}

/// A private Redis for one test. Without `redis-server` the test fails (it never
/// skips), saying how to install it.
pub(crate) fn redis() -> RedisServer {
    RedisServer::start().unwrap_or_else(|e| panic!("cannot start redis-server: {e}"))
}

/// A private Redis with an append-only file (for restarts).
pub(crate) fn redis_aof() -> RedisServer {
    RedisServer::builder()
        .aof(true)
        .start()
        .unwrap_or_else(|e| panic!("cannot start redis-server: {e}"))
}

/// A pool name no other test uses.
pub(crate) fn pool(what: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A raw connection (what an operator or an attacker would use).
pub(crate) fn raw(url: &str) -> redis::Connection {
    let c = redis::Client::open(url).unwrap();
    let con = c
        .get_connection_with_timeout(Duration::from_secs(5))
        .unwrap();
    con.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    con
}

/// How to run a worker in a child process.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct WorkerSpec {
    pub(crate) url: String,
    pub(crate) pool: String,
    pub(crate) slots: usize,
    pub(crate) threads: bool,
    pub(crate) lease_ms: Option<u64>,
    pub(crate) fingerprint: Option<String>,
    pub(crate) prefetch: Option<usize>,
    pub(crate) max_payload: Option<usize>,
    pub(crate) drain_ms: u64,
    /// The network namespace to run in (`/run/netns/<name>`), if any.
    pub(crate) netns: Option<String>,
}

impl WorkerSpec {
    pub(crate) fn new(url: &str, pool: &str) -> WorkerSpec {
        WorkerSpec {
            url: url.to_owned(),
            pool: pool.to_owned(),
            slots: 2,
            threads: false,
            lease_ms: None,
            fingerprint: None,
            prefetch: None,
            max_payload: None,
            drain_ms: 5_000,
            netns: None,
        }
    }

    pub(crate) fn slots(mut self, n: usize) -> Self {
        self.slots = n;
        self
    }

    pub(crate) fn threads(mut self) -> Self {
        self.threads = true;
        self
    }

    pub(crate) fn lease_ms(mut self, ms: u64) -> Self {
        self.lease_ms = Some(ms);
        self
    }

    pub(crate) fn fingerprint(mut self, fp: &str) -> Self {
        self.fingerprint = Some(fp.to_owned());
        self
    }

    pub(crate) fn prefetch(mut self, n: usize) -> Self {
        self.prefetch = Some(n);
        self
    }

    pub(crate) fn builder(&self) -> concur_cluster::WorkerBuilder {
        let mut b = Worker::builder(&self.url, &self.pool)
            .slots(self.slots)
            .local(if self.threads {
                LocalExecutor::Threads
            } else {
                LocalExecutor::Processes
            })
            .drain_timeout(Duration::from_millis(self.drain_ms));
        if let Some(l) = self.lease_ms {
            b = b.lease(Duration::from_millis(l));
        }
        if let Some(f) = &self.fingerprint {
            b = b.fingerprint(f.clone());
        }
        if let Some(p) = self.prefetch {
            b = b.prefetch(p);
        }
        if let Some(m) = self.max_payload {
            b = b.max_payload(m);
        }
        b
    }

    /// Starts the worker in a child process of this test binary, and waits until it
    /// has joined the pool (it then handles SIGTERM by draining).
    pub(crate) fn spawn(&self) -> WorkerProcess {
        self.spawn_with(worker_main)
    }

    /// [`spawn`](Self::spawn) with a worker body of the test's own (one that adds an
    /// initializer, say).
    pub(crate) fn spawn_with<F>(&self, main: F) -> WorkerProcess
    where
        F: Fn(WorkerSpec) -> WorkerStats + Copy + 'static,
    {
        let p = Process::builder()
            .start_method(StartMethod::Spawn)
            .daemon(true)
            .name("concur-test-worker")
            .spawn(main, self.clone())
            .expect("start a worker process");
        let w = WorkerProcess { p };
        let tag = format!(":{}:", w.pid());
        let mut con = raw(&self.url);
        let key = format!("concur:{}:workers", self.pool);
        eventually(Duration::from_secs(60), "the worker joins the pool", || {
            assert!(w.p.is_alive(), "the worker process died at start");
            let members: Vec<String> = redis::cmd("SMEMBERS").arg(&key).query(&mut con).unwrap();
            members.iter().any(|m| m.contains(&tag))
        });
        w
    }
}

/// The body of a worker process: runs until SIGTERM, returns its counters.
fn worker_main(spec: WorkerSpec) -> WorkerStats {
    if let Some(ns) = &spec.netns {
        enter_netns(ns);
    }
    spec.builder()
        .connect()
        .expect("worker connects")
        .run()
        .expect("worker runs")
}

/// A worker in a child process; killed and reaped when dropped.
pub(crate) struct WorkerProcess {
    p: Process<WorkerStats>,
}

impl WorkerProcess {
    pub(crate) fn pid(&self) -> u32 {
        self.p.pid().expect("started")
    }

    pub(crate) fn signal(&self, sig: i32) {
        // SAFETY: sends a signal to our own child, which we have not reaped.
        assert_eq!(unsafe { libc::kill(self.pid() as libc::pid_t, sig) }, 0);
    }

    /// SIGTERM, then waits for its drain and returns its counters.
    pub(crate) fn stop(self) -> WorkerStats {
        self.p.terminate().unwrap();
        self.p
            .join_timeout(Duration::from_secs(60))
            .expect("the worker drains and exits on SIGTERM")
    }

    /// SIGKILL and reap.
    pub(crate) fn kill(self) {
        let _ = self.p.kill();
        let _ = self.p.join_timeout(Duration::from_secs(30));
    }
}

/// Polls `cond` until it holds, for at most `limit`.
pub(crate) fn eventually(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < end, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Which consumer holds entries of the pool's task stream right now (XPENDING).
pub(crate) fn pending_consumers(con: &mut redis::Connection, pool: &str) -> Vec<(String, u64)> {
    let v: redis::Value = redis::cmd("XPENDING")
        .arg(format!("concur:{pool}:tasks"))
        .arg("workers")
        .query(con)
        .unwrap_or(redis::Value::Nil);
    let mut out = Vec::new();
    if let redis::Value::Array(parts) = v
        && let Some(redis::Value::Array(consumers)) = parts.get(3)
    {
        for c in consumers {
            if let redis::Value::Array(kv) = c
                && let (Some(redis::Value::BulkString(name)), Some(redis::Value::BulkString(n))) =
                    (kv.first(), kv.get(1))
            {
                out.push((
                    String::from_utf8_lossy(name).into_owned(),
                    String::from_utf8_lossy(n).parse().unwrap_or(0),
                ));
            }
        }
    }
    out
}

/// A counter in the pool's stats hash.
pub(crate) fn pool_stat(con: &mut redis::Connection, pool: &str, name: &str) -> u64 {
    redis::cmd("HGET")
        .arg(format!("concur:{pool}:stats"))
        .arg(name)
        .query::<Option<u64>>(con)
        .unwrap()
        .unwrap_or(0)
}

/// True when every entry of the pool's task stream has been delivered and settled
/// (the group's pending count and lag are 0); settled entries themselves are trimmed
/// off the stream lazily.
pub(crate) fn all_settled(con: &mut redis::Connection, pool: &str) -> bool {
    let v: redis::Value = match redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(format!("concur:{pool}:tasks"))
        .query(con)
    {
        Ok(v) => v,
        Err(_) => return false,
    };
    let redis::Value::Array(groups) = v else {
        return false;
    };
    groups.iter().all(|g| {
        let redis::Value::Array(kv) = g else {
            return false;
        };
        let get = |name: &str| {
            kv.chunks(2)
                .find(|p| matches!(&p[0], redis::Value::BulkString(b) if b == name.as_bytes()))
                .map(|p| p[1].clone())
        };
        matches!(get("pending"), Some(redis::Value::Int(0)))
            && matches!(get("lag"), Some(redis::Value::Int(0)))
    })
}

/// Moves this thread (and the threads and processes it makes afterwards) into network
/// namespace `name`.
pub(crate) fn enter_netns(name: &str) {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(format!("/run/netns/{name}")).expect("the namespace exists");
    // SAFETY: `setns` with a namespace descriptor we hold open; it changes only this
    // thread's network namespace.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
}

/// A "machine" of its own: a network namespace joined to this one by a veth pair, with
/// private addresses, whose link can be cut. Made with iproute2 (`ip netns`, `ip link`,
/// as root); removed on drop.
pub(crate) struct Netns {
    pub(crate) name: String,
    host_if: String,
    pub(crate) host_ip: String,
}

impl Netns {
    /// Makes namespace number `n` (0..250) of this test process.
    pub(crate) fn new(n: u8) -> Netns {
        let tag = format!("{}{n}", std::process::id() % 100_000);
        let name = format!("concur-{tag}");
        let host_if = format!("cch{tag}");
        let ns_if = format!("ccw{tag}");
        // A /24 of its own per test process and namespace.
        let net = format!("10.{}.{}", 100 + (std::process::id() % 100), n);
        let ip = |args: &[&str]| {
            let out = std::process::Command::new("ip")
                .args(args)
                .output()
                .unwrap_or_else(|e| {
                    panic!("iproute2's `ip` is needed (apt-get install iproute2): {e}")
                });
            assert!(
                out.status.success(),
                "ip {}: {} (network namespaces need root)",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        };
        let ns = Netns {
            name: name.clone(),
            host_if: host_if.clone(),
            host_ip: format!("{net}.1"),
        };
        ip(&["netns", "add", &name]);
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
        ]);
        ip(&["link", "set", &ns_if, "netns", &name]);
        ip(&["addr", "add", &format!("{net}.1/24"), "dev", &host_if]);
        ip(&["link", "set", &host_if, "up"]);
        ip(&[
            "-n",
            &name,
            "addr",
            "add",
            &format!("{net}.2/24"),
            "dev",
            &ns_if,
        ]);
        ip(&["-n", &name, "link", "set", &ns_if, "up"]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        ns
    }

    fn link(&self, state: &str) {
        let out = std::process::Command::new("ip")
            .args(["link", "set", &self.host_if, state])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Takes the link down: the namespace is cut off (its packets go nowhere).
    pub(crate) fn cut(&self) {
        self.link("down");
    }

    /// Brings the link back up.
    pub(crate) fn restore(&self) {
        self.link("up");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}
