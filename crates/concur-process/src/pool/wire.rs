//! What a pool's dispatcher and its worker processes say to each other, and the worker's
//! loop.
//!
//! A worker is a [`Process`](crate::Process) running [`worker_main`] with one end of a
//! socket pair (a [`Connection`]) as its argument. On that connection:
//!
//! - dispatcher → worker, once: the worker's argument ([`WorkerArgs`], as any process
//!   argument, with its descriptors): the connection, the task page, and the pool's
//!   initializer ([`Init`]) with its serialized argument *and that argument's
//!   descriptors* (a shared `Value`, a lock, a queue given as Python's `initargs`);
//! - worker → dispatcher, once: a [`Hello`] after the pool's initializer ran (or failed);
//! - dispatcher → worker, per task: one frame whose body is the task's trampoline offset
//!   (8 bytes, little-endian, from `protocol::anchor`, as `Process` finds its
//!   function), its sequence number (8 bytes, see `slots`), then the serialized
//!   argument; its descriptors are the argument's;
//! - worker → dispatcher, per task and in task order: one frame with the task's
//!   `Report<R>` (value, panic, or why it could not run), sent as soon as the task ends
//!   so that a worker dying later loses nothing it finished; or an empty frame if the
//!   task was taken back before it started (its word in `slots` says so);
//! - an empty frame from the dispatcher retires the worker: it exits with status 0.
//!
//! Because reports come back in task order, the dispatcher knows at every moment which
//! task a worker is running (the oldest one without a report) and which it has not
//! started (the rest): when the worker dies, only the running task fails, and the
//! others go back to the queue.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use serde::de::{self, DeserializeOwned};
use serde::{Deserialize, Deserializer, Serialize, Serializer, ser};

use super::slots::Slots;
use crate::code::FnOffset;
use crate::connection::Connection;
use crate::fds;
use crate::process::child;
use crate::process::protocol::{Failure, Report};

/// Runs one task: decodes the argument, runs, sends the report.
pub(crate) type TaskTrampoline = fn(&[u8], Vec<OwnedFd>, &Connection);

/// Runs the pool's initializer from its serialized argument and that argument's
/// descriptors; `Err` is its panic.
pub(crate) type InitTrampoline = fn(&[u8], Vec<OwnedFd>) -> Result<(), (String, Option<String>)>;

/// The pool's initializer as sent to a worker: the trampoline, the serialized argument,
/// and the descriptors the argument's indices refer to (shared by every worker start;
/// each start sends duplicates).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct Init {
    pub(crate) offset: i64,
    pub(crate) args: Vec<u8>,
    pub(crate) fds: InitFds,
}

/// The descriptors of an initializer's argument: serialized through the `fds` side
/// table of the message that carries them (the worker's start), so they arrive as
/// descriptors, not numbers.
#[derive(Clone, Debug, Default)]
pub(crate) struct InitFds(pub(crate) Arc<Vec<OwnedFd>>);

impl Serialize for InitFds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let indices = self
            .0
            .iter()
            .map(|fd| fds::register(fd.as_fd()))
            .collect::<Result<Vec<u32>, _>>()
            .map_err(ser::Error::custom)?;
        indices.serialize(s)
    }
}

impl<'de> Deserialize<'de> for InitFds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let indices = Vec::<u32>::deserialize(d)?;
        let fds = indices
            .into_iter()
            .map(fds::take)
            .collect::<Result<Vec<OwnedFd>, _>>()
            .map_err(de::Error::custom)?;
        Ok(InitFds(Arc::new(fds)))
    }
}

impl InitFds {
    /// The descriptors themselves (the worker's only copy).
    fn into_vec(self) -> Vec<OwnedFd> {
        Arc::try_unwrap(self.0)
            .unwrap_or_else(|shared| shared.iter().filter_map(|fd| fd.try_clone().ok()).collect())
    }
}

/// A worker's argument.
#[derive(Serialize, Deserialize)]
pub(crate) struct WorkerArgs {
    pub(crate) conn: Connection,
    pub(crate) slots: Slots,
    pub(crate) init: Option<Init>,
}

/// A worker's first message.
#[derive(Serialize, Deserialize)]
pub(crate) struct Hello {
    /// The initializer's panic (message, location), if it failed.
    pub(crate) init_failed: Option<(String, Option<String>)>,
}

/// Sends `report`; a result that cannot be encoded is reported as such.
fn send_report<R: Serialize>(conn: &Connection, report: &Report<R>) {
    if let Err(e) = conn.send(report)
        && !e.is_eof()
    {
        let msg = format!("the result could not be sent: {e}");
        let _ = conn.send(&Report::<()>::Failed {
            failure: Failure::EncodeResult,
            message: msg,
        });
    }
}

