//! How a process pool meets failures at every step of a task, ported from CPython
//! 3.13's `Lib/test/test_concurrent_futures/test_deadlock.py`:
//! `test_error_at_task_pickle`, `test_crash_at_task_unpickle`,
//! `test_exit_during_func_exec_on_worker`, `test_exit_during_result_pickle_on_worker`,
//! `test_error_during_result_unpickle_in_result_handler`, `test_shutdown_deadlock`.
//! Python's pool is then broken (`BrokenProcessPool`); here each failure is a typed
//! error of its own task (or of `submit`) and the pool keeps serving.

mod common;
mod pool_common;

use std::time::Duration;

use common::within;
use concur_core::futures::Executor;
use concur_process::ProcessPoolExecutor;
use pool_common::assert_no_zombies;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

fn square(x: u64) -> u64 {
    x * x
}

fn exit_with(code: i32) -> u32 {
    std::process::exit(code)
}

fn abort(_: ()) -> u32 {
    std::process::abort()
}

// ---- values that fail at (de)serialization, as `test_deadlock.py`'s ----

/// Fails to serialize (in the parent, as a task argument).
#[derive(Debug)]
struct ErrorAtSerialize;

impl Serialize for ErrorAtSerialize {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("ErrorAtSerialize refuses"))
    }
}

impl<'de> Deserialize<'de> for ErrorAtSerialize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d).map(|()| ErrorAtSerialize)
    }
}

/// Aborts its process when deserialized (in the worker, as a task argument).
#[derive(Debug)]
struct CrashAtDeserialize;

impl Serialize for CrashAtDeserialize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ().serialize(s)
    }
}

impl<'de> Deserialize<'de> for CrashAtDeserialize {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        std::process::abort()
    }
}

/// Exits its process with status 3 when serialized (in the worker, as a result).
#[derive(Debug, Clone)]
struct ExitAtSerialize;

impl Serialize for ExitAtSerialize {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        std::process::exit(3)
    }
}

impl<'de> Deserialize<'de> for ExitAtSerialize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d).map(|()| ExitAtSerialize)
    }
}

/// Fails to deserialize (in the parent, as a result).
#[derive(Debug, Clone)]
struct ErrorAtDeserialize;

impl Serialize for ErrorAtDeserialize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ().serialize(s)
    }
}

impl<'de> Deserialize<'de> for ErrorAtDeserialize {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom("ErrorAtDeserialize refuses"))
    }
}

fn take_crash(_: CrashAtDeserialize) -> u32 {
    0
}

fn take_unit_error(_: ErrorAtSerialize) -> u32 {
    0
}

fn give_exit(_: ()) -> ExitAtSerialize {
    ExitAtSerialize
}

fn give_undecodable(_: ()) -> ErrorAtDeserialize {
    ErrorAtDeserialize
}

#[test]
fn deadlock_ports_fail_one_task_and_keep_serving() {
    within(Duration::from_secs(120), "test_deadlock ports", || {
        let pool = ProcessPoolExecutor::new(2);
        // test_error_at_task_pickle: the argument cannot be encoded; submit says so.
        // (postcard keeps no custom message: the error says what failed.)
        let e = pool.call(take_unit_error, ErrorAtSerialize).unwrap_err();
        assert!(e.is_user() && e.to_string().contains("argument"), "{e}");
        // test_crash_at_task_unpickle: the worker dies decoding the argument.
        let e = pool
            .call(take_crash, CrashAtDeserialize)
            .unwrap()
            .result()
            .unwrap_err();
        assert!(e.is_worker_died() && e.signal() == Some(6), "{e:?}");
        // test_exit_during_result_pickle_on_worker.
        let e = pool.call(give_exit, ()).unwrap().result().unwrap_err();
        assert!(e.is_worker_died() && e.exit_status() == Some(3), "{e:?}");
        // test_error_during_result_unpickle_in_result_handler.
        let e = pool
            .call(give_undecodable, ())
            .unwrap()
            .result()
            .unwrap_err();
        assert!(e.is_user() && e.to_string().contains("result"), "{e}");
        assert_eq!(pool.call(square, 3).unwrap().result().unwrap(), 9);
        // test_exit_during_func_exec_on_worker, with several exit codes.
        for code in [1, 3, 255] {
            let e = pool.call(exit_with, code).unwrap().result().unwrap_err();
            assert_eq!(e.exit_status(), Some(code), "{e:?}");
        }
        // test_shutdown_deadlock: a crash after shutdown is a typed error, not a hang.
        let f = pool.call(abort, ()).unwrap();
        pool.shutdown(true, false).unwrap();
        assert!(f.result().unwrap_err().is_worker_died());
        let fresh = ProcessPoolExecutor::new(2);
        assert_eq!(fresh.call(square, 12).unwrap().result().unwrap(), 144);
        drop(fresh);
        assert_no_zombies();
    });
}
