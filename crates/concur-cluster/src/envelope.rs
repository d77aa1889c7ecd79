//! What travels in the streams: a task entry's envelope and a result's fields, both as
//! plain stream fields (ASCII names, text or binary values), so a program in another
//! language could submit to concur workers or read their results.
//!
//! A task entry (`XADD concur:P:tasks * ...`):
//!
//! | field | value |
//! |---|---|
//! | `v` | protocol version, `1` |
//! | `id` | the task's id, unique per caller (`<caller>-<n>`) |
//! | `kind` | `call0` (a closure of no argument), `call` (`f(args)`), `map` (`f` on each item of a chunk) |
//! | `name` | the function's stable name (its path, e.g. `app::resize`; a closure's adds `@<offset>`) |
//! | `fp` | the build fingerprint of the submitting binary (hex) |
//! | `enc` | the encoding of `args` and of the result's `value`: `postcard` |
//! | `deadline` | Unix time in ms after which the task must not run, `0` for none |
//! | `attempt` | 1 for the first delivery, one more per retry |
//! | `nbf` | Unix time in ms before which it must not start (retry backoff), `0` for none |
//! | `tries` | the most attempts (deliveries to a worker) before it is dead-lettered |
//! | `backoff` | the pause in ms before the second attempt, doubled for each further one |
//! | `ttl` | how long in ms its result (and its `done` mark) is kept |
//! | `reply` | the caller's result stream |
//! | `args` | the encoded argument (for `map`, the chunk's items) |
//!
//! A result (`XADD <reply> * ...`): `id`, `status` (`ok`, `panic`, `cancelled`,
//! `deadline`, `died`, `lost`, `dead`, `mismatch`, `bad`, `broken`, `error`), `msg`, `loc`,
//! `sig`, `exit`, `oom`, `attempt`, `value` (for `ok`), and for `dead` the last
//! attempt's failure as `cause_status`, `cause_msg`, `cause_sig`, `cause_attempt`.

use std::collections::HashMap;

use concur_core::futures::{TaskError, exec};
use redis::Value;

/// The protocol version this build speaks.
pub(crate) const VERSION: &str = "1";

/// The only encoding so far.
pub(crate) const ENCODING: &str = "postcard";

/// Limits on a task entry's text fields.
const MAX_ID: usize = 160;
const MAX_NAME: usize = 2048;
const MAX_FINGERPRINT: usize = 128;
const MAX_TEXT: usize = 4096;

/// The form of a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TaskKind {
    /// `|| value`.
    Call0,
    /// `f(args)`.
    Call,
    /// `f` on each item of a chunk.
    Map,
}

impl TaskKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TaskKind::Call0 => "call0",
            TaskKind::Call => "call",
            TaskKind::Map => "map",
        }
    }

    fn parse(s: &str) -> Option<TaskKind> {
        match s {
            "call0" => Some(TaskKind::Call0),
            "call" => Some(TaskKind::Call),
            "map" => Some(TaskKind::Map),
            _ => None,
        }
    }
}

/// A task entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Envelope {
    pub(crate) id: String,
    pub(crate) kind: TaskKind,
    pub(crate) name: String,
    pub(crate) fingerprint: String,
    pub(crate) deadline_ms: u64,
    pub(crate) attempt: u32,
    pub(crate) not_before_ms: u64,
    pub(crate) max_attempts: u32,
    pub(crate) backoff_ms: u64,
    pub(crate) ttl_ms: u64,
    pub(crate) reply: String,
    pub(crate) args: Vec<u8>,
}

/// Why an entry could not be read, with what of it could be (to tell its caller).
#[derive(Debug)]
pub(crate) struct BadEntry {
    pub(crate) id: Option<String>,
    pub(crate) reply: Option<String>,
    pub(crate) reason: String,
}

/// The stream fields of an entry or a result, as the reply of XREADGROUP/XREAD gives
/// them.
pub(crate) type Fields = HashMap<String, Value>;

