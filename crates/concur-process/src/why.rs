//! Why a value did not serialize. postcard keeps no message from a `Serialize` impl's
//! own error (every `ser::Error::custom(msg)` becomes "Serde Serialization Error"), so
//! when an encoding fails, [`cause`] walks the value once more through a serializer
//! that writes nothing and keeps the first message it is given: the cause a person can
//! act on ("this value holds a file descriptor and can only be sent ...", or the
//! user's own message).
//!
//! The walk must run where the failed encoding ran (inside the same `fds::collect_fds`,
//! or outside any, as it did), so that values holding descriptors behave the same;
//! what they register goes into the same table as the failed encoding's, and is
//! dropped with it.

use serde::ser::{self, Serialize};
use std::fmt;

/// The message of the first error `value`'s serialization produces, if it gives one
/// (`None`: it serializes, or its error has no message).
pub(crate) fn cause<T: Serialize + ?Sized>(value: &T) -> Option<String> {
    value.serialize(Walk).err().map(|Found(m)| m)
}

/// `postcard_error`, with the cause [`cause`] finds in `value` when there is one.
pub(crate) fn explain<T: Serialize + ?Sized>(
    postcard_error: &postcard::Error,
    value: &T,
) -> String {
    match postcard_error {
        postcard::Error::SerdeSerCustom => {
            cause(value).unwrap_or_else(|| postcard_error.to_string())
        }
        other => other.to_string(),
    }
}

/// The first message found.
#[derive(Debug)]
struct Found(String);

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Found {}

impl ser::Error for Found {
    fn custom<M: fmt::Display>(msg: M) -> Self {
        Found(msg.to_string())
    }
}

/// A serializer that writes nothing: every value is accepted, compound values are
/// walked into, and the first error a `Serialize` impl raises comes back.
struct Walk;

type R = Result<(), Found>;

impl ser::Serializer for Walk {
    type Ok = ();
    type Error = Found;
    type SerializeSeq = Walk;
    type SerializeTuple = Walk;
    type SerializeTupleStruct = Walk;
    type SerializeTupleVariant = Walk;
    type SerializeMap = Walk;
    type SerializeStruct = Walk;
    type SerializeStructVariant = Walk;

    fn serialize_bool(self, _: bool) -> R {
        Ok(())
    }
    fn serialize_i8(self, _: i8) -> R {
        Ok(())
    }
    fn serialize_i16(self, _: i16) -> R {
        Ok(())
    }
    fn serialize_i32(self, _: i32) -> R {
        Ok(())
    }
    fn serialize_i64(self, _: i64) -> R {
        Ok(())
    }
    fn serialize_i128(self, _: i128) -> R {
        Ok(())
    }
    fn serialize_u8(self, _: u8) -> R {
        Ok(())
    }
    fn serialize_u16(self, _: u16) -> R {
        Ok(())
    }
    fn serialize_u32(self, _: u32) -> R {
        Ok(())
    }
    fn serialize_u64(self, _: u64) -> R {
        Ok(())
    }
    fn serialize_u128(self, _: u128) -> R {
        Ok(())
    }
    fn serialize_f32(self, _: f32) -> R {
        Ok(())
    }
    fn serialize_f64(self, _: f64) -> R {
        Ok(())
    }
    fn serialize_char(self, _: char) -> R {
        Ok(())
    }
    fn serialize_str(self, _: &str) -> R {
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> R {
        Ok(())
    }
    fn serialize_none(self) -> R {
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> R {
        v.serialize(Walk)
    }
    fn serialize_unit(self) -> R {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> R {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> R {
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> R {
        v.serialize(Walk)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        v: &T,
    ) -> R {
        v.serialize(Walk)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Walk, Found> {
        Ok(Walk)
    }
    fn serialize_tuple(self, _: usize) -> Result<Walk, Found> {
        Ok(Walk)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Walk, Found> {
        Ok(Walk)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Walk, Found> {
        Ok(Walk)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Walk, Found> {
        Ok(Walk)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Walk, Found> {
        Ok(Walk)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Walk, Found> {
        Ok(Walk)
    }
    fn collect_str<T: fmt::Display + ?Sized>(self, _: &T) -> R {
        Ok(())
    }
}

impl ser::SerializeSeq for Walk {
    type Ok = ();
    type Error = Found;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> R {
        v.serialize(Walk)
    }
    fn end(self) -> R {
        Ok(())
    }
}

impl ser::SerializeTuple for Walk {
    type Ok = ();
    type Error = Found;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> R {
        v.serialize(Walk)
    }
    fn end(self) -> R {
        Ok(())
    }
}

impl ser::SerializeTupleStruct for Walk {
    type Ok = ();
    type Error = Found;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> R {
        v.serialize(Walk)
    }
    fn end(self) -> R {
        Ok(())
    }
}

impl ser::SerializeTupleVariant for Walk {
    type Ok = ();
    type Error = Found;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> R {
        v.serialize(Walk)
    }
    fn end(self) -> R {
        Ok(())
    }
}

impl ser::SerializeMap for Walk {
    type Ok = ();
    type Error = Found;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> R {
        k.serialize(Walk)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> R {
        v.serialize(Walk)
    }
    fn end(self) -> R {
        Ok(())
    }
}

impl ser::SerializeStruct for Walk {
    type Ok = ();
    type Error = Found;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, _: &'static str, v: &T) -> R {
        v.serialize(Walk)
    }
    fn end(self) -> R {
        Ok(())
    }
}

impl ser::SerializeStructVariant for Walk {
    type Ok = ();
    type Error = Found;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, _: &'static str, v: &T) -> R {
        v.serialize(Walk)
    }
    fn end(self) -> R {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Refuses;

    impl Serialize for Refuses {
        fn serialize<S: ser::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(ser::Error::custom("not this one"))
        }
    }

    #[test]
    fn the_first_message_deep_inside_is_found() {
        let v = (1u8, vec![Some("a")], [Refuses]);
        let e = postcard::to_stdvec(&v).unwrap_err();
        assert_eq!(e.to_string(), "Serde Serialization Error");
        assert_eq!(explain(&e, &v), "not this one");
        assert_eq!(cause(&(1u8, "fine")), None);
    }

    #[test]
    fn a_descriptor_outside_a_transport_says_so() {
        let shm = crate::shm::SharedMemory::new(8).unwrap();
        let e = postcard::to_stdvec(&shm).unwrap_err();
        assert!(
            explain(&e, &shm).contains("can only be sent through"),
            "{}",
            explain(&e, &shm)
        );
        // Inside a transport's table the descriptor is accepted: no cause to tell.
        let (found, _fds) = crate::fds::collect_fds(|| cause(&shm));
        assert_eq!(found, None);
    }
}
