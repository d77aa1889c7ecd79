//! `concur tour`: the project's live experiments.
//!
//! Each experiment is a [`Step`]: it has a name, says in a sentence what it shows, and
//! runs to a [`StepOutcome`] made of named figures, a key figure for the summary table
//! and a pass/fail verdict. A failed verdict (or a panicking step) makes the tour exit
//! with code 1, so `concur tour --quick` doubles as a smoke test in CI.
//!
//! To add a step: write a file in this folder with a type implementing [`Step`], declare
//! the module below and list the type in [`registry`].

mod cluster;
mod cpu_bound;
mod cpu_bound_processes;
mod critical_section;
mod deadlock;
mod fencing;
mod futures;
mod locked_counter;
mod nested;
mod pool_map;
mod processes;
mod queue;
mod thread;

use crate::progress::Bars;
use crate::{Outcome, TourArgs};
use indicatif::ProgressBar;
use serde::Serialize;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};
use std::time::Instant;

/// Every step of the tour, in the order they run.
pub(crate) fn registry() -> Vec<Box<dyn Step>> {
    vec![
        // threading: Lock
        Box::new(critical_section::CriticalSection),
        Box::new(locked_counter::LockedCounter),
        // no GIL
        Box::new(cpu_bound::CpuBound),
        // CWE-833: deadlocks caught instead of hanging
        Box::new(thread::SelfJoin),
        Box::new(deadlock::LockOrder),
        // queue: the image-download worker pool
        Box::new(queue::QueueWorkers),
        // concurrent.futures: page downloads, nested waits (CWE-410/833), and
        // ThreadPool.map with a progress bar
        Box::new(futures::PageDownloads),
        Box::new(nested::NestedWaits),
        Box::new(pool_map::PoolMap),
        // multiprocessing: CPU-bound work in child processes, a shared Value with and
        // without its lock
        Box::new(processes::Processes),
        Box::new(processes::SharedCounter),
        // multiprocessing.Pool: the CPU-bound experiment on a pool of 2 processes
        Box::new(cpu_bound_processes::CpuBoundProcesses),
        // concur::cluster: the same job on threads, processes and a Redis cluster
        Box::new(cluster::Cluster),
        // concur::cluster::Lock: fencing tokens against a stale holder
        Box::new(fencing::Fencing),
    ]
}

/// One live experiment of the tour.
pub(crate) trait Step: Send + Sync {
    /// Short kebab-case name shown in the summary table (`critical-section`).
    fn name(&self) -> &'static str;
    /// What the step shows, in a sentence or two.
    fn shows(&self) -> &'static str;
    /// Runs the experiment. Long steps report progress through [`Ctx::bar`].
    fn run(&self, ctx: &Ctx) -> StepOutcome;
}

/// What a step may know about the run: the size asked for and where progress goes.
#[derive(Debug)]
pub(crate) struct Ctx {
    quick: bool,
    bars: Bars,
}

impl Ctx {
    /// A context; `quick` selects smoke sizes.
    pub(crate) fn new(quick: bool, bars: Bars) -> Self {
        Ctx { quick, bars }
    }

    /// Whether smoke sizes were requested.
    #[allow(dead_code)] // part of the step API; the seed steps only use `size`
    pub(crate) fn quick(&self) -> bool {
        self.quick
    }

    /// `full` normally, `quick` in `--quick` mode.
    pub(crate) fn size<T>(&self, full: T, quick: T) -> T {
        if self.quick { quick } else { full }
    }

    /// A progress bar of `len` units for a step that takes more than about a second.
    pub(crate) fn bar(&self, len: u64, label: &str) -> ProgressBar {
        self.bars.bar(len, label)
    }
}

/// One named figure a step measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Figure {
    /// What was measured (`sections`, `lost updates`...).
    pub name: &'static str,
    /// The value: an integer, a float or a text.
    pub value: serde_json::Value,
    /// Unit, or `""`.
    pub unit: &'static str,
}

impl Figure {
    /// An integer figure.
    pub(crate) fn int(name: &'static str, value: impl Into<i128>, unit: &'static str) -> Self {
        let v: i128 = value.into();
        let value = i64::try_from(v)
            .map(serde_json::Value::from)
            .unwrap_or_else(|_| serde_json::Value::from(v.to_string()));
        Figure { name, value, unit }
    }

    /// A floating-point figure (rounded to 4 significant decimals for display only).
    pub(crate) fn float(name: &'static str, value: f64, unit: &'static str) -> Self {
        Figure {
            name,
            value: serde_json::Value::from(value),
            unit,
        }
    }

    /// A textual figure.
    pub(crate) fn text(name: &'static str, value: impl Into<String>) -> Self {
        Figure {
            name,
            value: serde_json::Value::from(value.into()),
            unit: "",
        }
    }

