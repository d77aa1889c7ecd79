//! Mutual challenge-response authentication with a shared key, as Python's
//! `multiprocessing.connection` does it (`deliver_challenge` / `answer_challenge`):
//! each side sends the other 32 random bytes and expects back their HMAC under the
//! key (here HMAC-SHA256); a wrong answer ends the connection before anything else is
//! read. Until both sides are through, frames are limited to [`AUTH_MAX_FRAME`] bytes,
//! so a peer announcing a huge message is refused before any allocation.
//!
//! The server's side runs as a state machine on its acceptor thread (`accept`); this
//! module has the messages, the MAC, and the client's side, which blocks until its
//! deadline. A server that will not take a connection says why with
//! [`Msg::Refused`] instead of its next message, so the client can tell a refusal, an
//! overloaded server and a timed-out handshake from a wrong key.

use std::fmt;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::error::{Kind, ManagerError};
use crate::connection::Connection;

/// The largest frame accepted before authentication is complete.
pub(crate) const AUTH_MAX_FRAME: usize = 256;

/// How long the server gives a client to finish the handshake, by default.
pub(crate) const SERVER_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a client waits for the whole handshake, by default (longer than the
/// server's, so that a server that gives up first is heard saying so).
pub(crate) const CLIENT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The shared secret of a manager and its clients (Python's `authkey`).
///
/// ```
/// use concur::process::AuthKey;
/// let k = AuthKey::from("s3cret");
/// assert_eq!(k.as_bytes(), b"s3cret");
/// assert_ne!(AuthKey::random().unwrap(), AuthKey::random().unwrap());
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthKey(Vec<u8>);

impl AuthKey {
    /// A new random 32-byte key (what `Manager::start` uses).
    ///
    /// # Errors
    /// The OS error if no randomness is available.
    ///
    /// ```
    /// assert_eq!(concur::process::AuthKey::random().unwrap().as_bytes().len(), 32);
    /// ```
    pub fn random() -> std::io::Result<AuthKey> {
        Ok(AuthKey(random_bytes::<32>()?.to_vec()))
    }

    /// The key's bytes.
    ///
    /// ```
    /// assert_eq!(concur::process::AuthKey::from(vec![1, 2]).as_bytes(), [1, 2]);
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<&str> for AuthKey {
    fn from(s: &str) -> Self {
        AuthKey(s.as_bytes().to_vec())
    }
}

impl From<Vec<u8>> for AuthKey {
    fn from(v: Vec<u8>) -> Self {
        AuthKey(v)
    }
}

impl From<&[u8]> for AuthKey {
    fn from(v: &[u8]) -> Self {
        AuthKey(v.to_vec())
    }
}

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthKey(<hidden>)")
    }
}

pub(crate) fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut buf = [0u8; N];
    let mut filled = 0;
    while filled < N {
        let n = rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty())?;
        filled += n;
    }
    Ok(buf)
}

/// Why a server will not take a connection (sent in [`Msg::Refused`]).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// At the configured cap on connections.
    TooManyConnections,
    /// Out of descriptors or threads, or this pending handshake was dropped to make
    /// room for newer ones.
    Overloaded,
    /// The client did not finish the handshake by the server's deadline.
    HandshakeTimeout,
    /// The server is shutting down.
    ShuttingDown,
}

impl Refusal {
    /// The error a client reports for it.
    pub(crate) fn error(self) -> ManagerError {
        match self {
            Refusal::TooManyConnections => ManagerError::new(
                Kind::Refused,
                "the manager refused the connection: it is at its connection limit",
            ),
            Refusal::Overloaded => ManagerError::new(
                Kind::Overloaded,
                "the manager is overloaded (out of descriptors or threads, or too many \
                 pending handshakes): try again later",
            ),
            Refusal::HandshakeTimeout => ManagerError::new(
                Kind::HandshakeTimeout,
                "the manager gave up: the handshake did not finish by its deadline",
            ),
            Refusal::ShuttingDown => ManagerError::shutdown("the manager is shutting down"),
        }
    }
}

