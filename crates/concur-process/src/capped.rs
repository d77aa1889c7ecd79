//! postcard encodings with a size limit checked as the bytes are produced, not after:
//! a value larger than the limit stops being serialized (and stops allocating) the
//! moment its output passes the limit, however large the whole encoding would be.
//! The process queue, the pool's task frames and anything else that refuses oversize
//! values uses these instead of encoding first and measuring after.
//!
//! Two outputs (postcard "flavors"): [`size`] counts bytes and stores none (for a
//! caller that wants to know the size before it allocates), [`extend`] appends to a
//! `Vec` that never grows past the limit. The one capped encoder of the
//! workspace: `Connection::send` and the manager use it through the public
//! `exec::encode_capped`, and so does concur-cluster's executor; postcard's own
//! `ser_flavors` (its `Size` counter, its `StdVec`) showed the trait's shape.

use postcard::ser_flavors::Flavor;
use serde::Serialize;

/// Why a capped encoding did not produce its bytes.
#[derive(Debug)]
pub(crate) enum CapError {
    /// The encoding passed the limit; `at_least` bytes had been produced (or counted)
    /// when it stopped, more than the limit.
    Over { at_least: usize },
    /// The value's `Serialize` failed for another reason.
    Encode(postcard::Error),
}

/// Counts the encoding's bytes, failing once the count passes `max`.
struct Count {
    n: usize,
    max: usize,
    over: bool,
}

impl Flavor for Count {
    type Output = usize;

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.add(data.len())
    }

    fn try_push(&mut self, _: u8) -> postcard::Result<()> {
        self.add(1)
    }

    fn finalize(self) -> postcard::Result<usize> {
        Ok(self.n)
    }
}

impl Count {
    fn add(&mut self, k: usize) -> postcard::Result<()> {
        self.n = self.n.saturating_add(k);
        if self.n > self.max {
            self.over = true;
            return Err(postcard::Error::SerializeBufferFull);
        }
        Ok(())
    }
}

/// Appends to a `Vec`, failing before it would hold more than `max` bytes.
struct Capped<'a> {
    buf: &'a mut Vec<u8>,
    max: usize,
    over: Option<usize>,
}

impl Flavor for Capped<'_> {
    type Output = ();

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        let after = self.buf.len().saturating_add(data.len());
        if after > self.max {
            self.over = Some(after);
            return Err(postcard::Error::SerializeBufferFull);
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        if self.buf.len() >= self.max {
            self.over = Some(self.buf.len() + 1);
            return Err(postcard::Error::SerializeBufferFull);
        }
        self.buf.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// The size of `value`'s postcard encoding if it is at most `max` bytes; nothing is
/// stored, and the serialization stops as soon as the count passes `max`.
pub(crate) fn size<T: Serialize + ?Sized>(value: &T, max: usize) -> Result<usize, CapError> {
    let mut ser = postcard::Serializer {
        output: Count {
            n: 0,
            max,
            over: false,
        },
    };
    let r = value.serialize(&mut ser);
    let count = ser.output;
    match r {
        Ok(()) => Ok(count.n),
        Err(_) if count.over => Err(CapError::Over { at_least: count.n }),
        Err(e) => Err(CapError::Encode(e)),
    }
}

/// Appends `value`'s postcard encoding to `buf`, refusing to let `buf` grow past
/// `max` bytes in all (what `buf` held before counts). On an error `buf` holds a
/// partial encoding; the caller drops or truncates it.
pub(crate) fn extend<T: Serialize + ?Sized>(
    value: &T,
    buf: &mut Vec<u8>,
    max: usize,
) -> Result<(), CapError> {
    let mut ser = postcard::Serializer {
        output: Capped {
            buf,
            max,
            over: None,
        },
    };
    let r = value.serialize(&mut ser);
    match (r, ser.output.over) {
        (Ok(()), _) => Ok(()),
        (Err(_), Some(at_least)) => Err(CapError::Over { at_least }),
        (Err(e), None) => Err(CapError::Encode(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_is_the_encoded_length_up_to_the_limit() {
        let v = vec![7u8; 300];
        let exact = postcard::to_stdvec(&v).unwrap().len();
        assert_eq!(size(&v, exact).unwrap(), exact);
        match size(&v, exact - 1) {
            Err(CapError::Over { at_least }) => assert!(at_least > exact - 1),
            other => panic!("expected Over, got {other:?}"),
        }
    }

    #[test]
    fn extend_stops_at_the_limit_and_keeps_the_prefix() {
        let v = vec![1u32, 2, 300, 70_000];
        let mut buf = vec![9, 9];
        extend(&v, &mut buf, 64).unwrap();
        assert_eq!(&buf[..2], &[9, 9]);
        assert_eq!(postcard::from_bytes::<Vec<u32>>(&buf[2..]).unwrap(), v);

        let mut buf = vec![9, 9];
        match extend(&vec![0u8; 100], &mut buf, 50) {
            Err(CapError::Over { at_least }) => assert!(at_least > 50),
            other => panic!("expected Over, got {other:?}"),
        }
        assert!(buf.len() <= 50);
    }

    #[test]
    fn other_errors_are_not_reported_as_over() {
        struct Fails;
        impl Serialize for Fails {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no"))
            }
        }
        assert!(matches!(size(&Fails, 10), Err(CapError::Encode(_))));
        assert!(matches!(
            extend(&Fails, &mut Vec::new(), 10),
            Err(CapError::Encode(_))
        ));
    }
}
