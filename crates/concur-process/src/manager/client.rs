//! The client side: a lazily opened, authenticated connection per proxy handle, and
//! the [`Address`] of a manager.

use std::fmt;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::auth::{self, AuthKey, CLIENT_HANDSHAKE_TIMEOUT};
use super::error::ManagerError;
use super::protocol::{Hello, MAX_FRAME, Reply, Request, decode, encode};
use crate::connection::Connection;
use crate::process::protocol::Identity;

/// Where a manager listens: a Unix-domain socket (the default; a path starting with
/// `@` is in Linux's abstract namespace, which leaves no file behind) or a TCP address.
///
/// ```
/// use concur::process::Address;
/// let a: Address = "127.0.0.1:5000".parse().unwrap();
/// assert_eq!(a, Address::Tcp("127.0.0.1:5000".parse().unwrap()));
/// let u: Address = "/tmp/m.sock".parse().unwrap();
/// assert_eq!(u.to_string(), "/tmp/m.sock");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Address {
    /// A Unix-domain stream socket at this path (`@name`: abstract).
    Unix(PathBuf),
    /// A TCP address (use an authentication key of real strength).
    Tcp(SocketAddr),
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Unix(p) => write!(f, "{}", p.display()),
            Address::Tcp(a) => write!(f, "{a}"),
        }
    }
}

impl std::str::FromStr for Address {
    type Err = std::convert::Infallible;

    /// A socket address (`host:port` with an IP) is TCP; anything else a Unix path.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.parse::<SocketAddr>() {
            Ok(a) => Address::Tcp(a),
            Err(_) => Address::Unix(PathBuf::from(s)),
        })
    }
}

impl Address {
    /// The abstract-namespace name of a `@name` Unix address.
    pub(crate) fn abstract_name(&self) -> Option<&[u8]> {
        match self {
            Address::Unix(p) => p.as_os_str().as_encoded_bytes().strip_prefix(b"@"),
            Address::Tcp(_) => None,
        }
    }

    /// Opens a stream to this address.
    pub(crate) fn connect(&self) -> std::io::Result<OwnedFd> {
        match self {
            Address::Tcp(a) => {
                let s = TcpStream::connect(a)?;
                let _ = s.set_nodelay(true);
                Ok(OwnedFd::from(s))
            }
            Address::Unix(p) => {
                let s = match self.abstract_name() {
                    Some(name) => {
                        use std::os::linux::net::SocketAddrExt;
                        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                        UnixStream::connect_addr(&addr)?
                    }
                    None => UnixStream::connect(p)?,
                };
                Ok(OwnedFd::from(s))
            }
        }
    }
}

/// Requests a pipelining client sends ahead of their replies, at most (small replies
/// for this many fit in any socket buffer, so neither side blocks the other).
pub(crate) const PIPELINE_WINDOW: usize = 32;

/// One authenticated connection to a manager, opened on first use and shared by the
/// calls of one handle (one call at a time).
pub(crate) struct Client {
    address: Address,
    key: AuthKey,
    /// The deadline of the authentication handshake, from connecting.
    handshake: Duration,
    conn: Mutex<Option<Connection>>,
}

impl Client {
    pub(crate) fn new(address: Address, key: AuthKey) -> Client {
        Client::with_timeout(address, key, CLIENT_HANDSHAKE_TIMEOUT)
    }

    pub(crate) fn with_timeout(address: Address, key: AuthKey, handshake: Duration) -> Client {
        Client {
            address,
            key,
            handshake,
            conn: Mutex::new(None),
        }
    }

    /// A new client of the same manager (its own connection, opened on first use).
    fn sibling(&self) -> Client {
        Client::with_timeout(self.address.clone(), self.key.clone(), self.handshake)
    }

    pub(crate) fn address(&self) -> &Address {
        &self.address
    }

    pub(crate) fn key(&self) -> &AuthKey {
        &self.key
    }

    fn open(&self) -> Result<Connection, ManagerError> {
        let fd = self.address.connect().map_err(|e| {
            ManagerError::shutdown(format!("cannot reach the manager at {}: {e}", self.address))
        })?;
        let conn = Connection::from_fd(fd);
        auth::client_side(&conn, &self.key, MAX_FRAME, self.handshake)?;
        let identity = Identity::current().unwrap_or_else(|_| Identity::unknown());
        conn.send(&Hello { identity })
            .map_err(|e| ManagerError::shutdown(format!("the manager went away: {e}")))?;
        Ok(conn)
    }

