//! [`Value`]: one shared value (Python's `Manager().Value(typecode, value)`), with an
//! update applied atomically on the server.

use std::marker::PhantomData;
use std::sync::{Mutex, PoisonError};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::dict::{UPDATE_TABLE, UpdateFn, run_caught, run_update};
use crate::exec::{self, TableEntry};
use crate::manager::Manager;
use crate::manager::client::Handle;
use crate::manager::error::ManagerError;
use crate::manager::object::{Ctx, Object};
use crate::manager::protocol::{ObjKind, decode, decode_op, encode};
use crate::process::child;

/// The table entry of a value's update by `F` (as `dict`'s, for a function of the
/// value itself rather than of an optional entry).
struct ValueUpdate<F, T>(PhantomData<fn() -> (F, T)>);

impl<F, T> TableEntry for ValueUpdate<F, T>
where
    F: Fn(T) -> T + Copy + 'static,
    T: Serialize + DeserializeOwned + 'static,
{
    const TABLE: &'static str = UPDATE_TABLE;
    type Fn = UpdateFn;
    fn key() -> String {
        format!(
            "value:{}:{}",
            exec::fn_name::<F>(),
            std::any::type_name::<T>()
        )
    }
    fn func() -> UpdateFn {
        value_trampoline::<F, T>
    }
}

fn value_trampoline<F, T>(old: Option<&[u8]>) -> Result<Vec<u8>, ManagerError>
where
    F: Fn(T) -> T + Copy + 'static,
    T: Serialize + DeserializeOwned,
{
    let old: T = decode(old.unwrap_or_default())?;
    // Only reachable through the entry `value_update_key::<F, T>` registered, which
    // takes a value of `F`.
    let f: F = child::conjure();
    run_caught(move || f(old))
}

/// The table key of the trampoline for `F` (registering it).
fn value_update_key<F, T>(f: F) -> String
where
    F: Fn(T) -> T + Copy + 'static,
    T: Serialize + DeserializeOwned + 'static,
{
    let () = child::NoCaptures::<F>::CHECK;
    let _ = f;
    exec::register::<ValueUpdate<F, T>>();
    ValueUpdate::<F, T>::key()
}

#[derive(Serialize, Deserialize)]
enum ValueOp {
    Get,
    Set(Vec<u8>),
    Update(String),
}

/// The server side of a value.
pub(crate) struct ValueObject {
    tag: String,
    value: Mutex<Vec<u8>>,
}

impl ValueObject {
    pub(crate) fn new(tag: String, init: Vec<u8>) -> Self {
        ValueObject {
            tag,
            value: Mutex::new(init),
        }
    }
}

impl Object for ValueObject {
    fn tag(&self) -> &str {
        &self.tag
    }

    fn call(&self, ctx: &Ctx<'_>, op: &[u8]) -> Result<Vec<u8>, ManagerError> {
        let op = decode_op::<ValueOp>(op)?;
        let mut v = self.value.lock().unwrap_or_else(PoisonError::into_inner);
        match op {
            ValueOp::Get => encode(&*v),
            ValueOp::Set(new) => encode(&std::mem::replace(&mut *v, new)),
            ValueOp::Update(key) => {
                let new = run_update(ctx, &key, Some(&v))?;
                v.clone_from(&new);
                encode(&new)
            }
        }
    }
}

/// One value held by a [`Manager`]'s server and shared by every process that holds a
/// proxy to it: Python's `Manager().Value(typecode, value)`, of any serde type.
/// [`update`](Self::update) changes it atomically on the server (a read-modify-write
/// no other client can interleave with), which a `get` followed by a `set` is not.
///
/// Every call is one round trip to the server. Cloning the proxy opens another
/// connection on first use; a proxy passed to a [`Process`](crate::Process) as an
/// argument connects from the child.
///
/// ```
/// use concur::process::Manager;
///
/// let m = Manager::start().unwrap();
/// let v = m.value(1i64).unwrap();
/// assert_eq!(v.get().unwrap(), 1);
/// v.set(2).unwrap();
/// assert_eq!(v.update(|x: i64| x * 10).unwrap(), 20);
/// ```
pub struct Value<T> {
    h: Handle,
    _t: PhantomData<fn(T) -> T>,
}

super::typed_proxy!(Value);

