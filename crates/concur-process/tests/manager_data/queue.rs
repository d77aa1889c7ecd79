//! `_TestQueue` of CPython 3.13 `Lib/test/_test_multiprocessing.py` with `self.Queue`
//! and `self.JoinableQueue` a manager's (`test_put`, `test_get`, `test_fork`,
//! `test_qsize`, `test_task_done`, `test_timeout`), plus joins, timeouts too large for
//! the clock and blocked puts. Part of the `manager_data` test binary.

use super::*;

fn child_gets_six((q, can_start, can_continue): (Queue<u32>, Event, Event)) {
    assert!(can_start.wait_timeout(LIMIT));
    for _ in 0..6 {
        q.get_timeout(LIMIT).unwrap();
    }
    can_continue.set();
}

#[test]
fn test_put() {
    within(LIMIT, "test_put", || {
        const MAXSIZE: usize = 6;
        let m = Manager::start().unwrap();
        let q = m.queue::<u32>(MAXSIZE).unwrap();
        let (can_start, can_continue) = (Event::new().unwrap(), Event::new().unwrap());
        let p = Process::spawn(
            child_gets_six,
            (q.clone(), can_start.clone(), can_continue.clone()),
        )
        .unwrap();
        assert!(q.empty().unwrap());
        assert!(!q.full().unwrap());

        q.put(1).unwrap();
        q.put(2).unwrap();
        q.put_timeout(3, LIMIT).unwrap();
        q.try_put(4).unwrap();
        q.put_deadline(5, Instant::now() + LIMIT).unwrap();
        q.try_put(6).unwrap();

        assert!(!q.empty().unwrap());
        assert!(q.full().unwrap());
        assert_eq!(q.qsize().unwrap(), MAXSIZE);

        let (r, _) = timed(|| q.try_put(7));
        assert!(r.unwrap_err().is_invalid_state());
        let (r, t) = timed(|| q.put_timeout(7, TIMEOUT1));
        assert!(r.unwrap_err().is_timeout());
        assert!(t >= TIMEOUT1, "put_timeout returned after {t:?}");
        let (r, t) = timed(|| q.put_deadline(7, Instant::now() + TIMEOUT3));
        assert!(r.unwrap_err().is_timeout());
        assert!(t >= TIMEOUT3, "put_deadline returned after {t:?}");

        can_start.set();
        assert!(can_continue.wait_timeout(LIMIT));
        assert!(q.empty().unwrap());
        assert!(!q.full().unwrap());
        p.join_timeout(LIMIT).unwrap();
    });
}

fn child_puts_four((q, can_start, can_continue): (Queue<u32>, Event, Event)) {
    assert!(can_start.wait_timeout(LIMIT));
    for i in 2..=5 {
        q.put(i).unwrap();
    }
    can_continue.set();
}

#[test]
fn test_get() {
    within(LIMIT, "test_get", || {
        let m = Manager::start().unwrap();
        let q = m.queue::<u32>(0).unwrap();
        let (can_start, can_continue) = (Event::new().unwrap(), Event::new().unwrap());
        let p = Process::spawn(
            child_puts_four,
            (q.clone(), can_start.clone(), can_continue.clone()),
        )
        .unwrap();
        assert!(q.empty().unwrap());
        can_start.set();
        assert!(can_continue.wait_timeout(LIMIT));
        assert!(!q.empty().unwrap());

        assert_eq!(q.get().unwrap(), 2);
        assert_eq!(q.get_timeout(LIMIT).unwrap(), 3);
        assert_eq!(q.get_deadline(Instant::now() + LIMIT).unwrap(), 4);
        assert_eq!(q.try_get().unwrap(), 5);
        assert!(q.empty().unwrap());

        assert!(q.try_get().unwrap_err().is_invalid_state());
        let (r, t) = timed(|| q.get_timeout(TIMEOUT1));
        assert!(r.unwrap_err().is_timeout());
        assert!(t >= TIMEOUT1, "get_timeout returned after {t:?}");
        let (r, t) = timed(|| q.get_deadline(Instant::now() + TIMEOUT3));
        assert!(r.unwrap_err().is_timeout());
        assert!(t >= TIMEOUT3, "get_deadline returned after {t:?}");
        p.join_timeout(LIMIT).unwrap();
    });
}

fn child_puts_ten_to_twenty(q: Queue<u32>) {
    for i in 10..20 {
        q.put(i).unwrap();
    }
}

#[test]
fn test_fork() {
    within(LIMIT, "test_fork", || {
        let m = Manager::start().unwrap();
        let q = m.queue::<u32>(0).unwrap();
        for i in 0..10 {
            q.put(i).unwrap();
        }
        std::thread::sleep(DELTA);
        let p = Process::spawn(child_puts_ten_to_twenty, q.clone()).unwrap();
        for i in 0..20 {
            assert_eq!(q.get_timeout(LIMIT).unwrap(), i);
        }
        assert!(q.try_get().unwrap_err().is_invalid_state());
        p.join_timeout(LIMIT).unwrap();
    });
}

