//! `futures`: the seed's page downloads — `ThreadPoolExecutor.submit` + `as_completed`.

use super::{Ctx, Figure, Step, StepOutcome, python};
use concur::futures::{Executor, ThreadPoolExecutor, as_completed};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Simulated downloads of different lengths on a pool with one worker per page, read back
/// with `as_completed`: every page arrives once, in completion order, the failing one with
/// its error at its own place; the batch takes about the longest delay, not the sum.
pub(super) struct PageDownloads;

/// Which page does not exist (its download fails).
const MISSING: usize = 3;

/// The made-up, fixed size of page `i`, so the step can check what it got.
fn page_size(i: usize) -> usize {
    4096 + i * 97
}

/// Page `i` "downloads" for `delay`, then returns its size, or an error for the missing
/// host.
fn fetch(i: usize, delay: Duration) -> Result<usize, String> {
    std::thread::sleep(delay);
    if i == MISSING {
        Err(format!("https://page-{i}.example/: name does not resolve"))
    } else {
        Ok(page_size(i))
    }
}

/// What one run found.
struct Found {
    /// Page indices in completion order.
    order: Vec<usize>,
    /// Pages whose size was right.
    ok: usize,
    /// Failed downloads, with the page each error belongs to.
    errors: Vec<(usize, String)>,
    /// Anything that should not have happened (wrong size, task failure).
    wrong: Vec<String>,
    elapsed: Duration,
}

impl PageDownloads {
    fn run_pages(delays: &[Duration]) -> Result<Found, String> {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(delays.len())
            .thread_name_prefix("tour-fetch")
            .build();
        let start = Instant::now();
        let futures = delays
            .iter()
            .enumerate()
            .map(|(i, &d)| pool.submit(move || fetch(i, d)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let mut found = Found {
            order: Vec::new(),
            ok: 0,
            errors: Vec::new(),
            wrong: Vec::new(),
            elapsed: Duration::ZERO,
        };
        // Python's idiom: a dict from future to the page it downloads.
        let page: HashMap<_, usize> = futures.iter().cloned().zip(0..).collect();
        for done in as_completed(&futures, Some(Duration::from_secs(30))) {
            let f = done.map_err(|e| e.to_string())?; // a timeout: k (of n) unfinished
            let i = *page
                .get(f)
                .ok_or("as_completed yielded a future it was not given")?;
            found.order.push(i);
            match f.result() {
                Ok(Ok(size)) if size == page_size(i) => found.ok += 1,
                Ok(Ok(size)) => found.wrong.push(format!("page {i}: {size} bytes")),
                Ok(Err(e)) => found.errors.push((i, e)),
                Err(e) => found.wrong.push(format!("page {i}: task failed: {e}")),
            }
        }
        found.elapsed = start.elapsed();
        Ok(found)
    }
}

impl Step for PageDownloads {
    fn name(&self) -> &'static str {
        "futures"
    }

    fn shows(&self) -> &'static str {
        "Page downloads on a ThreadPoolExecutor: submit every page, read them back with \
         as_completed. Each page arrives exactly once, in completion order; the one that \
         fails brings its error to its own place; the batch takes about the longest \
         download, not the sum."
    }

    fn run(&self, ctx: &Ctx) -> StepOutcome {
        let pages: usize = ctx.size(16, 8);
        let unit = Duration::from_millis(ctx.size(10, 5));
        // Delays 1..=pages units, shuffled (5 is coprime with 8 and 16), so completion
        // order differs from submission order.
        let delays: Vec<Duration> = (0..pages)
            .map(|i| unit * ((i * 5 % pages) as u32 + 1))
            .collect();
        let found = match Self::run_pages(&delays) {
            Ok(f) => f,
            Err(e) => return StepOutcome::new(vec![], "failed", false, e),
        };
        let sum: Duration = delays.iter().sum();
        let longest = delays.iter().max().copied().unwrap_or_default();
        let overlap = sum.as_secs_f64() / found.elapsed.as_secs_f64().max(1e-9);
        let mut sorted = found.order.clone();
        sorted.sort_unstable();
        let each_once = sorted == (0..pages).collect::<Vec<_>>();
        let error_in_place = found.errors.len() == 1
            && found.errors[0].0 == MISSING
            && found.errors[0].1.contains(&format!("page-{MISSING}."));
        let reordered = found.order != (0..pages).collect::<Vec<_>>();
        let passed = each_once && error_in_place && found.wrong.is_empty();
        let first: Vec<String> = found.order.iter().take(6).map(usize::to_string).collect();
        let error = found
            .errors
            .first()
            .map_or_else(|| "none".to_owned(), |(i, e)| format!("page {i}: {e}"));
        // The seed's own program: ThreadPoolExecutor(max_workers=pages) + as_completed.
        let args = [
            "downloads".to_owned(),
            pages.to_string(),
            unit.as_millis().to_string(),
            MISSING.to_string(),
        ];
        let py = python::run(&args, Duration::from_secs(120));
        let (py_figure, py_ok, py_ms) = match &py {
            Ok(Some(v)) => {
                let t = python::field(v, "elapsed_s").unwrap_or(f64::NAN) * 1e3;
                let ok =
                    v["ok"].as_u64() == Some(pages as u64 - 1) && v["errors"].as_u64() == Some(1);
                (
                    Figure::float("Python ThreadPoolExecutor batch time", t, "ms"),
                    ok,
                    Some(t),
                )
            }
            Ok(None) => (
                Figure::text("Python", "python3 not found: not run"),
                true,
                None,
            ),
            Err(e) => (Figure::text("Python", format!("failed: {e}")), false, None),
        };
        let passed = passed && py_ok;
        let mut bars = vec![
            serde_json::json!({"label": "sum of delays (sequential)", "value": sum.as_secs_f64() * 1e3}),
            serde_json::json!({"label": "concur ThreadPoolExecutor", "value": found.elapsed.as_secs_f64() * 1e3}),
        ];
        if let Some(t) = py_ms {
            bars.push(serde_json::json!({"label": "Python ThreadPoolExecutor", "value": t}));
        }
        StepOutcome::new(
            vec![
                Figure::int("pages", pages as i64, ""),
                Figure::int("downloaded", found.ok as i64, ""),
                Figure::text("error (at its page)", error),
                Figure::text("completion order", format!("{}, ...", first.join(", "))),
                Figure::float("batch time", found.elapsed.as_secs_f64() * 1e3, "ms"),
                Figure::float("longest delay", longest.as_secs_f64() * 1e3, "ms"),
                Figure::float("sum of delays", sum.as_secs_f64() * 1e3, "ms"),
                Figure::float("overlap (sum / batch time)", overlap, "x"),
                py_figure,
            ],
            format!(
                "{:.0} ms for {:.0} ms of downloads",
                found.elapsed.as_secs_f64() * 1e3,
                sum.as_secs_f64() * 1e3
            ),
            passed,
            if passed {
                format!(
                    "every page once{}, 1 error at its page",
                    if reordered {
                        ", in completion order"
                    } else {
                        ""
                    }
                )
            } else if !py_ok {
                format!(
                    "the Python seed did not give {} pages and 1 error: {py:?}",
                    pages - 1
                )
            } else {
                format!(
                    "yielded {:?}; errors {:?}; wrong {:?}",
                    found.order, found.errors, found.wrong
                )
            },
        )
        .with_chart(serde_json::json!({
            "title": "page downloads: the batch takes about the longest delay",
            "unit": "ms",
            "bars": bars,
        }))
    }
}
