//! Mutual challenge-response authentication with a shared key, as Python's
//! `multiprocessing.connection` does it (`deliver_challenge` / `answer_challenge`):
//! each side sends the other 32 random bytes and expects back their HMAC under the
//! key (here HMAC-SHA256); a wrong answer ends the connection before anything else is
//! read. Until both sides are through, frames are limited to [`AUTH_MAX_FRAME`] bytes,
//! so a peer announcing a huge message is refused before any allocation.

use std::fmt;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::error::{Kind, ManagerError};
use crate::connection::Connection;

/// The largest frame accepted before authentication is complete.
pub(crate) const AUTH_MAX_FRAME: usize = 256;

/// How long either side waits for the other's next authentication message.
pub(crate) const AUTH_TIMEOUT: Duration = Duration::from_secs(10);

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

fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut buf = [0u8; N];
    let mut filled = 0;
    while filled < N {
        let n = rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty())?;
        filled += n;
    }
    Ok(buf)
}

#[derive(Serialize, Deserialize)]
enum Msg {
    Challenge([u8; 32]),
    Answer(Vec<u8>),
    Welcome,
    Failure,
}

fn mac(key: &AuthKey, challenge: &[u8; 32]) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&key.0)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    m.update(challenge);
    m
}

fn refused(message: &str) -> ManagerError {
    ManagerError::new(Kind::AuthFailed, message)
}

fn recv(conn: &Connection) -> Result<Msg, ManagerError> {
    conn.recv_timeout::<Msg>(AUTH_TIMEOUT).map_err(|e| {
        if e.is_eof() {
            refused("the peer closed the connection during authentication")
        } else {
            refused(&format!("authentication failed: {e}"))
        }
    })
}

fn send(conn: &Connection, m: &Msg) -> Result<(), ManagerError> {
    conn.send(m)
        .map_err(|e| refused(&format!("authentication failed: {e}")))
}

/// Challenges the peer: true if it knows the key.
fn deliver_challenge(conn: &Connection, key: &AuthKey) -> Result<(), ManagerError> {
    let challenge = random_bytes::<32>().map_err(|e| ManagerError::io("randomness", e))?;
    send(conn, &Msg::Challenge(challenge))?;
    let ok = match recv(conn)? {
        Msg::Answer(a) => mac(key, &challenge).verify_slice(&a).is_ok(),
        _ => false,
    };
    if ok {
        send(conn, &Msg::Welcome)
    } else {
        let _ = conn.send(&Msg::Failure);
        Err(refused("the peer does not know the authentication key"))
    }
}

/// Answers the peer's challenge.
fn answer_challenge(conn: &Connection, key: &AuthKey) -> Result<(), ManagerError> {
    let Msg::Challenge(c) = recv(conn)? else {
        return Err(refused("the peer did not send a challenge"));
    };
    send(
        conn,
        &Msg::Answer(mac(key, &c).finalize().into_bytes().to_vec()),
    )?;
    match recv(conn)? {
        Msg::Welcome => Ok(()),
        _ => Err(refused("the manager refused the authentication key")),
    }
}

/// The server's side: challenges the client, then answers its challenge. Frames are
/// small until this returns `Ok`.
pub(crate) fn server_side(
    conn: &Connection,
    key: &AuthKey,
    max_frame: usize,
) -> Result<(), ManagerError> {
    conn.set_max_frame(AUTH_MAX_FRAME);
    deliver_challenge(conn, key)?;
    answer_challenge(conn, key)?;
    conn.set_max_frame(max_frame);
    Ok(())
}

/// The client's side: answers the server's challenge, then challenges it.
pub(crate) fn client_side(
    conn: &Connection,
    key: &AuthKey,
    max_frame: usize,
) -> Result<(), ManagerError> {
    conn.set_max_frame(AUTH_MAX_FRAME);
    answer_challenge(conn, key)?;
    deliver_challenge(conn, key)?;
    conn.set_max_frame(max_frame);
    Ok(())
}
