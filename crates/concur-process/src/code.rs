//! Where code is found again: the one audited place that turns a number back into a
//! function (`transmute` is allowed nowhere else in the workspace, see `.clippy.toml`).
//!
//! Two ways, for two kinds of peer:
//!
//! - **[`FnOffset`]**, for a peer that runs this very binary and is trusted (a parent
//!   and its child, a pool and its workers, a fork server): a function travels as its
//!   offset from a fixed [`anchor`], the same in every process running this binary
//!   whatever ASLR chose, and the receiver adds its own anchor back. Sound only in the
//!   same binary, which is why every receiver checks the binary's identity first
//!   (`process::protocol::Identity`).
//! - **The function table**, for a peer that may be hostile (anything that reads a
//!   Redis stream or a manager socket): functions are *registered* at compile time
//!   (each monomorphization of [`register`] leaves one entry in the binary's own
//!   `concur_fn_table` linker section) and looked up by a key, so a receiver only
//!   ever calls a function it found in its own image. An unknown key is `None`,
//!   never a jump. Learned from rayon-core's `job.rs` (one typed wrapper per erased
//!   function) and linkme's distributed slices (a section bounded by the linker's
//!   `__start_`/`__stop_` symbols); the entries here are placed by inline assembly
//!   because they are made per monomorphization, where a `static` cannot be.

use std::any::Any;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::os::fd::OwnedFd;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::connection::Connection;

/// Marks a start message of this protocol version (also the anchor's body).
const ANCHOR_MAGIC: usize = 0x0c0c_0001;

/// The fixed point that function offsets are measured from.
#[inline(never)]
pub(crate) fn anchor() -> usize {
    // Not an empty body, so it is not merged with another identical function.
    std::hint::black_box(ANCHOR_MAGIC)
}

fn addr_of_anchor() -> usize {
    anchor as fn() -> usize as usize
}

/// The offset of the code at `addr` from [`anchor`].
pub(crate) fn offset_of(addr: usize) -> i64 {
    (addr as i64).wrapping_sub(addr_of_anchor() as i64)
}

pub(crate) mod sealed {
    pub(crate) trait Sealed {}
}

/// A function pointer type that can travel as an offset (sealed: the trampoline
/// types of this crate).
pub(crate) trait FnPtr: sealed::Sealed + Copy + 'static {
    /// The function's address.
    fn addr(self) -> usize;
    /// The function at `addr`.
    ///
    /// # Safety
    /// `addr` is the address of a function of exactly this type, in this process.
    unsafe fn at(addr: usize) -> Self;
}

/// Makes function pointer types [`FnPtr`]s: the process tier's trampolines, which
/// travel only between trusted processes of one binary. (The manager's update
/// functions, which a key holder names, are found in the function table instead.)
macro_rules! fn_ptr {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::code::sealed::Sealed for $t {}
        impl $crate::code::FnPtr for $t {
            fn addr(self) -> usize {
                self as usize
            }
            #[allow(clippy::disallowed_methods)] // the one audited place, see the module docs
            unsafe fn at(addr: usize) -> Self {
                // SAFETY: the caller guarantees `addr` is a function of type `$t`; a
                // function pointer is an address of the same size.
                unsafe { std::mem::transmute::<usize, $t>(addr) }
            }
        }
    )*};
}

fn_ptr!(
    fn(&[u8], Vec<OwnedFd>, &Connection) -> i32,
    fn(&[u8], Vec<OwnedFd>, &Connection),
    fn(&[u8], Vec<OwnedFd>) -> Result<(), (String, Option<String>)>,
    fn() -> Described,
);

/// A function of type `F`, as its offset from [`anchor`]: how a function travels to a
/// trusted process running the same binary. On the wire it is the `i64` offset.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct FnOffset<F> {
    offset: i64,
    #[serde(skip)]
    _f: PhantomData<fn() -> F>,
}

impl<F> Clone for FnOffset<F> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<F> Copy for FnOffset<F> {}

