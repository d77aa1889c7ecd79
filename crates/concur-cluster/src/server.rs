//! [`RedisServer`]: a private `redis-server` on a free loopback port in a temporary
//! directory, for tests, the tour and benchmarks. Never a system service.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Configures a [`RedisServer`].
#[derive(Clone, Debug, Default)]
#[must_use = "a builder does nothing until `start`"]
pub struct RedisServerBuilder {
    aof: bool,
    password: Option<String>,
    bind: Vec<String>,
    args: Vec<String>,
    tls: Option<(PathBuf, PathBuf)>,
}

impl RedisServerBuilder {
    /// Keeps an append-only file (`appendonly yes`, fsync every second), so the data
    /// survives [`RedisServer::restart`].
    pub fn aof(mut self, on: bool) -> Self {
        self.aof = on;
        self
    }

    /// Requires this password (`requirepass`); [`RedisServer::url`] includes it.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Listens on `addr` too, besides 127.0.0.1 (for peers in other network
    /// namespaces or on other machines; give it a [password](Self::password)).
    pub fn bind(mut self, addr: &str) -> Self {
        self.bind.push(addr.to_owned());
        self
    }

    /// Serves TLS only (`rediss://`), with this certificate and key (PEM files);
    /// [`RedisServer::url`] is then a `rediss://` URL.
    pub fn tls(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls = Some((cert.into(), key.into()));
        self
    }

    /// Passes one more `--name value` setting to `redis-server`.
    pub fn setting(mut self, name: &str, value: &str) -> Self {
        self.args.push(format!("--{name}"));
        self.args.push(value.to_owned());
        self
    }

    /// Starts the server and waits until it answers.
    ///
    /// # Errors
    /// [`io::ErrorKind::NotFound`] if no `redis-server` is installed (the message says
    /// how to get one), or the server did not start within 10 s.
    pub fn start(self) -> io::Result<RedisServer> {
        let bin = find_redis_server()?;
        let dir = temp_dir()?;
        let port = free_port()?;
        let mut s = RedisServer {
            bin,
            dir,
            port,
            cfg: self,
            child: None,
        };
        s.launch()?;
        Ok(s)
    }
}

/// A `redis-server` of its own: a free port on 127.0.0.1, data in a fresh temporary
/// directory, bound to this process (killed if it dies, stopped and its directory
/// removed on drop).
///
/// ```no_run
/// let redis = concur::cluster::RedisServer::start().unwrap();
/// let ex = concur::cluster::RedisExecutor::connect(&redis.url(), "doc").unwrap();
/// # drop(ex);
/// ```
#[derive(Debug)]
pub struct RedisServer {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    cfg: RedisServerBuilder,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server with the defaults (no persistence, no password).
    ///
    /// # Errors
    /// As [`RedisServerBuilder::start`].
    pub fn start() -> io::Result<RedisServer> {
        RedisServer::builder().start()
    }

    /// A builder for AOF, a password and other settings.
    pub fn builder() -> RedisServerBuilder {
        RedisServerBuilder::default()
    }

    /// Where it is available, as a URL for database `0`.
    pub fn url(&self) -> String {
        self.url_at("127.0.0.1")
    }

    /// The URL of database `0` at another of its addresses (see
    /// [`RedisServerBuilder::bind`]).
    pub fn url_at(&self, host: &str) -> String {
        let scheme = if self.cfg.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        match &self.cfg.password {
            Some(p) => format!("{scheme}://:{p}@{host}:{}/0", self.port),
            None => format!("{scheme}://{host}:{}/0", self.port),
        }
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops it as an operator would (`SHUTDOWN`, which writes the AOF out) and starts
    /// it again on the same port and directory.
    ///
    /// # Errors
    /// As [`RedisServerBuilder::start`].
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        self.launch()
    }

