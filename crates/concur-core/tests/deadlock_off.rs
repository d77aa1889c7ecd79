//! Deadlock detection off (this whole process): nothing is checked or recorded, even
//! for an inversion.

mod common;

use common::{LIMIT, within};
use concur_core::deadlock::{self, Mode};
use concur_core::sync::Lock;
use std::thread;

#[test]
fn off_mode_reports_nothing() {
    deadlock::set_mode(Mode::Off);
    assert_eq!(deadlock::mode(), Mode::Off);
    within(LIMIT, "off mode", || {
        let a = Lock::<()>::builder().name("off-A").build();
        let b = Lock::<()>::builder().name("off-B").build();
        for (first, second) in [(a.clone(), b.clone()), (b, a)] {
            thread::spawn(move || {
                let _g1 = first.acquire();
                let _g2 = second.acquire();
            })
            .join()
            .unwrap();
        }
        assert_eq!(deadlock::report_count(), 0);
        assert!(deadlock::take_reports().is_empty());
    });
}
