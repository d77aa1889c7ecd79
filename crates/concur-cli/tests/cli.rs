//! Runs the built `concur` binary and checks its exit codes and JSON documents.
//!
//! Every child is bounded: one that runs longer than [`LIMIT`] is killed and the test
//! fails with a message, so a hung tour or benchmark can never hang the test suite.

use serde_json::Value;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(120);

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `concur ARGS`, killing it after [`LIMIT`].
fn concur(args: &[&str]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_concur"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the concur binary");
    // Drain both pipes on their own threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).map(|_| s)
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).map(|_| s)
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for concur") {
            break status;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`concur {}` ran longer than {LIMIT:?}: probable hang; killed",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Run {
        code: status.code(),
        stdout: out_reader
            .join()
            .expect("stdout reader")
            .expect("read stdout"),
        stderr: err_reader
            .join()
            .expect("stderr reader")
            .expect("read stderr"),
    }
}

/// Runs one bench suite quickly (`--quick --json --runs 1`), checks it exited cleanly
/// with no errors and ran only that suite, and returns its JSON document.
fn bench_suite_json(suite: &str) -> Value {
    // Every suite's run also writes its HTML report, checked against the same document.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-report");
    std::fs::create_dir_all(&dir).expect("report dir");
    let page = dir.join(format!("{suite}.html"));
    let _ = std::fs::remove_file(&page);
    let run = concur(&[
        "bench",
        "--quick",
        "--json",
        "--runs",
        "1",
        "--suite",
        suite,
        "--report",
        page.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(run.code, Some(0), "exit code; stderr:\n{}", run.stderr);
    let doc = json(&run);
    bench_report_matches_json(
        &std::fs::read_to_string(&page).expect("report written"),
        &doc,
    );
    assert_eq!(
        doc["errors"].as_array().map(Vec::len),
        Some(0),
        "{}",
        doc["errors"]
    );
    assert_eq!(doc["config"]["suites"], serde_json::json!([suite]));
    doc
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        )
    })
}

