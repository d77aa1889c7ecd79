//! Fuzz target `connection_recv`: see `concur_process::fuzzing::connection_recv` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    concur_process::fuzzing::connection_recv(data);
});
