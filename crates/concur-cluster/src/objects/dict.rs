//! [`Dict`]: the manager's shared dictionary on a Redis hash.
//!
//! Keys (`concur:obj:dict:{name}:…`): `h` (a hash: postcard-encoded key → encoded
//! value), `o` (a sorted set: encoded key → insertion number, for insertion order),
//! `state` (a hash: `type`, the key and value types' names, and `seq`, the last
//! insertion number), `s:<session>` (the last write of a connection's session, so a
//! retried write is not applied twice).
//!
//! `get`, `contains_key` and `len` are one plain command each (`HGET`, `HEXISTS`,
//! `HLEN`); writes are scripts. [`Dict::update`] is optimistic: it reads the value,
//! applies the function in the caller, and writes the result only if the value is
//! still the one it read (compared byte for byte, in a script), else tries again with
//! the value it found. The function runs in the calling process (never on another
//! machine, so nothing names it on the wire), possibly more than once under
//! contention: it should only compute. (Redis' own `WATCH`/`MULTI` recipe for
//! optimistic locking, as one script; Redisson's `RMap.compute` takes a lock instead.)

use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, LazyLock};

use redis::Script;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::ctx::{self, Ctx, ObjKeys};
use crate::error::ClusterError;

/// Creates the state or reads it. KEYS: state. ARGV: type. Returns the stored type.
static INIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('HSETNX', KEYS[1], 'type', ARGV[1])
return redis.call('HGET', KEYS[1], 'type')
",
    )
});

/// The reply of a write: `'0'` (there was no value) or `'1'` followed by the old value.
const OLD: &str = "(old and ('1' .. old) or '0')";

/// KEYS: h, o, state, session. ARGV: key, value, seq. Returns `{_, old}`.
static INSERT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"
{}
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if not old then redis.call('ZADD', KEYS[2], redis.call('HINCRBY', KEYS[3], 'seq', 1), ARGV[1]) end
{}
return {{'ok', {OLD}}}
",
        ctx::session_check(4, 3),
        ctx::session_record(4, 3, OLD),
    ))
});

/// KEYS: h, o, state, session. ARGV: key, seq. Returns `{_, old}`.
static REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"
{}
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
{}
return {{'ok', {OLD}}}
",
        ctx::session_check(4, 2),
        ctx::session_record(4, 2, OLD),
    ))
});

/// Sets the key to the new value if its value is the expected one. KEYS: h, o, state,
/// session. ARGV: key, has expected (`0`/`1`), expected, new, seq. Returns `{_, '='}`
/// (set) or `{_, current}` in the form of an old value.
static CAS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"
{}
local old = redis.call('HGET', KEYS[1], ARGV[1])
local r
if (ARGV[2] == '1' and old == ARGV[3]) or (ARGV[2] == '0' and not old) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
  if not old then redis.call('ZADD', KEYS[2], redis.call('HINCRBY', KEYS[3], 'seq', 1), ARGV[1]) end
  r = '='
else
  r = {OLD}
end
{}
return {{'ok', r}}
",
        ctx::session_check(4, 5),
        ctx::session_record(4, 5, "r"),
    ))
});

/// The entries in insertion order, flat. KEYS: h, o.
static ITEMS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local out = {}
for _, k in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local v = redis.call('HGET', KEYS[1], k)
  if v then
    out[#out + 1] = k
    out[#out + 1] = v
  end
end
return out
",
    )
});

/// A dictionary shared by every process, on any machine, that connects to it by
/// name: the manager's `Dict` (`concur_process::manager::Dict`, Python's
/// `Manager().dict()`) on a Redis hash, as a cheaply cloneable handle. Keys and
/// values are serde types, stored postcard-encoded; the order is insertion order.
///
/// Every call is a round trip and sees the dictionary as it is then (`keys`,
/// `values`, `items` are snapshots). Beside the manager's API it has
/// [`compare_and_set`](Self::compare_and_set), and its [`update`](Self::update) is
/// optimistic (see the method).
///
/// ```
/// use concur::cluster::{Dict, RedisServer};
///
/// let redis = RedisServer::start()?;
/// let d = Dict::<String, u64>::connect(&redis.url(), "hits")?;
/// d.insert("a".into(), 1)?;
/// assert_eq!(d.get(&"a".into())?, Some(1));
/// assert_eq!(d.update("a".into(), |v| v.unwrap_or(0) + 10)?, 11);
/// assert_eq!(d.compare_and_set(&"a".into(), Some(&11), 12)?, Ok(()));
/// assert_eq!(d.compare_and_set(&"a".into(), Some(&11), 13)?, Err(Some(12)));
/// assert_eq!(d.items()?, vec![("a".to_string(), 12)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Dict<K, V> {
    inner: Arc<Inner>,
    _t: PhantomData<Types<K, V>>,
}