fn decode<A: DeserializeOwned>(bytes: &[u8], fds: Vec<OwnedFd>) -> Result<A, Report<()>> {
    fds::provide_fds(fds, || postcard::from_bytes(bytes)).map_err(|e| Report::Failed {
        failure: Failure::DecodeArgs,
        message: format!("the worker could not decode the task's argument: {e}"),
    })
}

/// The trampoline of `f(args)` for the function type `F`.
pub(crate) fn call_trampoline<F, A, R>(args: &[u8], fds: Vec<OwnedFd>, conn: &Connection)
where
    F: Fn(A) -> R + Copy + 'static,
    A: DeserializeOwned,
    R: Serialize,
{
    let a: A = match decode(args, fds) {
        Ok(a) => a,
        Err(r) => return send_report(conn, &r),
    };
    let f: F = child::conjure();
    match child::catch(move || f(a)) {
        Ok(v) => send_report(conn, &Report::Ok(v)),
        Err((message, location)) => send_report(conn, &Report::<()>::Panic { message, location }),
    }
}

/// The trampoline of a map chunk: `f` on each item, each panic caught at its item.
///
/// The per-item reports are not gathered into a `Vec` first: [`EachReport`] runs `f`
/// item by item while the report is being encoded, straight into the connection's
/// reused send buffer (the same bytes as a `Report::Ok(Vec<Report<R>>)`), so a chunk
/// costs no allocation per item and none of the size of its results.
pub(crate) fn chunk_trampoline<F, A, R>(args: &[u8], fds: Vec<OwnedFd>, conn: &Connection)
where
    F: Fn(A) -> R + Copy + 'static,
    A: DeserializeOwned,
    R: Serialize,
{
    let items: Vec<A> = match decode(args, fds) {
        Ok(a) => a,
        Err(r) => return send_report(conn, &r),
    };
    let each = EachReport::<F, A> {
        items: std::cell::RefCell::new(Some(items)),
        f: child::conjure(),
    };
    // Encoded outside the connection's send lock: `f` runs during the encoding and may
    // itself send (progress frames).
    let mut buf = CHUNK_BUFFER.with(std::cell::Cell::take);
    buf.clear();
    let (encoded, fds) = fds::collect_fds(|| postcard::to_extend(&Report::Ok(each), buf));
    match encoded {
        Ok(buf) => {
            let borrowed: Vec<_> = fds.iter().map(AsFd::as_fd).collect();
            if let Err(e) = conn.send_frame(&buf, &borrowed)
                && !e.is_eof()
            {
                let msg = format!("the result could not be sent: {e}");
                send_report(
                    conn,
                    &Report::<()>::Failed {
                        failure: Failure::EncodeResult,
                        message: msg,
                    },
                );
            }
            if buf.capacity() <= KEEP_CHUNK_BUFFER {
                CHUNK_BUFFER.with(|b| b.set(buf));
            }
        }
        Err(e) => send_report(
            conn,
            &Report::<()>::Failed {
                failure: Failure::EncodeResult,
                message: format!("the result could not be sent: {e}"),
            },
        ),
    }
}

/// The largest encoding buffer a worker keeps for its next chunk.
const KEEP_CHUNK_BUFFER: usize = 4 << 20;

std::thread_local! {
    /// A worker's buffer for encoding a chunk's results, reused from chunk to chunk.
    static CHUNK_BUFFER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// A chunk's items, encoded as the sequence of `Report<R>` of `f` on each (run as each
/// is encoded, once: a second encoding finds no items and fails).
struct EachReport<F, A> {
    items: std::cell::RefCell<Option<Vec<A>>>,
    f: F,
}

impl<F, A, R> Serialize for EachReport<F, A>
where
    F: Fn(A) -> R + Copy + 'static,
    R: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Some(items) = self.items.borrow_mut().take() else {
            return Err(ser::Error::custom("a chunk's results are encoded once"));
        };
        let f = self.f;
        // `vec::IntoIter` is exact-size, so the length prefix is known up front.
        s.collect_seq(items.into_iter().map(|x| match child::catch(move || f(x)) {
            Ok(v) => Report::Ok(v),
            Err((message, location)) => Report::Panic { message, location },
        }))
    }
}

/// The trampoline of an initializer `f(args)`.
pub(crate) fn init_trampoline<F, A>(
    args: &[u8],
    fds: Vec<OwnedFd>,
) -> Result<(), (String, Option<String>)>
where
    F: Fn(A) + Copy + 'static,
    A: DeserializeOwned,
{
    let a: A = fds::provide_fds(fds, || postcard::from_bytes(args)).map_err(|e| {
        (
            format!("the worker could not decode the initializer's argument: {e}"),
            None,
        )
    })?;
    let f: F = child::conjure();
    child::catch(move || f(a))
}

/// The offset of a trampoline, as a task frame carries it.
pub(crate) fn offset_of_task(t: TaskTrampoline) -> i64 {
    FnOffset::of(t).raw()
}