#[test]
fn test_qsize() {
    within(LIMIT, "test_qsize", || {
        let m = Manager::start().unwrap();
        let q = m.queue::<u32>(0).unwrap();
        assert_eq!(q.qsize().unwrap(), 0);
        q.put(1).unwrap();
        assert_eq!(q.qsize().unwrap(), 1);
        q.put(5).unwrap();
        assert_eq!(q.qsize().unwrap(), 2);
        q.get().unwrap();
        assert_eq!(q.qsize().unwrap(), 1);
        q.get().unwrap();
        assert_eq!(q.qsize().unwrap(), 0);
        assert_eq!(q.maxsize().unwrap(), 0);
        assert!(!q.full().unwrap());
    });
}

/// Takes items until `None`, marking each done after a pause; returns how many.
fn task_worker(q: JoinableQueue<Option<u32>>) -> u32 {
    let mut n = 0;
    while let Some(_item) = q.get_timeout(LIMIT).unwrap() {
        std::thread::sleep(DELTA / 10);
        q.task_done().unwrap();
        n += 1;
    }
    q.task_done().unwrap();
    n
}

#[test]
fn test_task_done() {
    within(LIMIT, "test_task_done", || {
        let m = Manager::start().unwrap();
        let q = m.joinable_queue::<Option<u32>>(0).unwrap();
        let workers: Vec<_> = (0..4)
            .map(|_| Process::spawn(task_worker, q.clone()).unwrap())
            .collect();
        for i in 0..10 {
            q.put(Some(i)).unwrap();
        }
        q.join_timeout(LIMIT).unwrap();
        assert!(q.empty().unwrap());
        for _ in &workers {
            q.put(None).unwrap();
        }
        let done: u32 = workers.iter().map(|p| p.join_timeout(LIMIT).unwrap()).sum();
        assert_eq!(done, 10);
        q.join_timeout(LIMIT).unwrap();
        assert!(q.task_done().unwrap_err().is_invalid_state());
    });
}

#[test]
fn test_join_waits_for_task_done() {
    within(LIMIT, "join waits", || {
        let m = Manager::start().unwrap();
        let q = m.joinable_queue::<u8>(0).unwrap();
        q.put(1).unwrap();
        let (r, t) = timed(|| q.join_timeout(TIMEOUT2));
        assert!(r.unwrap_err().is_timeout());
        assert!(t >= TIMEOUT2);
        let q2 = q.clone();
        let consumer = std::thread::spawn(move || {
            std::thread::sleep(DELTA);
            assert_eq!(q2.get().unwrap(), 1);
            q2.task_done().unwrap();
        });
        let (r, t) = timed(|| q.join_timeout(LIMIT));
        r.unwrap();
        assert!(
            t >= DELTA / 2,
            "join returned after {t:?}, before task_done"
        );
        consumer.join().unwrap();
    });
}

#[test]
fn test_timeout() {
    within(LIMIT, "test_timeout", || {
        let m = Manager::start().unwrap();
        let q = m.queue::<u32>(0).unwrap();
        let (r, t) = timed(|| q.get_timeout(TIMEOUT2));
        assert!(r.unwrap_err().is_timeout());
        assert!(t >= Duration::from_millis(100), "returned after {t:?}");
    });
}

#[test]
fn test_huge_timeout_is_forever() {
    within(LIMIT, "huge timeout", || {
        let m = Manager::start().unwrap();
        let q = m.queue::<u32>(1).unwrap();
        let q2 = q.clone();
        let producer = std::thread::spawn(move || {
            std::thread::sleep(DELTA);
            q2.put(7).unwrap();
            q2.put_timeout(8, Duration::MAX).unwrap();
        });
        assert_eq!(q.get_timeout(Duration::MAX).unwrap(), 7);
        assert_eq!(q.get_timeout(Duration::MAX).unwrap(), 8);
        producer.join().unwrap();
    });
}

#[test]
fn test_queue_blocked_put_is_released_by_get() {
    within(LIMIT, "blocked put", || {
        let m = Manager::start().unwrap();
        let q = m.queue::<u32>(1).unwrap();
        q.put(1).unwrap();
        let q2 = q.clone();
        let producer = std::thread::spawn(move || q2.put(2));
        std::thread::sleep(DELTA);
        assert_eq!(q.get_timeout(LIMIT).unwrap(), 1);
        producer.join().unwrap().unwrap();
        assert_eq!(q.get_timeout(LIMIT).unwrap(), 2);
    });
}