/// The handle's type parameters, without owning any `K` or `V` (so a handle is `Send`
/// and `Sync` whatever they are).
type Types<K, V> = fn(K, V) -> (K, V);

struct Inner {
    ctx: Arc<Ctx>,
    name: String,
    keys: ObjKeys,
    h: String,
    o: String,
    state: String,
}

impl<K, V> Clone for Dict<K, V> {
    fn clone(&self) -> Self {
        Dict {
            inner: self.inner.clone(),
            _t: PhantomData,
        }
    }
}

impl<K, V> fmt::Debug for Dict<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dict")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

fn encode<T: Serialize>(what: &str, v: &T) -> Result<Vec<u8>, ClusterError> {
    postcard::to_stdvec(v)
        .map_err(|e| ClusterError::invalid(format!("a dict {what} could not be encoded: {e}")))
}

fn decode<T: DeserializeOwned>(what: &str, b: &[u8]) -> Result<T, ClusterError> {
    postcard::from_bytes(b).map_err(|e| {
        ClusterError::invalid(format!(
            "a dict {what} does not decode as {}: {e}",
            std::any::type_name::<T>()
        ))
    })
}

impl<K, V> Dict<K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    /// A handle to the dict `name` on the Redis at `url`, made empty if it does not
    /// exist.
    ///
    /// # Errors
    /// [`is_invalid`](ClusterError::is_invalid) for a bad URL or name, or a dict of
    /// this name with other key or value types;
    /// [`is_connection`](ClusterError::is_connection) if Redis cannot be reached
    /// within 5 s.
    pub fn connect(url: &str, name: &str) -> Result<Dict<K, V>, ClusterError> {
        let d = Dict::open(url, name)?;
        let ty: String = d.inner.ctx.call_within(ctx::CONNECT_TIMEOUT, |c, _| {
            INIT.key(&d.inner.state).arg(Self::types()).invoke(c)
        })?;
        if ty != Self::types() {
            return Err(ClusterError::invalid(format!(
                "dict {name:?} holds {ty}, not {}",
                Self::types()
            )));
        }
        Ok(d)
    }

    fn types() -> &'static str {
        std::any::type_name::<(K, V)>()
    }

    fn open(url: &str, name: &str) -> Result<Dict<K, V>, ClusterError> {
        let keys = ObjKeys::new("dict", name)?;
        Ok(Dict {
            inner: Arc::new(Inner {
                ctx: Ctx::of(url)?,
                name: name.to_owned(),
                h: keys.key("h"),
                o: keys.key("o"),
                state: keys.key("state"),
                keys,
            }),
            _t: PhantomData,
        })
    }

    /// The value of `key`, if any (Python's `d.get(k)`): one `HGET`.
    ///
    /// # Errors
    /// If Redis failed; [`is_invalid`](ClusterError::is_invalid) if the stored value
    /// does not decode as a `V`.
    pub fn get(&self, key: &K) -> Result<Option<V>, ClusterError> {
        let i = &*self.inner;
        let k = encode("key", key)?;
        let v: Option<Vec<u8>> = i
            .ctx
            .call(|c, _| redis::cmd("HGET").arg(&i.h).arg(&k).query(c))?;
        v.map(|b| decode("value", &b)).transpose()
    }

    fn write(&self, s: &Script, args: &[&[u8]]) -> Result<Vec<u8>, ClusterError> {
        let i = &*self.inner;
        let (_, r): (String, Vec<u8>) = i.ctx.call(|c, s_| {
            let mut inv = s.prepare_invoke();
            inv.key(&i.h)
                .key(&i.o)
                .key(&i.state)
                .key(i.keys.session(&s_.sid));
            for a in args {
                inv.arg(*a);
            }
            inv.arg(&s_.seq).invoke(c)
        })?;
        Ok(r)
    }

    fn old(r: &[u8]) -> Result<Option<V>, ClusterError> {
        match r.split_first() {
            Some((b'1', v)) => decode("value", v).map(Some),
            _ => Ok(None),
        }
    }

    /// Sets `key` to `value`; returns the old value (Python's `d[k] = v`).
    ///
    /// # Errors
    /// If Redis failed, or a key or value does not (de)code.
    pub fn insert(&self, key: K, value: V) -> Result<Option<V>, ClusterError> {
        let (k, v) = (encode("key", &key)?, encode("value", &value)?);
        Self::old(&self.write(&INSERT, &[&k, &v])?)
    }

    /// Removes `key`; returns its value (Python's `d.pop(k, None)`).
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn remove(&self, key: &K) -> Result<Option<V>, ClusterError> {
        let k = encode("key", key)?;
        Self::old(&self.write(&REMOVE, &[&k])?)
    }

    /// Sets `key` to `new` if its value is `expected` right now (`None`: if it has
    /// none), compared in their encoded form. `Ok(Ok(()))` if set; `Ok(Err(current))`
    /// with the value found otherwise.
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn compare_and_set(
        &self,
        key: &K,
        expected: Option<&V>,
        new: V,
    ) -> Result<Result<(), Option<V>>, ClusterError> {
        let k = encode("key", key)?;
        let e = expected.map(|e| encode("value", e)).transpose()?;
        let n = encode("value", &new)?;
        match self.cas(&k, e.as_deref(), &n)? {
            None => Ok(Ok(())),
            Some(cur) => Ok(Err(cur.map(|b| decode("value", &b)).transpose()?)),
        }
    }

    /// `None` if set, else `Some(current encoded value)`.
    fn cas(
        &self,
        k: &[u8],
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<Option<Option<Vec<u8>>>, ClusterError> {
        let has = if expected.is_some() { b"1" } else { b"0" };
        let r = self.write(&CAS, &[k, has, expected.unwrap_or(&[]), new])?;
        Ok(match r.split_first() {
            Some((b'=', _)) => None,
            Some((b'1', v)) => Some(Some(v.to_vec())),
            _ => Some(None),
        })
    }

    /// Sets `key` to `f(old value)` atomically and returns the new value: no other
    /// write of the key lands between the read `f` saw and the write of its result.
    /// `f` runs here, in the caller, and runs again (on the value then found) each
    /// time another write got in first, so it should only compute.
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    ///
    /// ```
    /// let redis = concur::cluster::RedisServer::start()?;
    /// let d = concur::cluster::Dict::<String, u32>::connect(&redis.url(), "n")?;
    /// for _ in 0..3 {
    ///     d.update("hits".into(), |n| n.unwrap_or(0) + 1)?;
    /// }
    /// assert_eq!(d.get(&"hits".into())?, Some(3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn update<F>(&self, key: K, mut f: F) -> Result<V, ClusterError>
    where
        F: FnMut(Option<V>) -> V,
    {
        let i = &*self.inner;
        let k = encode("key", &key)?;
        let mut cur: Option<Vec<u8>> = i
            .ctx
            .call(|c, _| redis::cmd("HGET").arg(&i.h).arg(&k).query(c))?;
        loop {
            let old = cur.as_deref().map(|b| decode("value", b)).transpose()?;
            let new = f(old);
            let n = encode("value", &new)?;
            match self.cas(&k, cur.as_deref(), &n)? {
                None => return Ok(new),
                Some(found) => cur = found,
            }
        }
    }

    /// Whether `key` is present (Python's `k in d`).
    ///
    /// # Errors
    /// If Redis failed.
    pub fn contains_key(&self, key: &K) -> Result<bool, ClusterError> {
        let i = &*self.inner;
        let k = encode("key", key)?;
        i.ctx
            .call(|c, _| redis::cmd("HEXISTS").arg(&i.h).arg(&k).query(c))
    }

    /// The number of entries.
    ///
    /// # Errors
    /// If Redis failed.
    pub fn len(&self) -> Result<usize, ClusterError> {
        let i = &*self.inner;
        i.ctx.call(|c, _| redis::cmd("HLEN").arg(&i.h).query(c))
    }

    /// Whether it is empty.
    ///
    /// # Errors
    /// If Redis failed.
    pub fn is_empty(&self) -> Result<bool, ClusterError> {
        Ok(self.len()? == 0)
    }

    /// The keys, in insertion order (a snapshot).
    ///
    /// # Errors
    /// If Redis failed, or a key does not decode.
    pub fn keys(&self) -> Result<Vec<K>, ClusterError> {
        let i = &*self.inner;
        let ks: Vec<Vec<u8>> = i
            .ctx
            .call(|c, _| redis::cmd("ZRANGE").arg(&i.o).arg(0).arg(-1).query(c))?;
        ks.iter().map(|b| decode("key", b)).collect()
    }

    fn raw_items(&self) -> Result<Vec<Vec<u8>>, ClusterError> {
        let i = &*self.inner;
        i.ctx.call(|c, _| ITEMS.key(&i.h).key(&i.o).invoke(c))
    }

    /// The values, in insertion order of their keys (a snapshot).
    ///
    /// # Errors
    /// If Redis failed, or a value does not decode.
    pub fn values(&self) -> Result<Vec<V>, ClusterError> {
        self.raw_items()?
            .chunks_exact(2)
            .map(|kv| decode("value", &kv[1]))
            .collect()
    }

    /// The entries, in insertion order (a snapshot).
    ///
    /// # Errors
    /// If Redis failed, or an entry does not decode.
    pub fn items(&self) -> Result<Vec<(K, V)>, ClusterError> {
        self.raw_items()?
            .chunks_exact(2)
            .map(|kv| Ok((decode("key", &kv[0])?, decode("value", &kv[1])?)))
            .collect()
    }

    /// Removes every entry.
    ///
    /// # Errors
    /// If Redis failed.
    pub fn clear(&self) -> Result<(), ClusterError> {
        let i = &*self.inner;
        i.ctx
            .call(|c, _| redis::cmd("DEL").arg(&i.h).arg(&i.o).query(c))
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }
}

