//! `concur bench --report PATH`: the ratios as one self-contained HTML page.
//!
//! One chart per suite: a bar per (case, concur subject, anchor) pair, its length the
//! throughput ratio (anchor's median time ÷ concur's: right of the parity line, concur
//! is faster) on a logarithmic axis, since the ratios span from about 0.1 to 1000. Each
//! bar carries its ratio in `data-ratio`, and the page embeds the `--json` document, so
//! a test checks that the picture shows the measured numbers.

use crate::tour::report::esc;
use std::fmt::Write as _;

/// The page for one bench run, drawn from its JSON document.
pub(crate) fn html(doc: &serde_json::Value) -> String {
    let mut h = String::new();
    let m = &doc["machine"];
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\
         <meta charset=\"utf-8\"/><title>concur bench</title><style>body{{font-family:\
         system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}}\
         svg text{{font-size:12px}}</style></head>\n<body>\n<h1>concur bench</h1>\n<p>{} \
         ({} cores), commit {}, {} runs per measurement (medians); load {}. A ratio is the \
         anchor's median time ÷ concur's: above 1, concur is faster.</p>\n",
        esc(m["cpu_model"].as_str().unwrap_or("?")),
        m["cores"],
        esc(m["git_commit"].as_str().unwrap_or("?")),
        doc["config"]["runs"],
        m["load_average_1m"],
    );
    let ratios = doc["ratios"].as_array().cloned().unwrap_or_default();
    let mut suites: Vec<&str> = Vec::new();
    for r in &ratios {
        let s = r["suite"].as_str().unwrap_or("?");
        if !suites.contains(&s) {
            suites.push(s);
        }
    }
    for suite in suites {
        let rows: Vec<&serde_json::Value> = ratios.iter().filter(|r| r["suite"] == suite).collect();
        chart(&mut h, suite, &rows);
    }
    for (what, key) in [("errors", "errors"), ("notes", "notes")] {
        if let Some(list) = doc[key].as_array().filter(|l| !l.is_empty()) {
            let _ = write!(h, "<h2>{what}</h2><ul>");
            for e in list {
                let _ = write!(h, "<li>{}</li>", esc(e.as_str().unwrap_or("")));
            }
            h.push_str("</ul>\n");
        }
    }
    let json = serde_json::to_string(doc).unwrap_or_default();
    let _ = write!(
        h,
        "<script type=\"application/json\" id=\"bench-data\">{}</script>\n</body>\n</html>\n",
        esc(&json)
    );
    h
}

/// x position of `ratio` on the log axis from 10^LO to 10^HI over `width` pixels.
fn x_of(ratio: f64, x0: f64, width: f64) -> f64 {
    const LO: f64 = -2.0;
    const HI: f64 = 3.0;
    let l = ratio.clamp(1e-2, 1e3).log10();
    x0 + (l - LO) / (HI - LO) * width
}

fn chart(h: &mut String, suite: &str, rows: &[&serde_json::Value]) {
    // Each row: its label on one line, its bar beneath (labels are long).
    let (label_w, width, row) = (20.0, 760.0, 36.0);
    let height = row * rows.len() as f64 + 40.0;
    let _ = write!(
        h,
        "<h2>{s}</h2>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"900\" \
         height=\"{height}\" role=\"img\" data-suite=\"{s}\">\n",
        s = esc(suite)
    );
    // Axis ticks, and the parity line at 1.
    for (t, label) in [
        (0.01, "0.01"),
        (0.1, "0.1"),
        (1.0, "1"),
        (10.0, "10"),
        (100.0, "100"),
        (1000.0, "1000"),
    ] {
        let x = x_of(t, label_w, width);
        let (stroke, w) = if t == 1.0 {
            ("#222", 1.5)
        } else {
            ("#ddd", 1.0)
        };
        let _ = writeln!(
            h,
            "<line x1=\"{x:.1}\" y1=\"5\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"{stroke}\" \
             stroke-width=\"{w}\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}x</text>",
            height - 25.0,
            height - 10.0
        );
    }
    for (i, r) in rows.iter().enumerate() {
        let ratio = r["throughput_ratio"].as_f64().unwrap_or(f64::NAN);
        let y = 4.0 + row * i as f64;
        let label = format!(
            "{} — {} vs {}",
            r["case"].as_str().unwrap_or("?"),
            r["concur"].as_str().unwrap_or("?"),
            r["anchor"].as_str().unwrap_or("?")
        );
        let one = x_of(1.0, label_w, width);
        let x = if ratio.is_finite() {
            x_of(ratio, label_w, width)
        } else {
            one
        };
        let (left, w) = if x >= one {
            (one, x - one)
        } else {
            (x, one - x)
        };
        let colour = if ratio >= 1.0 { "#1a7f37" } else { "#cf222e" };
        let _ = writeln!(
            h,
            "<text x=\"{}\" y=\"{:.1}\">{}</text><rect x=\"{left:.1}\" \
             y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\" data-case=\"{}\" \
             data-concur=\"{}\" data-anchor=\"{}\" data-ratio=\"{ratio}\"/><text x=\"{:.1}\" \
             y=\"{:.1}\">{ratio:.2}x</text>",
            label_w,
            y + 11.0,
            esc(&label),
            y + 15.0,
            w.max(1.0),
            row - 22.0,
            esc(r["case"].as_str().unwrap_or("")),
            esc(r["concur"].as_str().unwrap_or("")),
            esc(r["anchor"].as_str().unwrap_or("")),
            left + w.max(1.0) + 4.0,
            y + 26.0,
        );
    }
    h.push_str("</svg>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parity_sits_between_the_ends_of_the_axis() {
        let (a, b, c) = (
            x_of(0.01, 0.0, 500.0),
            x_of(1.0, 0.0, 500.0),
            x_of(1000.0, 0.0, 500.0),
        );
        assert_eq!(a, 0.0);
        assert_eq!(c, 500.0);
        assert!((b - 200.0).abs() < 1e-9, "{b}");
    }
}
