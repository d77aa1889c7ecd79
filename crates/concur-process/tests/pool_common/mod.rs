//! `/proc` checks of the process-pool tests: no zombie under this process, worker
//! processes gone.
#![allow(dead_code)] // each test binary uses a different part

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::common::{eventually, proc_state};

/// `(pid, ppid, state)` of every process.
pub(crate) fn processes() -> Vec<(u32, u32, char)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // After the parenthesized name: state, ppid, ...
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let mut rest = stat[close + 1..].split_whitespace();
        let state = rest.next().and_then(|s| s.chars().next());
        let ppid = rest.next().and_then(|s| s.parse::<u32>().ok());
        if let (Some(state), Some(ppid)) = (state, ppid) {
            out.push((pid, ppid, state));
        }
    }
    out
}

/// Zombies whose parent is this process or one of its descendants (the fork server's
/// workers are its children, and it is ours).
pub(crate) fn zombies_under_us() -> Vec<(u32, u32)> {
    let procs = processes();
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for &(pid, ppid, _) in &procs {
        children.entry(ppid).or_default().push(pid);
    }
    let me = std::process::id();
    let mut ours: HashSet<u32> = HashSet::from([me]);
    let mut stack = vec![me];
    while let Some(p) = stack.pop() {
        for &c in children.get(&p).map_or(&[][..], |v| v.as_slice()) {
            if ours.insert(c) {
                stack.push(c);
            }
        }
    }
    procs
        .into_iter()
        .filter(|&(_, ppid, state)| state == 'Z' && ours.contains(&ppid))
        .map(|(pid, ppid, _)| (pid, ppid))
        .collect()
}

/// Asserts that no zombie stays under this process (a dying worker is a zombie for an
/// instant, until it is reaped: allow a few seconds).
#[track_caller]
pub(crate) fn assert_no_zombies() {
    let mut last = Vec::new();
    let ok = eventually(Duration::from_secs(10), || {
        last = zombies_under_us();
        last.is_empty()
    });
    assert!(ok, "zombies (pid, ppid) left under this process: {last:?}");
}

/// Asserts that every pid of `pids` is gone from `/proc` (reaped), within a bound.
#[track_caller]
pub(crate) fn assert_gone(pids: &[u32]) {
    let ok = eventually(Duration::from_secs(10), || {
        pids.iter().all(|&p| proc_state(p).is_none())
    });
    let left: Vec<_> = pids.iter().map(|&p| (p, proc_state(p))).collect();
    assert!(ok, "worker processes still in /proc: {left:?}");
}
