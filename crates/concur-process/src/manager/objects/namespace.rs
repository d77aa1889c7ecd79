//! [`Namespace`]: a shared set of named fields (Python's `Manager().Namespace()`).

use std::fmt;
use std::sync::{Mutex, PoisonError};

use indexmap::IndexMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::manager::Manager;
use crate::manager::client::Handle;
use crate::manager::error::{Kind, ManagerError};
use crate::manager::object::{Ctx, Object};
use crate::manager::protocol::{ObjKind, decode, decode_op, encode};

/// A field as stored: the type name it was set with, and its serialized value.
type Field = (String, Vec<u8>);

#[derive(Serialize, Deserialize)]
enum NamespaceOp {
    Set(String, Field),
    Get(String),
    Remove(String),
    Contains(String),
    Names,
}

/// The server side of a namespace.
pub(crate) struct NamespaceObject {
    tag: String,
    fields: Mutex<IndexMap<String, Field>>,
}

impl NamespaceObject {
    pub(crate) fn new(tag: String) -> Self {
        NamespaceObject {
            tag,
            fields: Mutex::new(IndexMap::new()),
        }
    }
}

impl Object for NamespaceObject {
    fn tag(&self) -> &str {
        &self.tag
    }

    fn call(&self, _ctx: &Ctx<'_>, op: &[u8]) -> Result<Vec<u8>, ManagerError> {
        let op = decode_op::<NamespaceOp>(op)?;
        let mut m = self.fields.lock().unwrap_or_else(PoisonError::into_inner);
        match op {
            NamespaceOp::Set(name, field) => {
                m.insert(name, field);
                encode(&())
            }
            NamespaceOp::Get(name) => match m.get(&name) {
                Some(field) => encode(field),
                None => Err(ManagerError::new(
                    Kind::Missing,
                    format!("the namespace has no field {name:?}"),
                )),
            },
            NamespaceOp::Remove(name) => encode(&m.shift_remove(&name).is_some()),
            NamespaceOp::Contains(name) => encode(&m.contains_key(&name)),
            NamespaceOp::Names => encode(&m.keys().collect::<Vec<_>>()),
        }
    }
}

/// A set of named fields held by a [`Manager`]'s server and shared by every process
/// that holds a proxy to it: Python's `Manager().Namespace()`, where `ns.x = v` is
/// [`set`](Self::set)`("x", &v)` and `ns.x` is [`get`](Self::get)`::<T>("x")`. Each
/// field has its own serde type, recorded with its value when it is set: reading it
/// as another type is [`is_wrong_type`](ManagerError::is_wrong_type).
///
/// Every call is one round trip to the server. Cloning the proxy opens another
/// connection on first use; a proxy passed to a [`Process`](crate::Process) as an
/// argument connects from the child.
///
/// ```
/// use concur::process::Manager;
///
/// let m = Manager::start().unwrap();
/// let ns = m.namespace().unwrap();
/// ns.set("name", &"Bob").unwrap();
/// ns.set("age", &42u32).unwrap();
/// assert_eq!(ns.get::<String>("name").unwrap(), "Bob");
/// assert_eq!(ns.get::<u32>("age").unwrap(), 42);
/// assert_eq!(ns.names().unwrap(), ["name", "age"]);
/// ```
#[derive(Clone)]
pub struct Namespace {
    h: Handle,
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.h.fmt(f)
    }
}

impl Serialize for Namespace {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.h.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Namespace {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Namespace {
            h: Handle::deserialize(d)?,
        })
    }
}

impl Namespace {
    /// The type tag of a `Namespace`.
    pub(crate) fn tag() -> String {
        super::tag("namespace", &[])
    }

    pub(crate) fn from_handle(h: Handle) -> Self {
        Namespace { h }
    }

    /// The object's id on its manager (to attach to it with
    /// [`Manager::namespace_by_id`]).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let ns = m.namespace().unwrap();
    /// let again = m.namespace_by_id(ns.id()).unwrap();
    /// ns.set("x", &1u8).unwrap();
    /// assert_eq!(again.get::<u8>("x").unwrap(), 1);
    /// ```
    pub fn id(&self) -> u64 {
        self.h.id
    }

    /// Sets field `name` to `value`, of any serde type, replacing what was there
    /// (Python's `ns.name = value`).
    ///
    /// # Errors
    /// [`is_shutdown`](ManagerError::is_shutdown) if the manager is gone;
    /// [`is_serialization`](ManagerError::is_serialization) if `value` does not
    /// serialize; an I/O error.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let ns = m.namespace().unwrap();
    /// ns.set("x", &1u8).unwrap();
    /// ns.set("x", &vec![1.5f64]).unwrap();
    /// assert_eq!(ns.get::<Vec<f64>>("x").unwrap(), [1.5]);
    /// ```
    pub fn set<T: Serialize + ?Sized>(&self, name: &str, value: &T) -> Result<(), ManagerError> {
        self.h.call(&NamespaceOp::Set(
            name.to_owned(),
            (type_of_value::<T>(), encode(value)?),
        ))
    }