/// The handshake's messages (the variant order is the wire format: add at the end).
#[derive(Serialize, Deserialize, Debug)]
pub(crate) enum Msg {
    Challenge([u8; 32]),
    Answer(Vec<u8>),
    Welcome,
    Failure,
    Refused(Refusal),
}

fn mac(key: &AuthKey, challenge: &[u8; 32]) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&key.0)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    m.update(challenge);
    m
}

/// The answer to `challenge` under `key`.
pub(crate) fn answer(key: &AuthKey, challenge: &[u8; 32]) -> Vec<u8> {
    mac(key, challenge).finalize().into_bytes().to_vec()
}

/// Whether `answer` is the right one to `challenge` (compared in constant time).
pub(crate) fn verify(key: &AuthKey, challenge: &[u8; 32], answer: &[u8]) -> bool {
    mac(key, challenge).verify_slice(answer).is_ok()
}

fn wrong_key(message: &str) -> ManagerError {
    ManagerError::new(Kind::AuthFailed, message)
}

/// The client's next handshake message, by `deadline`; a refusal is its error.
fn recv(conn: &Connection, deadline: Instant, timeout: Duration) -> Result<Msg, ManagerError> {
    match conn.recv_deadline::<Msg>(deadline) {
        Ok(Msg::Refused(r)) => Err(r.error()),
        Ok(m) => Ok(m),
        Err(e) if e.is_timeout() => Err(ManagerError::new(
            Kind::HandshakeTimeout,
            format!("the manager did not finish the handshake within {timeout:?}"),
        )),
        Err(e) if e.is_eof() => Err(ManagerError::shutdown(
            "the manager closed the connection during the handshake",
        )),
        Err(e) => Err(ManagerError::new(
            Kind::Io,
            format!("not a manager's handshake: {e}"),
        )),
    }
}

fn send(conn: &Connection, m: &Msg) -> Result<(), ManagerError> {
    conn.send(m).map_err(|e| {
        if e.is_eof() {
            ManagerError::shutdown("the manager closed the connection during the handshake")
        } else {
            ManagerError::new(Kind::Io, format!("sending the handshake: {e}"))
        }
    })
}

/// The client's side: answers the server's challenge, then challenges it, all by
/// `timeout` from now. Frames are small until this returns `Ok`.
///
/// # Errors
/// [`is_auth_failed`](ManagerError::is_auth_failed) only for a wrong key (on either
/// side); a refusal, an overloaded server and a timeout have their own kinds.
pub(crate) fn client_side(
    conn: &Connection,
    key: &AuthKey,
    max_frame: usize,
    timeout: Duration,
) -> Result<(), ManagerError> {
    let deadline = Instant::now() + timeout;
    conn.set_max_frame(AUTH_MAX_FRAME);
    // Answer the server's challenge.
    let Msg::Challenge(c) = recv(conn, deadline, timeout)? else {
        return Err(ManagerError::new(
            Kind::Io,
            "not a manager's handshake: it did not send a challenge",
        ));
    };
    send(conn, &Msg::Answer(answer(key, &c)))?;
    match recv(conn, deadline, timeout)? {
        Msg::Welcome => {}
        Msg::Failure => return Err(wrong_key("the manager refused the authentication key")),
        m => {
            return Err(ManagerError::new(
                Kind::Io,
                format!("not a manager's handshake: {m:?} instead of a verdict"),
            ));
        }
    }
    // Challenge the server.
    let challenge = random_bytes::<32>().map_err(|e| ManagerError::io("randomness", e))?;
    send(conn, &Msg::Challenge(challenge))?;
    let ok = match recv(conn, deadline, timeout)? {
        Msg::Answer(a) => verify(key, &challenge, &a),
        _ => false,
    };
    if !ok {
        let _ = conn.send(&Msg::Failure);
        return Err(wrong_key(
            "the manager does not know the authentication key",
        ));
    }
    send(conn, &Msg::Welcome)?;
    conn.set_max_frame(max_frame);
    Ok(())
}
