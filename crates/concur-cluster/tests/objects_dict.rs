//! The manager's dict tests, run on the manager's `Dict` and on `cluster::Dict`: one
//! body (`dict_tests!`), expanded in a module per backend where `D<K, V>` is that
//! backend's dict type and `dict::<K, V>(&b)` makes one. The calls are the same on
//! both; only the error type differs (`unwrap` hides it).
//!
//! Ported from `concur-process/tests/manager_data.rs` (CPython 3.13's
//! `_TestContainers.test_dict` and `TestSyncManagerTypes.test_dict`, a child process
//! receiving the dict), with the dict's API one call at a time and `update` from 4
//! processes at once. Then what only the cluster's dict has: `compare_and_set`, also
//! raced by 4 processes, and typed errors for bad input.

mod objects_common;
mod support;

use objects_common::{LIMIT, name, spawn};
use support::within;

macro_rules! dict_tests {
    () => {
        #[test]
        fn test_dict() {
            within(LIMIT, "test_dict", || {
                let b = B::start();
                let d = dict::<u32, char>(&b);
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

        fn child_dict(d: D<String, u32>) {
            let key = "foo".to_string();
            assert_eq!(d.len().unwrap(), 1);
            assert_eq!(d.get(&key).unwrap(), Some(5));
            assert_eq!(d.items().unwrap(), [(key.clone(), 5)]);
            assert_eq!(d.keys().unwrap(), ["foo"]);
            assert_eq!(d.values().unwrap(), [5]);
            assert_eq!(d.remove(&key).unwrap(), Some(5));
        }

        #[test]
        fn test_sync_manager_dict() {
            within(LIMIT, "TestSyncManagerTypes.test_dict", || {
                let b = B::start();
                let d = dict::<String, u32>(&b);
                d.insert("foo".into(), 5).unwrap();
                spawn(child_dict, d.clone()).join();
                assert_eq!(d.len().unwrap(), 0);
            });
        }

        #[test]
        fn the_api_one_call_at_a_time() {
            within(LIMIT, "dict API", || {
                let b = B::start();
                let d = dict::<u8, String>(&b);
                assert_eq!(d.get(&1).unwrap(), None);
                assert!(d.is_empty().unwrap());
                assert_eq!(d.insert(2, "two".into()).unwrap(), None);
                assert_eq!(d.insert(1, "one".into()).unwrap(), None);
                assert_eq!(d.insert(2, "TWO".into()).unwrap(), Some("two".into()));
                assert!(d.contains_key(&1).unwrap() && !d.contains_key(&3).unwrap());
                assert_eq!(d.len().unwrap(), 2);
                // Insertion order (a key keeps its place when set again).
                assert_eq!(d.keys().unwrap(), [2, 1]);
                assert_eq!(d.values().unwrap(), ["TWO", "one"]);
                assert_eq!(
                    d.items().unwrap(),
                    [(2, "TWO".to_string()), (1, "one".to_string())]
                );
                assert_eq!(d.remove(&2).unwrap(), Some("TWO".into()));
                assert_eq!(d.remove(&2).unwrap(), None);
                assert_eq!(
                    d.update(3, |v: Option<String>| v.unwrap_or_default() + "three")
                        .unwrap(),
                    "three"
                );
                assert_eq!(d.keys().unwrap(), [1, 3]);
                d.clear().unwrap();
                assert!(d.is_empty().unwrap());
                assert_eq!(d.keys().unwrap(), Vec::<u8>::new());
            });
        }

        fn add_many(d: D<String, u64>) -> u64 {
            for _ in 0..250 {
                d.update("n".into(), |v: Option<u64>| v.unwrap_or(0) + 1)
                    .unwrap();
            }
            250
        }

        #[test]
        fn update_is_atomic_across_processes() {
            within(LIMIT, "dict update from 4 processes", || {
                let b = B::start();
                let d = dict::<String, u64>(&b);
                let children: Vec<_> = (0..4).map(|_| spawn(add_many, d.clone())).collect();
                let n: u64 = children.into_iter().map(|c| c.join()).sum();
                assert_eq!(d.get(&"n".into()).unwrap(), Some(n));
                assert_eq!(n, 1000);
            });
        }
    };
}

mod manager {
    use super::*;

    type D<K, V> = concur_process::manager::Dict<K, V>;

    struct B(concur_process::Manager);

    impl B {
        fn start() -> B {
            B(concur_process::Manager::start().unwrap())
        }
    }

    fn dict<K, V>(b: &B) -> D<K, V>
    where
        K: serde::Serialize + serde::de::DeserializeOwned,
        V: serde::Serialize + serde::de::DeserializeOwned,
    {
        b.0.dict().unwrap()
    }

    dict_tests!();
}

mod cluster {
    use super::*;

    type D<K, V> = concur_cluster::Dict<K, V>;

    pub(crate) struct B {
        pub(crate) url: String,
        _redis: concur_cluster::RedisServer,
    }

    impl B {
        pub(crate) fn start() -> B {
            let redis = support::redis();
            B {
                url: redis.url(),
                _redis: redis,
            }
        }
    }

    pub(crate) fn dict<K, V>(b: &B) -> D<K, V>
    where
        K: serde::Serialize + serde::de::DeserializeOwned,
        V: serde::Serialize + serde::de::DeserializeOwned,
    {
        D::connect(&b.url, &name("dict")).unwrap()
    }

    dict_tests!();
}

// ---- the cluster's own ----------------------------------------------------------------

#[test]
fn compare_and_set_sets_only_over_the_expected_value() {
    within(LIMIT, "compare_and_set", || {
        let b = cluster::B::start();
        let d = cluster::dict::<String, u32>(&b);
        let k = "k".to_string();
        assert_eq!(d.compare_and_set(&k, Some(&1), 2).unwrap(), Err(None));
        assert_eq!(d.compare_and_set(&k, None, 1).unwrap(), Ok(()));
        assert_eq!(d.compare_and_set(&k, None, 5).unwrap(), Err(Some(1)));
        assert_eq!(d.compare_and_set(&k, Some(&1), 2).unwrap(), Ok(()));
        assert_eq!(d.compare_and_set(&k, Some(&1), 3).unwrap(), Err(Some(2)));
        assert_eq!(d.get(&k).unwrap(), Some(2));
        assert_eq!(d.keys().unwrap(), [k]);
    });
}

/// 250 increments by hand: read, then compare-and-set until it lands.
fn cas_many(d: concur_cluster::Dict<String, u64>) -> u64 {
    let k = "n".to_string();
    let mut tries = 0;
    for _ in 0..250 {
        let mut cur = d.get(&k).unwrap();
        loop {
            tries += 1;
            match d
                .compare_and_set(&k, cur.as_ref(), cur.unwrap_or(0) + 1)
                .unwrap()
            {
                Ok(()) => break,
                Err(found) => cur = found,
            }
        }
    }
    tries
}

#[test]
fn compare_and_set_from_four_processes_loses_no_increment() {
    within(LIMIT, "compare_and_set from 4 processes", || {
        let b = cluster::B::start();
        let d = cluster::dict::<String, u64>(&b);
        let children: Vec<_> = (0..4).map(|_| spawn(cas_many, d.clone())).collect();
        let tries: u64 = children.into_iter().map(|c| c.join()).sum();
        assert_eq!(d.get(&"n".into()).unwrap(), Some(1000));
        assert!(tries >= 1000);
    });
}

#[test]
fn bad_input_is_a_typed_error() {
    within(LIMIT, "dict bad input", || {
        let b = cluster::B::start();
        let n = name("typed");
        let d = concur_cluster::Dict::<u8, String>::connect(&b.url, &n).unwrap();
        d.insert(1, "x".into()).unwrap();
        let e = concur_cluster::Dict::<u8, u64>::connect(&b.url, &n).unwrap_err();
        assert!(e.is_invalid(), "{e}");
        assert!(
            concur_cluster::Dict::<u8, u8>::connect(&b.url, "a b")
                .unwrap_err()
                .is_invalid()
        );
        // A value written by something else does not decode: a typed error, and the
        // dict goes on.
        redis::cmd("HSET")
            .arg(format!("concur:obj:dict:{{{n}}}:h"))
            .arg(postcard::to_stdvec(&2u8).unwrap())
            .arg(vec![0xffu8; 3])
            .query::<()>(&mut support::raw(&b.url))
            .unwrap();
        assert!(d.get(&2).unwrap_err().is_invalid());
        assert_eq!(d.get(&1).unwrap(), Some("x".into()));
    });
}
