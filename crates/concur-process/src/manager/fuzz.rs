//! The manager's side of `crate::fuzzing::manager_requests` (it needs the protocol's
//! private types): a thin loop over the server's own request decoding and object ops.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::object::{Ctx, Object};
use super::objects::make;
use super::protocol::{ObjKind, RequestRef};

/// See `crate::fuzzing::manager_requests`.
pub(crate) fn requests(mut data: &[u8]) {
    let (conn, _peer) = crate::Pipe::duplex().expect("a socket pair");
    let stopping = AtomicBool::new(false);
    let ctx = Ctx {
        client: 1,
        same_binary: false,
        stopping: &stopping,
        conn: &conn,
    };
    let mut objects: Vec<(ObjKind, Arc<dyn Object>)> = Vec::new();
    while let Some((len, rest)) = data.split_first_chunk::<2>() {
        let len = usize::from(u16::from_le_bytes(*len)).min(rest.len());
        let (frame, rest) = rest.split_at(len);
        data = rest;
        let Ok(req) = postcard::from_bytes::<RequestRef<'_>>(frame) else {
            continue;
        };
        match req {
            RequestRef::Create { kind, tag, init } => {
                if let Ok(obj) = make(&kind, tag, init) {
                    objects.push((kind, obj));
                }
            }
            RequestRef::Attach { id, tag } => {
                if let Some((_, obj)) = usize::try_from(id).ok().and_then(|i| objects.get(i)) {
                    let _ = obj.tag() == tag;
                }
            }
            RequestRef::Call { id, op } => {
                let Some((kind, obj)) = usize::try_from(id).ok().and_then(|i| objects.get(i))
                else {
                    continue;
                };
                if matches!(
                    kind,
                    ObjKind::Dict | ObjKind::List | ObjKind::Namespace | ObjKind::Value
                ) {
                    let _ = obj.call(&ctx, op);
                }
            }
            RequestRef::Shutdown => {}
        }
    }
}
