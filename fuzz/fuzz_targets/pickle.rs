//! Fuzz target `pickle`: the body and what it checks are in weights/src/fuzz.rs.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| weights::fuzz::pickle(data));
