//! The process tier's implementor API: what a crate building on it needs (the
//! cluster tier's workers), and nothing a user of processes and pools needs.
//!
//! - The **function table** ([`TableEntry`], [`register`], [`lookup`], [`keys`],
//!   [`fn_name`]): functions a program can be asked to run by a peer it does not
//!   trust (a message off a Redis stream, a request on a socket) are looked up by key
//!   in a table of its own binary, so no message can make it jump to an address of
//!   its choosing. A key this binary did not register is `None`.
//! - [`encode_capped`]: postcard encoding that stops at a size limit, for a peer's
//!   limit on what it accepts (refuse a 2 GiB value having encoded 1 MiB, not 2 GiB).
//! - [`conjure`]: the value of a function type that captures nothing, made from no
//!   data: how code that found a function *type* in the table calls it.
//!
//! ```
//! use concur::process::exec::{self, TableEntry};
//!
//! fn shout(s: String) -> String { s.to_uppercase() }
//! fn run_it<F: Fn(String) -> String + Copy + 'static>(arg: String) -> String {
//!     // SAFETY: `F` is the type of a function item a caller held (see `Entry`).
//!     let f: F = unsafe { exec::conjure::<F>() };
//!     f(arg)
//! }
//! struct Entry<F>(F);
//! impl<F: Fn(String) -> String + Copy + Send + Sync + 'static> TableEntry for Entry<F> {
//!     const TABLE: &'static str = "doc-exec";
//!     type Fn = fn(String) -> String;
//!     fn key() -> String { exec::fn_name::<F>() }
//!     fn func() -> Self::Fn { run_it::<F> }
//! }
//! fn key_of<F: Fn(String) -> String + Copy + Send + Sync + 'static>(_: F) -> String {
//!     exec::register::<Entry<F>>();
//!     exec::fn_name::<F>()
//! }
//!
//! let key = key_of(shout); // what a peer would send
//! let f: fn(String) -> String = exec::lookup("doc-exec", &key).unwrap();
//! assert_eq!(f("hi".into()), "HI");
//! ```

pub use crate::code::{TableEntry, fn_name, keys, lookup, register};
pub use crate::connection::{CappedError, encode_capped};

/// Makes the value of the function type `F` (a function item or a closure that
/// captures nothing) from no data. Fails to compile for a type that is not
/// zero-sized.
///
/// # Safety
/// `F` must be inhabited: a value of it existed somewhere in this program (a caller
/// held the function), as for every closure and function item. A zero-sized type with
/// no values (an empty `enum`) is undefined behaviour.
///
/// ```
/// fn one() -> u8 { 1 }
/// fn make<F: Fn() -> u8 + Copy + 'static>(_: F) -> F {
///     // SAFETY: the caller held a value of `F`.
///     unsafe { concur::process::exec::conjure::<F>() }
/// }
/// assert_eq!(make(one)(), 1);
/// ```
pub unsafe fn conjure<F: Copy + 'static>() -> F {
    crate::process::child::conjure::<F>()
}
