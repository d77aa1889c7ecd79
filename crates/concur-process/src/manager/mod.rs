//! [`Manager`]: Python's `multiprocessing.Manager` / `BaseManager` — a server process
//! that owns shared dicts, lists, namespaces, values, queues and locks, used through
//! proxies from any process that knows its address and key, on this machine (a
//! Unix-domain socket) or another (TCP).
//!
//! | Python | here |
//! |---|---|
//! | `m = Manager()` / `m.start()` | [`Manager::start`], [`Manager::builder`]`().address(..).authkey(..).start()` |
//! | `BaseManager(address, authkey).connect()` | [`Manager::connect`]`(address, key)` |
//! | `BaseManager(..).get_server().serve_forever()` | [`Manager::serve`]`(address, key)` |
//! | `m.shutdown()`, `with Manager() as m:` | [`Manager::shutdown`], drop |
//! | `m.dict()`, `d[k]`, `d[k] = v`, `del d[k]`, `k in d`, `len(d)`, `d.keys()` | [`Manager::dict`], [`Dict::get_item`], [`Dict::insert`], [`Dict::remove`], [`Dict::contains_key`], [`Dict::len`], [`Dict::keys`] |
//! | a lock around `d[k] += 1` | [`Dict::update`]: the function runs on the server, atomically |
//! | `m.list()`, `m.Namespace()`, `m.Value(t, v)` | [`Manager::list`] ([`List`]), [`Manager::namespace`] ([`Namespace`]), [`Manager::value`] ([`Value`], with an atomic `update`) |
//! | `m.Queue(maxsize)`, `m.JoinableQueue(maxsize)` | [`Manager::queue`] ([`Queue`]), [`Manager::joinable_queue`] ([`JoinableQueue`]): four blocking forms, `task_done`/`join` |
//! | `m.Lock()`, `m.RLock()`, `m.Semaphore(n)`, `m.BoundedSemaphore(n)` | [`Lock`], [`RLock`], [`Semaphore`], [`BoundedSemaphore`]: released by the server if their holder's process dies |
//! | `m.Event()`, `m.Condition()`, `m.Barrier(n)` | [`Event`], [`Condition`], [`Barrier`] |
//! | proxies passed to a child process | every proxy is serde: pass it as a [`Process`] argument; the child connects on first use |
//! | `AuthenticationError`, `KeyError`, `RemoteError` | [`ManagerError::is_auth_failed`], [`ManagerError::is_missing`], [`ManagerError::is_remote`] |
//! | (no Python equivalent: refusals) | [`ManagerError::is_refused`], [`ManagerError::is_overloaded`], [`ManagerError::is_handshake_timeout`] |
//!
//! How it works: the server stores keys and values serialized (postcard), so it needs
//! to know no type; proxies are typed, and each object remembers the type names it was
//! made with. Every connection is authenticated first by an HMAC-SHA256
//! challenge-response in both directions over the key (see `auth`), run for all
//! pending connections by one acceptor thread; a client that fails is refused and
//! logged before any request is read. Then each request is a length-checked frame
//! answered by one reply; a malformed, unknown or oversized request gets an error reply
//! and the server keeps serving everyone else. Each authenticated connection has a
//! thread on the server, so a client blocked in a queue `get` or a lock `acquire`
//! holds up nobody else.
//!
//! # Trust model
//!
//! **Without the key** a peer that can connect (anyone on the machine for a Unix
//! socket in the abstract namespace, anyone on the network for TCP) can only cost the
//! server bounded resources, and cannot keep clients that have the key out:
//! - it gets no thread: handshakes run as state machines on the acceptor thread, one
//!   descriptor and a few hundred bytes each;
//! - for at most [`handshake_timeout`](ManagerBuilder::handshake_timeout) (2 s),
//!   reading at most 256 bytes a message;
//! - at most [`max_pending_handshakes`](ManagerBuilder::max_pending_handshakes) of
//!   them at once (1,024): beyond that each new connection drops the oldest pending
//!   one, so a flood only pushes out its own members;
//! - the server raises its soft descriptor limit to the hard one at start, and keeps
//!   accepting (dropping the oldest handshake, or refusing with a spare descriptor kept
//!   for the purpose) when descriptors run out.
//!
//! A refused client is told why ([`is_refused`](ManagerError::is_refused),
//! [`is_overloaded`](ManagerError::is_overloaded),
//! [`is_handshake_timeout`](ManagerError::is_handshake_timeout));
//! [`is_auth_failed`](ManagerError::is_auth_failed) means a wrong key and nothing
//! else. The key itself never travels; a recorded handshake cannot be replayed (each
//! side's challenge is fresh). Nothing after the handshake is encrypted or signed: over
//! TCP, someone on the path sees the requests and values and could inject into a
//! connection (use a private network or a tunnel).
//!
//! **With the key** a client is trusted with the data, not with the server's process:
//! it can read, change and delete every object, block other clients through the
//! objects (hold a lock, fill a queue), and stop the server
//! ([`shutdown`](Manager::shutdown)). Its cost is bounded by
//! [`max_connections`](ManagerBuilder::max_connections) (4,096), 64 MiB a request and
//! [`max_partial_bytes`](ManagerBuilder::max_partial_bytes) (512 MiB) held in partly
//! received requests by all connections together; what it stores is not bounded
//! (nor in Python). It **cannot** make the server run code of its choosing: the only
//! functions the server runs for a client, the `update` functions of [`Dict`] and
//! [`Value`], are looked up by a key in a table the server's own binary was linked
//! with (`exec::register`), never by an address; a key the binary does not have, or
//! a malformed request, is a typed error and the connection goes on. The `Hello` that
//! names the client's build only turns a client of another build away with a clear
//! error; it is not a security check.
//!
//! A client process that dies while holding a manager lock does not deadlock the
//! others: when its connection ends, the server releases what that connection held
//! (locks, semaphore units, condition ownership) and wakes the waiters; a call it left
//! blocked on the server (a queue `get`, an `acquire`) notices the hang-up within
//! 100 ms and gives up, so it never takes an item or a lock afterwards.
//!
//! Objects live until the manager shuts down (proxies do not count references).
//!
//! ```
//! use concur::process::Manager;
//! let m = Manager::start().unwrap();
//! let scores = m.dict::<String, u32>().unwrap();
//! scores.update("ada".into(), |s: Option<u32>| s.unwrap_or(0) + 3).unwrap();
//! assert_eq!(scores.get(&"ada".into()).unwrap(), Some(3));
//! ```

