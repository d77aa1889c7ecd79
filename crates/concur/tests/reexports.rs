//! Touches every re-export of the umbrella crate so that none can silently rot.

use concur::futures::Executor as _;
use concur::{deadlock, futures, queue, sync, thread};
use std::time::Duration;

#[test]
fn every_reexport_is_reachable() {
    // thread
    let h = thread::Builder::new()
        .name("reexport")
        .spawn(thread::get_ident)
        .unwrap();
    assert_ne!(h.join().unwrap(), 0);
    let _: thread::Thread = thread::current_thread();
    let _: thread::Thread = thread::main_thread();
    assert!(thread::active_count() >= 1);
    assert!(!thread::enumerate().is_empty());
    let t = thread::Timer::new(Duration::from_secs(3600), || {});
    t.cancel();
    let local = thread::Local::new(|| 7u8);
    local.with(|v| assert_eq!(*v, 7));
    assert!(thread::wait_non_daemon_timeout(Duration::from_secs(10)));

    // sync
    let lock = sync::Lock::new();
    drop(lock.acquire());
    let r = sync::RLock::new();
    {
        let _g1 = r.acquire();
        let _g2 = r.acquire();
    }
    let c = sync::Condition::new();
    {
        let mut g = c.acquire();
        assert!(!g.wait_timeout(Duration::from_millis(1)));
    }
    let s = sync::Semaphore::new(1);
    drop(s.acquire());
    let b = sync::BoundedSemaphore::new(1);
    assert_eq!(b.release(), Err(sync::ReleaseError::TooManyReleases));
    let e = sync::Event::new();
    e.set();
    assert!(e.is_set());
    let barrier = sync::Barrier::new(1);
    assert_eq!(barrier.wait().unwrap(), 0);

    // queue
    let q = queue::Queue::bounded(2);
    q.put(1u8).unwrap();
    assert!(matches!(q.try_get(), Ok(1)));
    q.task_done().unwrap();
    assert!(q.join_timeout(Duration::from_secs(10)));
    let lifo = queue::LifoQueue::unbounded();
    lifo.put(1).unwrap();
    lifo.put(2).unwrap();
    assert_eq!(lifo.get().unwrap(), 2);
    let pq = queue::PriorityQueue::new(0);
    pq.put(3).unwrap();
    pq.put(1).unwrap();
    assert_eq!(pq.get().unwrap(), 1);
    let sq = queue::SimpleQueue::new();
    sq.put("x");
    assert_eq!(sq.get(), "x");
    q.shutdown(true);
    assert!(matches!(q.try_put(2), Err(queue::TryPutError::ShutDown(2))));
    assert!(matches!(q.try_get(), Err(queue::TryGetError::ShutDown)));

    // futures
    let pool = futures::ThreadPoolExecutor::new(2);
    let f = pool.submit(|| 6 * 7).unwrap();
    assert_eq!(f.result().unwrap(), 42);
    let fs = vec![f.clone()];
    assert_eq!(
        futures::as_completed(&fs, Some(Duration::from_secs(10))).count(),
        1
    );
    let dn = futures::wait(
        &fs,
        Some(Duration::from_secs(10)),
        futures::ReturnWhen::AllCompleted,
    );
    assert_eq!(dn.done.len(), 1);
    let p = futures::Promise::new();
    let pf = p.future();
    p.set_result(1u8);
    assert_eq!(pf.result().unwrap(), 1);
    assert_eq!(futures::to_thread(|| 2).result().unwrap(), 2);
    let _: Option<futures::TaskError> = None;
    pool.shutdown(true, false).unwrap();
    let tp = futures::ThreadPool::new(2);
    let opts = futures::MapOptions::new().progress(|p: futures::Progress| assert!(p.done >= 1));
    assert_eq!(tp.map_with(|x: u8| x + 1, [1, 2], opts).unwrap(), [2, 3]);
    let r: futures::AsyncResult<u8> = tp.apply_async(|| 1).unwrap();
    assert_eq!(r.get().unwrap(), 1);
    let un: futures::IMapUnordered<'_, _, _, u8> = tp.imap_unordered(|x: u8| x, [3]).unwrap();
    assert_eq!(un.map(Result::unwrap).sum::<u8>(), 3);
    assert_eq!(futures::StarArgs::call((1, 2), &|a: i32, b: i32| a + b), 3);
    tp.close();
    tp.join().unwrap();

    // deadlock
    let _: deadlock::Mode = deadlock::mode();
}