/// The offset of an initializer trampoline.
pub(crate) fn offset_of_init(t: InitTrampoline) -> i64 {
    FnOffset::of(t).raw()
}

/// A task frame's body as the worker reads it: trampoline offset, sequence number,
/// serialized argument; `None` if it is too short to hold the first two.
pub(crate) fn split_task(body: &[u8]) -> Option<(i64, u64, &[u8])> {
    let (head, rest) = body.split_first_chunk::<16>()?;
    let (offset, seq) = head.split_at(8);
    Some((
        i64::from_le_bytes(offset.try_into().ok()?),
        u64::from_le_bytes(seq.try_into().ok()?),
        rest,
    ))
}

/// The least time between two progress frames of one task.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

/// A worker process's function: runs the initializer, says hello, then runs tasks
/// until the dispatcher closes the connection.
pub(crate) fn worker_main(args: WorkerArgs) {
    let WorkerArgs { conn, slots, init } = args;
    let init_failed = init.and_then(|i| {
        // SAFETY: the offset was made by `offset_of_init` from an `InitTrampoline` in
        // the same binary (the pool's workers are processes of this binary, checked by
        // the identity test of `Process`), so the address is that function's.
        let t: InitTrampoline = unsafe { FnOffset::from_raw(i.offset).resolve() };
        t(&i.args, i.fds.into_vec()).err()
    });
    let failed = init_failed.is_some();
    if conn.send(&Hello { init_failed }).is_err() || failed {
        return;
    }
    loop {
        let r = conn.recv_frame_with(None, |body, fds| {
            let Some((offset, seq, rest)) = split_task(body) else {
                return Err(());
            };
            if !slots.try_start(seq) {
                // Taken back (cancelled, or moved to another worker): say so.
                let _ = conn.send_bytes(&[]);
                return Ok(());
            }
            // SAFETY: as for the initializer above: the dispatcher made the offset with
            // `offset_of_task` from a `TaskTrampoline` of this same binary.
            let t: TaskTrampoline = unsafe { FnOffset::from_raw(offset).resolve() };
            // What the task reports with `futures::progress` goes to the dispatcher as
            // progress frames before its report (at most one per 10 ms).
            let last = std::cell::Cell::new(None::<std::time::Instant>);
            let send = |p: concur_core::futures::Progress| {
                let now = std::time::Instant::now();
                if last
                    .get()
                    .is_some_and(|t| now.duration_since(t) < PROGRESS_EVERY)
                {
                    return;
                }
                last.set(Some(now));
                let _ = conn.send(&Report::<()>::Progress {
                    done: p.done as u64,
                    total: p.total.map(|t| t as u64),
                });
            };
            concur_core::futures::exec::with_progress(&send, || t(rest, fds, &conn));
            Ok(())
        });
        match r {
            Ok(Ok(())) => {}
            // A malformed task frame or the end of the stream: nothing more to do.
            Ok(Err(())) | Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn odd_panics(x: u32) -> u32 {
        assert!(x.is_multiple_of(2), "odd: {x}");
        x * 10
    }

    #[test]
    fn a_streamed_chunk_encodes_as_a_vec_of_reports() {
        let each = EachReport::<fn(u32) -> u32, u32> {
            items: std::cell::RefCell::new(Some(vec![2, 3, 4])),
            f: odd_panics,
        };
        let streamed = postcard::to_stdvec(&Report::Ok(each)).unwrap();
        let decoded: Report<Vec<Report<u32>>> = postcard::from_bytes(&streamed).unwrap();
        let Report::Ok(items) = decoded else {
            panic!("not an Ok report")
        };
        assert_eq!(items.len(), 3);
        assert!(matches!(items[0], Report::Ok(20)));
        match &items[1] {
            Report::Panic { message, .. } => assert_eq!(message, "odd: 3"),
            _ => panic!("item 1 should be its panic"),
        }
        assert!(matches!(items[2], Report::Ok(40)));
        // The same bytes as the report built whole.
        let whole: Report<Vec<Report<u32>>> = Report::Ok(vec![
            Report::Ok(20),
            Report::Panic {
                message: "odd: 3".to_owned(),
                location: match &items[1] {
                    Report::Panic { location, .. } => location.clone(),
                    _ => None,
                },
            },
            Report::Ok(40),
        ]);
        assert_eq!(postcard::to_stdvec(&whole).unwrap(), streamed);
    }

    #[test]
    fn a_chunk_is_encoded_once() {
        let each = EachReport::<fn(u32) -> u32, u32> {
            items: std::cell::RefCell::new(Some(vec![2])),
            f: odd_panics,
        };
        assert!(postcard::to_stdvec(&each).is_ok());
        assert!(postcard::to_stdvec(&each).is_err());
    }
}
