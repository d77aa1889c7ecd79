//! A Redis connection that comes back: made lazily, dropped when it breaks, made again
//! with backoff; and the classification of errors worth retrying.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use redis::{Connection, RedisError, RedisResult};

use crate::error::ClusterError;

/// How long any single command may take before the connection is taken for broken
/// (blocking reads add their block time to it).
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// How long connecting may take (also the retry window of a `connect`).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Locks a mutex, ignoring poison (every state guarded here stays consistent when a
/// holder panics: each update is one assignment).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A lazily (re)made connection to one Redis.
pub(crate) struct Conn {
    client: redis::Client,
    con: Option<Connection>,
    connect_timeout: Duration,
    read_timeout: Duration,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("addr", &self.client.get_connection_info().addr)
            .field("connected", &self.con.is_some())
            .finish()
    }
}

/// Checks a Redis URL (scheme, TLS availability) and makes its client; a `rediss://`
/// URL trusts `root_cert` (PEM) instead of the system's roots when given.
pub(crate) fn client_with(
    url: &str,
    root_cert: Option<&[u8]>,
) -> Result<redis::Client, ClusterError> {
    #[cfg(feature = "tls")]
    if let Some(pem) = root_cert {
        client(url)?; // the checks
        return redis::Client::build_with_tls(
            url,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.to_vec()),
            },
        )
        .map_err(|e| ClusterError::invalid(format!("{url:?}: {e}")));
    }
    let _ = root_cert;
    client(url)
}

/// Checks a Redis URL (scheme, TLS availability) and makes its client.
pub(crate) fn client(url: &str) -> Result<redis::Client, ClusterError> {
    let scheme = url.split("://").next().unwrap_or("");
    match scheme {
        "redis" | "redis+unix" | "unix" => {}
        "rediss" => {
            #[cfg(not(feature = "tls"))]
            return Err(ClusterError::invalid(
                "a rediss:// URL needs concur-cluster's `tls` feature",
            ));
            #[cfg(feature = "tls")]
            {
                // Once per process; an error means another provider is installed,
                // which is as good.
                let _ = rustls::crypto::ring::default_provider().install_default();
            }
        }
        _ => {
            return Err(ClusterError::invalid(format!(
                "not a Redis URL: {url:?} (expected redis://[user:password@]host:port/db)"
            )));
        }
    }
    redis::Client::open(url).map_err(|e| ClusterError::invalid(format!("{url:?}: {e}")))
}

impl Conn {
    /// A connection to the client's server, made at first use.
    pub(crate) fn new(client: redis::Client, connect_timeout: Duration) -> Conn {
        Conn {
            client,
            con: None,
            connect_timeout,
            read_timeout: IO_TIMEOUT,
        }
    }

    /// Reads give up after `t` (plus nothing: set it above a blocking read's time).
    pub(crate) fn set_read_timeout(&mut self, t: Duration) {
        self.read_timeout = t;
        if let Some(c) = &self.con {
            let _ = c.set_read_timeout(Some(t));
        }
    }

    /// The connection, made now if there is none.
    pub(crate) fn get(&mut self) -> RedisResult<&mut Connection> {
        if self.con.is_none() {
            let c = self
                .client
                .get_connection_with_timeout(self.connect_timeout)?;
            c.set_read_timeout(Some(self.read_timeout))?;
            c.set_write_timeout(Some(IO_TIMEOUT))?;
            self.con = Some(c);
        }
        Ok(self.con.as_mut().expect("connected just above"))
    }

    /// Runs `f` on the connection; a connection that broke is dropped (made again by
    /// the next call).
    pub(crate) fn call<T>(
        &mut self,
        f: impl FnOnce(&mut Connection) -> RedisResult<T>,
    ) -> RedisResult<T> {
        let r = self.get().and_then(f);
        if let Err(e) = &r
            && is_broken(e)
        {
            self.con = None;
        }
        r
    }
}

/// The connection is no longer usable.
pub(crate) fn is_broken(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout()
}

/// Worth trying again after a pause: a broken connection, or a server that is starting
/// (loading its data), busy with a script, or not yet a master.
pub(crate) fn is_transient(e: &RedisError) -> bool {
    is_broken(e)
        || matches!(
            e.code(),
            Some("LOADING" | "BUSY" | "TRYAGAIN" | "MASTERDOWN" | "CLUSTERDOWN")
        )
}

/// The "no such script" reply to EVALSHA: the server lost its script cache (it
/// restarted) and the scripts must be loaded again.
pub(crate) fn is_noscript(e: &RedisError) -> bool {
    e.code() == Some("NOSCRIPT")
}

/// The reply to a stream command on a group that does not exist (after a restart
/// without persistence, or before any worker made it).
pub(crate) fn is_nogroup(e: &RedisError) -> bool {
    e.code() == Some("NOGROUP")
}

/// Exponential backoff between attempts: 50 ms doubling up to 2 s.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: Duration::from_millis(50),
        }
    }
}

impl Backoff {
    /// The pause before the next attempt (and doubles the one after).
    pub(crate) fn step(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(2));
        d
    }

    /// Back to the shortest pause (after a success).
    pub(crate) fn reset(&mut self) {
        *self = Backoff::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(client("http://x").unwrap_err().is_invalid());
        assert!(client("redis://127.0.0.1:6379/0").is_ok());
        #[cfg(not(feature = "tls"))]
        assert!(
            client("rediss://127.0.0.1:6379/0")
                .unwrap_err()
                .is_invalid()
        );
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let mut b = Backoff::default();
        let steps: Vec<_> = (0..8).map(|_| b.step().as_millis()).collect();
        assert_eq!(steps, [50, 100, 200, 400, 800, 1600, 2000, 2000]);
        b.reset();
        assert_eq!(b.step().as_millis(), 50);
    }
}
