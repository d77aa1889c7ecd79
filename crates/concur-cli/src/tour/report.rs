//! `concur tour --report PATH`: the tour as one self-contained HTML page.
//!
//! The page is well-formed XML (XHTML served as HTML), needs no network, and draws each
//! step's picture as inline SVG: bars of speed-ups or times (concur beside Python and
//! the sequential baseline), and the critical section's timeline of threads A and B.
//! Every figure appears in the page with `data-step`, `data-figure` and `data-value`
//! attributes holding exactly the value of the `--json` document, which the page also
//! embeds, so a test can check that the picture and the numbers agree.

use super::{Status, StepReport, TourReport};
use std::fmt::Write as _;

/// Escapes text for an XML attribute or element.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;\
padding:0 1em;color:#222}h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em}\
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.2em .6em;text-align:left;\
border-bottom:1px solid #ddd;vertical-align:top}td.num{text-align:right;\
font-variant-numeric:tabular-nums}.passed{color:#1a7f37}.inconclusive{color:#9a6700}\
.failed{color:#cf222e;font-weight:bold}.shows{color:#555}svg text{font-size:12px;\
font-family:system-ui,sans-serif}";

/// The page for one tour run.
pub(crate) fn html(report: &TourReport) -> String {
    let mut h = String::new();
    let status = if report.passed { "passed" } else { "failed" };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\
         <meta charset=\"utf-8\"/><title>concur tour</title><style>{STYLE}</style></head>\n\
         <body>\n<h1>concur tour</h1>\n<p id=\"overall\" class=\"{status}\" \
         data-passed=\"{}\">{} steps, {} failed, {} inconclusive{}; {} cores; {}</p>\n",
        report.passed,
        report.steps_run,
        report.steps_failed,
        report.steps_inconclusive,
        if report.quick { " (smoke sizes)" } else { "" },
        report.cores,
        esc(&match &report.python {
            Some(v) => format!("the seeds' Python programs ran on Python {v}"),
            None => "python3 not found: the seeds' Python programs were not run".to_owned(),
        }),
    );
    h.push_str(
        "<table id=\"summary\"><tr><th>step</th><th>status</th><th>key figure</th>\
                <th>verdict</th></tr>\n",
    );
    for s in &report.steps {
        let st = status_name(s.outcome.status);
        let _ = writeln!(
            h,
            "<tr><td><a href=\"#{n}\">{n}</a></td><td class=\"{st}\" data-step=\"{n}\" \
             data-status=\"{st}\">{st}</td><td>{}</td><td>{}</td></tr>",
            esc(&s.outcome.key_figure),
            esc(&s.outcome.verdict),
            n = esc(s.name),
        );
    }
    h.push_str("</table>\n");
    for s in &report.steps {
        step(&mut h, s);
    }
    // The JSON document itself, for tools (and the test that compares it with --json).
    let json = serde_json::to_string(report).unwrap_or_default();
    let _ = write!(
        h,
        "<script type=\"application/json\" id=\"tour-data\">{}</script>\n</body>\n</html>\n",
        esc(&json)
    );
    h
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Passed => "passed",
        Status::Inconclusive => "inconclusive",
        Status::Failed => "failed",
    }
}

fn step(h: &mut String, s: &StepReport) {
    let n = esc(s.name);
    let _ = write!(
        h,
        "<h2 id=\"{n}\">{n} <span class=\"{st}\">({st})</span></h2>\n<p class=\"shows\">{}</p>\n",
        esc(s.shows),
        st = status_name(s.outcome.status),
    );
    if let Some(chart) = &s.outcome.chart {
        if chart["kind"] == "timeline" {
            timeline(h, chart);
        } else {
            bars(h, s.name, chart);
        }
    }
    h.push_str("<table class=\"figures\">\n");
    for f in &s.outcome.figures {
        // The attribute holds the JSON value exactly as `--json` prints it.
        let raw = f.value.to_string();
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"num\" data-step=\"{n}\" data-figure=\"{}\" \
             data-value=\"{}\">{} {}</td></tr>",
            esc(f.name),
            esc(f.name),
            esc(&raw),
            esc(&f.display_value()),
            esc(f.unit),
        );
    }
    let _ = writeln!(
        h,
        "</table>\n<p><b>verdict:</b> {} ({:.0} ms)</p>",
        esc(&s.outcome.verdict),
        s.elapsed_ms
    );
}