impl<F> std::fmt::Debug for FnOffset<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FnOffset({:+#x})", self.offset)
    }
}

impl<F: FnPtr> FnOffset<F> {
    /// The offset of `f`.
    pub(crate) fn of(f: F) -> Self {
        Self::from_raw(offset_of(f.addr()))
    }

    /// The offset as it travels.
    pub(crate) fn raw(self) -> i64 {
        self.offset
    }

    /// An offset read off the wire.
    pub(crate) fn from_raw(offset: i64) -> Self {
        FnOffset {
            offset,
            _f: PhantomData,
        }
    }

    /// The function this offset names in this process.
    ///
    /// # Safety
    /// The offset was made by [`of`](Self::of) from an `F`, in a process running this
    /// same binary (its identity checked), and travelled only between such processes.
    pub(crate) unsafe fn resolve(self) -> F {
        let addr = (addr_of_anchor() as i64).wrapping_add(self.offset) as usize;
        // SAFETY: by the caller's guarantee, `anchor + offset` is where `of` found an
        // `F` in a process with this binary's layout, so it is that function here.
        unsafe { F::at(addr) }
    }
}

// ---- the function table ------------------------------------------------------------------

/// One kind of function kept in the table: implemented by a (zero-sized) marker type
/// per function, whose [`register`] call records it.
///
/// ```
/// use concur::process::exec::{self, TableEntry};
///
/// fn double(x: u32) -> u32 { x * 2 }
/// struct Double;
/// impl TableEntry for Double {
///     const TABLE: &'static str = "doc-example";
///     type Fn = fn(u32) -> u32;
///     fn key() -> String { "double".into() }
///     fn func() -> Self::Fn { double }
/// }
///
/// exec::register::<Double>();
/// let f: fn(u32) -> u32 = exec::lookup("doc-example", "double").unwrap();
/// assert_eq!(f(21), 42);
/// assert!(exec::lookup::<fn(u32) -> u32>("doc-example", "triple").is_none());
/// ```
pub trait TableEntry: 'static {
    /// Which table the entry belongs to (tables share one section; keys are unique
    /// within a table).
    const TABLE: &'static str;
    /// The type of the function stored (usually a function pointer).
    type Fn: Copy + Send + Sync + 'static;
    /// The key it is found by. Must be the same in every process running this binary.
    fn key() -> String;
    /// The function.
    fn func() -> Self::Fn;
}

/// What one table entry says about itself (made by calling the entry).
#[doc(hidden)]
pub(crate) struct Described {
    table: &'static str,
    key: String,
    func: Box<dyn Any + Send + Sync>,
}

fn describe<E: TableEntry>() -> Described {
    Described {
        table: E::TABLE,
        key: E::key(),
        func: Box::new(E::func()),
    }
}

