#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| { let _ = voxgate::numbers::parse_csv(data); });