    fn connection(&self) -> Result<MutexGuard<'_, Option<Connection>>, ManagerError> {
        let mut g = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        if g.is_none() {
            *g = Some(self.open()?);
        }
        Ok(g)
    }

    /// Connects now (to check the address and key).
    pub(crate) fn connect(&self) -> Result<(), ManagerError> {
        self.connection().map(drop)
    }

    /// Sends `req` and waits for its reply.
    pub(crate) fn request(&self, req: &Request) -> Result<Vec<u8>, ManagerError> {
        let mut g = self.connection()?;
        let Some(conn) = g.as_ref() else {
            unreachable!("connection() opened it")
        };
        let gone = |e: crate::ConnectionError| {
            ManagerError::shutdown(format!("the manager at {} went away: {e}", self.address))
        };
        if let Err(e) = conn.send(req) {
            if e.is_too_large() {
                // Refused before anything was written: the connection is fine.
                return Err(ManagerError::bad_request(format!(
                    "the request is too large for the manager: {e}"
                )));
            }
            *g = None;
            return Err(gone(e));
        }
        let r = conn.recv::<Reply>().map_err(gone);
        match r {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err((kind, message))) => Err(ManagerError::new(kind, message)),
            Err(e) => {
                *g = None; // reconnect next time (it will fail if the server is gone)
                Err(e)
            }
        }
    }

    /// Sends `reqs` back to back, at most [`PIPELINE_WINDOW`] ahead of their replies
    /// (the server answers a connection's requests in order), and returns each reply:
    /// one round trip's latency for many requests.
    pub(crate) fn pipeline(
        &self,
        reqs: &[Request],
    ) -> Result<Vec<Result<Vec<u8>, ManagerError>>, ManagerError> {
        let mut g = self.connection()?;
        let Some(conn) = g.as_ref() else {
            unreachable!("connection() opened it")
        };
        let gone = |e: crate::ConnectionError| {
            ManagerError::shutdown(format!("the manager at {} went away: {e}", self.address))
        };
        let mut out = Vec::with_capacity(reqs.len());
        let mut sent = 0;
        let r = (|| {
            while out.len() < reqs.len() {
                while sent < reqs.len() && sent - out.len() < PIPELINE_WINDOW {
                    conn.send(&reqs[sent]).map_err(gone)?;
                    sent += 1;
                }
                let reply = conn.recv::<Reply>().map_err(gone)?;
                out.push(reply.map_err(|(kind, message)| ManagerError::new(kind, message)));
            }
            Ok(())
        })();
        match r {
            Ok(()) => Ok(out),
            Err(e) => {
                *g = None;
                Err(e)
            }
        }
    }

    /// Runs `op` on object `id` and decodes the reply.
    pub(crate) fn call<O: Serialize, R: DeserializeOwned>(
        &self,
        id: u64,
        op: &O,
    ) -> Result<R, ManagerError> {
        let bytes = self.request(&Request::Call {
            id,
            op: encode(op)?,
        })?;
        decode(&bytes)
    }
}

/// A typed object's connection and identity: what every proxy holds. Cloning opens a
/// new connection on first use (as each Python thread has its own); serializing sends
/// the address, key and object id, and the receiving process connects on first use.
pub(crate) struct Handle {
    pub(crate) client: Client,
    pub(crate) id: u64,
    pub(crate) tag: String,
}

impl Handle {
    /// Runs `op` on the object.
    pub(crate) fn call<O: Serialize, R: DeserializeOwned>(
        &self,
        op: &O,
    ) -> Result<R, ManagerError> {
        self.client.call(self.id, op)
    }

    /// Runs every op of `ops` on the object, pipelined; returns each reply decoded.
    pub(crate) fn call_many<O: Serialize, R: DeserializeOwned>(
        &self,
        ops: impl IntoIterator<Item = O>,
    ) -> Result<Vec<Result<R, ManagerError>>, ManagerError> {
        let reqs = ops
            .into_iter()
            .map(|op| {
                Ok(Request::Call {
                    id: self.id,
                    op: encode(&op)?,
                })
            })
            .collect::<Result<Vec<_>, ManagerError>>()?;
        let replies = self.client.pipeline(&reqs)?;
        Ok(replies
            .into_iter()
            .map(|r| r.and_then(|b| decode(&b)))
            .collect())
    }
}

impl Clone for Handle {
    fn clone(&self) -> Self {
        Handle {
            client: self.client.sibling(),
            id: self.id,
            tag: self.tag.clone(),
        }
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("address", &self.client.address)
            .field("id", &self.id)
            .field("type", &self.tag)
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct Wire {
    address: Address,
    key: AuthKey,
    id: u64,
    tag: String,
}

impl Serialize for Handle {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Wire {
            address: self.client.address.clone(),
            key: self.client.key.clone(),
            id: self.id,
            tag: self.tag.clone(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Handle {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = Wire::deserialize(d)?;
        Ok(Handle {
            client: Client::new(w.address, w.key),
            id: w.id,
            tag: w.tag,
        })
    }
}

/// Creates an object of `kind` with tag `tag` and returns its handle (on a new client).
pub(crate) fn create(
    via: &Client,
    kind: super::protocol::ObjKind,
    tag: String,
    init: Vec<u8>,
) -> Result<Handle, ManagerError> {
    let id: u64 = decode(&via.request(&Request::Create {
        kind,
        tag: tag.clone(),
        init,
    })?)?;
    Ok(Handle {
        client: via.sibling(),
        id,
        tag,
    })
}

/// Attaches to object `id`, checking it has type tag `tag`.
pub(crate) fn attach(via: &Client, id: u64, tag: String) -> Result<Handle, ManagerError> {
    via.request(&Request::Attach {
        id,
        tag: tag.clone(),
    })?;
    Ok(Handle {
        client: via.sibling(),
        id,
        tag,
    })
}