/// The bytes of a field (a bulk or simple string).
pub(crate) fn field<'a>(map: &'a Fields, name: &str) -> Option<&'a [u8]> {
    match map.get(name)? {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

/// A text field of at most `max` bytes.
fn text<'a>(map: &'a Fields, name: &str, max: usize) -> Result<&'a str, String> {
    let b = field(map, name).ok_or_else(|| format!("no `{name}` field"))?;
    if b.len() > max {
        return Err(format!(
            "the `{name}` field is over {max} bytes ({})",
            b.len()
        ));
    }
    std::str::from_utf8(b).map_err(|_| format!("the `{name}` field is not UTF-8"))
}

fn number<T: std::str::FromStr>(map: &Fields, name: &str) -> Result<T, String> {
    text(map, name, 32)?
        .parse()
        .map_err(|_| format!("the `{name}` field is not a number"))
}

impl Envelope {
    /// The key of its function in the function table.
    pub(crate) fn table_key(&self) -> String {
        table_key(self.kind, &self.name)
    }

    /// Appends its stream fields to the command being built (an XADD), without copying
    /// them: the caller's hot path.
    pub(crate) fn write_fields(&self, pipe: &mut redis::Pipeline) {
        pipe.arg("v")
            .arg(VERSION)
            .arg("id")
            .arg(&self.id)
            .arg("kind")
            .arg(self.kind.as_str())
            .arg("name")
            .arg(&self.name)
            .arg("fp")
            .arg(&self.fingerprint)
            .arg("enc")
            .arg(ENCODING)
            .arg("deadline")
            .arg(self.deadline_ms)
            .arg("attempt")
            .arg(self.attempt)
            .arg("nbf")
            .arg(self.not_before_ms)
            .arg("tries")
            .arg(self.max_attempts)
            .arg("backoff")
            .arg(self.backoff_ms)
            .arg("ttl")
            .arg(self.ttl_ms)
            .arg("reply")
            .arg(&self.reply)
            .arg("args")
            .arg(&self.args[..]);
    }

    /// Its stream fields, for XADD.
    pub(crate) fn fields(&self) -> Vec<(&'static str, Vec<u8>)> {
        vec![
            ("v", VERSION.into()),
            ("id", self.id.clone().into_bytes()),
            ("kind", self.kind.as_str().into()),
            ("name", self.name.clone().into_bytes()),
            ("fp", self.fingerprint.clone().into_bytes()),
            ("enc", ENCODING.into()),
            ("deadline", self.deadline_ms.to_string().into_bytes()),
            ("attempt", self.attempt.to_string().into_bytes()),
            ("nbf", self.not_before_ms.to_string().into_bytes()),
            ("tries", self.max_attempts.to_string().into_bytes()),
            ("backoff", self.backoff_ms.to_string().into_bytes()),
            ("ttl", self.ttl_ms.to_string().into_bytes()),
            ("reply", self.reply.clone().into_bytes()),
            ("args", self.args.clone()),
        ]
    }

