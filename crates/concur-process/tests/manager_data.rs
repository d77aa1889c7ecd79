//! The manager's data objects (list, dict, namespace, value, queue, joinable queue),
//! within one process and shared with child processes.
//!
//! Ported from CPython 3.13 `Lib/test/_test_multiprocessing.py`, in its `manager`
//! flavour: `_TestContainers` (`test_list`, `test_list_proxy_in_list`, `test_dict`,
//! `test_dict_proxy_nested`, `test_nested_queue`, `test_namespace`), `_TestQueue`
//! with `self.Queue` a manager queue (`test_put`, `test_get`, `test_fork`,
//! `test_qsize`, `test_task_done`, `test_timeout`), and `TestSyncManagerTypes`
//! (`test_queue`, `test_joinable_queue`, `test_list`, `test_dict`, `test_value`,
//! `test_namespace`: a child process receives the proxy and uses it). Timing checks are
//! lower bounds only. Added: many processes updating one value or list, wrong-type
//! and missing attachments, typed namespace fields, calls after `shutdown`, blocked
//! calls woken by `shutdown`, and timeouts too large for the clock.

mod common;

#[path = "manager_data/queue.rs"]
mod queue;

use std::time::{Duration, Instant};

use common::{LIMIT, within};
use concur_process::manager::{Dict, JoinableQueue, List, Namespace, Queue, Value};
use concur_process::{Event, Manager, Process};

/// CPython's `DELTA`, `TIMEOUT1`, `TIMEOUT2`, `TIMEOUT3`.
const DELTA: Duration = Duration::from_millis(100);
const TIMEOUT1: Duration = Duration::from_millis(100);
const TIMEOUT2: Duration = Duration::from_millis(200);
const TIMEOUT3: Duration = Duration::from_millis(100);

fn timed<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let start = Instant::now();
    let r = f();
    (r, start.elapsed())
}

/// Runs `f(arg)` in a child process and waits (bounded) for its result.
fn in_child<F, A, R>(f: F, arg: A) -> R
where
    F: Fn(A) -> R + Copy + 'static,
    A: serde::Serialize + serde::de::DeserializeOwned,
    R: serde::Serialize + serde::de::DeserializeOwned,
{
    let p = Process::spawn(f, arg).unwrap();
    p.join_timeout(LIMIT).unwrap()
}

// ------------------------------------------------------------ _TestContainers

#[test]
fn test_list() {
    within(LIMIT, "test_list", || {
        let m = Manager::start().unwrap();
        let a = m.list::<i64>().unwrap();
        a.extend(0..10).unwrap();
        assert_eq!(a.snapshot().unwrap(), (0..10).collect::<Vec<_>>());

        let b = m.list::<i64>().unwrap();
        assert_eq!(b.snapshot().unwrap(), Vec::<i64>::new());
        b.extend(0..5).unwrap();
        assert_eq!(b.snapshot().unwrap(), [0, 1, 2, 3, 4]);
        assert_eq!(b.get(2).unwrap(), 2);
        // b *= 2
        b.extend(b.snapshot().unwrap()).unwrap();
        assert_eq!(b.snapshot().unwrap(), [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]);
        assert_eq!(a.snapshot().unwrap(), (0..10).collect::<Vec<_>>());

        // A list of list proxies.
        let e = m.list::<List<i64>>().unwrap();
        e.extend([a.clone(), b.clone()]).unwrap();
        let inner: Vec<Vec<i64>> = e
            .snapshot()
            .unwrap()
            .iter()
            .map(|l| l.snapshot().unwrap())
            .collect();
        assert_eq!(
            inner,
            [
                vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
                vec![0, 1, 2, 3, 4, 0, 1, 2, 3, 4]
            ]
        );

        let f = m.list::<List<i64>>().unwrap();
        f.push(a.clone()).unwrap();
        a.push(10).unwrap();
        assert_eq!(
            f.get(0).unwrap().snapshot().unwrap(),
            (0..=10).collect::<Vec<_>>()
        );
    });
}

