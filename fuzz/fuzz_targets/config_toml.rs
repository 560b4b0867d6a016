#![no_main]
libfuzzer_sys::fuzz_target!(|data: &str| { let _ = voxgate::config::Config::from_toml(data, None); });