    /// Reads an entry, checking every field and the payload's size (`max_args`). The
    /// argument is moved out of `map` when the entry is good.
    pub(crate) fn decode(map: &mut Fields, max_args: usize) -> Result<Envelope, BadEntry> {
        let id = text(map, "id", MAX_ID).ok().map(str::to_owned);
        let reply = text(map, "reply", MAX_TEXT).ok().map(str::to_owned);
        let bad = |reason: String| BadEntry {
            id: id.clone(),
            reply: reply.clone(),
            reason,
        };
        let v = text(map, "v", 8).map_err(bad)?;
        if v != VERSION {
            return Err(bad(format!(
                "protocol version {v:?}, this worker speaks {VERSION}"
            )));
        }
        let enc = text(map, "enc", 32).map_err(bad)?;
        if enc != ENCODING {
            return Err(bad(format!(
                "encoding {enc:?}, this worker reads {ENCODING}"
            )));
        }
        let kind = text(map, "kind", 8).map_err(bad)?;
        let kind = TaskKind::parse(kind).ok_or_else(|| bad(format!("unknown kind {kind:?}")))?;
        let args = field(map, "args").ok_or_else(|| bad("no `args` field".into()))?;
        if args.len() > max_args {
            return Err(bad(format!(
                "the argument is {} bytes, over the {max_args}-byte limit",
                args.len()
            )));
        }
        let id_ok = id
            .clone()
            .ok_or_else(|| bad("no readable `id` field".into()))?;
        if id_ok.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(bad("an `id` with spaces or control characters".into()));
        }
        if id_ok.is_empty() {
            return Err(bad("an empty `id`".into()));
        }
        let reply_ok = reply
            .clone()
            .ok_or_else(|| bad("no readable `reply` field".into()))?;
        let mut env = Envelope {
            id: id_ok,
            kind,
            name: text(map, "name", MAX_NAME).map_err(bad)?.to_owned(),
            fingerprint: text(map, "fp", MAX_FINGERPRINT).map_err(bad)?.to_owned(),
            deadline_ms: number(map, "deadline").map_err(bad)?,
            attempt: number(map, "attempt").map_err(bad)?,
            not_before_ms: number(map, "nbf").map_err(bad)?,
            max_attempts: number(map, "tries").map_err(bad)?,
            backoff_ms: number(map, "backoff").map_err(bad)?,
            ttl_ms: number::<u64>(map, "ttl").map_err(bad)?.max(1),
            reply: reply_ok,
            args: Vec::new(),
        };
        env.args = match map.remove("args") {
            Some(Value::BulkString(b)) => b,
            Some(Value::SimpleString(s)) => s.into_bytes(),
            _ => Vec::new(),
        };
        Ok(env)
    }
}

/// The function-table key of a task of `kind` on the function named `name`.
pub(crate) fn table_key(kind: TaskKind, name: &str) -> String {
    format!("{} {name}", kind.as_str())
}

// ---- results -------------------------------------------------------------------------------

/// How a task ended, as a result entry says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Ok,
    Panic,
    Cancelled,
    Deadline,
    /// The worker process running it died (segfault, abort, exit, OOM).
    Died,
    /// The worker holding it was lost (only as a dead letter's cause).
    Lost,
    Dead,
    Mismatch,
    Bad,
    /// The worker's local executor is broken (its initializer failed).
    Broken,
    /// Not an outcome: progress the running task reported (`done`, `total`).
    Progress,
    /// Anything else (an argument that did not decode, a result that did not encode).
    Error,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Panic => "panic",
            Status::Cancelled => "cancelled",
            Status::Deadline => "deadline",
            Status::Died => "died",
            Status::Lost => "lost",
            Status::Dead => "dead",
            Status::Mismatch => "mismatch",
            Status::Bad => "bad",
            Status::Broken => "broken",
            Status::Progress => "progress",
            Status::Error => "error",
        }
    }

    fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "ok" => Status::Ok,
            "panic" => Status::Panic,
            "cancelled" => Status::Cancelled,
            "deadline" => Status::Deadline,
            "died" => Status::Died,
            "lost" => Status::Lost,
            "dead" => Status::Dead,
            "mismatch" => Status::Mismatch,
            "bad" => Status::Bad,
            "broken" => Status::Broken,
            "progress" => Status::Progress,
            "error" => Status::Error,
            _ => return None,
        })
    }
}

/// A task's outcome as it travels back to its caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) status: Status,
    pub(crate) message: String,
    pub(crate) location: Option<String>,
    pub(crate) signal: Option<i32>,
    pub(crate) exit: Option<i32>,
    pub(crate) oom: bool,
    pub(crate) attempt: u32,
    /// The encoded value (for `Ok`).
    pub(crate) value: Vec<u8>,
    /// Units done and in all (for `Progress`).
    pub(crate) done: u64,
    pub(crate) total: Option<u64>,
    /// The last attempt's failure (for `Dead`).
    pub(crate) cause: Option<Box<Outcome>>,
}

impl Outcome {
    fn new(status: Status, message: impl Into<String>, attempt: u32) -> Outcome {
        Outcome {
            status,
            message: message.into(),
            location: None,
            signal: None,
            exit: None,
            oom: false,
            attempt,
            value: Vec::new(),
            done: 0,
            total: None,
            cause: None,
        }
    }

