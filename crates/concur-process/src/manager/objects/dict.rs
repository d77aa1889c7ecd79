//! [`Dict`]: a shared dictionary (Python's `Manager().dict()`), insertion-ordered.

use std::fmt;
use std::marker::PhantomData;
use std::sync::{Mutex, PoisonError};

use indexmap::IndexMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::exec::{self, TableEntry};
use crate::manager::client::Handle;
use crate::manager::error::{Kind, ManagerError};
use crate::manager::object::{Ctx, Object};
use crate::manager::protocol::{decode, decode_op, encode};
use crate::process::child;

/// A function run on the server on a stored value: decodes the old value, applies
/// the user's function, encodes the new one.
pub(crate) type UpdateFn = fn(Option<&[u8]>) -> Result<Vec<u8>, ManagerError>;

/// The function table (`exec::register`) the update functions of dicts and values are
/// kept in: the server runs only a function it finds there under the key a client
/// sends, never an address (see the trust model in the [module docs](crate::manager)).
pub(crate) const UPDATE_TABLE: &str = "concur-manager-update";

/// The table entry of a dict's update by `F` on values of type `V`.
struct DictUpdate<F, V>(PhantomData<fn() -> (F, V)>);

impl<F, V> TableEntry for DictUpdate<F, V>
where
    F: Fn(Option<V>) -> V + Copy + 'static,
    V: Serialize + DeserializeOwned + 'static,
{
    const TABLE: &'static str = UPDATE_TABLE;
    type Fn = UpdateFn;
    fn key() -> String {
        format!(
            "dict:{}:{}",
            exec::fn_name::<F>(),
            std::any::type_name::<V>()
        )
    }
    fn func() -> UpdateFn {
        update_trampoline::<F, V>
    }
}

fn update_trampoline<F, V>(old: Option<&[u8]>) -> Result<Vec<u8>, ManagerError>
where
    F: Fn(Option<V>) -> V + Copy + 'static,
    V: Serialize + DeserializeOwned,
{
    let old: Option<V> = old.map(decode).transpose()?;
    // Only reachable through the table entry `update_key::<F, V>` registered, which
    // takes a value of `F`: the type is inhabited.
    let f: F = child::conjure();
    run_caught(move || f(old))
}

/// Runs a user's update function, turning a panic into a remote error.
pub(crate) fn run_caught<V: Serialize>(f: impl FnOnce() -> V) -> Result<Vec<u8>, ManagerError> {
    match child::catch(f) {
        Ok(v) => encode(&v),
        Err((message, location)) => Err(ManagerError::new(
            Kind::Remote,
            match location {
                Some(l) => format!("the update function panicked on the server: {message} at {l}"),
                None => format!("the update function panicked on the server: {message}"),
            },
        )),
    }
}

/// Runs the update function a client named by `key` on `old`: looked up in this
/// binary's own table, so a forged or stale key is an error, never a jump.
pub(crate) fn run_update(
    ctx: &Ctx<'_>,
    key: &str,
    old: Option<&[u8]>,
) -> Result<Vec<u8>, ManagerError> {
    // Not a safety check (a client can claim any identity): a client of another build
    // gets a clear error instead of a function that merely shares a name.
    if !ctx.same_binary {
        return Err(ManagerError::new(
            Kind::Remote,
            "the manager runs another binary: it cannot run this client's function",
        ));
    }
    match exec::lookup::<UpdateFn>(UPDATE_TABLE, key) {
        Some(f) => f(old),
        None => Err(ManagerError::new(
            Kind::Remote,
            format!(
                "the manager's binary has no update function `{key}` (the client runs \
                 another build, or the request was forged)"
            ),
        )),
    }
}

/// The table key of the update trampoline for `F` (registering it).
pub(crate) fn update_key<F, V>(f: F) -> String
where
    F: Fn(Option<V>) -> V + Copy + 'static,
    V: Serialize + DeserializeOwned + 'static,
{
    let () = child::NoCaptures::<F>::CHECK;
    let _ = f;
    exec::register::<DictUpdate<F, V>>();
    DictUpdate::<F, V>::key()
}