    /// Stops it (`SHUTDOWN`, then a kill if it does not exit within 5 s).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SIGTERM: Redis's own graceful shutdown (it writes the AOF out), over TLS too.
        // SAFETY: signals our own child, which has not been reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    fn launch(&mut self) -> io::Result<()> {
        // A fresh log: readiness over TLS is read from it.
        let _ = std::fs::remove_file(self.dir.join("redis.log"));
        let mut cmd = Command::new(&self.bin);
        match &self.cfg.tls {
            None => {
                cmd.arg("--port").arg(self.port.to_string());
            }
            Some((cert, key)) => {
                cmd.args(["--port", "0", "--tls-port"])
                    .arg(self.port.to_string())
                    .arg("--tls-cert-file")
                    .arg(cert)
                    .arg("--tls-key-file")
                    .arg(key)
                    .arg("--tls-ca-cert-file")
                    .arg(cert)
                    .args(["--tls-auth-clients", "no"]);
            }
        }
        cmd.args(["--bind", "127.0.0.1"])
            .args(&self.cfg.bind)
            .args(["--save", "", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--appendonly", if self.cfg.aof { "yes" } else { "no" }])
            .args(["--appendfsync", "everysec", "--protected-mode", "yes"])
            .args(["--logfile", "redis.log"]);
        if let Some(p) = &self.cfg.password {
            cmd.args(["--requirepass", p]);
        }
        cmd.args(&self.cfg.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        bind_to_parent(&mut cmd);
        let child = cmd.spawn()?;
        self.child = Some(child);
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if self.ready() {
                return Ok(());
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                self.child = None;
                let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
                return Err(io::Error::other(format!(
                    "redis-server exited at start ({status}): {}",
                    log.lines().last().unwrap_or("")
                )));
            }
            if Instant::now() > end {
                self.stop();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "redis-server did not answer within 10 s",
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether it answers (a PING in the clear, or over TLS its log says it is ready).
    fn ready(&self) -> bool {
        if self.cfg.tls.is_some() {
            return std::fs::read_to_string(self.dir.join("redis.log"))
                .is_ok_and(|l| l.contains("Ready to accept connections"));
        }
        self.command(&["PING"])
            .is_ok_and(|r| r.starts_with("+PONG") || r.starts_with("-NOAUTH"))
    }

    /// Sends one inline command and returns the first line of the reply.
    fn command(&self, words: &[&str]) -> io::Result<String> {
        let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut line = String::new();
        if let Some(p) = &self.cfg.password {
            writeln!(s, "AUTH {p}\r")?;
            BufReader::new(&s).read_line(&mut line)?;
            line.clear();
        }
        writeln!(s, "{}\r", words.join(" "))?;
        let _ = BufReader::new(&s).read_line(&mut line);
        Ok(line)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Kills the server when the thread that started it dies (the parent-death signal):
/// a test binary that is killed leaves no server behind.
fn bind_to_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec and makes one
    // async-signal-safe call (prctl), touching no memory of the parent's.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The `redis-server` binary: `CONCUR_REDIS_SERVER`, or on the `PATH`, or where
/// Debian puts it.
fn find_redis_server() -> io::Result<PathBuf> {
    if let Some(p) = std::env::var_os("CONCUR_REDIS_SERVER") {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut candidates: Vec<PathBuf> = std::env::split_paths(&path)
        .map(|d| d.join("redis-server"))
        .collect();
    candidates.push(PathBuf::from("/usr/bin/redis-server"));
    candidates.push(PathBuf::from("/usr/sbin/redis-server"));
    candidates
        .into_iter()
        .find(|p| is_executable(p))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "redis-server is not installed: `sudo apt-get install redis-server` \
                 (Debian/Ubuntu), or set CONCUR_REDIS_SERVER to its path",
            )
        })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

fn temp_dir() -> io::Result<PathBuf> {
    let base = std::env::temp_dir();
    for _ in 0..16 {
        let d = base.join(format!("concur-redis-{}", crate::executor::random_hex()));
        match std::fs::create_dir(&d) {
            Ok(()) => return Ok(d),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("cannot make a temporary directory"))
}
