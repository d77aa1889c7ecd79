//! The shared objects: each kind's server side (an [`Object`](super::server::Object))
//! and its typed proxy, one module per kind.

use std::sync::Arc;

use super::error::ManagerError;
use super::protocol::ObjKind;
use super::server::Object;

pub(crate) mod dict;
pub(crate) mod joinable_queue;
pub(crate) mod list;
pub(crate) mod namespace;
pub(crate) mod queue;
pub(crate) mod value;

/// Makes the server side of an object of `kind`.
pub(crate) fn make(
    kind: &ObjKind,
    tag: String,
    init: Vec<u8>,
) -> Result<Arc<dyn Object>, ManagerError> {
    match kind {
        ObjKind::Dict => Ok(Arc::new(dict::DictObject::new(tag))),
        ObjKind::List => Ok(Arc::new(list::ListObject::new(tag))),
        ObjKind::Namespace => Ok(Arc::new(namespace::NamespaceObject::new(tag))),
        ObjKind::Value => Ok(Arc::new(value::ValueObject::new(tag, init))),
        ObjKind::Queue { maxsize } => Ok(Arc::new(queue::QueueObject::new(tag, *maxsize, false))),
        ObjKind::JoinableQueue { maxsize } => {
            Ok(Arc::new(queue::QueueObject::new(tag, *maxsize, true)))
        }
        other => Err(ManagerError::bad_request(format!(
            "this manager cannot make a {other:?}"
        ))),
    }
}

/// The type tag of an object kind with its type parameters.
pub(crate) fn tag(kind: &str, types: &[&str]) -> String {
    format!("{kind}<{}>", types.join(", "))
}
