//! The Redis keys of one pool. Every key of pool `P` starts with `concur:P:`.
//!
//! | key | type | what |
//! |---|---|---|
//! | `concur:P:tasks` | stream, group `workers` | the task entries; never trimmed by length: settled entries are cut off below the oldest one still pending or undelivered |
//! | `concur:P:dead` | stream | dead letters: the entry's fields plus `cause_*` fields |
//! | `concur:P:r:<caller>` | stream | results for one caller (`RedisExecutor`), trimmed by age and expiring with the result time-to-live |
//! | `concur:P:cancel:<task>` | string, with TTL | a cancel request (also published on `concur:P:cancel`) |
//! | `concur:P:worker:<consumer>` | string, TTL = lease | a live worker's liveness key (its description as JSON-like text) |
//! | `concur:P:workers` | set | consumer names of workers seen (for `status`) |
//! | `concur:P:config` | hash | pool settings: `lease_ms` |
//! | `concur:P:stats` | hash | counters: `completed`, `failed`, `cancelled`, `deadline`, `mismatch`, `late`, `retried`, `dead`, `bad` |

use crate::error::ClusterError;

/// The consumer group every worker of a pool reads the task stream through.
pub(crate) const GROUP: &str = "workers";

/// The longest pool name accepted.
pub(crate) const MAX_POOL_NAME: usize = 200;

/// The keys of one pool.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    /// The keys of pool `pool`: a non-empty name of at most [`MAX_POOL_NAME`] bytes with
    /// no whitespace, control characters or `:`.
    pub(crate) fn new(pool: &str) -> Result<Keys, ClusterError> {
        if pool.is_empty()
            || pool.len() > MAX_POOL_NAME
            || pool
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == ':')
        {
            return Err(ClusterError::invalid(format!(
                "a pool name is 1 to {MAX_POOL_NAME} bytes without spaces, control characters or ':' (got {pool:?})"
            )));
        }
        Ok(Keys {
            prefix: format!("concur:{pool}:"),
        })
    }

    pub(crate) fn tasks(&self) -> String {
        format!("{}tasks", self.prefix)
    }

    pub(crate) fn dead(&self) -> String {
        format!("{}dead", self.prefix)
    }

    pub(crate) fn results(&self, caller: &str) -> String {
        format!("{}r:{caller}", self.prefix)
    }

    /// True if `key` is a result stream of this pool (what a worker accepts as an
    /// entry's `reply`).
    pub(crate) fn is_results(&self, key: &str) -> bool {
        key.strip_prefix(&self.prefix)
            .and_then(|rest| rest.strip_prefix("r:"))
            .is_some_and(|caller| !caller.is_empty() && caller.len() <= 128)
    }

    pub(crate) fn cancel(&self, task: &str) -> String {
        format!("{}cancel:{task}", self.prefix)
    }

    pub(crate) fn cancel_channel(&self) -> String {
        format!("{}cancel", self.prefix)
    }

    pub(crate) fn worker(&self, consumer: &str) -> String {
        format!("{}worker:{consumer}", self.prefix)
    }

    pub(crate) fn workers(&self) -> String {
        format!("{}workers", self.prefix)
    }

    pub(crate) fn config(&self) -> String {
        format!("{}config", self.prefix)
    }

    pub(crate) fn stats(&self) -> String {
        format!("{}stats", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_names_are_checked() {
        assert!(Keys::new("").is_err());
        assert!(Keys::new("a b").is_err());
        assert!(Keys::new("a:b").is_err());
        assert!(Keys::new(&"x".repeat(MAX_POOL_NAME + 1)).is_err());
        let k = Keys::new("render").unwrap();
        assert_eq!(k.tasks(), "concur:render:tasks");
        assert!(k.is_results(&k.results("c1")));
        assert!(!k.is_results("concur:other:r:c1"));
        assert!(!k.is_results("concur:render:r:"));
        assert!(!k.is_results("concur:render:tasks"));
    }
}
