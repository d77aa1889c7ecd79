//! `CONCUR_DEADLOCK` selects the detector's mode: the test re-runs this test binary
//! with the variable set (the mode is read once per process), and the child checks
//! the mode and that an inversion is reported.

use concur_core::deadlock::{self, Mode};
use concur_core::sync::Lock;
use std::process::Command;
use std::time::{Duration, Instant};

const CHILD: &str = "CONCUR_DEADLOCK_ENV_CHILD";

fn child_body(expected: Mode) {
    assert_eq!(deadlock::mode(), expected);
    deadlock::set_report_hook(|_| {});
    let a = Lock::builder().name("EnvA").build();
    let b = Lock::builder().name("EnvB").build();
    {
        let _a = a.acquire();
        let _b = b.acquire();
    }
    let (a2, b2) = (a.clone(), b.clone());
    std::thread::spawn(move || {
        let _b = b2.acquire();
        let _a = a2.acquire_timeout(Duration::from_secs(5));
    })
    .join()
    .ok();
    let reports = deadlock::take_reports();
    let want = usize::from(expected != Mode::Off);
    assert_eq!(reports.len(), want, "{reports:?}");
}

/// Runs this test in a child process with `CONCUR_DEADLOCK=value`; returns its output.
fn rerun(test: &str, value: &str) -> String {
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(exe)
        .args([test, "--exact", "--test-threads=1"])
        .env("CONCUR_DEADLOCK", value)
        .env(CHILD, "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("re-run the test binary");
    // Bounded wait: a hung child is killed and the test fails with a message.
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait for child").is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("probable deadlock: child with CONCUR_DEADLOCK={value} ran over 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("child output");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child with CONCUR_DEADLOCK={value} failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
#[cfg_attr(miri, ignore)] // spawns a process
fn env_warn_turns_detection_on() {
    if std::env::var_os(CHILD).is_some() {
        return child_body(Mode::Warn);
    }
    assert!(rerun("env_warn_turns_detection_on", "warn").contains("1 passed"));
}

#[test]
#[cfg_attr(miri, ignore)] // spawns a process
fn env_off_and_garbage_leave_detection_off() {
    if std::env::var_os(CHILD).is_some() {
        return child_body(Mode::Off);
    }
    assert!(rerun("env_off_and_garbage_leave_detection_off", "off").contains("1 passed"));
    assert!(rerun("env_off_and_garbage_leave_detection_off", "bogus").contains("1 passed"));
}
