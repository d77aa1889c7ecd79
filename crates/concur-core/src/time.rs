//! Timeouts and deadlines. Every `*_timeout(Duration)` in concur is implemented through
//! its `*_deadline(Instant)` twin; a timeout too large to represent as an `Instant`
//! means "wait forever" (`None` here).

use std::time::{Duration, Instant};

/// The deadline `timeout` from now, or `None` (forever) if it cannot be represented.
#[inline]
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// True once `deadline` (if any) has passed.
#[inline]
#[allow(dead_code)]
pub(crate) fn expired(deadline: Option<Instant>) -> bool {
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