#[derive(Serialize, Deserialize)]
enum DictOp {
    Get(Vec<u8>),
    Insert(Vec<u8>, Vec<u8>),
    Remove(Vec<u8>),
    Contains(Vec<u8>),
    Len,
    Keys,
    Values,
    Items,
    Clear,
    Update(Vec<u8>, String),
}

/// The server side of a dict.
pub(crate) struct DictObject {
    tag: String,
    map: Mutex<IndexMap<Vec<u8>, Vec<u8>>>,
}

impl DictObject {
    pub(crate) fn new(tag: String) -> Self {
        DictObject {
            tag,
            map: Mutex::new(IndexMap::new()),
        }
    }
}

impl Object for DictObject {
    fn tag(&self) -> &str {
        &self.tag
    }

    fn call(&self, ctx: &Ctx<'_>, op: &[u8]) -> Result<Vec<u8>, ManagerError> {
        let mut m = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        match decode_op::<DictOp>(op)? {
            DictOp::Get(k) => encode(&m.get(&k)),
            DictOp::Insert(k, v) => encode(&m.insert(k, v)),
            DictOp::Remove(k) => encode(&m.shift_remove(&k)),
            DictOp::Contains(k) => encode(&m.contains_key(&k)),
            DictOp::Len => encode(&(m.len() as u64)),
            DictOp::Keys => encode(&m.keys().collect::<Vec<_>>()),
            DictOp::Values => encode(&m.values().collect::<Vec<_>>()),
            DictOp::Items => encode(&m.iter().collect::<Vec<_>>()),
            DictOp::Clear => {
                m.clear();
                encode(&())
            }
            DictOp::Update(k, key) => {
                let new = run_update(ctx, &key, m.get(&k).map(Vec::as_slice))?;
                m.insert(k, new.clone());
                encode(&new)
            }
        }
    }
}

/// A dictionary held by a [`Manager`](crate::Manager)'s server and shared by every
/// process that holds a proxy to it: Python's `Manager().dict()`. Keys and values are
/// serde types, stored serialized; the order is the order of insertion.
///
/// Every call is one round trip to the server and sees the dictionary as it is then:
/// `keys`, `values` and `items` are snapshots. [`update`](Self::update) changes one
/// entry atomically on the server (a read-modify-write that no other client can
/// interleave with), which a `get` followed by an `insert` is not.
///
/// Cloning the proxy opens another connection on first use (a proxy per thread, as in
/// Python); a proxy passed to a [`Process`](crate::Process) as an argument connects
/// from the child.
///
/// ```
/// use concur::process::Manager;
///
/// let m = Manager::start().unwrap();
/// let d = m.dict::<String, u64>().unwrap();
/// d.insert("a".into(), 1).unwrap();
/// assert_eq!(d.get(&"a".into()).unwrap(), Some(1));
/// assert_eq!(d.update("a".into(), |v: Option<u64>| v.unwrap_or(0) + 10).unwrap(), 11);
/// assert_eq!(d.items().unwrap(), vec![("a".to_string(), 11)]);
/// ```
pub struct Dict<K, V> {
    h: Handle,
    _t: PhantomData<Types<K, V>>,
}

/// The proxy's type parameters, without owning any `K` or `V` (so a proxy is `Send`
/// and `Sync` whatever they are).
type Types<K, V> = fn(K, V) -> (K, V);

impl<K, V> Clone for Dict<K, V> {
    fn clone(&self) -> Self {
        Dict {
            h: self.h.clone(),
            _t: PhantomData,
        }
    }
}

impl<K, V> fmt::Debug for Dict<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.h.fmt(f)
    }
}

impl<K, V> Serialize for Dict<K, V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.h.serialize(s)
    }
}

impl<'de, K, V> Deserialize<'de> for Dict<K, V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Dict {
            h: Handle::deserialize(d)?,
            _t: PhantomData,
        })
    }
}

