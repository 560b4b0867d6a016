#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| voxgate::sip::ua::fuzzing::sip_ua(data));