/// Horizontal bars: `{"title", "unit", "bars": [{"label", "value"}], "note"?}`.
fn bars(h: &mut String, step: &str, chart: &serde_json::Value) {
    let unit = chart["unit"].as_str().unwrap_or("");
    let items: Vec<(&str, f64)> = chart["bars"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|b| {
                    (
                        b["label"].as_str().unwrap_or("?"),
                        b["value"].as_f64().unwrap_or(0.0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if items.is_empty() {
        return;
    }
    let max = items
        .iter()
        .map(|&(_, v)| v)
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let (label_w, bar_w, row) = (230.0, 560.0, 26.0);
    let height = row * items.len() as f64 + 30.0;
    let _ = write!(
        h,
        "<figure><figcaption>{}</figcaption>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"880\" height=\"{height}\" role=\"img\">\n",
        esc(chart["title"].as_str().unwrap_or(""))
    );
    for (i, &(label, value)) in items.iter().enumerate() {
        let y = 10.0 + row * i as f64;
        let w = if value.is_finite() {
            bar_w * value / max
        } else {
            0.0
        };
        let colour = if label.starts_with("Python") {
            "#3572a5"
        } else if label.starts_with("concur") {
            "#d2691e"
        } else {
            "#999"
        };
        let _ = writeln!(
            h,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><rect x=\"{label_w}\" \
             y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"{colour}\" data-step=\"{}\" \
             data-bar=\"{}\" data-value=\"{value}\"/><text x=\"{:.1}\" y=\"{}\">{value:.2} \
             {}</text>",
            label_w - 8.0,
            y + 15.0,
            esc(label),
            row - 8.0,
            esc(step),
            esc(label),
            label_w + w + 6.0,
            y + 15.0,
            esc(unit),
        );
    }
    h.push_str("</svg>");
    if let Some(note) = chart["note"].as_str() {
        let _ = write!(h, "<p>{}</p>", esc(note));
    }
    h.push_str("</figure>\n");
}

/// Two lanes, A and B; one box per critical section over the global ticket order.
fn timeline(h: &mut String, chart: &serde_json::Value) {
    let Some(sections) = chart["sections"].as_array().filter(|a| !a.is_empty()) else {
        return;
    };
    let tick = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap_or(0) as f64;
    let lo = sections
        .iter()
        .map(|s| tick(s, "enter"))
        .fold(f64::MAX, f64::min);
    let hi = sections.iter().map(|s| tick(s, "exit")).fold(0.0, f64::max);
    let (x0, width) = (40.0, 820.0);
    let scale = width / (hi - lo + 1.0);
    let _ = write!(
        h,
        "<figure><figcaption>{}</figcaption>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"880\" height=\"110\" role=\"img\">\n<text x=\"10\" y=\"32\">A</text>\
         <text x=\"10\" y=\"72\">B</text>\n",
        esc(chart["title"].as_str().unwrap_or(""))
    );
    for s in sections {
        let lane = if s["thread"] == "A" { 15.0 } else { 55.0 };
        let x = x0 + (tick(s, "enter") - lo) * scale;
        // Exit ticket minus enter ticket: a one-ticket gap shows between two sections.
        let w = ((tick(s, "exit") - tick(s, "enter")) * scale).max(1.0);
        let colour = if s["thread"] == "A" {
            "#d2691e"
        } else {
            "#3572a5"
        };
        let _ = writeln!(
            h,
            "<rect x=\"{x:.1}\" y=\"{lane}\" width=\"{w:.1}\" height=\"26\" fill=\"{colour}\" \
             data-enter=\"{}\" data-exit=\"{}\"/>",
            s["enter"], s["exit"]
        );
    }
    let _ = writeln!(
        h,
        "<text x=\"{x0}\" y=\"102\">ticket {lo}</text><text x=\"{}\" y=\"102\" \
         text-anchor=\"end\">ticket {hi}</text></svg><p>No two boxes overlap in x: one \
         thread at a time held the Lock.</p></figure>",
        x0 + width
    );
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("a<b & \"c\" 'd'>"),
            "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;"
        );
    }
}
