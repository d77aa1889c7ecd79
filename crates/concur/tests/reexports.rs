//! Touches every re-export of the umbrella crate so that none can silently rot.

use concur::futures::Executor as _;
use concur::{deadlock, futures, queue, sync, thread, time};
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
    let b: futures::ThreadPoolBuilder = futures::ThreadPoolExecutor::builder().max_workers(2);
    let pool = b.build();
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
    assert!(p.set_result(1u8));
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

    // time
    assert!(time::deadline_after(Duration::from_secs(1)).is_some());
    assert!(!time::expired(None));
}

/// The process tier (`concur::process`, default feature `process`): every re-export.
#[cfg(feature = "process")]
#[test]
fn every_process_reexport_is_reachable() {
    use concur::process::{
        AbortHandle, Array, Barrier, BoundedSemaphore, Condition, Connection, ConnectionError,
        DEFAULT_MAX_FRAME, Event, FrozenArray, IMapUnordered, JoinableQueue, Lock, Pipe, Process,
        ProcessBuilder, ProcessError, ProcessPool, ProcessPoolBuilder, ProcessPoolExecutor, Queue,
        RLock, Semaphore, SharedMemory, SimpleQueue, StartMethod, Value, queue, shm, sync,
    };

    // Process, ProcessBuilder, StartMethod, ProcessError
    let p = Process::spawn(|x: u32| x + 1, 41).unwrap();
    assert_eq!(p.join_timeout(Duration::from_secs(60)).unwrap(), 42);
    assert_eq!(p.exitcode(), Some(0));
    let b: ProcessBuilder = Process::builder()
        .name("reexport")
        .start_method(StartMethod::Spawn);
    let unstarted = b.build(|x: u8| x, 0);
    assert_eq!(unstarted.name(), "reexport");
    let e: ProcessError = unstarted.join().expect_err("never started");
    assert!(e.is_not_started(), "{e}");
    assert_eq!(StartMethod::default(), StartMethod::Spawn);

    // Pipe, Connection, ConnectionError, DEFAULT_MAX_FRAME
    let (a, c): (Connection, Connection) = Pipe::duplex().unwrap();
    assert_eq!(a.max_frame(), DEFAULT_MAX_FRAME);
    a.send(&"ping").unwrap();
    assert_eq!(
        c.recv_timeout::<String>(Duration::from_secs(10)).unwrap(),
        "ping"
    );
    drop(a);
    let eof: ConnectionError = c.recv::<String>().expect_err("the other end is closed");
    assert!(eof.is_eof());
    let (r, w) = Pipe::one_way().unwrap();
    w.send_bytes(b"xy").unwrap();
    assert_eq!(r.recv_bytes().unwrap(), b"xy");

    // shm: SharedMemory, Value, Array, FrozenArray (also through the module)
    let mem = SharedMemory::new(16).unwrap();
    mem.write_at(0, b"abc").unwrap();
    let mut buf = [0u8; 3];
    mem.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"abc");
    let v: shm::Value<u64> = Value::new(1).unwrap();
    v.with_lock(|x| *x += 1).unwrap();
    assert_eq!(v.get(), 2);
    assert!(Value::new_raw(0u8).unwrap().get_lock().is_none());
    let arr: shm::Array<u16> = Array::from_slice(&[1, 2]).unwrap();
    arr.copy_from_slice(&[3, 4]).unwrap();
    assert_eq!(arr.to_vec(), [3, 4]);
    let frozen = FrozenArray::from_slice(&[5u32, 6]).unwrap();
    assert_eq!(&frozen[..], &[5, 6]);

    // sync: Lock, RLock, Semaphore, BoundedSemaphore, Event, Condition, Barrier
    let lock: sync::Lock = Lock::new().unwrap();
    drop(lock.acquire().unwrap());
    assert!(!lock.locked());
    let r = RLock::new().unwrap();
    {
        let _g1 = r.acquire().unwrap();
        let _g2 = r.acquire().unwrap();
        assert_eq!(r.count(), 2);
    }
    let s = Semaphore::new(1).unwrap();
    drop(s.acquire());
    let bs = BoundedSemaphore::new(1).unwrap();
    assert!(bs.release().is_err());
    let ev = Event::new().unwrap();
    ev.set();
    assert!(ev.wait_timeout(Duration::from_secs(1)));
    let cond = Condition::new().unwrap();
    {
        let mut g = cond.acquire().unwrap();
        assert!(!g.wait_timeout(Duration::from_millis(1)).unwrap());
    }
    let barrier = Barrier::new(1).unwrap();
    assert_eq!(barrier.wait().unwrap(), 0);

    // queue: Queue, SimpleQueue, JoinableQueue (also through the module)
    let q: queue::Queue<u8> = Queue::new(0).unwrap();
    q.put(1).unwrap();
    assert_eq!(q.get().unwrap(), 1);
    let sq = SimpleQueue::<String>::new().unwrap();
    sq.put("s".to_owned()).unwrap();
    assert_eq!(sq.get().unwrap(), "s");
    let jq = JoinableQueue::<u8>::new(0).unwrap();
    jq.put(2).unwrap();
    assert_eq!(jq.get().unwrap(), 2);
    jq.task_done().unwrap();
    jq.join();
    let spawned = Process::builder()
        .start_method(StartMethod::ForkServer)
        .spawn(|x: u8| x, 7)
        .unwrap();
    assert_eq!(spawned.join_timeout(Duration::from_secs(60)).unwrap(), 7);

    // pools: ProcessPoolExecutor, ProcessPoolBuilder, ProcessPool, IMapUnordered
    let b: ProcessPoolBuilder = ProcessPoolExecutor::builder().max_workers(1);
    let ex: ProcessPoolExecutor = b.build();
    let f = ex.call(|x: u32| x * 2, 21).unwrap();
    assert_eq!(f.result().unwrap(), 42);
    let (f, abort): (_, AbortHandle) = ex.call_abortable(|x: u32| x + 1, 1, None).unwrap();
    assert_eq!(f.result().unwrap(), 2);
    abort.abort();
    let pool = ProcessPool::with_executor(ex);
    assert_eq!(pool.map(|x: u8| x + 1, [1, 2]).unwrap(), [2, 3]);
    let unordered: IMapUnordered<'_, _, _, u8> = pool.imap_unordered(|x: u8| x, [5]).unwrap();
    assert_eq!(unordered.map(Result::unwrap).collect::<Vec<_>>(), [5]);
    pool.close();
    pool.join().unwrap();
}

