//! [`List`]: a shared list (Python's `Manager().list()`).

use std::marker::PhantomData;
use std::sync::{Mutex, PoisonError};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::manager::Manager;
use crate::manager::client::Handle;
use crate::manager::error::{Kind, ManagerError};
use crate::manager::object::{Ctx, Object};
use crate::manager::protocol::{ObjKind, decode, decode_op, encode};

#[derive(Serialize, Deserialize)]
enum ListOp {
    Push(Vec<u8>),
    Pop,
    PopAt(u64),
    Get(u64),
    Set(u64, Vec<u8>),
    Insert(u64, Vec<u8>),
    Len,
    Extend(Vec<Vec<u8>>),
    Snapshot,
    Clear,
    Index(Vec<u8>),
    Count(Vec<u8>),
    Reverse,
}

/// The server side of a list.
pub(crate) struct ListObject {
    tag: String,
    items: Mutex<Vec<Vec<u8>>>,
}

impl ListObject {
    pub(crate) fn new(tag: String) -> Self {
        ListObject {
            tag,
            items: Mutex::new(Vec::new()),
        }
    }
}

fn out_of_range(i: u64, len: usize) -> ManagerError {
    ManagerError::new(
        Kind::Missing,
        format!("list index {i} out of range (length {len})"),
    )
}

/// `i` as an index into a list of `len` items, if it is one.
fn index(i: u64, len: usize) -> Result<usize, ManagerError> {
    usize::try_from(i)
        .ok()
        .filter(|&i| i < len)
        .ok_or_else(|| out_of_range(i, len))
}

impl Object for ListObject {
    fn tag(&self) -> &str {
        &self.tag
    }

    fn call(&self, _ctx: &Ctx<'_>, op: &[u8]) -> Result<Vec<u8>, ManagerError> {
        let op = decode_op::<ListOp>(op)?;
        let mut v = self.items.lock().unwrap_or_else(PoisonError::into_inner);
        match op {
            ListOp::Push(x) => {
                v.push(x);
                encode(&())
            }
            ListOp::Pop => match v.pop() {
                Some(x) => encode(&x),
                None => Err(ManagerError::new(Kind::Missing, "pop from an empty list")),
            },
            ListOp::PopAt(i) => {
                let i = index(i, v.len())?;
                encode(&v.remove(i))
            }
            ListOp::Get(i) => encode(&v[index(i, v.len())?]),
            ListOp::Set(i, x) => {
                let i = index(i, v.len())?;
                encode(&std::mem::replace(&mut v[i], x))
            }
            ListOp::Insert(i, x) => {
                let i = usize::try_from(i).unwrap_or(usize::MAX).min(v.len());
                v.insert(i, x);
                encode(&())
            }
            ListOp::Len => encode(&(v.len() as u64)),
            ListOp::Extend(xs) => {
                v.extend(xs);
                encode(&())
            }
            ListOp::Snapshot => encode(&*v),
            ListOp::Clear => {
                v.clear();
                encode(&())
            }
            ListOp::Index(x) => encode(&v.iter().position(|y| *y == x).map(|i| i as u64)),
            ListOp::Count(x) => encode(&(v.iter().filter(|y| **y == x).count() as u64)),
            ListOp::Reverse => {
                v.reverse();
                encode(&())
            }
        }
    }
}

/// A list held by a [`Manager`]'s server and shared by every process that holds a
/// proxy to it: Python's `Manager().list()`. Items are serde types, stored serialized.
///
/// Every call is one round trip to the server and sees the list as it is then:
/// [`snapshot`](Self::snapshot) is a copy. An index past the end is
/// [`is_missing`](ManagerError::is_missing) (Python's `IndexError`). Several calls in
/// a row are not atomic together: another client's call may run in between.
///
/// Cloning the proxy opens another connection on first use; a proxy passed to a
/// [`Process`](crate::Process) as an argument (or stored in another shared object)
/// connects from wherever it is used.
///
/// ```
/// use concur::process::Manager;
///
/// let m = Manager::start().unwrap();
/// let l = m.list::<String>().unwrap();
/// l.push("a".into()).unwrap();
/// l.extend(["b".to_string(), "c".to_string()]).unwrap();
/// assert_eq!(l.get(1).unwrap(), "b");
/// assert_eq!(l.pop().unwrap(), "c");
/// assert_eq!(l.snapshot().unwrap(), ["a", "b"]);
/// ```
pub struct List<T> {
    h: Handle,
    _t: PhantomData<fn(T) -> T>,
}

super::typed_proxy!(List);