#[test]
fn test_list_operations_and_errors() {
    within(LIMIT, "list operations", || {
        let m = Manager::start().unwrap();
        let l = m.list::<String>().unwrap();
        assert!(l.is_empty().unwrap());
        assert!(l.pop().unwrap_err().is_missing());
        assert!(l.get(0).unwrap_err().is_missing());
        assert!(l.set(0, "x".into()).unwrap_err().is_missing());
        assert!(l.pop_at(0).unwrap_err().is_missing());
        l.push("b".into()).unwrap();
        l.insert(0, "a".into()).unwrap();
        l.insert(usize::MAX, "d".into()).unwrap();
        l.insert(2, "c".into()).unwrap();
        assert_eq!(l.snapshot().unwrap(), ["a", "b", "c", "d"]);
        assert_eq!(l.set(1, "B".into()).unwrap(), "b");
        assert_eq!(l.pop_at(2).unwrap(), "c");
        assert_eq!(l.len().unwrap(), 3);
        assert_eq!(l.index_of(&"d".into()).unwrap(), Some(2));
        assert_eq!(l.count(&"a".into()).unwrap(), 1);
        l.reverse().unwrap();
        assert_eq!(l.snapshot().unwrap(), ["d", "B", "a"]);
        assert!(l.get(3).unwrap_err().is_missing());
        l.clear().unwrap();
        assert!(l.is_empty().unwrap());
    });
}

#[test]
fn test_list_proxy_in_list() {
    within(LIMIT, "test_list_proxy_in_list", || {
        let m = Manager::start().unwrap();
        let a = m.list::<List<u32>>().unwrap();
        for _ in 0..3 {
            let inner = m.list::<u32>().unwrap();
            inner.extend(0..3).unwrap();
            a.push(inner).unwrap();
        }
        for inner in a.snapshot().unwrap() {
            assert_eq!(inner.snapshot().unwrap(), [0, 1, 2]);
        }
        a.get(0).unwrap().set(2, 55).unwrap();
        assert_eq!(a.get(0).unwrap().snapshot().unwrap(), [0, 1, 55]);
        for i in 1..3 {
            assert_eq!(a.get(i).unwrap().snapshot().unwrap(), [0, 1, 2]);
        }
        assert_eq!(a.get(1).unwrap().pop().unwrap(), 2);
        assert_eq!(a.get(1).unwrap().len().unwrap(), 2);
        for i in [0, 2] {
            assert_eq!(a.get(i).unwrap().len().unwrap(), 3);
        }
    });
}

#[test]
fn test_dict() {
    within(LIMIT, "test_dict", || {
        let m = Manager::start().unwrap();
        let d = m.dict::<u32, char>().unwrap();
        let indices: Vec<u32> = (65..70).collect();
        for &i in &indices {
            d.insert(i, char::from_u32(i).unwrap()).unwrap();
        }
        let mut keys = d.keys().unwrap();
        keys.sort();
        assert_eq!(keys, indices);
        let mut values = d.values().unwrap();
        values.sort();
        assert_eq!(values, ['A', 'B', 'C', 'D', 'E']);
        let mut items = d.items().unwrap();
        items.sort();
        let want: Vec<(u32, char)> = indices
            .iter()
            .map(|&i| (i, char::from_u32(i).unwrap()))
            .collect();
        assert_eq!(items, want);
    });
}

