//! The counting machine: two tasks on a thread pool take turns counting through a
//! `Condition`; then tasks that wait on tasks of their own pool (CWE-410/833).
//!
//! Python:
//! ```python
//! turn = threading.Condition()
//! said = []                                          # (who, number), in order
//! def counter(who, parity):
//!     with turn:
//!         while True:
//!             turn.wait_for(lambda: len(said) == N or len(said) % 2 == parity)
//!             if len(said) == N:
//!                 return sum(1 for w, _ in said if w == who)
//!             said.append((who, len(said) + 1))
//!             turn.notify_all()
//! with ThreadPoolExecutor(max_workers=2) as pool:
//!     odd, even = pool.submit(counter, "odd", 0), pool.submit(counter, "even", 1)
//!     assert odd.result() == even.result() == N // 2
//!
//! # A task that waits on a task of its own pool:
//! solo = ThreadPoolExecutor(max_workers=1)
//! def outer():
//!     return solo.submit(pow, 6, 2).result()   # the only worker waits for a task queued behind it
//! solo.submit(outer).result()                  # hangs forever (and so does the exit)
//! ```
//! concur: the counters are the same program. The nested wait completes: a pool worker
//! that waits on a future of its own pool runs that (still queued) task itself, or, if it
//! already runs elsewhere, the pool lends a temporary worker while this one is blocked.
//!
//! What concur cannot do: the two counters wait on a `Condition`, not on a future, so they
//! need two workers at once; on a pool of one the second counter would start only after
//! the first gave up. Every wait here is bounded, so a mistake fails loudly instead of
//! hanging.
//!
//! Run: `cargo run --release -p concur --example counting_machine`

use concur::futures::{Executor, TaskError, ThreadPoolExecutor};
use concur::sync::{Condition, Lock};
use concur::thread::current_thread;
use std::time::{Duration, Instant};

/// How far the machine counts.
const N: usize = 20;
/// The bound on every wait: far longer than anything here takes.
const LIMIT: Duration = Duration::from_secs(10);

type Said = Lock<Vec<(&'static str, usize)>>;

/// One counter: says every number whose turn is `parity` (0: after an even count), until
/// `N` is reached. Returns how many numbers it said and the worker it ran on.
fn counter(who: &'static str, parity: usize, turn: &Condition, said: &Said) -> (usize, String) {
    let mut g = turn.acquire();
    loop {
        let my_turn = g.wait_for_timeout(LIMIT, || {
            let n = said.acquire().len();
            n == N || n % 2 == parity
        });
        assert!(my_turn, "{who}: the other counter never answered");
        let mut s = said.acquire();
        if s.len() == N {
            let mine = s.iter().filter(|(w, _)| *w == who).count();
            return (mine, current_thread().name());
        }
        let next = s.len() + 1;
        s.push((who, next));
        drop(s);
        g.notify_all();
    }
}

/// Part one: the two counters, on a pool of two.
fn counting_machine() -> Result<(), Box<dyn std::error::Error>> {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(2)
        .thread_name_prefix("counter")
        .build();
    let turn = Condition::new();
    let said: Said = Lock::with_value(Vec::new());
    let start = |who, parity| {
        let (turn, said) = (turn.clone(), said.clone());
        pool.submit(move || counter(who, parity, &turn, &said))
    };
    let odd = start("odd", 0)?;
    let even = start("even", 1)?;
    let (odd_count, odd_thread) = odd.result_timeout(LIMIT)?;
    let (even_count, even_thread) = even.result_timeout(LIMIT)?;

    let said = said.acquire();
    let line: Vec<String> = said.iter().map(|(w, n)| format!("{w}:{n}")).collect();
    println!("{}", line.join(" "));
    println!(
        "odd said {odd_count} on {odd_thread}, even said {even_count} on {even_thread}: \
         they took turns and both finished"
    );
    // 1..=N in order, strictly alternating, each counter saying its own half.
    for (i, &(who, n)) in said.iter().enumerate() {
        assert_eq!(n, i + 1, "numbers out of order");
        assert_eq!(who, if n % 2 == 1 { "odd" } else { "even" }, "turn skipped");
    }
    assert_eq!(said.len(), N);
    assert_eq!((odd_count, even_count), (N / 2, N / 2));
    assert_ne!(odd_thread, even_thread, "the counters ran side by side");
    Ok(())
}

/// Part two: a pool of one whose task submits a subtask and waits on it.
fn nested_on_a_pool_of_one() -> Result<(), Box<dyn std::error::Error>> {
    let solo = ThreadPoolExecutor::builder()
        .max_workers(1)
        .thread_name_prefix("solo")
        .build();
    let started = Instant::now();
    let inner_pool = solo.clone(); // handles are cheap clones of one pool
    let outer = solo.submit(move || {
        let inner = inner_pool.submit(|| (6u32.pow(2), current_thread().name()))?;
        let (value, inner_thread) = inner.result()?; // Python hangs here
        Ok::<_, TaskError>((value, current_thread().name(), inner_thread))
    })?;
    let (value, outer_thread, inner_thread) = outer.result_timeout(LIMIT)??;
    println!(
        "pool of 1: outer task on {outer_thread} waited for its subtask, which ran on \
         {inner_thread} (inline): {value}, in {:?}",
        started.elapsed()
    );
    assert_eq!(value, 36);
    assert_eq!(
        inner_thread, outer_thread,
        "the waiting worker ran it itself"
    );
    assert_eq!(solo.num_threads(), 1, "no extra thread was needed");
    Ok(())
}

/// The CWE-833 scenario: a pool of two, ten outer tasks, each waiting on an inner task.
fn nested_on_a_pool_of_two() -> Result<(), Box<dyn std::error::Error>> {
    let pool = ThreadPoolExecutor::new(2);
    let started = Instant::now();
    let outer = (0..10u64)
        .map(|i| {
            let p = pool.clone();
            pool.submit(move || p.submit(move || i * i)?.result())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let squares = outer
        .iter()
        .map(|f| f.result_timeout(LIMIT)?)
        .collect::<Result<Vec<u64>, TaskError>>()?;
    println!(
        "pool of 2: 10 outer tasks, each waiting on an inner one: {squares:?} in {:?}",
        started.elapsed()
    );
    assert_eq!(squares, (0..10).map(|i| i * i).collect::<Vec<_>>());
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    counting_machine()?;
    nested_on_a_pool_of_one()?;
    nested_on_a_pool_of_two()?;
    Ok(())
}