impl<T> List<T>
where
    T: Serialize + DeserializeOwned,
{
    /// The type tag of a `List<T>`.
    pub(crate) fn tag() -> String {
        super::tag("list", &[std::any::type_name::<T>()])
    }

    pub(crate) fn from_handle(h: Handle) -> Self {
        List { h, _t: PhantomData }
    }

    /// The object's id on its manager (to attach to it with
    /// [`Manager::list_by_id`]).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let l = m.list::<u8>().unwrap();
    /// let again = m.list_by_id::<u8>(l.id()).unwrap();
    /// l.push(4).unwrap();
    /// assert_eq!(again.get(0).unwrap(), 4);
    /// ```
    pub fn id(&self) -> u64 {
        self.h.id
    }

    /// Appends `item` (Python's `l.append(x)`).
    ///
    /// # Errors
    /// [`is_shutdown`](ManagerError::is_shutdown) if the manager is gone;
    /// [`is_serialization`](ManagerError::is_serialization) if `item` does not
    /// serialize; an I/O error.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let l = m.list::<u8>().unwrap();
    /// l.push(1).unwrap();
    /// assert_eq!(l.len().unwrap(), 1);
    /// ```
    pub fn push(&self, item: T) -> Result<(), ManagerError> {
        self.h.call(&ListOp::Push(encode(&item)?))
    }

    /// Removes and returns the last item (Python's `l.pop()`).
    ///
    /// # Errors
    /// [`is_missing`](ManagerError::is_missing) if the list is empty;
    /// [`is_wrong_type`](ManagerError::is_wrong_type) if the item does not decode as a
    /// `T`; otherwise as [`push`](Self::push).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let l = m.list::<u8>().unwrap();
    /// l.push(1).unwrap();
    /// assert_eq!(l.pop().unwrap(), 1);
    /// assert!(l.pop().unwrap_err().is_missing());
    /// ```
    pub fn pop(&self) -> Result<T, ManagerError> {
        let b: Vec<u8> = self.h.call(&ListOp::Pop)?;
        decode(&b)
    }

    /// Removes and returns the item at `index`, shifting the later ones down (Python's
    /// `l.pop(i)`).
    ///
    /// # Errors
    /// [`is_missing`](ManagerError::is_missing) if `index` is out of range; otherwise
    /// as [`pop`](Self::pop).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let l = m.list::<char>().unwrap();
    /// l.extend(['a', 'b', 'c']).unwrap();
    /// assert_eq!(l.pop_at(0).unwrap(), 'a');
    /// assert_eq!(l.snapshot().unwrap(), ['b', 'c']);
    /// assert!(l.pop_at(2).unwrap_err().is_missing());
    /// ```
    pub fn pop_at(&self, index: usize) -> Result<T, ManagerError> {
        let b: Vec<u8> = self.h.call(&ListOp::PopAt(index as u64))?;
        decode(&b)
    }

    /// The item at `index` (Python's `l[i]`).
    ///
    /// # Errors
    /// [`is_missing`](ManagerError::is_missing) if `index` is out of range (Python's
    /// `IndexError`); otherwise as [`pop`](Self::pop).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let l = m.list::<u8>().unwrap();
    /// l.push(9).unwrap();
    /// assert_eq!(l.get(0).unwrap(), 9);
    /// assert!(l.get(1).unwrap_err().is_missing());
    /// ```
    pub fn get(&self, index: usize) -> Result<T, ManagerError> {
        let b: Vec<u8> = self.h.call(&ListOp::Get(index as u64))?;
        decode(&b)
    }

    /// Replaces the item at `index` with `item`; returns the old one (Python's
    /// `l[i] = x`).
    ///
    /// # Errors
    /// As [`get`](Self::get).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let l = m.list::<u8>().unwrap();
    /// l.push(1).unwrap();
    /// assert_eq!(l.set(0, 2).unwrap(), 1);
    /// assert_eq!(l.get(0).unwrap(), 2);
    /// assert!(l.set(5, 0).unwrap_err().is_missing());
    /// ```
    pub fn set(&self, index: usize, item: T) -> Result<T, ManagerError> {
        let b: Vec<u8> = self.h.call(&ListOp::Set(index as u64, encode(&item)?))?;
        decode(&b)
    }

    /// Inserts `item` before `index`; an index past the end appends (as Python's
    /// `l.insert(i, x)` does).
    ///
    /// # Errors
    /// As [`push`](Self::push).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let l = m.list::<u8>().unwrap();
    /// l.push(3).unwrap();
    /// l.insert(0, 1).unwrap();
    /// l.insert(100, 4).unwrap();
    /// assert_eq!(l.snapshot().unwrap(), [1, 3, 4]);
    /// ```
    pub fn insert(&self, index: usize, item: T) -> Result<(), ManagerError> {
        self.h.call(&ListOp::Insert(index as u64, encode(&item)?))
    }

    /// The number of items (Python's `len(l)`).
    ///
    /// # Errors
    /// As [`push`](Self::push).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// assert_eq!(m.list::<u8>().unwrap().len().unwrap(), 0);
    /// ```
    pub fn len(&self) -> Result<usize, ManagerError> {
        let n: u64 = self.h.call(&ListOp::Len)?;
        Ok(n as usize)
    }

    /// Whether the list is empty.
    ///
    /// # Errors
    /// As [`push`](Self::push).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// assert!(m.list::<u8>().unwrap().is_empty().unwrap());
    /// ```
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        Ok(self.len()? == 0)
    }

    /// Appends every item of `items`, in one round trip and atomically (Python's
    /// `l.extend(xs)`).
    ///
    /// # Errors
    /// As [`push`](Self::push).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let l = m.list::<u32>().unwrap();
    /// l.extend(0..5).unwrap();
    /// assert_eq!(l.snapshot().unwrap(), [0, 1, 2, 3, 4]);
    /// ```
    pub fn extend<I: IntoIterator<Item = T>>(&self, items: I) -> Result<(), ManagerError> {
        let xs = items
            .into_iter()
            .map(|x| encode(&x))
            .collect::<Result<Vec<_>, _>>()?;
        self.h.call(&ListOp::Extend(xs))
    }

    /// A copy of the whole list (Python's `l[:]`).
    ///
    /// # Errors
    /// As [`pop`](Self::pop).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let l = m.list::<u8>().unwrap();
    /// l.extend([1, 2]).unwrap();
    /// let copy = l.snapshot().unwrap();
    /// l.clear().unwrap();
    /// assert_eq!(copy, [1, 2]);
    /// ```
    pub fn snapshot(&self) -> Result<Vec<T>, ManagerError> {
        let xs: Vec<Vec<u8>> = self.h.call(&ListOp::Snapshot)?;
        xs.iter().map(|b| decode(b)).collect()
    }

    /// Removes every item (Python's `l.clear()`).
    ///
    /// # Errors
    /// As [`push`](Self::push).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let l = m.list::<u8>().unwrap();
    /// l.push(1).unwrap();
    /// l.clear().unwrap();
    /// assert!(l.is_empty().unwrap());
    /// ```
    pub fn clear(&self) -> Result<(), ManagerError> {
        self.h.call(&ListOp::Clear)
    }

    /// The index of the first item equal to `item`, if any (Python's `l.index(x)`,
    /// without its `ValueError`). Items are compared by their serialized bytes, which
    /// is equality for integers, strings, tuples and the like (see
    /// [`Dict`](crate::manager::Dict) for the fine print).
    ///
    /// # Errors
    /// As [`push`](Self::push).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let l = m.list::<u8>().unwrap();
    /// l.extend([5, 6, 5]).unwrap();
    /// assert_eq!(l.index_of(&5).unwrap(), Some(0));
    /// assert_eq!(l.index_of(&7).unwrap(), None);
    /// ```
    pub fn index_of(&self, item: &T) -> Result<Option<usize>, ManagerError> {
        let i: Option<u64> = self.h.call(&ListOp::Index(encode(item)?))?;
        Ok(i.map(|i| i as usize))
    }

    /// How many items equal `item` (Python's `l.count(x)`), compared as in
    /// [`index_of`](Self::index_of).
    ///
    /// # Errors
    /// As [`push`](Self::push).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let l = m.list::<u8>().unwrap();
    /// l.extend([5, 6, 5]).unwrap();
    /// assert_eq!(l.count(&5).unwrap(), 2);
    /// ```
    pub fn count(&self, item: &T) -> Result<usize, ManagerError> {
        let n: u64 = self.h.call(&ListOp::Count(encode(item)?))?;
        Ok(n as usize)
    }

    /// Reverses the list in place (Python's `l.reverse()`).
    ///
    /// # Errors
    /// As [`push`](Self::push).
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let l = m.list::<u8>().unwrap();
    /// l.extend([1, 2, 3]).unwrap();
    /// l.reverse().unwrap();
    /// assert_eq!(l.snapshot().unwrap(), [3, 2, 1]);
    /// ```
    pub fn reverse(&self) -> Result<(), ManagerError> {
        self.h.call(&ListOp::Reverse)
    }
}