    pub(crate) fn progress(done: u64, total: Option<u64>, attempt: u32) -> Outcome {
        let mut o = Outcome::new(Status::Progress, "", attempt);
        o.done = done;
        o.total = total;
        o
    }

    pub(crate) fn ok(value: Vec<u8>, attempt: u32) -> Outcome {
        let mut o = Outcome::new(Status::Ok, "", attempt);
        o.value = value;
        o
    }

    pub(crate) fn panic(message: String, location: Option<String>, attempt: u32) -> Outcome {
        let mut o = Outcome::new(Status::Panic, message, attempt);
        o.location = location;
        o
    }

    pub(crate) fn cancelled(attempt: u32) -> Outcome {
        Outcome::new(Status::Cancelled, "the task was cancelled", attempt)
    }

    pub(crate) fn deadline(message: impl Into<String>, attempt: u32) -> Outcome {
        Outcome::new(Status::Deadline, message, attempt)
    }

    pub(crate) fn lost(attempt: u32) -> Outcome {
        Outcome::new(
            Status::Lost,
            "the worker holding the task was lost",
            attempt,
        )
    }

    pub(crate) fn dead(attempt: u32, cause: Outcome) -> Outcome {
        let mut o = Outcome::new(
            Status::Dead,
            format!("the task was dead-lettered after {attempt} attempt(s)"),
            attempt,
        );
        o.cause = Some(Box::new(cause));
        o
    }

    pub(crate) fn mismatch(message: impl Into<String>, attempt: u32) -> Outcome {
        Outcome::new(Status::Mismatch, message, attempt)
    }

    pub(crate) fn bad(message: impl Into<String>, attempt: u32) -> Outcome {
        Outcome::new(Status::Bad, message, attempt)
    }

    pub(crate) fn error(message: impl Into<String>, attempt: u32) -> Outcome {
        Outcome::new(Status::Error, message, attempt)
    }

    /// The outcome of a failure of the worker's local executor.
    pub(crate) fn from_local_error(e: &TaskError, attempt: u32) -> Outcome {
        if let Some(m) = e.panic_message() {
            return Outcome::panic(m.to_owned(), e.panic_location().map(str::to_owned), attempt);
        }
        if e.is_cancelled() {
            return Outcome::cancelled(attempt);
        }
        if e.is_timeout() {
            return Outcome::deadline(
                format!("the task's deadline passed while it ran, and it was stopped ({e})"),
                attempt,
            );
        }
        if e.is_broken_executor() {
            let m = e.to_string();
            let m = m.strip_prefix("broken executor: ").unwrap_or(&m);
            return Outcome::new(Status::Broken, m, attempt);
        }
        if e.is_worker_died() {
            let mut o = Outcome::new(Status::Died, e.to_string(), attempt);
            o.signal = e.signal();
            o.exit = e.exit_status();
            o.oom = e.is_out_of_memory();
            return o;
        }
        Outcome::error(e.to_string(), attempt)
    }

    /// Its stream fields, `id` first.
    pub(crate) fn fields(&self, id: &str) -> Vec<(&'static str, Vec<u8>)> {
        let mut f = vec![
            ("id", id.as_bytes().to_vec()),
            ("status", self.status.as_str().into()),
            ("attempt", self.attempt.to_string().into_bytes()),
        ];
        if self.status == Status::Ok {
            f.push(("value", self.value.clone()));
            return f;
        }
        if self.status == Status::Progress {
            f.push(("done", self.done.to_string().into_bytes()));
            if let Some(t) = self.total {
                f.push(("total", t.to_string().into_bytes()));
            }
            return f;
        }
        f.push(("msg", clip(&self.message).into_bytes()));
        if let Some(l) = &self.location {
            f.push(("loc", clip(l).into_bytes()));
        }
        if let Some(s) = self.signal {
            f.push(("sig", s.to_string().into_bytes()));
        }
        if let Some(x) = self.exit {
            f.push(("exit", x.to_string().into_bytes()));
        }
        if self.oom {
            f.push(("oom", b"1".to_vec()));
        }
        if let Some(c) = &self.cause {
            f.push(("cause_status", c.status.as_str().into()));
            f.push(("cause_msg", clip(&c.message).into_bytes()));
            if let Some(s) = c.signal {
                f.push(("cause_sig", s.to_string().into_bytes()));
            }
            f.push(("cause_attempt", c.attempt.to_string().into_bytes()));
        }
        f
    }