#[test]
fn test_dict_proxy_nested() {
    within(LIMIT, "test_dict_proxy_nested", || {
        let m = Manager::start().unwrap();
        let pets = m.dict::<String, u32>().unwrap();
        pets.insert("ferrets".into(), 2).unwrap();
        pets.insert("hamsters".into(), 4).unwrap();
        let supplies = m.dict::<String, u32>().unwrap();
        supplies.insert("water".into(), 10).unwrap();
        supplies.insert("feed".into(), 3).unwrap();
        let d = m.dict::<String, Dict<String, u32>>().unwrap();
        d.insert("pets".into(), pets.clone()).unwrap();
        d.insert("supplies".into(), supplies.clone()).unwrap();
        let key = |s: &str| s.to_string();

        assert_eq!(supplies.get_item(&key("water")).unwrap(), 10);
        let via_d = |k: &str| d.get_item(&key(k)).unwrap();
        assert_eq!(via_d("supplies").get_item(&key("water")).unwrap(), 10);

        via_d("supplies").insert(key("blankets"), 5).unwrap();
        assert_eq!(supplies.get_item(&key("blankets")).unwrap(), 5);
        assert_eq!(via_d("supplies").get_item(&key("blankets")).unwrap(), 5);

        via_d("supplies").insert(key("water"), 7).unwrap();
        assert_eq!(supplies.get_item(&key("water")).unwrap(), 7);

        drop((pets, supplies));
        assert_eq!(via_d("pets").get_item(&key("ferrets")).unwrap(), 2);
        via_d("supplies").insert(key("blankets"), 11).unwrap();
        assert_eq!(via_d("supplies").get_item(&key("blankets")).unwrap(), 11);

        let pets = via_d("pets");
        let supplies = via_d("supplies");
        d.clear().unwrap();
        assert_eq!(d.len().unwrap(), 0);
        assert_eq!(supplies.get_item(&key("water")).unwrap(), 7);
        assert_eq!(pets.get_item(&key("hamsters")).unwrap(), 4);

        let l = m.list::<Dict<String, u32>>().unwrap();
        l.extend([pets.clone(), supplies.clone()]).unwrap();
        l.get(0).unwrap().insert(key("marmots"), 1).unwrap();
        assert_eq!(pets.get_item(&key("marmots")).unwrap(), 1);
        assert_eq!(l.get(0).unwrap().get_item(&key("marmots")).unwrap(), 1);
        drop((pets, supplies));
        assert_eq!(l.get(0).unwrap().get_item(&key("marmots")).unwrap(), 1);
        assert_eq!(l.get(1).unwrap().get_item(&key("feed")).unwrap(), 3);
    });
}

#[test]
fn test_nested_queue() {
    within(LIMIT, "test_nested_queue", || {
        let m = Manager::start().unwrap();
        let a = m.list::<Queue<u32>>().unwrap();
        a.push(m.queue(0).unwrap()).unwrap();
        a.get(0).unwrap().put(123).unwrap();
        assert_eq!(a.get(0).unwrap().get_timeout(LIMIT).unwrap(), 123);
        let b = m.dict::<u32, Queue<u32>>().unwrap();
        b.insert(0, m.queue(0).unwrap()).unwrap();
        b.get_item(&0).unwrap().put(456).unwrap();
        assert_eq!(b.get_item(&0).unwrap().get_timeout(LIMIT).unwrap(), 456);
    });
}

#[test]
fn test_namespace() {
    within(LIMIT, "test_namespace", || {
        let m = Manager::start().unwrap();
        let n = m.namespace().unwrap();
        n.set("name", "Bob").unwrap();
        n.set("job", "Builder").unwrap();
        n.set("_hidden", "hidden").unwrap();
        assert_eq!(
            (
                n.get::<String>("name").unwrap(),
                n.get::<String>("job").unwrap()
            ),
            ("Bob".to_string(), "Builder".to_string())
        );
        assert!(n.remove("job").unwrap());
        assert_eq!(n.names().unwrap(), ["name", "_hidden"]);
        assert!(n.contains("name").unwrap());
        assert!(!n.contains("job").unwrap());
        assert!(n.get::<String>("job").unwrap_err().is_missing());
    });
}

#[test]
fn test_namespace_typed_fields() {
    within(LIMIT, "namespace fields", || {
        let m = Manager::start().unwrap();
        let n = m.namespace().unwrap();
        n.set("count", &3u32).unwrap();
        n.set("pair", &(1u8, String::from("x"))).unwrap();
        n.set("owned", &String::from("s")).unwrap();
        n.set("bytes", &[1u8, 2][..]).unwrap();
        assert_eq!(n.get::<Vec<u8>>("bytes").unwrap(), [1, 2]);
        assert_eq!(n.get::<u32>("count").unwrap(), 3);
        assert_eq!(n.get::<(u8, String)>("pair").unwrap(), (1, "x".into()));
        assert_eq!(n.get::<String>("owned").unwrap(), "s");
        // The same bytes would decode as a u64 or a bool: the recorded type refuses.
        assert!(n.get::<u64>("count").unwrap_err().is_wrong_type());
        assert!(n.get::<bool>("count").unwrap_err().is_wrong_type());
        assert!(n.get::<u32>("pair").unwrap_err().is_wrong_type());
        n.set("count", "now a string").unwrap();
        assert_eq!(n.get::<String>("count").unwrap(), "now a string");
        assert!(!n.remove("absent").unwrap());
    });
}