impl Manager {
    /// A new, empty shared list (Python's `m.list()`).
    ///
    /// # Errors
    /// [`is_shutdown`](ManagerError::is_shutdown) if the manager is gone.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let l = m.list::<String>().unwrap();
    /// l.push("x".into()).unwrap();
    /// assert_eq!(l.snapshot().unwrap(), ["x"]);
    /// ```
    pub fn list<T>(&self) -> Result<List<T>, ManagerError>
    where
        T: Serialize + DeserializeOwned,
    {
        Ok(List::from_handle(self.create(
            ObjKind::List,
            List::<T>::tag(),
            Vec::new(),
        )?))
    }

    /// A proxy to the existing list `id` of this manager (made by any client).
    ///
    /// # Errors
    /// [`is_missing`](ManagerError::is_missing) if there is no such object;
    /// [`is_wrong_type`](ManagerError::is_wrong_type) if it is not a `List<T>`.
    ///
    /// ```
    /// let m = concur::process::Manager::start().unwrap();
    /// let l = m.list::<u8>().unwrap();
    /// assert!(m.list_by_id::<u8>(l.id()).is_ok());
    /// assert!(m.list_by_id::<u16>(l.id()).unwrap_err().is_wrong_type());
    /// ```
    pub fn list_by_id<T>(&self, id: u64) -> Result<List<T>, ManagerError>
    where
        T: Serialize + DeserializeOwned,
    {
        Ok(List::from_handle(self.attach(id, List::<T>::tag())?))
    }
}
