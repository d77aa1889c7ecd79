//! The seeds' own Python programs (`seeds.py`), run live beside concur's versions when a
//! `python3` is on the `PATH`, so the tour's comparisons with Python are measured.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The programs, built into the binary.
const SEEDS: &str = include_str!("seeds.py");

/// `python3`'s version (`"3.11.2"`), or `None` when there is no working `python3`.
pub(crate) fn version() -> Option<String> {
    static VERSION: OnceLock<Option<String>> = OnceLock::new();
    VERSION
        .get_or_init(|| {
            let out = Command::new("python3")
                .args(["-c", "import sys; print(sys.version.split()[0])"])
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output()
                .ok()?;
            let v = String::from_utf8(out.stdout).ok()?.trim().to_owned();
            (out.status.success() && !v.is_empty()).then_some(v)
        })
        .clone()
}

/// A temporary copy of `seeds.py`, removed on drop.
struct Script {
    dir: PathBuf,
}

impl Script {
    fn write() -> Result<(Script, PathBuf), String> {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "concur-tour-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let script = Script { dir };
        let path = script.dir.join("seeds.py");
        std::fs::write(&path, SEEDS).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok((script, path))
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `seeds.py <args>` and parses the JSON object it prints. `Ok(None)` when there
/// is no `python3`; an error when the program fails, prints no JSON or outlives
/// `timeout` (it is killed then).
pub(crate) fn run(args: &[String], timeout: Duration) -> Result<Option<serde_json::Value>, String> {
    if version().is_none() {
        return Ok(None);
    }
    let (_script, path) = Script::write()?;
    let mut child = Command::new("python3")
        .arg(&path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("python3: {e}"))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "seeds.py {} ran longer than {} s",
                    args.join(" "),
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("python3: {e}")),
        }
    };
    let out = child
        .wait_with_output()
        .map_err(|e| format!("python3: {e}"))?;
    if !status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("");
        return Err(format!(
            "seeds.py {} failed ({status}): {last}",
            args.join(" ")
        ));
    }
    serde_json::from_slice(&out.stdout)
        .map(Some)
        .map_err(|e| format!("seeds.py {}: not JSON: {e}", args.join(" ")))
}

/// A float field of a seed's JSON output.
pub(crate) fn field(v: &serde_json::Value, name: &str) -> Result<f64, String> {
    v.get(name)
        .and_then(serde_json::Value::as_f64)
        .ok_or_else(|| format!("seeds.py output has no number `{name}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_seed_is_an_error_not_a_figure() {
        assert!(version().is_some(), "python3 on the PATH");
        let err = run(&["no-such-seed".to_owned()], Duration::from_secs(30)).unwrap_err();
        assert!(err.contains("failed"), "{err}");
    }
}
