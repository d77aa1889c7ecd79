//! The dispatch policy of a process pool, as one pure function: from the length of the
//! queue and what each worker holds, [`decide`] says what the dispatcher does next —
//! start a worker, hand queued tasks out, take tasks back from a busy worker for an
//! idle one, or nothing. It touches no process, socket or lock, so every rule is unit
//! tested below; the dispatcher (`engine`) asks it in a loop and carries each answer
//! out until it says [`Decision::Settled`].
//!
//! The rules, in the order they are tried:
//!
//! 1. **Another worker helps** while there are more tasks (queued and in flight) than
//!    open workers, and fewer open workers than `max_workers`.
//! 2. **Hand-outs**: each open worker with room takes a share of the queue, least
//!    loaded first, where a share is the queue divided by the workers with room
//!    (rounded up): a few tasks spread over every worker instead of piling onto the
//!    first. Room is what is left of [`MAX_INFLIGHT`] tasks ahead of its reports, and
//!    of its `max_tasks_per_child` budget.
//! 3. **Take-back**: with the queue empty, an idle worker (nothing in flight, room to
//!    take some) and another open worker holding at least two tasks (one running, the
//!    rest waiting behind it), half of the busiest one's tasks go back to the queue;
//!    the next round hands them to the idle one. Which of those have really not
//!    started is decided by each task's word in `slots` (a task that started stays).
//!    A retiring worker keeps the tasks it was handed (its last ones, within its
//!    `max_tasks_per_child` budget; a worker recycled for its memory gave its waiting
//!    tasks back already).
//! 4. **Settled**: nothing to do until something changes.
//!
//! Between two rounds the dispatcher sleeps; [`wants_new_tasks`] says whether a new
//! task should wake it (only if it could do something with it: a worker has room, or
//! another worker may be started).
//!
//! A worker is *open* unless it is retiring (its budget of tasks is spent, it recycles,
//! or the pool shuts down) or was killed.

use super::slots::MAX_INFLIGHT;

/// What the policy needs to know of one worker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct WorkerLoad {
    /// Tasks handed to it without a report yet (the oldest is running).
    pub(crate) in_flight: usize,
    /// Tasks handed to it in its life.
    pub(crate) given: u64,
    /// It takes no more tasks and exits once its last report is in.
    pub(crate) retiring: bool,
    /// It was killed (a time or memory limit, or `terminate`); its end is awaited.
    pub(crate) killed: bool,
}

/// The pool's limits that the policy applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) max_workers: usize,
    pub(crate) max_tasks_per_child: Option<usize>,
}

/// What the dispatcher does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Start one more worker.
    StartWorker,
    /// Hand tasks from the front of the queue: `(worker, how many)`, in this order.
    Hand(Vec<(usize, usize)>),
    /// Take up to `count` tasks that have not started back from `worker`, newest first.
    TakeBack { worker: usize, count: usize },
    /// Nothing to do until something changes.
    Settled,
}

/// How many more tasks `w` takes now.
fn room(w: &WorkerLoad, limits: &Limits) -> usize {
    if w.retiring || w.killed {
        return 0;
    }
    let budget = limits
        .max_tasks_per_child
        .map_or(u64::MAX, |m| (m as u64).saturating_sub(w.given));
    MAX_INFLIGHT
        .saturating_sub(w.in_flight)
        .min(usize::try_from(budget).unwrap_or(usize::MAX))
}

