//! The executor contract of the thread and process pools (the very test body of
//! `concur-process/tests/executor_contract.rs`, included from there), run on
//! `RedisExecutor`: a program moves from threads to processes to machines by changing
//! the executor. Each executor here is a private `redis-server` and `n` worker
//! processes of one slot each (so "2 workers" means 2 tasks at once, as for the
//! pools); the initializer runs in every worker's local pool process.

mod support;

#[path = "../../concur-process/tests/contract/executor.rs"]
mod contract;

use std::ops::Deref;

use concur_cluster::{RedisExecutor, RedisServer, WorkerStats};
use contract::*;
use support::{WorkerProcess, WorkerSpec};

/// A cluster seen as one executor.
struct Cluster {
    // Dropped first: dropping the executor waits for its tasks, which needs workers.
    ex: RedisExecutor,
    _workers: Vec<WorkerProcess>,
    _redis: RedisServer,
    slots: usize,
}

impl Deref for Cluster {
    type Target = RedisExecutor;
    fn deref(&self) -> &RedisExecutor {
        &self.ex
    }
}

impl Cluster {
    fn max_workers(&self) -> usize {
        self.slots
    }
}

fn plain(spec: WorkerSpec) -> WorkerStats {
    spec.builder().connect().unwrap().run().unwrap()
}

fn marking(spec: WorkerSpec) -> WorkerStats {
    spec.builder()
        .initializer(set_mark, 7)
        .connect()
        .unwrap()
        .run()
        .unwrap()
}

fn refusing(spec: WorkerSpec) -> WorkerStats {
    spec.builder()
        .initializer(refuse_init, ())
        .connect()
        .unwrap()
        .run()
        .unwrap()
}

fn cluster<F>(n: usize, main: F) -> Cluster
where
    F: Fn(WorkerSpec) -> WorkerStats + Copy + 'static,
{
    let redis = support::redis();
    let pool = support::pool("contract");
    let spec = WorkerSpec::new(&redis.url(), &pool).slots(1);
    let n = n.max(1);
    let workers = (0..n).map(|_| spec.spawn_with(main)).collect();
    Cluster {
        ex: RedisExecutor::connect(&redis.url(), &pool).unwrap(),
        _workers: workers,
        _redis: redis,
        slots: n,
    }
}

executor_contract!(
    cluster,
    new: |n: usize| cluster(n, plain),
    with_init: |n: usize| cluster(n, marking),
    failing_init: |n: usize| cluster(n, refusing),
);
