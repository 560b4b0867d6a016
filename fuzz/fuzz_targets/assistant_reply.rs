#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| { let _ = voxgate::assistant::actions::from_message_json(data); });