/// The next step for a pool with `queued` tasks waiting and these `workers`.
pub(crate) fn decide(queued: usize, workers: &[WorkerLoad], limits: &Limits) -> Decision {
    let open = workers.iter().filter(|w| !w.retiring && !w.killed).count();
    let in_flight: usize = workers.iter().map(|w| w.in_flight).sum();
    if queued > 0 && queued + in_flight > open && open < limits.max_workers {
        return Decision::StartWorker;
    }
    let rooms: Vec<usize> = workers.iter().map(|w| room(w, limits)).collect();
    if queued > 0 {
        let mut order: Vec<usize> = (0..workers.len()).filter(|&i| rooms[i] > 0).collect();
        if !order.is_empty() {
            order.sort_by_key(|&i| workers[i].in_flight);
            let share = queued.div_ceil(order.len()).max(1);
            let mut left = queued;
            let mut plan = Vec::with_capacity(order.len());
            for i in order {
                let n = rooms[i].min(share).min(left);
                if n == 0 {
                    break;
                }
                plan.push((i, n));
                left -= n;
            }
            return Decision::Hand(plan);
        }
    } else {
        let idle = (0..workers.len()).any(|i| workers[i].in_flight == 0 && rooms[i] > 0);
        let busiest = (0..workers.len())
            .filter(|&i| !workers[i].killed && !workers[i].retiring)
            .max_by_key(|&i| workers[i].in_flight);
        if let Some(b) = busiest
            && idle
            && workers[b].in_flight >= 2
        {
            return Decision::TakeBack {
                worker: b,
                count: workers[b].in_flight / 2,
            };
        }
    }
    Decision::Settled
}