#[test]
fn tour_quick_json_passes_and_has_every_step() {
    // The HTML report of the same run goes where the screenshot script finds it
    // (`scripts/report-screenshot.sh`).
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("tour-report");
    std::fs::create_dir_all(&dir).expect("report dir");
    let page = dir.join("tour.html");
    let _ = std::fs::remove_file(&page);
    let run = concur(&[
        "tour",
        "--quick",
        "--json",
        "--report",
        page.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(run.code, Some(0), "exit code; stderr:\n{}", run.stderr);
    let doc = json(&run);
    std::fs::write(dir.join("tour.json"), &run.stdout).expect("write the JSON beside it");
    report_matches_json(
        &std::fs::read_to_string(&page).expect("the report was written"),
        &doc,
    );
    assert_eq!(doc["quick"], true);
    assert_eq!(doc["passed"], true);
    assert_eq!(doc["steps_failed"], 0);
    let steps = doc["steps"].as_array().expect("steps array");
    let names: Vec<&str> = steps.iter().filter_map(|s| s["name"].as_str()).collect();
    for want in [
        "critical-section",
        "locked-counter",
        "cpu-bound",
        "futures",
        "nested",
        "pool-map",
        "processes",
        "shared-counter",
    ] {
        assert!(names.contains(&want), "step {want} missing from {names:?}");
    }
    assert_eq!(doc["steps_run"].as_u64(), Some(steps.len() as u64));
    for step in steps {
        assert_eq!(step["passed"], true, "step failed: {step}");
        assert!(step["shows"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(step["key_figure"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(step["verdict"].as_str().is_some());
        assert!(step["elapsed_ms"].as_f64().is_some());
        let figures = step["figures"].as_array().expect("figures array");
        assert!(!figures.is_empty(), "no figures for {}", step["name"]);
        for f in figures {
            assert!(f["name"].is_string() && f["unit"].is_string() && !f["value"].is_null());
        }
    }
    let counter = steps
        .iter()
        .find(|s| s["name"] == "locked-counter")
        .expect("locked-counter");
    let total = counter["figures"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["name"] == "locked: final value"))
        .expect("locked total figure");
    assert_eq!(total["value"], 0);

    let figure = |step: &str, name: &str| -> Value {
        steps
            .iter()
            .find(|s| s["name"] == step)
            .and_then(|s| s["figures"].as_array())
            .and_then(|fs| fs.iter().find(|f| f["name"] == name))
            .map(|f| f["value"].clone())
            .unwrap_or_else(|| panic!("no figure {name:?} in step {step}"))
    };
    // as_completed: one failed download, its error reported at its own page.
    assert_eq!(figure("futures", "downloaded"), 7);
    let error = figure("futures", "error (at its page)");
    assert!(
        error.as_str().is_some_and(|e| e.starts_with("page 3: ")),
        "{error}"
    );
    // Nested waits complete with the right values (Python deadlocks on these).
    assert_eq!(figure("nested", "pool of 1: nested result"), 42);
    assert_eq!(
        figure("nested", "pool of 2: 10 outer x inner"),
        "[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]"
    );
    assert_eq!(figure("nested", "tree on pool of 1: leaves"), 25);
    assert_eq!(
        figure("pool-map", "progress reported"),
        figure("pool-map", "items")
    );
    // Processes: the same lists built in 2 children as sequentially.
    assert_eq!(
        figure("processes", "checksum"),
        figure("processes", "checksum (processes)")
    );
    // A shared Value under its lock across 4 processes: exact; without it: never more.
    assert_eq!(
        figure("shared-counter", "locked: final value"),
        figure("shared-counter", "locked: expected")
    );
    let expected = figure("shared-counter", "locked: expected").as_u64();
    let racy = figure("shared-counter", "racy: final value").as_u64();
    assert!(
        racy <= expected && expected == Some(4 * 20_000),
        "{racy:?} {expected:?}"
    );
}

#[test]
fn bench_quick_json_one_run_has_results_ratios_and_machine() {
    let run = concur(&[
        "bench", "--quick", "--json", "--runs", "1", "--suite", "lock",
    ]);
    assert_eq!(run.code, Some(0), "exit code; stderr:\n{}", run.stderr);
    let doc = json(&run);
    for key in ["cpu_model", "kernel", "rustc", "git_commit"] {
        assert!(doc["machine"][key].is_string(), "machine.{key} missing");
    }
    assert!(doc["machine"]["cores"].as_u64().is_some_and(|n| n >= 1));
    assert_eq!(doc["config"]["runs"], 1);
    assert_eq!(doc["errors"].as_array().map(Vec::len), Some(0));
    let results = doc["results"].as_array().expect("results array");
    for case in ["uncontended", "contended-2"] {
        for lock in [
            "concur::sync::Lock",
            "std::sync::Mutex",
            "parking_lot::Mutex",
        ] {
            let m = results
                .iter()
                .find(|m| m["suite"] == "lock" && m["case"] == case && m["subject"] == lock)
                .unwrap_or_else(|| panic!("no result for {lock} / {case}"));
            assert_eq!(m["runs_ns_per_op"].as_array().map(Vec::len), Some(1));
            assert!(m["median_ns_per_op"].as_f64().is_some_and(|x| x > 0.0));
            assert!(m["median_ops_per_sec"].as_f64().is_some_and(|x| x > 0.0));
        }
        let ratio = doc["ratios"]
            .as_array()
            .and_then(|rs| {
                rs.iter()
                    .find(|r| r["case"] == case && r["family"] == "lock")
            })
            .unwrap_or_else(|| panic!("no ratio for {case}"));
        assert!(ratio["throughput_ratio"].as_f64().is_some_and(|x| x > 0.0));
        assert_eq!(ratio["anchor"], "parking_lot::Mutex");
    }
}

#[test]
fn bad_usage_exits_2() {
    let run = concur(&["tour", "--no-such-flag"]);
    assert_eq!(run.code, Some(2), "stderr:\n{}", run.stderr);
    let run = concur(&["bench", "--runs", "0"]);
    assert_eq!(run.code, Some(2), "stderr:\n{}", run.stderr);
}

/// The bench page is well-formed, embeds the document and draws one bar per ratio with
/// exactly its value.
fn bench_report_matches_json(html: &str, doc: &Value) {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let page = roxmltree::Document::parse_with_options(html, opts)
        .unwrap_or_else(|e| panic!("bench report is not well-formed: {e}"));
    let embedded = page
        .descendants()
        .find(|n| n.attribute("id") == Some("bench-data"))
        .and_then(|n| n.text())
        .expect("the embedded JSON");
    let embedded: Value = serde_json::from_str(embedded).expect("embedded JSON parses");
    assert_eq!(&embedded, doc, "the page embeds another document");
    let bars: Vec<_> = page
        .descendants()
        .filter(|n| n.has_attribute("data-ratio"))
        .collect();
    let ratios = doc["ratios"].as_array().expect("ratios");
    assert_eq!(bars.len(), ratios.len(), "one bar per ratio");
    for (bar, r) in bars.iter().zip(ratios) {
        assert_eq!(bar.attribute("data-case"), r["case"].as_str());
        assert_eq!(bar.attribute("data-anchor"), r["anchor"].as_str());
        let drawn = bar
            .attribute("data-ratio")
            .and_then(|v| serde_json::from_str::<Value>(v).ok())
            .and_then(|v| v.as_f64());
        assert_eq!(drawn, r["throughput_ratio"].as_f64(), "{r}");
    }
}

#[test]
fn bench_human_output_fits_100_columns() {
    let run = concur(&["bench", "--quick", "--runs", "1", "--suite", "queue"]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    assert!(run.stdout.contains("vs "), "{}", run.stdout);
    for line in run.stdout.lines() {
        assert!(
            line.chars().count() <= 100,
            "wider than 100 columns: {line:?}"
        );
    }
}

/// The page is well-formed XHTML, embeds the same JSON document, shows every figure
/// with exactly its JSON value, and draws the pictures the issue asks for.
fn report_matches_json(html: &str, doc: &Value) {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true, // <!DOCTYPE html>
        ..roxmltree::ParsingOptions::default()
    };
    let page = roxmltree::Document::parse_with_options(html, opts)
        .unwrap_or_else(|e| panic!("report is not well-formed: {e}"));
    let embedded = page
        .descendants()
        .find(|n| n.attribute("id") == Some("tour-data"))
        .and_then(|n| n.text())
        .expect("the embedded JSON");
    let embedded: Value = serde_json::from_str(embedded).expect("embedded JSON parses");
    // Same run: the embedded document is the one printed (elapsed times included).
    assert_eq!(
        &embedded, doc,
        "the page embeds another document than --json printed"
    );
    let mut shown = std::collections::HashMap::new();
    for n in page
        .descendants()
        .filter(|n| n.has_attribute("data-figure"))
    {
        let key = (
            n.attribute("data-step").unwrap_or(""),
            n.attribute("data-figure").unwrap_or(""),
        );
        let value: Value = serde_json::from_str(n.attribute("data-value").expect("data-value"))
            .expect("data-value is JSON");
        assert!(
            shown.insert(key, value).is_none(),
            "figure {key:?} shown twice"
        );
    }
    let mut count = 0;
    for step in doc["steps"].as_array().expect("steps") {
        let name = step["name"].as_str().expect("name");
        let status = page
            .descendants()
            .find(|n| n.attribute("data-step") == Some(name) && n.has_attribute("data-status"))
            .and_then(|n| n.attribute("data-status"));
        assert_eq!(status, step["status"].as_str(), "status of {name}");
        for f in step["figures"].as_array().expect("figures") {
            let fname = f["name"].as_str().expect("figure name");
            assert_eq!(
                shown.get(&(name, fname)),
                Some(&f["value"]),
                "{name} / {fname}"
            );
            count += 1;
        }
        // Each bar drawn carries its chart's value.
        if let Some(bars) = step["chart"]["bars"].as_array() {
            for b in bars {
                let label = b["label"].as_str().expect("label");
                let drawn = page
                    .descendants()
                    .find(|n| {
                        n.attribute("data-step") == Some(name)
                            && n.attribute("data-bar") == Some(label)
                    })
                    .and_then(|n| n.attribute("data-value"))
                    // Parsed as the JSON was, by serde_json (whose float parsing is not
                    // the standard library's).
                    .and_then(|v| serde_json::from_str::<Value>(v).ok())
                    .and_then(|v| v.as_f64());
                assert_eq!(drawn, b["value"].as_f64(), "bar {label} of {name}");
            }
        }
    }
    assert_eq!(
        count,
        shown.len(),
        "the page shows figures the JSON does not have"
    );
    // The pictures: speed-up bars with Python beside concur (python3 is on the test
    // machines), the critical section's timeline, the queue pool's times.
    let bars_of = |step: &str| -> Vec<&str> {
        page.descendants()
            .filter(|n| n.attribute("data-step") == Some(step))
            .filter_map(|n| n.attribute("data-bar"))
            .collect()
    };
    let cpu = bars_of("cpu-bound");
    for want in [
        "sequential",
        "Python threads",
        "Python processes",
        "concur threads",
        "concur processes",
    ] {
        assert!(cpu.contains(&want), "cpu-bound bars {cpu:?} lack {want}");
    }
    assert!(
        bars_of("queue-workers")
            .iter()
            .any(|b| b.starts_with("Python"))
    );
    assert!(
        page.descendants()
            .filter(|n| n.has_attribute("data-enter"))
            .count()
            >= 20,
        "the critical-section timeline has too few sections"
    );
}

#[test]
fn tour_human_output_ends_with_a_summary() {
    let run = concur(&["tour", "--quick"]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    assert!(run.stdout.contains("Summary"), "{}", run.stdout);
    for line in run.stdout.lines() {
        assert!(
            line.chars().count() <= 100,
            "wider than 100 columns: {line:?}"
        );
    }
    assert!(run.stdout.contains("all 3 steps passed") || run.stdout.contains("steps passed"));
    // Not a terminal: no progress bar may leak into stderr.
    assert!(
        !run.stderr.contains('['),
        "progress bar drawn to a pipe:\n{}",
        run.stderr
    );
}

#[test]
fn bench_queue_suite_measures_concur_beside_crossbeam() {
    let run = concur(&[
        "bench", "--quick", "--json", "--runs", "1", "--suite", "queue",
    ]);
    assert_eq!(run.code, Some(0), "exit code; stderr:\n{}", run.stderr);
    let doc = json(&run);
    assert_eq!(doc["errors"].as_array().map(Vec::len), Some(0));
    let results = doc["results"].as_array().expect("results array");
    for case in ["spsc-bounded", "mpsc-4-1-unbounded", "mpmc-4-4-bounded"] {
        for subject in ["concur::queue::Queue", "crossbeam-channel"] {
            let m = results
                .iter()
                .find(|m| m["suite"] == "queue" && m["case"] == case && m["subject"] == subject)
                .unwrap_or_else(|| panic!("no result for {subject} / {case}"));
            assert!(m["median_ns_per_op"].as_f64().is_some_and(|x| x > 0.0));
        }
        let ratio = doc["ratios"]
            .as_array()
            .and_then(|rs| {
                rs.iter()
                    .find(|r| r["case"] == case && r["anchor"] == "crossbeam-channel")
            })
            .unwrap_or_else(|| panic!("no ratio for {case}"));
        assert!(ratio["throughput_ratio"].as_f64().is_some_and(|x| x > 0.0));
    }
    // std mpsc has one receiver: it never appears in a multi-consumer case.
    assert!(
        !results
            .iter()
            .any(|m| m["subject"] == "std::sync::mpsc" && m["case"] == "mpmc-2-2-bounded")
    );
}

#[test]
fn bench_process_suite_measures_concur_beside_the_os_floor() {
    let doc = bench_suite_json("process");
    let results = doc["results"].as_array().expect("results array");
    for (case, concur, anchor) in [
        (
            "start-join",
            "concur Process (Spawn)",
            "bare exec of this binary",
        ),
        (
            "start-join",
            "concur Process (Fork)",
            "bare exec of this binary",
        ),
        (
            "pipe-round-trip",
            "concur Connection (u64)",
            "raw socketpair 8 B",
        ),
        (
            "array-write",
            "concur Array<u8>::copy_from_slice",
            "memcpy into a Vec<u8>",
        ),
    ] {
        for subject in [concur, anchor] {
            let m = results
                .iter()
                .find(|m| m["suite"] == "process" && m["case"] == case && m["subject"] == subject)
                .unwrap_or_else(|| panic!("no result for {subject} / {case}"));
            assert!(m["median_ns_per_op"].as_f64().is_some_and(|x| x > 0.0));
        }
        let ratio = doc["ratios"]
            .as_array()
            .and_then(|rs| {
                rs.iter()
                    .find(|r| r["case"] == case && r["concur"] == concur && r["anchor"] == anchor)
            })
            .unwrap_or_else(|| panic!("no ratio for {concur} / {anchor}"));
        assert!(ratio["throughput_ratio"].as_f64().is_some_and(|x| x > 0.0));
    }
}

#[test]
fn bench_pool_suite_measures_concur_beside_procspawn() {
    let doc = bench_suite_json("pool");
    let results = doc["results"].as_array().expect("results array");
    for (case, subject) in [
        ("submit-result", "concur ProcessPoolExecutor (ForkServer)"),
        ("submit-result", "procspawn Pool spawn+join"),
        ("map", "concur ProcessPool::map"),
    ] {
        let m = results
            .iter()
            .find(|m| m["suite"] == "pool" && m["case"] == case && m["subject"] == subject)
            .unwrap_or_else(|| panic!("no result for {subject} / {case}"));
        assert!(m["median_ns_per_op"].as_f64().is_some_and(|x| x > 0.0));
    }
    // procspawn is always there (Python only where python3 is installed).
    let ratio = doc["ratios"]
        .as_array()
        .and_then(|rs| {
            rs.iter()
                .find(|r| r["suite"] == "pool" && r["anchor"] == "procspawn Pool spawn+join")
        })
        .expect("a ratio against procspawn");
    assert!(ratio["throughput_ratio"].as_f64().is_some_and(|x| x > 0.0));
}

#[test]
fn bench_manager_suite_measures_concur_beside_a_raw_socket() {
    let doc = bench_suite_json("manager");
    let results = doc["results"].as_array().expect("results array");
    for (case, subject, clients) in [
        ("dict-get", "concur Manager Dict::get", 1),
        ("dict-get", "raw unix socket ping-pong 8 B", 1),
        ("dict-get-aggregate", "concur Manager Dict::get x4", 4),
        ("dict-get-aggregate", "concur Dict::get_many pipelined", 1),
    ] {
        let m = results
            .iter()
            .find(|m| m["suite"] == "manager" && m["case"] == case && m["subject"] == subject)
            .unwrap_or_else(|| panic!("no result for {subject} / {case}"));
        assert!(m["median_ns_per_op"].as_f64().is_some_and(|x| x > 0.0));
        assert_eq!(m["threads"], clients);
    }
    // The raw ping-pong is always there (Python only where python3 is installed).
    let ratio = doc["ratios"]
        .as_array()
        .and_then(|rs| {
            rs.iter().find(|r| {
                r["suite"] == "manager"
                    && r["concur"] == "concur Manager Dict::get"
                    && r["anchor"] == "raw unix socket ping-pong 8 B"
            })
        })
        .expect("a ratio against the raw socket");
    assert!(ratio["throughput_ratio"].as_f64().is_some_and(|x| x > 0.0));
}

#[test]
fn bench_cluster_suite_measures_concur_beside_a_bare_redis_client() {
    let doc = bench_suite_json("cluster");
    let results = doc["results"].as_array().expect("results array");
    for (case, subject) in [
        ("submit-result", "concur RedisExecutor (2 workers)"),
        ("submit-result", "bare redis, MULTI per task"),
        ("submit-result", "bare redis, MULTIs pipelined"),
        ("round-trip", "concur RedisExecutor call+result"),
        ("round-trip", "bare redis, MULTI per task"),
        ("map", "concur RedisExecutor::map (chunks of 10,000)"),
        ("reclaim", "concur worker SIGKILLed mid-task (lease 1 s)"),
    ] {
        let m = results
            .iter()
            .find(|m| m["suite"] == "cluster" && m["case"] == case && m["subject"] == subject)
            .unwrap_or_else(|| panic!("no result for {subject} / {case}"));
        assert!(m["median_ns_per_op"].as_f64().is_some_and(|x| x > 0.0));
    }
    let ratio = doc["ratios"]
        .as_array()
        .and_then(|rs| {
            rs.iter().find(|r| {
                r["suite"] == "cluster"
                    && r["case"] == "submit-result"
                    && r["anchor"] == "bare redis, MULTIs pipelined"
            })
        })
        .expect("a ratio against the bare client");
    assert!(ratio["throughput_ratio"].as_f64().is_some_and(|x| x > 0.0));
}

/// `concur worker` joins the pool, dead-letters a malformed entry, and drains on
/// SIGTERM, printing its counters.
#[test]
fn the_worker_command_serves_a_pool_and_drains_on_sigterm() {
    let redis =
        concur::cluster::RedisServer::start().expect("redis-server (scripts/test.sh installs it)");
    let url = redis.url();
    let mut child = Command::new(env!("CARGO_BIN_EXE_concur"))
        .args([
            "worker", "--redis", &url, "--pool", "cli", "--slots", "1", "--json",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn concur worker");
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut con = client.get_connection().unwrap();
    let tag = format!(":{}:", child.id());
    let joined = Instant::now();
    loop {
        let members: Vec<String> = redis::cmd("SMEMBERS")
            .arg("concur:cli:workers")
            .query(&mut con)
            .unwrap();
        if members.iter().any(|m| m.contains(&tag)) {
            break;
        }
        if joined.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("concur worker did not join the pool");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _: String = redis::cmd("XADD")
        .arg("concur:cli:tasks")
        .arg("*")
        .arg("garbage")
        .arg("1")
        .query(&mut con)
        .unwrap();
    let dead = Instant::now();
    while redis::cmd("XLEN")
        .arg("concur:cli:dead")
        .query::<u64>(&mut con)
        .unwrap()
        == 0
    {
        assert!(
            dead.elapsed() < LIMIT,
            "the malformed entry was not dead-lettered"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: sends SIGTERM to our own child, not yet reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let stopped = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if stopped.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("concur worker did not drain and exit on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let stats: Value = serde_json::from_str(out.trim()).expect("final counters as JSON");
    assert_eq!(stats["bad_entries"], 1, "{stats}");
}

/// `concur cluster status` and `dead-letters` read a pool (here an empty one).
#[test]
fn cluster_status_and_dead_letters_read_a_pool() {
    let redis = concur::cluster::RedisServer::start().expect("redis-server");
    let url = redis.url();
    let run = concur(&["cluster", "status", "--redis", &url, "--pool", "empty"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("pool empty"), "{}", run.stdout);
    assert!(
        run.stdout.lines().all(|l| l.chars().count() <= 100),
        "{}",
        run.stdout
    );
    let run = concur(&[
        "cluster", "status", "--redis", &url, "--pool", "empty", "--json",
    ]);
    let doc = json(&run);
    assert_eq!(doc["queued"], 0);
    assert_eq!(doc["workers"], serde_json::json!([]));
    let run = concur(&[
        "cluster",
        "dead-letters",
        "--redis",
        &url,
        "--pool",
        "empty",
        "--json",
    ]);
    assert_eq!(json(&run), serde_json::json!([]));
    let run = concur(&[
        "cluster",
        "dead-letters",
        "--redis",
        &url,
        "--pool",
        "empty",
        "--requeue",
        "1-1",
    ]);
    assert_eq!(run.code, Some(1), "requeueing a missing dead letter fails");
}
