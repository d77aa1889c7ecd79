//! A description of the machine and build a measurement was taken on.
//!
//! Everything is read cheaply from `/proc` or from one short command; anything that
//! cannot be found is reported as `"unknown"` rather than failing the run.

use serde::Serialize;
use std::process::Command;

const UNKNOWN: &str = "unknown";

/// Machine, OS and build identification written beside benchmark results.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Machine {
    /// `model name` from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Logical CPUs usable by this process (`available_parallelism`).
    pub cores: usize,
    /// Kernel release (`/proc/sys/kernel/osrelease`, i.e. `uname -r`).
    pub kernel: String,
    /// `std::env::consts::OS` / `ARCH`.
    pub os: String,
    /// Target architecture.
    pub arch: String,
    /// `rustc -V` of the rustc on `PATH` (the build's own compiler in the usual setup).
    pub rustc: String,
    /// `git rev-parse HEAD` in the current directory.
    pub git_commit: String,
    /// Whether `git status --porcelain` listed changes (None if git is unavailable).
    pub git_dirty: Option<bool>,
    /// Whether the binary was built with optimisations (`debug_assertions` off).
    pub release_build: bool,
    /// 1-minute load average when the description was taken (`/proc/loadavg`).
    pub load_average_1m: Option<f64>,
}

impl Machine {
    /// Probes the current machine.
    pub(crate) fn probe() -> Self {
        Machine {
            cpu_model: cpu_model().unwrap_or_else(|| UNKNOWN.to_owned()),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: read_trimmed("/proc/sys/kernel/osrelease")
                .unwrap_or_else(|| UNKNOWN.to_owned()),
            os: std::env::consts::OS.to_owned(),
            arch: std::env::consts::ARCH.to_owned(),
            rustc: command_line("rustc", &["-V"]).unwrap_or_else(|| UNKNOWN.to_owned()),
            git_commit: command_line("git", &["rev-parse", "HEAD"])
                .unwrap_or_else(|| UNKNOWN.to_owned()),
            git_dirty: command_output("git", &["status", "--porcelain", "--untracked-files=no"])
                .map(|out| !out.trim().is_empty()),
            release_build: !cfg!(debug_assertions),
            load_average_1m: read_trimmed("/proc/loadavg")
                .and_then(|s| s.split_whitespace().next().and_then(|f| f.parse().ok())),
        }
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    let s = std::fs::read_to_string(path).ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(key, _)| key.trim() == "model name")
        .map(|(_, value)| value.trim().to_owned())
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout).ok()
}

fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = command_output(program, args)?;
    let line = out.lines().next()?.trim();
    (!line.is_empty()).then(|| line.to_owned())
}
