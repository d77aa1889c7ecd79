//! `queue-workers`: the seed's image-download worker pool, and many-to-many delivery.

use super::{Ctx, Figure, Step, StepOutcome};
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

    /// 4 producers × 4 consumers through bounded(16): returns (received, distinct).
    fn many_to_many(per_producer: u64) -> Result<(usize, usize), String> {
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
        let distinct: HashSet<u64> = all.iter().copied().collect();
        Ok((all.len(), distinct.len()))
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
        let ((done, distinct, elapsed), (received, unique)) = match (pool, mm) {
            (Ok(p), Ok(m)) => (p, m),
            (Err(e), _) | (_, Err(e)) => return StepOutcome::new(vec![], "failed", false, e),
        };
        let sequential = each * urls as u32;
        let speedup = sequential.as_secs_f64() / elapsed.as_secs_f64().max(1e-9);
        let expected = 4 * per_producer as usize;
        let passed = done == urls && distinct == urls && received == expected && unique == expected;
        StepOutcome::new(
            vec![
                Figure::int("urls downloaded", done as i64, ""),
                Figure::int("distinct urls", distinct as i64, ""),
                Figure::float("pool time", elapsed.as_secs_f64() * 1e3, "ms"),
                Figure::float("sequential time", sequential.as_secs_f64() * 1e3, "ms"),
                Figure::float("speed-up (5 workers)", speedup, "x"),
                Figure::int("items through 4x4", received as i64, ""),
                Figure::int("distinct items", unique as i64, ""),
            ],
            format!("{done} downloads, {speedup:.1}x; {received} items, 0 lost"),
            passed,
            if passed {
                "every item delivered exactly once; join returned".to_owned()
            } else {
                format!(
                    "lost or duplicated: {done}/{distinct} of {urls}; {received}/{unique} of {expected}"
                )
            },
        )
    }
}
