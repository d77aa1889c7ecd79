//! Timeouts and deadlines: how every `*_timeout(Duration)` in concur becomes its
//! `*_deadline(Instant)` twin, written once here and used by every tier (the process
//! tier and the cluster tier call it too).
//!
//! A timeout too large to represent as an `Instant` means "wait forever": the deadline
//! is then `None`. So `op_timeout(t)` is `op_until(deadline_after(t))` for an internal
//! `op_until(Option<Instant>)`, and `op_deadline(d)` is `op_until(Some(d))`.
//!
//! ```
//! use concur::time::{deadline_after, expired};
//! use std::time::{Duration, Instant};
//!
//! let d = deadline_after(Duration::from_millis(5));
//! assert!(d.is_some_and(|d| d > Instant::now() - Duration::from_secs(1)));
//! assert_eq!(deadline_after(Duration::MAX), None); // forever
//! assert!(!expired(None));
//! ```

use std::time::{Duration, Instant};

/// The deadline `timeout` from now, or `None` (wait forever) if it cannot be
/// represented. Never blocks.
///
/// ```
/// use std::time::Duration;
/// assert!(concur::time::deadline_after(Duration::from_secs(1)).is_some());
/// assert!(concur::time::deadline_after(Duration::MAX).is_none());
/// ```
#[inline]
pub fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// True once `deadline` has passed; never for `None` (no deadline). Never blocks.
///
/// ```
/// use std::time::Instant;
/// assert!(concur::time::expired(Some(Instant::now())));
/// assert!(!concur::time::expired(None));
/// ```
#[inline]
pub fn expired(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_timeout_means_forever() {
        assert_eq!(deadline_after(Duration::MAX), None);
        assert!(deadline_after(Duration::from_secs(1)).is_some());
        assert!(!expired(None));
        assert!(expired(Some(Instant::now())));
    }
}
