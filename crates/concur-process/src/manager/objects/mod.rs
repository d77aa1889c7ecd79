//! The shared objects: each kind's server side (an [`Object`](super::object::Object))
//! and its typed proxy, one module per kind.

use std::sync::Arc;

use super::error::ManagerError;
use super::object::Object;
use super::protocol::ObjKind;

pub(crate) mod dict;
pub(crate) mod joinable_queue;
pub(crate) mod list;
pub(crate) mod namespace;
pub(crate) mod queue;
pub(crate) mod sync_lock;
pub(crate) mod sync_misc;
pub(crate) mod sync_sem;
pub(crate) mod value;

/// Makes the server side of an object of `kind`.
pub(crate) fn make(
    kind: &ObjKind,
    tag: String,
    init: Vec<u8>,
) -> Result<Arc<dyn Object>, ManagerError> {
    match kind {
        ObjKind::Dict => Ok(Arc::new(dict::DictObject::new(tag))),
        ObjKind::Lock => Ok(Arc::new(sync_lock::LockObject::new(tag))),
        ObjKind::RLock => Ok(Arc::new(sync_lock::RLockObject::new(tag))),
        ObjKind::Semaphore { value, bounded } => Ok(Arc::new(sync_sem::SemaphoreObject::new(
            tag, *value, *bounded,
        ))),
        ObjKind::Event => Ok(Arc::new(sync_misc::EventObject::new(tag))),
        ObjKind::Condition => Ok(Arc::new(sync_misc::ConditionObject::new(tag))),
        ObjKind::Barrier { parties } => Ok(Arc::new(sync_misc::BarrierObject::new(tag, *parties)?)),
        ObjKind::List => Ok(Arc::new(list::ListObject::new(tag))),
        ObjKind::Namespace => Ok(Arc::new(namespace::NamespaceObject::new(tag))),
        ObjKind::Value => Ok(Arc::new(value::ValueObject::new(tag, init))),
        ObjKind::Queue { maxsize } => Ok(Arc::new(queue::QueueObject::new(tag, *maxsize, false))),
        ObjKind::JoinableQueue { maxsize } => {
            Ok(Arc::new(queue::QueueObject::new(tag, *maxsize, true)))
        }
    }
}

/// The impls a proxy of one type parameter over a [`Handle`](super::client::Handle)
/// shares with the others (`h: Handle, _t: PhantomData<fn(T) -> T>`): `Clone` (the same
/// object), `Debug` (the handle's), `Serialize`/`Deserialize` (it reconnects in the
/// receiving process). (The synchronization proxies have theirs in `sync_proxy!`.)
macro_rules! typed_proxy {
    ($name:ident) => {
        impl<T> Clone for $name<T> {
            fn clone(&self) -> Self {
                $name {
                    h: self.h.clone(),
                    _t: std::marker::PhantomData,
                }
            }
        }

        impl<T> std::fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.h.fmt(f)
            }
        }

        impl<T> serde::Serialize for $name<T> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.h.serialize(s)
            }
        }

        impl<'de, T> serde::Deserialize<'de> for $name<T> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok($name {
                    h: $crate::manager::client::Handle::deserialize(d)?,
                    _t: std::marker::PhantomData,
                })
            }
        }
    };
}
pub(crate) use typed_proxy;

/// The type tag of an object kind with its type parameters.
pub(crate) fn tag(kind: &str, types: &[&str]) -> String {
    format!("{kind}<{}>", types.join(", "))
}