// ------------------------------------------------------------ TestSyncManagerTypes

fn child_queue(q: Queue<u32>) {
    assert_eq!(q.qsize().unwrap(), 2);
    assert!(q.full().unwrap());
    assert!(!q.empty().unwrap());
    assert_eq!(q.get().unwrap(), 5);
    assert!(!q.empty().unwrap());
    assert_eq!(q.get().unwrap(), 6);
    assert!(q.empty().unwrap());
}

#[test]
fn test_sync_manager_queue() {
    within(LIMIT, "TestSyncManagerTypes.test_queue", || {
        let m = Manager::start().unwrap();
        let q = m.queue::<u32>(2).unwrap();
        q.put(5).unwrap();
        q.put(6).unwrap();
        in_child(child_queue, q.clone());
        assert!(q.empty().unwrap());
        assert!(!q.full().unwrap());
    });
}

fn child_joinable_queue(q: JoinableQueue<u32>) {
    child_queue(Queue::clone(&q));
    q.task_done().unwrap();
    q.task_done().unwrap();
}

#[test]
fn test_sync_manager_joinable_queue() {
    within(LIMIT, "TestSyncManagerTypes.test_joinable_queue", || {
        let m = Manager::start().unwrap();
        let q = m.joinable_queue::<u32>(2).unwrap();
        q.put(5).unwrap();
        q.put(6).unwrap();
        in_child(child_joinable_queue, q.clone());
        assert!(q.empty().unwrap());
        assert!(!q.full().unwrap());
        q.join_timeout(Duration::ZERO).unwrap();
    });
}

fn child_list(l: List<u32>) {
    assert_eq!(l.get(0).unwrap(), 5);
    assert_eq!(l.count(&5).unwrap(), 1);
    assert_eq!(l.index_of(&5).unwrap(), Some(0));
    l.reverse().unwrap();
    assert_eq!(l.snapshot().unwrap(), [5]);
    assert_eq!(l.len().unwrap(), 1);
    assert_eq!(l.pop_at(0).unwrap(), 5);
}

#[test]
fn test_sync_manager_list() {
    within(LIMIT, "TestSyncManagerTypes.test_list", || {
        let m = Manager::start().unwrap();
        let l = m.list::<u32>().unwrap();
        l.push(5).unwrap();
        in_child(child_list, l.clone());
        assert_eq!(l.len().unwrap(), 0);
    });
}

fn child_dict(d: Dict<String, u32>) {
    let key = "foo".to_string();
    assert_eq!(d.len().unwrap(), 1);
    assert_eq!(d.get_item(&key).unwrap(), 5);
    assert_eq!(d.get(&key).unwrap(), Some(5));
    assert_eq!(d.items().unwrap(), [(key.clone(), 5)]);
    assert_eq!(d.keys().unwrap(), ["foo"]);
    assert_eq!(d.values().unwrap(), [5]);
    assert_eq!(d.remove(&key).unwrap(), Some(5));
}

#[test]
fn test_sync_manager_dict() {
    within(LIMIT, "TestSyncManagerTypes.test_dict", || {
        let m = Manager::start().unwrap();
        let d = m.dict::<String, u32>().unwrap();
        d.insert("foo".into(), 5).unwrap();
        in_child(child_dict, d.clone());
        assert_eq!(d.len().unwrap(), 0);
    });
}

fn child_value(v: Value<i32>) {
    assert_eq!(v.get().unwrap(), 1);
    v.set(2).unwrap();
}

#[test]
fn test_sync_manager_value() {
    within(LIMIT, "TestSyncManagerTypes.test_value", || {
        let m = Manager::start().unwrap();
        let v = m.value(1i32).unwrap();
        in_child(child_value, v.clone());
        assert_eq!(v.get().unwrap(), 2);
    });
}

fn child_namespace(n: Namespace) {
    assert_eq!(n.get::<i32>("x").unwrap(), 0);
    assert_eq!(n.get::<i32>("y").unwrap(), 1);
    n.set("z", &2i32).unwrap();
}

