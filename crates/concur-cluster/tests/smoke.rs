//! A first end-to-end run: a worker in this process, a caller, calls and a map.

use concur_cluster::{LocalExecutor, RedisExecutor, RedisServer, Worker};
use concur_core::futures::{Executor, MapOptions};
use std::time::Duration;

fn square(x: u64) -> u64 {
    x * x
}

#[test]
fn a_worker_in_this_process_runs_calls_and_maps() {
    let redis = RedisServer::start().unwrap();
    for local in [LocalExecutor::Threads, LocalExecutor::Processes] {
        let pool = format!("smoke-{local:?}");
        let w = Worker::builder(&redis.url(), &pool)
            .slots(2)
            .local(local)
            .handle_sigterm(false)
            .connect()
            .unwrap();
        let stop = w.stop_handle();
        let t = std::thread::spawn(move || w.run().unwrap());
        let ex = RedisExecutor::connect(&redis.url(), &pool).unwrap();
        assert_eq!(
            ex.call(square, 7)
                .unwrap()
                .result_timeout(Duration::from_secs(20))
                .unwrap(),
            49
        );
        assert_eq!(
            ex.submit(|| 6 * 7)
                .unwrap()
                .result_timeout(Duration::from_secs(20))
                .unwrap(),
            42
        );
        let e = ex
            .call(|x: u32| -> u32 { panic!("no {x}") }, 3)
            .unwrap()
            .result_timeout(Duration::from_secs(20))
            .unwrap_err();
        assert_eq!(e.panic_message(), Some("no 3"));
        let v: Vec<u64> = ex
            .map(square, 0..1000u64, MapOptions::new().chunksize(100))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(v, (0..1000u64).map(|x| x * x).collect::<Vec<_>>());
        ex.shutdown(true, false).unwrap();
        stop.stop();
        let stats = t.join().unwrap();
        assert_eq!((stats.completed, stats.failed), (12, 1), "{stats:?}");
    }
}