    /// Reads a result entry: its task id and outcome.
    pub(crate) fn decode(map: &Fields) -> Result<(String, Outcome), String> {
        let id = text(map, "id", MAX_ID)?.to_owned();
        let status = text(map, "status", 16)?;
        let status = Status::parse(status).ok_or_else(|| format!("unknown status {status:?}"))?;
        let attempt = number(map, "attempt")?;
        let mut o = Outcome::new(status, "", attempt);
        if status == Status::Ok {
            o.value = field(map, "value").ok_or("no `value` field")?.to_vec();
            return Ok((id, o));
        }
        if status == Status::Progress {
            o.done = number(map, "done")?;
            o.total = number(map, "total").ok();
            return Ok((id, o));
        }
        o.message = text(map, "msg", MAX_TEXT * 2)
            .unwrap_or_default()
            .to_owned();
        o.location = text(map, "loc", MAX_TEXT * 2).ok().map(str::to_owned);
        o.signal = number(map, "sig").ok();
        o.exit = number(map, "exit").ok();
        o.oom = field(map, "oom").is_some();
        if let Ok(cs) = text(map, "cause_status", 16) {
            let cs = Status::parse(cs).unwrap_or(Status::Error);
            let mut c = Outcome::new(
                cs,
                text(map, "cause_msg", MAX_TEXT * 2).unwrap_or_default(),
                number(map, "cause_attempt").unwrap_or(attempt),
            );
            c.signal = number(map, "cause_sig").ok();
            o.cause = Some(Box::new(c));
        }
        Ok((id, o))
    }

    /// The error a caller's future fails with (for any status but `Ok`).
    pub(crate) fn to_task_error(&self) -> TaskError {
        let a = self.attempt.max(1);
        match self.status {
            Status::Ok | Status::Progress => {
                exec::bad_entry("a successful result or progress read as a failure")
            }
            Status::Panic => TaskError::panic(self.message.clone(), self.location.clone()),
            Status::Cancelled => TaskError::cancelled(),
            Status::Deadline => exec::deadline_exceeded(self.message.clone()),
            Status::Died if self.oom => {
                exec::at_attempt(exec::out_of_memory(self.signal, self.message.clone()), a)
            }
            Status::Died => exec::at_attempt(exec::worker_died(self.exit, self.signal), a),
            Status::Lost => exec::worker_lost(a, self.signal),
            Status::Dead => {
                let cause = self
                    .cause
                    .as_ref()
                    .map(|c| c.to_task_error())
                    .unwrap_or_else(|| exec::worker_lost(a, None));
                exec::dead_lettered(a, cause)
            }
            Status::Mismatch => exec::build_mismatch(self.message.clone()),
            Status::Bad => exec::bad_entry(self.message.clone()),
            Status::Broken => TaskError::broken_executor(self.message.clone()),
            Status::Error => TaskError::user(self.message.clone()),
        }
    }
}

