//! The manager's server: a listener, one thread per client connection (so a client
//! blocked in `queue.get()` or `lock.acquire()` holds up nobody else, as in Python's
//! `multiprocessing.managers.Server`), and the table of shared objects.
//!
//! A connection is authenticated before anything else is read from it (frames are
//! limited to a few hundred bytes until then); a refusal is logged and the connection
//! closed. After that a malformed or unknown request is answered with an error and the
//! connection goes on; only a frame that breaks the framing (too large, bad header)
//! ends it, after an error reply. When a connection ends, every object is told, so
//! that locks and semaphores its client held are released.

use std::collections::HashMap;
use std::io;
use std::net::TcpListener;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use super::auth::{self, AUTH_TIMEOUT, AuthKey};
use super::error::{Kind, ManagerError};
use super::object::{Ctx, Object};
use super::protocol::{Hello, MAX_FRAME, ObjKind, Reply, RequestRef, encode};
use crate::connection::Connection;
use crate::process::protocol::Identity;

/// Makes an object of `kind`.
fn make(kind: &ObjKind, tag: String, init: Vec<u8>) -> Result<Arc<dyn Object>, ManagerError> {
    super::objects::make(kind, tag, init)
}

/// A listening socket.
pub(crate) enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

impl Listener {
    fn accept(&self) -> io::Result<OwnedFd> {
        match self {
            Listener::Unix(l) => l.accept().map(|(s, _)| OwnedFd::from(s)),
            Listener::Tcp(l) => l.accept().map(|(s, _)| {
                let _ = s.set_nodelay(true);
                OwnedFd::from(s)
            }),
        }
    }

    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Listener::Unix(l) => l.as_fd(),
            Listener::Tcp(l) => l.as_fd(),
        }
    }
}

/// The server's state, shared by its connection threads.
pub(crate) struct Server {
    objects: RwLock<HashMap<u64, Arc<dyn Object>>>,
    next_id: AtomicU64,
    next_client: AtomicU64,
    identity: Option<Identity>,
    key: AuthKey,
    stopping: AtomicBool,
    /// A duplicate of the listening socket, shut down to end `accept`.
    listener: OwnedFd,
    /// Duplicates of the live connections, shut down when the server stops.
    conns: std::sync::Mutex<HashMap<u64, OwnedFd>>,
}

impl Server {
    /// Whether the server is stopping.
    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn object(&self, id: u64) -> Result<Arc<dyn Object>, ManagerError> {
        self.objects
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
            .ok_or_else(|| {
                ManagerError::new(Kind::Missing, format!("no object {id} on this manager"))
            })
    }

    fn handle(
        &self,
        ctx: &Ctx<'_>,
        cache: &mut HashMap<u64, Arc<dyn Object>>,
        req: RequestRef<'_>,
    ) -> Result<Vec<u8>, ManagerError> {
        match req {
            RequestRef::Create { kind, tag, init } => {
                let obj = make(&kind, tag, init)?;
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                self.objects
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(id, obj);
                encode(&id)
            }
            RequestRef::Attach { id, tag } => {
                let obj = self.object(id)?;
                if obj.tag() != tag {
                    return Err(ManagerError::wrong_type(format!(
                        "object {id} is a {}, not a {tag}",
                        obj.tag()
                    )));
                }
                encode(&())
            }
            RequestRef::Call { id, op } => {
                // Objects live as long as the server: a connection keeps the ones it
                // used at hand instead of looking them up (and cloning) every call.
                let obj = match cache.get(&id) {
                    Some(o) => o,
                    None => cache.entry(id).or_insert(self.object(id)?),
                };
                obj.call(ctx, op)
            }
            RequestRef::Shutdown => {
                self.stop(ctx.client);
                encode(&())
            }
        }
    }

