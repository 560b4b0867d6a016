//! Shared helpers for voxgate's benchmarks and the `voxgate-load` generator.

/// libsrtp2 FFI, for interop tests and comparison benchmarks only.
#[allow(unsafe_code)]
pub mod libsrtp;
