//! The manager's acceptor: one thread and one epoll set that accept connections and
//! run every pending authentication handshake as a small state machine. An
//! unauthenticated peer costs the server one descriptor and a few hundred bytes for
//! at most the handshake deadline, never a thread; only a client that has proved it
//! knows the key is handed to a thread of its own (by the [`Host`], the server).
//!
//! Bounds, all configurable ([`Limits`]):
//! - a handshake must finish within `handshake_timeout` (2 s by default), or the peer
//!   is told [`Refusal::HandshakeTimeout`] and closed;
//! - at most `max_pending` handshakes at once: a new connection beyond that drops the
//!   *oldest* pending one (told [`Refusal::Overloaded`]), so a flood of idle sockets
//!   cannot keep a real client out: it only ever pushes out the flood's own oldest;
//! - at most `max_connections` authenticated connections: beyond that a new one is
//!   told [`Refusal::TooManyConnections`], at once (before any work) and again at the
//!   end of its handshake (if the cap filled up meanwhile).
//!
//! Out of descriptors (`EMFILE`), the acceptor first drops the oldest pending
//! handshake; with none, it closes a reserve descriptor kept for the purpose, accepts
//! the waiting connection, tells it [`Refusal::Overloaded`], closes it and opens the
//! reserve again, so the backlog never stalls and the peer hears why (the trick of
//! libev's and nginx's acceptors).
//!
//! The server's messages during a handshake are three, each under 100 bytes, on a
//! fresh socket whose send buffer holds kilobytes: sending them never blocks the
//! acceptor, whatever the peer does.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::TcpListener;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use rustix::event::epoll;
use serde::{Deserialize, Serialize};

use super::auth::{
    self, AUTH_MAX_FRAME, AuthKey, Msg, Refusal, SERVER_HANDSHAKE_TIMEOUT, random_bytes,
};
use super::protocol::Hello;
use crate::connection::Connection;
use crate::process::protocol::Identity;

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

    fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            Listener::Unix(l) => l.set_nonblocking(true),
            Listener::Tcp(l) => l.set_nonblocking(true),
        }
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Unix(l) => l.as_fd(),
            Listener::Tcp(l) => l.as_fd(),
        }
    }
}

/// What the server allows unauthenticated peers and connections in all.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// How long a handshake may take, from the connection being accepted.
    pub(crate) handshake_timeout: Duration,
    /// Handshakes pending at once, at most (the oldest is dropped beyond).
    pub(crate) max_pending: usize,
    /// Authenticated connections at once, at most (a new one is refused beyond).
    pub(crate) max_connections: usize,
    /// Bytes of partly received requests that all connections hold together, at most
    /// (beyond a small allowance each).
    pub(crate) max_partial_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            handshake_timeout: SERVER_HANDSHAKE_TIMEOUT,
            max_pending: 1024,
            max_connections: 4096,
            max_partial_bytes: 512 << 20,
        }
    }
}

/// What the acceptor needs of the server.
pub(crate) trait Host {
    /// Whether the server is stopping (the acceptor returns).
    fn stopping(&self) -> bool;
    /// Authenticated connections being served now.
    fn connections(&self) -> usize;
    /// Takes an authenticated connection (its handshake and hello done).
    fn admit(&self, conn: Connection, same_binary: bool);
}

/// Where a pending handshake is (the server challenges first, then answers).
enum State {
    /// Sent our challenge; waiting for its answer.
    Answer([u8; 32]),
    /// Welcomed the client; waiting for its challenge.
    Challenge,
    /// Answered the client's challenge; waiting for its verdict.
    Verdict,
    /// Authenticated both ways; waiting for the client's hello.
    Hello,
}

struct Pending {
    conn: Connection,
    state: State,
    deadline: Instant,
}

/// What one message did to a handshake.
enum Next {
    Continue,
    Done(bool),
    Close(Option<Msg>),
}

const LISTENER: u64 = 0;
const WAKE: u64 = 1;
/// The longest the acceptor sleeps without looking at the stopping flag.
const MAX_SLEEP: Duration = Duration::from_secs(1);

struct Acceptor<'a> {
    listener: &'a Listener,
    key: &'a AuthKey,
    identity: Option<&'a Identity>,
    limits: Limits,
    host: &'a dyn Host,
    epoll: OwnedFd,
    pending: HashMap<u64, Pending>,
    /// Pending handshakes in order of arrival (so of deadline); may name finished ones.
    order: VecDeque<u64>,
    next_token: u64,
    reserve: Option<OwnedFd>,
    last_emfile_log: Option<Instant>,
}