mod accept;
mod auth;
mod client;
mod error;
mod fuzz;
mod object;
pub(crate) mod objects;
mod protocol;
mod server;

#[cfg(test)]
mod hostile_tests;

use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use auth::AuthKey;
pub use client::Address;
pub use error::ManagerError;
pub(crate) use fuzz::requests as fuzz_requests;
pub use objects::dict::Dict;
pub use objects::joinable_queue::JoinableQueue;
pub use objects::list::List;
pub use objects::namespace::Namespace;
pub use objects::queue::Queue;
pub use objects::sync_lock::{Lock, RLock};
pub use objects::sync_misc::{Barrier, Condition, Event};
pub use objects::sync_sem::{BoundedSemaphore, Semaphore};
pub use objects::value::Value;

use crate::process::{Process, StartMethod};
use accept::{Limits, Listener};
use client::Client;
use protocol::{ObjKind, Request};

/// Configures a [`Manager`] before [`start`](ManagerBuilder::start): where it listens
/// and its key.
///
/// ```
/// use concur::process::{Address, AuthKey, Manager};
/// let m = Manager::builder()
///     .address("127.0.0.1:0".parse::<Address>().unwrap())
///     .authkey(AuthKey::from("not a secret"))
///     .start()
///     .unwrap();
/// assert!(matches!(m.address(), Address::Tcp(a) if a.port() != 0));
/// ```
#[derive(Debug, Default)]
#[must_use = "a builder does nothing until `start`"]
pub struct ManagerBuilder {
    address: Option<Address>,
    key: Option<AuthKey>,
    limits: Limits,
}

