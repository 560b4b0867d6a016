#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| { let _ = voxgate::assistant::engine::load_and_run(data); });