    /// The value of field `name` (Python's `ns.name`). The field must have been set
    /// with a `T`, as recorded by [`set`](Self::set): a `str` or `String` field reads
    /// as a `String`, a `[E]` or `Vec<E>` field as a `Vec<E>`; otherwise the type
    /// names must match (`Vec<E>` is not `[E; N]`).
    ///
    /// # Errors
    /// [`is_missing`](ManagerError::is_missing) if there is no such field (Python's
    /// `AttributeError`); [`is_wrong_type`](ManagerError::is_wrong_type) if it was
    /// set with another type or does not decode as a `T`; otherwise as
    /// [`set`](Self::set).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let ns = m.namespace().unwrap();
    /// ns.set("x", &7i32).unwrap();
    /// assert_eq!(ns.get::<i32>("x").unwrap(), 7);
    /// assert!(ns.get::<String>("x").unwrap_err().is_wrong_type());
    /// assert!(ns.get::<i32>("y").unwrap_err().is_missing());
    /// ```
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<T, ManagerError> {
        let (ty, bytes): Field = self.h.call(&NamespaceOp::Get(name.to_owned()))?;
        let want = type_of_value::<T>();
        if ty != want {
            return Err(ManagerError::wrong_type(format!(
                "namespace field {name:?} holds a {ty}, not a {want}"
            )));
        }
        decode(&bytes)
    }

    /// Removes field `name`; returns whether it was there (Python's `del ns.name`,
    /// without its `AttributeError`).
    ///
    /// # Errors
    /// As [`set`](Self::set).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let ns = m.namespace().unwrap();
    /// ns.set("job", &"Builder").unwrap();
    /// assert!(ns.remove("job").unwrap());
    /// assert!(!ns.remove("job").unwrap());
    /// ```
    pub fn remove(&self, name: &str) -> Result<bool, ManagerError> {
        self.h.call(&NamespaceOp::Remove(name.to_owned()))
    }

    /// Whether field `name` is set (Python's `hasattr(ns, name)`).
    ///
    /// # Errors
    /// As [`set`](Self::set).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let ns = m.namespace().unwrap();
    /// ns.set("a", &()).unwrap();
    /// assert!(ns.contains("a").unwrap() && !ns.contains("b").unwrap());
    /// ```
    pub fn contains(&self, name: &str) -> Result<bool, ManagerError> {
        self.h.call(&NamespaceOp::Contains(name.to_owned()))
    }

    /// The names of the fields, in the order they were first set (a snapshot).
    ///
    /// # Errors
    /// As [`set`](Self::set).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let ns = m.namespace().unwrap();
    /// ns.set("b", &1u8).unwrap();
    /// ns.set("a", &2u8).unwrap();
    /// assert_eq!(ns.names().unwrap(), ["b", "a"]);
    /// ```
    pub fn names(&self) -> Result<Vec<String>, ManagerError> {
        self.h.call(&NamespaceOp::Names)
    }
}

/// The type name recorded for a value of type `T`: string types all count as
/// `String` and slices `[E]` as `Vec<E>` (they serialize alike), references as what
/// they refer to.
fn type_of_value<T: ?Sized>() -> String {
    let mut base = std::any::type_name::<T>();
    while let Some(rest) = base.strip_prefix('&') {
        base = rest.strip_prefix("mut ").unwrap_or(rest);
    }
    match base {
        "str" | "alloc::string::String" | "alloc::borrow::Cow<str>" => {
            "alloc::string::String".to_owned()
        }
        slice if slice.starts_with('[') && slice.ends_with(']') && !slice.contains(';') => {
            format!("alloc::vec::Vec<{}>", &slice[1..slice.len() - 1])
        }
        other => other.to_owned(),
    }
}

impl Manager {
    /// A new, empty shared namespace (Python's `m.Namespace()`).
    ///
    /// # Errors
    /// [`is_shutdown`](ManagerError::is_shutdown) if the manager is gone.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let ns = m.namespace().unwrap();
    /// assert!(ns.names().unwrap().is_empty());
    /// ```
    pub fn namespace(&self) -> Result<Namespace, ManagerError> {
        Ok(Namespace::from_handle(self.create(
            ObjKind::Namespace,
            Namespace::tag(),
            Vec::new(),
        )?))
    }

    /// A proxy to the existing namespace `id` of this manager (made by any client).
    ///
    /// # Errors
    /// [`is_missing`](ManagerError::is_missing) if there is no such object;
    /// [`is_wrong_type`](ManagerError::is_wrong_type) if it is not a namespace.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let ns = m.namespace().unwrap();
    /// let l = m.list::<u8>().unwrap();
    /// assert!(m.namespace_by_id(ns.id()).is_ok());
    /// assert!(m.namespace_by_id(l.id()).unwrap_err().is_wrong_type());
    /// ```
    pub fn namespace_by_id(&self, id: u64) -> Result<Namespace, ManagerError> {
        Ok(Namespace::from_handle(self.attach(id, Namespace::tag())?))
    }
}