impl ManagerBuilder {
    /// Where the server listens: a Unix path (`@name` for the abstract namespace) or a
    /// TCP address (port 0 picks a free port; [`Manager::address`] tells which). By
    /// default an abstract Unix socket with a random name.
    ///
    /// ```
    /// let _ = concur::process::Manager::builder().address("@my-manager".parse().unwrap());
    /// ```
    pub fn address(mut self, address: Address) -> Self {
        self.address = Some(address);
        self
    }

    /// The authentication key; by default a random one ([`Manager::authkey`] tells it,
    /// to hand to other processes).
    ///
    /// ```
    /// let _ = concur::process::Manager::builder().authkey("k".into());
    /// ```
    pub fn authkey(mut self, key: AuthKey) -> Self {
        self.key = Some(key);
        self
    }

    /// How long the server gives a new connection to finish the authentication
    /// handshake (2 s by default); a slower client is told so
    /// ([`is_handshake_timeout`](ManagerError::is_handshake_timeout)) and closed. Zero
    /// is taken as 1 ms.
    ///
    /// ```
    /// use std::time::Duration;
    /// let _ = concur::process::Manager::builder().handshake_timeout(Duration::from_millis(500));
    /// ```
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.limits.handshake_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How many handshakes may be pending at once (1,024 by default; at least 1). A
    /// new connection beyond that drops the oldest pending one, which is told
    /// [`is_overloaded`](ManagerError::is_overloaded): a flood of idle connections
    /// pushes out only its own oldest members, never keeps a real client out.
    ///
    /// ```
    /// let _ = concur::process::Manager::builder().max_pending_handshakes(64);
    /// ```
    pub fn max_pending_handshakes(mut self, n: usize) -> Self {
        self.limits.max_pending = n.max(1);
        self
    }

    /// How many authenticated connections the server serves at once (4,096 by
    /// default). A connection beyond that is refused
    /// ([`is_refused`](ManagerError::is_refused)). Each proxy handle holds one
    /// connection, and each has a thread on the server.
    ///
    /// ```
    /// let _ = concur::process::Manager::builder().max_connections(10_000);
    /// ```
    pub fn max_connections(mut self, n: usize) -> Self {
        self.limits.max_connections = n;
        self
    }

