//! Task identity: how a task's function is named on the submitting side and found
//! again on a worker, and the build fingerprint both sides compare.
//!
//! A task entry never carries an address. Submitting `f` registers an entry for `f`'s
//! type in the binary's function table (`concur_process::exec::register`, a linker
//! section written at build time) and sends only its *name* (the key it is found
//! by). A worker looks the name up in its own table: it can only ever run a function
//! compiled into its own binary, and an unknown name is a typed refusal. The
//! fingerprint (a hash of the executable file) tells whether the worker runs the very
//! build that submitted: if not, it refuses with
//! [`is_build_mismatch`](concur_core::futures::TaskError::is_build_mismatch) instead of
//! running a function that may have changed under the same name.

use std::io::Read;
use std::marker::PhantomData;
use std::sync::OnceLock;

use concur_core::futures::exec as core_exec;
use concur_process::exec::{self, TableEntry};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::envelope::{TaskKind, table_key};

/// The name of the cluster's table in the function table.
pub(crate) const TABLE: &str = "concur-cluster";

/// What a task's function did, as bytes: the encoded value, its panic, or why its
/// argument or value could not be (de)coded.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) enum Run {
    Ok(Vec<u8>),
    Panic {
        message: String,
        location: Option<String>,
    },
    /// The value could not be encoded.
    Codec(String),
    /// The argument could not be decoded (the entry is bad).
    BadArgs(String),
}

/// A task's function behind its table entry: encoded argument in, [`Run`] out.
pub(crate) type RunFn = fn(&[u8]) -> Run;

/// One item of a map chunk's result.
#[derive(Serialize, Deserialize)]
pub(crate) enum Item<T> {
    Ok(T),
    Panic(String, Option<String>),
}

fn encode<T: Serialize>(v: &T) -> Run {
    match postcard::to_stdvec(v) {
        Ok(b) => Run::Ok(b),
        Err(e) => Run::Codec(format!("the task's value could not be encoded: {e}")),
    }
}

fn decode<A: DeserializeOwned>(args: &[u8]) -> Result<A, Run> {
    postcard::from_bytes(args).map_err(|e| {
        Run::BadArgs(format!(
            "the worker could not decode the task's argument: {e}"
        ))
    })
}

fn panic_of(e: &concur_core::futures::TaskError) -> (String, Option<String>) {
    (
        e.panic_message().unwrap_or("panic").to_owned(),
        e.panic_location().map(str::to_owned),
    )
}

/// Makes the value of the zero-sized function type `F`.
fn conjure<F: Copy + 'static>() -> F {
    // SAFETY: `F` is the type of a function item or a closure that captures nothing
    // (the submitting side checked it is zero-sized) whose value the submitter held:
    // it is inhabited, and its one value has no bytes.
    unsafe { exec::conjure::<F>() }
}

fn run_call0<F, T>(_: &[u8]) -> Run
where
    F: Fn() -> T + Copy + 'static,
    T: Serialize,
{
    let f: F = conjure();
    match core_exec::catch(f) {
        Ok(v) => encode(&v),
        Err(e) => {
            let (message, location) = panic_of(&e);
            Run::Panic { message, location }
        }
    }
}

fn run_call<F, A, T>(args: &[u8]) -> Run
where
    F: Fn(A) -> T + Copy + 'static,
    A: DeserializeOwned,
    T: Serialize,
{
    let a: A = match decode(args) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let f: F = conjure();
    match core_exec::catch(move || f(a)) {
        Ok(v) => encode(&v),
        Err(e) => {
            let (message, location) = panic_of(&e);
            Run::Panic { message, location }
        }
    }
}

fn run_map<F, A, T>(args: &[u8]) -> Run
where
    F: Fn(A) -> T + Copy + 'static,
    A: DeserializeOwned,
    T: Serialize,
{
    let items: Vec<A> = match decode(args) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let f: F = conjure();
    let out: Vec<Item<T>> = items
        .into_iter()
        .map(|x| match core_exec::catch(move || f(x)) {
            Ok(v) => Item::Ok(v),
            Err(e) => {
                let (m, l) = panic_of(&e);
                Item::Panic(m, l)
            }
        })
        .collect();
    encode(&out)
}

