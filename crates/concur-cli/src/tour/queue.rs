//! `queue-workers`: the seed's image-download worker pool, and many-to-many delivery.

use super::{Ctx, Figure, Step, StepOutcome, python};
use concur::queue::Queue;
use concur::sync::Lock;
use concur::thread;
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// A bounded `Queue`, daemon worker threads, `task_done` and `join` (the seed's image
/// downloads, with each download simulated by a sleep), then 4 producers × 4 consumers.
pub(super) struct QueueWorkers;

const WORKERS: usize = 5;

impl QueueWorkers {
    /// The worker pool: returns (downloads done, distinct urls, elapsed).
    fn pool(urls: usize, each: Duration) -> Result<(usize, usize, Duration), String> {
        let q = Queue::bounded(64);
        let done = Lock::with_value(Vec::with_capacity(urls));
        let start = Instant::now();
        for i in 0..WORKERS {
            let (q, done) = (q.clone(), done.clone());
            thread::Builder::new()
                .name(format!("downloader-{i}"))
                .daemon(true)
                .spawn(move || {
                    for url in q.iter() {
                        std::thread::sleep(each); // download(url)
                        done.acquire().push(url);
                        if q.task_done().is_err() {
                            break;
                        }
                    }
                })
                .map_err(|e| e.to_string())?;
        }
        for i in 0..urls {
            q.put(format!("https://img.example/{i}.png"))
                .map_err(|e| e.to_string())?;
        }
        if !q.join_timeout(Duration::from_secs(60)) {
            return Err("join did not return within 60 s".into());
        }
        let elapsed = start.elapsed();
        q.shutdown(false);
        let done = done.acquire();
        let distinct: HashSet<&String> = done.iter().collect();
        Ok((done.len(), distinct.len(), elapsed))
    }

    /// 4 producers × 4 consumers through bounded(16): returns (received, distinct,
    /// elapsed).
    fn many_to_many(per_producer: u64) -> Result<(usize, usize, Duration), String> {
        let start = Instant::now();
        let q = Queue::bounded(16);
        let mut consumers = Vec::new();
        for c in 0..4 {
            let q = q.clone();
            consumers.push(
                thread::Builder::new()
                    .name(format!("consumer-{c}"))
                    .spawn(move || {
                        let mut got = Vec::new();
                        for v in q.iter() {
                            got.push(v);
                            let _ = q.task_done();
                        }
                        got
                    })
                    .map_err(|e| e.to_string())?,
            );
        }
        let mut producers = Vec::new();
        for p in 0..4u64 {
            let q = q.clone();
            producers.push(
                thread::Builder::new()
                    .name(format!("producer-{p}"))
                    .spawn(move || {
                        for i in 0..per_producer {
                            if q.put(p * per_producer + i).is_err() {
                                break;
                            }
                        }
                    })
                    .map_err(|e| e.to_string())?,
            );
        }
        for mut p in producers {
            p.join_timeout(Duration::from_secs(60))
                .map_err(|e| e.to_string())?;
        }
        if !q.join_timeout(Duration::from_secs(60)) {
            return Err("join did not return".into());
        }
        q.shutdown(false);
        let mut all = Vec::new();
        for mut c in consumers {
            all.extend(
                c.join_timeout(Duration::from_secs(60))
                    .map_err(|e| e.to_string())?,
            );
        }
        let elapsed = start.elapsed();
        let distinct: HashSet<u64> = all.iter().copied().collect();
        Ok((all.len(), distinct.len(), elapsed))
    }
}

impl Step for QueueWorkers {
    fn name(&self) -> &'static str {
        "queue-workers"
    }

    fn shows(&self) -> &'static str {
        "The image-download pool: a bounded Queue feeds 5 daemon worker threads that call \
         task_done; join returns once every url is downloaded exactly once. Then 4 \
         producers x 4 consumers pass 40,000 distinct items: none lost, none duplicated."
    }

    fn run(&self, ctx: &Ctx) -> StepOutcome {
        let urls: usize = ctx.size(200, 40);
        let each = Duration::from_millis(ctx.size(5, 2));
        let per_producer: u64 = ctx.size(10_000, 2_500);
        let bar = ctx.bar(2, "queue-workers");
        let pool = Self::pool(urls, each);
        bar.inc(1);
        let mm = Self::many_to_many(per_producer);
        bar.finish_and_clear();
        let ((done, distinct, elapsed), (received, unique, mm_time)) = match (pool, mm) {
            (Ok(p), Ok(m)) => (p, m),
            (Err(e), _) | (_, Err(e)) => return StepOutcome::new(vec![], "failed", false, e),
        };
        let sequential = each * urls as u32;
        let speedup = sequential.as_secs_f64() / elapsed.as_secs_f64().max(1e-9);
        let expected = 4 * per_producer as usize;
        let per_sec = received as f64 / mm_time.as_secs_f64().max(1e-9);
        // The seed's own program: queue.Queue(64), 5 daemon threads, task_done, join.
        let args = [
            "queue".to_owned(),
            urls.to_string(),
            each.as_millis().to_string(),
            WORKERS.to_string(),
        ];
        let py = python::run(&args, Duration::from_secs(120));
        let mut figures = vec![
            Figure::int("urls downloaded", done as i64, ""),
            Figure::int("distinct urls", distinct as i64, ""),
            Figure::float("pool time", elapsed.as_secs_f64() * 1e3, "ms"),
            Figure::float("sequential time", sequential.as_secs_f64() * 1e3, "ms"),
            Figure::float("speed-up (5 workers)", speedup, "x"),
            Figure::int("items through 4x4", received as i64, ""),
            Figure::int("distinct items", unique as i64, ""),
            Figure::float("4x4 throughput", per_sec, "items/s"),
        ];
        let mut bars = vec![
            serde_json::json!({"label": "sequential", "value": sequential.as_secs_f64() * 1e3}),
            serde_json::json!({"label": "concur Queue, 5 threads", "value": elapsed.as_secs_f64() * 1e3}),
        ];
        let mut py_ok = true;
        match &py {
            Ok(Some(v)) => {
                let t = python::field(v, "elapsed_s").unwrap_or(f64::NAN) * 1e3;
                let got = v["distinct"].as_u64() == Some(urls as u64);
                py_ok = got;
                figures.push(Figure::float("Python queue.Queue pool time", t, "ms"));
                bars.push(
                    serde_json::json!({"label": "Python queue.Queue, 5 threads", "value": t}),
                );
            }
            Ok(None) => figures.push(Figure::text("Python", "python3 not found: not run")),
            Err(e) => {
                py_ok = false;
                figures.push(Figure::text("Python", format!("failed: {e}")));
            }
        }
        let passed =
            done == urls && distinct == urls && received == expected && unique == expected && py_ok;
        StepOutcome::new(
            figures,
            format!("{done} downloads, {speedup:.1}x; {received} items, 0 lost"),
            passed,
            if passed {
                "every item delivered exactly once; join returned".to_owned()
            } else if !py_ok {
                format!("the Python seed did not deliver every url: {py:?}")
            } else {
                format!(
                    "lost or duplicated: {done}/{distinct} of {urls}; {received}/{unique} of {expected}"
                )
            },
        )
        .with_chart(serde_json::json!({
            "title": "the image-download pool: time for every url (sleep-bound)",
            "unit": "ms",
            "bars": bars,
            "note": format!("4 producers x 4 consumers: {per_sec:.0} items/s through bounded(16)"),
        }))
    }
}
