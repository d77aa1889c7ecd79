//! A report hook that panics (this whole process, warn mode): the panic unwinds out of
//! the lock operation that found the problem, and the detector keeps working.

mod common;

use common::{LIMIT, within};
use concur_core::deadlock::{self, Config, Mode, ReportKind};
use concur_core::sync::Lock;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

#[test]
fn panicking_hook_leaves_the_detector_working() {
    Config::new()
        .mode(Mode::Warn)
        .report_hook(|r| {
            if r.message().contains("hp-boom") {
                panic!("hook says no: {r}");
            }
        })
        .install();
    within(LIMIT, "panicking hook", || {
        let boom = Lock::<()>::builder().name("hp-boom").build();
        let g = boom.acquire();
        let r = catch_unwind(AssertUnwindSafe(|| {
            boom.acquire_timeout(Duration::from_millis(1)).is_some()
        }));
        assert!(r.is_err(), "the hook's panic reaches the caller");
        drop(g);
        assert!(!boom.locked());
        // Still working: a later problem is reported, and waits are not stale.
        let calm = Lock::<()>::builder().name("hp-calm").build();
        let _g = calm.acquire();
        assert!(calm.acquire_timeout(Duration::from_millis(1)).is_none());
        let kinds: Vec<_> = deadlock::take_reports().iter().map(|r| r.kind()).collect();
        assert_eq!(kinds, [ReportKind::WaitForCycle, ReportKind::WaitForCycle]);
        assert_eq!(deadlock::report_count(), 2);
    });
}