#[test]
fn test_sync_manager_namespace() {
    within(LIMIT, "TestSyncManagerTypes.test_namespace", || {
        let m = Manager::start().unwrap();
        let n = m.namespace().unwrap();
        n.set("x", &0i32).unwrap();
        n.set("y", &1i32).unwrap();
        in_child(child_namespace, n.clone());
        assert_eq!(n.get::<i32>("z").unwrap(), 2);
    });
}

// ------------------------------------------------------------ added

fn add_many(v: Value<u64>) {
    for _ in 0..500 {
        v.update(|x: u64| x + 1).unwrap();
    }
}

#[test]
fn value_update_is_atomic_across_processes() {
    within(LIMIT, "value update", || {
        let m = Manager::start().unwrap();
        let v = m.value(0u64).unwrap();
        let ps: Vec<_> = (0..4)
            .map(|_| Process::spawn(add_many, v.clone()).unwrap())
            .collect();
        for p in ps {
            p.join_timeout(LIMIT).unwrap();
        }
        assert_eq!(v.get().unwrap(), 2000);
        let e = v.update(|_: u64| -> u64 { panic!("no") }).unwrap_err();
        assert!(e.is_remote());
        assert_eq!(v.get().unwrap(), 2000);
    });
}

fn push_hundred((l, who): (List<(u32, u32)>, u32)) {
    for i in 0..100 {
        l.push((who, i)).unwrap();
    }
}

#[test]
fn list_pushes_from_many_processes() {
    within(LIMIT, "list pushes", || {
        let m = Manager::start().unwrap();
        let l = m.list::<(u32, u32)>().unwrap();
        let ps: Vec<_> = (0..3)
            .map(|who| Process::spawn(push_hundred, (l.clone(), who)).unwrap())
            .collect();
        for p in ps {
            p.join_timeout(LIMIT).unwrap();
        }
        let all = l.snapshot().unwrap();
        assert_eq!(all.len(), 300);
        for who in 0..3 {
            let mine: Vec<u32> = all.iter().filter(|x| x.0 == who).map(|x| x.1).collect();
            assert_eq!(mine, (0..100).collect::<Vec<_>>());
        }
    });
}

#[test]
fn wrong_type_and_missing_attach() {
    within(LIMIT, "attach errors", || {
        let m = Manager::start().unwrap();
        let l = m.list::<u8>().unwrap();
        let q = m.queue::<u8>(0).unwrap();
        let jq = m.joinable_queue::<u8>(0).unwrap();
        let v = m.value(0u8).unwrap();
        let n = m.namespace().unwrap();
        assert!(m.list_by_id::<u16>(l.id()).unwrap_err().is_wrong_type());
        assert!(m.queue_by_id::<u8>(l.id()).unwrap_err().is_wrong_type());
        assert!(m.queue_by_id::<u8>(jq.id()).unwrap_err().is_wrong_type());
        assert!(
            m.joinable_queue_by_id::<u8>(q.id())
                .unwrap_err()
                .is_wrong_type()
        );
        assert!(m.value_by_id::<i8>(v.id()).unwrap_err().is_wrong_type());
        assert!(m.namespace_by_id(v.id()).unwrap_err().is_wrong_type());
        assert!(m.dict_by_id::<u8, u8>(n.id()).unwrap_err().is_wrong_type());
        let absent = 1 + [l.id(), q.id(), jq.id(), v.id(), n.id()]
            .into_iter()
            .max()
            .unwrap();
        assert!(m.list_by_id::<u8>(absent).unwrap_err().is_missing());
        assert!(m.namespace_by_id(absent).unwrap_err().is_missing());
        assert!(m.value_by_id::<u8>(absent).unwrap_err().is_missing());
        // The right types attach, and see the same objects.
        q.put(3).unwrap();
        assert_eq!(m.queue_by_id::<u8>(q.id()).unwrap().get().unwrap(), 3);
        jq.put(4).unwrap();
        assert_eq!(
            m.joinable_queue_by_id::<u8>(jq.id())
                .unwrap()
                .qsize()
                .unwrap(),
            1
        );
    });
}