/// Accepts on `listener` and runs the handshakes until the host stops (`wake` becomes
/// readable when it does).
pub(crate) fn run(
    listener: &Listener,
    wake: BorrowedFd<'_>,
    key: &AuthKey,
    identity: Option<&Identity>,
    limits: Limits,
    host: &dyn Host,
) -> io::Result<()> {
    listener.set_nonblocking()?;
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    epoll::add(
        &ep,
        listener.fd(),
        epoll::EventData::new_u64(LISTENER),
        epoll::EventFlags::IN,
    )?;
    epoll::add(
        &ep,
        wake,
        epoll::EventData::new_u64(WAKE),
        epoll::EventFlags::IN,
    )?;
    let mut a = Acceptor {
        listener,
        key,
        identity,
        limits,
        host,
        epoll: ep,
        pending: HashMap::new(),
        order: VecDeque::new(),
        next_token: 2,
        reserve: open_reserve(),
        last_emfile_log: None,
    };
    a.serve()
}

fn open_reserve() -> Option<OwnedFd> {
    std::fs::File::open("/dev/null").ok().map(OwnedFd::from)
}

/// Tells `conn` why it is being closed (best effort), then closes it.
fn refuse(conn: Connection, why: Refusal) {
    let _ = conn.send(&Msg::Refused(why));
}

