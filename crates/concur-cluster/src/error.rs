//! [`ClusterError`]: why connecting to, or serving, a cluster failed.

use std::error::Error;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// The URL or a setting is not usable.
    Invalid,
    /// Redis could not be reached, or the connection broke.
    Connection,
    /// Redis refused the password or the user.
    Auth,
    /// Redis answered with an error.
    Redis,
    /// The worker's local executor could not be made.
    Local,
}

/// Why a cluster call failed: a bad URL or setting, an unreachable Redis, a refused
/// password, or an error reply from Redis. Failures of *tasks* are
/// [`TaskError`](concur_core::futures::TaskError)s on their futures, never this.
///
/// ```
/// let e = concur::cluster::RedisExecutor::connect("http://nowhere", "p").unwrap_err();
/// assert!(e.is_invalid());
/// ```
#[derive(Clone)]
pub struct ClusterError {
    kind: Kind,
    message: String,
}

impl ClusterError {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        ClusterError {
            kind: Kind::Invalid,
            message: message.into(),
        }
    }

    pub(crate) fn local(message: impl Into<String>) -> Self {
        ClusterError {
            kind: Kind::Local,
            message: message.into(),
        }
    }

    /// True if the URL, the pool name or a setting is not usable.
    ///
    /// ```
    /// let e = concur::cluster::RedisExecutor::connect("redis://127.0.0.1:1/0", "bad name").unwrap_err();
    /// assert!(e.is_invalid());
    /// ```
    pub fn is_invalid(&self) -> bool {
        self.kind == Kind::Invalid
    }

    /// True if Redis could not be reached (or the connection broke and could not be
    /// made again).
    ///
    /// ```
    /// // Port 1 on loopback: nothing listens there.
    /// let e = concur::cluster::RedisExecutor::builder("redis://127.0.0.1:1/0", "p")
    ///     .connect_timeout(std::time::Duration::from_millis(200))
    ///     .connect()
    ///     .unwrap_err();
    /// assert!(e.is_connection());
    /// ```
    pub fn is_connection(&self) -> bool {
        self.kind == Kind::Connection
    }

    /// True if Redis refused the password or the ACL user of the URL.
    ///
    /// ```
    /// # let e = concur::cluster::RedisExecutor::connect("http://x", "p").unwrap_err();
    /// assert!(!e.is_auth_failed());
    /// ```
    pub fn is_auth_failed(&self) -> bool {
        self.kind == Kind::Auth
    }

    /// True if Redis answered a command with an error (for instance a key of the
    /// pool holding a value of the wrong type).
    ///
    /// ```
    /// # let e = concur::cluster::RedisExecutor::connect("http://x", "p").unwrap_err();
    /// assert!(!e.is_redis());
    /// ```
    pub fn is_redis(&self) -> bool {
        self.kind == Kind::Redis
    }

    /// True if a worker could not make its local executor (the process pool).
    ///
    /// ```
    /// # let e = concur::cluster::RedisExecutor::connect("http://x", "p").unwrap_err();
    /// assert!(!e.is_local());
    /// ```
    pub fn is_local(&self) -> bool {
        self.kind == Kind::Local
    }
}

impl From<redis::RedisError> for ClusterError {
    fn from(e: redis::RedisError) -> Self {
        let kind = if e.kind() == redis::ErrorKind::AuthenticationFailed
            || e.code()
                .is_some_and(|c| c == "WRONGPASS" || c == "NOAUTH" || c == "NOPERM")
        {
            Kind::Auth
        } else if e.is_io_error()
            || e.is_connection_refusal()
            || e.is_connection_dropped()
            || e.is_timeout()
        {
            Kind::Connection
        } else if e.kind() == redis::ErrorKind::InvalidClientConfig {
            Kind::Invalid
        } else {
            Kind::Redis
        };
        ClusterError {
            kind,
            message: e.to_string(),
        }
    }
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            Kind::Invalid => "invalid cluster setting",
            Kind::Connection => "cannot reach Redis",
            Kind::Auth => "Redis refused the credentials",
            Kind::Redis => "Redis error",
            Kind::Local => "the worker's local executor failed",
        };
        write!(f, "{what}: {}", self.message)
    }
}

impl fmt::Debug for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterError")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .finish()
    }
}

impl Error for ClusterError {}
