#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| attestation::fuzzing::round_bundle(data));