    fn display_value(&self) -> String {
        match &self.value {
            serde_json::Value::Number(n) if n.is_f64() => {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.abs() >= 100.0 {
                    format!("{f:.1}")
                } else {
                    format!("{f:.3}")
                }
            }
            serde_json::Value::Number(n) => group_thousands(&n.to_string()),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

/// What a step concluded.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StepOutcome {
    /// Every figure measured, in display order.
    pub figures: Vec<Figure>,
    /// The figure that goes in the summary table (`"speed-up 1.9x"`).
    pub key_figure: String,
    /// Whether the step's check held.
    pub passed: bool,
    /// The verdict in words (`"0 lost updates"`, or what went wrong).
    pub verdict: String,
}

impl StepOutcome {
    /// An outcome; `passed` decides the exit code.
    pub(crate) fn new(
        figures: Vec<Figure>,
        key_figure: impl Into<String>,
        passed: bool,
        verdict: impl Into<String>,
    ) -> Self {
        StepOutcome {
            figures,
            key_figure: key_figure.into(),
            passed,
            verdict: verdict.into(),
        }
    }
}

#[derive(Debug, Serialize)]
struct StepReport {
    name: &'static str,
    shows: &'static str,
    elapsed_ms: f64,
    #[serde(flatten)]
    outcome: StepOutcome,
}

#[derive(Debug, Serialize)]
struct TourReport {
    quick: bool,
    passed: bool,
    steps_run: usize,
    steps_failed: usize,
    steps: Vec<StepReport>,
}

/// Runs every registered step and prints the figures (or the JSON document).
pub(crate) fn run(args: &TourArgs) -> io::Result<Outcome> {
    let ctx = Ctx::new(args.quick, Bars::new(args.json));
    let steps = registry();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut reports = Vec::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        if !args.json {
            writeln!(out, "== [{}/{}] {} ==", i + 1, steps.len(), step.name())?;
            writeln!(out, "{}", step.shows())?;
            out.flush()?;
        }
        let report = run_step(step.as_ref(), &ctx);
        if !args.json {
            write_step(&mut out, &report)?;
        }
        reports.push(report);
    }
    let failed = reports.iter().filter(|r| !r.outcome.passed).count();
    let report = TourReport {
        quick: args.quick,
        passed: failed == 0,
        steps_run: reports.len(),
        steps_failed: failed,
        steps: reports,
    };
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        write_summary(&mut out, &report)?;
    }
    out.flush()?;
    Ok(if report.passed {
        Outcome::Passed
    } else {
        Outcome::Failed
    })
}

/// Runs one step, turning a panic into a failed outcome.
fn run_step(step: &dyn Step, ctx: &Ctx) -> StepReport {
    let start = Instant::now();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| step.run(ctx))).unwrap_or_else(|e| {
        let msg = e
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| e.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_owned());
        StepOutcome::new(vec![], "panicked", false, format!("step panicked: {msg}"))
    });
    StepReport {
        name: step.name(),
        shows: step.shows(),
        elapsed_ms: start.elapsed().as_secs_f64() * 1e3,
        outcome,
    }
}

fn write_step(out: &mut impl Write, r: &StepReport) -> io::Result<()> {
    let width = r
        .outcome
        .figures
        .iter()
        .map(|f| f.name.len())
        .max()
        .unwrap_or(0);
    for f in &r.outcome.figures {
        let unit = if f.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", f.unit)
        };
        writeln!(out, "  {:<width$}  {}{unit}", f.name, f.display_value())?;
    }
    let mark = if r.outcome.passed { "ok" } else { "FAILED" };
    writeln!(
        out,
        "  -> {mark}: {} ({:.0} ms)\n",
        r.outcome.verdict, r.elapsed_ms
    )?;
    Ok(())
}

fn write_summary(out: &mut impl Write, report: &TourReport) -> io::Result<()> {
    let rows: Vec<[String; 3]> = report
        .steps
        .iter()
        .map(|r| {
            let verdict = if r.outcome.passed {
                r.outcome.verdict.clone()
            } else {
                format!("FAILED: {}", r.outcome.verdict)
            };
            [r.name.to_owned(), r.outcome.key_figure.clone(), verdict]
        })
        .collect();
    let header = ["step", "key figure", "verdict"];
    let mut w = header.map(str::len);
    for row in &rows {
        for (wi, cell) in w.iter_mut().zip(row) {
            *wi = (*wi).max(cell.chars().count());
        }
    }
    let mut table = String::new();
    let line = |t: &mut String, cells: [&str; 3]| {
        let _ = writeln!(
            t,
            "  {:<a$}  {:<b$}  {}",
            cells[0],
            cells[1],
            cells[2],
            a = w[0],
            b = w[1]
        );
    };
    line(&mut table, header);
    let rule = [w[0], w[1], w[2]].map(|n| "-".repeat(n));
    line(&mut table, [&rule[0], &rule[1], &rule[2]]);
    for row in &rows {
        line(&mut table, [&row[0], &row[1], &row[2]]);
    }
    writeln!(out, "Summary")?;
    write!(out, "{table}")?;
    if report.passed {
        writeln!(out, "\nall {} steps passed", report.steps_run)?;
    } else {
        writeln!(
            out,
            "\n{} of {} steps FAILED",
            report.steps_failed, report.steps_run
        )?;
    }
    Ok(())
}

/// An integer with thousands separators.
pub(crate) fn group(n: impl std::fmt::Display) -> String {
    group_thousands(&n.to_string())
}

/// `1234567` -> `1,234,567` (keeps a leading minus sign).
pub(crate) fn group_thousands(digits: &str) -> String {
    let (sign, digits) = match digits.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", digits),
    };
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands() {
        assert_eq!(group_thousands("0"), "0");
        assert_eq!(group_thousands("999"), "999");
        assert_eq!(group_thousands("1000"), "1,000");
        assert_eq!(group_thousands("-1234567"), "-1,234,567");
    }

    #[test]
    fn registry_names_are_unique() {
        let steps = registry();
        let mut names: Vec<_> = steps.iter().map(|s| s.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), steps.len());
    }
}