    /// How many bytes of partly received requests all connections may hold together
    /// (512 MiB by default), beyond 64 KiB each: a connection whose request would pass
    /// it gets an [`is_overloaded`](ManagerError::is_overloaded) reply and is closed.
    /// Bounds what key holders sending large requests slowly can make the server hold.
    ///
    /// ```
    /// let _ = concur::process::Manager::builder().max_partial_bytes(64 << 20);
    /// ```
    pub fn max_partial_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_partial_bytes = bytes;
        self
    }

    /// Runs the server in this process, with this builder's address, key and limits,
    /// until a client calls [`shutdown`](Manager::shutdown) (as [`Manager::serve`]).
    /// Blocks. Raises this process's soft descriptor limit to its hard limit.
    ///
    /// # Errors
    /// As [`Manager::serve`]; the address is required.
    ///
    /// ```
    /// use concur::process::{Address, AuthKey, Manager};
    /// use std::time::Duration;
    /// let addr: Address = "@builder-serve-doc".parse().unwrap();
    /// let b = Manager::builder().address(addr.clone()).authkey("k".into()).max_connections(8);
    /// let server = std::thread::spawn(move || b.serve());
    /// let m = loop {
    ///     match Manager::connect(addr.clone(), AuthKey::from("k")) {
    ///         Ok(m) => break m,
    ///         Err(_) => std::thread::sleep(Duration::from_millis(5)),
    ///     }
    /// };
    /// m.shutdown().unwrap();
    /// server.join().unwrap().unwrap();
    /// ```
    pub fn serve(self) -> Result<(), ManagerError> {
        let Some(address) = self.address else {
            return Err(ManagerError::io(
                "serving",
                std::io::Error::other("no address given to serve on"),
            ));
        };
        let key = match self.key {
            Some(k) => k,
            None => AuthKey::random().map_err(|e| ManagerError::io("randomness", e))?,
        };
        let (listener, _) = bind(&address)?;
        server::serve(listener, key, self.limits).map_err(|e| ManagerError::io("serving", e))
    }

    /// Starts the server process and returns the manager that owns it. The server is
    /// a child like a [`Process`]'s: it dies with this process, and exits on
    /// [`Manager::shutdown`] or when the manager is dropped.
    ///
    /// # Errors
    /// [`is_io`](ManagerError::is_io) if the address cannot be bound or the process
    /// not started.
    ///
    /// ```
    /// let m = concur::process::Manager::builder().start().unwrap();
    /// m.shutdown().unwrap();
    /// ```
    pub fn start(self) -> Result<Manager, ManagerError> {
        let key = match self.key {
            Some(k) => k,
            None => AuthKey::random().map_err(|e| ManagerError::io("randomness", e))?,
        };
        let address = match self.address {
            Some(a) => a,
            None => Address::Unix(PathBuf::from(format!(
                "@concur-manager-{}-{}",
                std::process::id(),
                hex(&AuthKey::random()
                    .map_err(|e| ManagerError::io("randomness", e))?
                    .as_bytes()[..8])
            ))),
        };
        let (listener, address) = bind(&address)?;
        let unix_path = match &address {
            Address::Unix(p) if address.abstract_name().is_none() => Some(p.clone()),
            _ => None,
        };
        let (fd, tcp) = match listener {
            Listener::Unix(l) => (OwnedFd::from(l), false),
            Listener::Tcp(l) => (OwnedFd::from(l), true),
        };
        let process = Process::builder()
            .name("concur-manager")
            .daemon(true)
            .start_method(StartMethod::ForkServer)
            .spawn(
                serve_main,
                ServeArgs {
                    listener: fd,
                    tcp,
                    key: key.clone(),
                    limits: self.limits,
                },
            )
            .map_err(|e| {
                ManagerError::io(
                    "starting the manager process",
                    std::io::Error::other(e.to_string()),
                )
            })?;
        Ok(Manager {
            client: Client::new(address, key),
            process: Some(process),
            unix_path,
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Binds `address`; returns the listener and the address as bound (a real port).
fn bind(address: &Address) -> Result<(Listener, Address), ManagerError> {
    let err = |e| ManagerError::io(&format!("binding {address}"), e);
    match address {
        Address::Tcp(a) => {
            let l = TcpListener::bind(a).map_err(err)?;
            let bound = l.local_addr().map_err(err)?;
            Ok((Listener::Tcp(l), Address::Tcp(bound)))
        }
        Address::Unix(p) => {
            let l = match address.abstract_name() {
                Some(name) => {
                    use std::os::linux::net::SocketAddrExt;
                    let a =
                        std::os::unix::net::SocketAddr::from_abstract_name(name).map_err(err)?;
                    UnixListener::bind_addr(&a).map_err(err)?
                }
                None => UnixListener::bind(p).map_err(err)?,
            };
            Ok((Listener::Unix(l), address.clone()))
        }
    }
}

#[derive(Serialize, Deserialize)]
struct ServeArgs {
    #[serde(with = "crate::fds::serde_fd")]
    listener: OwnedFd,
    tcp: bool,
    key: AuthKey,
    limits: Limits,
}

/// The server process's function.
fn serve_main(args: ServeArgs) {
    let listener = if args.tcp {
        Listener::Tcp(TcpListener::from(args.listener))
    } else {
        Listener::Unix(UnixListener::from(args.listener))
    };
    if let Err(e) = server::serve(listener, args.key, args.limits) {
        tracing::error!(error = %e, "manager: the server stopped on an error");
    }
}

/// A handle on a manager's server: makes shared objects and hands out proxies to them
/// (Python's `multiprocessing.Manager()` and `BaseManager`). See the [module
/// docs](self) for how it works.
///
/// ```
/// use concur::process::{Manager, Process};
/// use concur::process::manager::Dict;
///
/// fn worker(d: Dict<String, u64>) {
///     for _ in 0..100 {
///         d.update("count".into(), |n: Option<u64>| n.unwrap_or(0) + 1).unwrap();
///     }
/// }
///
/// let m = Manager::start().unwrap();
/// let d = m.dict::<String, u64>().unwrap();
/// let ps: Vec<_> = (0..3).map(|_| Process::spawn(worker, d.clone()).unwrap()).collect();
/// for p in ps { p.join().unwrap(); }
/// assert_eq!(d.get(&"count".into()).unwrap(), Some(300));
/// ```
pub struct Manager {
    client: Client,
    process: Option<Process<()>>,
    unix_path: Option<PathBuf>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("address", self.client.address())
            .field("owns_server", &self.process.is_some())
            .finish()
    }
}

impl Manager {
    /// Starts a server process on a private Unix socket with a random key (Python's
    /// `Manager()`).
    ///
    /// # Errors
    /// As [`ManagerBuilder::start`].
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// assert!(m.address().to_string().starts_with("@concur-manager-"));
    /// ```
    pub fn start() -> Result<Manager, ManagerError> {
        ManagerBuilder::default().start()
    }

    /// A builder for the address and key.
    ///
    /// ```
    /// let m = concur::process::Manager::builder().authkey("k".into()).start().unwrap();
    /// assert_eq!(m.authkey().as_bytes(), b"k");
    /// ```
    pub fn builder() -> ManagerBuilder {
        ManagerBuilder::default()
    }

    /// Connects to the manager serving at `address` with `key` (Python's
    /// `BaseManager(address, authkey).connect()`), checking the key at once. The
    /// returned handle does not own the server: dropping it leaves the server running.
    ///
    /// # Errors
    /// [`is_auth_failed`](ManagerError::is_auth_failed) for a wrong key;
    /// [`is_shutdown`](ManagerError::is_shutdown) if nothing serves there.
    ///
    /// ```
    /// use concur::process::Manager;
    /// let m = Manager::start().unwrap();
    /// let other = Manager::connect(m.address().clone(), m.authkey().clone()).unwrap();
    /// let d = other.dict::<u8, u8>().unwrap();
    /// d.insert(1, 2).unwrap();
    /// assert_eq!(m.dict_by_id::<u8, u8>(d.id()).unwrap().get(&1).unwrap(), Some(2));
    /// ```
    pub fn connect(address: Address, key: AuthKey) -> Result<Manager, ManagerError> {
        Manager::connect_timeout(address, key, auth::CLIENT_HANDSHAKE_TIMEOUT)
    }

    /// [`connect`](Manager::connect), giving the authentication handshake at most
    /// `timeout` (10 s for `connect`); the proxies made through the returned handle
    /// use it too.
    ///
    /// # Errors
    /// As [`connect`](Manager::connect);
    /// [`is_handshake_timeout`](ManagerError::is_handshake_timeout) if the handshake
    /// did not finish in time, [`is_refused`](ManagerError::is_refused) if the server
    /// is at its connection limit, [`is_overloaded`](ManagerError::is_overloaded) if
    /// it is out of resources.
    ///
    /// ```
    /// use std::time::Duration;
    /// use concur::process::Manager;
    /// let m = Manager::start().unwrap();
    /// let c = Manager::connect_timeout(m.address().clone(), m.authkey().clone(), Duration::from_secs(1));
    /// assert!(c.is_ok());
    /// ```
    pub fn connect_timeout(
        address: Address,
        key: AuthKey,
        timeout: Duration,
    ) -> Result<Manager, ManagerError> {
        let client = Client::with_timeout(address, key, timeout);
        client.connect()?;
        Ok(Manager {
            client,
            process: None,
            unix_path: None,
        })
    }

    /// Runs a manager's server in this process, on `address` with `key`, until a
    /// client calls [`shutdown`](Manager::shutdown) (Python's
    /// `get_server().serve_forever()`). Blocks. Raises this process's soft limit on
    /// open descriptors to its hard limit, as a started server does; the other limits
    /// are the defaults ([`ManagerBuilder::serve`] sets them).
    ///
    /// # Errors
    /// [`is_io`](ManagerError::is_io) if the address cannot be bound or accepting
    /// fails.
    ///
    /// ```
    /// use concur::process::{Address, AuthKey, Manager};
    /// use std::time::Duration;
    /// let addr: Address = "@serve-doc-example".parse().unwrap();
    /// let a = addr.clone();
    /// let server = std::thread::spawn(move || Manager::serve(a, AuthKey::from("k")));
    /// let m = loop {
    ///     match Manager::connect(addr.clone(), AuthKey::from("k")) {
    ///         Ok(m) => break m,
    ///         Err(_) => std::thread::sleep(Duration::from_millis(5)),
    ///     }
    /// };
    /// m.dict::<u8, u8>().unwrap().insert(1, 1).unwrap();
    /// m.shutdown().unwrap();
    /// server.join().unwrap().unwrap();
    /// ```
    pub fn serve(address: Address, key: AuthKey) -> Result<(), ManagerError> {
        ManagerBuilder::default()
            .address(address)
            .authkey(key)
            .serve()
    }

    /// The address the server listens on (a TCP port chosen by the OS included).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let _ = m.address().to_string();
    /// ```
    pub fn address(&self) -> &Address {
        self.client.address()
    }

    /// The authentication key (to hand to other processes with the address).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// assert_eq!(m.authkey().as_bytes().len(), 32);
    /// ```
    pub fn authkey(&self) -> &AuthKey {
        self.client.key()
    }

    /// Stops the server (Python's `shutdown`) and, if this manager started it, waits
    /// for its process to exit. Calls on proxies fail with
    /// [`is_shutdown`](ManagerError::is_shutdown) afterwards. Calling it again is
    /// harmless.
    ///
    /// # Errors
    /// An I/O error other than the server being gone already.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// m.shutdown().unwrap();
    /// m.shutdown().unwrap();
    /// ```
    pub fn shutdown(&self) -> Result<(), ManagerError> {
        match self.client.request(&Request::Shutdown) {
            Ok(_) => {}
            Err(e) if e.is_shutdown() => {}
            Err(e) => return Err(e),
        }
        if let Some(p) = &self.process
            && p.join_timeout(Duration::from_secs(5)).is_err()
            && p.exitcode().is_none()
        {
            let _ = p.kill();
            let _ = p.join_timeout(Duration::from_secs(5));
        }
        if let Some(path) = &self.unix_path {
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    }

    /// Makes an object of `kind` and returns a handle to it.
    pub(crate) fn create(
        &self,
        kind: ObjKind,
        tag: String,
        init: Vec<u8>,
    ) -> Result<client::Handle, ManagerError> {
        client::create(&self.client, kind, tag, init)
    }

    /// Attaches to object `id`, which must have type tag `tag`.
    pub(crate) fn attach(&self, id: u64, tag: String) -> Result<client::Handle, ManagerError> {
        client::attach(&self.client, id, tag)
    }

    /// A new shared dict (Python's `m.dict()`).
    ///
    /// # Errors
    /// [`is_shutdown`](ManagerError::is_shutdown) if the manager is gone.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let d = m.dict::<u32, String>().unwrap();
    /// d.insert(7, "seven".into()).unwrap();
    /// assert_eq!(d.len().unwrap(), 1);
    /// ```
    pub fn dict<K, V>(&self) -> Result<Dict<K, V>, ManagerError>
    where
        K: Serialize + DeserializeOwned,
        V: Serialize + DeserializeOwned,
    {
        Ok(Dict::from_handle(self.create(
            ObjKind::Dict,
            Dict::<K, V>::tag(),
            Vec::new(),
        )?))
    }

    /// A proxy to the existing dict `id` of this manager (made by any client).
    ///
    /// # Errors
    /// [`is_missing`](ManagerError::is_missing) if there is no such object;
    /// [`is_wrong_type`](ManagerError::is_wrong_type) if it is not a `Dict<K, V>`.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let d = m.dict::<u8, u8>().unwrap();
    /// assert!(m.dict_by_id::<u8, u8>(d.id()).is_ok());
    /// assert!(m.dict_by_id::<u8, u8>(d.id() + 100).unwrap_err().is_missing());
    /// ```
    pub fn dict_by_id<K, V>(&self, id: u64) -> Result<Dict<K, V>, ManagerError>
    where
        K: Serialize + DeserializeOwned,
        V: Serialize + DeserializeOwned,
    {
        Ok(Dict::from_handle(self.attach(id, Dict::<K, V>::tag())?))
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        if self.process.is_some() {
            let _ = self.shutdown();
        }
    }
}