#[test]
fn calls_after_shutdown_are_shut_down_errors() {
    within(LIMIT, "after shutdown", || {
        let m = Manager::start().unwrap();
        let l = m.list::<u8>().unwrap();
        let n = m.namespace().unwrap();
        let v = m.value(1u8).unwrap();
        let q = m.queue::<u8>(0).unwrap();
        let jq = m.joinable_queue::<u8>(0).unwrap();
        l.push(1).unwrap();
        m.shutdown().unwrap();
        assert!(l.push(2).unwrap_err().is_shutdown());
        assert!(l.len().unwrap_err().is_shutdown());
        assert!(n.set("x", &1u8).unwrap_err().is_shutdown());
        assert!(v.get().unwrap_err().is_shutdown());
        assert!(q.put(1).unwrap_err().is_shutdown());
        assert!(q.get_timeout(LIMIT).unwrap_err().is_shutdown());
        assert!(jq.join().unwrap_err().is_shutdown());
        assert!(m.list::<u8>().unwrap_err().is_shutdown());
    });
}

#[test]
fn shutdown_wakes_blocked_calls() {
    within(LIMIT, "shutdown wakes blocked calls", || {
        let m = Manager::start().unwrap();
        let q = m.queue::<u8>(1).unwrap();
        let full = m.queue::<u8>(1).unwrap();
        full.put(0).unwrap();
        let jq = m.joinable_queue::<u8>(0).unwrap();
        jq.put(0).unwrap();
        let getter = {
            let q = q.clone();
            std::thread::spawn(move || q.get())
        };
        let putter = {
            let full = full.clone();
            std::thread::spawn(move || full.put(1))
        };
        let joiner = {
            let jq = jq.clone();
            std::thread::spawn(move || jq.join())
        };
        std::thread::sleep(DELTA * 2);
        assert!(!getter.is_finished() && !putter.is_finished() && !joiner.is_finished());
        m.shutdown().unwrap();
        assert!(getter.join().unwrap().unwrap_err().is_shutdown());
        assert!(putter.join().unwrap().unwrap_err().is_shutdown());
        assert!(joiner.join().unwrap().unwrap_err().is_shutdown());
    });
}

/// With the server in this process (`Manager::serve`), nothing ends the blocked
/// connection threads but the objects' own wake-up on `shutdown`.
#[test]
fn shutdown_wakes_blocked_calls_of_an_in_process_server() {
    use concur_process::{Address, AuthKey};
    within(LIMIT, "in-process shutdown wakes blocked calls", || {
        let addr: Address = format!("@manager-data-serve-{}", std::process::id())
            .parse()
            .unwrap();
        let a = addr.clone();
        let server = std::thread::spawn(move || Manager::serve(a, AuthKey::from("k")));
        let m = loop {
            match Manager::connect(addr.clone(), AuthKey::from("k")) {
                Ok(m) => break m,
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        };
        let q = m.queue::<u8>(0).unwrap();
        let jq = m.joinable_queue::<u8>(0).unwrap();
        jq.put(1).unwrap();
        let getter = std::thread::spawn(move || q.get());
        let joiner = std::thread::spawn(move || jq.join());
        std::thread::sleep(DELTA * 2);
        assert!(!getter.is_finished() && !joiner.is_finished());
        m.shutdown().unwrap();
        server.join().unwrap().unwrap();
        assert!(getter.join().unwrap().unwrap_err().is_shutdown());
        assert!(joiner.join().unwrap().unwrap_err().is_shutdown());
    });
}

#[test]
fn proxies_are_debug_and_clone_independently() {
    within(LIMIT, "proxy basics", || {
        let m = Manager::start().unwrap();
        let q = m.queue::<u8>(0).unwrap();
        let text = format!("{q:?}");
        assert!(text.contains("queue<u8>"), "{text}");
        // A blocked get on one clone does not hold up a call on another.
        let q2 = q.clone();
        let getter = std::thread::spawn(move || q2.get_timeout(LIMIT));
        std::thread::sleep(DELTA);
        let (r, _) = timed(|| q.qsize());
        assert_eq!(r.unwrap(), 0);
        q.put(9).unwrap();
        assert_eq!(getter.join().unwrap().unwrap(), 9);
    });
}