/// The table entry of `|| value` for the closure type `F`.
struct Call0<F, T>(PhantomData<fn() -> (F, T)>);
/// The table entry of `f(args)` for the function type `F`.
struct Call<F, A, T>(PhantomData<fn(A) -> (F, T)>);
/// The table entry of a map chunk of `F`.
struct Map<F, A, T>(PhantomData<fn(A) -> (F, T)>);

impl<F, T> TableEntry for Call0<F, T>
where
    F: Fn() -> T + Copy + 'static,
    T: Serialize + 'static,
{
    const TABLE: &'static str = TABLE;
    type Fn = RunFn;
    fn key() -> String {
        table_key(TaskKind::Call0, &exec::fn_name::<F>())
    }
    fn func() -> RunFn {
        run_call0::<F, T>
    }
}

impl<F, A, T> TableEntry for Call<F, A, T>
where
    F: Fn(A) -> T + Copy + 'static,
    A: DeserializeOwned + 'static,
    T: Serialize + 'static,
{
    const TABLE: &'static str = TABLE;
    type Fn = RunFn;
    fn key() -> String {
        table_key(TaskKind::Call, &exec::fn_name::<F>())
    }
    fn func() -> RunFn {
        run_call::<F, A, T>
    }
}

impl<F, A, T> TableEntry for Map<F, A, T>
where
    F: Fn(A) -> T + Copy + 'static,
    A: DeserializeOwned + 'static,
    T: Serialize + 'static,
{
    const TABLE: &'static str = TABLE;
    type Fn = RunFn;
    fn key() -> String {
        table_key(TaskKind::Map, &exec::fn_name::<F>())
    }
    fn func() -> RunFn {
        run_map::<F, A, T>
    }
}

/// A compile-time check that `F` captures nothing.
struct NoCaptures<F>(PhantomData<F>);

impl<F> NoCaptures<F> {
    const CHECK: () = assert!(
        size_of::<F>() == 0,
        "a cluster task runs a function or a closure that captures nothing: pass the \
         values it needs as its argument instead of capturing them"
    );
}

/// Registers `|| value` of type `F` and returns its function's name.
pub(crate) fn name_call0<F, T>() -> String
where
    F: Fn() -> T + Copy + 'static,
    T: Serialize + 'static,
{
    let () = NoCaptures::<F>::CHECK;
    exec::register::<Call0<F, T>>();
    exec::fn_name::<F>()
}

/// Registers `f(args)` of type `F` and returns its function's name.
pub(crate) fn name_call<F, A, T>() -> String
where
    F: Fn(A) -> T + Copy + 'static,
    A: DeserializeOwned + 'static,
    T: Serialize + 'static,
{
    let () = NoCaptures::<F>::CHECK;
    exec::register::<Call<F, A, T>>();
    exec::fn_name::<F>()
}

/// Registers map chunks of `F` and returns its function's name.
pub(crate) fn name_map<F, A, T>() -> String
where
    F: Fn(A) -> T + Copy + 'static,
    A: DeserializeOwned + 'static,
    T: Serialize + 'static,
{
    let () = NoCaptures::<F>::CHECK;
    exec::register::<Map<F, A, T>>();
    exec::fn_name::<F>()
}

/// Makes sure a worker binary can run `f(args)`, `f` on map chunks, and `|| f(())`:
/// for binaries that only serve (such as `concur worker`) and never submit `f`
/// themselves, which would register it.
pub(crate) fn register<F, A, T>()
where
    F: Fn(A) -> T + Copy + 'static,
    A: DeserializeOwned + 'static,
    T: Serialize + 'static,
{
    name_call::<F, A, T>();
    name_map::<F, A, T>();
}

