//! Arbitrary bytes as a small grey image through the whole analysis.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::analyze_pixels(data));
