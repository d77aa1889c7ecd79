//! Fuzz target `pool_frames`: see `concur_process::fuzzing::pool_frames` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    concur_process::fuzzing::pool_frames(data);
});