/// The manager (`concur::process::manager`, default feature `manager`): every re-export.
#[cfg(feature = "manager")]
#[test]
fn every_manager_reexport_is_reachable() {
    use concur::process::{Address, AuthKey, Manager, ManagerBuilder, ManagerError, manager};

    // Manager, ManagerBuilder, Address, AuthKey, ManagerError, manager::Dict
    let mb: ManagerBuilder = Manager::builder()
        .address("127.0.0.1:0".parse::<Address>().unwrap())
        .authkey(AuthKey::from("reexport key"));
    let m: Manager = mb.start().unwrap();
    assert!(matches!(m.address(), Address::Tcp(a) if a.port() != 0));
    let d: manager::Dict<String, u32> = m.dict().unwrap();
    assert_eq!(
        d.update("n".into(), |v: Option<u32>| v.unwrap_or(0) + 1)
            .unwrap(),
        1
    );
    let wrong: ManagerError =
        Manager::connect(m.address().clone(), AuthKey::from("wrong")).unwrap_err();
    assert!(wrong.is_auth_failed(), "{wrong}");
    m.shutdown().unwrap();
    let gone: ManagerError = d.get(&"n".into()).unwrap_err();
    assert!(gone.is_shutdown(), "{gone}");
}

/// The cluster tier's names, behind the `cluster` feature.
#[cfg(feature = "cluster")]
#[test]
fn cluster_reexports_are_reachable() {
    use concur::cluster;
    let e = cluster::RedisExecutor::connect("redis://127.0.0.1:1/0", "bad pool").unwrap_err();
    assert!(e.is_invalid());
    let _ = cluster::Worker::builder("redis://127.0.0.1:1/0", "p").slots(1);
    let _: cluster::LocalExecutor = cluster::LocalExecutor::Processes;
    let _ = cluster::RedisServer::builder().aof(true);
    assert_eq!(cluster::build_fingerprint().len(), 32);
}