impl Acceptor<'_> {
    fn serve(&mut self) -> io::Result<()> {
        let mut events: Vec<epoll::Event> = Vec::with_capacity(256);
        loop {
            if self.host.stopping() {
                for (_, p) in self.pending.drain() {
                    refuse(p.conn, Refusal::ShuttingDown);
                }
                return Ok(());
            }
            let sleep = self.next_deadline().map_or(MAX_SLEEP, |d| {
                d.saturating_duration_since(Instant::now()).min(MAX_SLEEP)
            });
            // Round up so that a wait never ends just before a deadline.
            let sleep = sleep + Duration::from_millis(1);
            let ts = rustix::time::Timespec {
                tv_sec: sleep.as_secs() as _,
                tv_nsec: sleep.subsec_nanos() as _,
            };
            events.clear();
            match epoll::wait(
                &self.epoll,
                rustix::buffer::spare_capacity(&mut events),
                Some(&ts),
            ) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
            for ev in &events {
                let token = { ev.data }.u64();
                match token {
                    LISTENER => self.accept_all()?,
                    WAKE => {}
                    t => self.advance(t),
                }
            }
            self.expire(Instant::now());
        }
    }

    /// The deadline of the oldest live pending handshake (dropping finished ones from
    /// the front of the order).
    fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(&t) = self.order.front() {
            match self.pending.get(&t) {
                Some(p) => return Some(p.deadline),
                None => {
                    self.order.pop_front();
                }
            }
        }
        None
    }

    fn expire(&mut self, now: Instant) {
        while let Some(d) = self.next_deadline() {
            if d > now {
                break;
            }
            let t = self.order.pop_front().unwrap_or_else(|| unreachable!());
            tracing::debug!("manager: a handshake timed out");
            self.close(t, Some(Msg::Refused(Refusal::HandshakeTimeout)));
        }
    }

    /// Drops the oldest pending handshake, telling it the server is overloaded; false
    /// if there is none.
    fn evict_oldest(&mut self) -> bool {
        if self.next_deadline().is_none() {
            return false;
        }
        let t = self.order.pop_front().unwrap_or_else(|| unreachable!());
        self.close(t, Some(Msg::Refused(Refusal::Overloaded)));
        true
    }

    fn close(&mut self, token: u64, last: Option<Msg>) {
        if let Some(p) = self.pending.remove(&token) {
            let _ = epoll::delete(&self.epoll, &p.conn);
            if let Some(m) = last {
                let _ = p.conn.send(&m);
            }
        }
    }

    fn accept_all(&mut self) -> io::Result<()> {
        loop {
            match self.listener.accept() {
                Ok(fd) => self.start(fd),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e)
                    if e.raw_os_error() == Some(libc::EMFILE)
                        || e.raw_os_error() == Some(libc::ENFILE) =>
                {
                    if !self.out_of_descriptors(&e) {
                        return Ok(());
                    }
                }
                Err(_) if self.host.stopping() => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Makes room for the connection waiting in the backlog; false if none could be
    /// made (the acceptor then waits for its next wake-up).
    fn out_of_descriptors(&mut self, e: &io::Error) -> bool {
        let now = Instant::now();
        if self
            .last_emfile_log
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
        {
            self.last_emfile_log = Some(now);
            tracing::warn!(error = %e, pending = self.pending.len(),
                "manager: out of descriptors; dropping the oldest handshakes and refusing new connections");
        }
        if self.evict_oldest() {
            return true;
        }
        if self.reserve.take().is_some() {
            if let Ok(fd) = self.listener.accept() {
                refuse(Connection::from_fd(fd), Refusal::Overloaded);
            }
            self.reserve = open_reserve();
            return true;
        }
        // Nothing to give back: let the descriptors held by served connections free
        // up (level-triggered, the listener wakes us again at once otherwise).
        std::thread::sleep(Duration::from_millis(10));
        self.reserve = open_reserve();
        false
    }

    /// A new connection: refused at once if the server is full, otherwise challenged.
    fn start(&mut self, fd: OwnedFd) {
        let conn = Connection::from_fd(fd);
        if self.host.stopping() {
            return refuse(conn, Refusal::ShuttingDown);
        }
        if self.host.connections() >= self.limits.max_connections {
            return refuse(conn, Refusal::TooManyConnections);
        }
        while self.pending.len() >= self.limits.max_pending.max(1) {
            if !self.evict_oldest() {
                break;
            }
        }
        conn.set_max_frame(AUTH_MAX_FRAME);
        let Ok(challenge) = random_bytes::<32>() else {
            return refuse(conn, Refusal::Overloaded);
        };
        if conn.send(&Msg::Challenge(challenge)).is_err() {
            return;
        }
        let token = self.next_token;
        self.next_token += 1;
        if epoll::add(
            &self.epoll,
            &conn,
            epoll::EventData::new_u64(token),
            epoll::EventFlags::IN | epoll::EventFlags::RDHUP,
        )
        .is_err()
        {
            return refuse(conn, Refusal::Overloaded);
        }
        self.pending.insert(
            token,
            Pending {
                conn,
                state: State::Answer(challenge),
                deadline: Instant::now() + self.limits.handshake_timeout,
            },
        );
        self.order.push_back(token);
    }

    /// Reads what handshake `token` sent, one message at a time.
    fn advance(&mut self, token: u64) {
        loop {
            let Some(p) = self.pending.get_mut(&token) else {
                return;
            };
            // A handshake message carries no descriptors: one that does is not a client.
            let r = p
                .conn
                .try_recv_frame_with(|body, fds| fds.is_empty().then(|| body.to_vec()));
            if p.conn.queued_fds() > 0 {
                // Descriptors sent ahead of any frame: they would sit in this process's
                // table until the deadline. A client never sends any while
                // authenticating.
                return self.close(token, None);
            }
            let body = match r {
                Ok(None) => return, // wait for more
                Ok(Some(Some(body))) => body,
                Ok(Some(None)) | Err(_) => {
                    // Descriptors, a hang-up, a broken frame: not a client of ours.
                    return self.close(token, None);
                }
            };
            match self.step(token, &body) {
                Next::Continue => {}
                Next::Close(last) => return self.close(token, last),
                Next::Done(same_binary) => {
                    let Some(p) = self.pending.remove(&token) else {
                        return;
                    };
                    let _ = epoll::delete(&self.epoll, &p.conn);
                    return self.host.admit(p.conn, same_binary);
                }
            }
        }
    }

    /// One message of handshake `token`.
    fn step(&mut self, token: u64, body: &[u8]) -> Next {
        let connections = self.host.connections();
        let (key, identity, max_connections) =
            (self.key, self.identity, self.limits.max_connections);
        let Some(p) = self.pending.get_mut(&token) else {
            return Next::Close(None);
        };
        if matches!(p.state, State::Hello) {
            return match postcard::from_bytes::<Hello>(body) {
                Ok(h) => Next::Done(identity == Some(&h.identity)),
                Err(_) => Next::Close(None),
            };
        }
        let Ok(msg) = postcard::from_bytes::<Msg>(body) else {
            return Next::Close(None);
        };
        match (&p.state, msg) {
            (State::Answer(c), Msg::Answer(a)) => {
                if auth::verify(key, c, &a) {
                    p.state = State::Challenge;
                    match p.conn.send(&Msg::Welcome) {
                        Ok(()) => Next::Continue,
                        Err(_) => Next::Close(None),
                    }
                } else {
                    tracing::warn!(
                        "manager: refused a connection that failed authentication (a wrong key)"
                    );
                    Next::Close(Some(Msg::Failure))
                }
            }
            (State::Challenge, Msg::Challenge(c)) => {
                if connections >= max_connections {
                    return Next::Close(Some(Msg::Refused(Refusal::TooManyConnections)));
                }
                p.state = State::Verdict;
                match p.conn.send(&Msg::Answer(auth::answer(key, &c))) {
                    Ok(()) => Next::Continue,
                    Err(_) => Next::Close(None),
                }
            }
            (State::Verdict, Msg::Welcome) => {
                p.state = State::Hello;
                Next::Continue
            }
            (State::Verdict, Msg::Failure) => {
                tracing::warn!("manager: a client refused this server's key");
                Next::Close(None)
            }
            _ => Next::Close(None),
        }
    }
}
