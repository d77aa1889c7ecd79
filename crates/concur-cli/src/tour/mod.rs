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
mod python;
mod queue;
pub(crate) mod report;
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

/// How a step's claim came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    /// The check held.
    Passed,
    /// The check could not be made here: a speed-up the machine cannot show (one core,
    /// other programs using the cores, smoke sizes). Not a failure.
    Inconclusive,
    /// The check failed.
    Failed,
}

/// What a step concluded.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StepOutcome {
    /// Every figure measured, in display order.
    pub figures: Vec<Figure>,
    /// The figure that goes in the summary table (`"speed-up 1.9x"`).
    pub key_figure: String,
    /// Whether the step did not fail (`status` is passed or inconclusive).
    pub passed: bool,
    /// Passed, inconclusive (with the reason in `verdict`) or failed.
    pub status: Status,
    /// The verdict in words (`"0 lost updates"`, or what went wrong).
    pub verdict: String,
    /// Data for the HTML report's picture of this step, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chart: Option<serde_json::Value>,
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
            status: if passed {
                Status::Passed
            } else {
                Status::Failed
            },
            verdict: verdict.into(),
            chart: None,
        }
    }

    /// Attaches the data the HTML report draws for this step.
    pub(crate) fn with_chart(mut self, chart: serde_json::Value) -> Self {
        self.chart = Some(chart);
        self
    }

    /// Judges a speed-up claim: `measured` (sequential time / parallel time) of work
    /// split over `workers` should reach `want`. Below it, the outcome becomes
    /// inconclusive when the machine could not show the effect (fewer cores than
    /// workers, other programs busy during the parallel run, smoke sizes), and failed
    /// when it could. An outcome that already failed stays failed.
    pub(crate) fn claim_speedup(
        mut self,
        ctx: &Ctx,
        measured: f64,
        want: f64,
        workers: usize,
        others: Option<f64>,
    ) -> Self {
        if self.status == Status::Failed || measured >= want {
            return self;
        }
        let cores = cores();
        let reason = if cores < workers {
            Some(format!("{cores} core(s) for {workers} workers"))
        } else if let Some(o) = others.filter(|&o| o > (cores - workers) as f64 + 0.4) {
            Some(format!(
                "the machine is busy: other programs used {o:.1} of {cores} cores"
            ))
        } else if ctx.quick {
            Some("smoke size: too little work to show it".to_owned())
        } else {
            None
        };
        let short = format!("speed-up {measured:.2}x, {want:.1}x expected");
        match reason {
            Some(why) => {
                self.status = Status::Inconclusive;
                self.verdict = format!("inconclusive: {why} ({short}); {}", self.verdict);
            }
            None => {
                self.status = Status::Failed;
                self.passed = false;
                self.verdict = format!("{short} on {cores} idle cores; {}", self.verdict);
            }
        }
        self
    }
}

/// The CPUs this process may use.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Measures how much CPU *other* programs used over a stretch of time: the machine's
/// busy time (`/proc/stat`) minus this process's own (`/proc/self/stat`, reaped
/// children included), in cores. `None` where `/proc` is missing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoadProbe {
    machine: Option<(u64, u64)>,
    own: Option<u64>,
}

impl LoadProbe {
    /// Starts measuring.
    pub(crate) fn start() -> Self {
        LoadProbe {
            machine: machine_jiffies(),
            own: own_jiffies(),
        }
    }

    /// Cores' worth of CPU other programs used since [`LoadProbe::start`].
    pub(crate) fn others(&self) -> Option<f64> {
        let (busy0, total0) = self.machine?;
        let (busy1, total1) = machine_jiffies()?;
        let own = own_jiffies()?.saturating_sub(self.own?);
        let total = total1.saturating_sub(total0);
        if total == 0 {
            return None;
        }
        let cpus = proc_cpus().max(1) as f64;
        let others = busy1.saturating_sub(busy0).saturating_sub(own) as f64;
        // `total` counts every CPU's jiffies: the wall time is total / cpus.
        Some((others / (total as f64 / cpus)).max(0.0))
    }
}

/// (busy, total) jiffies of all CPUs, from the first line of `/proc/stat`.
fn machine_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 5 {
        return None;
    }
    let total: u64 = v.iter().sum();
    let idle = v[3] + v[4]; // idle + iowait
    Some((total - idle, total))
}

/// The CPUs `/proc/stat` lists.
fn proc_cpus() -> usize {
    std::fs::read_to_string("/proc/stat").map_or(1, |s| {
        s.lines()
            .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
            .count()
    })
}

/// This process's user + system jiffies, its reaped children's included.
fn own_jiffies() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime, stime, cutime, cstime are fields 14..=17 of the whole line: 11..=14 here.
    f.get(11..15)?.iter().map(|x| x.parse::<u64>().ok()).sum()
}

/// Wraps `text` to `width` columns, every line after the first indented by `indent`
/// spaces (greedy, on spaces; a word longer than a line gets a line of its own).
pub(crate) fn wrap(text: &str, width: usize, first: usize, indent: usize) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut col = first;
    let mut line_empty = true;
    for word in text.split_whitespace() {
        let n = word.chars().count();
        if !line_empty && col + 1 + n > width {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            col = indent;
            line_empty = true;
        }
        if !line_empty {
            out.push(' ');
            col += 1;
        }
        out.push_str(word);
        col += n;
        line_empty = false;
    }
    out
}

/// The width every line the CLI prints fits in.
pub(crate) const COLUMNS: usize = 100;