/// The function behind a table key, if this binary has it.
pub(crate) fn lookup(key: &str) -> Option<RunFn> {
    exec::lookup::<RunFn>(TABLE, key)
}

/// Runs the task at `key` on its encoded argument, in this process (a worker's
/// process-pool child). `None` if this binary has no such task.
pub(crate) fn run_here((key, args): (String, Vec<u8>)) -> Option<Run> {
    lookup(&key).map(|f| f(&args))
}

/// Every task name this binary can run.
pub(crate) fn known() -> Vec<String> {
    exec::keys(TABLE)
}

/// This binary's build fingerprint: the first 16 bytes of the SHA-256 of its
/// executable file, in hex. Two processes have the same fingerprint exactly when they
/// run the same executable (a copy of the file on another machine included).
pub(crate) fn fingerprint() -> &'static str {
    static FP: OnceLock<String> = OnceLock::new();
    FP.get_or_init(|| match hash_exe() {
        Ok(h) => h,
        Err(e) => {
            // Nobody can match this: every task is refused rather than run on a
            // guess.
            tracing::error!(error = %e, "concur cluster: cannot read this executable to fingerprint it");
            format!("unreadable-{}", std::process::id())
        }
    })
}

fn hash_exe() -> std::io::Result<String> {
    use sha2::Digest;
    let mut f = std::fs::File::open("/proc/self/exe")?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let d = h.finalize();
    Ok(d[..16].iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(x: u64) -> u64 {
        x * x
    }

    fn key_of<F, A, T>(_: F) -> String
    where
        F: Fn(A) -> T + Copy + 'static,
        A: DeserializeOwned + 'static,
        T: Serialize + 'static,
    {
        table_key(TaskKind::Call, &name_call::<F, A, T>())
    }

    #[test]
    fn a_registered_function_is_found_by_its_name_and_runs() {
        let key = key_of(square);
        assert!(key.ends_with("tests::square"), "{key}");
        let args = postcard::to_stdvec(&7u64).unwrap();
        let Some(Run::Ok(v)) = run_here((key.clone(), args)) else {
            panic!("not found: {key} in {:?}", known());
        };
        assert_eq!(postcard::from_bytes::<u64>(&v).unwrap(), 49);
        assert!(known().contains(&key));
    }

    #[test]
    fn an_unknown_name_is_none_never_a_jump() {
        assert!(run_here(("call no::such::fn".into(), vec![])).is_none());
        let key = key_of(square);
        // The same name under another kind is another key, never registered here.
        assert!(lookup(&key.replacen("call", "map", 1)).is_none());
        assert!(lookup(&format!("{key}x")).is_none());
    }

    #[test]
    fn two_closures_of_one_function_have_two_names() {
        let a = key_of(|x: u8| x);
        let b = key_of(|x: u8| x.wrapping_add(1));
        assert_ne!(a, b);
        let run = |k: &str| match run_here((k.to_owned(), postcard::to_stdvec(&1u8).unwrap())) {
            Some(Run::Ok(v)) => postcard::from_bytes::<u8>(&v).unwrap(),
            other => panic!("{other:?}"),
        };
        assert_eq!((run(&a), run(&b)), (1, 2));
    }

    #[test]
    fn panics_and_bad_arguments_are_reported_not_raised() {
        let key = key_of(|x: u32| -> u32 {
            assert!(x < 5, "too big: {x}");
            x
        });
        match run_here((key.clone(), postcard::to_stdvec(&9u32).unwrap())) {
            Some(Run::Panic { message, location }) => {
                assert_eq!(message, "too big: 9");
                assert!(location.unwrap().contains("task.rs"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            run_here((key, vec![0xff; 9])),
            Some(Run::BadArgs(_))
        ));
    }

    #[test]
    fn the_fingerprint_is_stable_and_hex() {
        let a = fingerprint();
        assert_eq!(a, fingerprint());
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
