//! The manager's server: an acceptor thread that authenticates new connections
//! without a thread each (`accept`), one thread per *authenticated* connection (so a
//! client blocked in `queue.get()` or `lock.acquire()` holds up nobody else, as in
//! Python's `multiprocessing.managers.Server`), and the table of shared objects.
//!
//! After authentication a malformed or unknown request is answered with an error and
//! the connection goes on; only a frame that breaks the framing (too large, bad
//! header) or that the server has no memory budget left for ends it, after an error
//! reply. When a connection ends, every object is told, so that locks and semaphores
//! its client held are released.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use super::accept::{self, Host, Limits, Listener};
use super::auth::AuthKey;
use super::error::{Kind, ManagerError};
use super::object::{Ctx, Object};
use super::protocol::{MAX_FRAME, ObjKind, Reply, RequestRef, encode};
use crate::connection::{Budget, Connection};
use crate::process::protocol::Identity;

/// Makes an object of `kind`.
fn make(kind: &ObjKind, tag: String, init: Vec<u8>) -> Result<Arc<dyn Object>, ManagerError> {
    super::objects::make(kind, tag, init)
}

/// The server's state, shared by its connection threads.
pub(crate) struct Server {
    objects: RwLock<HashMap<u64, Arc<dyn Object>>>,
    next_id: AtomicU64,
    next_client: AtomicU64,
    stopping: AtomicBool,
    /// An eventfd the acceptor waits on with its sockets: written to stop it.
    wake: OwnedFd,
    /// The live authenticated connections, shut down when the server stops.
    conns: std::sync::Mutex<HashMap<u64, Arc<Connection>>>,
    /// Bytes held in partly received requests, all connections together.
    budget: Arc<Budget>,
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
        for (id, conn) in self
            .conns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            if *id != requester {
                let _ = rustix::net::shutdown(conn.as_fd(), rustix::net::Shutdown::Both);
            }
        }
        // Wakes the acceptor, which then sees the flag and returns.
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
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

    /// Serves one authenticated connection until it ends.
    fn serve_connection(&self, client: u64, conn: &Connection, same_binary: bool) {
        let ctx = Ctx {
            client,
            same_binary,
            stopping: &self.stopping,
            conn,
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
                Err(e) if e.is_over_budget() => {
                    tracing::warn!(client, error = %e, "manager: out of memory for partly received requests; dropping a connection");
                    (
                        Err((Kind::Overloaded, format!("the manager is overloaded: {e}"))),
                        true,
                    )
                }
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

/// Serves one authenticated connection on its own thread, registered for `stop`.
impl Host for Arc<Server> {
    fn stopping(&self) -> bool {
        Server::stopping(self)
    }

    fn connections(&self) -> usize {
        self.conns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn admit(&self, conn: Connection, same_binary: bool) {
        conn.set_max_frame(MAX_FRAME);
        conn.set_budget(self.budget.clone());
        let client = self.next_client.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(conn);
        self.conns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(client, conn.clone());
        let s = self.clone();
        let c = conn.clone();
        let spawned = std::thread::Builder::new()
            .name("concur-manager-conn".to_owned())
            .spawn(move || {
                if !s.stopping() {
                    s.serve_connection(client, &c, same_binary);
                }
                s.conns
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&client);
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "manager: could not start a connection thread");
            self.conns
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&client);
            let reply: Reply = Err((
                Kind::Overloaded,
                format!("the manager is overloaded: it could not start a thread: {e}"),
            ));
            let _ = conn.send(&reply);
        }
    }
}

/// Raises this process's soft limit on open descriptors to its hard limit (a server
/// of many connections needs them; the hard limit is what the administrator allows).
fn raise_nofile_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let l = getrlimit(Resource::Nofile);
    if l.current != l.maximum {
        let raised = Rlimit {
            current: l.maximum,
            maximum: l.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => {
                tracing::debug!(from = ?l.current, to = ?l.maximum, "manager: raised the descriptor limit")
            }
            Err(e) => tracing::warn!(error = %e, "manager: could not raise the descriptor limit"),
        }
    }
}

/// Serves on `listener` until a client asks the server to stop (or the listener
/// fails). Connections are authenticated by the acceptor on this thread; each
/// authenticated one runs on its own thread.
pub(crate) fn serve(listener: Listener, key: AuthKey, limits: Limits) -> io::Result<()> {
    raise_nofile_limit();
    let wake = rustix::event::eventfd(
        0,
        rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
    )?;
    let server = Arc::new(Server {
        objects: RwLock::new(HashMap::new()),
        next_id: AtomicU64::new(1),
        next_client: AtomicU64::new(1),
        stopping: AtomicBool::new(false),
        wake,
        conns: std::sync::Mutex::new(HashMap::new()),
        budget: Budget::new(limits.max_partial_bytes),
    });
    let identity = Identity::current().ok();
    let r = accept::run(
        &listener,
        server.wake.as_fd(),
        &key,
        identity.as_ref(),
        limits,
        &server,
    );
    if r.is_err() {
        server.stop(0);
    }
    r
}