/// Records `E` in this binary's function table. Costs nothing when it runs: the entry
/// is written by the linker, once per monomorphization that calls this; calling it
/// only makes sure that monomorphization exists. Call it on every path that makes
/// keys of `E` for another process to look up.
#[inline(always)]
pub fn register<E: TableEntry>() {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    // SAFETY: the assembly only emits data into the `concur_fn_table` section (an
    // 8-byte PC-relative offset to `describe::<E>`, kept by the linker with the `R`
    // flag) and executes nothing: no registers, memory or flags are touched.
    unsafe {
        std::arch::asm!(
            ".pushsection concur_fn_table,\"aR\"",
            ".balign 8",
            "2:",
            ".quad {entry} - 2b",
            ".popsection",
            entry = sym describe::<E>,
            options(nomem, nostack, preserves_flags),
        );
    }
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
unsafe extern "C" {
    // Made by the linker around the section (a C identifier as its name).
    static __start_concur_fn_table: u8;
    static __stop_concur_fn_table: u8;
}

type Table = HashMap<&'static str, HashMap<String, Box<dyn Any + Send + Sync>>>;

/// Always in the table, so that the section exists (and its `__start_`/`__stop_`
/// symbols are defined) in every binary that reads it, even one that registers
/// nothing else.
struct Sentinel;

impl TableEntry for Sentinel {
    const TABLE: &'static str = "concur-process";
    type Fn = fn() -> bool;
    fn key() -> String {
        "sentinel".to_owned()
    }
    fn func() -> Self::Fn {
        || true
    }
}

/// The entries of this binary's section, made once.
fn registered() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    register::<Sentinel>();
    TABLE.get_or_init(|| {
        let mut t = Table::new();
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        {
            // SAFETY: as in `register`: data only, into the same section. This empty
            // entry (0, skipped below) makes the section, and so the linker's
            // `__start_`/`__stop_` symbols, exist in a binary that looks functions up
            // but registers none (it would not link otherwise).
            unsafe {
                std::arch::asm!(
                    ".pushsection concur_fn_table,\"aR\"",
                    ".balign 8",
                    ".quad 0",
                    ".popsection",
                    options(nomem, nostack, preserves_flags),
                );
            }
            let start = &raw const __start_concur_fn_table as *const i64;
            let stop = &raw const __stop_concur_fn_table as *const i64;
            // SAFETY: the linker bounds the section with these two symbols, so `stop`
            // is `start` plus the section's size, a multiple of 8 (every entry is an
            // 8-aligned `.quad`).
            let n = usize::try_from(unsafe { stop.offset_from(start) }).unwrap_or(0);
            for i in 0..n {
                // SAFETY: `i < n`: inside the section, 8-aligned, written by `register`.
                let (at, rel) = unsafe {
                    let p = start.add(i);
                    (p as usize, p.read())
                };
                if rel == 0 {
                    continue; // the empty entry above
                }
                let addr = (at as i64).wrapping_add(rel) as usize;
                // SAFETY: `register` wrote `describe::<E> - here` at `here`, so `addr`
                // is a `describe::<E>`: a `fn() -> Described`.
                let d = unsafe { <fn() -> Described as FnPtr>::at(addr) }();
                t.entry(d.table).or_default().entry(d.key).or_insert(d.func);
            }
        }
        t
    })
}

/// The function of type `G` that table `table` keeps under `key`, if any. `None` for
/// a key this binary never registered, or registered with another function type.
///
/// ```
/// assert!(concur::process::exec::lookup::<fn()>("no-such-table", "x").is_none());
/// ```
pub fn lookup<G: Copy + 'static>(table: &str, key: &str) -> Option<G> {
    registered()
        .get(table)?
        .get(key)?
        .downcast_ref::<G>()
        .copied()
}

/// Every key of table `table`, sorted.
///
/// ```
/// assert!(concur::process::exec::keys("no-such-table").is_empty());
/// ```
pub fn keys(table: &str) -> Vec<String> {
    let mut v: Vec<String> = registered()
        .get(table)
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// A stable name of the function type `F` for table keys: its type name, and for a
/// closure (whose type name does not tell two closures of one function apart) also
/// the offset of code made for `F` alone, the same in every process of this binary.
///
/// ```
/// fn square(x: u64) -> u64 { x * x }
/// fn name<F: 'static>(_: F) -> String { concur::process::exec::fn_name::<F>() }
/// assert!(name(square).ends_with("square"));
/// let (a, b) = (name(|x: u8| x), name(|x: u8| x + 1));
/// assert!(a.contains("{{closure}}") && a != b);
/// ```
pub fn fn_name<F: 'static>() -> String {
    let name = std::any::type_name::<F>();
    if name.contains("{{closure}}") {
        let here: fn() -> String = fn_name::<F>;
        format!("{name}@{:x}", offset_of(here as usize))
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_sentinel_is_always_there() {
        let f: fn() -> bool = super::lookup("concur-process", "sentinel").unwrap();
        assert!(f());
        assert_eq!(super::keys("concur-process"), ["sentinel"]);
        assert!(super::lookup::<fn() -> u8>("concur-process", "sentinel").is_none());
    }
}
