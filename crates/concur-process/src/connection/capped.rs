//! Encoding that stops at a size limit: a value over the limit is refused as soon as
//! its encoding passes it, without encoding (or allocating for) the rest. What
//! [`Connection::send`](super::Connection::send) and the manager's requests encode
//! with; the implementor API re-exports it as `exec::encode_capped`.
//!
//! The public face of the crate's one capped encoder (`crate::capped`, which the
//! process queue and the pool's task frames use too).

use crate::capped::{self, CapError};
use serde::Serialize;

/// Why [`encode_capped`] refused a value.
#[derive(Debug)]
pub enum CappedError {
    /// The encoding passed the limit (it stopped there: the value's full size is not
    /// known).
    TooLarge {
        /// The limit, in bytes of output (what `into` held included).
        max: usize,
    },
    /// The value could not be serialized.
    Encode(postcard::Error),
}

impl std::fmt::Display for CappedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CappedError::TooLarge { max } => {
                write!(
                    f,
                    "the value's encoding is larger than the limit of {max} bytes"
                )
            }
            CappedError::Encode(e) => write!(f, "the value could not be serialized: {e}"),
        }
    }
}

impl std::error::Error for CappedError {}

/// Appends the postcard encoding of `value` to `into`, refusing it as soon as `into`
/// would pass `max` bytes in all (what it held before counts): a 2 GiB value against a
/// 1 MiB limit costs about 1 MiB of encoding work and memory, not 2 GiB.
///
/// # Errors
/// [`CappedError::TooLarge`] past the limit; [`CappedError::Encode`] if `value` cannot
/// be serialized.
///
/// ```
/// use concur::process::exec::{CappedError, encode_capped};
/// let ok = encode_capped(&(1u8, "ab"), Vec::new(), 16).unwrap();
/// assert_eq!(ok, [1, 2, b'a', b'b']);
/// let big = vec![0u8; 1 << 20];
/// assert!(matches!(
///     encode_capped(&big, Vec::new(), 1024),
///     Err(CappedError::TooLarge { max: 1024 })
/// ));
/// ```
pub fn encode_capped<T: Serialize + ?Sized>(
    value: &T,
    mut into: Vec<u8>,
    max: usize,
) -> Result<Vec<u8>, CappedError> {
    let max = max.max(into.len());
    match capped::extend(value, &mut into, max) {
        Ok(()) => Ok(into),
        Err(CapError::Over { .. }) => Err(CappedError::TooLarge { max }),
        Err(CapError::Encode(e)) => Err(CappedError::Encode(e)),
    }
}
