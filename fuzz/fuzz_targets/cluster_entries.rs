//! Fuzz target `cluster_entries`: see `concur_cluster::fuzzing::entries` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    concur_cluster::fuzzing::entries(data);
});
