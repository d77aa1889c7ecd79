//! One executor contract, run against both executors: `concur_core`'s
//! `ThreadPoolExecutor` and `concur_process`'s `ProcessPoolExecutor`, so a program can
//! move from threads to processes by changing the executor's type.
//!
//! The behaviours are ported from CPython 3.13's `Lib/test/test_concurrent_futures/`:
//! - `executor.py`: `test_submit`, `test_map`, `test_map_exception` (errors at their
//!   position, iteration goes on), `test_map_timeout`, `test_max_workers_negative`
//!   (here: at least one worker);
//! - `test_process_pool.py`: `test_map_chunksize`, `test_traceback` (the panic message
//!   comes back);
//! - `test_shutdown.py`: `test_run_after_shutdown`, `test_hang_issue12364` (shutdown
//!   waits for the queued work), `test_cancel_futures`, `test_shutdown_no_wait`,
//!   `test_del_shutdown` / `test_context_manager_shutdown` (dropping waits);
//! - `test_init.py`: `test_initializer` (runs before tasks; a failing one breaks the
//!   executor);
//! - `test_as_completed.py`: `test_no_timeout`, `test_future_times_out`,
//!   `test_duplicate_futures`, `test_correct_timeout_exception_msg`;
//! - `test_wait.py`: `test_first_completed`, `test_first_exception`,
//!   `test_all_completed`, `test_timeout`;
//! - `test_future.py`'s cancel of a pending future, through an executor.
//!
//! Every task function captures nothing (a `fn` item or a non-capturing closure) and
//! its argument and result are serde types, so the same body compiles for both. What
//! differs is only how an executor is made (`new`, and the initializer, which takes a
//! closure on threads and `(fn, args)` on processes): the macro takes those as
//! expressions.

//!
//! The body itself is in `contract/executor.rs`, shared with the cluster tier's copy of
//! this contract (`concur-cluster/tests/executor_contract.rs`).

#[path = "contract/executor.rs"]
mod contract;

use concur_core::futures::ThreadPoolExecutor;
use concur_process::ProcessPoolExecutor;
use contract::*;

executor_contract!(
    threads,
    new: |n: usize| ThreadPoolExecutor::new(n),
    with_init: |n: usize| ThreadPoolExecutor::builder()
        .max_workers(n)
        .initializer(|| set_mark(7))
        .build(),
    failing_init: |n: usize| ThreadPoolExecutor::builder()
        .max_workers(n)
        .initializer(|| refuse_init(()))
        .build(),
);

executor_contract!(
    processes,
    new: |n: usize| ProcessPoolExecutor::new(n),
    with_init: |n: usize| ProcessPoolExecutor::builder()
        .max_workers(n)
        .initializer(set_mark, 7)
        .build(),
    failing_init: |n: usize| ProcessPoolExecutor::builder()
        .max_workers(n)
        .initializer(refuse_init, ())
        .build(),
);