/// At most [`MAX_TEXT`] bytes of `s`, cut at a character boundary.
fn clip(s: &str) -> String {
    if s.len() <= MAX_TEXT {
        return s.to_owned();
    }
    let mut end = MAX_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn as_map(fields: Vec<(&'static str, Vec<u8>)>) -> Fields {
        fields
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::BulkString(v)))
            .collect()
    }

    fn sample() -> Envelope {
        Envelope {
            id: "c1-7".into(),
            kind: TaskKind::Call,
            name: "app::square".into(),
            fingerprint: "ab12".into(),
            deadline_ms: 0,
            attempt: 1,
            not_before_ms: 0,
            max_attempts: 3,
            backoff_ms: 1000,
            ttl_ms: 60_000,
            reply: "concur:p:r:c1".into(),
            args: vec![1, 2, 3],
        }
    }

    #[test]
    fn an_envelope_round_trips_through_its_fields() {
        let e = sample();
        assert_eq!(
            Envelope::decode(&mut as_map(e.fields()), 1 << 20).unwrap(),
            e
        );
        assert_eq!(e.table_key(), "call app::square");
    }

    #[test]
    fn a_bad_envelope_says_why_and_keeps_what_it_could_read() {
        let e = sample();
        let mut m = as_map(e.fields());
        m.insert("kind".into(), Value::BulkString(b"jump".to_vec()));
        let b = Envelope::decode(&mut m, 1 << 20).unwrap_err();
        assert!(b.reason.contains("unknown kind"), "{}", b.reason);
        assert_eq!(b.id.as_deref(), Some("c1-7"));
        assert_eq!(b.reply.as_deref(), Some("concur:p:r:c1"));

        let mut big = as_map(e.fields());
        let b = Envelope::decode(&mut big, 2).unwrap_err();
        assert!(b.reason.contains("limit"), "{}", b.reason);

        let mut m = as_map(e.fields());
        m.remove("attempt");
        assert!(Envelope::decode(&mut m, 1 << 20).is_err());
        m = as_map(e.fields());
        m.insert("v".into(), Value::BulkString(b"9".to_vec()));
        assert!(
            Envelope::decode(&mut m, 1 << 20)
                .unwrap_err()
                .reason
                .contains("version")
        );
        m = as_map(e.fields());
        m.insert("name".into(), Value::BulkString(vec![0xff, 0xfe]));
        assert!(
            Envelope::decode(&mut m, 1 << 20)
                .unwrap_err()
                .reason
                .contains("UTF-8")
        );
        assert!(
            Envelope::decode(&mut Fields::new(), 10)
                .unwrap_err()
                .id
                .is_none()
        );
    }

    #[test]
    fn outcomes_round_trip_and_become_typed_errors() {
        let cases = vec![
            Outcome::ok(vec![9, 9], 1),
            Outcome::panic("boom".into(), Some("src/a.rs:1:2".into()), 2),
            Outcome::cancelled(1),
            Outcome::deadline("late", 1),
            Outcome::dead(3, Outcome::lost(3)),
            Outcome::mismatch("other build", 1),
            Outcome::bad("no args", 1),
            Outcome::from_local_error(&TaskError::broken_executor("init"), 1),
            Outcome::error("decode", 1),
            Outcome::progress(3, Some(10), 1),
            Outcome::progress(3, None, 2),
        ];
        for o in cases {
            let (id, back) = Outcome::decode(&as_map(o.fields("t-1"))).unwrap();
            assert_eq!(id, "t-1");
            assert_eq!(back, o);
        }
        let e = Outcome::dead(3, Outcome::lost(3)).to_task_error();
        assert!(e.is_dead_lettered() && e.last_cause().unwrap().is_worker_died());
        assert_eq!(e.attempt(), Some(3));
        let died = Outcome::from_local_error(&exec::worker_died(None, Some(11)), 1);
        let e = died.to_task_error();
        assert!(e.is_worker_died() && e.signal() == Some(11));
        assert!(
            Outcome::panic("x".into(), None, 1)
                .to_task_error()
                .is_panic()
        );
        assert!(
            Outcome::deadline("x", 1)
                .to_task_error()
                .is_deadline_exceeded()
        );
        assert!(
            Outcome::mismatch("x", 1)
                .to_task_error()
                .is_build_mismatch()
        );
        assert!(Outcome::bad("x", 1).to_task_error().is_bad_entry());
        assert!(Outcome::cancelled(1).to_task_error().is_cancelled());
        let b = Outcome::from_local_error(&TaskError::broken_executor("init failed"), 1);
        assert!(b.to_task_error().is_broken_executor());
    }

    #[test]
    fn long_messages_are_clipped_at_a_char_boundary() {
        let s = "é".repeat(MAX_TEXT);
        let c = clip(&s);
        assert!(c.len() <= MAX_TEXT && s.starts_with(&c));
    }
}
