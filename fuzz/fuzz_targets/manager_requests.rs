//! Fuzz target `manager_requests`: see `concur_process::fuzzing::manager_requests` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    concur_process::fuzzing::manager_requests(data);
});
