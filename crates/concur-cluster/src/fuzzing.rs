//! Entry points for the fuzz targets in the repository's `fuzz/` crate (not part of
//! the API: hidden from the docs, no stability promise).

use redis::Value;

use crate::envelope::{Envelope, Fields, Outcome};
use crate::executor::{DEFAULT_MAX_PAYLOAD, stream_entries};

/// A cursor over the fuzz input.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = usize::from(self.byte()?).min(self.0.len());
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(b.to_vec())
    }

    /// A reply value: a tag byte, then its contents (children for arrays and maps, at
    /// most `depth` levels deep).
    fn value(&mut self, depth: u32) -> Option<Value> {
        let tag = self.byte()?;
        Some(match tag % 6 {
            0 => Value::BulkString(self.bytes()?),
            1 => Value::SimpleString(String::from_utf8_lossy(&self.bytes()?).into_owned()),
            2 | 5 if depth > 0 => {
                let n = usize::from(self.byte()? % 16);
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(depth - 1)?);
                }
                if tag % 6 == 5 {
                    let mut pairs = Vec::new();
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((k, v));
                    }
                    Value::Map(pairs)
                } else {
                    Value::Array(items)
                }
            }
            3 => Value::Int(i64::from(self.byte()?) - 128),
            _ => Value::Nil,
        })
    }
}

/// Decodes what a worker and an executor read from Redis: task entries of the pool's
/// stream (`Envelope::decode`) and result entries (`Outcome::decode`). With an odd
/// first byte, the rest of `data` is one entry's fields (name, value pairs); with an
/// even one, a whole `XREADGROUP`-style reply taken apart by the same code the worker
/// uses. Every bad entry must be a typed refusal, never a panic.
pub fn entries(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut input = Input(rest);
    let entries: Vec<(String, Fields)> = if mode & 1 == 1 {
        let mut fields = Fields::new();
        while let (Some(k), Some(v)) = (input.bytes(), input.value(1)) {
            fields.insert(String::from_utf8_lossy(&k).into_owned(), v);
        }
        vec![(String::new(), fields)]
    } else {
        match input.value(4) {
            Some(v) => stream_entries(v),
            None => return,
        }
    };
    let max = if mode & 2 == 2 {
        16
    } else {
        DEFAULT_MAX_PAYLOAD
    };
    for (_id, mut fields) in entries {
        let _ = Outcome::decode(&fields);
        if let Ok(env) = Envelope::decode(&mut fields, max) {
            assert!(
                env.args.len() <= max,
                "an argument over the limit was accepted"
            );
            assert!(!env.id.is_empty());
        }
    }
}