/// Whether a task submitted now could be acted on at once: some worker has room for
/// it, or another worker may be started.
pub(crate) fn wants_new_tasks(workers: &[WorkerLoad], limits: &Limits) -> bool {
    let open = workers.iter().filter(|w| !w.retiring && !w.killed).count();
    open < limits.max_workers || workers.iter().any(|w| room(w, limits) > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: Limits = Limits {
        max_workers: 2,
        max_tasks_per_child: None,
    };

    fn load(in_flight: usize) -> WorkerLoad {
        WorkerLoad {
            in_flight,
            given: in_flight as u64,
            ..WorkerLoad::default()
        }
    }

    #[test]
    fn a_first_task_starts_a_worker() {
        assert_eq!(decide(1, &[], &TWO), Decision::StartWorker);
    }

    #[test]
    fn no_worker_starts_without_work_or_beyond_the_limit() {
        assert_eq!(decide(0, &[], &TWO), Decision::Settled);
        // Two busy workers, the most allowed: the queue waits for room.
        let full = [load(MAX_INFLIGHT), load(MAX_INFLIGHT)];
        assert_eq!(decide(5, &full, &TWO), Decision::Settled);
    }

    #[test]
    fn one_task_for_one_idle_worker_needs_no_second() {
        assert_eq!(decide(1, &[load(0)], &TWO), Decision::Hand(vec![(0, 1)]));
    }

    #[test]
    fn more_work_than_workers_starts_another() {
        assert_eq!(decide(1, &[load(1)], &TWO), Decision::StartWorker);
        assert_eq!(decide(2, &[load(0)], &TWO), Decision::StartWorker);
    }

    #[test]
    fn the_queue_is_shared_least_loaded_first() {
        let ws = [load(3), load(0)];
        assert_eq!(decide(5, &ws, &TWO), Decision::Hand(vec![(1, 3), (0, 2)]));
        // Fewer tasks than shares: the least loaded worker gets them all.
        assert_eq!(decide(1, &ws, &TWO), Decision::Hand(vec![(1, 1)]));
    }

    #[test]
    fn room_is_bounded_by_max_inflight() {
        let ws = [load(MAX_INFLIGHT - 2), load(MAX_INFLIGHT)];
        assert_eq!(decide(100, &ws, &TWO), Decision::Hand(vec![(0, 2)]));
    }

    #[test]
    fn room_is_bounded_by_the_task_budget() {
        let limits = Limits {
            max_workers: 1,
            max_tasks_per_child: Some(3),
        };
        let w = WorkerLoad {
            in_flight: 0,
            given: 2,
            ..WorkerLoad::default()
        };
        assert_eq!(decide(10, &[w], &limits), Decision::Hand(vec![(0, 1)]));
    }

    #[test]
    fn retiring_and_killed_workers_take_nothing_and_are_replaced() {
        let ws = [
            WorkerLoad {
                retiring: true,
                ..load(1)
            },
            WorkerLoad {
                killed: true,
                ..load(1)
            },
        ];
        assert_eq!(decide(1, &ws, &TWO), Decision::StartWorker);
        let one = Limits {
            max_workers: 1,
            ..TWO
        };
        let ws = [
            WorkerLoad {
                retiring: true,
                ..load(1)
            },
            load(MAX_INFLIGHT),
        ];
        assert_eq!(decide(1, &ws, &one), Decision::Settled);
    }

    #[test]
    fn an_idle_worker_takes_half_of_the_busiest_ones_waiting_tasks() {
        let ws = [load(6), load(0), load(3)];
        let limits = Limits {
            max_workers: 3,
            ..TWO
        };
        assert_eq!(
            decide(0, &ws, &limits),
            Decision::TakeBack {
                worker: 0,
                count: 3
            }
        );
    }

    #[test]
    fn no_take_back_without_an_idle_worker_or_a_waiting_task() {
        assert_eq!(decide(0, &[load(4), load(1)], &TWO), Decision::Settled);
        // The busy worker runs its only task: nothing waits behind it.
        assert_eq!(decide(0, &[load(1), load(0)], &TWO), Decision::Settled);
        // An idle worker that may take nothing (its budget is spent) is not idle.
        let limits = Limits {
            max_tasks_per_child: Some(1),
            ..TWO
        };
        let spent = WorkerLoad {
            given: 1,
            ..load(0)
        };
        assert_eq!(decide(0, &[load(4), spent], &limits), Decision::Settled);
    }

    #[test]
    fn retiring_workers_keep_their_last_tasks() {
        let limits = Limits {
            max_workers: 2,
            max_tasks_per_child: Some(3),
        };
        let spent = WorkerLoad {
            in_flight: 3,
            given: 3,
            retiring: true,
            killed: false,
        };
        assert_eq!(decide(0, &[spent, load(0)], &limits), Decision::Settled);
    }

    #[test]
    fn killed_workers_give_nothing_back() {
        let ws = [
            WorkerLoad {
                killed: true,
                ..load(8)
            },
            load(0),
        ];
        assert_eq!(decide(0, &ws, &TWO), Decision::Settled);
    }

    #[test]
    fn every_hand_out_fits_the_queue_and_the_rooms() {
        // Exhaustive over small pools: hand-outs never exceed the queue or a worker's
        // room, and a worker with room is never left out while tasks are left over.
        for max_workers in 1..=3 {
            let limits = Limits {
                max_workers,
                max_tasks_per_child: Some(5),
            };
            for queued in 0..12 {
                for a in [0, 1, 4, MAX_INFLIGHT] {
                    for b in [0, 2, MAX_INFLIGHT - 1] {
                        let ws = [load(a), load(b)];
                        let ws = &ws[..max_workers.min(2)];
                        if let Decision::Hand(plan) = decide(queued, ws, &limits) {
                            let total: usize = plan.iter().map(|p| p.1).sum();
                            assert!(total <= queued && total > 0, "{plan:?}");
                            for &(i, n) in &plan {
                                assert!(n <= room(&ws[i], &limits), "{plan:?}");
                            }
                            let served: Vec<usize> = plan.iter().map(|p| p.0).collect();
                            let left_out = (0..ws.len())
                                .any(|i| room(&ws[i], &limits) > 0 && !served.contains(&i));
                            assert!(!(left_out && total < queued), "{plan:?} for {queued}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn new_tasks_wake_the_dispatcher_only_if_it_can_act() {
        assert!(wants_new_tasks(&[], &TWO), "a worker may be started");
        assert!(wants_new_tasks(&[load(4), load(1)], &TWO), "room left");
        assert!(!wants_new_tasks(
            &[load(MAX_INFLIGHT), load(MAX_INFLIGHT)],
            &TWO
        ));
        let one = Limits {
            max_workers: 1,
            ..TWO
        };
        let retiring = WorkerLoad {
            retiring: true,
            ..load(1)
        };
        assert!(!wants_new_tasks(&[retiring, load(MAX_INFLIGHT)], &one));
        assert!(
            wants_new_tasks(&[retiring], &one),
            "a replacement may be started"
        );
        let spent = Limits {
            max_tasks_per_child: Some(1),
            ..TWO
        };
        let used = WorkerLoad {
            given: 1,
            ..load(0)
        };
        assert!(!wants_new_tasks(&[load(4), used], &spent));
        let killed = WorkerLoad {
            killed: true,
            ..load(8)
        };
        assert!(wants_new_tasks(&[killed, load(0)], &TWO));
    }
}
