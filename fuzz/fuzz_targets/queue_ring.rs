//! Fuzz target `queue_ring`: see `concur_process::fuzzing::queue_ring` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    concur_process::fuzzing::queue_ring(data);
});
