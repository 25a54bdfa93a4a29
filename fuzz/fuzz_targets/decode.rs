//! Arbitrary bytes through `load::decode` and, when they decode small, the analysis.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::decode(data));