impl<T> Value<T>
where
    T: Serialize + DeserializeOwned,
{
    /// The type tag of a `Value<T>`.
    pub(crate) fn tag() -> String {
        super::tag("value", &[std::any::type_name::<T>()])
    }

    pub(crate) fn from_handle(h: Handle) -> Self {
        Value { h, _t: PhantomData }
    }

    /// The object's id on its manager (to attach to it with
    /// [`Manager::value_by_id`]).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let v = m.value(0u8).unwrap();
    /// let again = m.value_by_id::<u8>(v.id()).unwrap();
    /// v.set(3).unwrap();
    /// assert_eq!(again.get().unwrap(), 3);
    /// ```
    pub fn id(&self) -> u64 {
        self.h.id
    }

    /// The current value (Python's `v.value` / `v.get()`).
    ///
    /// # Errors
    /// [`is_wrong_type`](ManagerError::is_wrong_type) if the stored value does not
    /// decode as a `T`; [`is_shutdown`](ManagerError::is_shutdown) if the manager is
    /// gone; an I/O error.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// assert_eq!(m.value('x').unwrap().get().unwrap(), 'x');
    /// ```
    pub fn get(&self) -> Result<T, ManagerError> {
        let b: Vec<u8> = self.h.call(&ValueOp::Get)?;
        decode(&b)
    }

    /// Replaces the value; returns the old one (Python's `v.value = x` / `v.set(x)`).
    ///
    /// # Errors
    /// [`is_serialization`](ManagerError::is_serialization) if `value` does not
    /// serialize; otherwise as [`get`](Self::get).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let v = m.value(String::from("a")).unwrap();
    /// assert_eq!(v.set("b".into()).unwrap(), "a");
    /// assert_eq!(v.get().unwrap(), "b");
    /// ```
    pub fn set(&self, value: T) -> Result<T, ManagerError> {
        let old: Vec<u8> = self.h.call(&ValueOp::Set(encode(&value)?))?;
        decode(&old)
    }

    /// Sets the value to `f(value)` atomically on the server and returns the new
    /// value: no other client's call on this value runs in between. `f` captures
    /// nothing (a `fn` or a non-capturing closure) and runs in the server process,
    /// which finds it by key in its own table of update functions: the server must run
    /// this same binary.
    ///
    /// # Errors
    /// [`is_remote`](ManagerError::is_remote) if `f` panicked on the server or the
    /// server runs another binary; otherwise as [`get`](Self::get).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let v = m.value(0u32).unwrap();
    /// for _ in 0..3 {
    ///     v.update(|n: u32| n + 1).unwrap();
    /// }
    /// assert_eq!(v.get().unwrap(), 3);
    /// ```
    pub fn update<F>(&self, f: F) -> Result<T, ManagerError>
    where
        F: Fn(T) -> T + Copy + 'static,
        T: 'static,
    {
        let key = value_update_key(f);
        let new: Vec<u8> = self.h.call(&ValueOp::Update(key))?;
        decode(&new)
    }
}

impl Manager {
    /// A new shared value, set to `initial` (Python's `m.Value(typecode, value)`).
    ///
    /// # Errors
    /// [`is_shutdown`](ManagerError::is_shutdown) if the manager is gone;
    /// [`is_serialization`](ManagerError::is_serialization) if `initial` does not
    /// serialize.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let v = m.value((1u8, "one".to_string())).unwrap();
    /// assert_eq!(v.get().unwrap().1, "one");
    /// ```
    pub fn value<T>(&self, initial: T) -> Result<Value<T>, ManagerError>
    where
        T: Serialize + DeserializeOwned,
    {
        Ok(Value::from_handle(self.create(
            ObjKind::Value,
            Value::<T>::tag(),
            encode(&initial)?,
        )?))
    }

    /// A proxy to the existing value `id` of this manager (made by any client).
    ///
    /// # Errors
    /// [`is_missing`](ManagerError::is_missing) if there is no such object;
    /// [`is_wrong_type`](ManagerError::is_wrong_type) if it is not a `Value<T>`.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let v = m.value(1u64).unwrap();
    /// assert!(m.value_by_id::<u64>(v.id()).is_ok());
    /// assert!(m.value_by_id::<i64>(v.id()).unwrap_err().is_wrong_type());
    /// ```
    pub fn value_by_id<T>(&self, id: u64) -> Result<Value<T>, ManagerError>
    where
        T: Serialize + DeserializeOwned,
    {
        Ok(Value::from_handle(self.attach(id, Value::<T>::tag())?))
    }
}