impl<K, V> Dict<K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    /// The type tag of a `Dict<K, V>`.
    pub(crate) fn tag() -> String {
        super::tag(
            "dict",
            &[std::any::type_name::<K>(), std::any::type_name::<V>()],
        )
    }

    pub(crate) fn from_handle(h: Handle) -> Self {
        Dict { h, _t: PhantomData }
    }

    /// The object's id on its manager (to attach to it with
    /// [`Manager::dict_by_id`](crate::Manager::dict_by_id)).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let d = m.dict::<u8, u8>().unwrap();
    /// let again = m.dict_by_id::<u8, u8>(d.id()).unwrap();
    /// d.insert(1, 2).unwrap();
    /// assert_eq!(again.get(&1).unwrap(), Some(2));
    /// ```
    pub fn id(&self) -> u64 {
        self.h.id
    }

    /// The value of `key`, if any (Python's `d.get(k)`).
    ///
    /// # Errors
    /// [`is_wrong_type`](ManagerError::is_wrong_type) if the stored value does not
    /// decode as a `V`; [`is_shutdown`](ManagerError::is_shutdown) if the manager is
    /// gone; an I/O error.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let d = m.dict::<u8, char>().unwrap();
    /// assert_eq!(d.get(&1).unwrap(), None);
    /// ```
    pub fn get(&self, key: &K) -> Result<Option<V>, ManagerError> {
        let v: Option<Vec<u8>> = self.h.call(&DictOp::Get(encode(key)?))?;
        v.map(|b| decode(&b)).transpose()
    }

    /// The values of `keys`, in their order: the requests are pipelined (sent back to
    /// back on this proxy's connection, each answered in turn), so many lookups cost
    /// about one round trip. Each lookup is its own request: another client's change
    /// may land between two of them.
    ///
    /// # Errors
    /// As [`get`](Self::get), for the first lookup that fails.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let d = m.dict::<u8, u8>().unwrap();
    /// d.insert(1, 10).unwrap();
    /// assert_eq!(d.get_many(&[1, 2, 1]).unwrap(), [Some(10), None, Some(10)]);
    /// ```
    pub fn get_many(&self, keys: &[K]) -> Result<Vec<Option<V>>, ManagerError> {
        let ops = keys
            .iter()
            .map(|k| Ok(DictOp::Get(encode(k)?)))
            .collect::<Result<Vec<_>, ManagerError>>()?;
        self.h
            .call_many::<_, Option<Vec<u8>>>(ops)?
            .into_iter()
            .map(|r| r?.map(|b: Vec<u8>| decode(&b)).transpose())
            .collect()
    }

    /// The value of `key` (Python's `d[k]`).
    ///
    /// # Errors
    /// [`is_missing`](ManagerError::is_missing) if there is none; otherwise as
    /// [`get`](Self::get).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let d = m.dict::<u8, char>().unwrap();
    /// d.insert(1, 'x').unwrap();
    /// assert_eq!(d.get_item(&1).unwrap(), 'x');
    /// assert!(d.get_item(&2).unwrap_err().is_missing());
    /// ```
    pub fn get_item(&self, key: &K) -> Result<V, ManagerError> {
        self.get(key)?
            .ok_or_else(|| ManagerError::new(Kind::Missing, "no such key in the dict"))
    }

    /// Sets `key` to `value`; returns the old value (Python's `d[k] = v`).
    ///
    /// # Errors
    /// As [`get`](Self::get).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let d = m.dict::<u8, u8>().unwrap();
    /// assert_eq!(d.insert(1, 1).unwrap(), None);
    /// assert_eq!(d.insert(1, 2).unwrap(), Some(1));
    /// ```
    pub fn insert(&self, key: K, value: V) -> Result<Option<V>, ManagerError> {
        let old: Option<Vec<u8>> = self
            .h
            .call(&DictOp::Insert(encode(&key)?, encode(&value)?))?;
        old.map(|b| decode(&b)).transpose()
    }

    /// Removes `key`; returns its value (Python's `d.pop(k, None)`).
    ///
    /// # Errors
    /// As [`get`](Self::get).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let d = m.dict::<u8, u8>().unwrap();
    /// d.insert(1, 5).unwrap();
    /// assert_eq!(d.remove(&1).unwrap(), Some(5));
    /// assert_eq!(d.remove(&1).unwrap(), None);
    /// ```
    pub fn remove(&self, key: &K) -> Result<Option<V>, ManagerError> {
        let old: Option<Vec<u8>> = self.h.call(&DictOp::Remove(encode(key)?))?;
        old.map(|b| decode(&b)).transpose()
    }

    /// Whether `key` is present (Python's `k in d`).
    ///
    /// # Errors
    /// As [`get`](Self::get).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let d = m.dict::<u8, u8>().unwrap();
    /// d.insert(3, 0).unwrap();
    /// assert!(d.contains_key(&3).unwrap() && !d.contains_key(&4).unwrap());
    /// ```
    pub fn contains_key(&self, key: &K) -> Result<bool, ManagerError> {
        self.h.call(&DictOp::Contains(encode(key)?))
    }

    /// The number of entries.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let d = m.dict::<u8, u8>().unwrap();
    /// assert_eq!(d.len().unwrap(), 0);
    /// ```
    pub fn len(&self) -> Result<usize, ManagerError> {
        let n: u64 = self.h.call(&DictOp::Len)?;
        Ok(n as usize)
    }

    /// Whether the dict is empty.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// assert!(m.dict::<u8, u8>().unwrap().is_empty().unwrap());
    /// ```
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        Ok(self.len()? == 0)
    }

    /// The keys, in insertion order (a snapshot).
    ///
    /// # Errors
    /// As [`get`](Self::get).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let d = m.dict::<u8, u8>().unwrap();
    /// d.insert(2, 0).unwrap();
    /// d.insert(1, 0).unwrap();
    /// assert_eq!(d.keys().unwrap(), [2, 1]);
    /// ```
    pub fn keys(&self) -> Result<Vec<K>, ManagerError> {
        let ks: Vec<Vec<u8>> = self.h.call(&DictOp::Keys)?;
        ks.iter().map(|b| decode(b)).collect()
    }

    /// The values, in insertion order of their keys (a snapshot).
    ///
    /// # Errors
    /// As [`get`](Self::get).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let d = m.dict::<u8, u8>().unwrap();
    /// d.insert(2, 20).unwrap();
    /// assert_eq!(d.values().unwrap(), [20]);
    /// ```
    pub fn values(&self) -> Result<Vec<V>, ManagerError> {
        let vs: Vec<Vec<u8>> = self.h.call(&DictOp::Values)?;
        vs.iter().map(|b| decode(b)).collect()
    }

    /// The entries, in insertion order (a snapshot).
    ///
    /// # Errors
    /// As [`get`](Self::get).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let d = m.dict::<u8, u8>().unwrap();
    /// d.insert(2, 20).unwrap();
    /// assert_eq!(d.items().unwrap(), [(2, 20)]);
    /// ```
    pub fn items(&self) -> Result<Vec<(K, V)>, ManagerError> {
        let es: Vec<(Vec<u8>, Vec<u8>)> = self.h.call(&DictOp::Items)?;
        es.iter()
            .map(|(k, v)| Ok((decode(k)?, decode(v)?)))
            .collect()
    }

    /// Removes every entry.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let d = m.dict::<u8, u8>().unwrap();
    /// d.insert(2, 20).unwrap();
    /// d.clear().unwrap();
    /// assert!(d.is_empty().unwrap());
    /// ```
    pub fn clear(&self) -> Result<(), ManagerError> {
        self.h.call(&DictOp::Clear)
    }

    /// Sets `key` to `f(old value)` atomically on the server and returns the new value:
    /// no other client's call on this dict runs in between. `f` captures nothing (a
    /// `fn` or a non-capturing closure), and runs in the server process: the server
    /// receives the function's key in its own table of update functions (made when
    /// the binary was linked), so it must run this same binary.
    ///
    /// # Errors
    /// [`is_remote`](ManagerError::is_remote) if `f` panicked on the server or the
    /// server runs another binary; otherwise as [`get`](Self::get).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let d = m.dict::<String, u32>().unwrap();
    /// for _ in 0..3 {
    ///     d.update("hits".into(), |n: Option<u32>| n.unwrap_or(0) + 1).unwrap();
    /// }
    /// assert_eq!(d.get(&"hits".into()).unwrap(), Some(3));
    /// ```
    pub fn update<F>(&self, key: K, f: F) -> Result<V, ManagerError>
    where
        F: Fn(Option<V>) -> V + Copy + 'static,
        V: 'static,
    {
        let fkey = update_key(f);
        let new: Vec<u8> = self.h.call(&DictOp::Update(encode(&key)?, fkey))?;
        decode(&new)
    }
}