    /// Stops the server: no more connections or requests; every other connection is
    /// shut down (its thread then ends) and blocked calls are woken.
    fn stop(&self, requester: u64) {
        if self.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        for o in self
            .objects
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
        {
            o.stop();
        }
        for (id, fd) in self
            .conns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            if *id != requester {
                let _ = rustix::net::shutdown(fd, rustix::net::Shutdown::Both);
            }
        }
        // Ends the accept loop.
        let _ = rustix::net::shutdown(&self.listener, rustix::net::Shutdown::Both);
    }

    fn client_gone(&self, client: u64) {
        let objects: Vec<Arc<dyn Object>> = self
            .objects
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for o in objects {
            o.client_gone(client);
        }
    }

    /// Serves one connection until it ends.
    fn connection(&self, fd: OwnedFd) {
        let client = self.next_client.fetch_add(1, Ordering::Relaxed);
        if let Ok(dup) = fd.try_clone() {
            self.conns
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(client, dup);
        }
        if !self.stopping() {
            self.serve_connection(client, Connection::from_fd(fd));
        }
        self.conns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&client);
    }

    fn serve_connection(&self, client: u64, conn: Connection) {
        if let Err(e) = auth::server_side(&conn, &self.key, MAX_FRAME) {
            tracing::warn!(client, error = %e, "manager: refused a connection that failed authentication");
            return;
        }
        let same_binary = match conn.recv_timeout::<Hello>(AUTH_TIMEOUT) {
            Ok(h) => self.identity.as_ref() == Some(&h.identity),
            Err(_) => return,
        };
        let ctx = Ctx {
            client,
            same_binary,
            stopping: &self.stopping,
            conn: &conn,
        };
        let mut cache = HashMap::new();
        loop {
            let reply = conn.recv_frame_with(None, |body, _fds| {
                if self.stopping() {
                    return Err(ManagerError::shutdown("the manager is shutting down"));
                }
                match postcard::from_bytes::<RequestRef<'_>>(body) {
                    Ok(r) => self.handle(&ctx, &mut cache, r),
                    Err(e) => Err(ManagerError::bad_request(format!(
                        "malformed or unknown request: {e}"
                    ))),
                }
            });
            let (reply, fatal): (Reply, bool) = match reply {
                Ok(r) => (r.map_err(|e| (e.kind(), e.message().to_owned())), false),
                Err(e) if e.is_eof() => break,
                Err(e) => {
                    tracing::warn!(client, error = %e, "manager: a client broke the framing");
                    (Err((Kind::BadRequest, format!("bad frame: {e}"))), true)
                }
            };
            if conn.send(&reply).is_err() || fatal {
                break;
            }
            if self.stopping() {
                break;
            }
        }
        self.client_gone(client);
    }
}

/// Serves on `listener` until a client asks the server to stop (or the listener
/// fails). Each connection runs on its own thread.
pub(crate) fn serve(listener: Listener, key: AuthKey) -> io::Result<()> {
    let dup = listener.fd().try_clone_to_owned()?;
    let server = Arc::new(Server {
        objects: RwLock::new(HashMap::new()),
        next_id: AtomicU64::new(1),
        next_client: AtomicU64::new(1),
        identity: Identity::current().ok(),
        key,
        stopping: AtomicBool::new(false),
        listener: dup,
        conns: std::sync::Mutex::new(HashMap::new()),
    });
    loop {
        let fd = match listener.accept() {
            Ok(fd) => fd,
            Err(_) if server.stopping() => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if e.raw_os_error() == Some(libc::EMFILE)
                    || e.raw_os_error() == Some(libc::ENFILE) =>
            {
                tracing::error!(error = %e, "manager: out of descriptors; refusing connections for a moment");
                std::thread::sleep(std::time::Duration::from_millis(50));
                continue;
            }
            Err(e) => return Err(e),
        };
        if server.stopping() {
            return Ok(());
        }
        let s = server.clone();
        let spawned = std::thread::Builder::new()
            .name("concur-manager-conn".to_owned())
            .spawn(move || s.connection(fd));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "manager: could not start a connection thread");
        }
    }
}