#[derive(Serialize, Deserialize)]
struct Spec {
    url: String,
    name: String,
}

impl<K, V> Serialize for Dict<K, V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Spec {
            url: self.inner.ctx.url().to_owned(),
            name: self.inner.name.clone(),
        }
        .serialize(s)
    }
}

impl<'de, K, V> Deserialize<'de> for Dict<K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spec::deserialize(d)?;
        Dict::open(&s.url, &s.name).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RedisServer;

    /// A write retried under the same session and number is not applied twice and
    /// answers as the first run did.
    #[test]
    fn a_write_retried_under_its_session_is_applied_once() {
        let redis = RedisServer::start().unwrap();
        let d = Dict::<u8, u32>::connect(&redis.url(), "retry").unwrap();
        d.insert(1, 10).unwrap();
        let i = &*d.inner;
        let mut con = redis::Client::open(redis.url())
            .unwrap()
            .get_connection()
            .unwrap();
        let (k, old, new) = (
            postcard::to_stdvec(&1u8).unwrap(),
            postcard::to_stdvec(&10u32).unwrap(),
            postcard::to_stdvec(&11u32).unwrap(),
        );
        let mut cas = || -> (String, Vec<u8>) {
            CAS.key(&i.h)
                .key(&i.o)
                .key(&i.state)
                .key(i.keys.session("s1"))
                .arg(&k)
                .arg("1")
                .arg(&old)
                .arg(&new)
                .arg(format!("{:020}", 1))
                .invoke(&mut con)
                .unwrap()
        };
        assert_eq!(cas(), ("ok".into(), b"=".to_vec()));
        // Run again (a retry after a lost reply): the value is 11 now, but the call is
        // known, and answers "set" again instead of "found 11".
        assert_eq!(cas(), ("dup".into(), b"=".to_vec()));
        assert_eq!(d.get(&1).unwrap(), Some(11));
    }
}