#[derive(Debug, Serialize)]
pub(crate) struct StepReport {
    name: &'static str,
    shows: &'static str,
    elapsed_ms: f64,
    #[serde(flatten)]
    outcome: StepOutcome,
}

#[derive(Debug, Serialize)]
pub(crate) struct TourReport {
    quick: bool,
    passed: bool,
    steps_run: usize,
    steps_failed: usize,
    steps_inconclusive: usize,
    cores: usize,
    /// The `python3` the seeds' programs ran on (`None`: not found, not run).
    python: Option<String>,
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
            writeln!(out, "{}", wrap(step.shows(), COLUMNS, 0, 0))?;
            out.flush()?;
        }
        let report = run_step(step.as_ref(), &ctx);
        if !args.json {
            write_step(&mut out, &report)?;
        }
        reports.push(report);
    }
    let count = |s: Status| reports.iter().filter(|r| r.outcome.status == s).count();
    let failed = count(Status::Failed);
    let report = TourReport {
        quick: args.quick,
        passed: failed == 0,
        steps_run: reports.len(),
        steps_failed: failed,
        steps_inconclusive: count(Status::Inconclusive),
        cores: cores(),
        python: python::version(),
        steps: reports,
    };
    if let Some(path) = &args.report {
        std::fs::write(path, report::html(&report)).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
        })?;
        if !args.json {
            writeln!(out, "report written to {}", path.display())?;
        }
    }
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

fn mark(status: Status) -> &'static str {
    match status {
        Status::Passed => "ok",
        Status::Inconclusive => "inconclusive",
        Status::Failed => "FAILED",
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
        let value = format!("{}{unit}", f.display_value());
        let at = 2 + width + 2;
        writeln!(
            out,
            "  {:<width$}  {}",
            f.name,
            wrap(&value, COLUMNS, at, at)
        )?;
    }
    let head = format!("  -> {}: ", mark(r.outcome.status));
    let text = format!("{} ({:.0} ms)", r.outcome.verdict, r.elapsed_ms);
    writeln!(out, "{head}{}\n", wrap(&text, COLUMNS, head.len(), 6))?;
    Ok(())
}

fn write_summary(out: &mut impl Write, report: &TourReport) -> io::Result<()> {
    let rows: Vec<[String; 3]> = report
        .steps
        .iter()
        .map(|r| {
            let verdict = match r.outcome.status {
                Status::Passed => r.outcome.verdict.clone(),
                s => format!("{}: {}", mark(s), r.outcome.verdict).replacen(
                    "inconclusive: inconclusive:",
                    "inconclusive:",
                    1,
                ),
            };
            [r.name.to_owned(), r.outcome.key_figure.clone(), verdict]
        })
        .collect();
    let header = ["step", "key figure", "verdict"];
    let mut w = header.map(str::len);
    for row in &rows {
        for (wi, cell) in w.iter_mut().take(2).zip(row) {
            *wi = (*wi).max(cell.chars().count());
        }
    }
    // The verdict column takes what is left of the line, wrapped beneath itself.
    let at = 2 + w[0] + 2 + w[1] + 2;
    w[2] = COLUMNS.saturating_sub(at).max(20);
    let mut table = String::new();
    let line = |t: &mut String, cells: [&str; 3]| {
        let _ = writeln!(
            t,
            "  {:<a$}  {:<b$}  {}",
            cells[0],
            cells[1],
            wrap(cells[2], COLUMNS.max(at + 20), at, at),
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
    let python = match &report.python {
        Some(v) => format!("the seeds' Python programs ran on Python {v}"),
        None => "python3 not found: the seeds' Python programs were not run".to_owned(),
    };
    writeln!(out, "\n{python}")?;
    let inconclusive = match report.steps_inconclusive {
        0 => String::new(),
        n => format!(", {n} inconclusive"),
    };
    if report.passed {
        writeln!(out, "all {} steps passed{inconclusive}", report.steps_run)?;
    } else {
        writeln!(
            out,
            "{} of {} steps FAILED{inconclusive}",
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
    fn wrap_fits_and_keeps_every_word() {
        let text = "a bb ccc dddd eeeee ffffff ggggggg hhhhhhhh";
        let w = wrap(text, 12, 4, 2);
        for (i, l) in w.lines().enumerate() {
            let start = if i == 0 { 4 } else { 0 };
            assert!(start + l.chars().count() <= 12, "{l:?} too long");
        }
        assert_eq!(w.split_whitespace().collect::<Vec<_>>().join(" "), text);
        // A word longer than the line gets its own line.
        assert_eq!(wrap("x yyyyyyyyyyyyyy z", 6, 0, 0), "x\nyyyyyyyyyyyyyy\nz");
    }

    #[test]
    fn load_probe_counts_this_process_as_its_own() {
        let (Some(own0), Some(_)) = (own_jiffies(), machine_jiffies()) else {
            panic!("/proc/self/stat or /proc/stat unreadable on Linux");
        };
        let probe = LoadProbe::start();
        // Spin until this process has used 0.3 s of CPU (bounded by 30 s of wall time
        // on a very busy machine).
        let t = Instant::now();
        let mut x = 0u64;
        while own_jiffies().unwrap_or(0) < own0 + 30 {
            assert!(
                t.elapsed() < std::time::Duration::from_secs(30),
                "own CPU time does not grow: is utime parsed from the right field?"
            );
            x = std::hint::black_box(x.wrapping_add(1));
        }
        // The spin is this process's own: the others' figure excludes it, so it stays
        // within the machine's CPUs.
        let o = probe.others().expect("both readings present");
        assert!(o >= 0.0 && o <= proc_cpus() as f64, "{o}");
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
