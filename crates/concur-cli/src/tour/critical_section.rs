//! `critical-section`: one `Lock` keeps two threads' critical sections apart.
//!
//! Seed: the "critical section" example of Python's `threading` docs (`with lock:`),
//! CWE-362. Threads "A" and "B" each enter a section guarded by one
//! `concur::sync::Lock` many times. Every enter and exit takes a ticket from a global
//! sequence counter that is *not* protected by the lock, so the merged event log is the
//! real order in which events happened. The check: in that order every `enter` is
//! followed by the `exit` of the same thread — no two sections ever interleave. An
//! "occupancy" counter checked inside the section is a second, independent witness.

use super::{Ctx, Figure, Step, StepOutcome, group};
use concur::sync::{Barrier, Lock};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The `critical-section` step.
pub(super) struct CriticalSection;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Kind {
    Enter,
    Exit,
}

#[derive(Copy, Clone, Debug)]
struct Event {
    seq: u64,
    thread: u8,
    kind: Kind,
}

const NAMES: [&str; 2] = ["A", "B"];

impl Step for CriticalSection {
    fn name(&self) -> &'static str {
        "critical-section"
    }

    fn shows(&self) -> &'static str {
        "Threads A and B repeatedly enter a critical section guarded by one Lock; an \
         event log ordered by a global ticket counter proves no two sections ever overlap."
    }

    fn run(&self, ctx: &Ctx) -> StepOutcome {
        let per_thread: u64 = ctx.size(200_000, 20_000);
        let lock = Lock::new();
        let seq = Arc::new(AtomicU64::new(0));
        let inside = Arc::new(AtomicUsize::new(0));
        // Both threads start together, so their sections really compete.
        let start = Barrier::new(2);
        let bar = ctx.bar(2 * per_thread, "critical-section");

        let handles: Vec<_> = (0..2u8)
            .map(|t| {
                let (lock, seq, inside, start, bar) = (
                    lock.clone(),
                    seq.clone(),
                    inside.clone(),
                    start.clone(),
                    bar.clone(),
                );
                concur::thread::Builder::new()
                    .name(NAMES[usize::from(t)].to_owned())
                    .spawn(move || {
                        let mut log = Vec::with_capacity(2 * per_thread as usize);
                        let mut overlaps = 0u64;
                        if start.wait().is_err() {
                            return (log, u64::MAX); // the other thread never came
                        }
                        for i in 0..per_thread {
                            let guard = lock.acquire();
                            let s = seq.fetch_add(1, Ordering::SeqCst);
                            log.push(Event {
                                seq: s,
                                thread: t,
                                kind: Kind::Enter,
                            });
                            if inside.fetch_add(1, Ordering::SeqCst) != 0 {
                                overlaps += 1;
                            }
                            // A little work inside the section widens any window.
                            std::hint::black_box(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                            inside.fetch_sub(1, Ordering::SeqCst);
                            let s = seq.fetch_add(1, Ordering::SeqCst);
                            log.push(Event {
                                seq: s,
                                thread: t,
                                kind: Kind::Exit,
                            });
                            drop(guard);
                            if i % 256 == 255 {
                                // Outside the section, let the other thread in now
                                // and then: more hand-offs make a stronger check.
                                std::thread::yield_now();
                            }
                            if i % 4096 == 4095 {
                                bar.inc(4096);
                            }
                        }
                        (log, overlaps)
                    })
            })
            .collect();

        let mut log = Vec::with_capacity(4 * per_thread as usize);
        let mut overlaps: u64 = 0;
        for h in handles {
            match h {
                Ok(h) => match h.join() {
                    Ok((l, o)) => {
                        log.extend(l);
                        overlaps = overlaps.saturating_add(o);
                    }
                    Err(_) => {
                        bar.finish_and_clear();
                        return StepOutcome::new(vec![], "panicked", false, "a thread panicked");
                    }
                },
                Err(e) => {
                    bar.finish_and_clear();
                    return StepOutcome::new(
                        vec![],
                        "spawn failed",
                        false,
                        format!("could not spawn a thread: {e}"),
                    );
                }
            }
        }
        bar.finish_and_clear();

        log.sort_unstable_by_key(|e| e.seq);
        let (interleavings, switches) = check(&log);
        let sections = log.len() as u64 / 2;
        let passed = interleavings == 0 && overlaps == 0 && sections == 2 * per_thread;
        let figures = vec![
            Figure::int("sections", sections, ""),
            Figure::int("events logged", log.len() as u64, ""),
            Figure::int("interleavings", interleavings, ""),
            Figure::int("occupancy > 1 seen", overlaps, "times"),
            Figure::int("A<->B switches", switches, ""),
        ];
        let verdict = if passed {
            format!("0 interleavings in {} sections", group(sections))
        } else {
            format!("{interleavings} interleavings, {overlaps} overlapping entries")
        };
        StepOutcome::new(
            figures,
            format!("{} sections", group(sections)),
            passed,
            verdict,
        )
        .with_chart(timeline(&log))
    }
}

/// The HTML report's picture: 48 consecutive sections around the first hand-over from
/// one thread to the other, each as (thread, enter ticket, exit ticket).
fn timeline(log: &[Event]) -> serde_json::Value {
    let switch = log
        .windows(2)
        .position(|w| w[0].thread != w[1].thread && w[0].kind == Kind::Exit)
        .unwrap_or(0);
    let from = switch.saturating_sub(24) & !1; // an enter
    let sections: Vec<serde_json::Value> = log[from..]
        .chunks_exact(2)
        .take(48)
        .map(|p| {
            serde_json::json!({
                "thread": NAMES[usize::from(p[0].thread)],
                "enter": p[0].seq,
                "exit": p[1].seq,
            })
        })
        .collect();
    serde_json::json!({
        "title": "threads A and B in the critical section (x: the global ticket order)",
        "kind": "timeline",
        "sections": sections,
    })
}

/// Counts enter/exit pairs broken by another event, and owner switches between sections.
fn check(log: &[Event]) -> (u64, u64) {
    let mut interleavings = 0;
    let mut switches = 0;
    let mut last_owner = None;
    for pair in log.chunks(2) {
        match pair {
            [enter, exit]
                if enter.kind == Kind::Enter
                    && exit.kind == Kind::Exit
                    && enter.thread == exit.thread =>
            {
                if last_owner.is_some_and(|o| o != enter.thread) {
                    switches += 1;
                }
                last_owner = Some(enter.thread);
            }
            _ => interleavings += 1,
        }
    }
    (interleavings, switches)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: u64, thread: u8, kind: Kind) -> Event {
        Event { seq, thread, kind }
    }

    #[test]
    fn clean_log_has_no_interleavings() {
        let log = [
            ev(0, 0, Kind::Enter),
            ev(1, 0, Kind::Exit),
            ev(2, 1, Kind::Enter),
            ev(3, 1, Kind::Exit),
        ];
        assert_eq!(check(&log), (0, 1));
    }

    #[test]
    fn overlapping_sections_are_caught() {
        let log = [
            ev(0, 0, Kind::Enter),
            ev(1, 1, Kind::Enter),
            ev(2, 0, Kind::Exit),
            ev(3, 1, Kind::Exit),
        ];
        assert_eq!(check(&log).0, 2);
    }
}
