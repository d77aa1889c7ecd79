//! The shared objects: each kind's server side (an [`Object`](super::server::Object))
//! and its typed proxy, one module per kind.

use std::sync::Arc;

use super::error::ManagerError;
use super::protocol::ObjKind;
use super::server::Object;

pub(crate) mod dict;

/// Makes the server side of an object of `kind`.
pub(crate) fn make(
    kind: &ObjKind,
    tag: String,
    init: Vec<u8>,
) -> Result<Arc<dyn Object>, ManagerError> {
    let _ = &init;
    match kind {
        ObjKind::Dict => Ok(Arc::new(dict::DictObject::new(tag))),
        other => Err(ManagerError::bad_request(format!(
            "this manager cannot make a {other:?}"
        ))),
    }
}

/// The type tag of an object kind with its type parameters.
pub(crate) fn tag(kind: &str, types: &[&str]) -> String {
    format!("{kind}<{}>", types.join(", "))
}
