//! The shared objects: each kind's server side (an [`Object`](super::server::Object))
//! and its typed proxy, one module per kind.

use std::sync::Arc;

use super::error::ManagerError;
use super::protocol::ObjKind;
use super::server::Object;

pub(crate) mod dict;
pub(crate) mod sync_lock;
pub(crate) mod sync_misc;
pub(crate) mod sync_sem;

/// Makes the server side of an object of `kind`.
pub(crate) fn make(
    kind: &ObjKind,
    tag: String,
    init: Vec<u8>,
) -> Result<Arc<dyn Object>, ManagerError> {
    let _ = &init;
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
        other => Err(ManagerError::bad_request(format!(
            "this manager cannot make a {other:?}"
        ))),
    }
}

/// The type tag of an object kind with its type parameters.
pub(crate) fn tag(kind: &str, types: &[&str]) -> String {
    format!("{kind}<{}>", types.join(", "))
}
